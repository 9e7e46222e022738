import ParleyStore

/// Who watches one meeting: this process's open connections per viewer, the viewers watching
/// through other processes (a shared database), and whether this process's viewers still have
/// to be written to the store for the others. A value kept under the channel's lock; the
/// channel does the announcing and the writing.
struct Audience {
    /// Open connections per viewer here: presence without scanning every subscriber.
    private var connections: [Viewer: Int] = [:]
    /// Viewers watching through other processes.
    private var remote: Set<Viewer> = []
    /// This process's viewers changed since they were last written to the store.
    private var unshared = false
    /// A write of this process's viewers runs.
    private var sharing = false

    /// Everyone watching, here or through another process, once each, in name order.
    var viewers: [Viewer] { Set(connections.keys).union(remote).sorted(by: Self.order) }

    /// A connection of `viewer` opened here; true when the viewer arrived as a whole (was not
    /// watching here or elsewhere).
    mutating func connect(_ viewer: Viewer) -> Bool {
        let first = connections[viewer, default: 0] == 0
        connections[viewer, default: 0] += 1
        if first { unshared = true }
        return first && !remote.contains(viewer)
    }

    /// A connection of `viewer` closed here; true when the viewer left as a whole.
    mutating func disconnect(_ viewer: Viewer) -> Bool {
        let count = connections[viewer, default: 1] - 1
        connections[viewer] = count > 0 ? count : nil
        guard count <= 0 else { return false }
        unshared = true
        return !remote.contains(viewer)
    }

    /// The viewers watching through other processes now; returns who arrived and who left as a
    /// whole.
    mutating func observeRemote(_ viewers: Set<Viewer>) -> (joined: [Viewer], left: [Viewer]) {
        let before = Set(self.viewers)
        remote = viewers
        let after = Set(self.viewers)
        return (after.subtracting(before).sorted(by: Self.order), before.subtracting(after).sorted(by: Self.order))
    }

    /// Starts a write of this process's viewers when they changed and none runs.
    mutating func beginSharing() -> Bool {
        guard unshared, !sharing else { return false }
        sharing = true
        return true
    }

    /// The set the running write stores next (the latest); nil, and the write ends, when the
    /// store has it already.
    mutating func nextShare() -> [PresenceRecord]? {
        guard unshared else {
            sharing = false
            return nil
        }
        unshared = false
        return connections.keys.sorted(by: Self.order).map { PresenceRecord(userID: $0.userID, username: $0.username) }
    }

    /// The running write stopped before the store had the latest set (it failed, or the hub
    /// stopped; or it could not start): the next sweep writes it.
    mutating func sharingStopped() {
        unshared = true
        sharing = false
    }

    private static func order(_ a: Viewer, _ b: Viewer) -> Bool { (a.username, a.userID) < (b.username, b.userID) }
}
