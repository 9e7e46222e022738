/// Finds who spoke when, from feature frames:
///
/// 1. voice activity (energy, adaptive floor, hysteresis) gives speech segments;
/// 2. speech is cut into units at short pauses and at most ``DiarizationConfiguration/maxUnit`` long;
/// 3. each unit gets an embedding: median pitch and the mean MFCC of its voiced frames;
/// 4. the embeddings are whitened by the within-speaker covariance learned from the two halves of
///    each unit and reduced to the directions in which units differ more than a voice does;
///    there they are clustered (average linkage and k-means), and the speaker count comes from
///    divisive splitting that asks for a gap both wide and significant, or is given;
/// 5. frame-level re-segmentation: sliding windows scored against the speaker centroids, decoded
///    with a Viterbi pass whose switch cost finds the speaker changes inside speech;
/// 6. runs of one speaker become turns; same-speaker turns a short pause apart are joined.
public struct SpeakerDiarizer: Sendable {
    public var configuration: DiarizationConfiguration

    public init(configuration: DiarizationConfiguration = .init()) {
        self.configuration = configuration
    }

    /// Decodes, analyses and diarizes a file in bounded memory.
    public func diarize(path: String, analyzer: AudioAnalyzer = .init()) throws -> Diarization {
        let analyzed = try analyzer.analyze(path: path)
        return try diarize(analyzed.frames, duration: analyzed.duration)
    }

    public func diarize(_ frames: FeatureFrames, duration: Double) throws(AudioError) -> Diarization {
        let c = configuration
        try c.validate()
        let (speech, vad) = VoiceActivityDetector.detect(
            energy: frames.speechEnergy, voicing: frames.voicing, configuration: c.voiceActivity,
            features: frames.configuration)
        let builder = EmbeddingBuilder(frames: frames, speechMask: vad.rawSpeech)
        let hop = frames.configuration.hopDuration
        // Speech segments bridge pauses of up to minSilence, as a user of voice activity wants;
        // speakers are labelled within islands split at shorter pauses, because a pause that
        // long may just as well be one person handing over to another.
        let islandPause = max(1, Int((c.islandPause / hop).rounded()))
        let islands = speech.flatMap { segment in
            Self.splitAtPauses(segment.startFrame..<segment.endFrame, mask: vad.rawSpeech, minPause: islandPause)
                .map { piece in
                    SpeechSegment(
                        startFrame: piece.lowerBound, endFrame: piece.upperBound,
                        start: piece.lowerBound == segment.startFrame
                            ? segment.start : frames.configuration.time(ofFrame: piece.lowerBound) - hop / 2,
                        end: piece.upperBound == segment.endFrame
                            ? segment.end : frames.configuration.time(ofFrame: piece.upperBound - 1) + hop / 2)
                }
        }

        // Units: speech between pauses, cut to at most maxUnit.
        let pauseFrames = max(1, Int((c.unitPause / hop).rounded()))
        let maxUnitFrames = max(1, Int((c.maxUnit / hop).rounded()))
        var units: [Range<Int>] = []
        for segment in speech {
            for piece in Self.splitAtPauses(
                segment.startFrame..<segment.endFrame, mask: vad.rawSpeech,
                minPause: pauseFrames)
            {
                let parts = max(1, Int((Double(piece.count) / Double(maxUnitFrames)).rounded(.up)))
                for p in 0..<parts {
                    let lo = piece.lowerBound + piece.count * p / parts
                    let hi = piece.lowerBound + piece.count * (p + 1) / parts
                    if hi > lo { units.append(lo..<hi) }
                }
            }
        }
        let embedded = units.compactMap { range in builder.embedding(range).map { (range, $0) } }
        guard !embedded.isEmpty else {
            return Diarization(turns: [], speakers: [], speech: speech, duration: duration)
        }

        let halves = embedded.compactMap { range, _ -> (SegmentEmbedding, SegmentEmbedding)? in
            let middle = (range.lowerBound + range.upperBound) / 2
            guard range.count >= 20, let a = builder.embedding(range.lowerBound..<middle),
                let b = builder.embedding(middle..<range.upperBound)
            else { return nil }
            return (a, b)
        }
        let space = EmbeddingSpace(fitting: embedded.map(\.1), halves: halves)
        let points = embedded.map { space.project($0.1) }
        // Cluster the units that are long and voiced enough to be trusted.
        let trusted = embedded.indices.filter {
            embedded[$0].1.duration >= c.minClusteredUnit && points[$0].full != nil
        }
        var clusterIndices = trusted.isEmpty ? Array(embedded.indices) : trusted
        // Clustering needs an n x n distance matrix; beyond a few thousand units (a long
        // meeting) an even sample over time finds the same voices in bounded memory, and the
        // re-segmentation then labels every unit against the centroids.
        if clusterIndices.count > c.maxClusteredUnits {
            let step = Double(clusterIndices.count) / Double(c.maxClusteredUnits)
            clusterIndices = (0..<c.maxClusteredUnits).map { clusterIndices[Int(Double($0) * step)] }
        }
        let clustering = SpeakerClustering(space: space, configuration: c)
        let fullPoints = clusterIndices.map { points[$0] }
        let clusterWeights = clusterIndices.map { embedded[$0].1.duration }
        let centroids: [EmbeddingSpace.Point]
        if c.speakerDirectionVariance > 0 {
            let reduced = Self.principal(fullPoints, weights: clusterWeights, minVariance: c.speakerDirectionVariance)
            let found = clustering.speakers(points: reduced, weights: clusterWeights)
            // Back to the full space: each speaker's centroid from its units there.
            let labels = reduced.map { clustering.nearest($0, found) }
            centroids = Set(labels).sorted().map { l in
                clustering.centroid(
                    of: fullPoints, weights: clusterWeights, members: labels.indices.filter { labels[$0] == l })
            }
        } else {
            centroids = clustering.speakers(points: fullPoints, weights: clusterWeights)
        }

        // Label every frame of speech.
        var labels = [Int](repeating: -1, count: frames.count)
        if c.resegment && centroids.count > 1 {
            for segment in islands {
                resegment(
                    segment, builder: builder, clustering: clustering, centroids: centroids, hop: hop, into: &labels)
            }
        } else {
            for (i, (range, _)) in embedded.enumerated() {
                let s = clustering.nearest(points[i], centroids)
                for f in range { labels[f] = s }
            }
            for segment in islands { Self.fillGaps(segment.startFrame..<segment.endFrame, labels: &labels) }
        }
        var result = Self.turns(
            from: labels, speech: islands, frames: frames, mergeGap: c.mergeGap, duration: duration)
        result.speech = speech
        result.voices = Self.voices(of: result.turns, builder: builder, hop: hop)
        result.voiceKind = Self.voiceKind
        return result
    }

