"""What the Python tests of a running Parley (Tests/Browser, Tests/Cluster, Tests/API) share:
where the parley binary is, free ports, waiting for a condition, and parley processes with their
logs, `parley serve` waited for until /health answers. (Tests/Neural tests the neural
diarizer's Python directly and needs none of it.)

The binary is $PARLEY_BIN (make test: the AddressSanitizer build), else .build/debug/parley.
pytest puts this folder on sys.path, so the tests import these names with `from conftest import`.
"""

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PARLEY = os.environ.get("PARLEY_BIN") or os.path.join(ROOT, ".build", "debug", "parley")
PASSWORD = "correct horse"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(condition, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class ParleyProcess:
    """One parley process (`serve`, `worker`, ...) writing its log to `log_dir/name.log`."""

    def __init__(self, name, arguments, log_dir):
        os.makedirs(log_dir, exist_ok=True)
        self.name = name
        self.arguments = arguments
        self.log_path = os.path.join(log_dir, f"{name}.log")
        self.log = None
        self.proc = None
        self.launch()

    def launch(self):
        """Starts the process (again, after `kill`), appending to its log."""
        if self.log:
            self.log.close()
        self.log = open(self.log_path, "a")
        self.proc = subprocess.Popen([PARLEY, *self.arguments], stdout=self.log, stderr=self.log)

    def text(self):
        with open(self.log_path) as f:
            return f.read()

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        if self.log:
            self.log.close()
            self.log = None


class ParleyServer(ParleyProcess):
    """`parley serve` on a port of its own (kept across `kill` and `start`), with a fast bcrypt."""

    def __init__(self, name, data, log_dir, extra=(), timeout=120):
        self.port = free_port()
        self.timeout = timeout
        arguments = ["serve", "--port", str(self.port), "--data-dir", data, "--set", "server.bcrypt_cost=4", *extra]
        super().__init__(name, arguments, log_dir)
        self.wait_healthy()

    @property
    def base(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        """Starts the server again on the same port and data (after `kill`)."""
        self.launch()
        self.wait_healthy()

    def healthy(self):
        assert self.proc.poll() is None, f"{self.name} exited with {self.proc.returncode}: {self.text()[-2000:]}"
        try:
            urllib.request.urlopen(self.base + "/health", timeout=1).read()
            return True
        except OSError:
            return False

    def wait_healthy(self):
        wait_for(self.healthy, self.timeout, f"{self.name} to serve")

    def request(self, method, path, body=None, token=None, raw=None, content_type="application/json"):
        """One API request: (status, the JSON body or None). Error statuses raise HTTPError."""
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        headers = {"Content-Type": content_type}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(self.base + path, method=method, data=data, headers=headers)
        with urllib.request.urlopen(request, timeout=120) as response:
            text = response.read()
            return response.status, (json.loads(text) if text else None)

    def register(self, username):
        """Registers `username` (password PASSWORD) and returns an access token."""
        self.request("POST", "/api/auth/register", {"username": username, "password": PASSWORD})
        return self.token(username)

    def token(self, username):
        return self.request("POST", "/api/auth/login", {"username": username, "password": PASSWORD})[1]["access_token"]
