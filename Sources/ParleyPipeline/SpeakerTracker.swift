public import ParleyAudio
public import ParleyEvents

/// Keeps speaker labels stable while diarization is re-run on more and more of the audio:
/// each new clustering's speakers are matched to the labels already given by how much their
/// turns overlap, and a speaker with no match gets the next label, "S1", "S2" ...
public struct SpeakerTracker: Sendable {
    public private(set) var turns: [SpeakerTurn] = []
    /// Seconds of audio the current turns were computed from.
    public private(set) var coveredUntil: Double = 0
    public private(set) var labels: [String] = []
    /// The label each speaker of the last diarization adopted got.
    public private(set) var mapping: [String: String] = [:]

    public init() {}

    /// Adopts a new diarization, returning it with stable labels.
    @discardableResult
    public mutating func adopt(_ diarization: Diarization, covering duration: Double) -> [SpeakerTurn] {
        // Overlap of each (new speaker, existing label).
        var overlap: [String: [String: Double]] = [:]
        var j = 0
        let old = turns
        for turn in diarization.turns {
            while j < old.count, old[j].end <= turn.start { j += 1 }
            var k = j
            while k < old.count, old[k].start < turn.end {
                let o = min(turn.end, old[k].end) - max(turn.start, old[k].start)
                if o > 0 { overlap[turn.speaker, default: [:]][old[k].speaker, default: 0] += o }
                k += 1
            }
        }
        // Greedy one-to-one matching, largest overlap first.
        let pairs = overlap.flatMap { new, row in row.map { (new, $0.key, $0.value) } }.sorted { $0.2 > $1.2 }
        var mapping: [String: String] = [:]
        var taken: Set<String> = []
        for (new, label, _) in pairs where mapping[new] == nil && !taken.contains(label) {
            mapping[new] = label
            taken.insert(label)
        }
        // New speakers in order of first appearance.
        for turn in diarization.turns.sorted(by: { $0.start < $1.start }) where mapping[turn.speaker] == nil {
            var n = labels.count + 1
            while labels.contains("S\(n)") || taken.contains("S\(n)") { n += 1 }
            let label = "S\(n)"
            mapping[turn.speaker] = label
            labels.append(label)
            taken.insert(label)
        }
        self.mapping = mapping
        turns = diarization.turns.map {
            SpeakerTurn(speaker: mapping[$0.speaker]!, start: $0.start, end: $0.end, overlap: $0.overlap)
        }
        .sorted { $0.start < $1.start }
        coveredUntil = duration
        return turns
    }
}

extension SpeakerTurn {
    /// The turn as the meeting's events carry it.
    public var record: SpeakerTurnRecord {
        SpeakerTurnRecord(speaker: speaker, start: start, end: end, overlap: overlap)
    }

    public init(_ record: SpeakerTurnRecord) {
        self.init(speaker: record.speaker, start: record.start, end: record.end, overlap: record.overlap)
    }
}
