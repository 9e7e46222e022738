#!/usr/bin/env python3
"""The WebSocket hub under load, side by side with the seed design's stack in one run, with
the same load generator (benchmarks/load, `parley-load`: Hummingbird's WebSocket client on
SwiftNIO) against both:

- Parley: `parley serve --development` (release build), events numbered, persisted to SQLite
  and broadcast;
- the peer: benchmarks/peers/fastapi_hub.py under uvicorn (uvloop, httptools, websockets):
  a list of sockets per meeting, each send awaited in turn, JSON encoded per recipient.

Scenarios: fan-out (N subscribers to one meeting, a burst of M events published by one
request; server CPU per delivered message from /proc/PID/stat, publish-to-receipt latency
from the `t<ns>` stamp in each event, loss); idle connections (server RSS with 10,000
authenticated sockets); mass reconnect (1,000 clients reconnect at once with `since`).

Writes its section of Docs/benchmarks.md (between the hub markers), Docs/hub-latency.png,
and raw results in bench-output/hub/.

  .venv/bin/python benchmarks/hub.py [--quick]
"""
import argparse
import datetime
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time

from common import LOAD, PARLEY, ROOT, cpu_name, free_port, http, wait_port, write_section

PLOT = os.path.join(ROOT, "Docs", "hub-latency.png")
BEGIN, END = "<!-- hub:begin -->", "<!-- hub:end -->"
COMPRESSION_BEGIN, COMPRESSION_END = "<!-- hub-compression:begin -->", "<!-- hub-compression:end -->"


class Parley:
    name = "Parley"

    def __init__(self, users=1):
        self.port = free_port()
        self.data = tempfile.mkdtemp(prefix="parley-hub-bench-")
        self.proc = subprocess.Popen(
            [PARLEY, "serve", "--port", str(self.port), "--data-dir", self.data, "--development",
             "--set", "server.bcrypt_cost=4", "--set", "server.max_connections_per_user=1000000",
             "--set", "server.connect_attempts_per_user=10000000",
             "--set", "server.connect_attempts_per_address=10000000",
             "--set", "server.access_token_ttl=86400"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "PARLEY_LOG_LEVEL": "error"})
        wait_port(self.port, self.proc)
        base = f"http://127.0.0.1:{self.port}"
        self.tokens = []
        for i in range(users):
            http("POST", base + "/api/auth/register", {"username": f"user{i}", "password": "benchmark"})
            self.tokens.append(http("POST", base + "/api/auth/login",
                                    {"username": f"user{i}", "password": "benchmark"})["access_token"])
        self.token = self.tokens[0]
        self.meeting = http("POST", base + "/api/meetings", {"title": "bench"}, self.token)["id"]
        for i in range(1, users):
            http("POST", base + f"/api/meetings/{self.meeting}/members", {"username": f"user{i}"}, self.token)
        self.ws = f"ws://127.0.0.1:{self.port}/ws/meeting/{self.meeting}"
        self.publish = f"{base}/api/dev/meetings/{self.meeting}/events"

    def ws_url(self):
        return f"{self.ws}?token={self.token}"

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)
        shutil.rmtree(self.data, ignore_errors=True)


class Peer:
    name = "FastAPI + uvicorn (seed design)"

    def __init__(self):
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "fastapi_hub:app", "--port", str(self.port), "--log-level", "error",
             "--ws-max-queue", "100000"],
            cwd=os.path.join(ROOT, "benchmarks", "peers"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port, self.proc)
        self.token = None
        self.tokens = []
        self.ws = f"ws://127.0.0.1:{self.port}/ws/meeting/m_bench"
        self.publish = f"http://127.0.0.1:{self.port}/api/dev/meetings/m_bench/events"

    def ws_url(self):
        return self.ws + "?token=none"

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)


