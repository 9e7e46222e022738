import Foundation
import Logging
import ParleyTestSupport
import SQLKit
import Testing

@testable import ParleyStore

/// The Store contract, on the embedded SQLite store and on PostgreSQL (a real server: make test
/// starts one with scripts/test-postgres.sh and passes its address in PARLEY_TEST_POSTGRES_URL).
@Suite struct SQLStoreTests {
    enum Backend: String, CaseIterable, Sendable {
        case sqlite, postgres
    }

    static func store(_ backend: Backend = .sqlite) async throws -> SQLStore {
        switch backend {
        case .sqlite:
            let folder = try TestScratch.folder("store")
            return try await SQLStore.sqlite(path: folder + "/nested/parley.sqlite", logger: Logger(label: "test"))
        case .postgres:
            return try await SQLStore.postgres(
                url: try await TestPostgres.freshDatabase(), logger: Logger(label: "test"))
        }
    }

    @Test(arguments: Backend.allCases) func usersAreUniqueCaseInsensitively(on backend: Backend) async throws {
        let store = try await Self.store(backend)
        let alice = UserRecord(id: "u_1", username: "Alice", passwordHash: "h", createdAt: Date())
        try await store.createUser(alice)
        await #expect(throws: StoreError.self) {
            try await store.createUser(UserRecord(id: "u_2", username: "alice", passwordHash: "h", createdAt: Date()))
        }
        #expect(try await store.user(named: "ALICE")?.id == "u_1")
        #expect(try await store.user(id: "u_1")?.username == "Alice")
        #expect(try await store.user(named: "bob") == nil)
        try await store.close()
    }

    @Test(arguments: Backend.allCases) func refreshTokensAreConsumedOnceAndFamiliesRevoked(on backend: Backend)
        async throws
    {
        let store = try await Self.store(backend)
        try await store.createUser(UserRecord(id: "u_1", username: "alice", passwordHash: "h", createdAt: Date()))
        let expires = Date().addingTimeInterval(60)
        try await store.insertRefreshToken(
            RefreshTokenRecord(hash: "a", userID: "u_1", family: "f", expiresAt: expires))
        try await store.insertRefreshToken(
            RefreshTokenRecord(hash: "b", userID: "u_1", family: "f", expiresAt: expires))
        let first = try #require(try await store.consumeRefreshToken(hash: "a", at: Date()))
        #expect(!first.used && !first.revoked)
        let again = try #require(try await store.consumeRefreshToken(hash: "a", at: Date()))
        #expect(again.used)
        try await store.revokeRefreshFamily("f")
        let revoked = try #require(try await store.consumeRefreshToken(hash: "b", at: Date()))
        #expect(revoked.revoked)
        #expect(try await store.consumeRefreshToken(hash: "zzz", at: Date()) == nil)
        try await store.close()
    }

    @Test(arguments: Backend.allCases) func meetingsMembersAndTheEventLog(on backend: Backend) async throws {
        let store = try await Self.store(backend)
        try await store.createUser(UserRecord(id: "u_1", username: "alice", passwordHash: "h", createdAt: Date()))
        try await store.createUser(UserRecord(id: "u_2", username: "bob", passwordHash: "h", createdAt: Date()))
        var meeting = MeetingRecord(
            id: "m_1", title: "Weekly", ownerID: "u_1", createdAt: Date(timeIntervalSince1970: 1_800_000_000.25),
            epoch: "e_1")
        try await store.createMeeting(meeting)
        #expect(try await store.meetings(visibleTo: "u_2").isEmpty)
        try await store.addMember(meetingID: "m_1", userID: "u_2", canEdit: false)
        try await store.addMember(meetingID: "m_1", userID: "u_2", canEdit: false)
        #expect(try await store.members(meetingID: "m_1") == [MemberRecord(userID: "u_2", canEdit: false)])
        #expect(try await store.meetings(visibleTo: "u_2").map(\.id) == ["m_1"])
        try await store.addMember(meetingID: "m_1", userID: "u_2", canEdit: true)
        #expect(try await store.members(meetingID: "m_1") == [MemberRecord(userID: "u_2", canEdit: true)])
        // What the creator asked of the diarization is kept with the meeting (NULL when nothing).
        #expect(try await store.meeting(id: "m_1")?.diarization == DiarizationRequest())
        let asked = DiarizationRequest(diarizer: "neural", minSpeakers: 2, maxSpeakers: 5)
        try await store.createMeeting(
            MeetingRecord(
                id: "m_asked", title: "Asked", ownerID: "u_1", createdAt: Date(), epoch: "e_a", diarization: asked))
        #expect(try await store.meeting(id: "m_asked")?.diarization == asked)

        meeting.status = .processing
        meeting.audioPath = "/tmp/a"
        meeting.audioBytes = 42
        try await store.updateMeeting(meeting)
        #expect(try await store.meeting(id: "m_1") == meeting)
        #expect(try await store.meetings(withStatus: .processing).map(\.id) == ["m_1"])
        try await store.recordUpload(meetingID: "m_1", bytes: 99)
        let recorded = try await store.meeting(id: "m_1")
        #expect(recorded?.audioBytes == 99)
        #expect(recorded?.status == .processing)

        let log = AppendCondition(epoch: "e_1")
        let events = try await store.appendEvents(meetingID: "m_1", count: 1200, condition: log, hint: nil) { first in
            (first..<first + 1200).map {
                StoredEvent(meetingID: "m_1", offset: $0, type: "status", json: "{\"n\":\($0)}")
            }
        }
        #expect(events.map(\.offset) == Array(1...1200))
        #expect(try await store.latestOffset(meetingID: "m_1") == 1200)
        #expect(try await store.events(meetingID: "m_1", after: 1195, through: nil).map(\.offset) == Array(1196...1200))
        #expect(
            try await store.events(meetingID: "m_1", after: 10, through: 12).map(\.json) == [
                "{\"n\":11}", "{\"n\":12}",
            ])
        _ = try await store.appendEvents(meetingID: "m_1", count: 1, condition: log, hint: nil) {
            [StoredEvent(meetingID: "m_1", offset: $0, type: "summary", json: "{}")]
        }
        #expect(try await store.latestEvent(meetingID: "m_1", type: "status")?.offset == 1200)
        #expect(try await store.latestEvent(meetingID: "m_1", type: "speakers") == nil)
        #expect(
            try await store.logPositions(meetingIDs: ["m_1", "m_9"]) == ["m_1": LogPosition(epoch: "e_1", latest: 1201)]
        )
        try await store.resetLog(meetingID: "m_1", epoch: "e_2")
        #expect(try await store.latestOffset(meetingID: "m_1") == 0)
        #expect(try await store.events(meetingID: "m_1", after: 0, through: nil).isEmpty)
        #expect(try await store.meeting(id: "m_1")?.epoch == "e_2")
        try await store.deleteMeeting(id: "m_1")
        #expect(try await store.meeting(id: "m_1") == nil)
        try await store.close()
    }

    @Test(arguments: Backend.allCases) func appendsHoldOnlyUnderTheirCondition(on backend: Backend) async throws {
        let store = try await Self.store(backend)
        try await Self.meeting(in: store)
        func append(_ condition: AppendCondition) async throws -> Int {
            try await store.appendEvents(meetingID: "m_1", count: 1, condition: condition, hint: nil) {
                [StoredEvent(meetingID: "m_1", offset: $0, type: "status", json: "{}")]
            }[0].offset
        }
        #expect(try await append(AppendCondition(epoch: "e_1")) == 1)
        // A wrong guess of where the log ends costs time, not correctness.
        #expect(
            try await store.appendEvents(meetingID: "m_1", count: 1, condition: AppendCondition(epoch: "e_1"), hint: 7)
            {
                [StoredEvent(meetingID: "m_1", offset: $0, type: "status", json: "{}")]
            }.map(\.offset) == [2])
        await #expect(throws: StoreError.self) {
            try await store.appendEvents(meetingID: "m_1", count: 1, condition: AppendCondition(epoch: "e_0"), hint: 2)
            {
                [StoredEvent(meetingID: "m_1", offset: $0, type: "status", json: "{}")]
            }
        }
        // Another epoch: the log was reset since the writer read it.
        try await expectStale { try await append(AppendCondition(epoch: "e_0")) }
        // Compare-and-append: only while the log still ends where the writer read it.
        #expect(try await append(AppendCondition(epoch: "e_1", latest: 2)) == 3)
        try await expectStale { try await append(AppendCondition(epoch: "e_1", latest: 2)) }
        // Under a lease: only while the writer holds the meeting's job.
        let now = Date()
        try await store.putJob(
            meetingID: "m_1", epoch: "e_1", owner: "w_a", leaseUntil: now.addingTimeInterval(30), at: now)
        #expect(try await append(AppendCondition(epoch: "e_1", lease: "w_a")) == 4)
        try await expectStale { try await append(AppendCondition(epoch: "e_1", lease: "w_b")) }
        // The same with a right guess of where the log ends (one statement on PostgreSQL).
        func guessing(_ lease: String) async throws -> Int {
            try await store.appendEvents(
                meetingID: "m_1", count: 1, condition: AppendCondition(epoch: "e_1", lease: lease), hint: 4
            ) { [StoredEvent(meetingID: "m_1", offset: $0, type: "status", json: "{}")] }[0].offset
        }
        try await expectStale { try await guessing("w_b") }
        #expect(try await guessing("w_a") == 5)
        // A failed build appends nothing and reserves nothing.
        struct Broken: Error {}
        await #expect(throws: Broken.self) {
            _ = try await store.appendEvents(
                meetingID: "m_1", count: 2, condition: AppendCondition(epoch: "e_1"), hint: nil
            ) {
                _ in
                throw Broken()
            }
        }
        #expect(try await store.latestOffset(meetingID: "m_1") == 5)
        #expect(try await store.events(meetingID: "m_1", after: 0, through: nil).map(\.offset) == [1, 2, 3, 4, 5])
        try await store.close()
    }

    @Test(arguments: Backend.allCases) func jobsAreClaimedOnceLeasedRenewedAndTakenOver(on backend: Backend)
        async throws
    {
        let store = try await Self.store(backend)
        try await Self.meeting(in: store)
        let now = Date()
        #expect(try await store.claimJob(owner: "w_a", until: now.addingTimeInterval(30), now: now) == nil)
        try await store.putJob(meetingID: "m_1", epoch: "e_1", owner: nil, leaseUntil: nil, at: now)
        let first = try #require(try await store.claimJob(owner: "w_a", until: now.addingTimeInterval(30), now: now))
        #expect(first.meetingID == "m_1" && first.owner == "w_a" && first.attempts == 1)
        // Leased: nobody else gets it while the lease runs.
        #expect(try await store.claimJob(owner: "w_b", until: now.addingTimeInterval(60), now: now) == nil)
        #expect(try await store.renewJob(meetingID: "m_1", owner: "w_a", until: now.addingTimeInterval(40)))
        #expect(try await store.renewJob(meetingID: "m_1", owner: "w_b", until: now.addingTimeInterval(40)) == false)
        // The lease runs out (w_a stopped answering): w_b takes it over, and w_a has lost it.
        let later = now.addingTimeInterval(41)
        // A meeting's own job (a live recording's reconnect): not while leased, then like any claim.
        #expect(
            try await store.claimJob(meetingID: "m_1", owner: "w_b", until: now.addingTimeInterval(60), now: now)
                == nil)
        #expect(
            try await store.claimJob(meetingID: "m_9", owner: "w_b", until: later.addingTimeInterval(30), now: later)
                == nil)
        let second = try #require(
            try await store.claimJob(meetingID: "m_1", owner: "w_b", until: later.addingTimeInterval(30), now: later))
        #expect(second.owner == "w_b" && second.attempts == 2)
        #expect(try await store.claimJob(owner: "w_c", until: later.addingTimeInterval(30), now: later) == nil)
        #expect(try await store.renewJob(meetingID: "m_1", owner: "w_a", until: later) == false)
        #expect(try await store.finishJob(meetingID: "m_1", owner: "w_a", status: .failed) == false)
        #expect(try await store.meeting(id: "m_1")?.status == .created)
        // Given back on a graceful stop: claimable at once, the attempt count kept.
        #expect(try await store.releaseJob(meetingID: "m_1", owner: "w_b"))
        let third = try #require(
            try await store.claimJob(owner: "w_c", until: later.addingTimeInterval(30), now: later))
        #expect(third.attempts == 3)
        #expect(try await store.finishJob(meetingID: "m_1", owner: "w_c", status: .completed))
        #expect(try await store.meeting(id: "m_1")?.status == .completed)
        #expect(try await store.job(meetingID: "m_1") == nil)
        // Starting to process: once, however many uploads try at the same time.
        #expect(try await store.startProcessing(meetingID: "m_1"))
        #expect(try await store.startProcessing(meetingID: "m_1") == false)
        #expect(try await store.startProcessing(meetingID: "m_9") == false)
        try await store.close()
    }

    @Test func processesSharingPostgreSQLAppendWithoutGapsClaimJobsOnceAndHearEachOther() async throws {
        let url = try await TestPostgres.freshDatabase()
        let a = try await SQLStore.postgres(url: url, logger: Logger(label: "test"))
        let b = try await SQLStore.postgres(url: url, logger: Logger(label: "test"))
        try await Self.meeting(in: a)
        #expect(b.isShared)
        let (changes, hear) = AsyncStream.makeStream(of: StoreChange.self)
        let listening = Task { await b.followChanges { hear.yield($0) } }
        var heard = changes.makeAsyncIterator()
        #expect(await heard.next() == .resumed)  // listening
        // Two processes appending to one log at once, each guessing where the log ends from its
        // own last append (right when the other did not write in between: one statement; wrong
        // otherwise: the transaction): offsets 1...400, each once, whatever the path.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for store in [a, b] {
                group.addTask {
                    var known = 0
                    for _ in 0..<20 {
                        let appended = try await store.appendEvents(
                            meetingID: "m_1", count: 10, condition: AppendCondition(epoch: "e_1"), hint: known
                        ) { first in
                            (first..<first + 10).map {
                                StoredEvent(meetingID: "m_1", offset: $0, type: "status", json: "{\"at\":\($0)}")
                            }
                        }
                        known = appended.last?.offset ?? known
                    }
                }
            }
            try await group.waitForAll()
        }
        let log = try await a.events(meetingID: "m_1", after: 0, through: nil)
        #expect(log.map(\.offset) == Array(1...400))
        #expect(log.allSatisfy { $0.json == "{\"at\":\($0.offset)}" })  // each row built for its own offset
        // Every append was announced, in commit order, the last one at 400.
        var announced: [Int] = []
        while announced.last != 400, let change = await heard.next() {
            if case .appended("m_1", let position) = change { announced.append(position.latest) }
        }
        #expect(announced == announced.sorted() && announced.count == 40)
        // Ten jobs, four processes claiming at once: each job claimed exactly once.
        for n in 2...11 {
            try await a.createMeeting(
                MeetingRecord(id: "m_\(n)", title: "t", ownerID: "u_1", createdAt: Date(), epoch: "e_1"))
            try await a.putJob(meetingID: "m_\(n)", epoch: "e_1", owner: nil, leaseUntil: nil, at: Date())
        }
        let claimed = try await withThrowingTaskGroup(of: [String].self) { group in
            for (index, store) in [a, b, a, b].enumerated() {
                group.addTask {
                    var mine: [String] = []
                    let now = Date()
                    while let job = try await store.claimJob(
                        owner: "w_\(index)", until: now.addingTimeInterval(30), now: now)
                    {
                        mine.append(job.meetingID)
                    }
                    return mine
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        #expect(claimed.sorted() == (2...11).map { "m_\($0)" }.sorted())
        listening.cancel()
        await listening.value
        try await a.close()
        try await b.close()
    }

    /// The write is refused as stale (and nothing else goes wrong).
    func expectStale(_ body: () async throws -> Int) async throws {
        let error = await #expect(throws: StoreError.self) { _ = try await body() }
        #expect(error?.code == .stale)
    }

    static func meeting(in store: SQLStore) async throws {
        try await store.createUser(UserRecord(id: "u_1", username: "alice", passwordHash: "h", createdAt: Date()))
        try await store.createMeeting(
            MeetingRecord(id: "m_1", title: "t", ownerID: "u_1", createdAt: Date(), epoch: "e_1"))
    }

    @Test func nodesStartingTogetherOnPostgreSQLMigrateOnce() async throws {
        let url = try await TestPostgres.freshDatabase()
        let stores = try await withThrowingTaskGroup(of: SQLStore.self) { group in
            for _ in 0..<4 { group.addTask { try await SQLStore.postgres(url: url, logger: Logger(label: "test")) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        let versions = try await stores[0].database.raw("SELECT version FROM schema_versions ORDER BY version").all()
            .map { try $0.decode(column: "version", as: Int.self) }
        #expect(versions == SQLStore.migrations.map(\.version))
        for store in stores { try await store.close() }
    }

    @Test func migrationsRunOnceAndUpgradeADatabaseMadeBeforeVersions() async throws {
        let path = try TestScratch.folder("store") + "/parley.sqlite"
        // A database as the first release made it: version 1's tables, no versions recorded.
        var store = try await SQLStore.sqlite(path: path, logger: Logger(label: "test"))
        try await store.database.raw("DROP TABLE meeting_members").run()
        try await store.database.raw(
            """
            CREATE TABLE meeting_members (meeting_id TEXT NOT NULL, user_id TEXT NOT NULL,
            PRIMARY KEY (meeting_id, user_id))
            """
        ).run()
        try await store.database.raw("DROP TABLE jobs").run()
        try await store.database.raw("DROP TABLE presence").run()
        try await store.database.raw("DROP TRIGGER events_counter").run()
        try await store.database.raw("ALTER TABLE meetings DROP COLUMN last_offset").run()
        try await store.database.raw("ALTER TABLE meetings DROP COLUMN diarization").run()
        try await store.database.raw("DROP TABLE schema_versions").run()
        try await store.createUser(UserRecord(id: "u_1", username: "alice", passwordHash: "h", createdAt: Date()))
        // A meeting left processing, with events numbered by the old version.
        try await store.database.raw(
            """
            INSERT INTO meetings (id, title, owner_id, created_at, epoch, status)
            VALUES ('m_2', 't', 'u_1', 0, 'e_1', 'processing')
            """
        ).run()
        try await store.database.raw(
            """
            INSERT INTO events (meeting_id, "offset", type, json)
            VALUES ('m_2', 1, 'status', '{}'), ('m_2', 2, 'status', '{}')
            """
        ).run()
        try await store.close()

        store = try await SQLStore.sqlite(path: path, logger: Logger(label: "test"))
        try await store.migrate()  // a second run does nothing
        #expect(try await store.user(named: "alice")?.id == "u_1")
        try await store.addMember(meetingID: "m_1", userID: "u_1", canEdit: true)
        #expect(try await store.members(meetingID: "m_1") == [MemberRecord(userID: "u_1", canEdit: true)])
        let versions = try await store.database.raw("SELECT version FROM schema_versions ORDER BY version").all()
            .map { try $0.decode(column: "version", as: Int.self) }
        #expect(versions == SQLStore.migrations.map(\.version))
        // Version 3 counted the old log and queued the interrupted meeting, its lease run out.
        #expect(try await store.latestOffset(meetingID: "m_2") == 2)
        let job = try #require(try await store.claimJob(owner: "w_a", until: Date(), now: Date()))
        #expect(job.meetingID == "m_2" && job.attempts == 2)
        // Version 7 added the diarization request: an older meeting asks nothing.
        #expect(try await store.meeting(id: "m_2")?.diarization == DiarizationRequest())
        try await store.close()
    }
}
