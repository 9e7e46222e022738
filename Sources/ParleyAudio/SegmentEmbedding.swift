import Foundation

/// Describes a stretch of speech by the speaker cues that survive on short
/// segments: pitch (the median, in semitones) and timbre (MFCC means of voiced frames).
///
/// Pitch is the stronger cue between speakers, so a segment without enough
/// voiced frames has no pitch part (``pitch`` is nil) and distances then use
/// the timbre part alone.
struct SegmentEmbedding {
    var pitch: [Double]?
    var timbre: [Double]
    var duration: Double

    /// The median pitch: the spread (intonation) varies more within a voice than between voices.
    static let pitchDimensions = 1
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

    func embedding(_ range: Range<Int>) -> SegmentEmbedding? { embedding([range]) }

    /// One embedding of several stretches together (all of one speaker's turns).
    func embedding(_ ranges: [Range<Int>]) -> SegmentEmbedding? {
        let n = frames.configuration.mfccCount
        let dims = SegmentEmbedding.timbreRange.clamped(to: 0..<n)
        var sum = [Double](repeating: 0, count: dims.count)
        var count = 0
        var semitones: [Double] = []
        frames.mfcc.withUnsafeBufferPointer { mfcc in
            for range in ranges {
                for f in range.clamped(to: 0..<speechMask.count) where speechMask[f] {
                    let voiced = !frames.f0.isEmpty && frames.f0[f] > 0 && frames.voicing[f] >= minVoicing
                    if voiced { semitones.append(12 * log2(Double(frames.f0[f]) / 55)) }
                    if voicedTimbre && !voiced { continue }
                    count += 1
                    let base = f * n
                    for (j, d) in dims.enumerated() { sum[j] += Double(mfcc[base + d]) }
                }
            }
        }
        guard count > 0 else { return nil }
        let timbre = sum.map { $0 / Double(count) }
        let duration = Double(ranges.reduce(0) { $0 + $1.count }) * frames.configuration.hopDuration
        return SegmentEmbedding(
            pitch: Self.pitchSummary(semitones, minCount: minVoicedFrames), timbre: timbre,
            duration: duration)
    }

    /// The median in semitones, after folding octave errors toward the first median.
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
        return [m]
    }
}

/// The space speakers are compared in: embeddings whitened by their within-speaker
/// covariance, so that squared Euclidean distance is a Mahalanobis distance in which the
/// spread one voice shows from moment to moment has unit variance in every direction.
///
/// The within-speaker covariance is learned from the recording itself: the two halves of a
/// unit are almost always the same speaker, so the differences between their embeddings
/// measure how much one voice varies with what it says (a classic unsupervised stand-in for
/// within-class covariance normalisation). Nothing is weighted by hand, and the scale is the
/// same for every recording, which is what lets one separation threshold count speakers in
/// a one-minute and a one-hour meeting alike.
struct EmbeddingSpace {
    /// A point: the whitened pitch-and-timbre vector where the segment was voiced enough to
    /// have a pitch, and the whitened timbre vector always.
    struct Point {
        var full: [Double]?
        var timbre: [Double]
    }

    private let fullWhitening: Whitening?
    private let timbreWhitening: Whitening
    let fullDimensions: Int
    let timbreDimensions: Int

    init(fitting embeddings: [SegmentEmbedding], halves: [(SegmentEmbedding, SegmentEmbedding)]) {
        let timbreDims = embeddings.first?.timbre.count ?? 0
        timbreDimensions = timbreDims
        fullDimensions = timbreDims + SegmentEmbedding.pitchDimensions
        let pitched = embeddings.compactMap { e in e.pitch.map { ($0 + e.timbre, e.duration) } }
        let pitchedPairs = halves.compactMap { a, b in
            a.pitch.flatMap { pa in b.pitch.map { pb in zip(pa + a.timbre, pb + b.timbre).map { $0 - $1 } } }
        }
        fullWhitening =
            pitched.isEmpty
            ? nil
            : Whitening(
                points: pitched, differences: pitchedPairs, dimensions: fullDimensions)
        timbreWhitening = Whitening(
            points: embeddings.map { ($0.timbre, $0.duration) },
            differences: halves.map { a, b in zip(a.timbre, b.timbre).map { $0 - $1 } }, dimensions: timbreDims)
    }

    func project(_ e: SegmentEmbedding) -> Point {
        Point(
            full: e.pitch.flatMap { p in fullWhitening?.apply(p + e.timbre) },
            timbre: timbreWhitening.apply(e.timbre))
    }

    /// Squared distance. Where either point lacks a pitch, the timbre part alone is used,
    /// scaled up so that its expected size for one speaker matches the full distance's.
    func distanceSquared(_ a: Point, _ b: Point) -> Double {
        if let fa = a.full, let fb = b.full {
            var d = 0.0
            for i in 0..<fa.count { d += (fa[i] - fb[i]) * (fa[i] - fb[i]) }
            return d
        }
        var d = 0.0
        for i in 0..<a.timbre.count { d += (a.timbre[i] - b.timbre[i]) * (a.timbre[i] - b.timbre[i]) }
        return d * Double(fullDimensions) / Double(max(1, timbreDimensions))
    }
}

