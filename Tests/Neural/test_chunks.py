"""The neural diarizer's second reading of who speaks (Plugins/Neural/diarization.py,
`chunk_labels` and `relabel`): one-second chunks embedded on their own decide who speaks where the
windows hear one voice. First on made-up signals and frames, then with the real models on a real
meeting in which the windows blend two men."""

import os
import sys

import numpy as np
import soundfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "Plugins", "Neural"))
import diarization  # noqa: E402

RATE = diarization.RATE


class ToneEmbedder:
    """A stand-in for CAM++ (named as such: these tests are about the chunks, not the model): a
    chunk's "voice" is the direction of the 192-dim space given by its dominant frequency, in
    100-Hz bands."""

    def __init__(self):
        self.calls = []

    def embed(self, samples):
        self.calls.append(len(samples))
        spectrum = np.abs(np.fft.rfft(samples))
        band = int(np.argmax(spectrum) * RATE / len(samples) / 100)
        vector = np.zeros(192, dtype=np.float32)
        vector[band] = 1.0
        return vector

    def embed_equal(self, pieces):
        return np.stack([self.embed(p) for p in pieces])


def tones(path, parts):
    """A 16 kHz WAV of (seconds, frequency) parts; frequency 0 is silence."""
    pieces = []
    for seconds, frequency in parts:
        t = np.arange(int(seconds * RATE)) / RATE
        pieces.append(0.3 * np.sin(2 * np.pi * frequency * t) if frequency else np.zeros_like(t))
    soundfile.write(path, np.concatenate(pieces).astype(np.float32), RATE)


