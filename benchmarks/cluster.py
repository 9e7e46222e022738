#!/usr/bin/env python3
"""Fan-out across Parley nodes sharing one PostgreSQL, against one node, in one run, with the
hub benchmark's load generator (benchmarks/load, `parley-load`):

- one node on SQLite (the embedded default, for reference);
- one node on PostgreSQL: all subscribers on it;
- two nodes on PostgreSQL: the subscribers split between them, the events published on the
  first; the second gets them through LISTEN/NOTIFY and reads them from the shared log.

Each configuration: 1,000 subscribers to one meeting, 1,000 events, published as fast as the
publisher goes (a burst) and paced at one event every 10 ms. Figures: events and messages per
second, publish-to-receipt latency (by node for two nodes), server CPU (all nodes together),
loss. The PostgreSQL is a throwaway one (scripts/test-postgres.sh, fsync off) on this machine,
so the database, the nodes and the load generator share its cores.

Writes its section of Docs/benchmarks.md (between the cluster markers), Docs/cluster-latency.png
and raw results in bench-output/cluster/.

  .venv/bin/python benchmarks/cluster.py [--quick] [--skip-build]
"""
import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hub  # noqa: E402  (the same load generator, helpers and machine description)

ROOT = hub.ROOT
DOC = hub.DOC
PLOT = os.path.join(ROOT, "Docs", "cluster-latency.png")
BEGIN, END = "<!-- cluster:begin -->", "<!-- cluster:end -->"
SECRET = "cluster-benchmark-secret-0123456789abcdef"


class Node:
    """`parley serve --development` (release build) on SQLite or on the shared PostgreSQL."""

    def __init__(self, database=None):
        self.port = hub.free_port()
        self.data = tempfile.mkdtemp(prefix="parley-cluster-bench-")
        arguments = [hub.PARLEY, "serve", "--port", str(self.port), "--data-dir", self.data, "--development",
                     "--no-processing", "--set", f"server.jwt_secret={SECRET}", "--set", "server.bcrypt_cost=4",
                     "--set", "server.max_connections_per_user=1000000",
                     "--set", "server.connect_attempts_per_user=10000000",
                     "--set", "server.connect_attempts_per_address=10000000",
                     "--set", "server.access_token_ttl=86400"]
        if database:
            arguments += ["--database", database]
        self.proc = subprocess.Popen(arguments, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     env={**os.environ, "PARLEY_LOG_LEVEL": "error"})
        hub.wait_port(self.port, self.proc)
        self.base = f"http://127.0.0.1:{self.port}"

    def ws(self, meeting, token):
        return f"ws://127.0.0.1:{self.port}/ws/meeting/{meeting}?token={token}"

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)
        shutil.rmtree(self.data, ignore_errors=True)


def run(name, nodes, subscribers, events, interval_us):
    """One fan-out: a user and a meeting made on the first node, subscribers spread over the
    nodes, events published on the first."""
    first = nodes[0]
    user = f"u{time.time_ns()}"
    hub.http("POST", first.base + "/api/auth/register", {"username": user, "password": "benchmark"})
    token = hub.http("POST", first.base + "/api/auth/login", {"username": user, "password": "benchmark"})[
        "access_token"]
    meeting = hub.http("POST", first.base + "/api/meetings", {"title": "bench"}, token)["id"]
    publish = f"{first.base}/api/dev/meetings/{meeting}/events"
    ws = ",".join(node.ws(meeting, token) for node in nodes)
    pids = ",".join(str(node.proc.pid) for node in nodes)
    common = ["--ws", ws, "--publish", publish, "--token", token, "--pid", pids]
    hub.load("fanout", *common, "--subscribers", 50, "--events", 20)  # warm up
    result = hub.load("fanout", *common, "--subscribers", subscribers, "--events", events, "--size", 120,
                      "--interval-us", interval_us)
    result["configuration"] = name
    result["nodes"] = len(nodes)
    pace = "burst" if not interval_us else f"every {interval_us / 1000:g} ms"
    print(f"{name:34} {subscribers}x{events} {pace:14} {result['received'] / result['seconds']:>10,.0f} msg/s "
          f"{events / result['seconds']:>7,.0f} events/s p50 {result['latency_ms']['p50']:.1f} ms "
          f"p99 {result['latency_ms']['p99']:.1f} ms lost {result['lost']}", flush=True)
    return result