    /// The kind of the classic diarizer's voice embeddings: the median pitch (semitones above
    /// 55 Hz) and the mean MFCC 1-19 of the voiced frames of all a speaker's turns, as the front's
    /// default features compute them (see ``SpeakerDiarizer/voices(of:builder:hop:)``).
    public static let voiceKind = "classic-pitch-mfcc-20"

    /// Each speaker's voice over all its turns; a speaker with too few voiced frames for a pitch
    /// has none. Unlike the clustering's points these are not whitened by the meeting's own
    /// statistics, so that two meetings' voices can be compared.
    static func voices(of turns: [SpeakerTurn], builder: EmbeddingBuilder, hop: Double) -> [String: [Float]] {
        var ranges: [String: [Range<Int>]] = [:]
        for turn in turns {
            let lo = max(0, Int((turn.start / hop).rounded()))
            let hi = Int((turn.end / hop).rounded())
            if hi > lo { ranges[turn.speaker, default: []].append(lo..<hi) }
        }
        var voices: [String: [Float]] = [:]
        for (speaker, pieces) in ranges {
            guard let e = builder.embedding(pieces), let pitch = e.pitch else { continue }
            voices[speaker] = (pitch + e.timbre).map { Float($0) }
        }
        return voices
    }

    /// Projects whitened points onto the directions in which they vary at least `minVariance`
    /// times as much as one voice varies from itself (2 to 6 of them): that is where speakers
    /// differ. Counting in those few directions keeps a handful of units in twenty dimensions
    /// from always offering some direction in which they seem to fall in two groups.
    static func principal(_ points: [EmbeddingSpace.Point], weights: [Double], minVariance: Double)
        -> [EmbeddingSpace.Point]
    {
        guard let n = points.first?.full?.count, points.allSatisfy({ $0.full != nil }) else { return points }
        let total = weights.reduce(0, +)
        var mean = [Double](repeating: 0, count: n)
        for (p, w) in zip(points, weights) { for d in 0..<n { mean[d] += w * p.full![d] / total } }
        var cov = [[Double]](repeating: [Double](repeating: 0, count: n), count: n)
        for (p, w) in zip(points, weights) {
            let x = p.full!
            for i in 0..<n { for j in 0..<n { cov[i][j] += w * (x[i] - mean[i]) * (x[j] - mean[j]) / total } }
        }
        let (values, vectors) = symmetricEigen(cov)
        let keep = min(n, max(2, min(6, values.filter { $0 >= minVariance }.count)))
        let axes = vectors.prefix(keep)
        return points.map { p in
            let x = p.full!
            let y = axes.map { v in (0..<n).reduce(0.0) { $0 + v[$1] * (x[$1] - mean[$1]) } }
            return EmbeddingSpace.Point(full: y, timbre: y)
        }
    }

    // MARK: - re-segmentation

