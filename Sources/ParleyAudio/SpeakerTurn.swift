/// A stretch of time in which one speaker talks.
public struct SpeakerTurn: Sendable, Hashable, Codable {
    public var speaker: String
    /// Seconds from the start of the recording.
    public var start: Double
    public var end: Double
    /// A second voice heard over another speaker's turn, which the diarizer added where it found
    /// two people probable: its time counts as this speaker's, but a word that another speaker's
    /// own turn also covers goes to that speaker (see `Aligner`). In JSON only when true.
    public var overlap: Bool

    public init(speaker: String, start: Double, end: Double, overlap: Bool = false) {
        self.speaker = speaker
        self.start = start
        self.end = end
        self.overlap = overlap
    }

    public var duration: Double { end - start }

    private enum CodingKeys: String, CodingKey {
        case speaker, start, end, overlap
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        speaker = try container.decode(String.self, forKey: .speaker)
        start = try container.decode(Double.self, forKey: .start)
        end = try container.decode(Double.self, forKey: .end)
        overlap = try container.decodeIfPresent(Bool.self, forKey: .overlap) ?? false
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(speaker, forKey: .speaker)
        try container.encode(start, forKey: .start)
        try container.encode(end, forKey: .end)
        if overlap { try container.encode(overlap, forKey: .overlap) }
    }
}
