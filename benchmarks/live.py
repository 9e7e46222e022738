#!/usr/bin/env python3
"""Live recording: a generated meeting fed at real time, in 100 ms chunks of raw PCM (16 kHz mono
s16le), with the default plugins (whisper tiny.en; the default diarizer at the end), two ways:

- server: into `parley serve`'s ingest socket (/ws/meeting/{id}/ingest, what the Record button
  sends), the events read by a watcher on the meeting's WebSocket (another client, as a colleague
  following the meeting would);
- cli: into `parley process - --raw s16le:16000:1 --events` (what `arecord ... | parley process -`
  does), the events read from its output.

Speech to screen, for every word of the final transcript: from the moment it has been spoken
(its end in the recording, as fed) to the moment the first transcript event holding it reached
the watcher (or was printed): a provisional one (speech still going on) with the same word at
about the same time, or its own; the final transcript's latency is reported beside it. Keeping up: the word latency over the meeting (last third against the first), and how
far the server's decoded audio trailed the audio fed. CPU: the server (or parley) and its
workers (whisper), per second of audio.

Writes its section of Docs/benchmarks.md (between the live markers), Docs/live-latency.png and
raw results in bench-output/live/.

  .venv/bin/python benchmarks/live.py [--quick] [--minutes 30] [--skip-build]
"""
import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import PARLEY, ROOT, cpu_name, free_port, http, make_meeting, run, wait_port, write_section  # noqa: E402

OUT = os.path.join(ROOT, "bench-output", "live")
PLOT = os.path.join(ROOT, "Docs", "live-latency.png")
BEGIN, END = "<!-- live:begin -->", "<!-- live:end -->"
RATE = 16000
CHUNK = RATE // 10 * 2  # 100 ms of s16le mono
STANDUP_SECONDS = 57  # one repeat of the generated standup
# The defaults of pipeline.live_window, pipeline.live_window_pause and pipeline.live_silence.
LIVE_WINDOW, LIVE_PAUSE, LIVE_SILENCE = 3.5, 0.1, 0.3


def percentile(values, p):
    values = sorted(values)
    if not values:
        return float("nan")
    k = (len(values) - 1) * p / 100
    f = int(k)
    return values[f] + (values[min(f + 1, len(values) - 1)] - values[f]) * (k - f)


def meeting(repeat):
    """The generated standup repeated `repeat` times: its folder and its samples as raw PCM."""
    folder = make_meeting(os.path.join(OUT, f"standup-x{repeat}"), "--repeat", str(repeat))
    path = os.path.join(folder, "meeting.pcm")
    if not os.path.exists(path):
        run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-i", os.path.join(folder, "meeting.wav"),
             "-f", "s16le", "-ac", "1", "-ar", str(RATE), path])
    return folder, open(path, "rb").read()


def word_error_rate(reference, hypothesis):
    """Word error rate after lower-casing and dropping punctuation (a Levenshtein distance)."""
    import re
    ref = re.sub(r"[^a-z0-9' ]", " ", reference.lower()).split()
    hyp = re.sub(r"[^a-z0-9' ]", " ", hypothesis.lower()).split()
    row = list(range(len(hyp) + 1))
    for i in range(1, len(ref) + 1):
        previous, row[0] = row[:], i
        for j in range(1, len(hyp) + 1):
            row[j] = min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (ref[i - 1] != hyp[j - 1]))
    return row[-1] / max(1, len(ref))


def reference_text(folder):
    turns = json.load(open(os.path.join(folder, "reference.json")))["turns"]
    return " ".join(t["text"] for t in sorted(turns, key=lambda t: t["start"]))


def transcript_text(segments):
    return " ".join(s["text"] for s in sorted(segments, key=lambda s: s["start"]))


