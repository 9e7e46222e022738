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


def two_voice_recording(rng, apart, spread, windows=40):
    """Windows every 1.5 s in which local speaker 0 is one voice and local speaker 1 another,
    each talking in its own half of every window (so each is followed from window to window),
    the two voices `apart` in cosine distance and each one's embeddings scattered by `spread`."""
    frames, step = diarization.FRAMES, int(1.5 * diarization.RATE)
    first = np.zeros(192, dtype=np.float32)
    first[0] = 1.0
    second = np.zeros(192, dtype=np.float32)
    second[0], second[1] = 1.0 - apart, np.sqrt(1.0 - (1.0 - apart) ** 2)
    made = []
    for i in range(windows):
        activity = np.zeros((frames, 3))
        activity[: frames // 2, 0] = 1
        activity[frames // 2 :, 1] = 1
        w = window(i * step, activity, np.zeros(frames, np.float32), activity.astype(np.float32), {})
        for k, centre in ((0, first), (1, second)):
            point = centre + spread * rng.standard_normal(192).astype(np.float32)
            w.speakers.append(k)
            w.embeddings.append(point / np.linalg.norm(point))
            w.speech.append(4.0)
            w.clustered.append(True)
        made.append(w)
    return made


def clustered_count(windows, settings):
    points = np.stack([e for w in windows for e in w.embeddings])
    weights = np.array([s for w in windows for s in w.speech])
    _, centroids = diarization.cluster(points, weights, settings)
    return len(centroids)


def test_two_close_voices_are_told_apart_where_each_voice_is_steady_in_the_recording():
    rng = np.random.default_rng(11)
    # Two voices 0.5 apart, each steady (one voice's embeddings about 0.07 apart): under the
    # fixed cut of 0.62 they are one speaker; the recording's own spread lowers the cut.
    windows = two_voice_recording(rng, apart=0.5, spread=0.02)
    distances = diarization.spread(windows)
    # Each of the two tracks pairs every window with those 10-30 s later, never across tracks.
    assert len(distances) > 100 and np.percentile(distances, 90) < 0.15
    settings = diarization.Settings()
    assert diarization.threshold(windows, settings) == settings.threshold_floor
    fixed = diarization.Settings(threshold_floor=settings.threshold)
    assert diarization.threshold(windows, fixed) == settings.threshold
    assert clustered_count(windows, fixed) == 1
    lowered = diarization.Settings(threshold=diarization.threshold(windows, settings))
    assert clustered_count(windows, lowered) == 2


def test_the_cut_is_not_lowered_for_a_recording_whose_voices_vary_or_that_is_too_short_to_tell():
    rng = np.random.default_rng(12)
    settings = diarization.Settings()
    # One voice's embeddings as far apart as a far microphone in a noisy room makes them.
    varied = two_voice_recording(rng, apart=0.9, spread=0.12)
    assert np.percentile(diarization.spread(varied), 90) > settings.threshold + settings.spread_margin
    assert diarization.threshold(varied, settings) == settings.threshold
    # Five windows (16 s) give no two embeddings of one voice that share no audio.
    short = two_voice_recording(rng, apart=0.5, spread=0.02, windows=5)
    assert len(diarization.spread(short)) == 0
    assert diarization.threshold(short, settings) == settings.threshold


def two_sided_voice(rng, count):
    """`count` embeddings of one voice, half on each side of it (about 0.28 apart in cosine
    distance: one voice's moods, well within the cut), in alternation."""
    sides = []
    for tilt in (0.4, -0.4):
        centre = np.zeros(192, dtype=np.float32)
        centre[0], centre[5] = 1.0, tilt
        sides.append(centre + 0.02 * rng.standard_normal((count // 2, 192)).astype(np.float32))
    points = np.stack([sides[i % 2][i // 2] for i in range(count)])
    return points / np.linalg.norm(points, axis=1, keepdims=True)


def test_an_exact_count_does_not_cut_a_voice_in_two_that_no_window_hears_as_two():
    rng = np.random.default_rng(12)
    points = np.concatenate([two_sided_voice(rng, 30), voice(1, 10, rng, spread=0.02)])
    weights = np.array([4.0] * 40)
    settings = diarization.Settings()
    # Automatic: the two sides of the first voice are one speaker, the second voice another.
    assert len(diarization.cluster(points, weights, settings)[1]) == 2
    # Asked for three with each embedding from a window of its own (one local speaker each, as a
    # talker who holds the floor is heard), the first voice is not cut in two to make up the count.
    alone = np.arange(40)
    labels, centroids = diarization.cluster(points, weights, settings, speakers=3, sources=alone)
    assert len(centroids) == 2
    assert len(set(labels[:30])) == 1 and labels[0] != labels[30]
    # The same sides heard as two local speakers of the same windows are two people: then the count
    # splits them.
    together = np.concatenate([np.arange(30) // 2, 15 + np.arange(10)])
    labels, centroids = diarization.cluster(points, weights, settings, speakers=3, sources=together)
    assert len(centroids) == 3
    assert labels[0] != labels[1] and len(set(labels[0:30:2])) == 1 and len(set(labels[1:30:2])) == 1
    # Asked for one, the two voices are merged; bounds act the same way.
    assert len(diarization.cluster(points, weights, settings, speakers=1, sources=alone)[1]) == 1
    assert len(diarization.cluster(points, weights, settings, max_speakers=1, sources=alone)[1]) == 1
    assert len(diarization.cluster(points, weights, settings, min_speakers=3, sources=together)[1]) == 3
