public import Foundation
public import SQLKit

/// `Store` over any SQLKit database. Written in the SQL that SQLite (3.35+) and PostgreSQL
/// share, with bound parameters only, so the PostgreSQL driver can reuse it as it is.
public struct SQLStore: Store {
    public let database: any SQLDatabase
    /// Runs the writes that must be atomic (appends, resets, finishing a job).
    let transactor: any SQLTransactor
    /// Follows the other processes' changes (PostgreSQL's LISTEN) in the caller's task; nil for
    /// a single-process database.
    private let follower: (@Sendable (@escaping @Sendable (StoreChange) async -> Void) async -> Void)?
    private let transient: @Sendable (any Error) -> Bool
    private let describer: @Sendable (any Error) -> String
    private let onClose: @Sendable () async throws -> Void
    /// PostgreSQL: skip rows other transactions hold when claiming, and announce changes.
    private let isPostgres: Bool

    public init(
        database: any SQLDatabase, transactor: any SQLTransactor,
        follow: (@Sendable (@escaping @Sendable (StoreChange) async -> Void) async -> Void)? = nil,
        isTransient: @escaping @Sendable (any Error) -> Bool = { _ in false },
        describe: @escaping @Sendable (any Error) -> String = { "\($0)" },
        onClose: @escaping @Sendable () async throws -> Void = {}
    ) {
        self.describer = describe
        self.database = database
        self.transactor = transactor
        self.follower = follow
        self.transient = isTransient
        self.onClose = onClose
        isPostgres = database.dialect.name == "postgresql"
    }

    /// Brings the schema up to date: each numbered migration runs once, in order, and is
    /// recorded in `schema_versions` (version 1 is written so it also accepts a database made
    /// before versions were recorded).
    public func migrate() async throws {
        try await database.raw(
            "CREATE TABLE IF NOT EXISTS schema_versions (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)"
        ).run()
        let applied = Set(
            try await database.raw("SELECT version FROM schema_versions").all().map {
                try $0.decode(column: "version", as: Int.self)
            })
        for (version, statements) in Self.migrations where !applied.contains(version) {
            // Each version whole or not at all: a failed step leaves the previous version intact.
            let all = statements + (isPostgres ? [] : Self.sqliteOnly[version] ?? [])
            try await transactor.transaction { database in
                for statement in all { try await database.raw(SQLQueryString(statement)).run() }
                try await database.raw(
                    """
                    INSERT INTO schema_versions (version, applied_at)
                    VALUES (\(bind: version), \(bind: Self.milliseconds(Date())))
                    """
                ).run()
            }
        }
    }

