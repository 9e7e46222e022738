#!/usr/bin/env python3
"""Live processing from the command line: a generated meeting fed at real time as raw PCM into
`parley process - --raw s16le:16000:1 --events` (what `arecord ... | parley process -` does), with
the default plugins (whisper tiny.en; the default diarizer at the end).

Figures: speech to screen, for every transcript segment, from the moment its words are spoken (its
start and its end in the recording, fed at real time) to the moment its event is printed; how far
behind the processing falls over the meeting; CPU used (parley and its workers) per second of
audio; the time from the end of the input to the completed meeting.

Writes its section of Docs/benchmarks.md (between the live markers), Docs/live-latency.png and
raw results in bench-output/live/.

  .venv/bin/python benchmarks/live.py [--quick] [--skip-build]
"""
import argparse
import json
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import PARLEY, ROOT, cpu_name, make_meeting, run, write_section  # noqa: E402

OUT = os.path.join(ROOT, "bench-output", "live")
PLOT = os.path.join(ROOT, "Docs", "live-latency.png")
BEGIN, END = "<!-- live:begin -->", "<!-- live:end -->"
RATE = 16000
CHUNK = RATE // 10 * 2  # 100 ms of s16le mono


def percentile(values, p):
    values = sorted(values)
    if not values:
        return float("nan")
    k = (len(values) - 1) * p / 100
    f = int(k)
    return values[f] + (values[min(f + 1, len(values) - 1)] - values[f]) * (k - f)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="a one-minute meeting")
    parser.add_argument("--skip-build", action="store_true")
    args = parser.parse_args()
    if not args.skip_build:
        run(["swift", "build", "-c", "release", "--product", "parley"], cwd=ROOT)
    os.makedirs(OUT, exist_ok=True)
    repeat = 1 if args.quick else 5
    meeting = make_meeting(os.path.join(OUT, f"standup-x{repeat}"), "--repeat", str(repeat))
    pcm_path = os.path.join(meeting, "meeting.pcm")
    if not os.path.exists(pcm_path):
        run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-i", os.path.join(meeting, "meeting.wav"),
             "-f", "s16le", "-ac", "1", "-ar", str(RATE), pcm_path])
    pcm = open(pcm_path, "rb").read()
    audio_seconds = len(pcm) / 2 / RATE

    proc = subprocess.Popen([PARLEY, "process", "-", "--raw", f"s16le:{RATE}:1", "--events", "--out",
                             os.path.join(OUT, "minutes"), "--title", "live"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    started = {}
    seen = {}
    completed = {}

    def feed():
        t0 = time.monotonic()
        started["t0"] = t0
        for i, at in enumerate(range(0, len(pcm), CHUNK)):
            delay = t0 + i * 0.1 - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            proc.stdin.write(pcm[at:at + CHUNK])
            proc.stdin.flush()
        started["input_end"] = time.monotonic()
        proc.stdin.close()

    def read():
        for line in proc.stdout:
            now = time.monotonic()
            try:
                event = json.loads(line)
            except ValueError:
                continue
            data = event.get("data") or {}
            if event.get("type") == "transcript" and data.get("id") not in seen and "t0" in started:
                seen[data["id"]] = {"start": data["start"], "end": data["end"], "printed": now - started["t0"]}
            if event.get("type") == "status" and data.get("stage") == "completed":
                completed["at"] = now

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
    cpu = usage.ru_utime + usage.ru_stime
    segments = sorted(seen.values(), key=lambda s: s["end"])
    from_end = [s["printed"] - s["end"] for s in segments]
    from_start = [s["printed"] - s["start"] for s in segments]
    result = {
        "machine": {"cpu": cpu_name(), "cores": os.cpu_count(), "date": time.strftime("%Y-%m-%d")},
        "audio_seconds": audio_seconds, "segments": segments, "cpu_seconds": cpu,
        "finish_after_input_seconds": completed.get("at", float("nan")) - started.get("input_end", float("nan")),
        "latency_from_end_s": {p: percentile(from_end, p) for p in (50, 95, 100)},
        "latency_from_start_s": {p: percentile(from_start, p) for p in (50, 95, 100)},
        # Keeping up: the median latency of the first and of the last third of the meeting.
        "first_third_p50_s": percentile(from_end[:max(1, len(from_end) // 3)], 50),
        "last_third_p50_s": percentile(from_end[-max(1, len(from_end) // 3):], 50),
    }
    with open(os.path.join(OUT, "results.json"), "w") as f:
        json.dump(result, f, indent=1)
    print(f"{len(segments)} segments; speech to screen from the end of a segment p50 {result['latency_from_end_s'][50]:.1f} s "
          f"p95 {result['latency_from_end_s'][95]:.1f} s max {result['latency_from_end_s'][100]:.1f} s; "
          f"CPU {cpu / audio_seconds:.2f} s per second of audio")
    plot(segments)
    write_report(result, args.quick)


def plot(segments):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.plot([s["end"] / 60 for s in segments], [s["printed"] - s["end"] for s in segments], "o-", ms=3,
            label="from the segment's last word")
    ax.plot([s["end"] / 60 for s in segments], [s["printed"] - s["start"] for s in segments], ".", ms=3,
            label="from the segment's first word")
    ax.axhline(2.5, color="grey", linestyle=":", label="target p50 2.5 s")
    ax.axhline(5, color="grey", linestyle="--", label="target p95 5 s")
    ax.set_xlabel("time in the meeting (min), fed at real time")
    ax.set_ylabel("speech to screen (s)")
    ax.set_title("parley process - at real time: when each transcript segment is printed")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(PLOT, dpi=110)


def write_report(r, quick):
    m = r["machine"]
    # (Percentile keys are strings once the results have been through JSON.)
    end = {int(k): v for k, v in r["latency_from_end_s"].items()}
    start = {int(k): v for k, v in r["latency_from_start_s"].items()}
    lines = [BEGIN, "", "## Live from standard input (`benchmarks/live.py`)", "",
             f"Measured {m['date']} on {m['cpu']} ({m['cores']} cores). Command: `.venv/bin/python benchmarks/live.py"
             f"{' --quick' if quick else ''}`. A generated meeting ({r['audio_seconds'] / 60:.1f} min) fed at real time "
             "in 100 ms chunks of raw PCM into `parley process - --raw s16le:16000:1 --events` (whisper tiny.en, the "
             "default diarizer at the end), on the same two cores as the feeder. Speech to screen: from the moment a "
             "segment's words were spoken (as fed) to the moment its `transcript` event was printed.", "",
             "| | p50 | p95 | max |", "|---|---|---|---|",
             f"| from the segment's last word | {end[50]:.1f} s | {end[95]:.1f} s | {end[100]:.1f} s |",
             f"| from the segment's first word | {start[50]:.1f} s | {start[95]:.1f} s | {start[100]:.1f} s |", "",
             f"{len(r['segments'])} segments. CPU of the parley process itself (decoding, features, voice activity, "
             f"events; its whisper worker is a process of its own and is not counted): {r['cpu_seconds']:.1f} s for "
             f"{r['audio_seconds']:.0f} s of audio. The "
             f"meeting was completed {r['finish_after_input_seconds']:.1f} s after the input ended (the last windows, "
             "the final diarization, alignment and summary). Keeping up: the median latency was "
             f"{r['first_third_p50_s']:.1f} s over the first third of the meeting and {r['last_third_p50_s']:.1f} s "
             "over the last (the plot shows every segment).", "",
             "![speech to screen over the meeting](live-latency.png)", "", END]
    write_section(BEGIN, END, "\n".join(lines))


if __name__ == "__main__":
    main()
