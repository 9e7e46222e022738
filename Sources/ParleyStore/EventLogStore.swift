public import Foundation

/// Each meeting's numbered event log, and what other processes append to it.
public protocol EventLogStore: Sendable {
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

/// Where a meeting's log is.
public struct LogPosition: Sendable, Hashable {
    public var epoch: String
    public var latest: Int

    public init(epoch: String, latest: Int) {
        self.epoch = epoch
        self.latest = latest
    }
}

/// A change another process made, announced by the database.
public enum StoreChange: Sendable, Hashable {
    /// A meeting's log reached `latest` (in `epoch`).
    case appended(meetingID: String, position: LogPosition)
    /// A user's notification feed reached `latest` (in `epoch`).
    case userFeed(userID: String, position: LogPosition)
    /// A job was queued or released.
    case jobQueued
    /// Who watches the meeting through some process changed.
    case presence(meetingID: String)
    /// A message for the meeting's viewers that is not stored, from the process `node`.
    case ephemeral(meetingID: String, node: String, message: String)
    /// The announcements were interrupted (a lost connection, now back): anything may have
    /// happened meanwhile.
    case resumed
}