    static let migrations: [(version: Int, statements: [String])] = [
        (
            1,
            [
                """
                CREATE TABLE IF NOT EXISTS users (
                    id TEXT PRIMARY KEY, username TEXT NOT NULL, username_key TEXT NOT NULL UNIQUE,
                    password_hash TEXT NOT NULL, created_at BIGINT NOT NULL)
                """,
                """
                CREATE TABLE IF NOT EXISTS refresh_tokens (
                    hash TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                    family TEXT NOT NULL, expires_at BIGINT NOT NULL, used INTEGER NOT NULL DEFAULT 0,
                    revoked INTEGER NOT NULL DEFAULT 0, used_at BIGINT)
                """,
                "CREATE INDEX IF NOT EXISTS refresh_tokens_family ON refresh_tokens(family)",
                """
                CREATE TABLE IF NOT EXISTS meetings (
                    id TEXT PRIMARY KEY, title TEXT NOT NULL,
                    owner_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                    created_at BIGINT NOT NULL, epoch TEXT NOT NULL, status TEXT NOT NULL,
                    audio_path TEXT, audio_bytes BIGINT, transcriber TEXT, summarizer TEXT)
                """,
                "CREATE INDEX IF NOT EXISTS meetings_owner ON meetings(owner_id)",
                "CREATE INDEX IF NOT EXISTS meetings_status ON meetings(status)",
                """
                CREATE TABLE IF NOT EXISTS meeting_members (
                    meeting_id TEXT NOT NULL REFERENCES meetings(id) ON DELETE CASCADE,
                    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                    PRIMARY KEY (meeting_id, user_id))
                """,
                "CREATE INDEX IF NOT EXISTS meeting_members_user ON meeting_members(user_id)",
                """
                CREATE TABLE IF NOT EXISTS events (
                    meeting_id TEXT NOT NULL REFERENCES meetings(id) ON DELETE CASCADE,
                    "offset" BIGINT NOT NULL, type TEXT NOT NULL, json TEXT NOT NULL,
                    PRIMARY KEY (meeting_id, "offset"))
                """,
            ]
        ),
        // Members who may edit (rename speakers, edit action items), not only watch.
        (2, ["ALTER TABLE meeting_members ADD COLUMN can_edit INTEGER NOT NULL DEFAULT 0"]),
        // Offsets assigned by the database (a counter per meeting, so several nodes can append),
        // and the job queue. Meetings a previous version left processing become jobs whose
        // lease has run out, so the next node to look takes them over.
        (
            3,
            [
                "ALTER TABLE meetings ADD COLUMN last_offset BIGINT NOT NULL DEFAULT 0",
                """
                UPDATE meetings SET last_offset =
                    COALESCE((SELECT MAX("offset") FROM events WHERE events.meeting_id = meetings.id), 0)
                """,
                """
                CREATE TABLE IF NOT EXISTS jobs (
                    meeting_id TEXT PRIMARY KEY REFERENCES meetings(id) ON DELETE CASCADE,
                    epoch TEXT NOT NULL, owner TEXT, lease_until BIGINT, attempts INTEGER NOT NULL DEFAULT 0,
                    created_at BIGINT NOT NULL)
                """,
                "CREATE INDEX IF NOT EXISTS jobs_created ON jobs(created_at)",
                """
                INSERT INTO jobs (meeting_id, epoch, owner, lease_until, attempts, created_at)
                SELECT id, epoch, 'an earlier version', 0, 1, created_at FROM meetings WHERE status = 'processing'
                """,
            ]
        ),
        // Who watches which meeting through which node, for presence across nodes.
        (
            4,
            [
                """
                CREATE TABLE IF NOT EXISTS presence (
                    meeting_id TEXT NOT NULL REFERENCES meetings(id) ON DELETE CASCADE, node TEXT NOT NULL,
                    user_id TEXT NOT NULL, username TEXT NOT NULL, seen_at BIGINT NOT NULL,
                    PRIMARY KEY (meeting_id, node, user_id))
                """,
                "CREATE INDEX IF NOT EXISTS presence_node ON presence(node)",
            ]
        ),
        // SQLite only (below): a trigger keeps the counter, so an append is one statement.
        (5, []),
        // The read model: each meeting's state as of an offset of its log, so reading a meeting
        // does not decode its whole log.
        (
            6,
            [
                """
                CREATE TABLE IF NOT EXISTS meeting_snapshots (
                    meeting_id TEXT PRIMARY KEY REFERENCES meetings(id) ON DELETE CASCADE,
                    epoch TEXT NOT NULL, "offset" BIGINT NOT NULL, state TEXT NOT NULL)
                """
            ]
        ),
    ]

    /// Statements of a migration that only SQLite runs (PostgreSQL records the version too).
    static let sqliteOnly: [Int: [String]] = [
        5: [
            """
            CREATE TRIGGER IF NOT EXISTS events_counter AFTER INSERT ON events FOR EACH ROW
            BEGIN
                UPDATE meetings SET last_offset = NEW."offset"
                WHERE id = NEW.meeting_id AND last_offset < NEW."offset";
            END
            """
        ]
    ]

    // MARK: Users

    public func createUser(_ user: UserRecord) async throws {
        let rows = try await database.raw(
            """
            INSERT INTO users (id, username, username_key, password_hash, created_at)
            VALUES (\(bind: user.id), \(bind: user.username), \(bind: user.username.lowercased()),
                    \(bind: user.passwordHash), \(bind: Self.milliseconds(user.createdAt)))
            ON CONFLICT DO NOTHING RETURNING id
            """
        ).all()
        if rows.isEmpty { throw StoreError.conflict("the username '\(user.username)' is taken") }
    }

