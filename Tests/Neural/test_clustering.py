"""The neural diarizer's clustering (Plugins/Neural/diarization.py), on embeddings made for the
purpose: which clusters are speakers of their own and which are folded into a larger one."""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                                "Plugins", "Neural"))
import diarization  # noqa: E402


def voice(direction, count, rng, spread=0.05):
    """`count` unit embeddings scattered a little around one direction of the 192-dim space."""
    centre = np.zeros(192, dtype=np.float32)
    centre[direction] = 1.0
    points = centre + spread * rng.standard_normal((count, 192)).astype(np.float32)
    return points / np.linalg.norm(points, axis=1, keepdims=True)


def test_a_voice_heard_in_a_few_windows_is_a_speaker_and_a_lone_embedding_is_not():
    rng = np.random.default_rng(7)
    # One who talks all along; one heard in three windows with 0.5 s each (a brief speaker, as
    # the windows count speech: 1.5 s); and one outlying embedding of 0.5 s (a laugh, a noise).
    points = np.concatenate([voice(0, 30, rng), voice(1, 3, rng), voice(2, 1, rng)])
    weights = np.array([4.0] * 30 + [0.5] * 3 + [0.5])
    labels, centroids = diarization.cluster(points, weights, diarization.Settings())
    assert len(centroids) == 2, labels
    assert len(set(labels[:30])) == 1 and len(set(labels[30:33])) == 1 and labels[0] != labels[30]
    # The lone embedding goes to its nearest large cluster rather than being a speaker.
    assert labels[33] in (labels[0], labels[30])


def test_an_exact_count_keeps_even_a_lone_embedding_as_a_speaker():
    rng = np.random.default_rng(8)
    points = np.concatenate([voice(0, 30, rng), voice(1, 3, rng), voice(2, 1, rng)])
    weights = np.array([4.0] * 30 + [0.5] * 3 + [0.5])
    labels, centroids = diarization.cluster(points, weights, diarization.Settings(), speakers=3)
    assert len(centroids) == 3
    assert len({labels[0], labels[30], labels[33]}) == 3
