public import Foundation

/// Everything the server keeps: users, refresh tokens, meetings, members and each meeting's
/// numbered event log. The hub and the routes talk to this protocol only, so a second
/// database (PostgreSQL for scale-out) is a second conformance, not a change to them.
public protocol Store: Sendable {
    /// Brings the schema up to date (each numbered migration once, in order). Safe to call on
    /// every start.
    func migrate() async throws

    // MARK: Users

    /// Throws `StoreError.conflict` when the name is taken (names compare case-insensitively).
    func createUser(_ user: UserRecord) async throws
    func user(named username: String) async throws -> UserRecord?
    func user(id: String) async throws -> UserRecord?

    // MARK: Refresh tokens (stored hashed)

    func insertRefreshToken(_ token: RefreshTokenRecord) async throws
    /// Marks the token used and returns it, or returns nil when it is unknown. A token that was
    /// already used or revoked is returned with `used` / `revoked` set and is not changed.
    func consumeRefreshToken(hash: String, at date: Date) async throws -> RefreshTokenRecord?
    /// Revokes every token of a rotation family (reuse of an old token, or logout).
    func revokeRefreshFamily(_ family: String) async throws

    // MARK: Meetings

    func createMeeting(_ meeting: MeetingRecord) async throws
    func meeting(id: String) async throws -> MeetingRecord?
    /// Meetings the user owns or was added to, newest first.
    func meetings(visibleTo userID: String) async throws -> [MeetingRecord]
    /// Meetings whose processing was running (status `processing`): left so by a crash or a stop.
    func meetings(withStatus status: MeetingStatus) async throws -> [MeetingRecord]
    func updateMeeting(_ meeting: MeetingRecord) async throws
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

    // MARK: Event log

    /// Appends `count` events after the meeting's latest offset, atomically, when `condition`
    /// holds: the store reserves the offsets, `build(first)` makes the rows (their JSON carries
    /// the offsets), and they are inserted in one transaction, which also tells the other
    /// processes sharing the database (``changes()``). Throws `StoreError.stale` when the
    /// condition does not hold (the log was reset, the lease lost, the log moved on). `hint`
    /// is where the writer believes the log ends: when it is right, PostgreSQL appends in one
    /// round trip instead of a transaction of four.
    func appendEvents(
        meetingID: String, count: Int, condition: AppendCondition, hint: Int?,
        build: @escaping @Sendable (_ first: Int) throws -> [StoredEvent]
    ) async throws -> [StoredEvent]
    /// Events with `after < offset <= through` (no upper bound when `through` is nil), in order.
    func events(meetingID: String, after: Int, through: Int?) async throws -> [StoredEvent]
    /// The meeting's latest event of a type (`upload_progress` for its duration, say).
    func latestEvent(meetingID: String, type: String) async throws -> StoredEvent?
    /// The highest offset stored, 0 when the log is empty.
    func latestOffset(meetingID: String) async throws -> Int
    /// The epoch and latest offset of each meeting's log (meetings that do not exist are missing).
    func logPositions(meetingIDs: [String]) async throws -> [String: LogPosition]
    /// Starts a new, empty log under `epoch`, atomically (a new upload, a reprocessing).
    func resetLog(meetingID: String, epoch: String) async throws
    /// Hands `handle` what other processes change, as they do it, one change at a time, until
    /// the calling task is cancelled; returns at once when only this process uses the database
    /// (SQLite). Runs in the caller's task (on PostgreSQL, on a listening connection of its
    /// own). A notification can be lost; `.resumed` says some may have been, and readers
    /// close gaps from the log.
    func followChanges(_ handle: @escaping @Sendable (StoreChange) async -> Void) async
    /// Whether other processes may share this database (PostgreSQL), so presence and the like
    /// are shared through it.
    var isShared: Bool { get }
    /// Whether an error may pass by itself (the database restarting, a connection lost), so
    /// the write is worth retrying.
    func isTransient(_ error: any Error) -> Bool
    /// Words for a log line about the error (the driver's details, not the query's values).
    func describe(_ error: any Error) -> String

    // MARK: Presence across processes

    /// Replaces who watches the meeting through `node` (its viewers, each once), and tells the
    /// other processes.
    func putPresence(meetingID: String, node: String, viewers: [PresenceRecord], at date: Date) async throws
    /// Who watches each meeting through nodes other than `node`, counting only nodes heard from
    /// since `since` (a node that died stops counting).
    func presence(meetingIDs: [String], excluding node: String, since: Date) async throws -> [String: [PresenceRecord]]
    /// The node is alive: its presence rows stay current. Also drops rows long stale.
    func touchPresence(node: String, at date: Date) async throws

    // MARK: Jobs

    /// Queues processing for a meeting whose audio is complete (`owner` nil), or records that
    /// `owner` is processing it now under a lease until `leaseUntil`. Replaces an earlier job.
    func putJob(meetingID: String, epoch: String, owner: String?, leaseUntil: Date?, at date: Date) async throws
    /// Takes the oldest job that is queued or whose lease ran out, for `owner`, leased until
    /// `until`; nil when there is none. Processes claiming at once never get the same job.
    func claimJob(owner: String, until: Date, now: Date) async throws -> JobRecord?
    /// Extends the lease; false when `owner` no longer holds the job (it was taken over).
    func renewJob(meetingID: String, owner: String, until: Date) async throws -> Bool
    /// Ends the job held by `owner`, setting the meeting's final status (nil: leaving it); false
    /// when `owner` no longer held it (nothing is changed then).
    func finishJob(meetingID: String, owner: String, status: MeetingStatus?) async throws -> Bool
    /// Gives the job back to the queue (a graceful stop), keeping its attempt count, so
    /// another process takes it over at once; false when `owner` no longer held it.
    func releaseJob(meetingID: String, owner: String) async throws -> Bool
    /// Ends every lease now (a single-process store starting: whoever held them is gone).
    func expireLeases() async throws
    /// The meeting's job, if it has one.
    func job(meetingID: String) async throws -> JobRecord?

