/// Groups units of speech into speakers in an ``EmbeddingSpace``.
///
/// With a known count, the units are partitioned into that many speakers. Otherwise the
/// count comes from divisive splitting: a group is split in two while the halves' centroids
/// lie at least ``DiarizationConfiguration/minSeparation`` apart (in units of one voice's own
/// spread, since the space is whitened), that gap is at least
/// ``DiarizationConfiguration/minSignificance`` standard errors, and both halves hold enough
/// speech. Judging each split inside its own group keeps a large gap (say, between low and
/// high voices) from hiding the smaller gaps between the voices on each side of it.
struct SpeakerClustering {
    let space: EmbeddingSpace
    let configuration: DiarizationConfiguration

    typealias Point = EmbeddingSpace.Point

    /// One centroid per speaker found.
    func speakers(points: [Point], weights: [Double]) -> [Point] {
        let n = points.count
        let c = configuration
        let all = Array(0..<n)
        let upper = min(n, c.speakers ?? c.maxSpeakers)
        let lower = min(upper, c.speakers ?? c.minSpeakers)
        let whole = [centroid(of: points, weights: weights, members: all)]
        if upper <= 1 { return whole }
        let total = weights.reduce(0, +)
        let minimumSize = min(c.minSpeakerTime, total * 0.5 / Double(max(2, lower)))
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
                let a = centroid(of: points, weights: weights, members: halves[0])
                let b = centroid(of: points, weights: weights, members: halves[1])
                let distance = space.distanceSquared(a, b).squareRoot()
                let n1 = Double(halves[0].count), n2 = Double(halves[1].count)
                let significance = distance * (n1 * n2 / (n1 + n2)).squareRoot()
                if distance >= c.minSeparation && significance >= c.minSignificance {
                    pending += halves
                } else {
                    groups.append(group)
                }
            }
        }
        if groups.count < lower || c.speakers != nil {
            guard
                let forced = partition(all, into: lower, points: points, weights: weights, minimumSize: minimumSize)
                    ?? partition(all, into: lower, points: points, weights: weights, minimumSize: 0)
            else { return whole }
            groups = forced
        }
        return groups.map { centroid(of: points, weights: weights, members: $0) }
    }

    /// Splits `members` into k groups: an average-linkage tree, cut deep enough that k groups
    /// hold at least `minimumSize` seconds each (smaller ones are outliers, a cough or a
    /// mistracked pitch, and are folded into the nearest), then refined by k-means.
    /// Nil when no such k groups exist.
    func partition(_ members: [Int], into k: Int, points: [Point], weights: [Double], minimumSize: Double)
        -> [[Int]]?
    {
        let m = members.count
        guard m >= k else { return nil }
        var matrix = [Float](repeating: 0, count: m * m)
        for i in 0..<m {
            for j in (i + 1)..<m {
                let v = Float(space.distanceSquared(points[members[i]], points[members[j]]).squareRoot())
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
            centroid(of: localPoints, weights: localWeights, members: labels.indices.filter { labels[$0] == l })
        }
        let centroids = refine(
            points: localPoints, weights: localWeights, labels: localPoints.map { nearest($0, seeds) })
        guard centroids.count == k else { return nil }
        var groups = [[Int]](repeating: [], count: k)
        for (i, p) in localPoints.enumerated() { groups[nearest(p, centroids)].append(members[i]) }
        return groups.contains(where: \.isEmpty) ? nil : groups
    }

    /// The duration-weighted mean; whitening is linear, so this is the whitened mean embedding.
    func centroid(of points: [Point], weights: [Double], members: [Int]) -> Point {
        let sample = points[members[0]]
        var timbre = [Double](repeating: 0, count: sample.timbre.count)
        var full = [Double](repeating: 0, count: members.lazy.compactMap { points[$0].full?.count }.first ?? 0)
        var total = 0.0
        var fullTotal = 0.0
        for i in members {
            let w = weights[i]
            total += w
            for d in 0..<timbre.count { timbre[d] += w * points[i].timbre[d] }
            if let f = points[i].full {
                fullTotal += w
                for d in 0..<f.count { full[d] += w * f[d] }
            }
        }
        return Point(
            full: fullTotal > 0 ? full.map { $0 / fullTotal } : nil, timbre: timbre.map { $0 / max(total, 1e-9) })
    }

    /// A few rounds of weighted k-means; clusters that empty vanish.
    func refine(points: [Point], weights: [Double], labels initial: [Int]) -> [Point] {
        var labels = initial
        var centroids: [Point] = []
        for _ in 0..<10 {
            let groups = Dictionary(grouping: labels.indices, by: { labels[$0] })
            centroids = groups.keys.sorted().map { centroid(of: points, weights: weights, members: groups[$0]!) }
            let next = points.map { nearest($0, centroids) }
            if next == labels { break }
            labels = next
        }
        return centroids
    }

    func nearest(_ p: Point, _ centroids: [Point]) -> Int {
        var best = 0
        var bestDistance = Double.infinity
        for (s, centroid) in centroids.enumerated() {
            let d = space.distanceSquared(p, centroid)
            if d < bestDistance {
                bestDistance = d
                best = s
            }
        }
        return best
    }
}
