public import Foundation
import SQLKit

/// Each meeting's numbered event log (`EventLogStore`).
extension SQLStore: EventLogStore {
    public func appendEvents(
        meetingID: String, count: Int, condition: AppendCondition, hint: Int?,
        build: @escaping @Sendable (_ first: Int) throws -> [StoredEvent]
    ) async throws -> [StoredEvent] {
        guard count > 0 else { return [] }
        if count <= 500, let guess = condition.latest ?? hint {
            let events = try build(guess + 1)
            let appended =
                isPostgres
                ? try await appendInOneStatement(events, meetingID: meetingID, condition: condition, expecting: guess)
                : try await insertWhere(events, meetingID: meetingID, condition: condition, expecting: guess)
            if appended { return events }
            // The log is not where the writer thought: a compare-and-append fails; otherwise
            // the transaction below reserves wherever the log is now.
            if condition.latest != nil {
                throw StoreError.stale("the meeting's log moved on since the writer read it")
            }
        }
        return try await transactor.transaction { database in
            var reserve: SQLQueryString = """
                UPDATE meetings SET last_offset = last_offset + \(bind: count)
                WHERE id = \(bind: meetingID) AND epoch = \(bind: condition.epoch)
                """
            if let latest = condition.latest {
                reserve.appendInterpolation(" AND last_offset = \(bind: latest)" as SQLQueryString)
            }
            if let lease = condition.lease {
                reserve.appendInterpolation(
                    " AND EXISTS (SELECT 1 FROM jobs WHERE jobs.meeting_id = meetings.id AND jobs.owner = \(bind: lease))"
                        as SQLQueryString)
            }
            reserve.appendLiteral(" RETURNING last_offset")
            guard let row = try await database.raw(reserve).first() else {
                throw StoreError.stale(
                    "the meeting's log changed under this writer (deleted, reset, moved on, or its job taken over)")
            }
            let last = try row.decode(column: "last_offset", as: Int.self)
            let events = try build(last - count + 1)
            precondition(events.map(\.offset) == Array((last - count + 1)...last), "rows must use the reserved offsets")
            try await Self.insert(events, into: database)
            try await notify("e|\(meetingID)|\(condition.epoch)|\(last)", on: database)
            return events
        }
    }

    /// PostgreSQL: reserves the offsets, inserts the rows and notifies in one statement (one
    /// round trip, atomic), provided the log ends at `expecting` and the condition holds; false
    /// (nothing written) otherwise.
    func appendInOneStatement(
        _ events: [StoredEvent], meetingID: String, condition: AppendCondition, expecting latest: Int
    ) async throws -> Bool {
        var query: SQLQueryString = """
            WITH reserved AS (
                UPDATE meetings SET last_offset = last_offset + \(bind: events.count)
                WHERE id = \(bind: meetingID) AND epoch = \(bind: condition.epoch) AND last_offset = \(bind: latest)
            """
        if let lease = condition.lease {
            query.appendInterpolation(
                " AND EXISTS (SELECT 1 FROM jobs WHERE jobs.meeting_id = meetings.id AND jobs.owner = \(bind: lease))"
                    as SQLQueryString)
        }
        let rows = Self.valueRows(events.map { [$0.meetingID, $0.offset, $0.type, $0.json] }, cast: [1: "BIGINT"])
        query.appendInterpolation(
            """
             RETURNING last_offset),
            added AS (
                INSERT INTO events (meeting_id, "offset", type, json)
                SELECT v.meeting_id, v.o, v.type, v.json FROM (VALUES \(rows)
            """ as SQLQueryString)
        query.appendInterpolation(
            """
            ) AS v(meeting_id, o, type, json) WHERE EXISTS (SELECT 1 FROM reserved))
            SELECT pg_notify(\(literal: Self.notificationChannel),
                'e|' || \(bind: meetingID) || '|' || \(bind: condition.epoch) || '|' || last_offset) FROM reserved
            """ as SQLQueryString)
        return try await database.raw(query).first() != nil
    }

