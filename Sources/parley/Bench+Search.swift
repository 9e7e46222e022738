import ArgumentParser
import Foundation
import Logging
import ParleyStore
import ParleySynth
import SQLKit

extension Bench {
    /// The search index at scale: many meetings of generated transcript (Zipf-distributed words
    /// over a vocabulary like a team's, lines of 6 to 20 words, names, summaries and action
    /// items), indexed as the server indexes them; then query times for searches of one to
    /// three words, the index's size, and what indexing adds to publishing events.
    struct Search: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Index generated meetings, time searches and re-indexing; print JSON.")

        @Option(help: "Meetings to index.") var meetings = 10_000
        @Option(help: "Minutes of transcript per meeting (about 150 words a minute).") var minutes = 60
        @Option(help: "Searches to time.") var queries = 500
        @Option(help: "A PostgreSQL URL (a fresh database); without it, SQLite in --folder.") var database: String?
        @Option(help: "Where the SQLite database goes (emptied first).") var folder = "bench-output/search"
        @Option(help: "Random seed.") var seed: UInt64 = 7
        @Option(help: "Searches timed as a substring scan without the index (the peer).") var scanQueries = 20

        func run() async throws {
            var logger = Logger(label: "bench-search")
            logger.logLevel = .warning
            let path = folder + "/parley.sqlite"
            if database == nil { try? FileManager.default.removeItem(atPath: folder) }
            let store =
                if let database { try await SQLStore.postgres(url: database, logger: logger) } else {
                    try await SQLStore.sqlite(path: path, logger: logger)
                }
            try await store.migrate()
            var random = SplitMix64(seed: seed)
            let words = Vocabulary(random: &random)
            let owners = (0..<20).map { "u_\($0)" }
            for owner in owners {
                try await store.createUser(UserRecord(id: owner, username: owner, passwordHash: "h", createdAt: Date()))
            }
            // Indexing: each meeting as the indexer writes it (one transaction, all its documents).
            var rows = 0
            var textBytes = 0
            let indexing = ContinuousClock.now
            var lastReport = ContinuousClock.now
            let base = Date(timeIntervalSince1970: 1_767_225_600)  // 2026-01-01
            for n in 0..<meetings {
                let id = "m_\(n)"
                try await store.createMeeting(
                    MeetingRecord(
                        id: id, title: "Meeting \(n): \(words.title(&random))", ownerID: owners[n % owners.count],
                        createdAt: base.addingTimeInterval(Double(n) * 3600), epoch: "e_\(n)"))
                let documents = words.meeting(minutes: minutes, random: &random)
                rows += documents.count
                textBytes += documents.reduce(0) { $0 + $1.text.utf8.count }
                _ = try await store.replaceSearchDocuments(
                    meetingID: id, epoch: "e_\(n)", offset: 1, readers: [owners[n % owners.count]],
                    documents: documents,
                    actionItems: [])
                if ContinuousClock.now - lastReport > .seconds(30) {
                    lastReport = .now
                    FileHandle.standardError.write(Data("indexed \(n + 1) of \(meetings) meetings\n".utf8))
                }
            }
            let indexSeconds = Bench.seconds(ContinuousClock.now - indexing)
            let indexBytes = try await store.searchIndexBytes()

            // Searches: one to three words people would look for, by one of the owners (who
            // sees a twentieth of the meetings), some narrowed to a speaker or a month.
            var times: [Double] = []
            var hits: [Int] = []
            for q in 0..<queries {
                let count = 1 + q % 3
                var query = SearchQuery(
                    words: (0..<count).map { _ in words.searched(&random) }, userID: owners[q % owners.count])
                if q % 10 == 7 { query.speaker = words.names[Int(random.next() % UInt64(words.names.count))] }
                if q % 10 == 9 {
                    query.from = base.addingTimeInterval(Double(random.next() % UInt64(max(1, meetings))) * 3600)
                    query.to = query.from!.addingTimeInterval(30 * 86_400)
                }
                let start = ContinuousClock.now
                let found = try await store.search(query)
                times.append(Bench.seconds(ContinuousClock.now - start) * 1000)
                hits.append(found.count)
            }
            times.sort()

            // The peer: the same searches without a full-text index (a case-insensitive substring
            // scan of the same rows for every word, the same visibility), on the first few.
            var scans: [Double] = []
            var random2 = SplitMix64(seed: seed &+ 1)
            for q in 0..<min(scanQueries, queries) {
                let count = 1 + q % 3
                let terms = (0..<count).map { _ in words.searched(&random2) }
                var sql: SQLQueryString = """
                    SELECT d.meeting_id FROM search_docs d JOIN meetings m ON m.id = d.meeting_id
                    WHERE (m.owner_id = \(bind: owners[q % owners.count])
                        OR m.id IN (SELECT meeting_id FROM meeting_members WHERE user_id = \(bind: owners[q % owners.count])))
                    """
                for term in terms { sql += " AND lower(d.body) LIKE \(bind: "%" + term + "%")" }
                sql += " LIMIT 20"
                let start = ContinuousClock.now
                _ = try await store.database.raw(sql).all()
                scans.append(Bench.seconds(ContinuousClock.now - start) * 1000)
            }
            scans.sort()

            // What indexing adds to publishing: appending one event, and re-indexing one
            // meeting of this length (the indexer does it once per burst of events).
            var appends: [Double] = []
            var reindexes: [Double] = []
            for round in 0..<20 {
                let n = Int(random.next() % UInt64(max(1, meetings)))
                let condition = AppendCondition(epoch: "e_\(n)", latest: nil, lease: nil)
                let start = ContinuousClock.now
                _ = try await store.appendEvents(meetingID: "m_\(n)", count: 1, condition: condition, hint: nil) {
                    [StoredEvent(meetingID: "m_\(n)", offset: $0, type: "transcript", json: "{}")]
                }
                appends.append(Bench.seconds(ContinuousClock.now - start) * 1000)
                let documents = words.meeting(minutes: minutes, random: &random)
                let again = ContinuousClock.now
                _ = try await store.replaceSearchDocuments(
                    meetingID: "m_\(n)", epoch: "e_\(n)", offset: 2 + round, readers: [owners[n % owners.count]],
                    documents: documents, actionItems: [])
                reindexes.append(Bench.seconds(ContinuousClock.now - again) * 1000)
            }
            appends.sort()
            reindexes.sort()
            try await store.close()
            let report: [String: Any] = [
                "database": database == nil ? "sqlite" : "postgresql", "meetings": meetings, "minutes": minutes,
                "documents": rows, "text_bytes": textBytes, "index_bytes": indexBytes,
                "index_seconds": indexSeconds, "queries": queries,
                "query_ms_p50": Self.percentile(times, 0.5), "query_ms_p95": Self.percentile(times, 0.95),
                "query_ms_max": times.last ?? 0, "hits_mean": Double(hits.reduce(0, +)) / Double(max(1, hits.count)),
                "append_ms_p50": Self.percentile(appends, 0.5), "scan_queries": scans.count,
                "scan_ms_p50": Self.percentile(scans, 0.5), "scan_ms_p95": Self.percentile(scans, 0.95),
                "reindex_meeting_ms_p50": Self.percentile(reindexes, 0.5),
                "reindex_meeting_ms_p95": Self.percentile(reindexes, 0.95),
            ]
            let json = try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys])
            print(String(decoding: json, as: UTF8.self))
        }

        static func percentile(_ sorted: [Double], _ p: Double) -> Double {
            sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int((Double(sorted.count) * p).rounded(.down)))]
        }
    }
}