def load(*args):
    p = subprocess.run([LOAD, *map(str, args)], capture_output=True, text=True, timeout=900)
    if p.returncode != 0:
        raise RuntimeError(f"parley-load {' '.join(map(str, args))} failed: {p.stderr[-600:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def fanout(server, subscribers, events, size=120, interval_us=0, words=False, deflate=False):
    args = ["fanout", "--ws", server.ws_url(), "--publish", server.publish, "--subscribers", subscribers,
            "--events", events, "--size", size, "--interval-us", interval_us, "--pid", server.proc.pid]
    if server.token:
        args += ["--token", server.token]
    if words:
        args.append("--words")
    if deflate:
        args.append("--deflate")
    return load(*args)


def compression(subscribers, events):
    """permessage-deflate, side by side: events as the pipeline makes them (a sentence with every
    word timed and scored, about 1 KB of JSON), to `subscribers` clients that offer deflate with no
    context takeover, and to clients that do not; bytes on the wire counted by the clients, server
    CPU per delivered message from /proc."""
    rows = []
    # As fast as the publisher goes, then paced at one event every 10 ms (below what the machine
    # can do: the latency of one event, not of a queue).
    for interval, make, deflate in [(i, m, d) for i in (0, 10000) for m in (Parley, Peer) for d in (False, True)]:
        server = make()
        try:
            fanout(server, 20, 20, words=True, deflate=deflate)  # warm up
            result = fanout(server, subscribers, events, words=True, deflate=deflate, interval_us=interval)
        finally:
            server.stop()
        result["server"] = server.name
        rows.append(result)
        print(f"compression {server.name:32} every {interval} us, deflate {deflate}: {result['deflate_negotiated']} negotiated, "
              f"{result['wire_bytes'] / max(1, result['received']):.0f} B/msg on the wire "
              f"({result['payload_bytes'] / max(1, result['received']):.0f} B read), "
              f"{result['server_cpu_us_per_message']:.2f} us/msg, lost {result['lost']}", flush=True)
    return rows


def machine():
    cpu = cpu_name()
    swift = subprocess.run(["swift", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    import fastapi
    import uvicorn
    return {"cpu": cpu, "cores": os.cpu_count(), "os": platform.platform(), "swift": swift,
            "python": platform.python_version(), "fastapi": fastapi.__version__, "uvicorn": uvicorn.__version__,
            "date": datetime.date.today().isoformat()}


def plot(results, path, title="1,000 subscribers, 1,000 events: latency distribution", target_ms=10):
    """Cumulative latency distributions, one line per (name, result)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name, result in results:
        sample = sorted(result["latency_sample_ms"])
        if not sample:
            continue
        ys = [i / len(sample) for i in range(1, len(sample) + 1)]
        ax.plot(sample, ys, label=name)
    ax.set_xscale("log")
    ax.set_xlabel("publish-to-receipt latency (ms, log scale)")
    ax.set_ylabel("share of messages")
    ax.set_title(title)
    if target_ms:
        ax.axvline(target_ms, color="grey", linestyle=":", label=f"target p99 {target_ms} ms")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def prepare(skip_build):
    """As many open files as allowed (thousands of sockets), and the release builds."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if not skip_build:
        for product in ("parley", "parley-load"):
            subprocess.run(["swift", "build", "-c", "release", "--product", product], cwd=ROOT, check=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="smaller loads, for trying the script")
    parser.add_argument("--skip-build", action="store_true")
    parser.add_argument("--only", choices=["compression"],
                        help="run this scenario alone, into the last run's results (bench-output/hub)")
    args = parser.parse_args()
    prepare(args.skip_build)
    out = os.path.join(ROOT, "bench-output", "hub")
    os.makedirs(out, exist_ok=True)
    if args.only == "compression":
        rows = compression(*((50, 200) if args.quick else (100, 1000)))
        with open(os.path.join(out, "compression.json"), "w") as f:
            json.dump({"machine": machine(), "rows": rows}, f, indent=1)
        write_compression_report(rows, machine())
        return
    started = time.time()
    subscribers, events = (200, 200) if args.quick else (1000, 1000)
    idle = 2000 if args.quick else 10000
    results = {"machine": machine(), "fanout": [], "idle": {}, "reconnect": {}}

    # Fan-out, side by side: the target load as fast as the publisher goes, the same paced at one
    # event every 2 ms and every 10 ms, and a lighter one.
    for subs, evs, interval in [(subscribers, events, 0), (subscribers, events, 2000), (subscribers, events, 10000),
                                (100, 1000, 0)]:
        for make in (Parley, Peer):
            server = make()
            try:
                fanout(server, 50, 20)  # warm up
                result = fanout(server, subs, evs, interval_us=interval)
            finally:
                server.stop()
            result["server"] = server.name
            results["fanout"].append(result)
            print(f"fanout {server.name:32} {subs}x{evs} every {interval} us: "
                  f"{result['server_cpu_us_per_message']:.2f} us/msg, "
                  f"{result['messages_per_second']:.0f} msg/s, p99 {result['latency_ms']['p99']:.1f} ms, "
                  f"lost {result['lost']}", flush=True)

    compressed = compression(*((50, 200) if args.quick else (100, 1000)))
    with open(os.path.join(out, "compression.json"), "w") as f:
        json.dump({"machine": results["machine"], "rows": compressed}, f, indent=1)

    # Idle connections: 10,000 authenticated sockets spread over 10 users.
    server = Parley(users=10)
    try:
        args_idle = ["idle", "--ws", server.ws, "--tokens", ",".join(server.tokens), "--connections", idle,
                     "--hold", 5, "--pid", server.proc.pid]
        results["idle"]["parley"] = load(*args_idle)
    finally:
        server.stop()
    peer = Peer()
    try:
        results["idle"]["peer"] = load("idle", "--ws", peer.ws_url(), "--connections", idle, "--hold", 5,
                                       "--pid", peer.proc.pid)
    finally:
        peer.stop()
    for key, value in results["idle"].items():
        print(f"idle {key}: {value}", flush=True)

    # 1,000 clients reconnect at once with `since`.
    server = Parley()
    try:
        reconnect_args = ["reconnect", "--ws", server.ws_url(), "--publish", server.publish, "--token", server.token,
                          "--clients", 200 if args.quick else 1000, "--events", 100]
        results["reconnect"] = load(*reconnect_args)
    finally:
        server.stop()
    print(f"reconnect: {results['reconnect']}", flush=True)

    results["elapsed_seconds"] = time.time() - started
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    shown = [r for r in results["fanout"]
             if r["subscribers"] == subscribers and r["events"] == events and r["interval_us"] in (0, 10000)]
    plot([(f"{r['server']}, " + ("burst" if not r["interval_us"] else "one event / 10 ms"), r) for r in shown], PLOT)
    write_report(results, args.quick)
    write_compression_report(compressed, results["machine"])


def rewrite_report():
    """Rewrites the Docs section from the last run's results (no new measurement)."""
    results = json.load(open(os.path.join(ROOT, "bench-output", "hub", "results.json")))
    write_report(results, False)


def write_report(results, quick):
    m = results["machine"]
    lines = [BEGIN, "", "## The WebSocket hub (`benchmarks/hub.py`)", ""]
    lines.append(f"Measured {m['date']} on {m['cpu']} ({m['cores']} cores), {m['os']}; {m['swift']}; "
                 f"Python {m['python']}, FastAPI {m['fastapi']}, uvicorn {m['uvicorn']} (uvloop, httptools). "
                 f"Command: `.venv/bin/python benchmarks/hub.py`{' --quick' if quick else ''} "
                 f"({results['elapsed_seconds'] / 60:.0f} min). Parley is the release build; both servers and the load "
                 "generator share the machine's 2 cores, so every figure includes the generator's competition for CPU.")
    lines += ["", "### Fan-out: one meeting, a burst of events", "",
              "| server | subscribers × events | publishing | publisher done after | delivered | lost | "
              "all delivered after | server CPU per message | generator CPU | messages/s | latency p50 | p99 | max |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results["fanout"]:
        lat = r["latency_ms"]
        pace = "as fast as it goes" if not r["interval_us"] else f"one event every {r['interval_us'] / 1000:g} ms"
        published = f"{r['publish_seconds']:.2f} s" if "publish_seconds" in r else "—"
        generator = f"{r['generator_cpu_seconds']:.2f} s" if "generator_cpu_seconds" in r else "—"
        lines.append(f"| {r['server']} | {r['subscribers']:,} × {r['events']:,} | {pace} | {published} | "
                     f"{r['received']:,} | {r['lost']:,} | {r['seconds']:.2f} s | "
                     f"{r['server_cpu_us_per_message']:.2f} µs | {generator} | {r['messages_per_second']:,.0f} | "
                     f"{lat['p50']:.1f} ms | {lat['p99']:.1f} ms | {lat['max']:.1f} ms |")
    lines += ["", "Latency is from the moment the server handed the event to its hub (Parley: before it is persisted) "
              "to the moment the client read it. Server CPU is user + system time of the server process over the "
              "burst, from /proc, divided by the messages delivered.", "",
              "How to read the latency: the seed design's publisher awaits every send of an event before it "
              "publishes the next, so its bursts are paced by delivery and its latency is one event's fan-out, "
              "while its burst takes the longest to deliver. Parley's publisher never waits for a subscriber: a "
              "burst is numbered and persisted as fast as the database commits (\"publisher done after\") and "
              "queues behind the sockets, so an event's latency is mostly the time it waits behind earlier events "
              "of the same burst, about \"all delivered after\" minus \"publisher done after\" for the last ones. "
              "Paced publishing, below the machine's capacity, shows the fan-out of one event. \"Generator CPU\" is "
              "the load generator's own CPU over the same window: it shares the 2 cores with the server.", "",
              "![latency distribution](hub-latency.png)", "", "### Idle connections", "",
              "| server | connections | connected | connecting them took | server RSS before | with the connections |",
              "|---|---|---|---|---|---|"]
    for key, name in (("parley", "Parley (10 users, authenticated)"), ("peer", "FastAPI + uvicorn (no auth)")):
        r = results["idle"].get(key)
        if r:
            lines.append(f"| {name} | {r['connections']:,} | {r['connected']:,} | {r['connect_seconds']:.1f} s | "
                         f"{r['server_rss_mb_before']:.0f} MB | "
                         f"{r['server_rss_mb']:.0f} MB |")
    r = results["reconnect"]
    target = next((x for x in results["fanout"] if x["server"] == "Parley" and x["subscribers"] == 1000
                   and x["events"] == 1000 and not x["interval_us"]), None)
    peer = next((x for x in results["fanout"] if x["server"] != "Parley" and x["subscribers"] == 1000
                 and x["events"] == 1000 and not x["interval_us"]), None)
    paced = next((x for x in results["fanout"] if x["server"] == "Parley" and x["subscribers"] == 1000
                  and x["events"] == 1000 and x["interval_us"] == 10000), None)
    paced_peer = next((x for x in results["fanout"] if x["server"] != "Parley" and x["subscribers"] == 1000
                       and x["events"] == 1000 and x["interval_us"] == 10000), None)
    paced_text = ""
    if paced and paced_peer:
        paced_text = (f"Paced at one event every 10 ms (100,000 messages/s, about twice what the seed design "
                      f"delivers at most): p99 {paced['latency_ms']['p99']:.0f} ms, against "
                      f"{paced_peer['latency_ms']['p99']:.0f} ms for the seed design.")
    idle = results["idle"].get("parley")
    if target and peer and idle:
        def mark(ok):
            return "met" if ok else "**missed**"
        cpu, lat = target["server_cpu_us_per_message"], target["latency_ms"]["p99"]
        lines += ["", "### Against the targets", "",
                  f"- Server CPU per delivered message ≤ 2 µs and ≥ 10x less than the seed design: {cpu:.2f} µs, "
                  f"{peer['server_cpu_us_per_message'] / cpu:.1f}x less ({mark(cpu <= 2 and peer['server_cpu_us_per_message'] / cpu >= 10)}).",
                  f"- 1,000 subscribers, burst of 1,000 events, zero loss: {target['lost']:,} lost ({mark(target['lost'] == 0)}).",
                  f"- p99 publish-to-receipt ≤ 10 ms on that burst: {lat:.0f} ms ({mark(lat <= 10)}). Publishing the "
                  f"{target['received']:,} messages took {target.get('publish_seconds', 0):.2f} s and the last one "
                  f"arrived after {target['seconds']:.2f} s, so delivery kept pace with the publisher overall; but "
                  f"over the burst the server used {target['server_cpu_seconds']:.2f} s of CPU and the generator "
                  f"{target.get('generator_cpu_seconds', 0):.2f} s, of the {2 * target['seconds']:.2f} s the 2 cores "
                  f"had: the machine was saturated, and the latency is the time messages waited in queues (the "
                  f"server's, the kernel's socket buffers, the generator's). " + paced_text,
                  f"- 10,000 idle authenticated connections in ≤ 250 MB RSS: {idle['server_rss_mb']:.0f} MB "
                  f"({mark(idle['server_rss_mb'] <= 250 and idle['connected'] == idle['connections'])}).",
                  f"- 1,000 clients reconnecting at once with `since` all recover every missed event: "
                  f"{r['recovered_completely']:,} of {r['clients']:,} ({mark(r['recovered_completely'] == r['clients'])})."]
    lines += ["", "### Mass reconnect with `since` (Parley)", "",
              f"{r['clients']:,} clients each saw {r['missed_events']} events live, disconnected, "
              f"{r['missed_events']} more events were published, and all reconnected at once with "
              f"`since=<last offset seen>`: {r['recovered_completely']:,} of {r['clients']:,} received exactly the "
              f"missed events in order (no gap, no duplicate) in {r['seconds']:.1f} s; {r['failed']} failed to connect.",
              "", END]
    write_section(BEGIN, END, "\n".join(lines))


def write_compression_report(rows, cm):
    """The compression section (its own markers, after the hub's)."""
    lines = [COMPRESSION_BEGIN, ""]
    first = rows[0]
    lines += ["### Compression: permessage-deflate (`benchmarks/hub.py`)", "",
              f"Measured {cm['date']}, `.venv/bin/python benchmarks/hub.py --only compression` (also part of the "
              f"full run). {first['subscribers']} subscribers, a burst of {first['events']:,} events as the "
              "pipeline makes them (a sentence of meeting talk with every word's times and confidence, about "
              "1 KB of JSON), to clients that offer permessage-deflate with no context takeover either way "
              "and to clients that offer nothing. Bytes on the wire are the frames the clients read over the "
              "burst (headers included, TCP/IP not), counted by the load generator, which also inflates.", "",
              "| server | publishing | clients offer deflate | negotiated | messages | on the wire per message | "
              "read per message (inflated) | saved | server CPU per message | generator CPU | all delivered after | "
              "latency p50 | p99 |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        received = max(1, r["received"])
        wire, read = r["wire_bytes"] / received, r["payload_bytes"] / received
        pace = "burst" if not r["interval_us"] else f"every {r['interval_us'] / 1000:g} ms"
        saved = f"{100 * (1 - wire / read):.0f}%" if r["deflate_negotiated"] else "—"
        lines.append(f"| {r['server']} | {pace} | {'yes' if r['deflate_offered'] else 'no'} | "
                     f"{r['deflate_negotiated']:,} of {r['subscribers']:,} | {r['received']:,} | {wire:,.0f} B | "
                     f"{read:,.0f} B | {saved} | {r['server_cpu_us_per_message']:.2f} µs | "
                     f"{r['generator_cpu_seconds']:.2f} s | {r['seconds']:.2f} s | {r['latency_ms']['p50']:.1f} ms | "
                     f"{r['latency_ms']['p99']:.1f} ms |")
    lines += ["", "In a burst the generator shares the 2 cores with the server and, with deflate, inflates every "
              "message of every client itself (see its CPU): a burst's latency then includes the clients' own "
              "decompression queueing on the same machine. Paced below the machine's capacity, the latency is one "
              "event's fan-out, compressed or not."]
    parley = [r for r in rows if r["server"] == "Parley" and not r["interval_us"]]
    if len(parley) == 2:
        plain, deflated = sorted(parley, key=lambda r: r["deflate_offered"])
        lines += ["", f"Parley sends {100 * (1 - deflated['wire_bytes'] / max(1, plain['wire_bytes'])):.0f}% fewer "
                  f"bytes with deflate for {deflated['server_cpu_us_per_message'] - plain['server_cpu_us_per_message']:+.2f} µs "
                  "of server CPU per delivered message: a message is compressed once per event loop (no context "
                  "takeover makes its compressed bytes the same for every subscriber), not once per connection, "
                  "and a connection holds no compression state. The seed design's server (uvicorn's "
                  "`websockets`) compresses each message once per connection."]
    lines += ["", COMPRESSION_END]
    write_section(COMPRESSION_BEGIN, COMPRESSION_END, "\n".join(lines))


if __name__ == "__main__":
    if "--report-only" in sys.argv:
        rewrite_report()
    else:
        main()
