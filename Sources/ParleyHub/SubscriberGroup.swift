public import NIOCore

/// The sockets of one meeting's channel or one user's feed: what the hub and the server do to
/// all of them (keepalive, closing) is the same for both.
public protocol SubscriberGroup: AnyObject, Sendable {
    /// Everyone subscribed now.
    var subscribers: [Subscriber] { get }
    /// Registers a connection and queues `connected`, the replay after `since` (of `epoch`)
    /// and then live messages; pushed to `outlet`, or pulled with `Subscriber.next()`.
    func subscribe(
        viewer: Viewer, session: String?, since: Int?, epoch: String?, outlet: (any Outlet)?
    ) async throws -> Subscriber
    /// Removes a subscriber (its connection ended).
    func unsubscribe(_ subscriber: Subscriber, reason: CloseReason)
}

extension SubscriberGroup {
    public var subscriberCount: Int { subscribers.count }

    /// Closes every subscriber (shutdown, a reset log, a deleted meeting).
    public func closeAll(_ reason: CloseReason) {
        for subscriber in subscribers { subscriber.close(reason) }
    }

    /// The sessions of the sockets open here.
    public var sessions: Set<String> { Set(subscribers.compactMap(\.session)) }

    /// Closes the sockets opened by any of `sessions` (they logged out) with `loggedOut`.
    public func closeSessions(_ sessions: Set<String>) {
        close(.loggedOut) { $0.session.map(sessions.contains) ?? false }
    }

    /// Closes the subscribers `matching` says, with `reason`.
    func close(_ reason: CloseReason, matching: (Subscriber) -> Bool) {
        for subscriber in subscribers where matching(subscriber) { subscriber.close(reason) }
    }

    /// The keepalive round: a `ping` message and a WebSocket ping frame to everyone, and
    /// `unresponsive` for whoever has sent nothing (not even a pong) for `silentAfter`.
    public func keepalive(silentAfter: TimeAmount) {
        let now = NIODeadline.now()
        let ping = Keepalive.ping()
        for subscriber in subscribers {
            if subscriber.isSilent(longerThan: silentAfter, now: now) {
                subscriber.close(.unresponsive)
            } else {
                subscriber.ping(ping)
            }
        }
    }
}