    /// Scores sliding windows of a speech segment against each speaker and decodes the best
    /// label sequence with a Viterbi pass: a change of speaker costs `switchPenalty`.
    private func resegment(
        _ segment: SpeechSegment, builder: EmbeddingBuilder, clustering: SpeakerClustering,
        centroids: [EmbeddingSpace.Point], hop: Double, into labels: inout [Int]
    ) {
        let c = configuration
        let step = max(1, Int((c.resegmentStep / hop).rounded()))
        let half = max(1, Int((c.resegmentWindow / hop / 2).rounded()))
        let range = segment.startFrame..<segment.endFrame
        var centres: [Int] = []
        var costs: [[Double]] = []
        var centre = range.lowerBound + min(step / 2, range.count / 2)
        while centre < range.upperBound {
            let window = max(range.lowerBound, centre - half)..<min(range.upperBound, centre + half)
            if let e = builder.embedding(window) {
                let p = clustering.space.project(e)
                centres.append(centre)
                costs.append(centroids.map { clustering.space.distanceSquared(p, $0) })
            }
            centre += step
        }
        guard !costs.isEmpty else { return }
        let path = Self.viterbi(costs: costs, penalty: c.switchPenalty * medianBestCost(costs))
        // Each frame takes the label of the nearest window centre.
        var w = 0
        for f in range {
            while w + 1 < centres.count && abs(centres[w + 1] - f) <= abs(centres[w] - f) { w += 1 }
            labels[f] = path[w]
        }
    }

    private func medianBestCost(_ costs: [[Double]]) -> Double {
        let best = costs.map { $0.min() ?? 0 }.sorted()
        return max(1e-6, best[best.count / 2])
    }

    static func viterbi(costs: [[Double]], penalty: Double) -> [Int] {
        let k = costs[0].count
        var total = costs[0]
        var back = [[Int]](repeating: [Int](repeating: 0, count: k), count: costs.count)
        for t in 1..<costs.count {
            let bestPrevious = total.indices.min { total[$0] < total[$1] }!
            var next = [Double](repeating: 0, count: k)
            for s in 0..<k {
                let stay = total[s]
                let move = total[bestPrevious] + penalty
                if stay <= move {
                    next[s] = stay + costs[t][s]
                    back[t][s] = s
                } else {
                    next[s] = move + costs[t][s]
                    back[t][s] = bestPrevious
                }
            }
            total = next
        }
        var path = [Int](repeating: 0, count: costs.count)
        path[costs.count - 1] = total.indices.min { total[$0] < total[$1] }!
        for t in stride(from: costs.count - 1, to: 0, by: -1) { path[t - 1] = back[t][path[t]] }
        return path
    }

    // MARK: - frames to turns

    /// Splits a frame range at runs of non-speech at least `minPause` long; drops the pauses.
    static func splitAtPauses(_ range: Range<Int>, mask: [Bool], minPause: Int) -> [Range<Int>] {
        var pieces: [Range<Int>] = []
        var start: Int?
        var lastSpeech = range.lowerBound - 1
        for f in range {
            if mask[f] {
                if let s = start, f - lastSpeech - 1 >= minPause {
                    pieces.append(s..<(lastSpeech + 1))
                    start = f
                } else if start == nil {
                    start = f
                }
                lastSpeech = f
            }
        }
        if let s = start { pieces.append(s..<(lastSpeech + 1)) }
        return pieces
    }

    /// Gives unlabelled frames inside a segment the label of the nearest labelled frame.
    static func fillGaps(_ range: Range<Int>, labels: inout [Int]) {
        var lastLabel = -1
        var gapStart: Int?
        for f in range {
            if labels[f] < 0 {
                if gapStart == nil { gapStart = f }
                continue
            }
            if let g = gapStart {
                let mid = lastLabel < 0 ? g : (g + f) / 2
                for x in g..<f { labels[x] = x < mid ? lastLabel : labels[f] }
                gapStart = nil
            }
            lastLabel = labels[f]
        }
        if let g = gapStart, lastLabel >= 0 { for x in g..<range.upperBound { labels[x] = lastLabel } }
    }

    static func turns(
        from labels: [Int], speech: [SpeechSegment], frames: FeatureFrames, mergeGap: Double, duration: Double
    ) -> Diarization {
        var raw: [(label: Int, start: Double, end: Double)] = []
        for segment in speech {
            var f = segment.startFrame
            while f < segment.endFrame {
                let label = labels[f]
                var g = f + 1
                while g < segment.endFrame && labels[g] == label { g += 1 }
                if label >= 0 {
                    let start = f == segment.startFrame ? segment.start : frames.configuration.time(ofFrame: f)
                    let end = g == segment.endFrame ? segment.end : frames.configuration.time(ofFrame: g)
                    if let last = raw.last, last.label == label, start - last.end < mergeGap {
                        raw[raw.count - 1].end = end
                    } else {
                        raw.append((label, start, end))
                    }
                }
                f = g
            }
        }
        // Name speakers by first appearance.
        var names: [Int: String] = [:]
        for r in raw where names[r.label] == nil {
            names[r.label] = "SPEAKER_" + (names.count < 10 ? "0" : "") + String(names.count)
        }
        let turns = raw.map { SpeakerTurn(speaker: names[$0.label]!, start: $0.start, end: min(duration, $0.end)) }
        let speakers = names.sorted { $0.value < $1.value }.map(\.value)
        return Diarization(turns: turns, speakers: speakers, speech: speech, duration: duration)
    }
}