    public func user(named username: String) async throws -> UserRecord? {
        try await database.raw(
            "SELECT id, username, password_hash, created_at FROM users WHERE username_key = \(bind: username.lowercased())"
        ).first().map(Self.user)
    }

    public func user(id: String) async throws -> UserRecord? {
        try await database.raw("SELECT id, username, password_hash, created_at FROM users WHERE id = \(bind: id)")
            .first().map(Self.user)
    }

    private static func user(_ row: any SQLRow) throws -> UserRecord {
        UserRecord(
            id: try row.decode(column: "id", as: String.self),
            username: try row.decode(column: "username", as: String.self),
            passwordHash: try row.decode(column: "password_hash", as: String.self),
            createdAt: date(try row.decode(column: "created_at", as: Int64.self)))
    }

    // MARK: Refresh tokens

    public func insertRefreshToken(_ token: RefreshTokenRecord) async throws {
        try await database.raw(
            """
            INSERT INTO refresh_tokens (hash, user_id, family, expires_at, used, revoked)
            VALUES (\(bind: token.hash), \(bind: token.userID), \(bind: token.family),
                    \(bind: Self.milliseconds(token.expiresAt)), \(bind: token.used ? 1 : 0), \(bind: token.revoked ? 1 : 0))
            """
        ).run()
    }

    public func consumeRefreshToken(hash: String, at date: Date) async throws -> RefreshTokenRecord? {
        // One statement marks it used only if it was not, so two concurrent refreshes with the
        // same token cannot both succeed.
        let claimed = try await database.raw(
            """
            UPDATE refresh_tokens SET used = 1, used_at = \(bind: Self.milliseconds(date))
            WHERE hash = \(bind: hash) AND used = 0 AND revoked = 0
            RETURNING hash, user_id, family, expires_at
            """
        ).first()
        if let claimed {
            var token = try Self.refreshToken(claimed, used: false, revoked: false)
            token.used = false  // it was fresh when presented
            return token
        }
        guard
            let row = try await database.raw(
                "SELECT hash, user_id, family, expires_at, used, revoked FROM refresh_tokens WHERE hash = \(bind: hash)"
            ).first()
        else { return nil }
        return try Self.refreshToken(
            row, used: try row.decode(column: "used", as: Int.self) != 0,
            revoked: try row.decode(column: "revoked", as: Int.self) != 0)
    }

    public func revokeRefreshFamily(_ family: String) async throws {
        try await database.raw("UPDATE refresh_tokens SET revoked = 1 WHERE family = \(bind: family)").run()
    }

    private static func refreshToken(_ row: any SQLRow, used: Bool, revoked: Bool) throws -> RefreshTokenRecord {
        RefreshTokenRecord(
            hash: try row.decode(column: "hash", as: String.self),
            userID: try row.decode(column: "user_id", as: String.self),
            family: try row.decode(column: "family", as: String.self),
            expiresAt: date(try row.decode(column: "expires_at", as: Int64.self)),
            used: used, revoked: revoked)
    }

    // MARK: Meetings

    private static let meetingColumns =
        "id, title, owner_id, created_at, epoch, status, audio_path, audio_bytes, transcriber, summarizer"

    public func createMeeting(_ meeting: MeetingRecord) async throws {
        try await database.raw(
            """
            INSERT INTO meetings (\(unsafeRaw: Self.meetingColumns))
            VALUES (\(bind: meeting.id), \(bind: meeting.title), \(bind: meeting.ownerID),
                    \(bind: Self.milliseconds(meeting.createdAt)), \(bind: meeting.epoch), \(bind: meeting.status.rawValue),
                    \(bind: meeting.audioPath), \(bind: meeting.audioBytes), \(bind: meeting.transcriber),
                    \(bind: meeting.summarizer))
            """
        ).run()
    }

    public func meeting(id: String) async throws -> MeetingRecord? {
        try await database.raw("SELECT \(unsafeRaw: Self.meetingColumns) FROM meetings WHERE id = \(bind: id)")
            .first().map(Self.meeting)
    }

