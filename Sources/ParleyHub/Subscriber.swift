import DequeModule
public import NIOCore
import Synchronization

/// One WebSocket connection's view of a meeting: a bounded queue of already-serialized
/// messages that the publisher fills without waiting and the connection's writer drains.
/// When the queue is full the subscriber is closed (`CloseReason.tooSlow`); the client
/// reconnects with `since` and loses nothing.
public final class Subscriber: Sendable {
    public let id: Int
    public let viewer: Viewer
    public let capacity: Int

    private struct State {
        var queue: Deque<ByteBuffer> = []
        var waiter: CheckedContinuation<Void, Never>?
        var closed: CloseReason?
    }

    private let state = Mutex(State())

    init(id: Int, viewer: Viewer, capacity: Int) {
        self.id = id
        self.viewer = viewer
        self.capacity = capacity
    }

    /// Queues a message; never waits. Returns false (and closes the subscriber) when the
    /// queue was full.
    @discardableResult
    func enqueue(_ message: ByteBuffer) -> Bool {
        let (waiter, accepted): (CheckedContinuation<Void, Never>?, Bool) = state.withLock { state in
            if state.closed != nil { return (nil, true) }
            if state.queue.count >= capacity {
                state.closed = .tooSlow
                state.queue.removeAll()
                let waiter = state.waiter
                state.waiter = nil
                return (waiter, false)
            }
            state.queue.append(message)
            let waiter = state.waiter
            state.waiter = nil
            return (waiter, true)
        }
        waiter?.resume()
        return accepted
    }

    /// Puts messages in front of everything queued (the replay, before live events that
    /// arrived while it was read). Does not count against the capacity.
    func prepend(_ messages: [ByteBuffer]) {
        state.withLock { state in
            guard state.closed == nil else { return }
            state.queue.insert(contentsOf: messages, at: 0)
        }
    }

    /// Sends what you can: waits for messages and returns all that are queued, or returns
    /// the reason once the subscriber is closed and drained.
    public func next() async -> Delivery {
        while true {
            let ready: Delivery? = state.withLock { state in
                // A close drops what was queued; the client recovers by offset.
                if let reason = state.closed { return .closed(reason) }
                if state.queue.isEmpty { return nil }
                let batch = Array(state.queue)
                state.queue.removeAll(keepingCapacity: state.queue.count <= 64)
                return .messages(batch)
            }
            if let ready { return ready }
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state in
                    if state.closed != nil || !state.queue.isEmpty { return true }
                    state.waiter = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        }
    }

    /// Closes the subscriber; the writer sees `reason` after at most the batch it is sending.
    /// The first reason wins.
    public func close(_ reason: CloseReason) {
        let waiter: CheckedContinuation<Void, Never>? = state.withLock { state in
            if state.closed == nil { state.closed = reason }
            let waiter = state.waiter
            state.waiter = nil
            return waiter
        }
        waiter?.resume()
    }

    public var closeReason: CloseReason? { state.withLock { $0.closed } }
}

/// What a connection's writer gets next.
public enum Delivery: Sendable {
    case messages([ByteBuffer])
    case closed(CloseReason)
}

/// Who is watching: the user, as other viewers see them.
public struct Viewer: Sendable, Hashable, Codable {
    public var userID: String
    public var username: String

    public init(userID: String, username: String) {
        self.userID = userID
        self.username = username
    }

    private enum CodingKeys: String, CodingKey { case userID = "user_id", username }
}

/// Why the server closes a WebSocket, with the close code clients see (Docs/server.md).
public enum CloseReason: Sendable, Hashable {
    /// The client went away or closed; nothing to send.
    case clientClosed
    /// The server is stopping: 1001.
    case shutdown
    /// The access token expired while connected: 4001. Reconnect with a fresh token.
    case tokenExpired
    /// The client's send queue overflowed: 4008. Reconnect with `since`.
    case tooSlow
    /// The meeting's event log was reset (new upload) or the meeting deleted: 4009.
    /// Reconnect with `since` and `epoch`; `recovered: false` says to refetch the state.
    case logReset
    /// The meeting was deleted: 4004.
    case meetingDeleted

    public var code: UInt16 {
        switch self {
        case .clientClosed: 1000
        case .shutdown: 1001
        case .tokenExpired: 4001
        case .tooSlow: 4008
        case .logReset: 4009
        case .meetingDeleted: 4004
        }
    }

    public var message: String {
        switch self {
        case .clientClosed: "closed"
        case .shutdown: "server shutting down"
        case .tokenExpired: "token expired"
        case .tooSlow: "too slow: reconnect with since"
        case .logReset: "event log reset: reconnect with since and epoch"
        case .meetingDeleted: "meeting deleted"
        }
    }
}