def plot(results, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for r in results:
        if r["interval_us"] != 10000:
            continue
        sample = sorted(r["latency_sample_ms"])
        if sample:
            ax.plot(sample, [i / len(sample) for i in range(1, len(sample) + 1)], label=r["configuration"])
    ax.set_xscale("log")
    ax.set_xlabel("publish-to-receipt latency (ms, log scale)")
    ax.set_ylabel("share of messages")
    ax.set_title("1,000 subscribers, one event every 10 ms: one node and two")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="smaller loads, for trying the script")
    parser.add_argument("--skip-build", action="store_true")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if not args.skip_build:
        for product in ("parley", "parley-load"):
            subprocess.run(["swift", "build", "-c", "release", "--product", product], cwd=ROOT, check=True)
    out = os.path.join(ROOT, "bench-output", "cluster")
    os.makedirs(out, exist_ok=True)
    subscribers, events = (200, 200) if args.quick else (1000, 1000)
    started = time.time()
    postgres_dir = tempfile.mkdtemp(prefix="parley-cluster-bench-pg-")
    script = os.path.join(ROOT, "scripts", "test-postgres.sh")
    url = subprocess.run([script, "start", postgres_dir], check=True, capture_output=True, text=True).stdout.strip()
    results = {"machine": hub.machine(), "runs": []}
    try:
        version = subprocess.run(["psql", url, "-Atc", "SHOW server_version"], capture_output=True,
                                 text=True).stdout.strip()
        results["machine"]["postgresql"] = version
        for interval in (0, 10000):
            for name, count, database in (("one node, SQLite", 1, None), ("one node, PostgreSQL", 1, url),
                                          ("two nodes, PostgreSQL", 2, url)):
                nodes = [Node(database) for _ in range(count)]
                try:
                    results["runs"].append(run(name, nodes, subscribers, events, interval))
                finally:
                    for node in nodes:
                        node.stop()
    finally:
        subprocess.run([script, "stop", postgres_dir], check=False)
    results["elapsed_seconds"] = time.time() - started
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    plot(results["runs"], PLOT)
    write_report(results, args.quick)


def write_report(results, quick):
    m = results["machine"]
    lines = [BEGIN, "", "## Several nodes on PostgreSQL (`benchmarks/cluster.py`)", "",
             f"Measured {m['date']} on {m['cpu']} ({m['cores']} cores), {m['os']}; {m['swift']}; PostgreSQL "
             f"{m.get('postgresql', '?')} (Debian's, fsync off, on the same machine). Command: "
             f"`.venv/bin/python benchmarks/cluster.py`{' --quick' if quick else ''} "
             f"({results['elapsed_seconds'] / 60:.0f} min). Release builds; the nodes, PostgreSQL and the load "
             "generator share the 2 cores. Events are published on the first node; with two nodes half the "
             "subscribers watch the second, which learns of each commit by LISTEN/NOTIFY and reads the events "
             "from the shared log.", "",
             "| configuration | publishing | events/s | messages/s | lost | server CPU per message (all nodes) | "
             "latency p50 | p99 | max | p50 / p99 on the publishing node | on the other node |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results["runs"]:
        lat = r["latency_ms"]
        pace = "as fast as it goes" if not r["interval_us"] else f"one event every {r['interval_us'] / 1000:g} ms"
        by = r.get("latency_ms_by_ws")
        split = (f"{by[0]['p50']:.1f} / {by[0]['p99']:.1f} ms | {by[1]['p50']:.1f} / {by[1]['p99']:.1f} ms"
                 if by else "— | —")
        lines.append(f"| {r['configuration']} | {pace} | {r['events'] / r['seconds']:,.0f} | "
                     f"{r['messages_per_second']:,.0f} | {r['lost']:,} | {r['server_cpu_us_per_message']:.2f} µs | "
                     f"{lat['p50']:.1f} ms | {lat['p99']:.1f} ms | {lat['max']:.1f} ms | {split} |")

    def find(name, interval):
        return next((r for r in results["runs"] if r["configuration"] == name and r["interval_us"] == interval), None)

    one, two = find("one node, PostgreSQL", 10000), find("two nodes, PostgreSQL", 10000)
    if one and two and two.get("latency_ms_by_ws"):
        other = two["latency_ms_by_ws"][1]
        lines += ["", f"Added latency of the second node, paced at one event every 10 ms: p50 "
                  f"{other['p50'] - one['latency_ms']['p50']:+.1f} ms, p99 {other['p99'] - one['latency_ms']['p99']:+.1f} ms "
                  "against one node on the same database (the notification round trip and one read of the log per "
                  "wake-up, which batches whatever committed meanwhile)."]
    lines += ["", "![latency, one node and two](cluster-latency.png)", "", END]
    text = open(DOC).read() if os.path.exists(DOC) else "# Benchmarks\n"
    block = "\n".join(lines)
    if BEGIN in text:
        text = text[:text.index(BEGIN)] + block + text[text.index(END) + len(END):]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    open(DOC, "w").write(text)


if __name__ == "__main__":
    main()
