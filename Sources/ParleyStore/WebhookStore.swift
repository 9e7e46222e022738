public import Foundation

/// Webhooks: each user's subscriptions, and a queue of deliveries in the database (so a
/// restart loses none, and one node delivers each: a delivery is claimed under a lease).
public protocol WebhookStore: Sendable {
    func createWebhook(_ webhook: WebhookRecord) async throws
    func webhooks(userID: String) async throws -> [WebhookRecord]
    func webhook(id: String) async throws -> WebhookRecord?
    /// False when the user has no such webhook.
    func deleteWebhook(id: String, userID: String) async throws -> Bool
    /// Queues one delivery of `event` for each webhook of `userIDs` that takes it, once per
    /// `source` (the same source queued again, by another node or later, adds nothing);
    /// returns how many were queued.
    func enqueueDeliveries(event: String, source: String, body: String, userIDs: [String], at: Date) async throws -> Int
    /// Takes up to `limit` deliveries that are due and that nobody holds, until `until`.
    func claimDeliveries(owner: String, until: Date, now: Date, limit: Int) async throws -> [DeliveryJob]
    /// Records an attempt of a delivery this owner holds: delivered, failed for good, or
    /// due again at `retryAt`.
    func recordAttempt(deliveryID: String, owner: String, outcome: DeliveryOutcome, at: Date) async throws
    /// The webhook's deliveries, newest first.
    func deliveries(webhookID: String, limit: Int) async throws -> [DeliveryRecord]
}

public struct WebhookRecord: Sendable, Hashable {
    public var id: String
    public var userID: String
    public var url: String
    public var secret: String
    public var events: [String]
    public var createdAt: Date

    public init(id: String, userID: String, url: String, secret: String, events: [String], createdAt: Date) {
        self.id = id
        self.userID = userID
        self.url = url
        self.secret = secret
        self.events = events
        self.createdAt = createdAt
    }
}

/// A claimed delivery, with what sending it needs.
public struct DeliveryJob: Sendable, Hashable {
    public var id: String
    public var webhookID: String
    public var url: String
    public var secret: String
    public var event: String
    public var body: String
    public var createdAt: Date
    public var attempts: Int
}

public enum DeliveryOutcome: Sendable, Hashable {
    case delivered(status: Int)
    case failed(status: Int?, error: String)
    case retry(status: Int?, error: String, at: Date)
}

/// A delivery as the log shows it.
public struct DeliveryRecord: Sendable, Hashable {
    public var id: String
    public var event: String
    /// pending, delivered or failed.
    public var state: String
    public var attempts: Int
    public var statusCode: Int?
    public var error: String?
    public var createdAt: Date
    public var nextAttemptAt: Date?
    public var finishedAt: Date?
}