    // MARK: Read model

    /// The stored snapshot of the meeting's state, if any (see ``MeetingStates``).
    func snapshot(meetingID: String) async throws -> StateSnapshot?
    /// Stores a snapshot unless the one stored is of the same log and at least as recent, or
    /// the meeting's log is no longer `snapshot.epoch`.
    func putSnapshot(_ snapshot: StateSnapshot) async throws

    /// Closes connections. The store is unusable afterwards.
    func close() async throws
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

public struct UserRecord: Sendable, Hashable {
    public var id: String
    public var username: String
    public var passwordHash: String
    public var createdAt: Date

    public init(id: String, username: String, passwordHash: String, createdAt: Date) {
        self.id = id
        self.username = username
        self.passwordHash = passwordHash
        self.createdAt = createdAt
    }
}

public struct RefreshTokenRecord: Sendable, Hashable {
    /// SHA-256 of the token, hex. The token itself is never stored.
    public var hash: String
    public var userID: String
    /// All tokens issued by rotating one login share a family.
    public var family: String
    public var expiresAt: Date
    public var used: Bool
    public var revoked: Bool

    public init(
        hash: String, userID: String, family: String, expiresAt: Date, used: Bool = false, revoked: Bool = false
    ) {
        self.hash = hash
        self.userID = userID
        self.family = family
        self.expiresAt = expiresAt
        self.used = used
        self.revoked = revoked
    }
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

    public init(
        id: String, title: String, ownerID: String, createdAt: Date, epoch: String, status: MeetingStatus = .created,
        audioPath: String? = nil, audioBytes: Int64? = nil, transcriber: String? = nil, summarizer: String? = nil
    ) {
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

/// One persisted event: its number, its type and its wire JSON, stored exactly as sent.
public struct StoredEvent: Sendable, Hashable {
    public var meetingID: String
    public var offset: Int
    public var type: String
    public var json: String

    public init(meetingID: String, offset: Int, type: String, json: String) {
        self.meetingID = meetingID
        self.offset = offset
        self.type = type
        self.json = json
    }
}

/// What an append needs to hold, checked in the transaction that appends.
public struct AppendCondition: Sendable, Hashable {
    /// The log the writer knows; a reset since makes the append stale.
    public var epoch: String
    /// The writer built its events from the log up to here (compare-and-append); nil: anywhere.
    public var latest: Int?
    /// The writer processes the meeting under this job owner's lease; nil: no lease needed.
    public var lease: String?

    public init(epoch: String, latest: Int? = nil, lease: String? = nil) {
        self.epoch = epoch
        self.latest = latest
        self.lease = lease
    }
}

/// A meeting's state as its log built it up to `offset` (JSON of `MeetingState`).
public struct StateSnapshot: Sendable, Hashable {
    public var meetingID: String
    public var epoch: String
    public var offset: Int
    public var json: String

    public init(meetingID: String, epoch: String, offset: Int, json: String) {
        self.meetingID = meetingID
        self.epoch = epoch
        self.offset = offset
        self.json = json
    }
}

/// Where a meeting's log is.
public struct LogPosition: Sendable, Hashable {
    public var epoch: String
    public var latest: Int

    public init(epoch: String, latest: Int) {
        self.epoch = epoch
        self.latest = latest
    }
}

/// A viewer of a meeting, as presence is shared between processes.
public struct PresenceRecord: Sendable, Hashable {
    public var userID: String
    public var username: String

    public init(userID: String, username: String) {
        self.userID = userID
        self.username = username
    }
}

/// A change another process made, announced by the database.
public enum StoreChange: Sendable, Hashable {
    /// A meeting's log reached `latest` (in `epoch`).
    case appended(meetingID: String, position: LogPosition)
    /// A job was queued or released.
    case jobQueued
    /// Who watches the meeting through some process changed.
    case presence(meetingID: String)
    /// The announcements were interrupted (a lost connection, now back): anything may have
    /// happened meanwhile.
    case resumed
}

/// Processing of one meeting: queued (no owner) or leased to a worker until `leaseUntil`.
public struct JobRecord: Sendable, Hashable {
    public var meetingID: String
    public var epoch: String
    public var owner: String?
    public var leaseUntil: Date?
    /// How many times it was claimed: more than one means an earlier worker stopped mid-job.
    public var attempts: Int

    public init(meetingID: String, epoch: String, owner: String?, leaseUntil: Date?, attempts: Int) {
        self.meetingID = meetingID
        self.epoch = epoch
        self.owner = owner
        self.leaseUntil = leaseUntil
        self.attempts = attempts
    }
}

/// The store's one error type.
public struct StoreError: Error, Hashable, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable {
        private enum Value { case conflict, notFound, unavailable, stale }
        private let value: Value
        public static let conflict = Code(value: .conflict)
        /// A conditional write found the data moved on (see ``AppendCondition``).
        public static let stale = Code(value: .stale)
        public static let notFound = Code(value: .notFound)
        public static let unavailable = Code(value: .unavailable)
    }

    public let code: Code
    public let message: String

    public init(code: Code, message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }

    public static func conflict(_ message: String) -> Self { .init(code: .conflict, message: message) }
    public static func unavailable(_ message: String) -> Self { .init(code: .unavailable, message: message) }
    public static func stale(_ message: String) -> Self { .init(code: .stale, message: message) }
}
