public import Foundation
public import Logging
public import ParleyEvents
public import ParleyHub
public import ParleyStore
import Synchronization

/// The events a webhook may take.
public enum WebhookEvent: String, CaseIterable, Sendable {
    case meetingCompleted = "meeting.completed"
    case meetingFailed = "meeting.failed"
    case actionItemsUpdated = "action_items.updated"
}

/// Queues a delivery for each webhook that takes an event a meeting's log just received
/// (through this process: one node queues each, and the queue takes an event once per webhook
/// whoever queues it again), for the meeting's owner and members. Every process that publishes
/// (a server, `parley worker`) queues; servers send.
public final class WebhookTrigger: Sendable {
    let store: any Store
    let logger: Logger
    private let queuedWatchers = Mutex<[@Sendable () -> Void]>([])

    init(hub: Hub, logger: Logger) {
        store = hub.store
        self.logger = logger
        hub.onAppend { [self] meetingID, epoch, events in appended(meetingID: meetingID, epoch: epoch, events: events) }
    }

    /// Calls `watcher` after deliveries were queued (the sender looks at once).
    public func onQueued(_ watcher: @escaping @Sendable () -> Void) { queuedWatchers.withLock { $0.append(watcher) } }

    func appended(meetingID: String, epoch: String, events: [MeetingEvent]) {
        let wanted = events.compactMap { event -> (WebhookEvent, MeetingEvent)? in
            switch event.data {
            case .status(let status) where status.stage == .completed: (.meetingCompleted, event)
            case .status(let status) where status.stage == .failed: (.meetingFailed, event)
            case .actionItems: (.actionItemsUpdated, event)
            default: nil
            }
        }
        guard !wanted.isEmpty else { return }
        Task {
            do {
                guard let meeting = try await store.meeting(id: meetingID) else { return }
                let users = try await store.viewerIDs(of: meetingID)
                var queued = 0
                for (kind, event) in wanted {
                    let body = try Self.body(kind, event: event, meeting: meeting)
                    queued += try await store.enqueueDeliveries(
                        event: kind.rawValue, source: "\(meetingID)/\(epoch)/\(event.offset)", body: body,
                        userIDs: users, at: Date())
                }
                if queued > 0 { for watcher in queuedWatchers.withLock({ $0 }) { watcher() } }
            } catch {
                logger.error(
                    "cannot queue webhook deliveries",
                    metadata: ["meeting.id": "\(meetingID)", "error": "\(store.describe(error))"])
            }
        }
    }

    static func body(_ kind: WebhookEvent, event: MeetingEvent, meeting: MeetingRecord) throws -> String {
        var object: [String: Any] = [
            "event": kind.rawValue, "occurred_at": MeetingEvent.formatTimestamp(event.timestamp),
            "meeting": ["id": meeting.id, "title": meeting.title, "epoch": meeting.epoch, "offset": event.offset],
        ]
        switch event.data {
        case .status(let status):
            object["status"] = ["stage": status.stage.rawValue, "detail": status.detail ?? ""]
        case .actionItems(let update):
            object["action_items"] = try JSONSerialization.jsonObject(with: JSONEncoder().encode(update.items))
        default: break
        }
        return String(
            decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
    }
}
