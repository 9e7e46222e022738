/// One speaker-attributed stretch of the transcript, as a summarizer reads it.
public struct AttributedSegment: Sendable, Hashable, Codable {
    public var id: Int
    /// The speaker's label ("S1") as diarization named it.
    public var speaker: String
    public var start: Double
    public var end: Double
    public var text: String

    public init(id: Int, speaker: String, start: Double, end: Double, text: String) {
        self.id = id
        self.speaker = speaker
        self.start = start
        self.end = end
        self.text = text
    }
}

/// Who is in the meeting: a label, and the name people use when one is known.
public struct Participant: Sendable, Hashable, Codable {
    public var id: String
    public var name: String

    public init(id: String, name: String) {
        self.id = id
        self.name = name
    }
}

/// A task someone took on.
public struct ActionItem: Sendable, Hashable, Codable {
    /// A participant's name or label, or a person named in the meeting; nil when nobody was named.
    public var owner: String?
    public var task: String
    /// The due phrase as said ("by Thursday", "this afternoon"), or nil.
    public var due: String?
    /// Seconds into the meeting where it was said.
    public var time: Double

    public init(owner: String?, task: String, due: String?, time: Double) {
        self.owner = owner
        self.task = task
        self.due = due
        self.time = time
    }
}

/// A decision the meeting took.
public struct Decision: Sendable, Hashable, Codable {
    public var text: String
    public var time: Double

    public init(text: String, time: Double) {
        self.text = text
        self.time = time
    }
}

/// What a summarizer finds.
public struct MeetingSummary: Sendable, Hashable, Codable {
    /// Key points, in meeting order.
    public var points: [String]
    public var decisions: [Decision]
    public var actionItems: [ActionItem]
    /// Names learnt for speaker labels ("S3" -> "Priya"), when the summarizer can tell.
    public var speakerNames: [String: String]

    public init(
        points: [String], decisions: [Decision], actionItems: [ActionItem], speakerNames: [String: String] = [:]
    ) {
        self.points = points
        self.decisions = decisions
        self.actionItems = actionItems
        self.speakerNames = speakerNames
    }
}

/// A summarization backend, registered by type and chosen by ``name``.
public protocol Summarizer: Sendable {
    /// The name users choose it by: "extractive".
    static var name: String { get }
    /// One line for `parley plugins`.
    static var summary: String { get }
    /// Reads the plugin's settings; throws on a malformed one.
    init(settings: PluginSettings) throws(PluginError)
    /// Checks that the server or model is there.
    func readiness() async -> Readiness
    /// Summarizes a whole meeting. Cancelling the calling task stops the work promptly.
    func summarize(
        _ transcript: [AttributedSegment], participants: [Participant], context: PluginContext
    ) async throws -> MeetingSummary
}