/// Words as a team uses them: common English words, and a long tail of made-up terms (projects,
/// systems, customers) drawn by a Zipf law, so a few are everywhere and most are rare.
struct Vocabulary {
    static let common = """
        the a to and of we i you it that is in this for on be will have do what so can we're it's not just \
        with but they are was about if at think need all get there one our going like yes right know as \
        then from now would should by more time next week make let's up out also some how when which \
        still before after team done review plan ship check work call today tomorrow monday friday
        """.split(separator: " ").map(String.init)
    static let syllables = [
        "ba", "ko", "ri", "ten", "mar", "lo", "vi", "sa", "nor", "pel", "da", "qui", "zen", "tor", "mi", "fa",
        "gru", "hel", "ja", "wen", "cas", "dor", "ne", "plu", "ro", "sti", "ven", "ul", "yo", "ax",
    ]
    let terms: [String]
    let names: [String]
    /// Cumulative Zipf weights over `terms`.
    let cumulative: [Double]

    init(random: inout SplitMix64) {
        var seen = Set<String>()
        var terms: [String] = []
        while terms.count < 20_000 {
            let parts = 2 + Int(random.next() % 2)
            let word = (0..<parts).map { _ in Self.syllables[Int(random.next() % UInt64(Self.syllables.count))] }
                .joined()
            if seen.insert(word).inserted { terms.append(word) }
        }
        self.terms = terms
        names = terms.prefix(40).map { $0.prefix(1).uppercased() + $0.dropFirst() }
        var total = 0.0
        cumulative = (1...terms.count).map { rank in
            total += 1 / Double(rank)
            return total
        }
    }

    func term(_ random: inout SplitMix64) -> String {
        let x = random.nextUnit() * cumulative[cumulative.count - 1]
        var low = 0
        var high = cumulative.count - 1
        while low < high {
            let mid = (low + high) / 2
            if cumulative[mid] < x { low = mid + 1 } else { high = mid }
        }
        return terms[low]
    }

    /// A word someone searches for: a term (not among the most common few), as they remember it.
    func searched(_ random: inout SplitMix64) -> String {
        var word = term(&random)
        while terms.prefix(20).contains(word) { word = term(&random) }
        return word
    }

    func line(_ random: inout SplitMix64) -> String {
        let count = 6 + Int(random.next() % 15)
        return (0..<count).map { _ in
            random.next() % 10 < 6 ? Self.common[Int(random.next() % UInt64(Self.common.count))] : term(&random)
        }.joined(separator: " ") + "."
    }

    func title(_ random: inout SplitMix64) -> String { "\(term(&random)) \(term(&random))" }

    /// One meeting's documents: its lines (four speakers of the names), five summary points,
    /// two decisions and four action items.
    func meeting(minutes: Int, random: inout SplitMix64) -> [SearchDocument] {
        let speakers = (0..<4).map { _ in names[Int(random.next() % UInt64(names.count))] }
        var documents: [SearchDocument] = []
        var time = 0.0
        var id = 0
        while time < Double(minutes) * 60 {
            let text = line(&random)
            let words = text.split(separator: " ").count
            id += 1
            documents.append(
                SearchDocument(
                    kind: .segment, item: id, speaker: speakers[Int(random.next() % 4)], start: time, text: text))
            time += Double(words) / 2.5  // 150 words a minute
        }
        for i in 0..<5 {
            documents.append(.init(kind: .summary, item: i, speaker: nil, start: nil, text: line(&random)))
        }
        for i in 0..<2 {
            documents.append(.init(kind: .decision, item: i, speaker: nil, start: time / 2, text: line(&random)))
        }
        for i in 0..<4 {
            documents.append(
                .init(kind: .actionItem, item: i + 1, speaker: speakers[i], start: time / 3, text: line(&random)))
        }
        return documents
    }
}
