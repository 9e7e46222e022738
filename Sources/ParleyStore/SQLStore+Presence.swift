public import Foundation
import SQLKit

/// Who watches which meeting through which process (`PresenceStore`).
extension SQLStore: PresenceStore {
    public func putPresence(meetingID: String, node: String, viewers: [PresenceRecord], at date: Date) async throws {
        try await transactor.transaction { database in
            try await database.raw(
                "DELETE FROM presence WHERE meeting_id = \(bind: meetingID) AND node = \(bind: node)"
            ).run()
            if !viewers.isEmpty {
                let rows = Self.valueRows(
                    viewers.map { [meetingID, node, $0.userID, $0.username, Self.milliseconds(date)] })
                try await database.raw(
                    "INSERT INTO presence (meeting_id, node, user_id, username, seen_at) VALUES \(rows)"
                ).run()
            }
            try await notify("p|\(meetingID)", on: database)
        }
    }

    public func shareEphemeral(meetingID: String, node: String, message: String) async throws {
        guard message.utf8.count <= 4000 else { return }  // NOTIFY takes 8,000 bytes at most
        try await notify("x|\(meetingID)|\(node)|\(message)", on: database)
    }

    public func presence(meetingIDs: [String], excluding node: String, since: Date) async throws
        -> [String: [PresenceRecord]]
    {
        struct Row: Decodable {
            var meetingId: String
            var userId: String
            var username: String
        }
        var viewers: [String: Set<PresenceRecord>] = [:]
        try await Self.inChunks(meetingIDs) { chunk in
            let rows = try await database.raw(
                """
                SELECT meeting_id, user_id, username FROM presence
                WHERE meeting_id IN (\(binds: Array(chunk))) AND node <> \(bind: node)
                    AND seen_at >= \(bind: Self.milliseconds(since))
                """
            ).all(decoding: Row.self, keyDecodingStrategy: .convertFromSnakeCase)
            for row in rows {
                viewers[row.meetingId, default: []].insert(PresenceRecord(userID: row.userId, username: row.username))
            }
        }
        return viewers.mapValues { Array($0) }
    }

    public func touchPresence(node: String, at date: Date) async throws {
        let now = Self.milliseconds(date)
        try await database.raw("UPDATE presence SET seen_at = \(bind: now) WHERE node = \(bind: node)").run()
        // Rows of nodes gone for an hour: nobody counts them any more.
        try await database.raw("DELETE FROM presence WHERE seen_at < \(bind: now - 3_600_000)").run()
    }
}
