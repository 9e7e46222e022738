public import Foundation
public import ParleyEvents
import Synchronization

/// An in-memory event log: numbers events from `firstOffset`, keeps the meeting's state, and
/// offers the events as an `AsyncSequence` whose buffer is unbounded, so a slow consumer
/// never blocks the engine (events are small: a meeting has thousands, not millions).
public final class MeetingEventLog: EventSink {
    private struct State {
        var next: Int
        var state: MeetingState
        var continuations: [Int: AsyncStream<MeetingEvent>.Continuation] = [:]
        var nextSubscriber = 0
        var history: [MeetingEvent] = []
        var finished = false
    }

    public let meetingID: String
    private let storage: Mutex<State>
    private let keepHistory: Bool

    public init(meetingID: String, title: String, firstOffset: Int = 1, keepHistory: Bool = true) {
        self.meetingID = meetingID
        self.keepHistory = keepHistory
        storage = Mutex(State(next: firstOffset, state: MeetingState(meetingID: meetingID, title: title)))
    }

    @discardableResult
    public func publish(_ data: EventData) async throws -> MeetingEvent {
        // Yielding under the lock keeps every subscriber's order the offset order; finishing
        // happens outside it, because a stream's termination handler takes the lock again.
        let (event, ended) = storage.withLock { s in
            let event = MeetingEvent(meetingID: meetingID, offset: s.next, timestamp: Date(), data: data)
            s.next += 1
            s.state.apply(event)
            if keepHistory { s.history.append(event) }
            for continuation in s.continuations.values { continuation.yield(event) }
            var ended: [AsyncStream<MeetingEvent>.Continuation] = []
            if s.state.isFinished {
                s.finished = true
                ended = Array(s.continuations.values)
                s.continuations = [:]
            }
            return (event, ended)
        }
        for continuation in ended { continuation.finish() }
        return event
    }

    /// The events from now on (after those already published, which ``history`` holds);
    /// the sequence ends after the meeting's `completed` or `failed` event.
    public func events() -> AsyncStream<MeetingEvent> {
        let (stream, continuation) = AsyncStream<MeetingEvent>.makeStream(bufferingPolicy: .unbounded)
        let id: Int? = storage.withLock { s in
            if s.finished {
                continuation.finish()
                return nil
            }
            let id = s.nextSubscriber
            s.nextSubscriber += 1
            s.continuations[id] = continuation
            return id
        }
        if let id {
            continuation.onTermination = { [weak self] _ in
                _ = self?.storage.withLock { $0.continuations.removeValue(forKey: id) }
            }
        }
        return stream
    }

    public var state: MeetingState { storage.withLock { $0.state } }
    public var history: [MeetingEvent] { storage.withLock { $0.history } }
}
