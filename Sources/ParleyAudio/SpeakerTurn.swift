/// A stretch of time in which one speaker talks.
public struct SpeakerTurn: Sendable, Hashable, Codable {
    public var speaker: String
    /// Seconds from the start of the recording.
    public var start: Double
    public var end: Double

    public init(speaker: String, start: Double, end: Double) {
        self.speaker = speaker
        self.start = start
        self.end = end
    }

    public var duration: Double { end - start }
}