    /// SQLite: inserts the rows in one statement (the trigger of migration 5 moves the counter
    /// in the same statement), provided the log ends at `expecting` and the condition holds;
    /// false (nothing written) otherwise.
    func insertWhere(
        _ events: [StoredEvent], meetingID: String, condition: AppendCondition, expecting latest: Int
    ) async throws -> Bool {
        // The condition is evaluated once, before any row goes in (MATERIALIZED): the trigger
        // moves the counter as rows are inserted.
        var query: SQLQueryString = """
            WITH allowed AS MATERIALIZED (
                SELECT 1 AS yes FROM meetings WHERE id = \(bind: meetingID) AND epoch = \(bind: condition.epoch)
                    AND last_offset = \(bind: latest)
            """
        if let lease = condition.lease {
            query.appendInterpolation(
                " AND EXISTS (SELECT 1 FROM jobs WHERE jobs.meeting_id = meetings.id AND jobs.owner = \(bind: lease))"
                    as SQLQueryString)
        }
        let rows = Self.valueRows(events.map { [$0.meetingID, $0.offset, $0.type, $0.json] })
        query.appendInterpolation(
            """
            )
            INSERT INTO events (meeting_id, "offset", type, json)
            SELECT v.column1, v.column2, v.column3, v.column4 FROM allowed, (VALUES \(rows)) AS v RETURNING "offset"
            """ as SQLQueryString)
        let inserted = try await database.raw(query).all().count
        // One statement is atomic: all rows or none.
        precondition(inserted == 0 || inserted == events.count, "a conditional insert wrote only some rows")
        return inserted == events.count
    }

    /// One multi-row INSERT per chunk of rows.
    static func insert(_ events: [StoredEvent], into database: any SQLDatabase) async throws {
        try await inChunks(events) { chunk in
            let rows = valueRows(chunk.map { [$0.meetingID, $0.offset, $0.type, $0.json] })
            try await database.raw("INSERT INTO events (meeting_id, \"offset\", type, json) VALUES \(rows)").run()
        }
    }

    /// Tells the processes LISTENing (PostgreSQL; delivered when the transaction commits, in
    /// commit order). Payloads stay far under the 8,000-byte limit: ids and a number.
    func notify(_ payload: String, on database: any SQLDatabase) async throws {
        guard isPostgres else { return }
        try await database.raw("SELECT pg_notify(\(literal: Self.notificationChannel), \(bind: payload))").run()
    }

    /// The channel Parley's processes LISTEN on.
    public static let notificationChannel = "parley"

    public func events(meetingID: String, after: Int, through: Int?) async throws -> [StoredEvent] {
        let rows: [any SQLRow]
        if let through {
            rows = try await database.raw(
                """
                SELECT "offset", type, json FROM events WHERE meeting_id = \(bind: meetingID)
                AND "offset" > \(bind: after) AND "offset" <= \(bind: through) ORDER BY "offset"
                """
            ).all()
        } else {
            rows = try await database.raw(
                """
                SELECT "offset", type, json FROM events WHERE meeting_id = \(bind: meetingID)
                AND "offset" > \(bind: after) ORDER BY "offset"
                """
            ).all()
        }
        return try rows.map { try $0.decoded(EventRow.self).record(meetingID: meetingID) }
    }

    public func latestEvent(meetingID: String, type: String) async throws -> StoredEvent? {
        try await database.raw(
            """
            SELECT "offset", type, json FROM events WHERE meeting_id = \(bind: meetingID) AND type = \(bind: type)
            ORDER BY "offset" DESC LIMIT 1
            """
        ).first().map { try $0.decoded(EventRow.self).record(meetingID: meetingID) }
    }

    public func latestOffset(meetingID: String) async throws -> Int {
        let row = try await database.raw("SELECT last_offset FROM meetings WHERE id = \(bind: meetingID)").first()
        return try row?.decode(column: "last_offset", as: Int.self) ?? 0
    }

    public func logPositions(meetingIDs: [String]) async throws -> [String: LogPosition] {
        struct Row: Decodable {
            var id: String
            var epoch: String
            var lastOffset: Int
        }
        var positions: [String: LogPosition] = [:]
        try await Self.inChunks(meetingIDs) { chunk in
            let rows = try await database.raw(
                "SELECT id, epoch, last_offset FROM meetings WHERE id IN (\(binds: Array(chunk)))"
            ).all(decoding: Row.self, keyDecodingStrategy: .convertFromSnakeCase)
            for row in rows { positions[row.id] = LogPosition(epoch: row.epoch, latest: row.lastOffset) }
        }
        return positions
    }

    public func resetLog(meetingID: String, epoch: String) async throws {
        try await transactor.transaction { database in
            try await database.raw(
                "UPDATE meetings SET epoch = \(bind: epoch), last_offset = 0 WHERE id = \(bind: meetingID)"
            ).run()
            try await database.raw("DELETE FROM events WHERE meeting_id = \(bind: meetingID)").run()
            try await database.raw("DELETE FROM meeting_snapshots WHERE meeting_id = \(bind: meetingID)").run()
            try await notify("e|\(meetingID)|\(epoch)|0", on: database)
        }
    }

    public func followChanges(_ handle: @escaping @Sendable (StoreChange) async -> Void) async {
        await follower?(handle)
    }

    public var isShared: Bool { follower != nil }
}
