import Foundation
import Hummingbird
import ParleyEvents
import ParleyJobs
import ParleyStore

/// `GET /api/action-items?assignee=me&open=true`: action items across every meeting the user
/// may see. `assignee=me` (the default): those assigned to the user's account, or, when
/// nobody is assigned, whose owner is called as the user is (any case; dots, dashes and
/// underscores as spaces). `assignee=all`: every item. `open=true` / `false`: not done / done.
/// Soonest due first; a due phrase that names a day has its `due_date`.
struct ActionItemRoutes {
    let store: any Store
    /// Waited for before reading, so the asker's own edits of a moment ago are in.
    let indexer: SearchIndexer

    struct Item: ResponseEncodable {
        var meetingID: String
        var title: String
        var meetingCreatedAt: String
        var id: Int
        var task: String
        var owner: String?
        var assignee: String?
        var due: String?
        var dueDate: String?
        var done: Bool
        var time: Double

        enum CodingKeys: String, CodingKey {
            case title, id, task, owner, assignee, due, done, time
            case meetingID = "meeting_id"
            case meetingCreatedAt = "meeting_created_at"
            case dueDate = "due_date"
        }
    }

    struct Items: ResponseEncodable {
        var actionItems: [Item]
        enum CodingKeys: String, CodingKey { case actionItems = "action_items" }
    }

    func add(to group: RouterGroup<ParleyRequestContext>) {
        group.get { request, context -> Items in
            let user = try context.requireUser()
            let parameters = request.uri.queryParameters
            let mine: Bool
            switch parameters.get("assignee") ?? "me" {
            case "me": mine = true
            case "all": mine = false
            default: throw APIError.badRequest("assignee= is me or all", code: "invalid_assignee")
            }
            let open: Bool?
            switch parameters.get("open") {
            case nil: open = nil
            case "true": open = true
            case "false": open = false
            default: throw APIError.badRequest("open= is true or false", code: "invalid_open")
            }
            let query = ActionItemQuery(
                userID: user.id, mine: mine ? (user.username, [IndexedActionItem.nameKey(user.username)]) : nil,
                open: open)
            await indexer.settle()
            return Items(
                actionItems: try await store.actionItems(query).map { hit in
                    Item(
                        meetingID: hit.meetingID, title: hit.title,
                        meetingCreatedAt: MeetingEvent.formatTimestamp(hit.createdAt), id: hit.item.item,
                        task: hit.item.task, owner: hit.item.owner, assignee: hit.item.assignee, due: hit.item.due,
                        dueDate: hit.item.dueDate, done: hit.item.done, time: hit.item.time)
                })
        }
    }
}
