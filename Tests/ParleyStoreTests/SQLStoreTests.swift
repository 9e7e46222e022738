import Foundation
import Logging
import ParleyStore
import ParleyTestSupport
import SQLKit
import Testing

/// The Store contract, on the embedded SQLite store and on PostgreSQL (a real server: make test
/// starts one with scripts/test-postgres.sh and passes its address in PARLEY_TEST_POSTGRES_URL).
@Suite struct SQLStoreTests {
    enum Backend: String, CaseIterable, Sendable {
        case sqlite, postgres
    }

    static func store(_ backend: Backend = .sqlite) async throws -> SQLStore {
        switch backend {
        case .sqlite:
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent(
                "parley-store-\(UUID().uuidString)")
            return try await SQLStore.sqlite(path: folder.path + "/nested/parley.sqlite", logger: Logger(label: "test"))
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

        let events = (1...1200).map { StoredEvent(meetingID: "m_1", offset: $0, type: "status", json: "{\"n\":\($0)}") }
        try await store.appendEvents(events)
        #expect(try await store.latestOffset(meetingID: "m_1") == 1200)
        #expect(try await store.events(meetingID: "m_1", after: 1195, through: nil).map(\.offset) == Array(1196...1200))
        #expect(
            try await store.events(meetingID: "m_1", after: 10, through: 12).map(\.json) == [
                "{\"n\":11}", "{\"n\":12}",
            ])
        try await store.appendEvents([StoredEvent(meetingID: "m_1", offset: 1201, type: "summary", json: "{}")])
        #expect(try await store.latestEvent(meetingID: "m_1", type: "status")?.offset == 1200)
        #expect(try await store.latestEvent(meetingID: "m_1", type: "speakers") == nil)
        // An offset written twice is refused: the log never holds a duplicate.
        await #expect(throws: (any Error).self) { try await store.appendEvents([events[0]]) }
        try await store.deleteEvents(meetingID: "m_1")
        #expect(try await store.latestOffset(meetingID: "m_1") == 0)
        try await store.deleteMeeting(id: "m_1")
        #expect(try await store.meeting(id: "m_1") == nil)
        try await store.close()
    }

    @Test func nodesStartingTogetherOnPostgreSQLMigrateOnce() async throws {
        let url = try await TestPostgres.freshDatabase()
        let stores = try await withThrowingTaskGroup(of: SQLStore.self) { group in
            for _ in 0..<4 { group.addTask { try await SQLStore.postgres(url: url, logger: Logger(label: "test")) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        let versions = try await stores[0].database.raw("SELECT version FROM schema_versions ORDER BY version").all()
            .map { try $0.decode(column: "version", as: Int.self) }
        #expect(versions == [1, 2])
        for store in stores { try await store.close() }
    }

    @Test func migrationsRunOnceAndUpgradeADatabaseMadeBeforeVersions() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("parley-store-\(UUID().uuidString)")
        let path = folder.path + "/parley.sqlite"
        // A database as the first release made it: version 1's tables, no versions recorded.
        var store = try await SQLStore.sqlite(path: path, logger: Logger(label: "test"))
        try await store.database.raw("DROP TABLE meeting_members").run()
        try await store.database.raw(
            """
            CREATE TABLE meeting_members (meeting_id TEXT NOT NULL, user_id TEXT NOT NULL,
            PRIMARY KEY (meeting_id, user_id))
            """
        ).run()
        try await store.database.raw("DROP TABLE schema_versions").run()
        try await store.createUser(UserRecord(id: "u_1", username: "alice", passwordHash: "h", createdAt: Date()))
        try await store.close()

        store = try await SQLStore.sqlite(path: path, logger: Logger(label: "test"))
        try await store.migrate()  // a second run does nothing
        #expect(try await store.user(named: "alice")?.id == "u_1")
        try await store.addMember(meetingID: "m_1", userID: "u_1", canEdit: true)
        #expect(try await store.members(meetingID: "m_1") == [MemberRecord(userID: "u_1", canEdit: true)])
        let versions = try await store.database.raw("SELECT version FROM schema_versions ORDER BY version").all()
            .map { try $0.decode(column: "version", as: Int.self) }
        #expect(versions == [1, 2])
        try await store.close()
    }
}
