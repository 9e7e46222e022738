"""Parley's neural diarization worker: diarization.py behind the subprocess plugin protocol.

One process serves every meeting of a run: it loads both models once, answers the `hello`
handshake, then one `diarize` request per line on stdin with one response per line on stdout
(newline-delimited JSON, see Docs/plugins.md). Everything else goes to stderr.

    {"id": 2, "method": "diarize", "params": {"audio": {"path": "meeting.wav", "sample_rate": 16000},
                                               "speakers": null, "min_speakers": 1, "max_speakers": null}}
    -> {"id": 2, "result": {"turns": [{"speaker": 0, "start": 0.52, "end": 3.1},
                                      {"speaker": 1, "start": 2.8, "end": 3.0, "overlap": true}, ...],
                            "embeddings": [[...192 numbers...], ...], "embedding_kind": "campplus-cn-en-common-192"}}
"""

import json
import os
import sys

# Parley makes no outside connection.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import diarization  # noqa: E402

EMBEDDING_KIND = "campplus-cn-en-common-192"


def turn(speaker, start, end, overlap):
    """One turn on the wire; `overlap` only where true (a second voice over another's turn)."""
    said = {"speaker": speaker, "start": round(start, 3), "end": round(end, 3)}
    if overlap:
        said["overlap"] = True
    return said


def main():
    folder = os.environ.get("PARLEY_NEURAL_MODELS", "")
    threads = int(os.environ.get("PARLEY_NEURAL_THREADS", "1"))
    settings = diarization.Settings(
        step=float(os.environ.get("PARLEY_NEURAL_STEP", "1.5")),
        threshold=float(os.environ.get("PARLEY_NEURAL_THRESHOLD", "0.62")),
        threshold_floor=float(os.environ.get("PARLEY_NEURAL_THRESHOLD_FLOOR", "0.45")),
        overlap=float(os.environ.get("PARLEY_NEURAL_OVERLAP", "0.2")),
        chunk=float(os.environ.get("PARLEY_NEURAL_CHUNK", "1.0")))
    models = diarization.Models(
        os.path.join(folder, "segmentation-3.0.onnx"), os.path.join(folder, "campplus.onnx"), threads)
    out = sys.stdout
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        request_id = None
        try:
            request = json.loads(line)
            request_id = request.get("id")
            method = request.get("method")
            params = request.get("params") or {}
            if method == "hello":
                result = {"name": "neural", "protocol": 1, "audio": ["path"], "embedding_kind": EMBEDDING_KIND}
            elif method == "diarize":
                audio = params.get("audio") or {}
                if "path" not in audio:
                    raise ValueError("diarize needs audio.path (a 16 kHz mono WAV file)")
                found, _, centroids = diarization.diarize(
                    audio["path"], models, settings, speakers=params.get("speakers"),
                    min_speakers=int(params.get("min_speakers") or 1), max_speakers=params.get("max_speakers"))
                result = {
                    "turns": [turn(*t) for t in found],
                    "embeddings": [[round(float(v), 5) for v in c] for c in centroids],
                    "embedding_kind": EMBEDDING_KIND,
                }
            elif method == "shutdown":
                out.write(json.dumps({"id": request_id, "result": {}}) + "\n")
                out.flush()
                break
            else:
                raise ValueError(f"unknown method {method!r}")
            out.write(json.dumps({"id": request_id, "result": result}) + "\n")
        except Exception as error:  # every failure is an answer, never a dead worker
            out.write(json.dumps({"id": request_id, "error": {"message": f"{type(error).__name__}: {error}"}}) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
