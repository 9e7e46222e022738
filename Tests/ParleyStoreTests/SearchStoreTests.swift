import Foundation
import Testing

@testable import ParleyStore

/// The search index on both databases: ranked, stemmed, marked snippets, only meetings the
/// user may see, filters and pages, forward-only rewrites, and deleted meetings gone.
@Suite struct SearchStoreTests {
    typealias Backend = SQLStoreTests.Backend

    static let day: TimeInterval = 86_400
    static let start = Date(timeIntervalSince1970: 1_796_000_000)  // 2026-11-30

    /// alice owns m_1 (a day old) and m_2 (today); bob owns m_3 and is a member of m_2.
    static func meetings(_ store: SQLStore) async throws {
        for (id, name) in [("u_1", "alice"), ("u_2", "bob"), ("u_3", "carol")] {
            try await store.createUser(UserRecord(id: id, username: name, passwordHash: "h", createdAt: start))
        }
        for (id, owner, created) in [("m_1", "u_1", start), ("m_2", "u_1", start + day), ("m_3", "u_2", start + day)] {
            try await store.createMeeting(
                MeetingRecord(id: id, title: "Meeting \(id)", ownerID: owner, createdAt: created, epoch: "e_\(id)"))
        }
        try await store.addMember(meetingID: "m_2", userID: "u_2", canEdit: false)
    }

    static func segment(_ id: Int, _ speaker: String, _ text: String) -> SearchDocument {
        SearchDocument(kind: .segment, item: id, speaker: speaker, start: Double(id) * 10, text: text)
    }