/// Centring and whitening by a covariance estimated from differences of paired
/// observations, shrunk toward its diagonal when the pairs are few.
struct Whitening {
    private let mean: [Double]
    /// Lower-triangular Cholesky factor of the within covariance.
    private let factor: [[Double]]

    init(points: [([Double], Double)], differences: [[Double]], dimensions n: Int) {
        var mean = [Double](repeating: 0, count: n)
        let total = max(1e-9, points.reduce(0) { $0 + $1.1 })
        for (v, w) in points { for d in 0..<n { mean[d] += w * v[d] } }
        mean = mean.map { $0 / total }
        self.mean = mean
        var cov = [[Double]](repeating: [Double](repeating: 0, count: n), count: n)
        let rows: [[Double]]
        let divisor: Double
        if differences.count >= 2 {
            rows = differences
            divisor = 2 * Double(differences.count)  // a difference of two draws has twice the variance
        } else {
            // No pairs to learn from: fall back to the spread of the points themselves.
            rows = points.map { v, _ in zip(v, mean).map { $0 - $1 } }
            divisor = Double(max(1, points.count))
        }
        for r in rows { for i in 0..<n { for j in 0...i { cov[i][j] += r[i] * r[j] } } }
        for i in 0..<n { for j in 0...i { cov[i][j] /= divisor; cov[j][i] = cov[i][j] } }
        // Shrink toward the diagonal in proportion to how few pairs there are, and keep every
        // variance above a floor so that a silent dimension cannot dominate.
        let shrink = min(1, Double(n) / Double(max(1, rows.count)))
        let meanVariance = max(1e-9, (0..<n).reduce(0) { $0 + cov[$1][$1] } / Double(max(1, n)))
        for i in 0..<n {
            for j in 0..<n where i != j { cov[i][j] *= 1 - shrink }
            cov[i][i] = max(cov[i][i], 1e-3 * meanVariance) + 1e-6 * meanVariance
        }
        factor = Whitening.cholesky(cov)
    }

    func apply(_ v: [Double]) -> [Double] {
        // Solve L y = v - mean by forward substitution.
        var y = [Double](repeating: 0, count: v.count)
        for i in 0..<v.count {
            var s = v[i] - mean[i]
            for j in 0..<i { s -= factor[i][j] * y[j] }
            y[i] = s / factor[i][i]
        }
        return y
    }

    static func cholesky(_ a: [[Double]]) -> [[Double]] {
        let n = a.count
        var l = [[Double]](repeating: [Double](repeating: 0, count: n), count: n)
        for i in 0..<n {
            for j in 0...i {
                var s = a[i][j]
                for k in 0..<j { s -= l[i][k] * l[j][k] }
                l[i][j] = i == j ? max(s, 1e-12).squareRoot() : s / l[j][j]
            }
        }
        return l
    }
}

/// The eigenvalues (descending) and unit eigenvectors of a symmetric matrix, by cyclic Jacobi
/// rotations: small dense matrices (tens of rows) only.
func symmetricEigen(_ matrix: [[Double]]) -> (values: [Double], vectors: [[Double]]) {
    let n = matrix.count
    var a = matrix
    var v = (0..<n).map { i in (0..<n).map { $0 == i ? 1.0 : 0.0 } }
    for _ in 0..<100 {
        var off = 0.0
        for i in 0..<n { for j in (i + 1)..<n { off += a[i][j] * a[i][j] } }
        if off < 1e-20 { break }
        for p in 0..<n {
            for q in (p + 1)..<n where abs(a[p][q]) > 1e-300 {
                let theta = (a[q][q] - a[p][p]) / (2 * a[p][q])
                let t = (theta >= 0 ? 1.0 : -1.0) / (abs(theta) + (theta * theta + 1).squareRoot())
                let c = 1 / (t * t + 1).squareRoot(), s = t * c
                for k in 0..<n {
                    let akp = a[k][p], akq = a[k][q]
                    a[k][p] = c * akp - s * akq
                    a[k][q] = s * akp + c * akq
                }
                for k in 0..<n {
                    let apk = a[p][k], aqk = a[q][k]
                    a[p][k] = c * apk - s * aqk
                    a[q][k] = s * apk + c * aqk
                }
                for k in 0..<n {
                    let vkp = v[k][p], vkq = v[k][q]
                    v[k][p] = c * vkp - s * vkq
                    v[k][q] = s * vkp + c * vkq
                }
            }
        }
    }
    let order = (0..<n).sorted { a[$0][$0] > a[$1][$1] }
    return (order.map { a[$0][$0] }, order.map { j in (0..<n).map { v[$0][j] } })
}
