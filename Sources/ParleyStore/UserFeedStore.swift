public import Foundation

/// Each user's numbered feed of notifications (`/ws/user`): what changed in the meetings they
/// may see. Like a meeting's log it has an epoch and offsets, so a client reconnects with
/// `since` and `epoch` and misses nothing; unlike it, only the latest ``keptPerUser`` are kept.
public protocol UserFeedStore: Sendable {
    /// Appends the notifications, each after its user's latest offset, in one transaction that
    /// also tells the other processes sharing the database (``StoreChange/userFeed(userID:position:)``);
    /// returns them numbered, in the order given. A user's older notifications beyond
    /// ``keptPerUser`` are removed in the same transaction.
    func appendNotifications(_ drafts: [NotificationDraft], at: Date) async throws -> [StoredNotification]
    /// The user's notifications with `after < offset <= through`, in order (those kept).
    func notifications(userID: String, after: Int, through: Int) async throws -> [StoredNotification]
    /// Where each user's feed is; a user without one gets an empty feed under a new epoch.
    func feedPositions(userIDs: [String]) async throws -> [String: LogPosition]
}

/// How many notifications a user's feed keeps: a client away for longer gets `recovered: false`
/// and reads the lists again.
public let keptPerUser = 500

/// A notification to append: for whom, its type, and its `data` object as JSON.
public struct NotificationDraft: Sendable, Hashable {
    public var userID: String
    public var type: String
    public var data: String

    public init(userID: String, type: String, data: String) {
        self.userID = userID
        self.type = type
        self.data = data
    }
}

/// A stored notification: its user, its number in that user's feed (of `epoch`), and the
/// message as sent.
public struct StoredNotification: Sendable, Hashable {
    public var userID: String
    public var epoch: String
    public var offset: Int
    public var json: String

    public init(userID: String, epoch: String, offset: Int, json: String) {
        self.userID = userID
        self.epoch = epoch
        self.offset = offset
        self.json = json
    }

    /// The message: `{"type","offset","timestamp","data"}`, like a meeting's events.
    public static func message(type: String, offset: Int, timestamp: String, data: String) -> String {
        #"{"type":"\#(type)","offset":\#(offset),"timestamp":"\#(timestamp)","data":\#(data)}"#
    }
}
