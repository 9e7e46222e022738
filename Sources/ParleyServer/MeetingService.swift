import Foundation
import Hummingbird
import Logging
import Metrics
import NIOCore
import ParleyEvents
import ParleyHub
import ParleyJobs
import ParleyPipeline
import ParleyStore
import Synchronization

/// Meetings: who may see them, their state (built from their event log), uploads that feed
/// the pipeline while the bytes arrive, exports, and resuming after a restart.
final class MeetingService: Sendable {
    let store: any Store
    let hub: Hub
    let processor: MeetingProcessor
    let states: MeetingStates
    /// Told when who may see a meeting changes (its search documents carry its readers).
    let indexer: SearchIndexer
    /// Tells users of shares, deletions and assignments (`/ws/user`).
    let notifier: UserNotifier
    let settings: ServerSettings
    let metrics: ServerMetrics
    let logger: Logger
    var runner: JobRunner { processor.runner }
    /// This process's name in job leases.
    var node: String { processor.node }
    /// Meetings whose upload request is running: a second concurrent PUT gets 409 before it
    /// touches the first one's file.
    let uploading = Mutex<Set<String>>([])
    /// Meetings being recorded live through this process's ingest sockets.
    let recordings = Mutex<[String: LiveRecording]>([:])

    init(engine: Engine, settings: ServerSettings, metrics: ServerMetrics, logger: Logger) {
        self.store = engine.store
        self.hub = engine.hub
        self.processor = engine.processor
        self.states = engine.states
        self.indexer = engine.indexer
        self.notifier = engine.notifier
        self.settings = settings
        self.metrics = metrics
        self.logger = logger
        engine.processor.continueLiveRecordings { [weak self] meeting, attempt in
            await self?.continueRecording(meeting, attempt: attempt)
        }
    }

    // MARK: Access

    /// What a user may do with a meeting: watch it (members), edit its speakers' names and
    /// action items (members with edit rights), or everything (its owner).
    enum Access: Int, Comparable {
        case watch, edit, own

        static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
    }

    /// The meeting if `user` may do what `need` says: 404 when it does not exist, 403 otherwise.
    func meeting(_ id: String, for user: AuthenticatedUser, need: Access = .watch) async throws -> MeetingRecord {
        try await meetingAccess(id, for: user, need: need).meeting
    }

    /// The meeting and what the user may do with it (at least `need`, or it throws as `meeting`).
    func meetingAccess(_ id: String, for user: AuthenticatedUser, need: Access = .watch) async throws -> (
        meeting: MeetingRecord, access: Access
    ) {
        guard let meeting = try await store.meeting(id: id) else { throw MeetingError.notFound("no meeting '\(id)'") }
        if let access = try await access(of: user, to: meeting), access >= need { return (meeting, access) }
        switch need {
        case .own: throw MeetingError.forbidden("only the meeting's owner may do this")
        case .edit: throw MeetingError.forbidden("only the meeting's owner and members allowed to edit may do this")
        case .watch: throw MeetingError.forbidden("you are neither the owner nor a member of this meeting")
        }
    }

    func access(of user: AuthenticatedUser, to meeting: MeetingRecord) async throws -> Access? {
        if meeting.ownerID == user.id { return .own }
        guard let member = try await store.members(meetingID: meeting.id).first(where: { $0.userID == user.id })
        else { return nil }
        return member.canEdit ? .edit : .watch
    }

    // MARK: State

    /// The meeting's whole state, from the read model (a snapshot and the events after it).
    func state(of meeting: MeetingRecord) async throws -> MeetingState {
        try await states.state(of: meeting)
    }

    func view(of meeting: MeetingRecord, for user: AuthenticatedUser) async throws -> MeetingView {
        let state = try await state(of: meeting)
        let owner = try await store.user(id: meeting.ownerID)?.username ?? meeting.ownerID
        let (members, editors) = try await memberNames(meeting.id)
        return MeetingView(
            meeting: meeting, owner: owner, members: members, editors: editors, state: state,
            canEdit: try await access(of: user, to: meeting).map { $0 >= .edit } ?? false)
    }

    /// The usernames of the meeting's members (not its owner), and of those who may edit.
    func memberNames(_ meetingID: String) async throws -> (members: [String], editors: [String]) {
        var members: [String] = []
        var editors: [String] = []
        for member in try await store.members(meetingID: meetingID) {
            guard let user = try await store.user(id: member.userID) else { continue }
            members.append(user.username)
            if member.canEdit { editors.append(user.username) }
        }
        return (members, editors)
    }

    /// The meeting's status as its clients know it: the log's `completed` or `failed` event is
    /// out a moment before the processing process records it in the meeting's row.
    func status(of meeting: MeetingRecord) async throws -> MeetingStatus {
        guard meeting.status == .processing,
            let stored = try await store.latestEvent(meetingID: meeting.id, type: "status"),
            case .status(let update) = try JSONDecoder().decode(MeetingEvent.self, from: Data(stored.json.utf8)).data
        else { return meeting.status }
        switch update.stage {
        case .completed: return .completed
        case .failed: return .failed
        default: return meeting.status
        }
    }

    /// Seconds of audio decoded so far (the latest `upload_progress`), nil before an upload.
    func duration(of meeting: MeetingRecord) async throws -> Double? {
        guard let stored = try await store.latestEvent(meetingID: meeting.id, type: "upload_progress"),
            case .uploadProgress(let progress) = try JSONDecoder().decode(
                MeetingEvent.self, from: Data(stored.json.utf8)
            ).data
        else { return nil }
        return progress.seconds
    }

    // MARK: Delete

    func delete(_ meeting: MeetingRecord, by person: String) async throws {
        await runner.cancel(meetingID: meeting.id)
        defer { states.forget(meetingID: meeting.id) }
        let viewers = try await store.viewerIDs(of: meeting.id)
        try await store.deleteMeeting(id: meeting.id)
        notice("meeting_deleted", meeting, to: viewers, by: person)
        hub.openChannel(meetingID: meeting.id)?.closeAll(.meetingDeleted)
        if let path = meeting.audioPath { try? FileManager.default.removeItem(atPath: path) }
    }
}