    public func meetings(visibleTo userID: String) async throws -> [MeetingRecord] {
        try await database.raw(
            """
            SELECT \(unsafeRaw: Self.meetingColumns) FROM meetings
            WHERE owner_id = \(bind: userID)
               OR id IN (SELECT meeting_id FROM meeting_members WHERE user_id = \(bind: userID))
            ORDER BY created_at DESC, id
            """
        ).all().map(Self.meeting)
    }

    public func meetings(withStatus status: MeetingStatus) async throws -> [MeetingRecord] {
        try await database.raw(
            "SELECT \(unsafeRaw: Self.meetingColumns) FROM meetings WHERE status = \(bind: status.rawValue) ORDER BY created_at"
        ).all().map(Self.meeting)
    }

    public func updateMeeting(_ meeting: MeetingRecord) async throws {
        try await database.raw(
            """
            UPDATE meetings SET title = \(bind: meeting.title), epoch = \(bind: meeting.epoch),
                status = \(bind: meeting.status.rawValue), audio_path = \(bind: meeting.audioPath),
                audio_bytes = \(bind: meeting.audioBytes), transcriber = \(bind: meeting.transcriber),
                summarizer = \(bind: meeting.summarizer)
            WHERE id = \(bind: meeting.id)
            """
        ).run()
    }

    public func startProcessing(meetingID: String) async throws -> Bool {
        try await database.raw(
            """
            UPDATE meetings SET status = \(bind: MeetingStatus.processing.rawValue)
            WHERE id = \(bind: meetingID) AND status <> \(bind: MeetingStatus.processing.rawValue) RETURNING id
            """
        ).first() != nil
    }

    public func recordUpload(meetingID: String, bytes: Int64) async throws {
        try await database.raw("UPDATE meetings SET audio_bytes = \(bind: bytes) WHERE id = \(bind: meetingID)").run()
    }

    public func deleteMeeting(id: String) async throws {
        // Explicit deletes, so the result does not depend on foreign keys being enforced; one
        // transaction, so a failure leaves the meeting whole.
        try await transactor.transaction { database in
            for table in ["jobs", "presence", "events", "meeting_snapshots", "meeting_members"] {
                try await database.raw("DELETE FROM \(unsafeRaw: table) WHERE meeting_id = \(bind: id)").run()
            }
            try await database.raw("DELETE FROM meetings WHERE id = \(bind: id)").run()
        }
    }

    public func addMember(meetingID: String, userID: String, canEdit: Bool) async throws {
        try await database.raw(
            """
            INSERT INTO meeting_members (meeting_id, user_id, can_edit)
            VALUES (\(bind: meetingID), \(bind: userID), \(bind: canEdit ? 1 : 0))
            ON CONFLICT (meeting_id, user_id) DO UPDATE SET can_edit = excluded.can_edit
            """
        ).run()
    }

    public func members(meetingID: String) async throws -> [MemberRecord] {
        try await database.raw(
            """
            SELECT user_id, can_edit FROM meeting_members WHERE meeting_id = \(bind: meetingID) ORDER BY user_id
            """
        ).all().map {
            MemberRecord(
                userID: try $0.decode(column: "user_id", as: String.self),
                canEdit: try $0.decode(column: "can_edit", as: Int.self) != 0)
        }
    }

    private static func meeting(_ row: any SQLRow) throws -> MeetingRecord {
        let status = try row.decode(column: "status", as: String.self)
        return MeetingRecord(
            id: try row.decode(column: "id", as: String.self),
            title: try row.decode(column: "title", as: String.self),
            ownerID: try row.decode(column: "owner_id", as: String.self),
            createdAt: date(try row.decode(column: "created_at", as: Int64.self)),
            epoch: try row.decode(column: "epoch", as: String.self),
            status: MeetingStatus(rawValue: status) ?? .failed,
            audioPath: try row.decode(column: "audio_path", as: String?.self),
            audioBytes: try row.decode(column: "audio_bytes", as: Int64?.self),
            transcriber: try row.decode(column: "transcriber", as: String?.self),
            summarizer: try row.decode(column: "summarizer", as: String?.self))
    }

