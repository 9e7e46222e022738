/// Where a running meeting's events go. The engine calls ``publish(_:)`` for each event in
/// order; the sink numbers it, keeps it and hands it on. The server's sink persists the event
/// before broadcasting it; ParleyPipeline's `MeetingEventLog` keeps them in memory (CLI, tests).
public protocol EventSink: Sendable {
    /// Numbers, timestamps, stores and forwards one event. Must not wait for any consumer.
    @discardableResult
    func publish(_ data: EventData) async throws -> MeetingEvent
}
