public import Foundation
import SQLKit

/// The job queue and its leases (`JobStore`).
extension SQLStore: JobStore {
    public func putJob(meetingID: String, epoch: String, owner: String?, leaseUntil: Date?, at date: Date)
        async throws
    {
        try await database.raw(
            """
            INSERT INTO jobs (meeting_id, epoch, owner, lease_until, attempts, created_at)
            VALUES (\(bind: meetingID), \(bind: epoch), \(bind: owner), \(bind: leaseUntil.map(Self.milliseconds)),
                    \(bind: owner == nil ? 0 : 1), \(bind: Self.milliseconds(date)))
            ON CONFLICT (meeting_id) DO UPDATE SET epoch = excluded.epoch, owner = excluded.owner,
                lease_until = excluded.lease_until, attempts = excluded.attempts, created_at = excluded.created_at
            """
        ).run()
        if owner == nil { try await notify("j", on: database) }
    }

    public func claimJob(owner: String, until: Date, now: Date) async throws -> JobRecord? {
        // One statement: the subquery picks the row and the UPDATE takes it. PostgreSQL locks
        // the row it picks and skips rows others hold; SQLite has one writer at a time.
        let skipLocked = isPostgres ? " FOR UPDATE SKIP LOCKED" : ""
        return try await database.raw(
            """
            UPDATE jobs SET owner = \(bind: owner), lease_until = \(bind: Self.milliseconds(until)),
                attempts = attempts + 1
            WHERE meeting_id = (
                SELECT meeting_id FROM jobs
                WHERE owner IS NULL OR lease_until < \(bind: Self.milliseconds(now))
                ORDER BY created_at, meeting_id LIMIT 1\(unsafeRaw: skipLocked))
            RETURNING meeting_id, epoch, owner, lease_until, attempts
            """
        ).first().map(Self.job)
    }

    public func claimJob(meetingID: String, owner: String, until: Date, now: Date) async throws -> JobRecord? {
        // PostgreSQL re-checks the condition on a row another transaction just updated, so two
        // processes claiming at once never both get it.
        try await database.raw(
            """
            UPDATE jobs SET owner = \(bind: owner), lease_until = \(bind: Self.milliseconds(until)),
                attempts = attempts + 1
            WHERE meeting_id = \(bind: meetingID)
                AND (owner IS NULL OR lease_until < \(bind: Self.milliseconds(now)))
            RETURNING meeting_id, epoch, owner, lease_until, attempts
            """
        ).first().map(Self.job)
    }

    public func renewJob(meetingID: String, owner: String, until: Date) async throws -> Bool {
        try await database.raw(
            """
            UPDATE jobs SET lease_until = \(bind: Self.milliseconds(until))
            WHERE meeting_id = \(bind: meetingID) AND owner = \(bind: owner) RETURNING meeting_id
            """
        ).first() != nil
    }

    public func finishJob(meetingID: String, owner: String, status: MeetingStatus?) async throws -> Bool {
        try await transactor.transaction { database in
            let held =
                try await database.raw(
                    """
                    DELETE FROM jobs WHERE meeting_id = \(bind: meetingID) AND owner = \(bind: owner)
                    RETURNING meeting_id
                    """
                ).first() != nil
            if held, let status {
                try await database.raw(
                    "UPDATE meetings SET status = \(bind: status.rawValue) WHERE id = \(bind: meetingID)"
                ).run()
            }
            return held
        }
    }

    public func releaseJob(meetingID: String, owner: String) async throws -> Bool {
        let released =
            try await database.raw(
                """
                UPDATE jobs SET lease_until = 0 WHERE meeting_id = \(bind: meetingID) AND owner = \(bind: owner)
                RETURNING meeting_id
                """
            ).first() != nil
        if released { try await notify("j", on: database) }
        return released
    }

    public func expireLeases() async throws {
        try await database.raw("UPDATE jobs SET lease_until = 0 WHERE owner IS NOT NULL").run()
    }

    public func job(meetingID: String) async throws -> JobRecord? {
        try await database.raw(
            "SELECT meeting_id, epoch, owner, lease_until, attempts FROM jobs WHERE meeting_id = \(bind: meetingID)"
        ).first().map(Self.job)
    }
}