    // MARK: Events

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
    private func appendInOneStatement(
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
        query.appendLiteral(
            """
             RETURNING last_offset),
            added AS (
                INSERT INTO events (meeting_id, "offset", type, json)
                SELECT v.meeting_id, v.o, v.type, v.json FROM (VALUES
            """)
        for (index, event) in events.enumerated() {
            if index > 0 { query.appendLiteral(", ") }
            query.appendInterpolation(
                "(\(bind: event.meetingID), \(bind: event.offset)::BIGINT, \(bind: event.type), \(bind: event.json))"
                    as SQLQueryString)
        }
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
    private func insertWhere(
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
        query.appendLiteral(
            """
            )
            INSERT INTO events (meeting_id, "offset", type, json)
            SELECT v.column1, v.column2, v.column3, v.column4 FROM allowed, (VALUES
            """)
        for (index, event) in events.enumerated() {
            if index > 0 { query.appendLiteral(", ") }
            query.appendInterpolation(
                "(\(bind: event.meetingID), \(bind: event.offset), \(bind: event.type), \(bind: event.json))"
                    as SQLQueryString)
        }
        query.appendLiteral(") AS v RETURNING \"offset\"")
        let inserted = try await database.raw(query).all().count
        // One statement is atomic: all rows or none.
        precondition(inserted == 0 || inserted == events.count, "a conditional insert wrote only some rows")
        return inserted == events.count
    }

    /// One multi-row INSERT per chunk of 500, under every driver's limit on bound parameters.
    private static func insert(_ events: [StoredEvent], into database: any SQLDatabase) async throws {
        var start = events.startIndex
        while start < events.endIndex {
            let end = min(start + 500, events.endIndex)
            var query = SQLQueryString("INSERT INTO events (meeting_id, \"offset\", type, json) VALUES ")
            for (index, event) in events[start..<end].enumerated() {
                if index > 0 { query.appendLiteral(", ") }
                query.appendInterpolation(
                    "(\(bind: event.meetingID), \(bind: event.offset), \(bind: event.type), \(bind: event.json))"
                        as SQLQueryString)
            }
            try await database.raw(query).run()
            start = end
        }
    }

    /// Tells the processes LISTENing (PostgreSQL; delivered when the transaction commits, in
    /// commit order). Payloads stay far under the 8,000-byte limit: ids and a number.
    private func notify(_ payload: String, on database: any SQLDatabase) async throws {
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
        return try rows.map { row in
            StoredEvent(
                meetingID: meetingID, offset: try row.decode(column: "offset", as: Int.self),
                type: try row.decode(column: "type", as: String.self),
                json: try row.decode(column: "json", as: String.self))
        }
    }

    public func latestEvent(meetingID: String, type: String) async throws -> StoredEvent? {
        try await database.raw(
            """
            SELECT "offset", type, json FROM events WHERE meeting_id = \(bind: meetingID) AND type = \(bind: type)
            ORDER BY "offset" DESC LIMIT 1
            """
        ).first().map { row in
            StoredEvent(
                meetingID: meetingID, offset: try row.decode(column: "offset", as: Int.self),
                type: try row.decode(column: "type", as: String.self),
                json: try row.decode(column: "json", as: String.self))
        }
    }

    public func latestOffset(meetingID: String) async throws -> Int {
        let row = try await database.raw("SELECT last_offset FROM meetings WHERE id = \(bind: meetingID)").first()
        return try row?.decode(column: "last_offset", as: Int.self) ?? 0
    }

    public func logPositions(meetingIDs: [String]) async throws -> [String: LogPosition] {
        var positions: [String: LogPosition] = [:]
        var start = meetingIDs.startIndex
        while start < meetingIDs.endIndex {
            let end = min(start + 500, meetingIDs.endIndex)
            var query = SQLQueryString("SELECT id, epoch, last_offset FROM meetings WHERE id IN (")
            for (index, id) in meetingIDs[start..<end].enumerated() {
                if index > 0 { query.appendLiteral(", ") }
                query.appendInterpolation("\(bind: id)" as SQLQueryString)
            }
            query.appendLiteral(")")
            for row in try await database.raw(query).all() {
                positions[try row.decode(column: "id", as: String.self)] = LogPosition(
                    epoch: try row.decode(column: "epoch", as: String.self),
                    latest: try row.decode(column: "last_offset", as: Int.self))
            }
            start = end
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

    // MARK: Presence

    public func putPresence(meetingID: String, node: String, viewers: [PresenceRecord], at date: Date) async throws {
        try await transactor.transaction { database in
            try await database.raw(
                "DELETE FROM presence WHERE meeting_id = \(bind: meetingID) AND node = \(bind: node)"
            ).run()
            if !viewers.isEmpty {
                var insert = SQLQueryString(
                    "INSERT INTO presence (meeting_id, node, user_id, username, seen_at) VALUES ")
                for (index, viewer) in viewers.enumerated() {
                    if index > 0 { insert.appendLiteral(", ") }
                    insert.appendInterpolation(
                        """
                        (\(bind: meetingID), \(bind: node), \(bind: viewer.userID), \(bind: viewer.username),
                         \(bind: Self.milliseconds(date)))
                        """ as SQLQueryString)
                }
                try await database.raw(insert).run()
            }
            try await notify("p|\(meetingID)", on: database)
        }
    }

    public func presence(meetingIDs: [String], excluding node: String, since: Date) async throws
        -> [String: [PresenceRecord]]
    {
        var viewers: [String: Set<PresenceRecord>] = [:]
        var start = meetingIDs.startIndex
        while start < meetingIDs.endIndex {
            let end = min(start + 500, meetingIDs.endIndex)
            var query = SQLQueryString("SELECT meeting_id, user_id, username FROM presence WHERE meeting_id IN (")
            for (index, id) in meetingIDs[start..<end].enumerated() {
                if index > 0 { query.appendLiteral(", ") }
                query.appendInterpolation("\(bind: id)" as SQLQueryString)
            }
            query.appendInterpolation(
                ") AND node <> \(bind: node) AND seen_at >= \(bind: Self.milliseconds(since))" as SQLQueryString)
            for row in try await database.raw(query).all() {
                viewers[try row.decode(column: "meeting_id", as: String.self), default: []].insert(
                    PresenceRecord(
                        userID: try row.decode(column: "user_id", as: String.self),
                        username: try row.decode(column: "username", as: String.self)))
            }
            start = end
        }
        return viewers.mapValues { Array($0) }
    }

    public func touchPresence(node: String, at date: Date) async throws {
        let now = Self.milliseconds(date)
        try await database.raw("UPDATE presence SET seen_at = \(bind: now) WHERE node = \(bind: node)").run()
        // Rows of nodes gone for an hour: nobody counts them any more.
        try await database.raw("DELETE FROM presence WHERE seen_at < \(bind: now - 3_600_000)").run()
    }

    public func isTransient(_ error: any Error) -> Bool { transient(error) }

    public func describe(_ error: any Error) -> String { describer(error) }

    // MARK: Jobs

    public func putJob(meetingID: String, epoch: String, owner: String?, leaseUntil: Date?, at date: Date)
        async throws
    {
        try await database.raw(
            """
            INSERT INTO jobs (meeting_id, epoch, owner, lease_until, attempts, created_at)
            VALUES (\(bind: meetingID), \(bind: epoch), \(bind: owner), \(bind: leaseUntil.map(Self.milliseconds)),
                    \(bind: owner == nil ? 0 : 1), \(bind: Self.milliseconds(date)))
            ON CONFLICT (meeting_id) DO UPDATE SET epoch = excluded.epoch, owner = excluded.owner,
                lease_until = excluded.lease_until, attempts = excluded.attempts, created_at = excluded.created_at
            """
        ).run()
        if owner == nil { try await notify("j", on: database) }
    }

    public func claimJob(owner: String, until: Date, now: Date) async throws -> JobRecord? {
        // One statement: the subquery picks the row and the UPDATE takes it. PostgreSQL locks
        // the row it picks and skips rows others hold; SQLite has one writer at a time.
        let skipLocked = isPostgres ? " FOR UPDATE SKIP LOCKED" : ""
        return try await database.raw(
            """
            UPDATE jobs SET owner = \(bind: owner), lease_until = \(bind: Self.milliseconds(until)),
                attempts = attempts + 1
            WHERE meeting_id = (
                SELECT meeting_id FROM jobs
                WHERE owner IS NULL OR lease_until < \(bind: Self.milliseconds(now))
                ORDER BY created_at, meeting_id LIMIT 1\(unsafeRaw: skipLocked))
            RETURNING meeting_id, epoch, owner, lease_until, attempts
            """
        ).first().map(Self.job)
    }

    public func renewJob(meetingID: String, owner: String, until: Date) async throws -> Bool {
        try await database.raw(
            """
            UPDATE jobs SET lease_until = \(bind: Self.milliseconds(until))
            WHERE meeting_id = \(bind: meetingID) AND owner = \(bind: owner) RETURNING meeting_id
            """
        ).first() != nil
    }

    public func finishJob(meetingID: String, owner: String, status: MeetingStatus?) async throws -> Bool {
        try await transactor.transaction { database in
            let held =
                try await database.raw(
                    """
                    DELETE FROM jobs WHERE meeting_id = \(bind: meetingID) AND owner = \(bind: owner)
                    RETURNING meeting_id
                    """
                ).first() != nil
            if held, let status {
                try await database.raw(
                    "UPDATE meetings SET status = \(bind: status.rawValue) WHERE id = \(bind: meetingID)"
                ).run()
            }
            return held
        }
    }

    public func releaseJob(meetingID: String, owner: String) async throws -> Bool {
        let released =
            try await database.raw(
                """
                UPDATE jobs SET lease_until = 0 WHERE meeting_id = \(bind: meetingID) AND owner = \(bind: owner)
                RETURNING meeting_id
                """
            ).first() != nil
        if released { try await notify("j", on: database) }
        return released
    }

    public func expireLeases() async throws {
        try await database.raw("UPDATE jobs SET lease_until = 0 WHERE owner IS NOT NULL").run()
    }

    public func job(meetingID: String) async throws -> JobRecord? {
        try await database.raw(
            "SELECT meeting_id, epoch, owner, lease_until, attempts FROM jobs WHERE meeting_id = \(bind: meetingID)"
        ).first().map(Self.job)
    }

    private static func job(_ row: any SQLRow) throws -> JobRecord {
        JobRecord(
            meetingID: try row.decode(column: "meeting_id", as: String.self),
            epoch: try row.decode(column: "epoch", as: String.self),
            owner: try row.decode(column: "owner", as: String?.self),
            leaseUntil: try row.decode(column: "lease_until", as: Int64?.self).map(date),
            attempts: try row.decode(column: "attempts", as: Int.self))
    }

    // MARK: Read model

    public func snapshot(meetingID: String) async throws -> StateSnapshot? {
        try await database.raw(
            """
            SELECT meeting_id, epoch, "offset", state FROM meeting_snapshots WHERE meeting_id = \(bind: meetingID)
            """
        ).first().map { row in
            StateSnapshot(
                meetingID: try row.decode(column: "meeting_id", as: String.self),
                epoch: try row.decode(column: "epoch", as: String.self),
                offset: try row.decode(column: "offset", as: Int.self),
                json: try row.decode(column: "state", as: String.self))
        }
    }

    public func putSnapshot(_ snapshot: StateSnapshot) async throws {
        // Only forward: an older snapshot (a slower reader) never replaces a newer one of the same
        // log; a meeting deleted meanwhile gets none.
        try await database.raw(
            """
            INSERT INTO meeting_snapshots (meeting_id, epoch, "offset", state)
            SELECT \(bind: snapshot.meetingID), \(bind: snapshot.epoch), \(bind: snapshot.offset), \(bind: snapshot.json)
            WHERE EXISTS (SELECT 1 FROM meetings WHERE id = \(bind: snapshot.meetingID) AND epoch = \(bind: snapshot.epoch))
            ON CONFLICT (meeting_id) DO UPDATE SET epoch = excluded.epoch, "offset" = excluded."offset", state = excluded.state
            WHERE meeting_snapshots.epoch <> excluded.epoch OR meeting_snapshots."offset" < excluded."offset"
            """
        ).run()
    }

    public func close() async throws { try await onClose() }

    // MARK: Time

    static func milliseconds(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1000).rounded()) }
    static func date(_ milliseconds: Int64) -> Date { Date(timeIntervalSince1970: Double(milliseconds) / 1000) }
}
