public import Foundation
public import ParleyJobs
public import ParleyPipeline

/// The server's settings: `server.*` keys of the configuration (file, `PARLEY_SERVER_*`
/// environment, `--set`), with the named `parley serve` flags on top.
public struct ServerSettings: Sendable {
    /// What the engine that processes meetings uses (data folder, database, jobs, leases, the
    /// read model): shared with `parley worker` and a queued batch.
    public var engine = EngineSettings()
    public var host = "127.0.0.1"
    public var port = 8080
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
    /// Largest message a client may send.
    public var maxMessageBytes = 64 * 1024
    /// Messages a watching client may send a second, and in a burst (`MessageBudget`).
    public var clientMessageRate = 20.0
    public var clientMessageBurst = 40
    /// permessage-deflate on the watchers' sockets (`server.websocket_compression`,
    /// `server.compression_window_bits`, `server.compression_min_bytes`).
    public var compressWebSockets = true
    public var compressionWindowBits = 15
    public var compressionMinimumBytes = 256
    var compression: WebSocketDeflate.Settings {
        .init(enabled: compressWebSockets, windowBits: compressionWindowBits, minimumBytes: compressionMinimumBytes)
    }
    /// A live recording that hears nothing from any client (no audio, no ping) for this many
    /// seconds is finished with what arrived (the page was closed without Stop).
    public var liveIdleTimeout: TimeInterval = 120
    /// Serves `/api/dev/*` (publishing test events) and nothing else extra. Never on by default.
    public var development = false
    /// The diarizers a meeting may ask for by name (`POST /api/meetings` `diarizer`): `auto`,
    /// `classic` and the backends this build has (the `parley` executable fills them in).
    public var diarizers = ["auto", "classic"]
    /// PEM files of the certificate (with its chain) and its private key: set both to serve
    /// HTTPS and WSS on the port; neither, plain HTTP (TLS at a proxy, or loopback).
    public var tlsCertificate: String?
    public var tlsKey: String?
    /// Webhooks may post to loopback and private networks (`server.webhooks_allow_private`):
    /// off, so a webhook cannot probe the server's own network.
    public var webhooksAllowPrivate = false
    /// Seconds before a failed delivery's first retry (doubling, at most an hour apart), and how
    /// long after it was queued a delivery is given up (`server.webhook_retry_base`,
    /// `server.webhook_retry_for`).
    public var webhookRetryBase: TimeInterval = 10
    public var webhookRetryFor: TimeInterval = 24 * 3600
    var webhooks: WebhookDeliverer.Settings {
        .init(allowPrivate: webhooksAllowPrivate, retryBase: webhookRetryBase, retryFor: webhookRetryFor)
    }

    public init() {}

    public init(configuration: ParleyConfiguration) throws(SettingsError) {
        self.init()
        engine = try EngineSettings(configuration: configuration)
        host = configuration["server.host"] ?? host
        port = try EngineSettings.integer(configuration, "server.port", default: port, range: 0...65535)
        jwtSecret = configuration["server.jwt_secret"]
        accessTokenLifetime = try EngineSettings.number(
            configuration, "server.access_token_ttl", default: accessTokenLifetime)
        refreshTokenLifetime = try EngineSettings.number(
            configuration, "server.refresh_token_ttl", default: refreshTokenLifetime)
        bcryptCost = try EngineSettings.integer(configuration, "server.bcrypt_cost", default: bcryptCost, range: 4...31)
        maxUploadBytes = Int64(
            try EngineSettings.integer(
                configuration, "server.max_upload_bytes", default: Int(maxUploadBytes), range: 1...Int.max))
        allowedOrigins = (configuration["server.allowed_origins"] ?? "")
            .split(whereSeparator: { $0 == " " || $0 == "," }).map(String.init)
        maxConnectionsPerUser = try EngineSettings.integer(
            configuration, "server.max_connections_per_user", default: maxConnectionsPerUser, range: 1...1_000_000)
        connectAttemptsPerUser = try EngineSettings.integer(
            configuration, "server.connect_attempts_per_user", default: connectAttemptsPerUser, range: 1...10_000_000)
        connectAttemptsPerAddress = try EngineSettings.integer(
            configuration, "server.connect_attempts_per_address", default: connectAttemptsPerAddress,
            range: 1...10_000_000)
        connectWindow = try EngineSettings.number(configuration, "server.connect_window", default: connectWindow)
        keepaliveInterval = try EngineSettings.number(
            configuration, "server.keepalive_interval", default: keepaliveInterval)
        maxMessageBytes = try EngineSettings.integer(
            configuration, "server.max_message_bytes", default: maxMessageBytes, range: 128...16 << 20)
        clientMessageRate = try EngineSettings.number(
            configuration, "server.client_message_rate", default: clientMessageRate)
        clientMessageBurst = try EngineSettings.integer(
            configuration, "server.client_message_burst", default: clientMessageBurst, range: 1...100_000)
        compressWebSockets = try EngineSettings.flag(
            configuration, "server.websocket_compression", default: compressWebSockets)
        compressionWindowBits = try EngineSettings.integer(
            configuration, "server.compression_window_bits", default: compressionWindowBits, range: 9...15)
        compressionMinimumBytes = try EngineSettings.integer(
            configuration, "server.compression_min_bytes", default: compressionMinimumBytes, range: 0...16 << 20)
        liveIdleTimeout = try EngineSettings.number(
            configuration, "server.live_idle_timeout", default: liveIdleTimeout)
        development = try EngineSettings.flag(configuration, "server.development", default: development)
        webhooksAllowPrivate = try EngineSettings.flag(
            configuration, "server.webhooks_allow_private", default: webhooksAllowPrivate)
        webhookRetryBase = try EngineSettings.number(
            configuration, "server.webhook_retry_base", default: webhookRetryBase)
        webhookRetryFor = try EngineSettings.number(configuration, "server.webhook_retry_for", default: webhookRetryFor)
        tlsCertificate = configuration["server.tls_cert"].flatMap { $0.isEmpty ? nil : $0 }
        tlsKey = configuration["server.tls_key"].flatMap { $0.isEmpty ? nil : $0 }
        if (tlsCertificate == nil) != (tlsKey == nil) {
            throw SettingsError(
                .invalid, "TLS needs both server.tls_cert and server.tls_key (--tls-cert and --tls-key), not one")
        }
    }

    /// `https` when the server serves TLS itself.
    public var scheme: String { tlsCertificate == nil ? "http" : "https" }

}
