import Foundation
import ParleyEvents
import SQLKit
import Testing

@testable import ParleyStore

/// The read model: a meeting's state as its log builds it, from memory or a stored snapshot plus
/// the events after it, always equal to replaying the whole log; never a state of another epoch.
@Suite struct MeetingStatesTests {
    /// Appends `count` transcript segments (and, every tenth, a speakers relabel) to the log.
    static func append(_ count: Int, to store: SQLStore, meeting: MeetingRecord, from first: Int) async throws {
        let latest = try await store.latestOffset(meetingID: meeting.id)
        _ = try await store.appendEvents(
            meetingID: meeting.id, count: count, condition: AppendCondition(epoch: meeting.epoch), hint: latest
        ) { start in
            try (0..<count).map { index in
                let n = first + index
                let data: EventData =
                    n % 10 == 9
                    ? .speakers(
                        .init(
                            reason: .clustering, speakers: [.init(id: "S2", name: "Speaker 2")],
                            changes: [.init(segmentID: n - 1, speaker: "S2")]))
                    : .transcript(
                        .init(id: n, speaker: "S1", start: Double(n), end: Double(n) + 1, text: "w\(n)", words: []))
                let event = MeetingEvent(meetingID: meeting.id, offset: start + index, timestamp: Date(), data: data)
                let json = String(decoding: try JSONEncoder().encode(event), as: UTF8.self)
                return StoredEvent(meetingID: meeting.id, offset: event.offset, type: event.type, json: json)
            }
        }
    }

    /// The state replaying every event of the log, the way a reader did before the read model.
    static func replayed(_ store: SQLStore, _ meeting: MeetingRecord) async throws -> MeetingState {
        var state = MeetingState(meetingID: meeting.id, title: meeting.title, createdAt: meeting.createdAt)
        for stored in try await store.events(meetingID: meeting.id, after: 0, through: nil) {
            state.apply(try JSONDecoder().decode(MeetingEvent.self, from: Data(stored.json.utf8)))
        }
        return state
    }

    @Test(arguments: SQLStoreTests.Backend.allCases) func statesFromMemoryAndSnapshotsEqualTheWholeLog(
        on backend: SQLStoreTests.Backend
    ) async throws {
        let store = try await SQLStoreTests.store(backend)
        try await SQLStoreTests.meeting(in: store)
        var meeting = try #require(try await store.meeting(id: "m_1"))
        let states = MeetingStates(store: store, capacity: 4, snapshotEvery: 50)

        try await Self.append(30, to: store, meeting: meeting, from: 1)
        #expect(try await states.state(of: meeting) == (try await Self.replayed(store, meeting)))
        #expect(try await store.snapshot(meetingID: "m_1") == nil)  // fewer than 50 events yet

        try await Self.append(40, to: store, meeting: meeting, from: 31)
        #expect(try await states.state(of: meeting) == (try await Self.replayed(store, meeting)))
        let snapshot = try #require(try await store.snapshot(meetingID: "m_1"))
        #expect(snapshot.offset == 70 && snapshot.epoch == "e_1")

        // Another process (nothing in memory) starts from the snapshot and reads what came after.
        try await Self.append(5, to: store, meeting: meeting, from: 71)
        let cold = MeetingStates(store: store, capacity: 0, snapshotEvery: 50)
        #expect(try await cold.state(of: meeting) == (try await Self.replayed(store, meeting)))

        // A reset log (a new upload) has a new epoch: the old state and snapshot are not used.
        try await store.resetLog(meetingID: "m_1", epoch: "e_2")
        meeting = try #require(try await store.meeting(id: "m_1"))
        #expect(try await store.snapshot(meetingID: "m_1") == nil)
        try await Self.append(3, to: store, meeting: meeting, from: 1)
        let fresh = try await states.state(of: meeting)
        #expect(fresh == (try await Self.replayed(store, meeting)))
        #expect(fresh.segments.count == 3)
        try await store.close()
    }

    @Test func aSnapshotThisVersionCannotReadIsReplaced() async throws {
        let store = try await SQLStoreTests.store()
        try await SQLStoreTests.meeting(in: store)
        let meeting = try #require(try await store.meeting(id: "m_1"))
        try await Self.append(60, to: store, meeting: meeting, from: 1)
        try await store.putSnapshot(StateSnapshot(meetingID: "m_1", epoch: "e_1", offset: 60, json: "{\"not\": 1}"))
        let states = MeetingStates(store: store, capacity: 0, snapshotEvery: 50)
        #expect(try await states.state(of: meeting) == (try await Self.replayed(store, meeting)))
        let replaced = try #require(try await store.snapshot(meetingID: "m_1"))
        #expect(replaced.json != "{\"not\": 1}")
        #expect(
            try JSONDecoder().decode(MeetingState.self, from: Data(replaced.json.utf8))
                == (try await Self.replayed(store, meeting)))
        // A deleted meeting takes its snapshot with it.
        try await store.deleteMeeting(id: "m_1")
        #expect(try await store.snapshot(meetingID: "m_1") == nil)
        try await store.close()
    }
}
