public import Foundation
public import ParleyEvents
import Synchronization

/// The read model: each meeting's `MeetingState` as its event log builds it, without decoding
/// the whole log on every read. A state is kept in memory for the meetings read last
/// (`capacity`), and persisted as a snapshot with the offset it reflects once `snapshotEvery`
/// events were applied since the last one, so another process, or this one after a restart,
/// starts from there. A read applies only the events after the state it starts from; the log
/// stays the truth (a reset log has a new epoch, and states of another epoch are not used).
public final class MeetingStates: Sendable {
    let store: any Store
    let capacity: Int
    let snapshotEvery: Int

    private struct Entry {
        var epoch: String
        var state: MeetingState
        /// The offset of the snapshot stored for this state's log (0: none).
        var persisted: Int
        var used: UInt64
    }

    private struct Cache {
        var entries: [String: Entry] = [:]
        var clock: UInt64 = 0
    }

    private let cache = Mutex(Cache())

    public init(store: any Store, capacity: Int = 32, snapshotEvery: Int = 256) {
        self.store = store
        self.capacity = max(capacity, 0)
        self.snapshotEvery = max(snapshotEvery, 1)
    }

    /// The meeting's whole state as of its log now.
    public func state(of meeting: MeetingRecord) async throws -> MeetingState {
        var (state, persisted) = try await start(for: meeting)
        let decoder = JSONDecoder()
        for stored in try await store.events(meetingID: meeting.id, after: state.offset, through: nil) {
            state.apply(try decoder.decode(MeetingEvent.self, from: Data(stored.json.utf8)))
        }
        state.title = meeting.title
        if state.offset - persisted >= snapshotEvery {
            let json = String(decoding: try JSONEncoder().encode(state), as: UTF8.self)
            try await store.putSnapshot(
                StateSnapshot(meetingID: meeting.id, epoch: meeting.epoch, offset: state.offset, json: json))
            persisted = state.offset
        }
        remember(state, of: meeting, persisted: persisted)
        return state
    }

    /// Forgets a meeting (it was deleted).
    public func forget(meetingID: String) {
        _ = cache.withLock { $0.entries.removeValue(forKey: meetingID) }
    }

    /// Where a read starts: the state in memory, else the stored snapshot, else an empty state;
    /// each only if it is of the meeting's current log.
    private func start(for meeting: MeetingRecord) async throws -> (MeetingState, persisted: Int) {
        let held = cache.withLock { cache -> Entry? in
            guard let entry = cache.entries[meeting.id], entry.epoch == meeting.epoch else { return nil }
            return entry
        }
        if let held { return (held.state, held.persisted) }
        if let snapshot = try await store.snapshot(meetingID: meeting.id), snapshot.epoch == meeting.epoch,
            let state = try? JSONDecoder().decode(MeetingState.self, from: Data(snapshot.json.utf8)),
            state.offset == snapshot.offset
        {
            return (state, snapshot.offset)
        }
        return (MeetingState(meetingID: meeting.id, title: meeting.title, createdAt: meeting.createdAt), 0)
    }

    private func remember(_ state: MeetingState, of meeting: MeetingRecord, persisted: Int) {
        guard capacity > 0 else { return }
        cache.withLock { cache in
            cache.clock += 1
            if let current = cache.entries[meeting.id], current.epoch == meeting.epoch,
                current.state.offset > state.offset
            {
                return  // a concurrent read got further
            }
            cache.entries[meeting.id] = Entry(
                epoch: meeting.epoch, state: state, persisted: persisted, used: cache.clock)
            if cache.entries.count > capacity,
                let oldest = cache.entries.min(by: { $0.value.used < $1.value.used })?.key
            {
                cache.entries[oldest] = nil
            }
        }
    }
}
