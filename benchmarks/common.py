"""What the benchmark scripts share: where the release binaries and the report are, running a
command, free ports, waiting for a server, JSON over HTTP, the project's meeting generator, and
rewriting one script's section of Docs/benchmarks.md (between its markers) without touching
the others', and fetching a pinned source archive from PyPI.
"""
import hashlib
import json
import os
import re
import socket
import subprocess
import time
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RELEASE = os.path.join(ROOT, ".build", "release")
PARLEY = os.path.join(RELEASE, "parley")
LOAD = os.path.join(RELEASE, "parley-load")
DOC = os.path.join(ROOT, "Docs", "benchmarks.md")


def run(cmd, **kw):
    """Runs a command, capturing its output; a failure raises with the end of its stderr."""
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed: {p.stderr.strip()[-600:]}")
    return p


def pypi_sdist(spec, out):
    """The source archive of a pinned PyPI release ({"package", "version", "sha256"}) in `out`,
    fetched once from the registry and checked against its SHA-256."""
    os.makedirs(out, exist_ok=True)
    # Fetched before: no need of the registry (a run without network reuses it).
    named = os.path.join(out, f"{re.sub(r'[-_.]+', '_', spec['package'])}-{spec['version']}.tar.gz")
    if os.path.exists(named) and sha256(named) == spec["sha256"]:
        return named
    index = f"https://pypi.org/pypi/{spec['package']}/json"
    with urllib.request.urlopen(index, timeout=60) as r:
        release = json.load(r)["releases"][spec["version"]]
    sdist = next(u for u in release if u["packagetype"] == "sdist")
    path = os.path.join(out, sdist["filename"])
    if not os.path.exists(path):
        urllib.request.urlretrieve(urllib.parse.urljoin(index, sdist["url"]), path + ".part")
        os.replace(path + ".part", path)
    digest = sha256(path)
    if digest != spec["sha256"]:
        os.remove(path)
        raise SystemExit(f"{sdist['filename']} has SHA-256 {digest}, not {spec['sha256']}; refused")
    return path


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def make_meeting(out, *args):
    """A meeting made by `parley make-meeting` into `out` (kept: made once per folder)."""
    if not os.path.exists(os.path.join(out, "reference.json")):
        run([PARLEY, "make-meeting", out, *args])
    return out


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, seconds=30):
    """Waits until something listens on the port; raises if `proc` exits first."""
    end = time.time() + seconds
    while time.time() < end:
        if proc.poll() is not None:
            raise RuntimeError("server exited early")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("server did not start")


def http(method, url, body=None, token=None):
    """One JSON request; the decoded answer (None when empty)."""
    req = urllib.request.Request(url, data=json.dumps(body).encode() if body is not None else None, method=method)
    req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", "Bearer " + token)
    with urllib.request.urlopen(req, timeout=600) as r:
        return json.loads(r.read() or b"null")


def cpu_name():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def write_section(begin, end, text):
    """Puts `text` (which starts with `begin` and ends with `end`) in place of the lines between
    those markers in Docs/benchmarks.md, or appends it when they are not there yet."""
    doc = open(DOC).read() if os.path.exists(DOC) else "# Benchmarks\n"
    text = text.strip() + "\n"
    if begin in doc and end in doc:
        before = doc[:doc.index(begin)]
        after = doc[doc.index(end) + len(end):].lstrip("\n")
        doc = before + text + ("\n" + after if after else "")
    else:
        doc = doc.rstrip("\n") + "\n\n" + text
    open(DOC, "w").write(doc)
