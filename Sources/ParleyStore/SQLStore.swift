public import Foundation
public import SQLKit

/// `Store` over any SQLKit database. Written in the SQL that SQLite (3.35+) and PostgreSQL
/// share, with bound parameters only, so the PostgreSQL driver can reuse it as it is.
public struct SQLStore: Store {
    public let database: any SQLDatabase
    private let onClose: @Sendable () async throws -> Void

    public init(database: any SQLDatabase, onClose: @escaping @Sendable () async throws -> Void = {}) {
        self.database = database
        self.onClose = onClose
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
            for statement in statements {
                try await database.raw(SQLQueryString(statement)).run()
            }
            try await database.raw(
                """
                INSERT INTO schema_versions (version, applied_at)
                VALUES (\(bind: version), \(bind: Self.milliseconds(Date())))
                """
            ).run()
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

    public func recordUpload(meetingID: String, bytes: Int64) async throws {
        try await database.raw("UPDATE meetings SET audio_bytes = \(bind: bytes) WHERE id = \(bind: meetingID)").run()
    }

    public func deleteMeeting(id: String) async throws {
        // Explicit deletes, so the result does not depend on foreign keys being enforced.
        try await database.raw("DELETE FROM events WHERE meeting_id = \(bind: id)").run()
        try await database.raw("DELETE FROM meeting_members WHERE meeting_id = \(bind: id)").run()
        try await database.raw("DELETE FROM meetings WHERE id = \(bind: id)").run()
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

    public func appendEvents(_ events: [StoredEvent]) async throws {
        // One multi-row INSERT per chunk: each is atomic on its own, and chunks stay under
        // every driver's limit on bound parameters.
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
        let row = try await database.raw(
            "SELECT MAX(\"offset\") AS latest FROM events WHERE meeting_id = \(bind: meetingID)"
        ).first()
        return try row?.decode(column: "latest", as: Int?.self) ?? 0
    }

    public func deleteEvents(meetingID: String) async throws {
        try await database.raw("DELETE FROM events WHERE meeting_id = \(bind: meetingID)").run()
    }

    public func close() async throws { try await onClose() }

    // MARK: Time

    static func milliseconds(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1000).rounded()) }
    static func date(_ milliseconds: Int64) -> Date { Date(timeIntervalSince1970: Double(milliseconds) / 1000) }
}
