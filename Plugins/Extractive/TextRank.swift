import Foundation

/// TextRank (Mihalcea and Tarau, 2004) over sentences: a graph whose edges are shared content
/// words, normalised by sentence length; PageRank picks the central sentences.
enum TextRank {
    /// Indices of the `count` highest-ranked sentences, in their original order.
    static func top(_ sentences: [String], count: Int) -> [Int] {
        let tokens = sentences.map { Set(Rules.contentWords($0)) }
        let n = sentences.count
        guard n > count else { return Array(0..<n) }
        var weights = [[Double]](repeating: [Double](repeating: 0, count: n), count: n)
        for i in 0..<n {
            for j in (i + 1)..<n where tokens[i].count > 1 && tokens[j].count > 1 {
                let shared = Double(tokens[i].intersection(tokens[j]).count)
                guard shared > 0 else { continue }
                let w = shared / (log(Double(tokens[i].count)) + log(Double(tokens[j].count)))
                weights[i][j] = w
                weights[j][i] = w
            }
        }
        let out = weights.map { $0.reduce(0, +) }
        var rank = [Double](repeating: 1, count: n)
        for _ in 0..<60 {
            var next = [Double](repeating: 0.15, count: n)
            for i in 0..<n {
                for j in 0..<n where weights[j][i] > 0 && out[j] > 0 {
                    next[i] += 0.85 * weights[j][i] / out[j] * rank[j]
                }
            }
            rank = next
        }
        // Very short sentences ("Good.", "Thank you both.") say little on their own.
        let score = (0..<n).map { tokens[$0].count >= 3 ? rank[$0] : rank[$0] * 0.1 }
        // Highest first, but a sentence that repeats one already chosen (a request and its
        // acceptance, say) gives way to the next.
        var chosen: [Int] = []
        for index in (0..<n).sorted(by: { score[$0] > score[$1] }) where chosen.count < count {
            if chosen.contains(where: { Rules.similar(sentences[$0], sentences[index]) }) { continue }
            chosen.append(index)
        }
        return chosen.sorted()
    }
}
