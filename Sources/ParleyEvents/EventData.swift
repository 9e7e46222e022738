import Foundation
public import ParleyPluginAPI

/// What an event carries; its case names the event's `type`.
public enum EventData: Sendable, Hashable {
    case status(StatusUpdate)
    case uploadProgress(UploadProgress)
    case transcript(TranscriptSegment)
    case speakers(SpeakersUpdate)
    case summary(SummaryUpdate)
    case actionItems(ActionItemsUpdate)
    case error(PipelineFailure)

    public var type: String {
        switch self {
        case .status: "status"
        case .uploadProgress: "upload_progress"
        case .transcript: "transcript"
        case .speakers: "speakers"
        case .summary: "summary"
        case .actionItems: "action_items"
        case .error: "error"
        }
    }
}

/// The stages in order, then how the meeting ended.
public enum Stage: String, Sendable, Hashable, Codable, CaseIterable {
    case upload, diarization, transcription, alignment, summarization, completed, failed
}

/// A stage started, moved on, completed or failed. For the final `completed` and `failed`
/// stages, `state` is `completed` or `failed` too. `restarted` (with stage `upload`) says the
/// process running the meeting stopped and processing starts again from the stored recording:
/// the results so far are dropped, the events that follow build them anew.
public struct StatusUpdate: Sendable, Hashable, Codable {
    public enum State: String, Sendable, Hashable, Codable { case started, progress, completed, failed, restarted }
    public var stage: Stage
    public var state: State
    /// 0...1 when known.
    public var progress: Double?
    /// Words for people: "12 speech windows", "3 speakers".
    public var detail: String?
    /// Seconds the stage took, on `completed`.
    public var elapsed: Double?

    public init(stage: Stage, state: State, progress: Double? = nil, detail: String? = nil, elapsed: Double? = nil) {
        self.stage = stage
        self.state = state
        self.progress = progress
        self.detail = detail
        self.elapsed = elapsed
    }
}

/// Bytes received and audio decoded so far.
public struct UploadProgress: Sendable, Hashable, Codable {
    public var bytes: Int64
    /// The declared length, when known.
    public var total: Int64?
    /// Seconds of audio decoded so far.
    public var seconds: Double

    public init(bytes: Int64, total: Int64?, seconds: Double) {
        self.bytes = bytes
        self.total = total
        self.seconds = seconds
    }
}

/// One speaker-attributed stretch of transcript. A segment whose words turn out to belong to
/// two speakers after the final clustering is replaced: new segments arrive with `replaces`
/// naming the ids they supersede, which clients remove. While a live recording's speech goes
/// on, `provisional` segments show what has been said so far; the window's own segments replace
/// them (a segment with no words only removes what it replaces).
public struct TranscriptSegment: Sendable, Hashable, Codable {
    public var id: Int
    public var speaker: String
    public var start: Double
    public var end: Double
    public var text: String
    public var words: [Word]
    public var replaces: [Int]?
    /// `estimated` when the backend timed only the segment and its words were spread over it;
    /// absent when the engine timed each word.
    public var wordTiming: WordTiming?
    /// True for a live recording's transcript of speech still going on (absent otherwise).
    public var provisional: Bool?
    /// Set when a person corrected the segment (`replaces` then names the segment itself).
    public var corrected: SegmentCorrection?
    /// A segment with no words: it only takes away what it replaces.
    public var onlyRemoves: Bool { words.isEmpty && text.isEmpty }

    public init(
        id: Int, speaker: String, start: Double, end: Double, text: String, words: [Word], replaces: [Int]? = nil,
        wordTiming: WordTiming? = nil
    ) {
        self.id = id
        self.speaker = speaker
        self.start = start
        self.end = end
        self.text = text
        self.words = words
        self.replaces = replaces
        self.wordTiming = wordTiming
    }

    private enum CodingKeys: String, CodingKey {
        case id, speaker, start, end, text, words, replaces, provisional, corrected
        case wordTiming = "word_timing"
    }
}

/// Who last corrected a segment, and what of it people have corrected so far: its text, its
/// speaker. A corrected speaker stays when the pipeline relabels segments later.
public struct SegmentCorrection: Sendable, Hashable, Codable {
    public var by: String
    public var text: Bool
    public var speaker: Bool

    public init(by: String, text: Bool, speaker: Bool) {
        self.by = by
        self.text = text
        self.speaker = speaker
    }
}

/// A speaker's label and display name, and what voice recognition made of the speaker.
public struct SpeakerInfo: Sendable, Hashable, Codable {
    public var id: String
    public var name: String
    /// The voice profile the name comes from: recognized, confirmed, or kept from a rename.
    public var profile: String?
    /// How sure the recognition was (0-1), when the name was recognized rather than given.
    public var confidence: Double?
    /// A weaker match, offered for a person to confirm or reject.
    public var suggestion: VoiceSuggestion?

