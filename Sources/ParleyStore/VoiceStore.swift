public import Foundation

/// A speaker's voice in one meeting, as its diarizer embedded it: what a rename turns into a
/// voice profile. Biometric data: kept only with its meeting (deleted with it).
public struct MeetingVoiceRecord: Sendable, Hashable {
    public var meetingID: String
    /// The speaker's label in the meeting ("S2").
    public var speaker: String
    /// Which embedding it is; only voices and prints of the same kind are compared.
    public var kind: String
    public var vector: [Float]
    /// Seconds of the speaker's speech the embedding was made from.
    public var speech: Double
    /// Profiles people said this speaker is not (rejected suggestions).
    public var rejected: [String]

    public init(
        meetingID: String, speaker: String, kind: String, vector: [Float], speech: Double, rejected: [String] = []
    ) {
        self.meetingID = meetingID
        self.speaker = speaker
        self.kind = kind
        self.vector = vector
        self.speech = speech
        self.rejected = rejected
    }
}

/// A person whose voice an owner's meetings recognize: a name, and one print per embedding kind.
public struct VoiceProfileRecord: Sendable, Hashable {
    public var id: String
    public var ownerID: String
    public var name: String
    public var createdAt: Date
    public var updatedAt: Date
    /// In how many meetings the voice was heard (named, confirmed, or enrolled from).
    public var meetings: Int
    /// The kinds of embedding it holds a print of, and from how many voices each.
    public var prints: [String: Int]

    public init(
        id: String, ownerID: String, name: String, createdAt: Date, updatedAt: Date, meetings: Int,
        prints: [String: Int]
    ) {
        self.id = id
        self.ownerID = ownerID
        self.name = name
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.meetings = meetings
        self.prints = prints
    }
}

/// One kind of a profile's voice: the mean of the normalized voices it was made from.
public struct VoicePrintRecord: Sendable, Hashable {
    public var profileID: String
    public var name: String
    public var kind: String
    public var vector: [Float]
    public var samples: Int

    public init(profileID: String, name: String, kind: String, vector: [Float], samples: Int) {
        self.profileID = profileID
        self.name = name
        self.kind = kind
        self.vector = vector
        self.samples = samples
    }
}

/// Where a voice comes from when it is learnt: a meeting's speaker, or an enrollment recording.
public struct VoiceSource: Sendable, Hashable {
    public var meetingID: String?
    public var speaker: String?

    public init(meetingID: String? = nil, speaker: String? = nil) {
        self.meetingID = meetingID
        self.speaker = speaker
    }
}

/// Voice profiles per owner, and the voices of each meeting's speakers.
public protocol VoiceStore: Sendable {
    /// Replaces the stored voices of a meeting's speakers (a new run found new speakers).
    /// Rejections of speakers that keep their label stay; returns the voices as stored, with them.
    @discardableResult
    func putMeetingVoices(meetingID: String, _ voices: [MeetingVoiceRecord]) async throws -> [MeetingVoiceRecord]
    func meetingVoices(meetingID: String) async throws -> [MeetingVoiceRecord]
    /// Remembers that a meeting's speaker is not the person of `profileID`.
    func rejectVoice(meetingID: String, speaker: String, profileID: String) async throws

    /// The prints of one kind of all an owner's profiles: what a meeting's voices are matched with.
    func voicePrints(ownerID: String, kind: String) async throws -> [VoicePrintRecord]
    /// Adds a normalized voice to the owner's profile of that name (made if there is none);
    /// a source already learnt from is not counted twice.
    func learnVoice(ownerID: String, name: String, kind: String, vector: [Float], from source: VoiceSource)
        async throws -> VoiceProfileRecord
    func voiceProfiles(ownerID: String) async throws -> [VoiceProfileRecord]
    func voiceProfile(id: String, ownerID: String) async throws -> VoiceProfileRecord?
    /// Renames a profile; another profile of the owner with that name is a conflict.
    func renameVoiceProfile(id: String, ownerID: String, name: String) async throws -> VoiceProfileRecord?
    /// Folds `from` into `into` (prints weighted by their voices, meetings joined) and deletes `from`.
    func mergeVoiceProfiles(into: String, from: String, ownerID: String) async throws -> VoiceProfileRecord?
    /// Deletes a profile and its prints; false when the owner has no such profile.
    func deleteVoiceProfile(id: String, ownerID: String) async throws -> Bool
}

extension Identifiers {
    public static func voiceProfile() -> String { make("v_") }
}

/// Embeddings as stored: little-endian 32-bit floats, base64 (the same text on both databases).
public enum VoiceVector {
    public static func encode(_ vector: [Float]) -> String {
        var data = Data(capacity: vector.count * 4)
        for value in vector { withUnsafeBytes(of: value.bitPattern.littleEndian) { data.append(contentsOf: $0) } }
        return data.base64EncodedString()
    }

    public static func decode(_ text: String) throws -> [Float] {
        guard let data = Data(base64Encoded: text), data.count % 4 == 0 else {
            throw StoreError.unreadable("a stored voice embedding is not readable")
        }
        return stride(from: 0, to: data.count, by: 4).map { i in
            let bits =
                UInt32(data[i]) | UInt32(data[i + 1]) << 8 | UInt32(data[i + 2]) << 16 | UInt32(data[i + 3]) << 24
            return Float(bitPattern: bits)
        }
    }
}
