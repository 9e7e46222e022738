/// Finds who spoke when, from feature frames:
///
/// 1. voice activity (energy, adaptive floor, hysteresis) gives speech segments;
/// 2. speech is cut into units at short pauses and at most ``DiarizationConfiguration/maxUnit`` long;
/// 3. each unit gets an embedding (pitch median and spread, MFCC means), standardised over the recording;
/// 4. average-linkage clustering; the speaker count is the cut that separates the units best
///    (duration-weighted simplified silhouette, refined by k-means), or the count given;
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
            energy: frames.energy, configuration: c.voiceActivity, features: frames.configuration)
        let builder = EmbeddingBuilder(frames: frames, speechMask: vad.rawSpeech)
        let hop = frames.configuration.hopDuration

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

        // Cluster the units that are long and voiced enough to be trusted.
        let space = EmbeddingSpace(
            fitting: embedded.map(\.1), pitchWeight: c.pitchWeight, timbreWeight: c.timbreWeight)
        let points = embedded.map { space.project($0.1) }
        let trusted = embedded.indices.filter {
            embedded[$0].1.duration >= c.minClusteredUnit && points[$0].pitch != nil
        }
        let clusterIndices = trusted.isEmpty ? Array(embedded.indices) : trusted
        let centroids = chooseSpeakers(
            points: clusterIndices.map { points[$0] }, weights: clusterIndices.map { embedded[$0].1.duration })

        // Label every frame of speech.
        var labels = [Int](repeating: -1, count: frames.count)
        if c.resegment && centroids.count > 1 {
            for segment in speech {
                resegment(segment, builder: builder, space: space, centroids: centroids, hop: hop, into: &labels)
            }
        } else {
            for (i, (range, _)) in embedded.enumerated() {
                let s = Self.nearest(points[i], centroids)
                for f in range { labels[f] = s }
            }
            for segment in speech { Self.fillGaps(segment.startFrame..<segment.endFrame, labels: &labels) }
        }
        return Self.turns(from: labels, speech: speech, frames: frames, mergeGap: c.mergeGap, duration: duration)
    }

    // MARK: - speaker count and centroids

    /// Clusters the points and returns one centroid per speaker found.
    ///
    /// With a known count, the units are partitioned into that many speakers. Otherwise the
    /// count comes from divisive splitting: a group is split in two while the split separates
    /// it well (simplified silhouette at least ``DiarizationConfiguration/minSilhouette``) and
    /// both halves hold enough speech. Judging each split inside its own group, rather than
    /// all clusters at once, keeps a large gap (say, between low and high voices) from hiding
    /// the smaller gaps between the voices on each side of it.
    func chooseSpeakers(points: [EmbeddingSpace.Point], weights: [Double]) -> [EmbeddingSpace.Point] {
        let n = points.count
        let c = configuration
        let all = Array(0..<n)
        let upper = min(n, c.speakers ?? c.maxSpeakers)
        let lower = min(upper, c.speakers ?? c.minSpeakers)
        let whole = [Self.centroid(of: points, weights: weights, members: all)]
        if upper <= 1 { return whole }
        let total = weights.reduce(0, +)
        let minimumSize = min(c.minSpeakerTime, total * 0.5 / Double(upper))
        var groups: [[Int]] = []
        if c.speakers == nil {
            var pending = [all]
            while let group = pending.popLast() {
                guard groups.count + pending.count + 1 < upper,
                    let halves = partition(group, into: 2, points: points, weights: weights, minimumSize: minimumSize)
                else {
                    groups.append(group)
                    continue
                }
                let centroids = halves.map { Self.centroid(of: points, weights: weights, members: $0) }
                let score = Self.silhouette(
                    points: group.map { points[$0] }, weights: group.map { weights[$0] }, centroids: centroids)
                if score >= c.minSilhouette { pending += halves } else { groups.append(group) }
            }
        }
        if groups.count < lower || c.speakers != nil {
            guard
                let forced = partition(all, into: lower, points: points, weights: weights, minimumSize: minimumSize)
                    ?? partition(all, into: lower, points: points, weights: weights, minimumSize: 0)
            else { return whole }
            groups = forced
        }
        if groups.count == 1 { return whole }
        return groups.map { Self.centroid(of: points, weights: weights, members: $0) }
    }

    /// Splits `members` into k groups: an average-linkage tree, cut deep enough that k groups
    /// hold at least `minimumSize` seconds each (smaller ones are outliers and are folded into
    /// the nearest), then refined by k-means. Nil when no such k groups exist.
    func partition(
        _ members: [Int], into k: Int, points: [EmbeddingSpace.Point], weights: [Double], minimumSize: Double
    ) -> [[Int]]? {
        let m = members.count
        guard m >= k else { return nil }
        var matrix = [Float](repeating: 0, count: m * m)
        for i in 0..<m {
            for j in (i + 1)..<m {
                let v = Float(EmbeddingSpace.distanceSquared(points[members[i]], points[members[j]]).squareRoot())
                matrix[i * m + j] = v
                matrix[j * m + i] = v
            }
        }
        let localWeights = members.map { weights[$0] }
        let tree = AgglomerativeClustering(distances: matrix, weights: localWeights)
        var cut = k
        var labels = tree.labels(clusters: cut)
        var sizes: [Double] = []
        while true {
            sizes = [Double](repeating: 0, count: cut)
            for (i, l) in labels.enumerated() { sizes[l] += localWeights[i] }
            if sizes.filter({ $0 >= minimumSize }).count >= k || cut >= m { break }
            cut += 1
            labels = tree.labels(clusters: cut)
        }
        let large = sizes.indices.filter { sizes[$0] >= minimumSize }.sorted { sizes[$0] > sizes[$1] }
        guard large.count >= k else { return nil }
        let localPoints = members.map { points[$0] }
        let seeds = large.prefix(k).map { l in
            Self.centroid(of: localPoints, weights: localWeights, members: labels.indices.filter { labels[$0] == l })
        }
        let centroids = Self.refine(
            points: localPoints, weights: localWeights, labels: localPoints.map { Self.nearest($0, seeds) })
        guard centroids.count == k else { return nil }
        var groups = [[Int]](repeating: [], count: k)
        for (i, p) in localPoints.enumerated() { groups[Self.nearest(p, centroids)].append(members[i]) }
        return groups.contains(where: \.isEmpty) ? nil : groups
    }

    static func centroid(of points: [EmbeddingSpace.Point], weights: [Double], members: [Int])
        -> EmbeddingSpace.Point
    {
        let dims = points[members[0]].timbre.count
        var timbre = [Double](repeating: 0, count: dims)
        var pitch = [Double](repeating: 0, count: SegmentEmbedding.pitchDimensions)
        var total = 0.0
        var pitchTotal = 0.0
        for i in members {
            let w = weights[i]
            total += w
            for d in 0..<dims { timbre[d] += w * points[i].timbre[d] }
            if let p = points[i].pitch {
                pitchTotal += w
                for d in 0..<p.count { pitch[d] += w * p[d] }
            }
        }
        return EmbeddingSpace.Point(
            pitch: pitchTotal > 0 ? pitch.map { $0 / pitchTotal } : nil, timbre: timbre.map { $0 / max(total, 1e-9) })
    }

    /// A few rounds of weighted k-means from the dendrogram's cut; clusters that empty vanish.
    static func refine(points: [EmbeddingSpace.Point], weights: [Double], labels initial: [Int])
        -> [EmbeddingSpace.Point]
    {
        var labels = initial
        var centroids: [EmbeddingSpace.Point] = []
        for _ in 0..<10 {
            let groups = Dictionary(grouping: labels.indices, by: { labels[$0] })
            centroids = groups.keys.sorted().map { centroid(of: points, weights: weights, members: groups[$0]!) }
            let next = points.map { nearest($0, centroids) }
            if next == labels { break }
            labels = next
        }
        return centroids
    }

    /// Duration-weighted simplified silhouette: how much nearer each point is to its own centroid
    /// than to the next one, from 0 (no structure) to 1 (tight, distant clusters). It has no scale,
    /// so it carries over between recordings of any length.
    static func silhouette(points: [EmbeddingSpace.Point], weights: [Double], centroids: [EmbeddingSpace.Point])
        -> Double
    {
        guard centroids.count > 1 else { return 0 }
        var sum = 0.0
        var total = 0.0
        for (i, p) in points.enumerated() {
            var distances = centroids.map { EmbeddingSpace.distanceSquared(p, $0).squareRoot() }
            distances.sort()
            let a = distances[0], b = distances[1]
            sum += weights[i] * (b - a) / max(b, 1e-9)
            total += weights[i]
        }
        return sum / max(total, 1e-9)
    }

    static func nearest(_ p: EmbeddingSpace.Point, _ centroids: [EmbeddingSpace.Point]) -> Int {
        var best = 0
        var bestDistance = Double.infinity
        for (s, centroid) in centroids.enumerated() {
            let d = EmbeddingSpace.distanceSquared(p, centroid)
            if d < bestDistance {
                bestDistance = d
                best = s
            }
        }
        return best
    }

    // MARK: - re-segmentation

    /// Scores sliding windows of a speech segment against each speaker and decodes the best
    /// label sequence with a Viterbi pass: a change of speaker costs `switchPenalty`.
    private func resegment(
        _ segment: SpeechSegment, builder: EmbeddingBuilder, space: EmbeddingSpace,
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
                let p = space.project(e)
                centres.append(centre)
                costs.append(centroids.map { EmbeddingSpace.distanceSquared(p, $0) })
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
