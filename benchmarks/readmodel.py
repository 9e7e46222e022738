#!/usr/bin/env python3
"""The read model: `GET /api/meetings/{id}` and an action item edit (`PATCH .../action-items/1`)
on a meeting whose log holds 20,000 events, in one run of the same release binary:

- whole log: `server.state_cache=0` and a snapshot never stored, so every read decodes the
  whole log (what Parley did before the read model);
- read model: the defaults (the state kept in memory, a snapshot stored every 256 events);
- read model after a restart: the first read of a new process, from the stored snapshot.

Writes its section of Docs/benchmarks.md (between the readmodel markers) and raw results in
bench-output/readmodel/.

  .venv/bin/python benchmarks/readmodel.py [--events 20000] [--skip-build]
"""
import argparse
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from common import PARLEY, ROOT, cpu_name, free_port, http, wait_port, write_section

BEGIN, END = "<!-- readmodel:begin -->", "<!-- readmodel:end -->"
WHOLE_LOG = ["--set", "server.state_cache=0", "--set", "server.snapshot_every=1000000000"]


class Server:
    def __init__(self, data, extra):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = open(os.path.join(data, "serve.log"), "a")
        self.proc = subprocess.Popen(
            [PARLEY, "serve", "--port", str(self.port), "--data-dir", data, "--development",
             "--set", "server.bcrypt_cost=4", *extra], stdout=self.log, stderr=self.log)
        wait_port(self.port, self.proc)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=60)
        self.log.close()


def timed(call):
    start = time.perf_counter()
    call()
    return (time.perf_counter() - start) * 1000


def measure(server, meeting, token, reads):
    first = timed(lambda: http("GET", f"{server.base}/api/meetings/{meeting}", token=token))
    gets = [timed(lambda: http("GET", f"{server.base}/api/meetings/{meeting}", token=token)) for _ in range(reads)]
    edits = [timed(lambda n=n: http("PATCH", f"{server.base}/api/meetings/{meeting}/action-items/1",
                                     {"done": n % 2 == 0}, token=token)) for n in range(reads)]
    return {"first_get_ms": first, "get_ms": summary(gets), "edit_ms": summary(edits)}


def summary(values):
    values = sorted(values)
    return {"median": statistics.median(values), "p95": values[min(len(values) - 1, int(len(values) * 0.95))]}


def run(name, extra, events, reads, restart):
    data = tempfile.mkdtemp(prefix="parley-readmodel-")
    try:
        server = Server(data, extra)
        http("POST", server.base + "/api/auth/register", {"username": "alice", "password": "benchmark"})
        token = http("POST", server.base + "/api/auth/login", {"username": "alice", "password": "benchmark"})[
            "access_token"]
        meeting = http("POST", server.base + "/api/meetings", {"title": "read model"}, token)["id"]
        started = time.time()
        http("POST", f"{server.base}/api/dev/meetings/{meeting}/events",
             {"count": events, "size": 120, "action_items": 3}, token)
        print(f"{name}: {events} events published in {time.time() - started:.0f} s", flush=True)
        result = {"configuration": name, "events": events, **measure(server, meeting, token, reads)}
        if restart:
            server.stop()
            server = Server(data, extra)
            result["after_restart"] = measure(server, meeting, token, reads)
        server.stop()
        return result
    finally:
        shutil.rmtree(data, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=20000)
    ap.add_argument("--reads", type=int, default=30)
    ap.add_argument("--skip-build", action="store_true")
    args = ap.parse_args()
    if not args.skip_build:
        subprocess.run(["swift", "build", "-c", "release", "--product", "parley"], cwd=ROOT, check=True)
    results = {"date": datetime.date.today().isoformat(), "cpu": cpu_name(), "cores": os.cpu_count(), "runs": [
        run("whole log decoded on every read", WHOLE_LOG, args.events, args.reads, restart=False),
        run("read model", [], args.events, args.reads, restart=True),
    ]}
    out = os.path.join(ROOT, "bench-output", "readmodel")
    os.makedirs(out, exist_ok=True)
    json.dump(results, open(os.path.join(out, "results.json"), "w"), indent=1)
    write_report(results)


def write_report(results):
    before, after = results["runs"]
    events = before["events"]
    lines = [BEGIN, "", "## The read model (`benchmarks/readmodel.py`)", "",
             f"Measured {results['date']} on {results['cpu']} ({results['cores']} cores), release build, SQLite; "
             f"one meeting whose log holds {events:,} events (transcript segments of 120 characters and an "
             "`action_items` event), one client on loopback, median and p95 of "
             "the repeated requests (the first read of each process shown apart).", "",
             "| | first GET | GET median | GET p95 | edit median | edit p95 |",
             "|---|---:|---:|---:|---:|---:|"]

    def row(name, r):
        return (f"| {name} | {r['first_get_ms']:.0f} ms | {r['get_ms']['median']:.1f} ms | {r['get_ms']['p95']:.1f} ms "
                f"| {r['edit_ms']['median']:.1f} ms | {r['edit_ms']['p95']:.1f} ms |")

    lines.append(row("whole log decoded on every read (as before)", before))
    lines.append(row("read model", after))
    lines.append(row("read model, new process (state from the stored snapshot)", after["after_restart"]))
    speedup_get = before["get_ms"]["median"] / after["get_ms"]["median"]
    speedup_edit = before["edit_ms"]["median"] / after["edit_ms"]["median"]
    lines += ["", f"A GET is {speedup_get:.0f}x and an edit {speedup_edit:.0f}x faster with the read model. What "
              "remains of a GET is encoding the view (every segment of the meeting) and the request; an edit reads "
              "the state, appends one event under compare-and-append, and answers with the item.", "",
              "```sh", ".venv/bin/python benchmarks/readmodel.py   # part of make bench", "```", "", END]
    write_section(BEGIN, END, "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    if "--report-only" in sys.argv:
        write_report(json.load(open(os.path.join(ROOT, "bench-output", "readmodel", "results.json"))))
    else:
        main()
