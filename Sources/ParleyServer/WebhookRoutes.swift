import Foundation
import HTTPTypes
import Hummingbird
import ParleyEvents
import ParleyJobs
import ParleyStore

/// `/api/webhooks`: the signed-in user's webhooks (`url`, `secret`, `events`), and each one's
/// delivery log. The secret is never sent back.
struct WebhookRoutes {
    let store: any Store
    let allowPrivate: Bool

    struct Create: Decodable {
        var url: String
        var secret: String
        var events: [String]
    }

    struct Hook: ResponseEncodable {
        var id: String
        var url: String
        var events: [String]
        var createdAt: String
        enum CodingKeys: String, CodingKey {
            case id, url, events
            case createdAt = "created_at"
        }
        init(_ record: WebhookRecord) {
            id = record.id
            url = record.url
            events = record.events
            createdAt = MeetingEvent.formatTimestamp(record.createdAt)
        }
    }

    struct Hooks: ResponseEncodable { var webhooks: [Hook] }

    struct Delivery: ResponseEncodable {
        var id: String
        var event: String
        var state: String
        var attempts: Int
        var statusCode: Int?
        var error: String?
        var createdAt: String
        var nextAttemptAt: String?
        var finishedAt: String?
        enum CodingKeys: String, CodingKey {
            case id, event, state, attempts, error
            case statusCode = "status_code"
            case createdAt = "created_at"
            case nextAttemptAt = "next_attempt_at"
            case finishedAt = "finished_at"
        }
    }

    struct Deliveries: ResponseEncodable { var deliveries: [Delivery] }

    func add(to group: RouterGroup<ParleyRequestContext>) {
        group.get { _, context -> Hooks in
            Hooks(webhooks: try await store.webhooks(userID: try context.requireUser().id).map(Hook.init))
        }
        group.post { request, context -> EditedResponse<Hook> in
            let user = try context.requireUser()
            let body = try await request.decode(as: Create.self, context: context)
            let url = try WebhookAddress.check(body.url, allowPrivate: allowPrivate)
            guard (8...256).contains(body.secret.count) else {
                throw APIError.badRequest("secret must be 8 to 256 characters", code: "invalid_secret")
            }
            let events = Array(Set(body.events)).sorted()
            guard !events.isEmpty, events.allSatisfy({ WebhookEvent(rawValue: $0) != nil }) else {
                throw APIError.badRequest(
                    "events must name at least one of "
                        + WebhookEvent.allCases.map(\.rawValue).joined(separator: ", "), code: "invalid_events")
            }
            guard try await store.webhooks(userID: user.id).count < 20 else {
                throw APIError.conflict("at most 20 webhooks per user", code: "too_many_webhooks")
            }
            let record = WebhookRecord(
                id: Identifiers.webhook(), userID: user.id, url: url.absoluteString, secret: body.secret,
                events: events,
                createdAt: Date())
            try await store.createWebhook(record)
            return EditedResponse(status: .created, response: Hook(record))
        }
        group.delete(":id") { _, context -> HTTPResponse.Status in
            let user = try context.requireUser()
            guard try await store.deleteWebhook(id: try context.parameters.require("id"), userID: user.id) else {
                throw APIError.notFound("no such webhook")
            }
            return .noContent
        }
        group.get(":id/deliveries") { _, context -> Deliveries in
            let user = try context.requireUser()
            guard let hook = try await store.webhook(id: try context.parameters.require("id")), hook.userID == user.id
            else { throw APIError.notFound("no such webhook") }
            return Deliveries(
                deliveries: try await store.deliveries(webhookID: hook.id, limit: 200).map {
                    Delivery(
                        id: $0.id, event: $0.event, state: $0.state, attempts: $0.attempts, statusCode: $0.statusCode,
                        error: $0.error, createdAt: MeetingEvent.formatTimestamp($0.createdAt),
                        nextAttemptAt: $0.nextAttemptAt.map(MeetingEvent.formatTimestamp),
                        finishedAt: $0.finishedAt.map(MeetingEvent.formatTimestamp))
                })
        }
    }
}