    @Test(arguments: Backend.allCases) func hitsAreRankedMarkedAndOnlyFromMeetingsTheUserMaySee(on backend: Backend)
        async throws
    {
        let store = try await SQLStoreTests.store(backend)
        try await Self.meetings(store)
        #expect(
            try await store.replaceSearchDocuments(
                meetingID: "m_1", epoch: "e_m_1", offset: 5,
                readers: ["u_1"],
                documents: [
                    Self.segment(1, "Ana", "We decided to ship the billing migration on Friday."),
                    Self.segment(2, "Ben", "The weather was nice this weekend."),
                    SearchDocument(kind: .actionItem, item: 1, speaker: "Ben", start: 12, text: "Ship the migration"),
                ], actionItems: []))
        #expect(
            try await store.replaceSearchDocuments(
                meetingID: "m_2", epoch: "e_m_2", offset: 3,
                readers: ["u_1", "u_2"],
                documents: [
                    Self.segment(1, "Ana", "Migration, migration, migration: the billing migration is late."),
                    SearchDocument(
                        kind: .summary, item: 0, speaker: nil, start: nil, text: "The billing migration slipped."),
                ], actionItems: []))
        #expect(
            try await store.replaceSearchDocuments(
                meetingID: "m_3", epoch: "e_m_3", offset: 1,
                readers: ["u_2"], documents: [Self.segment(1, "Cy", "Bob's own migration notes.")], actionItems: []))

        // Stemmed ("migrations" finds "migration"), every word required, best first.
        let hits = try await store.search(SearchQuery(words: ["migrations", "billing"], userID: "u_1"))
        #expect(hits.map(\.meetingID) == ["m_2", "m_2", "m_1"], "\(hits)")
        #expect(hits.first?.kind == .segment && hits.first?.speaker == "Ana" && hits.first?.start == 10)
        #expect(hits.first?.title == "Meeting m_2" && hits.first?.createdAt == Self.start + Self.day)
        #expect(zip(hits, hits.dropFirst()).allSatisfy { $0.score >= $1.score })
        let marked = hits.last?.snippet ?? ""
        #expect(marked.contains("\(SearchHit.markStart)billing\(SearchHit.markEnd)"), "\(marked)")
        #expect(marked.contains("\(SearchHit.markStart)migration\(SearchHit.markEnd)"), "\(marked)")
        // Bob sees his own meeting and the one he is a member of; Carol sees nothing.
        let bob = try await store.search(SearchQuery(words: ["migration"], userID: "u_2"))
        #expect(Set(bob.map(\.meetingID)) == ["m_2", "m_3"])
        #expect(try await store.search(SearchQuery(words: ["migration"], userID: "u_3")).isEmpty)

        // Filters: speaker (any case), dates, one meeting; pages.
        let ben = try await store.search(SearchQuery(words: ["ship"], userID: "u_1", speaker: "ben"))
        #expect(ben.map(\.kind) == [.actionItem])
        let older = try await store.search(
            SearchQuery(words: ["migration"], userID: "u_1", to: Self.start + Self.day))
        #expect(Set(older.map(\.meetingID)) == ["m_1"])
        let newer = try await store.search(
            SearchQuery(words: ["migration"], userID: "u_1", from: Self.start + Self.day))
        #expect(Set(newer.map(\.meetingID)) == ["m_2"])
        #expect(
            Set(
                try await store.search(SearchQuery(words: ["migration"], userID: "u_1", meetingID: "m_1")).map(
                    \.meetingID)) == ["m_1"])
        let all = try await store.search(SearchQuery(words: ["migration"], userID: "u_1"))
        #expect(all.count == 4)
        let pages = try await [0, 2].asyncMap {
            try await store.search(SearchQuery(words: ["migration"], userID: "u_1", limit: 2, offset: $0))
        }
        #expect(pages.flatMap { $0 } == all)
        try await store.close()
    }

    @Test(arguments: Backend.allCases) func rewritesGoForwardOnlyFollowTheLogAndGoWithTheMeeting(on backend: Backend)
        async throws
    {
        let store = try await SQLStoreTests.store(backend)
        try await Self.meetings(store)
        let log = AppendCondition(epoch: "e_m_1", latest: nil, lease: nil)
        _ = try await store.appendEvents(meetingID: "m_1", count: 4, condition: log, hint: nil) { first in
            (first..<first + 4).map { StoredEvent(meetingID: "m_1", offset: $0, type: "transcript", json: "{}") }
        }
        // Behind: events the index does not reflect.
        #expect(try await store.meetingsBehindSearch(limit: 10) == ["m_1"])
        #expect(
            try await store.replaceSearchDocuments(
                meetingID: "m_1", epoch: "e_m_1", offset: 4, readers: ["u_1"],
                documents: [Self.segment(1, "Ana", "budget review")],
                actionItems: []))
        #expect(try await store.meetingsBehindSearch(limit: 10).isEmpty)
        // An older state (a slower indexer) is refused; so is another log's.
        #expect(
            try await !store.replaceSearchDocuments(
                meetingID: "m_1", epoch: "e_m_1", offset: 3, readers: ["u_1"],
                documents: [Self.segment(1, "Ana", "stale words")],
                actionItems: []))
        #expect(
            try await !store.replaceSearchDocuments(
                meetingID: "m_1", epoch: "e_old", offset: 9, readers: ["u_1"],
                documents: [Self.segment(1, "Ana", "stale words")],
                actionItems: []))
        #expect(try await store.search(SearchQuery(words: ["stale"], userID: "u_1")).isEmpty)
        // A newer state replaces every document (a correction, a rename).
        #expect(
            try await store.replaceSearchDocuments(
                meetingID: "m_1", epoch: "e_m_1", offset: 5, readers: ["u_1"],
                documents: [Self.segment(1, "Bea", "budget approved")],
                actionItems: []))
        let hits = try await store.search(SearchQuery(words: ["budget"], userID: "u_1"))
        #expect(hits.map(\.speaker) == ["Bea"])
        #expect(try await store.search(SearchQuery(words: ["review"], userID: "u_1")).isEmpty)
        // A reset log is behind again.
        try await store.resetLog(meetingID: "m_1", epoch: "e_new")
        _ = try await store.appendEvents(
            meetingID: "m_1", count: 1, condition: AppendCondition(epoch: "e_new", latest: nil, lease: nil), hint: nil
        ) { [StoredEvent(meetingID: "m_1", offset: $0, type: "status", json: "{}")] }
        #expect(try await store.meetingsBehindSearch(limit: 10) == ["m_1"])
        // A deleted meeting leaves nothing to find.
        try await store.deleteMeeting(id: "m_1")
        #expect(try await store.search(SearchQuery(words: ["budget"], userID: "u_1")).isEmpty)
        #expect(try await store.meetingsBehindSearch(limit: 10).isEmpty)
        #expect(
            try await !store.replaceSearchDocuments(
                meetingID: "m_1", epoch: "e_new", offset: 9, readers: ["u_1"],
                documents: [Self.segment(1, "Ana", "budget")],
                actionItems: []))
        try await store.close()
    }

    @Test(arguments: Backend.allCases) func actionItemsAreFoundByOwnerNameOrAssignmentSoonestFirst(
        on backend: Backend
    ) async throws {
        let store = try await SQLStoreTests.store(backend)
        try await Self.meetings(store)
        func item(_ id: Int, _ owner: String?, assignee: String? = nil, due: String? = nil, done: Bool = false)
            -> IndexedActionItem
        {
            IndexedActionItem(
                item: id, owner: owner, assignee: assignee, task: "task \(id)", due: due.map { "by \($0)" },
                dueDate: due, done: done, time: Double(id))
        }
        #expect(
            try await store.replaceSearchDocuments(
                meetingID: "m_1", epoch: "e_m_1", offset: 1, readers: ["u_1"], documents: [],
                actionItems: [
                    item(1, "Dana Scully", due: "2026-12-09"), item(2, "Fox", assignee: "dana.scully"),
                    item(3, "DANA SCULLY", assignee: "fox"), item(4, "dana scully", due: "2026-12-07", done: true),
                ]))
        #expect(
            try await store.replaceSearchDocuments(
                meetingID: "m_3", epoch: "e_m_3", offset: 1, readers: ["u_2"], documents: [],
                actionItems: [item(1, "Dana Scully")]))
        // alice (u_1) sees m_1 and m_2; her name is not Dana's: "mine" for the account dana.scully.
        let mine = ActionItemQuery(
            userID: "u_1", mine: ("dana.scully", [IndexedActionItem.nameKey("dana.scully")]), open: nil)
        let found = try await store.actionItems(mine)
        // Soonest due first, undated last; an item assigned to someone else is theirs, not the owner's.
        #expect(found.map { "\($0.meetingID)/\($0.item.item)" } == ["m_1/4", "m_1/1", "m_1/2"], "\(found)")
        #expect(found.first?.item.done == true && found.first?.title == "Meeting m_1")
        var open = mine
        open.open = true
        #expect(try await store.actionItems(open).map(\.item.item) == [1, 2])
        open.open = false
        #expect(try await store.actionItems(open).map(\.item.item) == [4])
        #expect(try await store.actionItems(ActionItemQuery(userID: "u_1", mine: nil, open: nil)).count == 4)
        #expect(try await store.actionItems(ActionItemQuery(userID: "u_3", mine: nil, open: nil)).isEmpty)
        // Rewritten with the meeting's documents; gone with the meeting.
        #expect(
            try await store.replaceSearchDocuments(
                meetingID: "m_1", epoch: "e_m_1", offset: 2, readers: ["u_1"], documents: [],
                actionItems: [item(1, "Fox")]))
        #expect(try await store.actionItems(mine).isEmpty)
        try await store.deleteMeeting(id: "m_1")
        #expect(try await store.actionItems(ActionItemQuery(userID: "u_1", mine: nil, open: nil)).isEmpty)
        try await store.close()
    }

    @Test func wordsAreLettersAndDigitsOnly() {
        #expect(SearchQuery.words(of: "  Billing-migration, \"Q3\" OR *  ") == ["billing", "migration", "q3", "or"])
        #expect(SearchQuery.words(of: " ,; ").isEmpty)
    }
}

extension Array {
    fileprivate func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var result: [T] = []
        for element in self { result.append(try await transform(element)) }
        return result
    }
}
