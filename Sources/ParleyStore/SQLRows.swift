import Foundation
import SQLKit

/// The tables' rows as SQLKit decodes them (`SQLRow.decode(model:)`), each with the record it
/// stands for. Columns are snake case; times are milliseconds since 1970; flags are 0 or 1
/// (the same on SQLite and PostgreSQL).
extension SQLStore {
    struct UserRow: Decodable {
        var id: String
        var username: String
        var passwordHash: String
        var createdAt: Int64

        var record: UserRecord {
            UserRecord(id: id, username: username, passwordHash: passwordHash, createdAt: date(createdAt))
        }
    }

    /// A refresh token; `used` and `revoked` are absent where the query knows them.
    struct RefreshTokenRow: Decodable {
        var hash: String
        var userId: String
        var family: String
        var expiresAt: Int64
        var used: Int?
        var revoked: Int?

        var record: RefreshTokenRecord {
            RefreshTokenRecord(
                hash: hash, userID: userId, family: family, expiresAt: date(expiresAt), used: (used ?? 0) != 0,
                revoked: (revoked ?? 0) != 0)
        }
    }

    struct MeetingRow: Decodable {
        var id: String
        var title: String
        var ownerId: String
        var createdAt: Int64
        var epoch: String
        var status: String
        var audioPath: String?
        var audioBytes: Int64?
        var transcriber: String?
        var summarizer: String?
        /// The diarization request as JSON, or NULL when it asks nothing.
        var diarization: String?

        func record() throws -> MeetingRecord {
            guard let status = MeetingStatus(rawValue: status) else {
                throw StoreError.unreadable("a meeting's stored status '\(status)' is not one this version knows")
            }
            return MeetingRecord(
                id: id, title: title, ownerID: ownerId, createdAt: date(createdAt), epoch: epoch, status: status,
                audioPath: audioPath, audioBytes: audioBytes, transcriber: transcriber, summarizer: summarizer,
                diarization: try SQLStore.diarization(diarization))
        }
    }

    struct MemberRow: Decodable {
        var userId: String
        var canEdit: Int

        var record: MemberRecord { MemberRecord(userID: userId, canEdit: canEdit != 0) }
    }

    struct JobRow: Decodable {
        var meetingId: String
        var epoch: String
        var owner: String?
        var leaseUntil: Int64?
        var attempts: Int

        var record: JobRecord {
            JobRecord(
                meetingID: meetingId, epoch: epoch, owner: owner, leaseUntil: leaseUntil.map(date), attempts: attempts)
        }
    }

    /// An event of one meeting's log (the meeting is known to the query).
    struct EventRow: Decodable {
        var offset: Int
        var type: String
        var json: String

        func record(meetingID: String) -> StoredEvent {
            StoredEvent(meetingID: meetingID, offset: offset, type: type, json: json)
        }
    }

    struct SnapshotRow: Decodable {
        var meetingId: String
        var epoch: String
        var offset: Int
        var state: String

        var record: StateSnapshot { StateSnapshot(meetingID: meetingId, epoch: epoch, offset: offset, json: state) }
    }

    static func user(_ row: any SQLRow) throws -> UserRecord { try row.decoded(UserRow.self).record }
    static func refreshToken(_ row: any SQLRow) throws -> RefreshTokenRecord {
        try row.decoded(RefreshTokenRow.self).record
    }
    static func meeting(_ row: any SQLRow) throws -> MeetingRecord { try row.decoded(MeetingRow.self).record() }
    static func member(_ row: any SQLRow) throws -> MemberRecord { try row.decoded(MemberRow.self).record }
    static func job(_ row: any SQLRow) throws -> JobRecord { try row.decoded(JobRow.self).record }
    static func snapshot(_ row: any SQLRow) throws -> StateSnapshot { try row.decoded(SnapshotRow.self).record }
}

extension SQLRow {
    /// The row as `Row`, its snake-case columns read into camel-case properties.
    func decoded<Row: Decodable>(_ type: Row.Type) throws -> Row {
        try decode(model: Row.self, keyDecodingStrategy: .convertFromSnakeCase)
    }
}
