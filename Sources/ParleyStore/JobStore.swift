public import Foundation

/// The job queue: meetings waiting to be processed, and leases on those being processed.
public protocol JobStore: Sendable {
    /// Queues processing for a meeting whose audio is complete (`owner` nil), or records that
    /// `owner` is processing it now under a lease until `leaseUntil`. Replaces an earlier job.
    func putJob(meetingID: String, epoch: String, owner: String?, leaseUntil: Date?, at date: Date) async throws
    /// Takes the oldest job that is queued or whose lease ran out, for `owner`, leased until
    /// `until`; nil when there is none. Processes claiming at once never get the same job.
    func claimJob(owner: String, until: Date, now: Date) async throws -> JobRecord?
    /// Takes the meeting's own job for `owner` if it is queued or its lease ran out (as
    /// `claimJob` would, attempts counted); nil when another process holds it or there is none.
    func claimJob(meetingID: String, owner: String, until: Date, now: Date) async throws -> JobRecord?
    /// Extends the lease; false when `owner` no longer holds the job (it was taken over).
    func renewJob(meetingID: String, owner: String, until: Date) async throws -> Bool
    /// Ends the job held by `owner`, setting the meeting's final status (nil: leaving it); false
    /// when `owner` no longer held it (nothing is changed then).
    func finishJob(meetingID: String, owner: String, status: MeetingStatus?) async throws -> Bool
    /// Gives the job back to the queue (a graceful stop), keeping its attempt count, so
    /// another process takes it over at once; false when `owner` no longer held it.
    func releaseJob(meetingID: String, owner: String) async throws -> Bool
    /// Ends every lease now (a single-process store starting: whoever held them is gone).
    func expireLeases() async throws
    /// The meeting's job, if it has one.
    func job(meetingID: String) async throws -> JobRecord?
}

/// Processing of one meeting: queued (no owner) or leased to a worker until `leaseUntil`.
public struct JobRecord: Sendable, Hashable {
    public var meetingID: String
    public var epoch: String
    public var owner: String?
    public var leaseUntil: Date?
    /// How many times it was claimed: more than one means an earlier worker stopped mid-job.
    public var attempts: Int

    public init(meetingID: String, epoch: String, owner: String?, leaseUntil: Date?, attempts: Int) {
        self.meetingID = meetingID
        self.epoch = epoch
        self.owner = owner
        self.leaseUntil = leaseUntil
        self.attempts = attempts
    }
}
