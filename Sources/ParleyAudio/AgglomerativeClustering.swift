/// Average-linkage agglomerative clustering with weights (durations), built
/// with the nearest-neighbour-chain algorithm: O(n^2) time on an n x n
/// distance matrix, exact because average linkage is reducible.
struct AgglomerativeClustering {
    struct Merge {
        var a: Int
        var b: Int
        var height: Float
    }

    /// Merges in increasing height; cutting after `n - k` of them leaves k clusters.
    let merges: [Merge]
    let count: Int

    init(distances: [Float], weights: [Double]) {
        let n = weights.count
        count = n
        var d = distances
        var size = weights
        var active = [Bool](repeating: true, count: n)
        var remaining = n
        var chain: [Int] = []
        var merges: [Merge] = []
        merges.reserveCapacity(max(0, n - 1))
        d.withUnsafeMutableBufferPointer { d in
            while remaining > 1 {
                if chain.isEmpty { chain.append(active.firstIndex(of: true)!) }
                let a = chain[chain.count - 1]
                let previous = chain.count >= 2 ? chain[chain.count - 2] : -1
                var best = previous
                var bestDistance = previous >= 0 ? d[a * n + previous] : Float.infinity
                for j in 0..<n where active[j] && j != a {
                    let v = d[a * n + j]
                    if v < bestDistance {
                        bestDistance = v
                        best = j
                    }
                }
                if best == previous {
                    chain.removeLast(2)
                    merges.append(Merge(a: a, b: best, height: bestDistance))
                    // Lance-Williams update for weighted average linkage; the merged cluster lives in slot a.
                    let wa = size[a], wb = size[best]
                    for j in 0..<n where active[j] && j != a && j != best {
                        let v = Float((wa * Double(d[a * n + j]) + wb * Double(d[best * n + j])) / (wa + wb))
                        d[a * n + j] = v
                        d[j * n + a] = v
                    }
                    size[a] = wa + wb
                    active[best] = false
                    remaining -= 1
                } else {
                    chain.append(best)
                }
            }
        }
        self.merges = merges.sorted { $0.height < $1.height }
    }

    /// Labels 0..<k for each item after keeping the lowest `n - k` merges.
    func labels(clusters k: Int) -> [Int] {
        var parent = Array(0..<count)
        func root(_ x: Int) -> Int {
            var x = x
            while parent[x] != x {
                parent[x] = parent[parent[x]]
                x = parent[x]
            }
            return x
        }
        for merge in merges.prefix(max(0, count - k)) { parent[root(merge.b)] = root(merge.a) }
        var ids: [Int: Int] = [:]
        return (0..<count).map { i in
            let r = root(i)
            if let id = ids[r] { return id }
            ids[r] = ids.count
            return ids.count - 1
        }
    }
}
