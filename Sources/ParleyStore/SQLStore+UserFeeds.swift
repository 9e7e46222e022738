public import Foundation
import ParleyEvents
import SQLKit

/// Each user's notification feed (`UserFeedStore`).
extension SQLStore: UserFeedStore {
    public func appendNotifications(_ drafts: [NotificationDraft], at date: Date) async throws -> [StoredNotification] {
        guard !drafts.isEmpty else { return [] }
        let timestamp = MeetingEvent.formatTimestamp(date)
        let created = Self.milliseconds(date)
        // Users in a fixed order, so two transactions never wait on each other's feeds.
        let byUser = Dictionary(grouping: drafts.indices, by: { drafts[$0].userID })
        return try await transactor.transaction { database in
            var numbered: [Int: StoredNotification] = [:]
            for userID in byUser.keys.sorted() {
                let indices = byUser[userID]!
                // The feed made (under a new epoch) or moved on, in one statement.
                guard
                    let row = try await database.raw(
                        """
                        INSERT INTO user_feeds (user_id, epoch, latest)
                        SELECT id, \(bind: Identifiers.epoch()), \(bind: indices.count) FROM users WHERE id = \(bind: userID)
                        ON CONFLICT (user_id) DO UPDATE SET latest = user_feeds.latest + excluded.latest
                        RETURNING epoch, latest
                        """
                    ).first()
                else { throw StoreError.stale("no account \(userID) to notify") }
                let epoch = try row.decode(column: "epoch", as: String.self)
                let latest = try row.decode(column: "latest", as: Int.self)
                var rows: [[any Encodable & Sendable]] = []
                for (position, index) in indices.enumerated() {
                    let offset = latest - indices.count + position + 1
                    let draft = drafts[index]
                    let json = StoredNotification.message(
                        type: draft.type, offset: offset, timestamp: timestamp, data: draft.data)
                    numbered[index] = StoredNotification(userID: userID, epoch: epoch, offset: offset, json: json)
                    rows.append([userID, offset, json, created])
                }
                try await Self.inChunks(rows) { chunk in
                    try await database.raw(
                        """
                        INSERT INTO user_notifications (user_id, "offset", json, created_at)
                        VALUES \(Self.valueRows(Array(chunk)))
                        """
                    ).run()
                }
                try await database.raw(
                    """
                    DELETE FROM user_notifications WHERE user_id = \(bind: userID)
                    AND "offset" <= \(bind: latest - keptPerUser)
                    """
                ).run()
                try await notify("u|\(userID)|\(epoch)|\(latest)", on: database)
            }
            return drafts.indices.map { numbered[$0]! }
        }
    }

    public func notifications(userID: String, after: Int, through: Int) async throws -> [StoredNotification] {
        // The feed's epoch in the same read (a read never makes a feed).
        try await database.raw(
            """
            SELECT n."offset", n.json, f.epoch FROM user_notifications n JOIN user_feeds f ON f.user_id = n.user_id
            WHERE n.user_id = \(bind: userID) AND n."offset" > \(bind: after) AND n."offset" <= \(bind: through)
            ORDER BY n."offset"
            """
        ).all().map {
            StoredNotification(
                userID: userID, epoch: try $0.decode(column: "epoch", as: String.self),
                offset: try $0.decode(column: "offset", as: Int.self),
                json: try $0.decode(column: "json", as: String.self))
        }
    }

    public func feedPositions(userIDs: [String]) async throws -> [String: LogPosition] {
        struct Row: Decodable {
            var userId: String
            var epoch: String
            var latest: Int
        }
        var positions: [String: LogPosition] = [:]
        func read(_ userIDs: [String]) async throws {
            try await Self.inChunks(userIDs) { chunk in
                let rows = try await database.raw(
                    "SELECT user_id, epoch, latest FROM user_feeds WHERE user_id IN (\(binds: Array(chunk)))"
                ).all(decoding: Row.self, keyDecodingStrategy: .convertFromSnakeCase)
                for row in rows { positions[row.userId] = LogPosition(epoch: row.epoch, latest: row.latest) }
            }
        }
        try await read(userIDs)
        let missing = userIDs.filter { positions[$0] == nil }
        guard !missing.isEmpty else { return positions }
        for userID in missing { try await Self.createFeed(userID: userID, on: database) }
        try await read(missing)
        return positions
    }

    /// The user's feed, made empty under a new epoch if they have none (an unknown user has
    /// none made: the row would name nobody).
    static func createFeed(userID: String, on database: any SQLDatabase) async throws {
        try await database.raw(
            """
            INSERT INTO user_feeds (user_id, epoch, latest)
            SELECT id, \(bind: Identifiers.epoch()), 0 FROM users WHERE id = \(bind: userID)
            ON CONFLICT (user_id) DO NOTHING
            """
        ).run()
    }
}
