/// Everything the server keeps, by role: accounts, meetings, the event log, jobs, presence,
/// snapshots, voice profiles and the search index. The hub and the routes talk to these protocols only, so a second database
/// (PostgreSQL for scale-out) is a second conformance, not a change to them.
public protocol Store: AccountStore, MeetingStore, EventLogStore, PresenceStore, JobStore, SnapshotStore, VoiceStore,
    SearchStore, WebhookStore, UserFeedStore
{
    /// Brings the schema up to date (each numbered migration once, in order). Safe to call on
    /// every start.
    func migrate() async throws
    /// Whether other processes may share this database (PostgreSQL), so presence and the like
    /// are shared through it.
    var isShared: Bool { get }
    /// Whether an error may pass by itself (the database restarting, a connection lost), so
    /// the write is worth retrying.
    func isTransient(_ error: any Error) -> Bool
    /// Words for a log line about the error (the driver's details, not the query's values).
    func describe(_ error: any Error) -> String

    /// Closes connections. The store is unusable afterwards.
    func close() async throws
}

/// The store's one error type.
public struct StoreError: Error, Hashable, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable {
        private enum Value { case conflict, notFound, unavailable, stale, unreadable }
        private let value: Value
        public static let conflict = Code(value: .conflict)
        /// A conditional write found the data moved on (see ``AppendCondition``).
        public static let stale = Code(value: .stale)
        public static let notFound = Code(value: .notFound)
        public static let unavailable = Code(value: .unavailable)
        /// A stored value this version cannot read (written by a newer one, or damaged).
        public static let unreadable = Code(value: .unreadable)
    }

    public let code: Code
    public let message: String

    public init(code: Code, message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }

    public static func conflict(_ message: String) -> Self { .init(code: .conflict, message: message) }
    public static func unavailable(_ message: String) -> Self { .init(code: .unavailable, message: message) }
    public static func stale(_ message: String) -> Self { .init(code: .stale, message: message) }
    public static func unreadable(_ message: String) -> Self { .init(code: .unreadable, message: message) }
}