def frames_until(seconds):
    """The number of frames whose centre lies before `seconds` (so also the frame at `seconds`)."""
    centres = (np.arange(10_000) * diarization.FRAME_STEP + diarization.FRAME_SPAN // 2) / RATE
    return int(np.searchsorted(centres, seconds))


def test_each_chunk_with_speech_is_embedded_whole_and_its_voice_labels_its_frames(tmp_path):
    path = str(tmp_path / "tones.wav")
    # 5 s of one voice, 5 s of another, 2 s of a third (too little to be a speaker of its own),
    # then 3 s the windows hear as silence.
    tones(path, [(5, 150), (5, 450), (2, 750), (3, 150)])
    length = 15 * RATE
    frames = int(np.ceil(length / diarization.FRAME_STEP))
    active = np.zeros((frames, 1), dtype=bool)
    active[: frames_until(12.0), 0] = True
    embedder = ToneEmbedder()
    labels, centroids = diarization.chunk_labels(path, embedder, active, diarization.Settings())
    # Twelve one-second chunks have speech; each was embedded whole, the silent ones not at all.
    assert embedder.calls == [RATE] * 12
    assert len(centroids) == 2
    first, second = labels[frames_until(2.5)], labels[frames_until(7.5)]
    assert first != second and min(first, second) >= 0
    assert (labels[frames_until(0.6) : frames_until(4.9)] == first).all()
    assert (labels[frames_until(5.1) : frames_until(9.9)] == second).all()
    # The third voice's two chunks are folded into the nearest cluster, not a speaker.
    assert set(labels[frames_until(10.1) : frames_until(11.9)]) <= {first, second}
    # Frames without speech have no label.
    assert (labels[frames_until(12.0) + 1 :] == -1).all()


def test_a_chunk_with_too_little_speech_is_not_embedded(tmp_path):
    path = str(tmp_path / "short.wav")
    tones(path, [(6, 150)])
    frames = int(np.ceil(6 * RATE / diarization.FRAME_STEP))
    active = np.zeros((frames, 1), dtype=bool)
    active[frames_until(0.5) : frames_until(4.0), 0] = True  # half of the first second
    embedder = ToneEmbedder()
    labels, _ = diarization.chunk_labels(path, embedder, active, diarization.Settings())
    assert len(embedder.calls) == 3  # seconds 1, 2 and 3
    assert (labels[frames_until(0.5) : frames_until(1.0) - 1] == -1).all()
    assert (labels[frames_until(1.0) + 1 : frames_until(4.0) - 1] >= 0).all()


def unit(direction):
    vector = np.zeros(192, dtype=np.float32)
    vector[direction] = 1.0
    return vector


def test_the_chunks_decide_who_speaks_where_one_voice_is_heard():
    # The windows found two speakers: 0 on frames 0-499 (two people, blended), 1 on 500-699.
    active = np.zeros((700, 2), dtype=bool)
    active[:500, 0] = True
    active[500:, 1] = True
    added = np.zeros_like(active)
    added[600:650, 0] = True  # a second voice the windows added over speaker 1
    centroids = np.stack([unit(0), unit(1)])
    # The chunks hear three voices: A on 0-299, B on 300-499, C on 500-699.
    labels = np.concatenate([np.zeros(300), np.ones(200), np.full(200, 2)]).astype(int)
    chunk_centroids = np.stack([unit(0), unit(2), unit(1)])
    grown, more, kept = diarization.relabel(active, added, centroids, labels, chunk_centroids)
    # A is speaker 0 (the most frames shared), C speaker 1, and B a speaker of its own.
    assert grown.shape == (700, 3) and len(kept) == 3
    assert grown[:300, 0].all() and not grown[300:, 0].any()
    assert grown[300:500, 2].all() and grown[:, 2].sum() == 200
    assert grown[500:, 1].all()
    np.testing.assert_array_equal(kept[2], unit(2))
    # Where a second voice was added, nothing changes.
    assert more[600:650, 0].all() and more.sum() == 50
    # Beyond the largest count allowed, the windows' answer stands.
    bounded = diarization.relabel(active, added, centroids, labels, chunk_centroids, max_speakers=2)
    assert bounded[0] is active


def test_chunks_that_find_fewer_voices_than_the_windows_change_nothing():
    active = np.zeros((400, 2), dtype=bool)
    active[:200, 0] = True
    active[200:, 1] = True
    added = np.zeros_like(active)
    centroids = np.stack([unit(0), unit(1)])
    labels = np.zeros(400, dtype=int)  # one voice all through: the chunks merged the two
    result = diarization.relabel(active, added, centroids, labels, np.stack([unit(0)]))
    assert result[0] is active and result[2] is centroids


def test_two_men_the_windows_blend_are_told_apart_by_their_chunks():
    """ami_dev00 (real AMI speech, Tests/Fixtures/ami-dev): MEE009 talks from 21.95 s to 26.27 s,
    MEE012 alone from 26.27 s to 28.22 s and earlier from 13.3 s to 16.9 s. From 19.5 s on the
    segmentation windows give both one local speaker."""
    folder = os.path.join(ROOT, ".venv", "share", "parley", "neural")
    models = diarization.Models(os.path.join(folder, "segmentation-3.0.onnx"), os.path.join(folder, "campplus.onnx"))
    wav = os.path.join(ROOT, "Tests", "Fixtures", "ami-dev", "ami_dev00", "meeting.wav")

    def speaker_at(found, seconds):
        return {s for s, start, end, overlap in found if start <= seconds < end and not overlap}

    found, _, centroids = diarization.diarize(wav, models)
    assert len(centroids) == 2
    assert speaker_at(found, 27.0) == speaker_at(found, 15.0)
    assert len(speaker_at(found, 27.0)) == 1 and speaker_at(found, 27.0) != speaker_at(found, 24.5)
    # Without the chunks the windows' blend stands: both men are one speaker there.
    blended, _, _ = diarization.diarize(wav, models, diarization.Settings(chunk=0))
    assert speaker_at(blended, 27.0) == speaker_at(blended, 24.5)


def test_chunks_embedded_together_get_the_embeddings_each_gets_alone():
    """`Models.embed_equal` runs CAM++ once on a batch of one-second chunks; every chunk is still
    normalized and pooled on its own, so its embedding is the one `embed` gives it."""
    folder = os.path.join(ROOT, ".venv", "share", "parley", "neural")
    models = diarization.Models(os.path.join(folder, "segmentation-3.0.onnx"), os.path.join(folder, "campplus.onnx"))
    wav = os.path.join(ROOT, "Tests", "Fixtures", "ami-dev", "ami_dev00", "meeting.wav")
    audio, rate = soundfile.read(wav, dtype="float32")
    pieces = [audio[i * rate : (i + 1) * rate] for i in range(12, 24)]
    together = models.embed_equal(pieces)
    alone = np.stack([models.embed(p) for p in pieces])
    assert together.shape == (12, 192)
    assert np.abs(together - alone).max() < 1e-5
    # Not one embedding twelve times: the chunks hold different voices and words.
    assert (together @ together.T).min() < 0.9
