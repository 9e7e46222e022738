import DequeModule
public import NIOCore
import Synchronization

/// One connection's view of a meeting: a bounded queue of already-serialized messages that
/// the publisher fills without waiting. With an `Outlet` (a server socket) the queue is pushed
/// from the connection's event loop, together with every other subscriber of that loop; without
/// one, a reader pulls it with `next()`. When the queue is full the subscriber is closed
/// (`CloseReason.tooSlow`); the client reconnects with `since` and loses nothing.
public final class Subscriber: Sendable {
    public let id: Int
    public let viewer: Viewer
    /// The login session whose token opened this socket (closed when it logs out).
    public let session: String?
    public let capacity: Int
    let outlet: (any Outlet)?
    let loop: DeliveryLoop?
    /// When the connection last sent anything (`NIODeadline` nanoseconds).
    private let lastHeard: Atomic<UInt64>

    private struct State {
        var queue: Deque<ByteBuffer> = []
        var closed: CloseReason?
        /// Pull: the reader waiting in `next()`.
        var waiter: CheckedContinuation<Void, Never>?
        /// Push: false until `start`, so nothing overtakes `connected` and the replay.
        var started = false
        /// Push: a drain is due, or the socket is not writable (its return drains); either way
        /// a new message needs no new drain.
        var scheduled = false
        var closeDelivered = false
        /// Push: a WebSocket ping frame goes out with the next write.
        var ping = false

        enum Wake {
            case none
            case resume(CheckedContinuation<Void, Never>)
            case schedule
        }

        /// Who must run now that there is something to send; `always` for a close, which must
        /// get through even while the socket is not writable.
        mutating func wake(push: Bool, always: Bool = false) -> Wake {
            if push {
                guard started || always, !scheduled || always else { return .none }
                scheduled = true
                return .schedule
            }
            guard let waiter else { return .none }
            self.waiter = nil
            return .resume(waiter)
        }
    }

    private let state = Mutex(State())

    init(id: Int, viewer: Viewer, session: String? = nil, capacity: Int, outlet: (any Outlet)?, loop: DeliveryLoop?) {
        self.id = id
        self.viewer = viewer
        self.session = session
        self.capacity = capacity
        self.outlet = outlet
        self.loop = loop
        lastHeard = Atomic(NIODeadline.now().uptimeNanoseconds)
    }

    private func perform(_ wake: State.Wake) {
        switch wake {
        case .none: break
        case .resume(let waiter): waiter.resume()
        case .schedule: loop?.schedule(self)
        }
    }

    /// Queues a message; never waits. Returns false (and closes the subscriber) when the
    /// queue was full.
    @discardableResult
    func enqueue(_ message: ByteBuffer) -> Bool {
        enqueue(contentsOf: CollectionOfOne(message))
    }

    /// Queues messages in order; never waits. Returns false (and closes the subscriber) when
    /// they did not fit.
    @discardableResult
    func enqueue(contentsOf messages: some Collection<ByteBuffer>) -> Bool {
        let push = outlet != nil
        var accepted = true
        let wake = state.withLock { state -> State.Wake in
            if state.closed != nil { return .none }
            if state.queue.count + messages.count > capacity {
                state.closed = .tooSlow
                state.queue.removeAll()
                accepted = false
                return state.wake(push: push, always: true)
            }
            state.queue.append(contentsOf: messages)
            return state.wake(push: push)
        }
        perform(wake)
        return accepted
    }

    /// Queues a message for this connection only (a `pong`, an error about what it sent).
    public func send(_ message: ByteBuffer) {
        enqueue(message)
    }

    /// Queues a keepalive: the `ping` message, and a WebSocket ping frame for a socket.
    func ping(_ message: ByteBuffer) {
        let push = outlet != nil
        let wake = state.withLock { state -> State.Wake in
            if state.closed != nil || state.queue.count >= capacity { return .none }
            state.queue.append(message)
            state.ping = push
            return state.wake(push: push)
        }
        perform(wake)
    }

