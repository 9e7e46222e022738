import Foundation
import Testing

@testable import ParleyStore

/// Voice profiles and meetings' voices on both databases.
@Suite struct VoiceStoreTests {
    typealias Backend = SQLStoreTests.Backend

    static func owner(_ store: SQLStore) async throws {
        for (id, name) in [("u_1", "alice"), ("u_2", "bob")] {
            try await store.createUser(UserRecord(id: id, username: name, passwordHash: "h", createdAt: Date()))
        }
        for id in ["m_1", "m_2"] {
            try await store.createMeeting(
                MeetingRecord(id: id, title: id, ownerID: "u_1", createdAt: Date(), epoch: "e_\(id)"))
        }
    }

    @Test(arguments: Backend.allCases) func aProfileLearnsEachSourceOnceAndAveragesIts(on backend: Backend)
        async throws
    {
        let store = try await SQLStoreTests.store(backend)
        try await Self.owner(store)
        let first = try await store.learnVoice(
            ownerID: "u_1", name: "Priya", kind: "k", vector: [1, 0, 0],
            from: VoiceSource(meetingID: "m_1", speaker: "S1"))
        // Naming the same speaker again (or "priya " in another case) adds nothing twice.
        let again = try await store.learnVoice(
            ownerID: "u_1", name: " priya", kind: "k", vector: [1, 0, 0],
            from: VoiceSource(meetingID: "m_1", speaker: "S1"))
        #expect(again.id == first.id && again.prints == ["k": 1] && again.name == "Priya")
        let second = try await store.learnVoice(
            ownerID: "u_1", name: "Priya", kind: "k", vector: [0, 1, 0],
            from: VoiceSource(meetingID: "m_2", speaker: "S3"))
        #expect(second.prints == ["k": 2] && second.meetings == 2)
        let prints = try await store.voicePrints(ownerID: "u_1", kind: "k")
        #expect(prints.map(\.vector) == [[0.5, 0.5, 0]] && prints.map(\.name) == ["Priya"])
        // Another kind is another print of the same person; another owner sees none of it.
        _ = try await store.learnVoice(
            ownerID: "u_1", name: "Priya", kind: "other", vector: [2, 2], from: VoiceSource())
        #expect(try await store.voiceProfiles(ownerID: "u_1").map(\.prints) == [["k": 2, "other": 1]])
        #expect(try await store.voicePrints(ownerID: "u_2", kind: "k").isEmpty)
        #expect(try await store.voiceProfile(id: first.id, ownerID: "u_2") == nil)
        #expect(try await store.deleteVoiceProfile(id: first.id, ownerID: "u_2") == false)
        try await store.close()
    }

    @Test(arguments: Backend.allCases) func renameMergeAndDelete(on backend: Backend) async throws {
        let store = try await SQLStoreTests.store(backend)
        try await Self.owner(store)
        let a = try await store.learnVoice(
            ownerID: "u_1", name: "Ana", kind: "k", vector: [1, 0], from: VoiceSource(meetingID: "m_1", speaker: "S1"))
        let b = try await store.learnVoice(
            ownerID: "u_1", name: "Anna", kind: "k", vector: [0, 1], from: VoiceSource(meetingID: "m_2", speaker: "S2"))
        await #expect(throws: StoreError.self) {
            _ = try await store.renameVoiceProfile(id: b.id, ownerID: "u_1", name: "ANA")
        }
        #expect(try await store.renameVoiceProfile(id: b.id, ownerID: "u_1", name: "Anna K")?.name == "Anna K")
        #expect(try await store.renameVoiceProfile(id: b.id, ownerID: "u_2", name: "x") == nil)
        let merged = try #require(try await store.mergeVoiceProfiles(into: a.id, from: b.id, ownerID: "u_1"))
        #expect(merged.meetings == 2 && merged.prints == ["k": 2])
        #expect(try await store.voicePrints(ownerID: "u_1", kind: "k").map(\.vector) == [[0.5, 0.5]])
        #expect(try await store.voiceProfile(id: b.id, ownerID: "u_1") == nil)
        // Deleting takes the voice data with the name.
        #expect(try await store.deleteVoiceProfile(id: a.id, ownerID: "u_1"))
        #expect(try await store.voicePrints(ownerID: "u_1", kind: "k").isEmpty)
        #expect(try await store.voiceProfiles(ownerID: "u_1").isEmpty)
        try await store.close()
    }

    @Test(arguments: Backend.allCases) func meetingVoicesKeepRejectionsAndGoWithTheMeeting(on backend: Backend)
        async throws
    {
        let store = try await SQLStoreTests.store(backend)
        try await Self.owner(store)
        let voice = MeetingVoiceRecord(meetingID: "m_1", speaker: "S1", kind: "k", vector: [0.25, -1.5], speech: 12)
        try await store.putMeetingVoices(meetingID: "m_1", [voice])
        try await store.rejectVoice(meetingID: "m_1", speaker: "S1", profileID: "v_x")
        try await store.rejectVoice(meetingID: "m_1", speaker: "S1", profileID: "v_x")
        // A new run's voices replace the old; the speaker keeps what people said it is not.
        let put = try await store.putMeetingVoices(meetingID: "m_1", [voice])
        #expect(put.map(\.rejected) == [["v_x"]])
        let stored = try await store.meetingVoices(meetingID: "m_1")
        #expect(stored.map(\.vector) == [[0.25, -1.5]] && stored.map(\.rejected) == [["v_x"]])
        _ = try await store.learnVoice(
            ownerID: "u_1", name: "Ana", kind: "k", vector: [1, 0], from: VoiceSource(meetingID: "m_1", speaker: "S1"))
        try await store.deleteMeeting(id: "m_1")
        #expect(try await store.meetingVoices(meetingID: "m_1").isEmpty)
        #expect(try await store.voiceProfiles(ownerID: "u_1").map(\.meetings) == [0])
        try await store.close()
    }
}
