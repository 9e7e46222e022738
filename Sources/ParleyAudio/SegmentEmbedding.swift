import Foundation

/// Describes a stretch of speech by the speaker cues that survive on short
/// segments: pitch (median and spread, in semitones) and timbre (MFCC means).
///
/// Pitch is the stronger cue between speakers, so a segment without enough
/// voiced frames has no pitch part (``pitch`` is nil) and distances then use
/// the timbre part alone.
struct SegmentEmbedding {
    var pitch: [Double]?
    var timbre: [Double]
    /// Variance of the frames around ``timbre``: how much the sounds spoken move the spectrum.
    var timbreVariance: [Double]
    var duration: Double

    static let pitchDimensions = 2
    /// MFCC 1...19: c0 is loudness, not voice; the high coefficients separate similar voices.
    static let timbreRange = 1..<20
}

/// Builds embeddings from feature frames.
struct EmbeddingBuilder {
    let frames: FeatureFrames
    let speechMask: [Bool]
    /// Voicing strength a frame needs for its pitch to count.
    var minVoicing: Float = 0.55
    var minVoicedFrames = 5
    /// Average the timbre over voiced frames only: vowels carry the vocal tract, bursts and
    /// fricatives mostly the sound being made.
    var voicedTimbre = true

    func embedding(_ range: Range<Int>) -> SegmentEmbedding? {
        let n = frames.configuration.mfccCount
        let dims = SegmentEmbedding.timbreRange.clamped(to: 0..<n)
        var sum = [Double](repeating: 0, count: dims.count)
        var squares = [Double](repeating: 0, count: dims.count)
        var count = 0
        var semitones: [Double] = []
        frames.mfcc.withUnsafeBufferPointer { mfcc in
            for f in range where speechMask[f] {
                let voiced = !frames.f0.isEmpty && frames.f0[f] > 0 && frames.voicing[f] >= minVoicing
                if voiced { semitones.append(12 * log2(Double(frames.f0[f]) / 55)) }
                if voicedTimbre && !voiced { continue }
                count += 1
                let base = f * n
                for (j, d) in dims.enumerated() {
                    let v = Double(mfcc[base + d])
                    sum[j] += v
                    squares[j] += v * v
                }
            }
        }
        guard count > 0 else { return nil }
        let timbre = sum.map { $0 / Double(count) }
        let variance = zip(squares, timbre).map { max(0, $0 / Double(count) - $1 * $1) }
        let duration = Double(range.count) * frames.configuration.hopDuration
        return SegmentEmbedding(
            pitch: Self.pitchSummary(semitones, minCount: minVoicedFrames), timbre: timbre, timbreVariance: variance,
            duration: duration)
    }

    /// Median and interquartile spread, after folding octave errors toward the median.
    static func pitchSummary(_ values: [Double], minCount: Int) -> [Double]? {
        guard values.count >= minCount else { return nil }
        var v = values.sorted()
        let median = v[v.count / 2]
        // A frame an octave off the segment's median is a tracking error, not a new voice.
        v = v.map { x in
            if abs(x - median - 12) < 2.5 { return x - 12 }
            if abs(x - median + 12) < 2.5 { return x + 12 }
            return x
        }.sorted()
        let m = v[v.count / 2]
        let spread = v[(v.count * 3) / 4] - v[v.count / 4]
        return [m, spread]
    }
}

/// Standardises embeddings (duration-weighted mean and deviation per dimension)
/// and weighs the pitch and timbre parts, so that plain Euclidean distance
/// between the results compares speakers.
struct EmbeddingSpace {
    private var pitchMean: [Double]
    private var pitchScale: [Double]
    private var timbreMean: [Double]
    private var timbreScale: [Double]

    init(fitting embeddings: [SegmentEmbedding], pitchWeight: Double, timbreWeight: Double) {
        func stats(_ rows: [([Double], Double)], dims: Int) -> (mean: [Double], sd: [Double]) {
            var mean = [Double](repeating: 0, count: dims)
            var sq = [Double](repeating: 0, count: dims)
            let total = max(1e-9, rows.reduce(0) { $0 + $1.1 })
            for (row, w) in rows { for d in 0..<dims { mean[d] += w * row[d] } }
            mean = mean.map { $0 / total }
            for (row, w) in rows { for d in 0..<dims { sq[d] += w * (row[d] - mean[d]) * (row[d] - mean[d]) } }
            return (mean, sq.map { max(1e-6, ($0 / total).squareRoot()) })
        }
        let pitched = embeddings.compactMap { e in e.pitch.map { ($0, e.duration) } }
        let p = stats(pitched, dims: SegmentEmbedding.pitchDimensions)
        let timbreDims = embeddings.first?.timbre.count ?? 0
        let t = stats(embeddings.map { ($0.timbre, $0.duration) }, dims: timbreDims)
        pitchMean = p.mean
        // The median carries the voice; the spread (intonation) gets half its weight.
        let pitchWeights = [pitchWeight, pitchWeight / 2]
        pitchScale = zip(p.sd, pitchWeights).map { $1 / $0 }
        timbreMean = t.mean
        let perDimension = timbreWeight / Double(max(1, timbreDims)).squareRoot()
        do {
            // Scale each timbre dimension by the spread that the spoken sounds cause within
            // segments, so the phonetic noise is the same in every direction and what is left
            // over between segments is the voice.
            var within = [Double](repeating: 0, count: timbreDims)
            var total = 0.0
            for e in embeddings {
                total += e.duration
                for d in 0..<timbreDims { within[d] += e.duration * e.timbreVariance[d] }
            }
            let wsd = within.map { max(1e-6, ($0 / max(total, 1e-9)).squareRoot()) }
            let raw = wsd.map { 1 / $0 }
            // Keep the part's overall weight comparable: the mean of the between-unit spread in these units is 1.
            let between = zip(t.sd, raw).map { $0 * $1 }
            let norm = (between.map { $0 * $0 }.reduce(0, +) / Double(max(1, timbreDims))).squareRoot()
            timbreScale = raw.map { perDimension * $0 / max(norm, 1e-9) }
        }
    }

    /// A point in the space: pitch part (or nil) and timbre part.
    struct Point {
        var pitch: [Double]?
        var timbre: [Double]
    }

    func project(_ e: SegmentEmbedding) -> Point {
        Point(
            pitch: e.pitch.map { p in (0..<p.count).map { (p[$0] - pitchMean[$0]) * pitchScale[$0] } },
            timbre: (0..<e.timbre.count).map { (e.timbre[$0] - timbreMean[$0]) * timbreScale[$0] })
    }

    /// Squared distance; the pitch part counts only where both points have it,
    /// and is then replaced by the timbre part's share so scales stay comparable.
    static func distanceSquared(_ a: Point, _ b: Point) -> Double {
        var t = 0.0
        for i in 0..<a.timbre.count {
            let d = a.timbre[i] - b.timbre[i]
            t += d * d
        }
        guard let pa = a.pitch, let pb = b.pitch else { return t * 2 }
        var p = 0.0
        for i in 0..<pa.count {
            let d = pa[i] - pb[i]
            p += d * d
        }
        return t + p
    }
}
