"""Neural speaker diarization on CPU with onnxruntime: pyannote segmentation-3.0 finds, in
overlapping 10-second windows, up to three local speakers frame by frame (overlap included);
CAM++ gives each local speaker of each window a voice embedding; the embeddings are clustered
across the meeting (average-linkage cosine clustering, cut at a distance the recording's own
spread of one voice may lower, then held to the count the caller gives, if any); each
window's local speakers are matched to the clusters one to one; the frames are rebuilt from
all the windows that saw them, with as many speakers at a time as the segmentation counted, and
a second one where the windows find it probable that two people speak; and where one voice is
heard, one-second chunks embedded on their own say whose it is (`chunk_labels`, `relabel`).

Memory stays bounded on long meetings: the audio is read window by window from the file, and
what is kept per window is its three local activities (589 bytes each), their probabilities, the
expected count and the probability of two speakers at once (589 half-precision numbers each),
and up to three embeddings; then one embedding per second of speech (8 MB for 3 hours).
"""

import bisect
import copy
import math
import sys

import numpy as np
import soundfile

RATE = 16000
WINDOW = 10 * RATE
# Segmentation frames: 270-sample steps over a 991-sample receptive field.
FRAME_STEP = 270
FRAME_SPAN = 991
FRAMES = 589
# The seven powerset classes of segmentation-3.0, as sets of local speakers.
POWERSET = np.array(
    [[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [1, 0, 1], [0, 1, 1]], dtype=np.uint8)


class Settings:
    """The diarizer's settings; every one has a default tuned on real speech (see
    Docs/diarization.md)."""

    def __init__(self, **values):
        # Seconds between the starts of two segmentation windows (10 s long).
        self.step = 1.5
        # Cosine distance at which average-linkage clustering stops merging.
        self.threshold = 0.62
        # The recording's own spread of one voice may lower that distance, never below this
        # (equal to `threshold`: never lowered). See `spread`.
        self.threshold_floor = 0.45
        # Lowered to the 90th percentile of the spread, less this margin...
        self.spread_margin = 0.05
        # ...when at least this many pairs of one local speaker's embeddings were measured.
        self.min_spread_pairs = 20
        # A local speaker needs this much speech in a window (seconds) for an embedding.
        self.min_embedding_speech = 0.4
        # A local speaker with less speech than that, but at least this much, is not clustered
        # but still gets an embedding, to be matched with a speaker found elsewhere (seconds).
        self.min_assigned_speech = 0.1
        # Clusters with less speech than this are not speakers of their own; their windows go to
        # the nearest large cluster. Seconds as the windows count them: each window that hears a
        # stretch counts it (about 6.7 times over with 10-s windows every 1.5 s), and a local
        # speaker is clustered only with 0.4 s in its window, so 1 s asks for a voice heard in a
        # few windows, not in one or two outlying embeddings.
        self.min_cluster_speech = 1.0
        # At most this many embeddings are clustered (the longest); the others are assigned.
        self.max_clustered = 2500
        # Windows segmented, or one-second chunks embedded, per onnxruntime call.
        self.batch = 8
        # Gaps of at most this long between two turns of one speaker are closed (seconds).
        self.merge_gap = 0.25
        # The number of speakers at a frame is the windows' mean count rounded up from
        # 0.5 - count_bias; soft_count uses the expected count of the model's probabilities.
        self.count_bias = 0.0
        self.soft_count = 1
        # Where that count is one but the windows' mean probability that two people speak is at
        # least this, a second speaker is added: the cluster the windows find most probable
        # after the first (0 turns this off). The rounded count hears about half of the overlap.
        self.overlap = 0.2
        # Turns shorter than this are dropped (seconds).
        self.min_turn = 0.05
        # Who speaks where the windows hear one voice is also read from CAM++ on consecutive
        # chunks of this length (seconds; 0 turns it off). See `chunk_labels`.
        self.chunk = 1.0
        # A chunk is embedded when the windows hear speech in this much of it (seconds).
        self.min_chunk_speech = 0.75
        # Cosine distance at which the chunks' clustering stops merging.
        self.chunk_threshold = 0.7
        # Clusters of chunks with less speech than this are folded into the nearest (seconds).
        self.min_chunk_cluster = 4.0
        for key, value in values.items():
            if not hasattr(self, key):
                raise ValueError(f"unknown setting {key}")
            setattr(self, key, type(getattr(self, key))(value))


# MARK: - features


def _mel(f):
    return 1127.0 * np.log(1.0 + f / 700.0)


def _mel_banks(count=80, fft=512, low=20.0, high=RATE / 2):
    width = RATE / fft
    lo, hi = _mel(low), _mel(high)
    delta = (hi - lo) / (count + 1)
    mel = _mel(width * np.arange(fft // 2))
    left = lo + delta * np.arange(count)[:, None]
    up = (mel - left) / delta
    down = (left + 2 * delta - mel) / delta
    banks = np.maximum(0, np.minimum(up, down))
    return np.pad(banks, ((0, 0), (0, 1))).astype(np.float32)  # the Nyquist bin has no weight


_BANKS = _mel_banks()
_POVEY = ((0.5 - 0.5 * np.cos(2 * np.pi * np.arange(400) / 399)) ** 0.85).astype(np.float32)


def fbank(samples):
    """80-dimensional log-mel filterbank as Kaldi computes it (25 ms frames every 10 ms, DC
    removed, pre-emphasis 0.97, Povey window, 512-point FFT, power spectrum, mel from 20 Hz to
    Nyquist), mean-normalized over the frames, as CAM++ was trained on."""
    x = np.asarray(samples, dtype=np.float32) * 32768.0
    count = 1 + (len(x) - 400) // 160
    if count <= 0:
        return np.zeros((0, 80), np.float32)
    frames = x[np.arange(400)[None, :] + 160 * np.arange(count)[:, None]]
    frames -= frames.mean(axis=1, keepdims=True)
    frames[:, 1:] -= 0.97 * frames[:, :-1].copy()
    frames[:, 0] *= 0.03
    spectrum = np.abs(np.fft.rfft(frames * _POVEY, 512)) ** 2
    features = np.log(np.maximum(spectrum.astype(np.float32) @ _BANKS.T, np.finfo(np.float32).eps))
    return features - features.mean(axis=0, keepdims=True)


# MARK: - models


class Models:
    def __init__(self, segmentation, embedding, threads=1):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        providers = ["CPUExecutionProvider"]
        self.segmentation = onnxruntime.InferenceSession(segmentation, options, providers=providers)
        self.embedding = onnxruntime.InferenceSession(embedding, options, providers=providers)
        self.segmentation_input = self.segmentation.get_inputs()[0].name

    def segment(self, windows):
        """(n, WINDOW) samples -> for each window and frame: the local speakers' activity (0/1,
        the most probable powerset class), the number of speakers active, the expected number
        of speakers, the probability that two speak, and each local speaker's probability of
        speaking."""
        logp = self.segmentation.run(None, {self.segmentation_input: windows[:, None, :]})[0]
        activity = POWERSET[logp.argmax(axis=2)]
        probability = np.exp(logp)
        expected = probability @ POWERSET.sum(axis=1).astype(np.float32)
        two = probability[:, :, 4:].sum(axis=2)
        marginal = probability @ POWERSET.astype(np.float32)
        return activity, activity.sum(axis=2), expected, two, marginal

    def embed(self, samples):
        return self.embed_equal([samples])[0]

    def embed_equal(self, pieces):
        """Embeddings of pieces of audio of one length in one call: the same as `embed` on
        each (every piece is normalized and pooled on its own), with less per-call overhead (on
        one core, a batch of 8 one-second pieces costs 19 ms a piece instead of 23; 32 cost 14
        ms, but 75 MB more memory at the peak)."""
        features = np.stack([fbank(p) for p in pieces])
        vectors = self.embedding.run(None, {"fbank": features})[0]
        return vectors / np.maximum(1e-9, np.linalg.norm(vectors, axis=1, keepdims=True))


# MARK: - the pipeline


class Window:
    __slots__ = ("start", "activity", "expected", "two", "marginal", "speakers", "embeddings", "speech", "clustered",
                 "assignment")

    def __init__(self, start, activity, expected, two, marginal):
        self.start = start  # sample offset
        self.activity = activity  # (FRAMES, 3) uint8
        self.expected = expected.astype(np.float16)  # (FRAMES,) expected number of speakers
        self.two = two.astype(np.float16)  # (FRAMES,) probability that two speak
        self.marginal = marginal.astype(np.float16)  # (FRAMES, 3) each local speaker's probability
        self.speakers = []  # local speakers with an embedding
        self.embeddings = []
        self.speech = []  # seconds of speech of each such speaker
        self.clustered = []  # whether it has enough speech to be clustered
        self.assignment = {}  # local speaker -> cluster


def window_starts(length, step):
    if length <= WINDOW:
        return [0]
    starts = list(range(0, length - WINDOW + 1, step))
    if starts[-1] + WINDOW < length:
        starts.append(length - WINDOW)
    return starts


def frame_samples(frames):
    """The samples a set of segmentation frames stands for (each frame: its 270-sample step
    around the centre of its receptive field)."""
    centre = FRAME_SPAN // 2 - FRAME_STEP // 2
    return np.concatenate([np.arange(f * FRAME_STEP + centre, (f + 1) * FRAME_STEP + centre) for f in frames])


def analyse(path, models, settings, progress=None):
    """Segments and embeds a 16 kHz mono file window by window."""
    with soundfile.SoundFile(path) as f:
        if f.samplerate != RATE:
            raise ValueError(f"audio must be {RATE} Hz, got {f.samplerate} Hz")
        length = f.frames
        step = max(FRAME_STEP, int(settings.step * RATE))
        starts = window_starts(length, step)
        windows = []
        min_frames = int(settings.min_embedding_speech * RATE / FRAME_STEP)
        min_assigned = max(1, int(settings.min_assigned_speech * RATE / FRAME_STEP))
        for b in range(0, len(starts), settings.batch):
            batch = starts[b : b + settings.batch]
            audio = np.zeros((len(batch), WINDOW), dtype=np.float32)
            for i, start in enumerate(batch):
                f.seek(start)
                block = f.read(min(WINDOW, length - start), dtype="float32", always_2d=True).mean(axis=1)
                audio[i, : len(block)] = block
            activity, count, expected, two, marginal = models.segment(audio)
            for i, start in enumerate(batch):
                window = Window(start, activity[i].astype(np.uint8), expected[i], two[i], marginal[i])
                for k in range(3):
                    active = activity[i, :, k] == 1
                    clean = active & (count[i] == 1)
                    # Embed the speaker where it speaks alone; where it never does, where it speaks.
                    frames = np.flatnonzero(clean if clean.sum() >= min_frames else active)
                    if len(frames) < min_assigned:
                        continue
                    samples = audio[i][np.clip(frame_samples(frames), 0, WINDOW - 1)]
                    window.speakers.append(k)
                    window.embeddings.append(models.embed(samples))
                    window.speech.append(active.sum() * FRAME_STEP / RATE)
                    window.clustered.append(len(frames) >= min_frames)
                windows.append(window)
            if progress:
                progress(min(1.0, (b + len(batch)) / len(starts)))
    return windows, length


def spread(windows):
    """How far apart one voice's embeddings lie in this recording: the cosine distances between
    embeddings of the same local speaker followed from window to window (a window's local
    speaker is the same person as the one of the next window it is active with on the frames
    both windows cover, matched one to one), taken 10 to 30 seconds apart so that the two
    embeddings share no audio. Clean studio speech gives small distances, a far microphone in
    a noisy room large ones; the same threshold cannot serve both."""
    from scipy.optimize import linear_sum_assignment

    parent = {}

    def root(node):
        while parent.setdefault(node, node) != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    min_shared = 20  # frames (0.34 s) active in both windows
    for i in range(len(windows) - 1):
        a, b = windows[i], windows[i + 1]
        shift = int(round((b.start - a.start) / FRAME_STEP))
        if shift >= FRAMES or not a.speakers or not b.speakers:
            continue
        left = a.activity[shift:].astype(bool)
        right = b.activity[: FRAMES - shift].astype(bool)
        shared = left.T.astype(np.int32) @ right.astype(np.int32)  # (3, 3) frames both hear
        for k, l in zip(*linear_sum_assignment(-shared)):
            if shared[k, l] >= min_shared and k in a.speakers and l in b.speakers:
                parent[root((i + 1, int(l)))] = root((i, int(k)))
    tracks = {}
    for i, window in enumerate(windows):
        for k, embedding, clustered in zip(window.speakers, window.embeddings, window.clustered):
            if clustered:
                tracks.setdefault(root((i, k)), []).append((window.start, embedding))
    distances = []
    for track in tracks.values():
        starts = np.array([start for start, _ in track])
        points = np.stack([embedding for _, embedding in track])
        for x in range(len(track)):
            far = np.flatnonzero((starts - starts[x] >= WINDOW) & (starts - starts[x] <= 3 * WINDOW))
            if len(far):
                distances.append(1 - points[far] @ points[x])
    return np.concatenate(distances) if distances else np.zeros(0, dtype=np.float32)


def threshold(windows, settings):
    """The clustering's cut for this recording: `settings.threshold`, lowered toward the
    recording's own spread of one voice where that was measured (never below the floor)."""
    distances = spread(windows) if settings.threshold_floor < settings.threshold else []
    measured = f"{len(distances)} pairs"
    if len(distances) < settings.min_spread_pairs:
        cut = settings.threshold
    else:
        own = float(np.percentile(distances, 90))
        cut = min(settings.threshold, max(settings.threshold_floor, own - settings.spread_margin))
        measured += f", 90th percentile {own:.3f}"
    # The worker's stderr is Parley's debug log (PARLEY_LOG_LEVEL=debug).
    print(f"neural: clustering cut {cut:.3f} (one voice's spread: {measured})", file=sys.stderr, flush=True)
    return cut


def cluster(embeddings, weights, settings, speakers=None, min_speakers=1, max_speakers=None, sources=None):
    """Labels for the embeddings: average-linkage clustering on cosine distance, cut at the
    threshold; clusters with little speech are folded into the nearest large one. A count given
    (exact, or bounds) is met from there. Too many clusters: the tree is cut at the most allowed.
    Too few: the small clusters are kept as speakers, the largest first; then the tree is cut at
    the count, but a voice that cut splits in parts never heard as two local speakers of one
    window stays whole (`sources`: each embedding's window; see `_split`)."""
    from scipy.cluster.hierarchy import fcluster, linkage

    n = len(embeddings)
    if n == 0:
        return np.zeros(0, dtype=int), np.zeros((0, 192), dtype=np.float32)
    if n == 1:
        return np.zeros(1, dtype=int), embeddings[:1]
    order = np.argsort(-weights)[: settings.max_clustered]
    chosen, chosen_weights = embeddings[order], weights[order]
    tree = linkage(chosen, method="average", metric="cosine")
    found = fcluster(tree, t=settings.threshold, criterion="distance") - 1
    means, speech = _centroids(chosen, chosen_weights, found)
    fewest = speakers or min_speakers
    most = speakers or max_speakers
    # Small clusters are no speakers of their own, unless the count asks for more speakers.
    large = speech >= settings.min_cluster_speech
    keep = list(np.flatnonzero(large)) if large.any() else list(range(len(means)))
    for c in np.argsort(-speech, kind="stable"):
        if len(keep) >= fewest:
            break
        if c not in keep:
            keep.append(c)
    labels = _nearest(chosen, means[keep])
    centroids, _ = _centroids(chosen, chosen_weights, labels)
    if len(centroids) < fewest:
        split = _split(tree, labels, fewest, None if sources is None else sources[order])
        if split.max() + 1 > len(centroids):
            labels = split
            centroids, _ = _centroids(chosen, chosen_weights, labels)
    if most and len(centroids) > most:
        labels = fcluster(tree, t=most, criterion="maxclust") - 1
        centroids, _ = _centroids(chosen, chosen_weights, labels)
    return _nearest(embeddings, centroids), centroids


def _split(tree, labels, count, sources):
    """The tree cut at `count` clusters, except that parts of one of `labels`' clusters are put
    back together unless some window heard them as two of its local speakers. Segmentation-3.0
    keeps one person one local speaker through a window, so two parts of a cluster that never
    share a window are likelier one voice cut in two by the count (in real-train, a talker's
    windows split four ways while the others said a few words each, none embedded) than two
    people the clustering joined. Without `sources`, the plain cut."""
    from scipy.cluster.hierarchy import fcluster

    parts = fcluster(tree, t=min(count, len(labels)), criterion="maxclust") - 1
    if sources is None:
        return parts
    k = parts.max() + 1
    together = np.zeros((k, k), dtype=bool)
    for s in np.unique(sources):
        present = np.unique(parts[sources == s])
        together[np.ix_(present, present)] = True
    whole = [np.bincount(labels[parts == p]).argmax() for p in range(k)]  # the cluster it came from
    parent = list(range(k))

    def root(p):
        while parent[p] != p:
            p = parent[p]
        return p

    for a in range(k):
        for b in range(a + 1, k):
            if whole[a] == whole[b] and not together[a, b]:
                parent[root(b)] = root(a)
    return np.unique([root(p) for p in parts], return_inverse=True)[1]


def _centroids(points, weights, labels):
    present = np.unique(labels)
    centroids = np.stack([np.average(points[labels == c], axis=0, weights=weights[labels == c]) for c in present])
    centroids /= np.maximum(1e-9, np.linalg.norm(centroids, axis=1, keepdims=True))
    speech = np.array([weights[labels == c].sum() for c in present])
    return centroids, speech


def _nearest(points, centroids):
    return (points @ centroids.T).argmax(axis=1)


def assign(windows, centroids):
    """Each window's local speakers go to distinct clusters (the best one-to-one match of
    their embeddings with the centroids)."""
    from scipy.optimize import linear_sum_assignment

    for window in windows:
        if not window.speakers:
            window.assignment = {}
            continue
        similarity = np.stack(window.embeddings) @ centroids.T
        if len(window.speakers) <= len(centroids):
            rows, cols = linear_sum_assignment(-similarity)
        else:  # more local speakers than clusters: each takes its nearest
            rows, cols = np.arange(len(window.speakers)), similarity.argmax(axis=1)
        window.assignment = {window.speakers[r]: int(c) for r, c in zip(rows, cols)}


def reconstruct(windows, length, clusters, settings):
    """Frame-level speaker activity over the whole recording, from every window that covers
    each frame: the number of speakers at a frame is the windows' average count, and the
    speakers are the clusters most active there. Where one speaker is counted but the windows
    find two probable (settings.overlap), the cluster most probable after the first is added.
    Returns those two (frames, clusters) masks: the speakers counted, and the ones added."""
    total = (length + FRAME_STEP - 1) // FRAME_STEP + FRAMES
    width = max(1, clusters)
    score = np.zeros((total, width), dtype=np.float32)
    count = np.zeros(total, dtype=np.float32)
    two = np.zeros(total, dtype=np.float32)
    cover = np.zeros(total, dtype=np.float32)
    for window in windows:
        first = int(round(window.start / FRAME_STEP))
        span = slice(first, first + FRAMES)
        cover[span] += 1
        count[span] += window.expected if settings.soft_count else window.activity.sum(axis=1)
        two[span] += window.two
        for k, c in window.assignment.items():
            score[span, c] += window.activity[:, k]
    used = int(math.ceil(length / FRAME_STEP))
    score, count, two = score[:used], count[:used], two[:used]
    cover = np.maximum(1, cover[:used])
    speakers = np.floor(count / cover + 0.5 + settings.count_bias).astype(int)
    active = np.zeros_like(score, dtype=bool)
    ranked = np.argsort(-score, axis=1)
    for n in range(1, min(3, width) + 1):
        rows = np.flatnonzero(speakers >= n)
        picks = ranked[rows, n - 1]
        keep = score[rows, picks] > 0
        active[rows[keep], picks[keep]] = True
    added = np.zeros_like(active)
    if settings.overlap > 0 and width > 1:
        rows = np.flatnonzero((speakers == 1) & (two / cover >= settings.overlap) & (score.max(axis=1) > 0))
        # The clusters' summed probabilities, for those frames only (a few percent of a meeting).
        others = np.zeros((len(rows), width), dtype=np.float32)
        where = np.full(total, -1)
        where[rows] = np.arange(len(rows))
        for window in windows:
            first = int(round(window.start / FRAME_STEP))
            local = np.flatnonzero(where[first : first + FRAMES] >= 0)
            if len(local):
                for k, c in window.assignment.items():
                    others[where[first + local], c] += window.marginal[local, k]
        others[np.arange(len(rows)), ranked[rows, 0]] = -1
        second = others.argmax(axis=1)
        # A second speaker needs some probability of its own (a twentieth of a window's worth).
        keep = others[np.arange(len(rows)), second] > 0.05 * cover[rows]
        added[rows[keep], second[keep]] = True
    return active, added


def chunk_labels(path, models, active, settings):
    """Who speaks in each frame where the windows hear speech, from the chunks' own voices: the
    recording cut into consecutive chunks of `settings.chunk` seconds, each with at least
    `settings.min_chunk_speech` of speech embedded whole by CAM++, the embeddings clustered
    (average linkage, cut at `settings.chunk_threshold`; small clusters folded into the nearest).
    Returns each frame's cluster (-1: none) and the clusters' centroids. Segmentation-3.0 can give
    two similar voices one local speaker through a whole 10-s window, so that the window's
    embedding is a blend of both; a chunk of one second rarely holds two voices."""
    from scipy.cluster.hierarchy import fcluster, linkage

    labels = np.full(active.shape[0], -1)
    size = int(round(settings.chunk * RATE))
    centres = (np.arange(active.shape[0]) * FRAME_STEP + FRAME_SPAN // 2) // size  # each frame's chunk
    speaking = active.any(axis=1)
    speech = np.bincount(centres[speaking], minlength=int(centres.max(initial=0)) + 1)
    with soundfile.SoundFile(path) as f:
        whole = f.frames // size
        chosen = [c for c in np.flatnonzero(speech * FRAME_STEP / RATE >= settings.min_chunk_speech) if c < whole]
        embeddings = []
        for b in range(0, len(chosen), settings.batch):
            pieces = []
            for c in chosen[b : b + settings.batch]:
                f.seek(int(c) * size)
                pieces.append(f.read(size, dtype="float32", always_2d=True).mean(axis=1))
            embeddings.extend(models.embed_equal(pieces))
    if not embeddings:
        return labels, np.zeros((0, 192), dtype=np.float32)
    points = np.stack(embeddings)
    if len(points) == 1:
        clusters = np.zeros(1, dtype=int)
    else:
        # At most max_clustered chunks are clustered (evenly spread); all go to the nearest.
        subset = np.linspace(0, len(points) - 1, min(len(points), settings.max_clustered)).astype(int)
        sample = points[subset]
        tree = linkage(sample, method="average", metric="cosine")
        found = fcluster(tree, t=settings.chunk_threshold, criterion="distance") - 1
        # As in `cluster`: each chunk weighs the same, small clusters are folded.
        means, counts = _centroids(sample, np.ones(len(sample)), found)
        large = counts * settings.chunk * len(points) / len(subset) >= settings.min_chunk_cluster
        clusters = _nearest(points, means[large] if large.any() else means)
    present = np.unique(clusters)
    centroids, _ = _centroids(points, np.ones(len(points)), clusters)
    of_chunk = np.full(len(speech), -1)
    of_chunk[chosen] = np.searchsorted(present, clusters)
    labels[speaking] = of_chunk[centres[speaking]]
    return labels, centroids


def relabel(active, added, centroids, labels, chunk_centroids, max_speakers=None):
    """Where one voice is heard (one speaker counted, none added), the chunks' clusters decide
    who it is: each matched one to one with the windows' cluster it shares most such frames
    with, those left over becoming speakers of their own. Only when the chunks find at least as
    many voices as the windows (when they find fewer, they have merged people the windows kept
    apart). Returns the new (active, added, centroids)."""
    from scipy.optimize import linear_sum_assignment

    ours = int(active.any(axis=0).sum())
    theirs = len(chunk_centroids)
    if theirs == 0 or theirs < ours:
        return active, added, centroids
    single = (active.sum(axis=1) == 1) & ~added.any(axis=1) & (labels >= 0)
    rows = np.flatnonzero(single)
    shared = np.zeros((active.shape[1], theirs))
    np.add.at(shared, (active[rows].argmax(axis=1), labels[rows]), 1)
    mine, theirs_matched = linear_sum_assignment(-shared)
    mapping = {int(t): int(o) for o, t in zip(mine, theirs_matched) if shared[o, t] > 0}
    extra = [t for t in range(theirs) if t not in mapping and (labels[rows] == t).any()]
    width = active.shape[1] + len(extra)
    if max_speakers and ours + len(extra) > max_speakers:
        return active, added, centroids
    for n, t in enumerate(extra):
        mapping[t] = active.shape[1] + n
    grown = np.zeros((active.shape[0], width), dtype=bool)
    grown[:, : active.shape[1]] = active
    more = np.zeros_like(grown)
    more[:, : added.shape[1]] = added
    grown[rows] = False
    grown[rows, [mapping[t] for t in labels[rows]]] = True
    if extra:
        centroids = np.concatenate([centroids, chunk_centroids[extra]])
    return grown, more, centroids


def _runs(column, settings):
    """[start, end] seconds of the True stretches of one speaker's frames, gaps of at most
    settings.merge_gap closed, and those shorter than settings.min_turn dropped."""
    step = FRAME_STEP / RATE
    offset = FRAME_SPAN / 2 / RATE
    edges = np.flatnonzero(np.diff(np.concatenate([[False], column, [False]]).astype(np.int8)))
    runs = []
    for a, b in zip(edges[::2], edges[1::2]):
        start, end = a * step + offset - step / 2, b * step + offset - step / 2
        if runs and start - runs[-1][1] <= settings.merge_gap:
            runs[-1][1] = end
        else:
            runs.append([start, end])
    return [(max(0.0, s), e) for s, e in runs if e - s >= settings.min_turn]


def turns(active, settings, added=None):
    """(speaker, start, end, overlap) in seconds, speakers numbered by first appearance;
    `overlap` marks the turns made of `added` frames (a second voice the count missed), outside
    the speaker's own turns."""
    step = FRAME_STEP / RATE
    offset = FRAME_SPAN / 2 / RATE
    centres = np.arange(active.shape[0]) * step + offset
    found = []
    for c in range(active.shape[1]):
        own = _runs(active[:, c], settings)  # sorted and disjoint
        found += [(c, s, e, False) for s, e in own]
        if added is not None and added[:, c].any() and own:
            # Frames whose centre lies inside one of the speaker's own turns are already its.
            bounds = np.searchsorted(centres, np.array(own))  # per turn: its first frame, the one after
            inside = np.zeros(len(centres) + 1, dtype=np.int32)
            np.add.at(inside, bounds[:, 0], 1)
            np.add.at(inside, bounds[:, 1], -1)
            extra = added[:, c] & (np.cumsum(inside[:-1]) == 0)
            ends = [e for _, e in own]
            for s, e in _runs(extra, settings):
                # Clipped to the speaker's own turns, which gap closing may have reached: from the
                # first own turn ending after `s`, while they start before `e`.
                i = bisect.bisect_right(ends, s)
                while i < len(own) and own[i][0] < e:
                    if own[i][0] <= s:
                        s, i = own[i][1], i + 1
                    else:
                        e = own[i][0]
                if e - s >= settings.min_turn:
                    found.append((c, s, e, True))
        elif added is not None:
            found += [(c, s, e, True) for s, e in _runs(added[:, c], settings)]
    found.sort(key=lambda t: (t[1], t[2]))
    names = {}
    for c, _, _, overlap in found:
        if not overlap:
            names.setdefault(c, len(names))
    for c, _, _, _ in found:  # a speaker heard only over others comes last
        names.setdefault(c, len(names))
    return [(names[c], s, e, overlap) for c, s, e, overlap in found], names


def diarize(path, models, settings=None, speakers=None, min_speakers=1, max_speakers=None, progress=None):
    """Who spoke when in a 16 kHz mono file: a list of (speaker index, start, end, overlap),
    `overlap` marking a second voice's turn over another speaker's."""
    settings = settings or Settings()
    windows, length = analyse(path, models, settings, progress)
    # Speakers with little speech in every window are clustered only if nobody has more.
    clustered = [(e, s, i) for i, w in enumerate(windows) for e, s, c in zip(w.embeddings, w.speech, w.clustered) if c]
    if not clustered:
        clustered = [(e, s, i) for i, w in enumerate(windows) for e, s in zip(w.embeddings, w.speech)]
    if not clustered:
        return [], length / RATE, np.zeros((0, 192), dtype=np.float32)
    points = np.stack([e for e, _, _ in clustered])
    weights = np.array([s for _, s, _ in clustered])
    sources = np.array([i for _, _, i in clustered])
    # The cut follows the recording with a count given too: the count is met from its clusters.
    settings = copy.copy(settings)
    settings.threshold = threshold(windows, settings)
    labels, centroids = cluster(points, weights, settings, speakers, min_speakers, max_speakers, sources)
    assign(windows, centroids)
    active, added = reconstruct(windows, length, len(centroids), settings)
    if settings.chunk > 0 and active.any():
        labels, chunk_centroids = chunk_labels(path, models, active, settings)
        relabelled = relabel(active, added, centroids, labels, chunk_centroids, speakers or max_speakers)
        if relabelled[0].any(axis=0).sum() >= (speakers or min_speakers):
            active, added, centroids = relabelled
    found, names = turns(active, settings, added)
    # The centroids of the speakers that remain, in their new numbering, for voice matching.
    kept = sorted(names, key=names.get)
    return found, length / RATE, centroids[kept] if kept else centroids[:0]
