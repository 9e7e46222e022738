import Foundation
import Logging
import ParleyEvents
import ParleyJobs
import ParleyStore

/// What the routes tell users through their feeds (`/ws/user`); the pipeline's status changes
/// are told by the engine's `UserNotifier` itself.
extension MeetingService {
    /// The meeting as `GET /api/meetings` lists it.
    func listRow(_ meeting: MeetingRecord, owner: String) async throws -> MeetingSummaryView {
        MeetingSummaryView(
            id: meeting.id, title: meeting.title, owner: owner,
            createdAt: MeetingEvent.formatTimestamp(meeting.createdAt),
            status: try await status(of: meeting).rawValue, epoch: meeting.epoch,
            duration: try await duration(of: meeting), diarization: meeting.diarization)
    }

    /// A meeting's row and who did something to it, as a notification's `data`.
    private struct RowNotice: Encodable {
        var meeting: MeetingSummaryView
        var by: String
        var canEdit: Bool?

        private enum CodingKeys: String, CodingKey { case meeting, by, canEdit = "can_edit" }
    }

    /// `meeting_created` to the owner (their other windows list it) or `meeting_shared` to a new
    /// member, with the meeting's row.
    func noticeListed(_ meeting: MeetingRecord, owner: String, to userID: String, shared: Bool, canEdit: Bool? = nil)
        async
    {
        await telling {
            let data = UserNotifier.data(
                RowNotice(meeting: try await listRow(meeting, owner: owner), by: owner, canEdit: canEdit))
            notifier.post([
                NotificationDraft(userID: userID, type: shared ? "meeting_shared" : "meeting_created", data: data)
            ])
        }
    }

    /// Runs what tells users of a change already made: a failure is logged, never the
    /// change's (the user's action stands; their lists catch up on the next read).
    private func telling(_ body: () async throws -> Void) async {
        do {
            try await body()
        } catch {
            logger.warning("cannot notify users of a change", metadata: ["error": "\(store.describe(error))"])
        }
    }

    /// A meeting's id and title, and who did something to it.
    private struct MeetingNotice: Encodable {
        var meetingID: String
        var title: String
        var by: String?

        private enum CodingKeys: String, CodingKey { case meetingID = "meeting_id", title, by }
    }

    /// `meeting_unshared` to a member removed, `meeting_deleted` to everyone who saw a meeting
    /// deleted, or `meeting_updated` (its new title) to everyone who sees it.
    func notice(_ type: String, _ meeting: MeetingRecord, to userIDs: [String], by person: String?) {
        let data = UserNotifier.data(MeetingNotice(meetingID: meeting.id, title: meeting.title, by: person))
        notifier.post(userIDs.map { NotificationDraft(userID: $0, type: type, data: data) })
    }

    private struct Assignment: Encodable {
        var meetingID: String
        var title: String
        var item: ActionItemRecord
        var by: String

        private enum CodingKeys: String, CodingKey { case meetingID = "meeting_id", title, item, by }
    }

    /// `action_item_assigned` to the account an item was just assigned to.
    func noticeAssigned(_ item: ActionItemRecord, in meeting: MeetingRecord, by person: String) async {
        await telling {
            guard let name = item.assignee, let assignee = try await store.user(named: name) else { return }
            let data = UserNotifier.data(
                Assignment(meetingID: meeting.id, title: meeting.title, item: item, by: person))
            notifier.post([NotificationDraft(userID: assignee.id, type: "action_item_assigned", data: data)])
        }
    }
}
