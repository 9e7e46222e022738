public import Foundation
public import ParleyPipeline

/// What the engine that processes meetings needs, whether it serves HTTP (`parley serve`) or
/// not (`parley worker`, `parley batch --database`): where the data is, how many jobs run at
/// once, how long leases last. Read from the `server.*` keys of the configuration.
public struct EngineSettings: Sendable {
    /// The folder of the SQLite database and of uploaded audio.
    public var dataDirectory = "./data"
    /// A postgres:// URL to share the data with other processes; nil: SQLite in `dataDirectory`.
    public var database: String?
    /// Messages queued per WebSocket connection before it is closed as too slow.
    public var sendQueue = 4096
    /// Whether this process processes meetings (false: it only stores uploads and queues them).
    public var processing = true
    /// Queued meetings processed at once.
    public var jobs = 2
    /// Seconds a job's lease lasts; a process that stops renewing loses its jobs after this.
    public var jobLease: TimeInterval = 30
    /// Seconds between looks at the job queue besides the database's announcements.
    public var jobPollInterval: TimeInterval = 2
    /// Seconds between comparisons of the open meetings with a shared database.
    public var sweepInterval: TimeInterval = 2
    /// Meetings whose state the read model keeps in memory (0: none; every read starts from the
    /// stored snapshot).
    public var stateCache = 32
    /// Events applied after which the read model stores a new snapshot of a meeting's state.
    public var snapshotEvery = 256
    /// What a meeting does with its owner's voice profiles.
    public var voiceRecognition = VoiceRecognition.name

    /// What a meeting does with its owner's voice profiles (`server.voice_recognition`).
    public enum VoiceRecognition: String, Sendable, CaseIterable {
        /// Confident matches name the speaker; weaker ones are suggestions (the default).
        case name
        /// Every match is only a suggestion: nobody is named until a person confirms.
        case suggest
        /// No matching (the meeting's voices are still kept, so a rename can teach a profile).
        case off
    }

    public init() {}

    public init(configuration: ParleyConfiguration) throws(SettingsError) {
        self.init()
        dataDirectory = configuration["server.data_dir"] ?? dataDirectory
        if let database = configuration["server.database"], !database.isEmpty, database != "sqlite" {
            guard database.hasPrefix("postgres://") || database.hasPrefix("postgresql://") else {
                throw SettingsError(
                    .invalid,
                    "setting 'server.database': give a postgres://user:password@host:port/database URL, or sqlite")
            }
            self.database = database
        }
        sendQueue = try Self.integer(configuration, "server.send_queue", default: sendQueue, range: 1...1_000_000)
        processing = try Self.flag(configuration, "server.processing", default: processing)
        jobs = try Self.integer(configuration, "server.jobs", default: jobs, range: 1...1024)
        jobLease = try Self.seconds(configuration, "server.job_lease", default: jobLease)
        jobPollInterval = try Self.seconds(configuration, "server.job_poll_interval", default: jobPollInterval)
        sweepInterval = try Self.seconds(configuration, "server.sweep_interval", default: sweepInterval)
        stateCache = try Self.integer(configuration, "server.state_cache", default: stateCache, range: 0...1_000_000)
        snapshotEvery = try Self.integer(
            configuration, "server.snapshot_every", default: snapshotEvery, range: 1...Int.max)
        if let text = configuration["server.voice_recognition"] {
            guard let mode = VoiceRecognition(rawValue: text.lowercased()) else {
                throw SettingsError(
                    .invalid, "setting 'server.voice_recognition': '\(text)' is not name, suggest or off")
            }
            voiceRecognition = mode
        }
    }

    public var databasePath: String { (dataDirectory as NSString).appendingPathComponent("parley.sqlite") }
    public var audioDirectory: String { (dataDirectory as NSString).appendingPathComponent("audio") }

    /// A true/false setting.
    public static func flag(_ configuration: ParleyConfiguration, _ key: String, default fallback: Bool)
        throws(SettingsError) -> Bool
    {
        guard let text = configuration[key] else { return fallback }
        guard let value = Bool(text.lowercased()) else {
            throw SettingsError(.invalid, "setting '\(key)': '\(text)' is not true or false")
        }
        return value
    }

    /// A whole-number setting within `range`.
    public static func integer(
        _ configuration: ParleyConfiguration, _ key: String, default fallback: Int, range: ClosedRange<Int>
    ) throws(SettingsError) -> Int {
        guard let text = configuration[key] else { return fallback }
        guard let value = Int(text), range.contains(value) else {
            throw SettingsError(
                .invalid,
                "setting '\(key)': '\(text)' is not a whole number in \(range.lowerBound)...\(range.upperBound)")
        }
        return value
    }

    /// A positive number.
    public static func number(_ configuration: ParleyConfiguration, _ key: String, default fallback: Double)
        throws(SettingsError) -> Double
    {
        guard let text = configuration[key] else { return fallback }
        guard let value = Double(text), value > 0 else {
            throw SettingsError(.invalid, "setting '\(key)': '\(text)' is not a positive number")
        }
        return value
    }

    /// A duration in seconds, from 0.05 to a day.
    static func seconds(_ configuration: ParleyConfiguration, _ key: String, default fallback: Double)
        throws(SettingsError) -> Double
    {
        let value = try number(configuration, key, default: fallback)
        guard (0.05...86400).contains(value) else {
            throw SettingsError(.invalid, "setting '\(key)': \(value) is not between 0.05 and 86400 seconds")
        }
        return value
    }
}

/// A setting that cannot be used, or one that is missing: what a person must fix before the
/// server, a worker or a queued batch can start.
public struct SettingsError: Error, Hashable, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable {
        private enum Value { case invalid, missing }
        private let value: Value
        /// A value that is not what the setting takes.
        public static let invalid = Code(value: .invalid)
        /// Something the command needs was not given (a database, an account).
        public static let missing = Code(value: .missing)
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
