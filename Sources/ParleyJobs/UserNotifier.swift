public import Foundation
public import Logging
public import ParleyEvents
public import ParleyHub
public import ParleyStore
public import ServiceLifecycle
import Synchronization

/// Tells users, through their feeds (`/ws/user`), what changed in the meetings they may see:
/// `meeting_updated` for a meeting's status (each stage's start and end, its failure) and, at
/// most every ``durationInterval``, its duration while audio arrives; what the routes post
/// (`meeting_shared`, `meeting_unshared`, `meeting_deleted`, `meeting_created`,
/// `action_item_assigned`). One queue, taken in order by ``run()``: a meeting's notifications
/// reach a feed in the order its events were appended. Every process that publishes (a
/// server, `parley worker`) notifies for its own appends.
public final class UserNotifier: Service, Sendable {
    let hub: Hub
    let logger: Logger
    /// Duration updates of one meeting come at most this often (its status changes always).
    let durationInterval: Duration
    private let work: AsyncStream<Work>
    private let queue: AsyncStream<Work>.Continuation
    /// Per meeting: the audio seconds seen last, and when a duration was last sent.
    private let uploads = Mutex<[String: Upload]>([:])

    private struct Upload {
        var seconds: Double
        var sent: ContinuousClock.Instant?
    }

    private enum Work: Sendable {
        case change(meetingID: String, MeetingChange)
        case drafts([NotificationDraft])
    }

    /// What a `meeting_updated` says.
    struct MeetingChange: Sendable, Encodable {
        var meetingID: String
        var title = ""
        var status: String?
        var stage: String?
        var state: String?
        var duration: Double?

        private enum CodingKeys: String, CodingKey {
            case meetingID = "meeting_id", title, status, stage, state, duration
        }
    }

    init(hub: Hub, logger: Logger, durationInterval: Duration = .seconds(2)) {
        self.hub = hub
        self.logger = logger
        self.durationInterval = durationInterval
        (work, queue) = AsyncStream.makeStream(bufferingPolicy: .bufferingOldest(100_000))
        // Weakly: the notifier holds the hub, and the hub its watchers (a cycle would keep the
        // whole engine, its store and its states alive after the server stopped).
        hub.onAppend { [weak self] meetingID, _, events in self?.appended(meetingID: meetingID, events: events) }
    }

    /// Queues notifications (the routes': shares, deletions, assignments); never waits.
    public func post(_ drafts: [NotificationDraft]) {
        guard !drafts.isEmpty else { return }
        enqueue(.drafts(drafts))
    }

    /// A notification's `data` as JSON.
    public static func data(_ value: some Encodable) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? encoder.encode(value)) ?? Data("{}".utf8), as: UTF8.self)
    }

    private func enqueue(_ item: Work) {
        if case .dropped = queue.yield(item) {
            logger.warning("user notifications dropped: the queue is full")
        }
    }

    func appended(meetingID: String, events: [MeetingEvent]) {
        var change: MeetingChange?
        for event in events {
            switch event.data {
            case .status(let status) where status.state != .progress:
                var next = change ?? MeetingChange(meetingID: meetingID)
                next.stage = status.stage.rawValue
                next.state = status.state.rawValue
                next.status =
                    switch status.stage {
                    case .completed: MeetingStatus.completed.rawValue
                    case .failed: MeetingStatus.failed.rawValue
                    default: MeetingStatus.processing.rawValue
                    }
                next.duration = uploads.withLock { uploads in
                    let seconds = uploads[meetingID]?.seconds
                    if status.stage == .completed || status.stage == .failed { uploads[meetingID] = nil }
                    return seconds
                }
                change = next
            case .uploadProgress(let progress):
                let due = uploads.withLock { uploads in
                    let now = ContinuousClock.now
                    var upload = uploads[meetingID] ?? Upload(seconds: 0)
                    upload.seconds = progress.seconds
                    let due = upload.sent.map { now - $0 >= durationInterval } ?? true
                    if due { upload.sent = now }
                    uploads[meetingID] = upload
                    return due
                }
                if due || change != nil {
                    var next = change ?? MeetingChange(meetingID: meetingID)
                    next.duration = progress.seconds
                    change = next
                }
            default:
                break
            }
        }
        if let change { enqueue(.change(meetingID: meetingID, change)) }
    }

    public func run() async throws {
        for await item in work.cancelOnGracefulShutdown() {
            do {
                let drafts: [NotificationDraft]
                switch item {
                case .drafts(let given): drafts = given
                case .change(let meetingID, var change):
                    guard let meeting = try await hub.store.meeting(id: meetingID) else { continue }
                    change.title = meeting.title
                    let viewers = try await hub.store.viewerIDs(of: meetingID)
                    let data = Self.data(change)
                    drafts = viewers.map { NotificationDraft(userID: $0, type: "meeting_updated", data: data) }
                }
                try await hub.notify(drafts)
            } catch {
                logger.warning(
                    "cannot notify users of a change", metadata: ["error": "\(hub.store.describe(error))"])
            }
        }
    }
}
