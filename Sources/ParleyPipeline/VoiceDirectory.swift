public import ParleyEvents

/// A speaker's voice in the meeting being processed: its final label, the diarizer's embedding
/// and how much speech it was made from.
public struct SpeakerVoice: Sendable, Hashable {
    public var speaker: String
    public var vector: [Float]
    public var speech: Double

    public init(speaker: String, vector: [Float], speech: Double) {
        self.speaker = speaker
        self.vector = vector
        self.speech = speech
    }
}

/// Where a meeting's voices are kept and people are recognized: the voice profiles of the
/// meeting's owner (the server's store). The pipeline asks after the final clustering (and,
/// live, after each provisional one) and publishes what it answers as a `speakers` event with
/// reason `recognized`.
public protocol VoiceDirectory: Sendable {
    /// Keeps `voices` (embeddings of `kind`) as the meeting's, and matches them with the
    /// profiles of the same kind. The directory leaves out what people said of the meeting's
    /// speakers: a speaker a person named is not matched, and the name is nobody else's.
    func recognize(_ voices: [SpeakerVoice], kind: String) async throws -> [VoiceMatcher.Match]
}
