#!/usr/bin/env python3
"""Score a diarization against a reference with pyannote.metrics, and the
voice activity of Parley (and optionally webrtcvad) at frame level.

  score.py REF.rttm HYP.rttm [--json PARLEY.json] [--audio FILE --webrtcvad]

Prints one JSON object: DER with a 0.25 s collar, overlap scored (the
standard "fair" setting of pyannote.metrics), its components, the speaker
counts, and, with --json, the frame-level speech/non-speech accuracy of
Parley's speech segments against the union of the reference turns (10 ms
frames). With --webrtcvad, the same accuracy for webrtcvad at each of its
four aggressiveness modes (30 ms frames, scored at 10 ms).
"""
import argparse
import json
import sys

from pyannote.core import Annotation, Segment, Timeline
from pyannote.metrics.diarization import DiarizationErrorRate


def read_rttm(path):
    ann = Annotation()
    with open(path) as f:
        for i, line in enumerate(f):
            parts = line.split()
            if not parts or parts[0] != "SPEAKER":
                continue
            start, dur = float(parts[3]), float(parts[4])
            ann[Segment(start, start + dur), i] = parts[7]
    return ann


def frame_mask(segments, n, hop=0.01):
    mask = [False] * n
    for start, end in segments:
        a, b = max(0, int(round(start / hop))), min(n, int(round(end / hop)))
        for i in range(a, b):
            mask[i] = True
    return mask


def accuracy(ref_mask, hyp_mask):
    return sum(r == h for r, h in zip(ref_mask, hyp_mask)) / max(1, len(ref_mask))


def webrtc_segments(audio, mode):
    import soundfile
    import webrtcvad
    import numpy as np
    x, rate = soundfile.read(audio, dtype="int16", always_2d=True)
    x = x.mean(axis=1).astype(np.int16)
    if rate not in (8000, 16000, 32000, 48000):
        raise SystemExit(f"webrtcvad needs 8/16/32/48 kHz, got {rate}")
    vad = webrtcvad.Vad(mode)
    step = int(rate * 0.03)
    segs = []
    for i in range(0, len(x) - step + 1, step):
        if vad.is_speech(x[i:i + step].tobytes(), rate):
            segs.append((i / rate, (i + step) / rate))
    return segs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("reference")
    ap.add_argument("hypothesis")
    ap.add_argument("--json", help="parley diarize --json output, for the VAD score")
    ap.add_argument("--audio")
    ap.add_argument("--webrtcvad", action="store_true")
    a = ap.parse_args()

    ref, hyp = read_rttm(a.reference), read_rttm(a.hypothesis)
    metric = DiarizationErrorRate(collar=0.25, skip_overlap=False)
    detail = metric(ref, hyp, detailed=True)
    total = detail["total"] or 1.0
    out = {
        "der": detail["diarization error rate"],
        "missed": detail["missed detection"] / total,
        "false_alarm": detail["false alarm"] / total,
        "confusion": detail["confusion"] / total,
        "reference_speakers": len(ref.labels()),
        "hypothesis_speakers": len(hyp.labels()),
    }
    if a.json:
        with open(a.json) as f:
            parley = json.load(f)
        n = int(round(parley["duration"] / 0.01))
        ref_mask = frame_mask([(s.start, s.end) for s in ref.get_timeline().support()], n)
        out["vad_accuracy"] = accuracy(ref_mask, frame_mask([(s["start"], s["end"]) for s in parley["speech"]], n))
        if a.webrtcvad and a.audio:
            out["webrtcvad_accuracy"] = {
                str(mode): accuracy(ref_mask, frame_mask(webrtc_segments(a.audio, mode), n)) for mode in range(4)
            }
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    main()