class Words:
    """When each word of the transcript first reached the reader. The words counted are those of
    the final (not provisional) transcript events; a word was on screen from the first event that
    held it: a provisional one with the same word at about the same time (within 0.5 s), or its
    own."""

    def __init__(self):
        self.first = {}
        self.shown = {}  # normalized word -> [(start, arrived)] from every transcript event

    @staticmethod
    def normal(text):
        return "".join(c for c in text.lower() if c.isalnum() or c == "'")

    def add(self, event, arrived):
        if event.get("type") != "transcript":
            return
        data = event.get("data") or {}
        for word in data.get("words") or []:
            text = self.normal(word["word"])
            self.shown.setdefault(text, []).append((word["start"], arrived))
            key = round(word["start"], 2)
            if not data.get("provisional") and key not in self.first:
                self.first[key] = {"start": word["start"], "end": word["end"], "text": text, "arrived": arrived}

    def latencies(self):
        """The words by their end; from each word's end to its first showing, and to its final event."""
        words = sorted(self.first.values(), key=lambda w: w["end"])
        for w in words:
            w["on_screen"] = min([a for start, a in self.shown.get(w["text"], []) if abs(start - w["start"]) <= 0.5]
                                 + [w["arrived"]])
        return words, [w["on_screen"] - w["end"] for w in words], [w["arrived"] - w["end"] for w in words]


