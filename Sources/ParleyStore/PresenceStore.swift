public import Foundation

/// Who watches which meeting through which process, shared between processes.
public protocol PresenceStore: Sendable {
    /// Replaces who watches the meeting through `node` (its viewers, each once), and tells the
    /// other processes.
    func putPresence(meetingID: String, node: String, viewers: [PresenceRecord], at date: Date) async throws
    /// Who watches each meeting through nodes other than `node`, counting only nodes heard from
    /// since `since` (a node that died stops counting).
    func presence(meetingIDs: [String], excluding node: String, since: Date) async throws -> [String: [PresenceRecord]]
    /// The node is alive: its presence rows stay current. Also drops rows long stale.
    func touchPresence(node: String, at date: Date) async throws
    /// Passes a message that is not stored (who edits what, where a viewer is) to the other
    /// processes watching the meeting, as `StoreChange.ephemeral`; nothing where there are none
    /// (SQLite). At most a few kilobytes.
    func shareEphemeral(meetingID: String, node: String, message: String) async throws
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
