/// The read model's snapshots: a meeting's state as of an offset of its log.
public protocol SnapshotStore: Sendable {
    /// The stored snapshot of the meeting's state, if any (see ``MeetingStates``).
    func snapshot(meetingID: String) async throws -> StateSnapshot?
    /// Stores a snapshot unless the one stored is of the same log and more recent, or
    /// the meeting's log is no longer `snapshot.epoch`.
    func putSnapshot(_ snapshot: StateSnapshot) async throws
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
