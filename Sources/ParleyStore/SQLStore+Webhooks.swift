public import Foundation
import SQLKit

/// Webhooks and their delivery queue (`WebhookStore`).
extension SQLStore: WebhookStore {
    public func createWebhook(_ webhook: WebhookRecord) async throws {
        try await database.raw(
            """
            INSERT INTO webhooks (id, user_id, url, secret, events, created_at)
            VALUES (\(bind: webhook.id), \(bind: webhook.userID), \(bind: webhook.url), \(bind: webhook.secret),
                \(bind: webhook.events.joined(separator: ",")), \(bind: Self.milliseconds(webhook.createdAt)))
            """
        ).run()
    }

    public func webhooks(userID: String) async throws -> [WebhookRecord] {
        try await database.raw(
            """
            SELECT id, user_id, url, secret, events, created_at FROM webhooks WHERE user_id = \(bind: userID)
            ORDER BY created_at, id
            """
        ).all().map(Self.webhook)
    }

    public func webhook(id: String) async throws -> WebhookRecord? {
        try await database.raw(
            "SELECT id, user_id, url, secret, events, created_at FROM webhooks WHERE id = \(bind: id)"
        ).first().map(Self.webhook)
    }

    public func deleteWebhook(id: String, userID: String) async throws -> Bool {
        try await transactor.transaction { database in
            guard
                try await database.raw(
                    "SELECT id FROM webhooks WHERE id = \(bind: id) AND user_id = \(bind: userID)"
                ).first() != nil
            else { return false }
            try await database.raw("DELETE FROM webhook_deliveries WHERE webhook_id = \(bind: id)").run()
            try await database.raw("DELETE FROM webhooks WHERE id = \(bind: id)").run()
            return true
        }
    }

    public func enqueueDeliveries(
        event: String, source: String, body: String, userIDs: [String], at: Date
    ) async throws -> Int {
        guard !userIDs.isEmpty else { return 0 }
        let hooks = try await database.raw(
            "SELECT id, events FROM webhooks WHERE user_id IN (\(binds: userIDs))"
        ).all().compactMap { row -> String? in
            let events = try row.decode(column: "events", as: String.self).split(separator: ",").map(String.init)
            return events.contains(event) ? try row.decode(column: "id", as: String.self) : nil
        }
        guard !hooks.isEmpty else { return 0 }
        let now = Self.milliseconds(at)
        let rows: [[any Encodable & Sendable]] = hooks.map {
            [Identifiers.make("d_"), $0, source, event, body, now, now, 0, "pending"]
        }
        let queued = try await database.raw(
            """
            INSERT INTO webhook_deliveries (id, webhook_id, source, event, body, created_at, next_at, attempts, state)
            VALUES \(Self.valueRows(rows, cast: isPostgres ? [5: "bigint", 6: "bigint", 7: "integer"] : [:]))
            ON CONFLICT (webhook_id, source) DO NOTHING
            RETURNING id
            """
        ).all()
        return queued.count
    }

    public func claimDeliveries(owner: String, until: Date, now: Date, limit: Int) async throws -> [DeliveryJob] {
        let skipLocked = isPostgres ? " FOR UPDATE SKIP LOCKED" : ""
        let claimed = try await database.raw(
            """
            UPDATE webhook_deliveries SET owner = \(bind: owner), lease_until = \(bind: Self.milliseconds(until))
            WHERE id IN (
                SELECT id FROM webhook_deliveries
                WHERE state = 'pending' AND next_at <= \(bind: Self.milliseconds(now))
                    AND (lease_until IS NULL OR lease_until < \(bind: Self.milliseconds(now)))
                ORDER BY next_at, id LIMIT \(bind: limit)\(unsafeRaw: skipLocked))
            RETURNING id
            """
        ).all().map { try $0.decode(column: "id", as: String.self) }
        guard !claimed.isEmpty else { return [] }
        return try await database.raw(
            """
            SELECT d.id, d.webhook_id, w.url, w.secret, d.event, d.body, d.created_at, d.attempts
            FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
            WHERE d.id IN (\(binds: claimed)) AND d.owner = \(bind: owner)
            ORDER BY d.next_at, d.id
            """
        ).all().map { row in
            DeliveryJob(
                id: try row.decode(column: "id", as: String.self),
                webhookID: try row.decode(column: "webhook_id", as: String.self),
                url: try row.decode(column: "url", as: String.self),
                secret: try row.decode(column: "secret", as: String.self),
                event: try row.decode(column: "event", as: String.self),
                body: try row.decode(column: "body", as: String.self),
                createdAt: Self.date(try row.decode(column: "created_at", as: Int64.self)),
                attempts: try row.decode(column: "attempts", as: Int.self))
        }
    }

    public func recordAttempt(deliveryID: String, owner: String, outcome: DeliveryOutcome, at: Date) async throws {
        let (state, status, error, next): (String, Int?, String?, Int64?) =
            switch outcome {
            case .delivered(let status): ("delivered", status, nil, nil)
            case .failed(let status, let error): ("failed", status, error, nil)
            case .retry(let status, let error, let retryAt): ("pending", status, error, Self.milliseconds(retryAt))
            }
        let finished: Int64? = next == nil ? Self.milliseconds(at) : nil
        try await database.raw(
            """
            UPDATE webhook_deliveries SET state = \(bind: state), status_code = \(bind: status),
                error = \(bind: error), attempts = attempts + 1, next_at = COALESCE(\(bind: next), next_at),
                finished_at = \(bind: finished), owner = NULL, lease_until = NULL
            WHERE id = \(bind: deliveryID) AND owner = \(bind: owner)
            """
        ).run()
    }

    public func deliveries(webhookID: String, limit: Int) async throws -> [DeliveryRecord] {
        try await database.raw(
            """
            SELECT id, event, state, attempts, status_code, error, created_at, next_at, finished_at
            FROM webhook_deliveries WHERE webhook_id = \(bind: webhookID)
            ORDER BY created_at DESC, id LIMIT \(bind: limit)
            """
        ).all().map { row in
            let state = try row.decode(column: "state", as: String.self)
            return DeliveryRecord(
                id: try row.decode(column: "id", as: String.self),
                event: try row.decode(column: "event", as: String.self), state: state,
                attempts: try row.decode(column: "attempts", as: Int.self),
                statusCode: try row.decode(column: "status_code", as: Int?.self),
                error: try row.decode(column: "error", as: String?.self),
                createdAt: Self.date(try row.decode(column: "created_at", as: Int64.self)),
                nextAttemptAt: state == "pending" ? Self.date(try row.decode(column: "next_at", as: Int64.self)) : nil,
                finishedAt: try row.decode(column: "finished_at", as: Int64?.self).map(Self.date))
        }
    }

    static func webhook(_ row: any SQLRow) throws -> WebhookRecord {
        WebhookRecord(
            id: try row.decode(column: "id", as: String.self),
            userID: try row.decode(column: "user_id", as: String.self),
            url: try row.decode(column: "url", as: String.self),
            secret: try row.decode(column: "secret", as: String.self),
            events: try row.decode(column: "events", as: String.self).split(separator: ",").map(String.init),
            createdAt: Self.date(try row.decode(column: "created_at", as: Int64.self)))
    }
}
