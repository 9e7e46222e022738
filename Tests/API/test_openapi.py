"""The OpenAPI document against the server it describes: schemathesis (every check, a fixed seed,
a bounded number of examples per operation) sends generated requests to a real `parley serve`,
so the document and the server cannot drift apart. The server must stay up throughout.

Run by `make test` with the other Python tests; the report goes to test-output/api/.
"""

import os
import shutil
import subprocess
import sys
import tempfile

from conftest import ROOT, ParleyServer

REPORTS = os.path.join(ROOT, "test-output", "api")
CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "schemathesis.toml")
SCHEMATHESIS = os.path.join(os.path.dirname(sys.executable), "schemathesis")


def test_the_server_does_what_its_openapi_document_says():
    data = tempfile.mkdtemp(prefix="parley-openapi-")
    server = ParleyServer("serve", data, log_dir=REPORTS)
    try:
        token = server.register("alice")
        run = subprocess.run(
            [SCHEMATHESIS, "--config-file", CONFIG, "run", f"{server.base}/openapi.json",
             "--checks", "all", "--seed", "1", "--max-examples", "25", "--workers", "1", "--no-color",
             "-H", f"Authorization: Bearer {token}", "--report", "junit", "--report-dir", REPORTS],
            capture_output=True, text=True, timeout=900)
        with open(os.path.join(REPORTS, "schemathesis.txt"), "w") as f:
            f.write(run.stdout + run.stderr)
        assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
        assert "passed" in run.stdout  # it ran
        assert server.healthy(), "the server went down under the generated requests"
    finally:
        server.stop()
        shutil.rmtree(data, ignore_errors=True)
