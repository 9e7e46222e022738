public import ParleyAudio
public import ParleyPluginAPI

/// Gives each word the speaker whose turn overlaps it most (a word outside every turn goes to
/// the nearest turn) and cuts segments where the speaker changes. A turn the diarizer added for a
/// second voice over another's (`SpeakerTurn.overlap`) takes only the words no other turn
/// covers: whoever the diarizer counted first at a moment is the likelier to have said the words
/// the recognizer heard there.
public struct Aligner: Sendable {
    /// Turns sorted by start.
    public let turns: [SpeakerTurn]
    private let starts: [Double]
    /// The latest end among turns 0...i: once it lies before a word, no earlier turn can reach
    /// the word, however long (turns may overlap: a long turn of one speaker with another's
    /// short replies inside it).
    private let reach: [Double]

    public init(turns: [SpeakerTurn]) {
        self.turns = turns.sorted { $0.start < $1.start }
        starts = self.turns.map(\.start)
        var latest = -Double.infinity
        reach = self.turns.map { turn in
            latest = max(latest, turn.end)
            return latest
        }
    }

    /// The speaker of [start, end], or nil when there are no turns at all.
    public func speaker(from start: Double, to end: Double) -> String? {
        guard !turns.isEmpty else { return nil }
        // A binary search finds the first turn starting after `end`; the scan walks back while
        // earlier turns may still reach `start`.
        var lo = 0
        var hi = starts.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if starts[mid] < end { lo = mid + 1 } else { hi = mid }
        }
        var best: (overlap: Double, speaker: String)?
        var bestAdded: (overlap: Double, speaker: String)?
        var nearest: (distance: Double, speaker: String)?
        var i = lo - 1
        while i >= 0 {
            let turn = turns[i]
            let overlap = min(end, turn.end) - max(start, turn.start)
            if overlap > 0 {
                if turn.overlap {
                    if overlap > (bestAdded?.overlap ?? 0) { bestAdded = (overlap, turn.speaker) }
                } else if overlap > (best?.overlap ?? 0) {
                    best = (overlap, turn.speaker)
                }
            }
            let distance = max(0, start - turn.end)
            if distance < (nearest?.distance ?? .infinity) { nearest = (distance, turn.speaker) }
            if reach[i] < start - 30 { break }  // nothing earlier overlaps, or is nearer than this
            i -= 1
        }
        if lo < turns.count {
            let after = turns[lo].start - end
            if after < (nearest?.distance ?? .infinity) { nearest = (after, turns[lo].speaker) }
        }
        return best?.speaker ?? bestAdded?.speaker ?? nearest?.speaker
    }

    /// Words of `segment` cut into runs of one speaker.
    public func split(_ segment: TranscribedSegment, unknown: String) -> [(speaker: String, words: [Word])] {
        let words =
            segment.words.isEmpty
            ? Word.spread(segment.text, from: segment.start, to: segment.end) : segment.words
        var runs: [(speaker: String, words: [Word])] = []
        for word in words {
            let speaker = speaker(from: word.start, to: max(word.end, word.start + 0.01)) ?? unknown
            if let last = runs.last, last.speaker == speaker {
                runs[runs.count - 1].words.append(word)
            } else {
                runs.append((speaker, [word]))
            }
        }
        return runs
    }
}
