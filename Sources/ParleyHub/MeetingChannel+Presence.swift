import Foundation
import Logging
import NIOCore
import ParleyEvents
public import ParleyStore
import Synchronization

/// Who watches: this process's viewers shared through the store, the other processes' read
/// from it, arrivals and departures announced.
extension MeetingChannel {
    /// Has this process's viewers written to the shared store (one write at a time, always the
    /// latest set), so the other processes' channels of the meeting show them too.
    func sharePresence() {
        guard presenceNode != nil, state.withLock({ $0.audience.beginSharing() }) else { return }
        if !work.submit(HubWork(.sharePresence, self)) { state.withLock { $0.audience.sharingStopped() } }
    }

    /// Writes the viewers until the store has the latest set (the hub runs it). A failed write
    /// is left for the hub's next sweep, which retries it; stale rows expire meanwhile.
    func writePresence() async {
        guard let node = presenceNode else { return }
        while !Task.isCancelled {
            guard let viewers = state.withLock({ $0.audience.nextShare() }) else { return }
            do {
                try await store.putPresence(meetingID: meetingID, node: node, viewers: viewers, at: Date())
            } catch {
                logger.warning(
                    "cannot share presence",
                    metadata: ["meeting.id": "\(meetingID)", "error": "\(store.describe(error))"])
                break
            }
        }
        state.withLock { $0.audience.sharingStopped() }
    }

    /// Who watches through the other processes now: announces each viewer who arrived or
    /// went as a whole (not also watching here).
    public func observeRemoteViewers(_ viewers: Set<Viewer>) {
        let (joined, left) = state.withLock { $0.audience.observeRemote(viewers) }
        for viewer in joined { announcePresence(joined: viewer, left: nil) }
        for viewer in left { announcePresence(joined: nil, left: viewer) }
    }

    /// Writes this process's viewers again if an earlier write failed.
    func retrySharingPresence() { sharePresence() }

    func announcePresence(joined: Viewer?, left: Viewer?) {
        let viewers = state.withLock { $0.audience.viewers }
        let presence = Presence(
            meetingID: meetingID, timestamp: MeetingEvent.formatTimestamp(Date()),
            data: .init(viewers: viewers, joined: joined, left: left))
        broadcastUnnumbered(Self.message(presence))
        removeClosedSubscribers()
    }
}
