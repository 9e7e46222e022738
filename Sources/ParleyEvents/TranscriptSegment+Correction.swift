public import ParleyPluginAPI

extension TranscriptSegment {
    /// The segment as a person corrected it: new text (its words re-timed), another speaker, or
    /// both, published as a segment that replaces itself so every client that follows
    /// `replaces` shows the correction.
    ///
    /// The words of the new text keep the times of the words they match in the old one (the
    /// longest common sequence, compared without case and punctuation); words a person added
    /// are spread over the time between their matched neighbours, and the segment then says its
    /// word timing is `estimated`.
    public func corrected(text newText: String?, speaker newSpeaker: String?, by person: String) -> TranscriptSegment {
        var segment = self
        segment.replaces = [id]
        segment.provisional = nil
        var correction = corrected ?? SegmentCorrection(by: person, text: false, speaker: false)
        correction.by = person
        if let newSpeaker, newSpeaker != speaker {
            segment.speaker = newSpeaker
            correction.speaker = true
        }
        if let newText, newText != text {
            segment.text = newText
            let (words, estimated) = Self.retime(words, as: newText, start: start, end: end)
            segment.words = words
            if estimated { segment.wordTiming = .estimated }
            correction.text = true
        }
        segment.corrected = correction
        return segment
    }

    /// `text`'s words with the times of the `old` words they match; the others spread evenly
    /// between their matched neighbours. True when some word's time had to be made up.
    static func retime(_ old: [Word], as text: String, start: Double, end: Double) -> ([Word], Bool) {
        let tokens = text.split(whereSeparator: \.isWhitespace).map(String.init)
        guard !tokens.isEmpty else { return ([], false) }
        let matches = matchedPairs(old.map { key($0.word) }, tokens.map(key))
        var times: [(Double, Double, Double)?] = Array(repeating: nil, count: tokens.count)
        for (i, j) in matches {
            times[j] = (old[i].start, old[i].end, old[i].word == tokens[j] ? old[i].confidence : 1)
        }
        var words: [Word] = []
        var j = 0
        while j < tokens.count {
            if let (from, to, confidence) = times[j] {
                words.append(Word(word: tokens[j], start: from, end: to, confidence: confidence))
                j += 1
                continue
            }
            // A run of added words, between the word before (or the start) and the next matched.
            var next = j
            while next < tokens.count, times[next] == nil { next += 1 }
            let from = words.last?.end ?? min(start, old.first?.start ?? start)
            let to = max(from, next < tokens.count ? times[next]!.0 : max(end, old.last?.end ?? end))
            let step = (to - from) / Double(next - j)
            for k in j..<next {
                let at = from + step * Double(k - j)
                words.append(Word(word: tokens[k], start: at, end: at + step, confidence: 1))
            }
            j = next
        }
        return (words, matches.count < tokens.count)
    }

    /// A word as words are compared: lower case, letters and digits only.
    private static func key(_ word: String) -> String {
        String(
            word.lowercased().unicodeScalars.filter { $0.properties.isAlphabetic || $0.properties.numericType != nil })
    }

    /// The index pairs of a longest common subsequence of `a` and `b`, in order.
    private static func matchedPairs(_ a: [String], _ b: [String]) -> [(Int, Int)] {
        guard !a.isEmpty, !b.isEmpty else { return [] }
        let columns = b.count + 1
        var lengths = [Int](repeating: 0, count: (a.count + 1) * columns)
        for i in stride(from: a.count - 1, through: 0, by: -1) {
            for j in stride(from: b.count - 1, through: 0, by: -1) {
                lengths[i * columns + j] =
                    a[i] == b[j] && !a[i].isEmpty
                    ? lengths[(i + 1) * columns + j + 1] + 1
                    : max(lengths[(i + 1) * columns + j], lengths[i * columns + j + 1])
            }
        }
        var pairs: [(Int, Int)] = []
        var (i, j) = (0, 0)
        while i < a.count, j < b.count {
            if a[i] == b[j], !a[i].isEmpty {
                pairs.append((i, j))
                i += 1
                j += 1
            } else if lengths[(i + 1) * columns + j] >= lengths[i * columns + j + 1] {
                i += 1
            } else {
                j += 1
            }
        }
        return pairs
    }
}
