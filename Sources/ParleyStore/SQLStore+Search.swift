public import Foundation
import SQLKit

/// The search index (`SearchStore`): `search_docs` rows, one per document, indexed by an FTS5
/// table that follows them (SQLite) or by a generated tsvector column with a GIN index
/// (PostgreSQL); `search_positions` says which offset of which log each meeting's rows reflect.
extension SQLStore: SearchStore {
    public func replaceSearchDocuments(
        meetingID: String, epoch: String, offset: Int, readers: [String], documents: [SearchDocument],
        actionItems: [IndexedActionItem]
    ) async throws -> Bool {
        let readers = readers.map(Self.readerToken).joined(separator: " ")
        let isPostgres = isPostgres
        return
            try await transactor.transaction { database in
                // Only forward, and only for the meeting's current log: a slower indexer never
                // replaces what a faster one wrote (the row lock orders them on PostgreSQL).
                let claimed = try await database.raw(
                    """
                    INSERT INTO search_positions (meeting_id, epoch, "offset")
                    SELECT \(bind: meetingID), \(bind: epoch), \(bind: offset)
                    WHERE EXISTS (SELECT 1 FROM meetings WHERE id = \(bind: meetingID) AND epoch = \(bind: epoch))
                    ON CONFLICT (meeting_id) DO UPDATE SET epoch = excluded.epoch, "offset" = excluded."offset"
                    WHERE search_positions.epoch <> excluded.epoch OR search_positions."offset" < excluded."offset"
                    RETURNING meeting_id
                    """
                ).first()
                guard claimed != nil else { return false }
                try await database.raw("DELETE FROM search_docs WHERE meeting_id = \(bind: meetingID)").run()
                try await Self.inChunks(documents) { chunk in
                    let rows: [[any Encodable & Sendable]] = chunk.map {
                        [meetingID, $0.kind.rawValue, $0.item, $0.speaker, $0.start, $0.text, readers]
                    }
                    try await database.raw(
                        """
                        INSERT INTO search_docs (meeting_id, kind, item, speaker, start, body, readers)
                        VALUES \(Self.valueRows(rows, cast: isPostgres ? [2: "integer", 4: "double precision"] : [:]))
                        """
                    ).run()
                }
                try await database.raw("DELETE FROM meeting_action_items WHERE meeting_id = \(bind: meetingID)").run()
                try await Self.inChunks(actionItems) { chunk in
                    let rows: [[any Encodable & Sendable]] = chunk.map {
                        [
                            meetingID, $0.item, $0.owner, $0.owner.map(IndexedActionItem.nameKey), $0.assignee, $0.task,
                            $0.due, $0.dueDate, $0.done ? 1 : 0, $0.time,
                        ]
                    }
                    try await database.raw(
                        """
                        INSERT INTO meeting_action_items
                            (meeting_id, item, owner, owner_key, assignee, task, due, due_date, done, time)
                        VALUES \(Self.valueRows(rows, cast: isPostgres ? [1: "integer", 8: "integer", 9: "double precision"] : [:]))
                        """
                    ).run()
                }
                return true
            }
    }

    public func actionItems(_ query: ActionItemQuery) async throws -> [ActionItemHit] {
        var sql: SQLQueryString = """
            SELECT a.meeting_id, m.title, m.created_at, a.item, a.owner, a.assignee, a.task, a.due, a.due_date, a.done,
                a.time
            FROM meeting_action_items a JOIN meetings m ON m.id = a.meeting_id
            WHERE (m.owner_id = \(bind: query.userID)
                OR m.id IN (SELECT meeting_id FROM meeting_members WHERE user_id = \(bind: query.userID)))
            """
        if let mine = query.mine {
            sql += " AND (a.assignee = \(bind: mine.username)"
            if !mine.names.isEmpty { sql += " OR (a.assignee IS NULL AND a.owner_key IN (\(binds: mine.names)))" }
            sql += ")"
        }
        if let open = query.open { sql += " AND a.done = \(bind: open ? 0 : 1)" }
        sql += """
             ORDER BY CASE WHEN a.due_date IS NULL THEN 1 ELSE 0 END, a.due_date, m.created_at DESC, a.meeting_id, a.item
            LIMIT \(bind: query.limit)
            """
        return try await database.raw(sql).all().map { row in
            ActionItemHit(
                meetingID: try row.decode(column: "meeting_id", as: String.self),
                title: try row.decode(column: "title", as: String.self),
                createdAt: Self.date(try row.decode(column: "created_at", as: Int64.self)),
                item: IndexedActionItem(
                    item: try row.decode(column: "item", as: Int.self),
                    owner: try row.decode(column: "owner", as: String?.self),
                    assignee: try row.decode(column: "assignee", as: String?.self),
                    task: try row.decode(column: "task", as: String.self),
                    due: try row.decode(column: "due", as: String?.self),
                    dueDate: try row.decode(column: "due_date", as: String?.self),
                    done: try row.decode(column: "done", as: Int.self) != 0,
                    time: try row.decode(column: "time", as: Double.self)))
        }
    }

