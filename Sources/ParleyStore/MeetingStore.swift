public import Foundation

/// Meetings, who may watch or edit them, and where their processing is.
public protocol MeetingStore: Sendable {
    func createMeeting(_ meeting: MeetingRecord) async throws
    func meeting(id: String) async throws -> MeetingRecord?
    /// Meetings the user owns or was added to, newest first.
    func meetings(visibleTo userID: String) async throws -> [MeetingRecord]
    /// Meetings whose processing was running (status `processing`): left so by a crash or a stop.
    func meetings(withStatus status: MeetingStatus) async throws -> [MeetingRecord]
    /// Writes what processing changes (status, epoch, audio, backends); never the title, which
    /// only ``retitleMeeting(id:title:)`` changes, so a rename is not undone by a record read before it.
    func updateMeeting(_ meeting: MeetingRecord) async throws
    /// Renames the meeting; false when there is no such meeting.
    func retitleMeeting(id: String, title: String) async throws -> Bool
    /// Marks the meeting `processing` unless it already is, in one statement, so two uploads
    /// to it through two nodes cannot both start; false when it already was (or is gone).
    func startProcessing(meetingID: String) async throws -> Bool
    /// Records that a meeting's upload is complete (its size), touching nothing else, so it
    /// cannot undo a status the pipeline set meanwhile.
    func recordUpload(meetingID: String, bytes: Int64) async throws
    /// Deletes the meeting, its members and its events.
    func deleteMeeting(id: String) async throws
    /// Adds a member, or changes whether an existing one may edit.
    func addMember(meetingID: String, userID: String, canEdit: Bool) async throws
    func members(meetingID: String) async throws -> [MemberRecord]
    /// Removes a member; false when the user was not one.
    func removeMember(meetingID: String, userID: String) async throws -> Bool
    /// Who may see each meeting now (its owner and members), by user id; a meeting that does
    /// not exist is missing.
    func viewers(meetingIDs: [String]) async throws -> [String: Set<String>]
}

extension MeetingStore {
    /// Everyone who may see the meeting now (its owner and members), by user id, sorted; empty
    /// when it does not exist.
    public func viewerIDs(of meetingID: String) async throws -> [String] {
        (try await viewers(meetingIDs: [meetingID])[meetingID] ?? []).sorted()
    }
}

/// Where a meeting is in its life; the pipeline's stage is in its events.
public enum MeetingStatus: String, Sendable, Hashable, Codable, CaseIterable {
    /// Created, no audio yet.
    case created
    /// Audio is arriving or being processed.
    case processing
    case completed
    case failed
}

/// A user who may watch a meeting they do not own, and maybe edit it.
public struct MemberRecord: Sendable, Hashable {
    public var userID: String
    public var canEdit: Bool

    public init(userID: String, canEdit: Bool) {
        self.userID = userID
        self.canEdit = canEdit
    }
}

/// What the person who created a meeting asked of its diarization (`POST /api/meetings`):
/// a backend by name and speaker count hints. Nil fields leave the server's settings.
public struct DiarizationRequest: Sendable, Hashable, Codable {
    /// `auto`, `classic`, or a backend's name.
    public var diarizer: String?
    public var speakers: Int?
    public var minSpeakers: Int?
    public var maxSpeakers: Int?

    public init(diarizer: String? = nil, speakers: Int? = nil, minSpeakers: Int? = nil, maxSpeakers: Int? = nil) {
        self.diarizer = diarizer
        self.speakers = speakers
        self.minSpeakers = minSpeakers
        self.maxSpeakers = maxSpeakers
    }

    public var isEmpty: Bool { self == DiarizationRequest() }

    enum CodingKeys: String, CodingKey {
        case diarizer, speakers
        case minSpeakers = "min_speakers"
        case maxSpeakers = "max_speakers"
    }
}

public struct MeetingRecord: Sendable, Hashable {
    public var id: String
    public var title: String
    public var ownerID: String
    public var createdAt: Date
    /// Identifies the meeting's event log; changes when the log is reset.
    public var epoch: String
    public var status: MeetingStatus
    /// The uploaded audio in the data directory, once an upload started.
    public var audioPath: String?
    public var audioBytes: Int64?
    public var transcriber: String?
    public var summarizer: String?
    public var diarization: DiarizationRequest

    public init(
        id: String, title: String, ownerID: String, createdAt: Date, epoch: String, status: MeetingStatus = .created,
        audioPath: String? = nil, audioBytes: Int64? = nil, transcriber: String? = nil, summarizer: String? = nil,
        diarization: DiarizationRequest = .init()
    ) {
        self.diarization = diarization
        self.id = id
        self.title = title
        self.ownerID = ownerID
        self.createdAt = createdAt
        self.epoch = epoch
        self.status = status
        self.audioPath = audioPath
        self.audioBytes = audioBytes
        self.transcriber = transcriber
        self.summarizer = summarizer
    }
}
