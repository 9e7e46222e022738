import Foundation
import Logging
public import NIOCore
import ParleyEvents
public import ParleyStore
import Synchronization

/// Subscribing, replay, closing, keepalive.
extension MeetingChannel {
    /// Registers a subscriber and queues, in order: `connected`, then (when `since` is given
    /// and the log is the one the client knew) every event after `since`, then live events.
    /// No gap and no duplicate: live events that arrive while the replay is read queue behind it.
    /// With an `outlet`, messages are pushed to it from its event loop; without, pull them with
    /// `Subscriber.next()`.
    public func subscribe(
        viewer: Viewer, session: String? = nil, since: Int?, epoch clientEpoch: String?, outlet: (any Outlet)? = nil
    ) async throws -> Subscriber {
        let loop = outlet.map { loops.loop(for: $0.eventLoop) }
        let (subscriber, latest, epoch, recovered, fromMemory, viewers, joined) = state.withLock { state in
            let subscriber = Subscriber(
                id: state.subscribers.newID(), viewer: viewer, session: session, capacity: configuration.sendQueue,
                outlet: outlet, loop: loop)
            let joined = state.audience.connect(viewer)
            state.subscribers.insert(subscriber)
            let recovered = state.order.recovers(since: since, epoch: clientEpoch)
            let fromMemory = recovered ? state.order.kept(after: since ?? 0) : nil
            return (
                subscriber, state.order.published, state.order.epoch, recovered, fromMemory, state.audience.viewers,
                joined
            )
        }
        metrics.connected()
        var replay: [ByteBuffer] = []
        if recovered, let since {
            if let fromMemory {
                replay = fromMemory
            } else {
                do {
                    replay = try await store.events(meetingID: meetingID, after: max(since, 0), through: latest)
                        .map { ByteBuffer(string: $0.json) }
                } catch {
                    unsubscribe(subscriber, reason: .shutdown)
                    throw error
                }
            }
        }
        let connected = Connected(
            meetingID: meetingID, offset: latest, epoch: epoch, recovered: recovered, viewers: viewers,
            timestamp: MeetingEvent.formatTimestamp(Date()))
        subscriber.start(with: [Self.message(connected)] + replay)
        if joined { announcePresence(joined: viewer, left: nil) }
        sharePresence()
        return subscriber
    }

    /// Removes a subscriber (its connection ended) and tells the others if its user left.
    public func unsubscribe(_ subscriber: Subscriber, reason: CloseReason) {
        subscriber.close(reason)
        let (removed, left) = state.withLock { state in
            let removed = state.subscribers.remove(subscriber)
            return (removed, removed && state.audience.disconnect(subscriber.viewer))
        }
        if removed { metrics.disconnected() }
        if left { announcePresence(joined: nil, left: subscriber.viewer) }
        if removed { sharePresence() }
    }

    /// Closes the subscribers of users not in `allowed` (removed from the meeting's members)
    /// with `accessRevoked`.
    public func closeViewers(notIn allowed: Set<String>) {
        close(.accessRevoked) { !allowed.contains($0.viewer.userID) }
    }

    /// Starts a new, empty log under a new epoch and closes every subscriber with
    /// `logReset` so clients refetch the state.
    public func reset(epoch: String) async throws {
        try await store.resetLog(meetingID: meetingID, epoch: epoch)
        state.withLock { $0.order.restart(epoch: epoch) }
        closeAll(.logReset)
    }

    /// Queues a message from one viewer for everyone else watching, here and through the other
    /// processes (who edits what, where a viewer is); not numbered, not persisted. Sharing is
    /// best effort: at most 64 messages of a process on their way to the store at once, the
    /// rest dropped (they are refreshed anyway).
    public func broadcastEphemeral(_ message: ByteBuffer, from sender: Subscriber) {
        broadcastUnnumbered(message, except: sender)
        guard let node = presenceNode, ephemeralInFlight.add(1, ordering: .relaxed).newValue <= 64 else {
            if presenceNode != nil { ephemeralInFlight.subtract(1, ordering: .relaxed) }
            return
        }
        Task {
            defer { self.ephemeralInFlight.subtract(1, ordering: .relaxed) }
            do {
                try await store.shareEphemeral(meetingID: meetingID, node: node, message: String(buffer: message))
            } catch {
                logger.debug("cannot share a message", metadata: ["error": "\(store.describe(error))"])
            }
        }
    }

    /// Queues a message for everyone watching (but `except`); not numbered, not persisted.
    public func broadcastUnnumbered(_ message: ByteBuffer, except: Subscriber? = nil) {
        let subscribers = state.withLock { $0.subscribers.everyone() }
        for subscriber in subscribers where subscriber !== except { subscriber.enqueue(message) }
    }
}
