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

With `--against OTHER_PARLEY` (another build's release binary, e.g. from a worktree of an older
commit) it measures only the bursts, this build and the other in alternating turns (so a noisy
moment of the machine does not fall on one of them), and writes the comparison section instead.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hub  # noqa: E402  (the same load generator, plot and machine description)
from common import PARLEY, ROOT, free_port, http, wait_port, write_section  # noqa: E402

PLOT = os.path.join(ROOT, "Docs", "cluster-latency.png")
BEGIN, END = "<!-- cluster:begin -->", "<!-- cluster:end -->"
COMPARE_BEGIN, COMPARE_END = "<!-- cluster-compare:begin -->", "<!-- cluster-compare:end -->"
CONFIGURATIONS = (("one node, SQLite", 1, False), ("one node, PostgreSQL", 1, True), ("two nodes, PostgreSQL", 2, True))
SECRET = "cluster-benchmark-secret-0123456789abcdef"


class Node:
    """`parley serve --development` (release build) on SQLite or on the shared PostgreSQL."""

    def __init__(self, database=None, binary=None):
        self.port = free_port()
        self.data = tempfile.mkdtemp(prefix="parley-cluster-bench-")
        arguments = [binary or PARLEY, "serve", "--port", str(self.port), "--data-dir", self.data, "--development",
                     "--no-processing", "--set", f"server.jwt_secret={SECRET}", "--set", "server.bcrypt_cost=4",
                     "--set", "server.max_connections_per_user=1000000",
                     "--set", "server.connect_attempts_per_user=10000000",
                     "--set", "server.connect_attempts_per_address=10000000",
                     "--set", "server.access_token_ttl=86400"]
        if database:
            arguments += ["--database", database]
        self.proc = subprocess.Popen(arguments, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     env={**os.environ, "PARLEY_LOG_LEVEL": "error"})
        wait_port(self.port, self.proc)
        self.base = f"http://127.0.0.1:{self.port}"

    def ws(self, meeting, token):
        return f"ws://127.0.0.1:{self.port}/ws/meeting/{meeting}?token={token}"

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)
        shutil.rmtree(self.data, ignore_errors=True)


