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


def window(start, activity, two, marginal, assignment):
    """A segmented window made for the purpose (FRAMES frames, three local speakers)."""
    w = diarization.Window(start, activity.astype(np.uint8), activity.sum(axis=1).astype(np.float32), two, marginal)
    w.assignment = assignment
    return w


def test_a_second_voice_the_count_missed_is_added_where_two_are_probable_and_marked():
    frames = diarization.FRAMES
    activity = np.zeros((frames, 3))
    activity[:, 0] = 1  # local speaker 0 talks all through the window; the count hears one
    two = np.zeros(frames, dtype=np.float32)
    two[200:300] = 0.4  # the model finds a second voice probable here
    marginal = np.zeros((frames, 3), dtype=np.float32)
    marginal[:, 0] = 0.95
    marginal[200:300, 1] = 0.4  # local speaker 1 is that voice
    w = window(0, activity, two, marginal, {0: 0, 1: 1})
    settings = diarization.Settings()
    active, added = diarization.reconstruct([w], diarization.WINDOW, 2, settings)
    assert active[:frames, 0].all() and not active[:, 1].any()
    assert added[200:300, 1].all() and added[:, 1].sum() == 100 and not added[:, 0].any()
    found, names = diarization.turns(active, settings, added)
    assert [(s, o) for s, _, _, o in found] == [(0, False), (1, True)], found
    _, start, end, _ = found[1]
    step = diarization.FRAME_STEP / diarization.RATE
    assert abs(end - start - 100 * step) < 1e-6
    assert abs(start - (200 * step + diarization.FRAME_SPAN / 2 / diarization.RATE - step / 2)) < 1e-6
    # Below the setting, nothing is added.
    active, added = diarization.reconstruct([w], diarization.WINDOW, 2, diarization.Settings(overlap=0.5))
    assert not added.any()
