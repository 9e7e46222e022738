"""The whisper worker (Plugins/Whisper/worker.py) through its own protocol: the same windows give
the same text in another process, so a recording processed again comes out the same.

Whisper decodes greedily first and, where the text fails its checks (too repetitive, too
unlikely), samples again at higher temperatures; on room noise that happens often. The sampling
draws from CTranslate2's random generators, whose seed was drawn anew in every process."""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WORKER = os.path.join(ROOT, "Plugins", "Whisper", "worker.py")
# 30 s of a meeting room in which one person speaks for 0.7 s: mostly noise.
ROOM = os.path.join(ROOT, "Tests", "Fixtures", "ami", "ami_trn02", "meeting.wav")
OTHER = os.path.join(ROOT, "Tests", "Fixtures", "ami", "ami_trn00", "meeting.wav")


def transcripts(paths):
    """What one worker process answers for each path, in order."""
    requests = [{"id": i, "method": "transcribe", "params": {"audio": {"path": p}}} for i, p in enumerate(paths)]
    requests.append({"id": len(paths), "method": "shutdown"})
    # The speech filter off: the whole window reaches the model, noise included.
    env = dict(os.environ, PARLEY_WHISPER_SPEECH_THRESHOLD="0")
    done = subprocess.run([sys.executable, WORKER], input="".join(json.dumps(r) + "\n" for r in requests),
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    answers = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    assert [a["id"] for a in answers] == list(range(len(paths) + 1)), answers
    for a in answers[:-1]:
        assert "result" in a, a
    return [[(s["text"], [w["word"] for w in s["words"]]) for s in a["result"]["segments"]] for a in answers[:-1]]


def test_the_same_windows_give_the_same_text_in_another_process():
    windows = [ROOM, OTHER, ROOM, ROOM]
    first, again = transcripts(windows), transcripts(windows)
    assert first[0] and first[1], "a window gave no text at all"
    assert again == first, (again, first)
