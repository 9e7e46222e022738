public import Foundation
public import SQLKit

/// `Store` over any SQLKit database (each role's conformance in its own file,
/// `SQLStore+Role.swift`). Written in the SQL that SQLite (3.35+) and PostgreSQL
/// share, with bound parameters only, so the PostgreSQL driver can reuse it as it is.
public struct SQLStore: Sendable {
    public let database: any SQLDatabase
    /// Runs the writes that must be atomic (appends, resets, finishing a job).
    let transactor: any SQLTransactor
    /// Follows the other processes' changes (PostgreSQL's LISTEN) in the caller's task; nil for
    /// a single-process database.
    let follower: (@Sendable (@escaping @Sendable (StoreChange) async -> Void) async -> Void)?
    let transient: @Sendable (any Error) -> Bool
    let describer: @Sendable (any Error) -> String
    let onClose: @Sendable () async throws -> Void
    /// PostgreSQL: skip rows other transactions hold when claiming, and announce changes.
    let isPostgres: Bool

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
            let all = statements + ((isPostgres ? Self.postgresOnly : Self.sqliteOnly)[version] ?? [])
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
        // What a meeting's creator asked of its diarization (a backend, speaker count hints), as JSON.
        (7, ["ALTER TABLE meetings ADD COLUMN diarization TEXT"]),
        // Voice profiles: each meeting's speakers' voices, the owners' profiles (a name each),
        // their prints (one per embedding kind) and what each print was learnt from.
        (
            8,
            [
                """
                CREATE TABLE IF NOT EXISTS meeting_voices (
                    meeting_id TEXT NOT NULL REFERENCES meetings(id) ON DELETE CASCADE, speaker TEXT NOT NULL,
                    kind TEXT NOT NULL, vector TEXT NOT NULL, speech DOUBLE PRECISION NOT NULL,
                    rejected TEXT NOT NULL DEFAULT '[]', PRIMARY KEY (meeting_id, speaker))
                """,
                """
                CREATE TABLE IF NOT EXISTS voice_profiles (
                    id TEXT PRIMARY KEY, owner_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                    name TEXT NOT NULL, name_key TEXT NOT NULL, created_at BIGINT NOT NULL,
                    updated_at BIGINT NOT NULL, UNIQUE (owner_id, name_key))
                """,
                """
                CREATE TABLE IF NOT EXISTS voice_prints (
                    profile_id TEXT NOT NULL REFERENCES voice_profiles(id) ON DELETE CASCADE, kind TEXT NOT NULL,
                    vector TEXT NOT NULL, samples INTEGER NOT NULL, PRIMARY KEY (profile_id, kind))
                """,
                """
                CREATE TABLE IF NOT EXISTS voice_sources (
                    profile_id TEXT NOT NULL REFERENCES voice_profiles(id) ON DELETE CASCADE, kind TEXT NOT NULL,
                    source TEXT NOT NULL, meeting_id TEXT, PRIMARY KEY (profile_id, kind, source))
                """,
                "CREATE INDEX IF NOT EXISTS voice_sources_meeting ON voice_sources(meeting_id)",
                "CREATE INDEX IF NOT EXISTS voice_prints_kind ON voice_prints(kind)",
            ]
        ),
        // The search index: which offset of which log each meeting's documents reflect; the
        // documents and their full-text index differ by database (`sqliteOnly`, `postgresOnly`).
        (
            9,
            [
                """
                CREATE TABLE IF NOT EXISTS search_positions (
                    meeting_id TEXT PRIMARY KEY REFERENCES meetings(id) ON DELETE CASCADE,
                    epoch TEXT NOT NULL, "offset" BIGINT NOT NULL)
                """
            ]
        ),
        // Every meeting's action items beside its search documents (written by the same
        // indexer), for one person's list across meetings; every meeting is indexed again.
        (
            10,
            [
                """
                CREATE TABLE IF NOT EXISTS meeting_action_items (
                    meeting_id TEXT NOT NULL REFERENCES meetings(id) ON DELETE CASCADE, item INTEGER NOT NULL,
                    owner TEXT, owner_key TEXT, assignee TEXT, task TEXT NOT NULL, due TEXT, due_date TEXT,
                    done INTEGER NOT NULL, time DOUBLE PRECISION NOT NULL, PRIMARY KEY (meeting_id, item))
                """,
                "CREATE INDEX IF NOT EXISTS meeting_action_items_owner ON meeting_action_items(owner_key)",
                "CREATE INDEX IF NOT EXISTS meeting_action_items_assignee ON meeting_action_items(assignee)",
                "DELETE FROM search_positions",
            ]
        ),
        // Webhooks (each user's) and their deliveries, queued here so a restart loses none.
        (
            11,
            [
                """
                CREATE TABLE IF NOT EXISTS webhooks (
                    id TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                    url TEXT NOT NULL, secret TEXT NOT NULL, events TEXT NOT NULL, created_at BIGINT NOT NULL)
                """,
                "CREATE INDEX IF NOT EXISTS webhooks_user ON webhooks(user_id)",
                """
                CREATE TABLE IF NOT EXISTS webhook_deliveries (
                    id TEXT PRIMARY KEY, webhook_id TEXT NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
                    source TEXT NOT NULL, event TEXT NOT NULL, body TEXT NOT NULL, created_at BIGINT NOT NULL,
                    next_at BIGINT NOT NULL, attempts INTEGER NOT NULL, state TEXT NOT NULL, status_code INTEGER,
                    error TEXT, finished_at BIGINT, owner TEXT, lease_until BIGINT, UNIQUE (webhook_id, source))
                """,
                "CREATE INDEX IF NOT EXISTS webhook_deliveries_due ON webhook_deliveries(state, next_at)",
            ]
        ),
        // Each user's feed of notifications (`/ws/user`): its epoch and latest offset, and the
        // latest notifications, numbered per user.
        (
            12,
            [
                """
                CREATE TABLE IF NOT EXISTS user_feeds (
                    user_id TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE, epoch TEXT NOT NULL,
                    latest BIGINT NOT NULL)
                """,
                """
                CREATE TABLE IF NOT EXISTS user_notifications (
                    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE, "offset" BIGINT NOT NULL,
                    json TEXT NOT NULL, created_at BIGINT NOT NULL, PRIMARY KEY (user_id, "offset"))
                """,
            ]
        ),
    ]

    /// Statements of a migration that only PostgreSQL runs.
    static let postgresOnly: [Int: [String]] = [
        9: [
            """
            CREATE TABLE IF NOT EXISTS search_docs (
                id BIGSERIAL PRIMARY KEY, meeting_id TEXT NOT NULL REFERENCES meetings(id) ON DELETE CASCADE,
                kind TEXT NOT NULL, item INTEGER NOT NULL, speaker TEXT, start DOUBLE PRECISION, body TEXT NOT NULL,
                readers TEXT NOT NULL,
                document tsvector GENERATED ALWAYS AS (
                    setweight(to_tsvector('english', body), 'A') || setweight(to_tsvector('simple', readers), 'D')) STORED)
            """,
            "CREATE INDEX IF NOT EXISTS search_docs_meeting ON search_docs(meeting_id)",
            "CREATE INDEX IF NOT EXISTS search_docs_document ON search_docs USING GIN (document)",
        ]
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
        ],
        // FTS5 over the documents' text (external content: the rows stay in search_docs),
        // English stemming, accents folded; kept in step by triggers. `readers` holds a token
        // per account that may see the meeting, so a search reads only the asker's documents
        // out of the index instead of ranking everyone's and dropping most.
        9: [
            """
            CREATE TABLE IF NOT EXISTS search_docs (
                id INTEGER PRIMARY KEY, meeting_id TEXT NOT NULL REFERENCES meetings(id) ON DELETE CASCADE,
                kind TEXT NOT NULL, item INTEGER NOT NULL, speaker TEXT, start DOUBLE PRECISION, body TEXT NOT NULL,
                readers TEXT NOT NULL)
            """,
            "CREATE INDEX IF NOT EXISTS search_docs_meeting ON search_docs(meeting_id)",
            """
            CREATE VIRTUAL TABLE IF NOT EXISTS search_fts USING fts5(
                body, readers, content='search_docs', content_rowid='id',
                tokenize='porter unicode61 remove_diacritics 2')
            """,
            """
            CREATE TRIGGER IF NOT EXISTS search_docs_added AFTER INSERT ON search_docs BEGIN
                INSERT INTO search_fts (rowid, body, readers) VALUES (new.id, new.body, new.readers);
            END
            """,
            """
            CREATE TRIGGER IF NOT EXISTS search_docs_removed AFTER DELETE ON search_docs BEGIN
                INSERT INTO search_fts (search_fts, rowid, body, readers) VALUES ('delete', old.id, old.body, old.readers);
            END
            """,
        ],
    ]

    public func isTransient(_ error: any Error) -> Bool { transient(error) }

    public func describe(_ error: any Error) -> String { describer(error) }

    public func close() async throws { try await onClose() }

    // MARK: Building statements

    /// `(a, b), (c, d)`: rows of bound values for a VALUES list; `cast` follows each value of
    /// the columns it names (PostgreSQL cannot tell a bound number's type inside VALUES).
    static func valueRows(_ rows: [[any Encodable & Sendable]], cast: [Int: String] = [:]) -> any SQLExpression {
        SQLList(
            rows.map { row in
                SQLGroupExpression(
                    row.enumerated().map { column, value -> any SQLExpression in
                        guard let type = cast[column] else { return SQLBind(value) }
                        return SQLList([SQLBind(value), SQLRaw("::" + type)], separator: SQLRaw(""))
                    })
            })
    }

    /// Runs `body` on slices of at most 500 values: under every driver's limit on the number
    /// of bound parameters of one statement.
    static func inChunks<Value>(_ values: [Value], _ body: (ArraySlice<Value>) async throws -> Void) async rethrows {
        var start = values.startIndex
        while start < values.endIndex {
            let end = min(start + 500, values.endIndex)
            try await body(values[start..<end])
            start = end
        }
    }

    // MARK: Time

    static func milliseconds(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1000).rounded()) }
    static func date(_ milliseconds: Int64) -> Date { Date(timeIntervalSince1970: Double(milliseconds) / 1000) }
}

extension SQLStore: Store {}