def postgres_cpu_seconds():
    """User + system CPU of every `postgres` process (the server and its backends), from /proc."""
    total = 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            text = open(f"/proc/{pid}/stat").read()
        except OSError:
            continue
        if text[text.index("(") + 1:text.rindex(")")] != "postgres":
            continue
        fields = text[text.rindex(")") + 2:].split()
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def run(name, nodes, subscribers, events, interval_us):
    """One fan-out: a user and a meeting made on the first node, subscribers spread over the
    nodes, events published on the first."""
    first = nodes[0]
    user = f"u{time.time_ns()}"
    http("POST", first.base + "/api/auth/register", {"username": user, "password": "benchmark"})
    token = http("POST", first.base + "/api/auth/login", {"username": user, "password": "benchmark"})[
        "access_token"]
    meeting = http("POST", first.base + "/api/meetings", {"title": "bench"}, token)["id"]
    publish = f"{first.base}/api/dev/meetings/{meeting}/events"
    ws = ",".join(node.ws(meeting, token) for node in nodes)
    pids = ",".join(str(node.proc.pid) for node in nodes)
    common = ["--ws", ws, "--publish", publish, "--token", token, "--pid", pids]
    hub.load("fanout", *common, "--subscribers", 50, "--events", 20)  # warm up
    database_before = postgres_cpu_seconds()
    result = hub.load("fanout", *common, "--subscribers", subscribers, "--events", events, "--size", 120,
                      "--interval-us", interval_us)
    # Over the whole run (connecting the subscribers included), 0 for SQLite.
    result["postgres_cpu_seconds"] = postgres_cpu_seconds() - database_before
    result["configuration"] = name
    result["nodes"] = len(nodes)
    pace = "burst" if not interval_us else f"every {interval_us / 1000:g} ms"
    print(f"{name:34} {subscribers}x{events} {pace:14} {result['received'] / result['seconds']:>10,.0f} msg/s "
          f"{events / result['seconds']:>7,.0f} events/s p50 {result['latency_ms']['p50']:.1f} ms "
          f"p99 {result['latency_ms']['p99']:.1f} ms lost {result['lost']}", flush=True)
    return result


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="smaller loads, for trying the script")
    parser.add_argument("--skip-build", action="store_true")
    parser.add_argument("--against", metavar="OTHER_PARLEY", help="compare bursts with another build's binary")
    parser.add_argument("--rounds", type=int, default=3, help="turns of each build, with --against")
    args = parser.parse_args()
    hub.prepare(args.skip_build)
    if args.against:
        return compare(args.against, args.rounds)
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
        # Each configuration several times, in turns (so a noisy moment of the machine does not
        # fall on one configuration only); the run with the median p50 latency is reported, with
        # the range of p99 over the repeats.
        for interval in (0, 10000):
            repeats = {}
            for _ in range(1 if args.quick else 3):
                for name, count, shared in CONFIGURATIONS:
                    nodes = [Node(url if shared else None) for _ in range(count)]
                    try:
                        repeats.setdefault(name, []).append(run(name, nodes, subscribers, events, interval))
                    finally:
                        for node in nodes:
                            node.stop()
            for name, runs in repeats.items():
                runs.sort(key=lambda r: r["latency_ms"]["p50"])
                chosen = dict(runs[len(runs) // 2])
                chosen["repeats"] = len(runs)
                chosen["p99_range_ms"] = [min(r["latency_ms"]["p99"] for r in runs),
                                          max(r["latency_ms"]["p99"] for r in runs)]
                results["runs"].append(chosen)
    finally:
        subprocess.run([script, "stop", postgres_dir], check=False)
    results["elapsed_seconds"] = time.time() - started
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    hub.plot([(r["configuration"], r) for r in results["runs"] if r["interval_us"] == 10000], PLOT,
             title="1,000 subscribers, one event every 10 ms: one node and two", target_ms=None)
    write_report(results, args.quick)


def compare(other, rounds):
    """Bursts on this build and on `other`, in alternating turns; writes the comparison section."""
    out = os.path.join(ROOT, "bench-output", "cluster")
    os.makedirs(out, exist_ok=True)
    commit = subprocess.run(["git", "-C", os.path.dirname(other), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip() or "?"
    builds = [("this build", PARLEY), (f"other ({commit})", other)]
    started = time.time()
    postgres_dir = tempfile.mkdtemp(prefix="parley-cluster-bench-pg-")
    script = os.path.join(ROOT, "scripts", "test-postgres.sh")
    url = subprocess.run([script, "start", postgres_dir], check=True, capture_output=True, text=True).stdout.strip()
    rows = []
    try:
        for turn in range(rounds):
            for build, binary in (builds if turn % 2 == 0 else builds[::-1]):
                for name, count, shared in CONFIGURATIONS:
                    nodes = [Node(url if shared else None, binary) for _ in range(count)]
                    try:
                        result = run(name, nodes, 1000, 1000, 0)
                    finally:
                        for node in nodes:
                            node.stop()
                    result.update(build=build, turn=turn)
                    rows.append(result)
    finally:
        subprocess.run([script, "stop", postgres_dir], check=False)
    with open(os.path.join(out, "compare.json"), "w") as f:
        json.dump({"machine": hub.machine(), "runs": rows, "elapsed_seconds": time.time() - started}, f, indent=1)
    m = hub.machine()
    lines = [COMPARE_BEGIN, "", "### This build against another, bursts in alternating turns", "",
             f"Measured {m['date']} on {m['cpu']} ({m['cores']} cores). Command: `.venv/bin/python "
             f"benchmarks/cluster.py --against OTHER/.build/release/parley --rounds {rounds}` "
             f"({(time.time() - started) / 60:.0f} min): 1,000 subscribers, 1,000 events as fast as one publisher "
             "goes, each configuration on each build once per turn, the builds' order swapped every turn. Medians "
             "over the turns, every turn's figure in brackets.", "",
             "| configuration | build | events/s | server CPU per message | p99 |", "|---|---|---|---|---|"]

    def median(values):
        values = sorted(values)
        return values[len(values) // 2] if len(values) % 2 else (values[len(values) // 2 - 1] + values[len(values) // 2]) / 2

    for name, _, _ in CONFIGURATIONS:
        for build, _ in builds:
            mine = [r for r in rows if r["configuration"] == name and r["build"] == build]
            rates = [r["events"] / r["seconds"] for r in mine]
            cpu = [r["server_cpu_us_per_message"] for r in mine]
            p99 = [r["latency_ms"]["p99"] for r in mine]
            lines.append(f"| {name} | {build} | {median(rates):,.0f} ({', '.join(f'{x:,.0f}' for x in rates)}) | "
                         f"{median(cpu):.2f} µs ({', '.join(f'{x:.2f}' for x in cpu)}) | "
                         f"{median(p99):,.0f} ms ({', '.join(f'{x:,.0f}' for x in p99)}) |")
    lines += ["", COMPARE_END]
    write_section(COMPARE_BEGIN, COMPARE_END, "\n".join(lines))


def write_report(results, quick):
    m = results["machine"]
    lines = [BEGIN, "", "## Several nodes on PostgreSQL (`benchmarks/cluster.py`)", "",
             f"Measured {m['date']} on {m['cpu']} ({m['cores']} cores), {m['os']}; {m['swift']}; PostgreSQL "
             f"{m.get('postgresql', '?')} (Debian's, fsync off, on the same machine). Command: "
             f"`.venv/bin/python benchmarks/cluster.py`{' --quick' if quick else ''} "
             f"({results['elapsed_seconds'] / 60:.0f} min). Each row is the run with the median p50 of its "
             "repeats, taken in turns with the other configurations. Release builds; the nodes, PostgreSQL and the load "
             "generator share the 2 cores. Events are published on the first node; with two nodes half the "
             "subscribers watch the second, which learns of each commit by LISTEN/NOTIFY and reads the events "
             "from the shared log.", "",
             "| configuration | publishing | events/s | messages/s | lost | all delivered after | server CPU (all nodes) "
             "| per message | generator CPU | PostgreSQL CPU | latency p50 | p99 | max | p99 over the repeats | "
             "p50 / p99 on the publishing node | on the other node |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results["runs"]:
        lat = r["latency_ms"]
        pace = "as fast as it goes" if not r["interval_us"] else f"one event every {r['interval_us'] / 1000:g} ms"
        by = r.get("latency_ms_by_ws")
        split = (f"{by[0]['p50']:.1f} / {by[0]['p99']:.1f} ms | {by[1]['p50']:.1f} / {by[1]['p99']:.1f} ms"
                 if by else "— | —")
        lines.append(f"| {r['configuration']} | {pace} | {r['events'] / r['seconds']:,.0f} | "
                     f"{r['messages_per_second']:,.0f} | {r['lost']:,} | {r['seconds']:.2f} s | "
                     f"{r['server_cpu_seconds']:.2f} s | {r['server_cpu_us_per_message']:.2f} µs | "
                     f"{r['generator_cpu_seconds']:.2f} s | "
                     + (f"{r['postgres_cpu_seconds']:.2f} s | " if "postgres_cpu_seconds" in r and r["nodes"] and "PostgreSQL" in r["configuration"] else "— | ")
                     + f"{lat['p50']:.1f} ms | {lat['p99']:.1f} ms | {lat['max']:.1f} ms | "
                     + (f"{r['p99_range_ms'][0]:.0f}–{r['p99_range_ms'][1]:.0f} ms ({r['repeats']} runs)"
                        if "p99_range_ms" in r else "—")
                     + f" | {split} |")

    def find(name, interval):
        return next((r for r in results["runs"] if r["configuration"] == name and r["interval_us"] == interval), None)

    one, two = find("one node, PostgreSQL", 10000), find("two nodes, PostgreSQL", 10000)
    if one and two and two.get("latency_ms_by_ws"):
        other = two["latency_ms_by_ws"][1]
        lines += ["", f"Added latency of the second node, paced at one event every 10 ms: p50 "
                  f"{other['p50'] - one['latency_ms']['p50']:+.1f} ms, p99 {other['p99'] - one['latency_ms']['p99']:+.1f} ms "
                  "against one node on the same database (the notification round trip and one read of the log per "
                  "wake-up, which batches whatever committed meanwhile)."]
    burst_one, burst_two = find("one node, PostgreSQL", 0), find("two nodes, PostgreSQL", 0)
    if burst_one and burst_two and burst_two.get("latency_ms_by_ws"):
        mine, other = burst_two["latency_ms_by_ws"]
        busy = burst_two["server_cpu_seconds"] + burst_two["generator_cpu_seconds"] + burst_two.get(
            "postgres_cpu_seconds", 0)
        lines += ["", f"Bursts, as fast as one publisher goes: two nodes delivered "
                  f"{burst_two['events'] / burst_two['seconds']:,.0f} events/s "
                  f"({burst_two['messages_per_second']:,.0f} messages/s) against "
                  f"{burst_one['events'] / burst_one['seconds']:,.0f} for one node, with no loss. The publisher's "
                  "rate is bounded by one commit per event (each publish awaits its own). Burst latency here measures "
                  f"this machine more than the design: over the two-node burst the servers, the generator and "
                  f"PostgreSQL used {busy:.1f} s of CPU in {burst_two['seconds']:.1f} s on 2 cores, so messages wait in "
                  f"queues on both nodes (p99 {mine['p99']:.0f} ms on the publishing node, {other['p99']:.0f} ms on the "
                  "other), and the figures vary widely from run to run (the repeats column). A fair burst figure needs "
                  "the generator and the database on machines of their own."]
    lines += ["", "![latency, one node and two](cluster-latency.png)", "", END]
    write_section(BEGIN, END, "\n".join(lines))


def rewrite_report():
    """Rewrites the Docs section from the last run's results (no new measurement)."""
    write_report(json.load(open(os.path.join(ROOT, "bench-output", "cluster", "results.json"))), False)


if __name__ == "__main__":
    if "--report-only" in sys.argv:
        rewrite_report()
    else:
        main()