    /// The index's word for an account that may see a meeting: letters and digits only, so
    /// both tokenizers keep it whole.
    static func readerToken(_ userID: String) -> String {
        "reader" + userID.lowercased().filter { $0.isASCII && ($0.isLetter || $0.isNumber) }
    }

    public func forgetSearchPosition(meetingID: String) async throws {
        try await database.raw("DELETE FROM search_positions WHERE meeting_id = \(bind: meetingID)").run()
    }

    public func meetingsBehindSearch(limit: Int) async throws -> [String] {
        try await database.raw(
            """
            SELECT m.id FROM meetings m LEFT JOIN search_positions p ON p.meeting_id = m.id
            WHERE m.last_offset > 0 AND (p.meeting_id IS NULL OR p.epoch <> m.epoch OR p."offset" < m.last_offset)
            ORDER BY m.created_at LIMIT \(bind: limit)
            """
        ).all().map { try $0.decode(column: "id", as: String.self) }
    }

    public func search(_ query: SearchQuery) async throws -> [SearchHit] {
        guard !query.words.isEmpty, query.limit > 0 else { return [] }
        let mark = (String(SearchHit.markStart), String(SearchHit.markEnd))
        var sql: SQLQueryString
        let reader = Self.readerToken(query.userID)
        if isPostgres {
            let words = query.words.joined(separator: " ")
            // The reader's token narrows the match in the index; only the body's words rank.
            sql = """
                SELECT d.meeting_id, m.title, m.created_at, d.kind, d.item, d.speaker, d.start,
                    ts_headline('english', d.body, q.query,
                        \(bind: "StartSel=\(mark.0), StopSel=\(mark.1), MaxWords=24, MinWords=12, MaxFragments=1, FragmentDelimiter=…"))
                        AS snippet,
                    ts_rank('{0, 0, 0, 1}', d.document, q.query)::double precision AS score
                FROM search_docs d JOIN meetings m ON m.id = d.meeting_id,
                    plainto_tsquery('english', \(bind: words)) AS q(query)
                WHERE d.document @@ (q.query && to_tsquery('simple', \(bind: reader)))
                """
        } else {
            // Each word quoted: whatever the text, FTS5 reads words, never its query syntax.
            // The reader's token narrows the match in the index; only the body ranks.
            let match =
                query.words.map { "body:\"\($0.replacingOccurrences(of: "\"", with: ""))\"" }.joined(separator: " AND ")
                + " AND readers:\"\(reader)\""
            sql = """
                SELECT d.meeting_id, m.title, m.created_at, d.kind, d.item, d.speaker, d.start,
                    snippet(search_fts, 0, \(bind: mark.0), \(bind: mark.1), '…', 24) AS snippet,
                    -bm25(search_fts, 1.0, 0.0) AS score
                FROM search_fts JOIN search_docs d ON d.id = search_fts.rowid JOIN meetings m ON m.id = d.meeting_id
                WHERE search_fts MATCH \(bind: match)
                """
        }
        sql += """
             AND (m.owner_id = \(bind: query.userID)
                OR m.id IN (SELECT meeting_id FROM meeting_members WHERE user_id = \(bind: query.userID)))
            """
        if let speaker = query.speaker { sql += " AND lower(d.speaker) = \(bind: speaker.lowercased())" }
        if let from = query.from { sql += " AND m.created_at >= \(bind: Self.milliseconds(from))" }
        if let to = query.to { sql += " AND m.created_at < \(bind: Self.milliseconds(to))" }
        if let meetingID = query.meetingID { sql += " AND d.meeting_id = \(bind: meetingID)" }
        sql += """
             ORDER BY score DESC, m.created_at DESC, d.meeting_id, d.kind, d.item
            LIMIT \(bind: query.limit) OFFSET \(bind: query.offset)
            """
        return try await database.raw(sql).all().map { row in
            SearchHit(
                meetingID: try row.decode(column: "meeting_id", as: String.self),
                title: try row.decode(column: "title", as: String.self),
                createdAt: Self.date(try row.decode(column: "created_at", as: Int64.self)),
                kind: SearchDocument.Kind(rawValue: try row.decode(column: "kind", as: String.self)) ?? .segment,
                item: try row.decode(column: "item", as: Int.self),
                speaker: try row.decode(column: "speaker", as: String?.self),
                start: try row.decode(column: "start", as: Double?.self),
                snippet: try row.decode(column: "snippet", as: String.self),
                score: try row.decode(column: "score", as: Double.self))
        }
    }

    /// The bytes the search index takes on disk: its tables and indexes (PostgreSQL: with
    /// TOAST; SQLite: the pages dbstat counts).
    public func searchIndexBytes() async throws -> Int {
        let sql: SQLQueryString =
            isPostgres
            ? """
            SELECT (pg_total_relation_size('search_docs') + pg_total_relation_size('search_positions'))::bigint AS bytes
            """
            : """
            SELECT COALESCE(SUM(pgsize), 0) AS bytes FROM dbstat
            WHERE name LIKE 'search%' OR name LIKE 'sqlite_autoindex_search%'
            """
        return try await database.raw(sql).first()?.decode(column: "bytes", as: Int.self) ?? 0
    }
}