    /// Puts messages in front of everything queued (`connected` and the replay, before live
    /// events that arrived while it was read) and starts sending. Does not count against the
    /// capacity.
    func start(with messages: [ByteBuffer]) {
        let push = outlet != nil
        let wake = state.withLock { state -> State.Wake in
            guard state.closed == nil else { return .none }
            state.queue.insert(contentsOf: messages, at: 0)
            state.started = true
            return state.wake(push: push)
        }
        perform(wake)
    }

    /// Push: writes what is queued, or delivers the close. Runs on the outlet's event loop.
    func drain() {
        guard let outlet else { return }
        enum Step {
            case idle
            case write(Deque<ByteBuffer>, ping: Bool)
            case close(CloseReason)
        }
        let step = state.withLock { state -> Step in
            state.scheduled = false
            if let reason = state.closed {
                if state.closeDelivered { return .idle }
                state.closeDelivered = true
                return .close(reason)
            }
            guard state.started, !state.queue.isEmpty || state.ping else { return .idle }
            guard outlet.isWritable else {
                // The socket is full: the client is not reading. `resume()` comes back when
                // it drains; meanwhile the queue fills and may close the subscriber as too slow.
                state.scheduled = true
                return .idle
            }
            let batch = state.queue
            state.queue = []
            defer { state.ping = false }
            return .write(batch, ping: state.ping)
        }
        switch step {
        case .idle: break
        case .write(let batch, let ping): outlet.write(batch, ping: ping)
        case .close(let reason): outlet.close(reason)
        }
    }

    /// Push: the socket takes writes again. Call on the outlet's event loop.
    public func resume() {
        drain()
    }

    /// Pull: waits for messages and returns all that are queued, or returns the reason once
    /// the subscriber is closed.
    public func next() async -> Delivery {
        precondition(outlet == nil, "a subscriber with an outlet is pushed, not pulled")
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

    /// Closes the subscriber; its connection sees `reason` after at most what is being
    /// written. The first reason wins.
    public func close(_ reason: CloseReason) {
        let push = outlet != nil
        let wake = state.withLock { state -> State.Wake in
            if state.closed != nil { return .none }
            state.closed = reason
            state.queue.removeAll()
            return state.wake(push: push, always: true)
        }
        perform(wake)
    }

    public var closeReason: CloseReason? { state.withLock { $0.closed } }

    /// The connection sent something (any bytes: a message, a pong): it is alive.
    public func heard() {
        lastHeard.store(NIODeadline.now().uptimeNanoseconds, ordering: .relaxed)
    }

    /// Whether the connection has sent nothing for longer than `limit`.
    func isSilent(longerThan limit: TimeAmount, now: NIODeadline) -> Bool {
        let heard = lastHeard.load(ordering: .relaxed)
        return now.uptimeNanoseconds > heard && Int64(now.uptimeNanoseconds - heard) > limit.nanoseconds
    }
}

/// What a pulling reader gets next.
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
    /// The client answered no ping for two keepalive intervals: 1001.
    case unresponsive
    /// The viewer may no longer see the meeting (removed from its members): 4003.
    case accessRevoked
    /// The session that opened the socket logged out: 4001, like an expired token (a client
    /// that can no longer refresh goes to its login).
    case loggedOut

    public var code: UInt16 {
        switch self {
        case .clientClosed: 1000
        case .shutdown: 1001
        case .tokenExpired: 4001
        case .tooSlow: 4008
        case .logReset: 4009
        case .meetingDeleted: 4004
        case .unresponsive: 1001
        case .accessRevoked: 4003
        case .loggedOut: 4001
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
        case .unresponsive: "no answer to pings"
        case .accessRevoked: "you no longer have access to this meeting"
        case .loggedOut: "logged out"
        }
    }
}