def process_cpu(pid):
    """CPU seconds of a process and all its descendants still running (from /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    children = {}
    stats = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        stats[int(entry)] = (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
        children.setdefault(int(fields[1]), []).append(int(entry))
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        total += stats.get(p, 0.0)
        todo += children.get(p, [])
    return total


SETTINGS = []  # --set KEY=VALUE for parley, from the command line


def settings_args():
    return [a for kv in SETTINGS for a in ("--set", kv)]


def via_server(pcm):
    """The ingest socket and a watcher, against `parley serve` on the embedded SQLite."""
    import websockets

    data = tempfile.mkdtemp(prefix="parley-live-bench-")
    port = free_port()
    log = open(os.path.join(OUT, "server.log"), "w")
    proc = subprocess.Popen([PARLEY, "serve", "--port", str(port), "--data-dir", data, "--set", "server.bcrypt_cost=4",
                             *settings_args()],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_port(port, proc, 60)
        base = f"http://127.0.0.1:{port}"
        http("POST", base + "/api/auth/register", {"username": "bench", "password": "bench password"})

        def login():
            # A fresh access token (they expire during a long run).
            return http("POST", base + "/api/auth/login", {"username": "bench", "password": "bench password"})[
                "access_token"]

        token = login()
        meeting = http("POST", base + "/api/meetings", {"title": "Live benchmark"}, token=token)["id"]
        words = Words()
        lag = []
        times = {}

        async def watch(ready):
            # As the web app does: when the access token expires (4001), log in again and
            # reconnect with `since`, so nothing is missed.
            offset = 0
            while True:
                url = f"ws://127.0.0.1:{port}/ws/meeting/{meeting}?token={login()}&since={offset}"
                try:
                    async with websockets.connect(url, max_size=1 << 24, ping_interval=None) as socket:
                        ready.set()
                        async for text in socket:
                            now = time.monotonic()
                            event = json.loads(text)
                            offset = max(offset, event.get("offset") or 0) if event.get("type") != "connected" else offset
                            if "t0" in times:
                                words.add(event, now - times["t0"])
                                if event.get("type") == "upload_progress":
                                    fed = min(len(pcm), max(0, (now - times["t0"]) * RATE * 2)) / RATE / 2
                                    lag.append((fed, fed - event["data"]["seconds"]))
                            if event.get("type") == "status" and event["data"].get("stage") in ("completed", "failed"):
                                times["completed"] = now
                                times["outcome"] = event["data"]["stage"]
                                return
                except websockets.exceptions.ConnectionClosed as closed:
                    if closed.rcvd is None or closed.rcvd.code != 4001:
                        raise

        async def feed():
            async with websockets.connect(f"ws://127.0.0.1:{port}/ws/meeting/{meeting}/ingest?token={token}",
                                          max_size=1 << 20, ping_interval=None) as socket:
                async def drain():
                    async for text in socket:
                        if json.loads(text).get("type") == "stopped":
                            return

                reader = asyncio.ensure_future(drain())
                t0 = time.monotonic()
                times["t0"] = t0
                for i, at in enumerate(range(0, len(pcm), CHUNK)):
                    delay = t0 + i * 0.1 - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    await socket.send(pcm[at:at + CHUNK])
                times["input_end"] = time.monotonic()
                times["cpu_at_end"] = process_cpu(proc.pid)
                await socket.send(json.dumps({"type": "stop"}))
                await reader

        async def both():
            ready = asyncio.Event()
            watcher = asyncio.ensure_future(watch(ready))
            await ready.wait()
            await feed()
            await watcher

        asyncio.run(both())
        cpu = process_cpu(proc.pid)
        segments = http("GET", f"{base}/api/meetings/{meeting}", token=login())["segments"]
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()
        shutil.rmtree(data, ignore_errors=True)
    if times.get("outcome") != "completed":
        raise RuntimeError(f"the live meeting ended {times.get('outcome')}; see {OUT}/server.log")
    return words, {"cpu_seconds": times["cpu_at_end"], "cpu_seconds_with_finish": cpu, "segments": segments,
                   "finish_after_input_seconds": times["completed"] - times["input_end"],
                   "decode_lag_max_s": max((l for _, l in lag), default=float("nan")),
                   "decode_lag": lag[::10]}


def via_cli(pcm):
    """`parley process -` reading standard input."""
    proc = subprocess.Popen([PARLEY, "process", "-", "--raw", f"s16le:{RATE}:1", "--events", "--out",
                             os.path.join(OUT, "minutes"), "--title", "live", *settings_args()],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    words = Words()
    times = {}

    def feed():
        t0 = time.monotonic()
        times["t0"] = t0
        for i, at in enumerate(range(0, len(pcm), CHUNK)):
            delay = t0 + i * 0.1 - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            proc.stdin.write(pcm[at:at + CHUNK])
            proc.stdin.flush()
        times["input_end"] = time.monotonic()
        times["cpu_at_end"] = process_cpu(proc.pid)
        proc.stdin.close()

    def read():
        for line in proc.stdout:
            now = time.monotonic()
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if "t0" in times:
                words.add(event, now - times["t0"])
            if event.get("type") == "status" and (event.get("data") or {}).get("stage") == "completed":
                times["completed"] = now

    errors = []
    drain = threading.Thread(target=lambda: errors.append(proc.stderr.read()))
    reader = threading.Thread(target=read)
    feeder = threading.Thread(target=feed)
    for thread in (drain, reader, feeder):
        thread.start()
    _, status, usage = os.wait4(proc.pid, 0)
    for thread in (feeder, reader, drain):
        thread.join()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"parley process - failed: {errors[0][-600:] if errors else ''}")
    segments = json.load(open(os.path.join(OUT, "minutes", "live.json")))["segments"]
    return words, {"cpu_seconds": times["cpu_at_end"], "segments": segments,
                   "finish_after_input_seconds": times.get("completed", float("nan")) - times["input_end"]}


def summarize(words, extra, audio_seconds, reference):
    listed, latency, final = words.latencies()
    third = max(1, len(latency) // 3)
    segments = extra.pop("segments")
    return {**extra, "audio_seconds": audio_seconds, "words": len(listed),
            "wer": word_error_rate(reference, transcript_text(segments)),
            "latency_s": {p: percentile(latency, p) for p in (50, 95, 100)},
            "final_latency_s": {p: percentile(final, p) for p in (50, 95, 100)},
            "provisional_share": sum(1 for w in listed if w["on_screen"] < w["arrived"]) / max(1, len(listed)),
            "first_third_p50_s": percentile(latency[:third], 50), "last_third_p50_s": percentile(latency[-third:], 50),
            "last_third_p95_s": percentile(latency[-third:], 95),
            "points": [(w["end"], w["on_screen"] - w["end"]) for w in listed]}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="one-minute meetings")
    parser.add_argument("--minutes", type=float, default=30, help="length of the server run's meeting")
    parser.add_argument("--cli-minutes", type=float, default=5, help="length of the command line run's meeting")
    parser.add_argument("--skip-build", action="store_true")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a parley setting for both runs, e.g. pipeline.live_window=3 (repeatable)")
    parser.add_argument("--only", choices=("server", "cli"), help="one path only (no report written)")
    args = parser.parse_args()
    SETTINGS.extend(args.set)
    if not args.skip_build:
        run(["swift", "build", "-c", "release", "--product", "parley"], cwd=ROOT)
    os.makedirs(OUT, exist_ok=True)
    minutes = {"server": 1 if args.quick else args.minutes, "cli": 1 if args.quick else args.cli_minutes}
    results = {"machine": {"cpu": cpu_name(), "cores": os.cpu_count(), "date": time.strftime("%Y-%m-%d")},
               "arguments": " ".join(a for a in sys.argv[1:] if a != "--skip-build")}
    file_wer = {}
    for name, run_one in (("server", via_server), ("cli", via_cli)):
        if args.only and name != args.only:
            continue
        folder, pcm = meeting(max(1, round(minutes[name] * 60 / STANDUP_SECONDS)))
        words, extra = run_one(pcm)
        r = summarize(words, extra, len(pcm) / 2 / RATE, reference_text(folder))
        results[name] = r
        print(f"{name}: {r['words']} words over {r['audio_seconds'] / 60:.1f} min; speech to screen p50 "
              f"{r['latency_s'][50]:.2f} s, p95 {r['latency_s'][95]:.2f} s, max {r['latency_s'][100]:.1f} s "
              f"(final transcript p50 {r['final_latency_s'][50]:.2f} s, p95 {r['final_latency_s'][95]:.2f} s; "
              f"{r['provisional_share']:.0%} of words shown first by a provisional one); "
              f"WER {r['wer']:.1%}; CPU {r['cpu_seconds'] / r['audio_seconds']:.3f} s per second of audio", flush=True)
        # The same meeting from its file (windows of up to 25 s): what the short live windows cost.
        # (Repeats of the standup shuffle its words, which costs whisper's language model a lot:
        # compare the live WER with this one, not with another meeting's.)
        if folder not in file_wer:  # (both paths have the same meeting with --quick)
            out = os.path.join(OUT, "file")
            run([PARLEY, "process", os.path.join(folder, "meeting.wav"), "--out", out, *settings_args()])
            segments = json.load(open(os.path.join(out, "meeting.json")))["segments"]
            file_wer[folder] = word_error_rate(reference_text(folder), transcript_text(segments))
        r["file_wer"] = file_wer[folder]
        print(f"the same meeting from its file: WER {r['file_wer']:.1%}", flush=True)
    if args.only or args.set:
        return  # an exploration: the report shows the defaults, both paths
    with open(os.path.join(OUT, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    plot(results)
    write_report(results)


def plot(results):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (over, spread) = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [2, 1]})
    for name, label, style in (("server", "ingest socket -> watcher", "."), ("cli", "parley process - (stdin)", "x")):
        points = results[name]["points"]
        over.plot([t / 60 for t, _ in points], [l for _, l in points], style, ms=2, alpha=0.6, label=label)
        latency = sorted(l for _, l in points)
        spread.plot(latency, [(i + 1) / len(latency) for i in range(len(latency))], label=label)
    for axis in (over,):
        axis.axhline(2.5, color="grey", linestyle=":", label="target p50 2.5 s")
        axis.axhline(5, color="grey", linestyle="--", label="target p95 5 s")
    over.set_xlabel("time in the meeting (min), fed at real time")
    over.set_ylabel("speech to screen per word (s)")
    over.set_title("Each word: from its end to the first transcript event showing it")
    over.grid(True, alpha=0.3)
    over.legend(fontsize=8)
    spread.axvline(2.5, color="grey", linestyle=":")
    spread.axvline(5, color="grey", linestyle="--")
    spread.set_xlabel("speech to screen (s)")
    spread.set_ylabel("fraction of words")
    spread.set_title("Distribution")
    spread.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(PLOT, dpi=110)


def write_report(results):
    m = results["machine"]
    arguments = " " + results["arguments"] if results["arguments"] else ""

    def row(name, label):
        r = results[name]
        lat = {int(k): v for k, v in r["latency_s"].items()}
        final = {int(k): v for k, v in r["final_latency_s"].items()}
        return (f"| {label} | {r['audio_seconds'] / 60:.1f} min | {r['words']} | {lat[50]:.2f} s | {lat[95]:.2f} s | "
                f"{lat[100]:.1f} s | {r['first_third_p50_s']:.2f} / {r['last_third_p50_s']:.2f} s | "
                f"{final[50]:.2f} / {final[95]:.2f} s | {r['provisional_share']:.0%} | {r['wer']:.1%} | "
                f"{r['file_wer']:.1%} | "
                f"{r['cpu_seconds'] / r['audio_seconds']:.3f} s | {r['finish_after_input_seconds']:.1f} s |")

    s = results["server"]
    lines = [BEGIN, "", "## Live recording (`benchmarks/live.py`)", "",
             f"Measured {m['date']} on {m['cpu']} ({m['cores']} cores). Command: `.venv/bin/python benchmarks/live.py"
             f"{arguments}`. A generated meeting fed at real time in 100 ms chunks of raw PCM (16 kHz mono s16le) with "
             "the default plugins (whisper tiny.en; the default diarizer at the end), all on the same two cores: into "
             "`parley serve`'s ingest socket (what the Record button sends) with the events read by a second client "
             "watching the meeting, and into `parley process - --raw s16le:16000:1 --events`. Speech to screen, "
             "per word of the final transcript: from the moment the word has been spoken (its end, as fed) to the "
             "moment the first transcript event holding it reached the watcher (or was printed): a provisional "
             "one (speech still going on; only with `pipeline.live_partial` set, off by default) with the same "
             "word within 0.5 s, or the final one. The final transcript's own latency and the share of words a "
             "provisional event showed first are beside it. Targets: p50 2.5 s, p95 5 s. (Runs with "
             "`--set pipeline.live_partial=N` print their figures without writing this section; the ones made "
             "are in \"Provisional transcripts\" below.)", "",
             "| path | meeting | words | p50 | p95 | max | p50 first / last third | final transcript p50 / p95 | "
             "shown first provisionally | WER live | WER from the file | "
             "CPU per s of audio | completed after the input ended |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
             row("server", "ingest socket -> watcher"), row("cli", "`parley process -`"), "",
             "CPU counts the server (or parley) and its whisper worker, up to the end of the input. A live window "
             f"holds at most `pipeline.live_window` ({LIVE_WINDOW} s) of speech (a talker who does not pause is cut "
             "at the quietest moment) and goes to the recognizer as soon as no more speech can join it (its "
             f"speech ends after `pipeline.live_silence`, {LIVE_SILENCE} s, of quiet; speech after a pause longer than "
             f"`pipeline.live_window_pause`, {LIVE_PAUSE} s, starts a new window). The price is accuracy: the word "
             "error rate (against the "
             "generator's script) of the live transcript is in the table, next to the same meeting's processed "
             "from its file (windows of up to 25 s). Meetings longer than the one-minute standup repeat it with "
             "each repeat's words shuffled, which whisper's language model finds much harder: that is why the "
             "long meeting's rates are higher. Keeping up: over the server run the decoded "
             f"audio trailed the audio fed by at most {s['decode_lag_max_s']:.1f} s, and the last third's p95 was "
             f"{s['last_third_p95_s']:.2f} s.", "",
             "![speech to screen per word over the meeting](live-latency.png)", "", END]
    write_section(BEGIN, END, "\n".join(lines))


if __name__ == "__main__":
    main()
