public import Foundation
import SQLKit

/// Meetings and their members (`MeetingStore`).
extension SQLStore: MeetingStore {
    private static let meetingColumns =
        "id, title, owner_id, created_at, epoch, status, audio_path, audio_bytes, transcriber, summarizer, diarization"

    public func createMeeting(_ meeting: MeetingRecord) async throws {
        try await database.raw(
            """
            INSERT INTO meetings (\(unsafeRaw: Self.meetingColumns))
            VALUES (\(bind: meeting.id), \(bind: meeting.title), \(bind: meeting.ownerID),
                    \(bind: Self.milliseconds(meeting.createdAt)), \(bind: meeting.epoch), \(bind: meeting.status.rawValue),
                    \(bind: meeting.audioPath), \(bind: meeting.audioBytes), \(bind: meeting.transcriber),
                    \(bind: meeting.summarizer), \(bind: try Self.text(meeting.diarization)))
            """
        ).run()
    }

    public func meeting(id: String) async throws -> MeetingRecord? {
        try await database.raw("SELECT \(unsafeRaw: Self.meetingColumns) FROM meetings WHERE id = \(bind: id)")
            .first().map(Self.meeting)
    }

    public func meetings(visibleTo userID: String) async throws -> [MeetingRecord] {
        try await database.raw(
            """
            SELECT \(unsafeRaw: Self.meetingColumns) FROM meetings
            WHERE owner_id = \(bind: userID)
               OR id IN (SELECT meeting_id FROM meeting_members WHERE user_id = \(bind: userID))
            ORDER BY created_at DESC, id
            """
        ).all().map(Self.meeting)
    }

    public func meetings(withStatus status: MeetingStatus) async throws -> [MeetingRecord] {
        try await database.raw(
            "SELECT \(unsafeRaw: Self.meetingColumns) FROM meetings WHERE status = \(bind: status.rawValue) ORDER BY created_at"
        ).all().map(Self.meeting)
    }

    public func updateMeeting(_ meeting: MeetingRecord) async throws {
        try await database.raw(
            """
            UPDATE meetings SET epoch = \(bind: meeting.epoch),
                status = \(bind: meeting.status.rawValue), audio_path = \(bind: meeting.audioPath),
                audio_bytes = \(bind: meeting.audioBytes), transcriber = \(bind: meeting.transcriber),
                summarizer = \(bind: meeting.summarizer), diarization = \(bind: try Self.text(meeting.diarization))
            WHERE id = \(bind: meeting.id)
            """
        ).run()
    }

    public func startProcessing(meetingID: String) async throws -> Bool {
        try await database.raw(
            """
            UPDATE meetings SET status = \(bind: MeetingStatus.processing.rawValue)
            WHERE id = \(bind: meetingID) AND status <> \(bind: MeetingStatus.processing.rawValue) RETURNING id
            """
        ).first() != nil
    }

    public func recordUpload(meetingID: String, bytes: Int64) async throws {
        try await database.raw("UPDATE meetings SET audio_bytes = \(bind: bytes) WHERE id = \(bind: meetingID)").run()
    }

    public func retitleMeeting(id: String, title: String) async throws -> Bool {
        try await database.raw(
            "UPDATE meetings SET title = \(bind: title) WHERE id = \(bind: id) RETURNING id"
        ).first() != nil
    }

    public func deleteMeeting(id: String) async throws {
        // Explicit deletes, so the result does not depend on foreign keys being enforced; one
        // transaction, so a failure leaves the meeting whole.
        try await transactor.transaction { database in
            for table in [
                "jobs", "presence", "events", "meeting_snapshots", "meeting_members", "meeting_voices", "voice_sources",
                "search_docs", "search_positions", "meeting_action_items",
            ] {
                try await database.raw("DELETE FROM \(unsafeRaw: table) WHERE meeting_id = \(bind: id)").run()
            }
            try await database.raw("DELETE FROM meetings WHERE id = \(bind: id)").run()
        }
    }

    public func addMember(meetingID: String, userID: String, canEdit: Bool) async throws {
        try await database.raw(
            """
            INSERT INTO meeting_members (meeting_id, user_id, can_edit)
            VALUES (\(bind: meetingID), \(bind: userID), \(bind: canEdit ? 1 : 0))
            ON CONFLICT (meeting_id, user_id) DO UPDATE SET can_edit = excluded.can_edit
            """
        ).run()
    }

    public func members(meetingID: String) async throws -> [MemberRecord] {
        try await database.raw(
            """
            SELECT user_id, can_edit FROM meeting_members WHERE meeting_id = \(bind: meetingID) ORDER BY user_id
            """
        ).all().map(Self.member)
    }

    public func removeMember(meetingID: String, userID: String) async throws -> Bool {
        try await database.raw(
            """
            DELETE FROM meeting_members WHERE meeting_id = \(bind: meetingID) AND user_id = \(bind: userID)
            RETURNING user_id
            """
        ).first() != nil
    }

    public func viewers(meetingIDs: [String]) async throws -> [String: Set<String>] {
        struct Row: Decodable {
            var meetingId: String
            var userId: String
        }
        var viewers: [String: Set<String>] = [:]
        try await Self.inChunks(meetingIDs) { chunk in
            let ids = Array(chunk)
            let rows = try await database.raw(
                """
                SELECT id AS meeting_id, owner_id AS user_id FROM meetings WHERE id IN (\(binds: ids))
                UNION ALL
                SELECT meeting_id, user_id FROM meeting_members WHERE meeting_id IN (\(binds: ids))
                """
            ).all(decoding: Row.self, keyDecodingStrategy: .convertFromSnakeCase)
            for row in rows { viewers[row.meetingId, default: []].insert(row.userId) }
        }
        return viewers
    }

    /// A diarization request as stored: JSON, or NULL when it asks nothing.
    static func text(_ request: DiarizationRequest) throws -> String? {
        request.isEmpty ? nil : String(decoding: try JSONEncoder().encode(request), as: UTF8.self)
    }

    static func diarization(_ text: String?) throws -> DiarizationRequest {
        guard let text else { return DiarizationRequest() }
        do {
            return try JSONDecoder().decode(DiarizationRequest.self, from: Data(text.utf8))
        } catch {
            throw StoreError.unreadable("a meeting's stored diarization request is not one this version reads")
        }
    }
}