    public init(
        id: String, name: String, profile: String? = nil, confidence: Double? = nil,
        suggestion: VoiceSuggestion? = nil
    ) {
        self.id = id
        self.name = name
        self.profile = profile
        self.confidence = confidence
        self.suggestion = suggestion
    }

    /// A person's name as names are compared (a voice profile's, a name taken in a meeting):
    /// trimmed, without case.
    public static func nameKey(_ name: String) -> String {
        name.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
    }
}

/// "Priya?": a voice profile a speaker may be, not sure enough to name the speaker.
public struct VoiceSuggestion: Sendable, Hashable, Codable {
    public var profile: String
    public var name: String
    public var confidence: Double

    public init(profile: String, name: String, confidence: Double) {
        self.profile = profile
        self.name = name
        self.confidence = confidence
    }
}

/// Speaker labels changed: provisional clustering, the final clustering, names learnt, a rename,
/// voices recognized (names and suggestions), or a suggestion rejected.
///
/// `rename`, `recognized` and `rejected` list only the speakers they change; the others list
/// every speaker.
public struct SpeakersUpdate: Sendable, Hashable, Codable {
    public enum Reason: String, Sendable, Hashable, Codable {
        case provisional, clustering, names, rename, recognized, rejected
    }
    public struct Change: Sendable, Hashable, Codable {
        public var segmentID: Int
        public var speaker: String

        public init(segmentID: Int, speaker: String) {
            self.segmentID = segmentID
            self.speaker = speaker
        }

        private enum CodingKeys: String, CodingKey { case segmentID = "segment_id", speaker }
    }

    public var reason: Reason
    /// Every speaker known now.
    public var speakers: [SpeakerInfo]
    /// Segments whose speaker changed.
    public var changes: [Change]
    /// Who spoke when, when it is known (after clustering).
    public var turns: [SpeakerTurnRecord]?

    public init(reason: Reason, speakers: [SpeakerInfo], changes: [Change] = [], turns: [SpeakerTurnRecord]? = nil) {
        self.reason = reason
        self.speakers = speakers
        self.changes = changes
        self.turns = turns
    }
}

/// A stretch of time in which one speaker talks, as the meeting's events carry it (the
/// diarizer's own turns are ParleyAudio's and may change without changing the wire).
public struct SpeakerTurnRecord: Sendable, Hashable, Codable {
    public var speaker: String
    /// Seconds from the start of the recording.
    public var start: Double
    public var end: Double
    /// A second voice the diarizer heard over another speaker's turn (`SpeakerTurn.overlap`).
    /// In JSON only when true; events written before it decode as false.
    public var overlap: Bool

    public init(speaker: String, start: Double, end: Double, overlap: Bool = false) {
        self.speaker = speaker
        self.start = start
        self.end = end
        self.overlap = overlap
    }

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

public struct SummaryUpdate: Sendable, Hashable, Codable {
    public var points: [String]
    public var decisions: [Decision]
    /// The summarizer that produced it.
    public var summarizer: String

    public init(points: [String], decisions: [Decision], summarizer: String) {
        self.points = points
        self.decisions = decisions
        self.summarizer = summarizer
    }
}

/// An action item as the meeting keeps it: numbered, and editable later.
public struct ActionItemRecord: Sendable, Hashable, Codable {
    public var id: Int
    public var owner: String?
    public var task: String
    public var due: String?
    public var time: Double
    public var done: Bool
    /// The account it is assigned to (a username), when an editor assigned it: it is then on
    /// that person's list of action items whatever the owner's name says.
    public var assignee: String?

    public init(
        id: Int, owner: String?, task: String, due: String?, time: Double, done: Bool = false, assignee: String? = nil
    ) {
        self.id = id
        self.owner = owner
        self.task = task
        self.due = due
        self.time = time
        self.done = done
        self.assignee = assignee
    }
}

/// The whole list of action items as it stands.
public struct ActionItemsUpdate: Sendable, Hashable, Codable {
    public var items: [ActionItemRecord]

    public init(items: [ActionItemRecord]) { self.items = items }
}

/// Why a meeting failed: the stage, a stable code and words for people.
public struct PipelineFailure: Sendable, Hashable, Codable, Error, CustomStringConvertible {
    public var stage: Stage
    public var code: String
    public var message: String

    public init(stage: Stage, code: String, message: String) {
        self.stage = stage
        self.code = code
        self.message = message
    }

    public var description: String { "\(stage.rawValue): \(message)" }
}
