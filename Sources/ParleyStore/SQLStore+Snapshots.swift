public import Foundation
import SQLKit

/// The read model's snapshots (`SnapshotStore`).
extension SQLStore: SnapshotStore {
    public func snapshot(meetingID: String) async throws -> StateSnapshot? {
        try await database.raw(
            """
            SELECT meeting_id, epoch, "offset", state FROM meeting_snapshots WHERE meeting_id = \(bind: meetingID)
            """
        ).first().map(Self.snapshot)
    }

    public func putSnapshot(_ snapshot: StateSnapshot) async throws {
        // Only forward: an older snapshot (a slower reader) never replaces a newer one of the same
        // log; a meeting deleted meanwhile gets none.
        try await database.raw(
            """
            INSERT INTO meeting_snapshots (meeting_id, epoch, "offset", state)
            SELECT \(bind: snapshot.meetingID), \(bind: snapshot.epoch), \(bind: snapshot.offset), \(bind: snapshot.json)
            WHERE EXISTS (SELECT 1 FROM meetings WHERE id = \(bind: snapshot.meetingID) AND epoch = \(bind: snapshot.epoch))
            ON CONFLICT (meeting_id) DO UPDATE SET epoch = excluded.epoch, "offset" = excluded."offset", state = excluded.state
            WHERE meeting_snapshots.epoch <> excluded.epoch OR meeting_snapshots."offset" <= excluded."offset"
            """
        ).run()
    }
}
