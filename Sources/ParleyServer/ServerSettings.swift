public import Foundation
public import ParleyPipeline

/// The server's settings: `server.*` keys of the configuration (file, `PARLEY_SERVER_*`
/// environment, `--set`), with the named `parley serve` flags on top.
public struct ServerSettings: Sendable {
    public var host = "127.0.0.1"
    public var port = 8080
    /// The SQLite database, the uploaded audio and the generated JWT secret live here.
    public var dataDirectory = "./data"
    /// Where meetings, users and events are kept: nil for the embedded SQLite file in the data
    /// directory, or a `postgres://user:password@host:port/database` URL.
    public var database: String?
    /// HS256 secret; generated and stored in `<data>/jwt-secret` on first start when not set.
    public var jwtSecret: String?
    public var accessTokenLifetime: TimeInterval = 15 * 60
    public var refreshTokenLifetime: TimeInterval = 30 * 24 * 3600
    public var bcryptCost = 12
    public var maxUploadBytes: Int64 = 2 << 30
    /// Origins allowed to open WebSockets besides the server's own (`http://host:port`).
    /// `*` allows any. Clients that send no Origin (not browsers) are not affected.
    public var allowedOrigins: [String] = []
    public var maxConnectionsPerUser = 64
    /// Connection attempts allowed per user and per address in `connectWindow` seconds.
    public var connectAttemptsPerUser = 120
    public var connectAttemptsPerAddress = 240
    public var connectWindow: TimeInterval = 10
    /// Seconds between keepalives; a client silent for two is closed.
    public var keepaliveInterval: TimeInterval = 30
    /// Messages queued per WebSocket before the client is closed as too slow (4008).
    public var sendQueue = 4096
    /// Largest message a client may send.
    public var maxMessageBytes = 64 * 1024
    /// Whether this node processes meetings: its own uploads while they arrive, and jobs from
    /// the queue. Off (`--no-processing`), it stores uploads and queues them for workers.
    public var processing = true
    /// Queued jobs this process runs at once (its own uploads are not counted).
    public var jobs = 2
    /// Seconds a job's lease lasts; renewed every third of it. A process that stops answering
    /// loses its meetings to another after this long.
    public var jobLease: TimeInterval = 30
    /// Seconds between looks at the job queue besides the database's announcements.
    public var jobPollInterval: TimeInterval = 2
    /// Seconds between comparisons of the open meetings with the shared database (the longest a
    /// lost notification delays an event).
    public var sweepInterval: TimeInterval = 2
    /// Serves `/api/dev/*` (publishing test events) and nothing else extra. Never on by default.
    public var development = false

    public init() {}

    public init(configuration: ParleyConfiguration) throws {
        self.init()
        host = configuration["server.host"] ?? host
        port = try Self.integer(configuration, "server.port", default: port, range: 0...65535)
        dataDirectory = configuration["server.data_dir"] ?? dataDirectory
        if let database = configuration["server.database"], !database.isEmpty, database != "sqlite" {
            guard database.hasPrefix("postgres://") || database.hasPrefix("postgresql://") else {
                throw PipelineError(
                    .badConfiguration,
                    "setting 'server.database': give a postgres://user:password@host:port/database URL, or sqlite")
            }
            self.database = database
        }
        jwtSecret = configuration["server.jwt_secret"]
        accessTokenLifetime = try configuration.double("server.access_token_ttl", default: accessTokenLifetime)
        refreshTokenLifetime = try configuration.double("server.refresh_token_ttl", default: refreshTokenLifetime)
        bcryptCost = try Self.integer(configuration, "server.bcrypt_cost", default: bcryptCost, range: 4...31)
        maxUploadBytes = Int64(
            try Self.integer(configuration, "server.max_upload_bytes", default: Int(maxUploadBytes), range: 1...Int.max)
        )
        allowedOrigins = (configuration["server.allowed_origins"] ?? "")
            .split(whereSeparator: { $0 == " " || $0 == "," }).map(String.init)
        maxConnectionsPerUser = try Self.integer(
            configuration, "server.max_connections_per_user", default: maxConnectionsPerUser, range: 1...1_000_000)
        connectAttemptsPerUser = try Self.integer(
            configuration, "server.connect_attempts_per_user", default: connectAttemptsPerUser, range: 1...10_000_000)
        connectAttemptsPerAddress = try Self.integer(
            configuration, "server.connect_attempts_per_address", default: connectAttemptsPerAddress,
            range: 1...10_000_000)
        connectWindow = try configuration.double("server.connect_window", default: connectWindow)
        keepaliveInterval = try configuration.double("server.keepalive_interval", default: keepaliveInterval)
        sendQueue = try Self.integer(configuration, "server.send_queue", default: sendQueue, range: 1...1_000_000)
        maxMessageBytes = try Self.integer(
            configuration, "server.max_message_bytes", default: maxMessageBytes, range: 128...16 << 20)
        development = try Self.flag(configuration, "server.development", default: development)
        processing = try Self.flag(configuration, "server.processing", default: processing)
        jobs = try Self.integer(configuration, "server.jobs", default: jobs, range: 1...1024)
        jobLease = try configuration.double("server.job_lease", default: jobLease)
        jobPollInterval = try configuration.double("server.job_poll_interval", default: jobPollInterval)
        sweepInterval = try configuration.double("server.sweep_interval", default: sweepInterval)
        for (key, value) in [
            ("server.job_lease", jobLease), ("server.job_poll_interval", jobPollInterval),
            ("server.sweep_interval", sweepInterval),
        ] where !(0.05...86400).contains(value) {
            throw PipelineError(.badConfiguration, "setting '\(key)': \(value) is not between 0.05 and 86400 seconds")
        }
    }

    var databasePath: String { (dataDirectory as NSString).appendingPathComponent("parley.sqlite") }
    var audioDirectory: String { (dataDirectory as NSString).appendingPathComponent("audio") }

    private static func flag(_ configuration: ParleyConfiguration, _ key: String, default fallback: Bool) throws
        -> Bool
    {
        guard let text = configuration[key] else { return fallback }
        guard let value = Bool(text.lowercased()) else {
            throw PipelineError(.badConfiguration, "setting '\(key)': '\(text)' is not true or false")
        }
        return value
    }

    private static func integer(
        _ configuration: ParleyConfiguration, _ key: String, default fallback: Int, range: ClosedRange<Int>
    ) throws -> Int {
        guard let text = configuration[key] else { return fallback }
        guard let value = Int(text), range.contains(value) else {
            throw PipelineError(
                .badConfiguration,
                "setting '\(key)': '\(text)' is not a whole number in \(range.lowerBound)...\(range.upperBound)")
        }
        return value
    }
}
