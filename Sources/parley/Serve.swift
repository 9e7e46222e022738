import ArgumentParser
import Foundation
import Logging
import ParleyJobs
import ParleyPipeline
import ParleyPlugins
import ParleyServer

/// `parley serve`: the REST API, the WebSocket hub and the pipeline in one process, on an
/// embedded SQLite database in the data directory, or on PostgreSQL with `--database`.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the API and live WebSocket events, and process uploaded meetings.",
        discussion: """
            Settings come from the configuration file (server.host, server.port, server.data_dir, \
            server.max_upload_bytes, ... see Docs/server.md), then PARLEY_SERVER_* variables, then these flags.
            """)

    @Option(help: "Address to listen on (default 127.0.0.1).")
    var host: String?

    @Option(help: "Port to listen on (default 8080; 0 picks a free one).")
    var port: Int?

    @Option(help: "Folder for the database, uploaded audio and the token secret (default ./data).")
    var dataDir: String?

    @Option(help: "A postgres://user:password@host:port/database URL: keep the data there (default: SQLite).")
    var database: String?

    @Option(help: "PEM certificate (with its chain): serve HTTPS and WSS with --tls-key (default: plain HTTP).")
    var tlsCert: String?

    @Option(help: "PEM private key of --tls-cert.")
    var tlsKey: String?

    @Flag(help: "Serve /api/dev (synthetic events for load tests). Never in production.")
    var development = false

    @Flag(help: "Process nothing here: keep uploads and queue them for `parley worker` processes.")
    var noProcessing = false

    @OptionGroup var jobs: JobFlags

    @OptionGroup var pipeline: PipelineFlags

    func run() async throws {
        var configuration = try pipeline.configuration()
        if let host { configuration.set("server.host", host) }
        if let port { configuration.set("server.port", String(port)) }
        if let dataDir { configuration.set("server.data_dir", dataDir) }
        if let database { configuration.set("server.database", database) }
        if let tlsCert { configuration.set("server.tls_cert", tlsCert) }
        if let tlsKey { configuration.set("server.tls_key", tlsKey) }
        if development { configuration.set("server.development", "true") }
        if noProcessing { configuration.set("server.processing", "false") }
        jobs.apply(to: &configuration)
        let settings = try ServerSettings.parse(configuration)
        let logger = Logger.parley()
        let frozen = configuration
        let server: ParleyServer
        do {
            server = try await ParleyServer.build(
                settings: settings, logger: logger,
                makePipeline: { try await PipelineFlags.pipeline(frozen, request: $0) },
                onServerRunning: { port in
                    printError(
                        "parley: serving on \(settings.scheme)://\(settings.host):\(port) (data in \(settings.engine.dataDirectory))"
                    )
                })
        } catch {
            printError("parley: cannot start: \(error)")
            throw ExitCode.failure
        }
        do {
            try await server.run()
        } catch {
            printError("parley: serve stopped: \(error)")
            throw ExitCode.failure
        }
    }
}

/// `parley worker`: processes meetings from the job queue that `parley serve` nodes share
/// through PostgreSQL, and publishes their events through the shared event log.
struct Worker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Process queued meetings from a shared PostgreSQL database (no HTTP).",
        discussion: """
            Runs beside `parley serve` nodes that share the same --database. Uploaded audio must be readable \
            at the path the receiving node stored it (a shared --data-dir). SIGTERM gives running jobs back \
            to the queue; a worker killed mid-job loses its jobs to another process once their lease runs out.
            """)

    @Option(help: "The postgres://user:password@host:port/database URL the nodes share (required).")
    var database: String?

    @Option(help: "The data folder the nodes share (uploaded audio; default ./data).")
    var dataDir: String?

    @OptionGroup var jobs: JobFlags

    @OptionGroup var pipeline: PipelineFlags

    func run() async throws {
        var configuration = try pipeline.configuration()
        if let database { configuration.set("server.database", database) }
        if let dataDir { configuration.set("server.data_dir", dataDir) }
        jobs.apply(to: &configuration)
        let settings = try EngineSettings.parse(configuration)
        let frozen = configuration
        let worker: ParleyWorker
        do {
            worker = try await ParleyWorker.build(
                settings: settings, logger: .parley(),
                makePipeline: { try await PipelineFlags.pipeline(frozen, request: $0) })
        } catch {
            printError("parley: cannot start the worker: \(error)")
            throw ExitCode.failure
        }
        printError("parley: worker \(worker.name) processing queued meetings (\(settings.jobs) at a time)")
        do {
            try await worker.run()
        } catch {
            printError("parley: worker stopped: \(error)")
            throw ExitCode.failure
        }
    }
}

/// How a process takes part in the job queue.
struct JobFlags: ParsableArguments {
    @Option(help: "Queued meetings processed at once (default 2).")
    var jobs: Int?

    @Option(help: "Seconds a job's lease lasts; a process that stops answering loses its jobs after this (default 30).")
    var jobLease: Double?

    func apply(to configuration: inout ParleyConfiguration) {
        if let jobs { configuration.set("server.jobs", String(jobs)) }
        if let jobLease { configuration.set("server.job_lease", String(jobLease)) }
    }
}

extension ServerSettings {
    static func parse(_ configuration: ParleyConfiguration) throws -> ServerSettings {
        do {
            var settings = try ServerSettings(configuration: configuration)
            settings.diarizers = DiarizerChoice.reserved + PluginRegistry.builtIn.diarizers.keys.sorted()
            return settings
        } catch {
            throw ValidationError(error.message)
        }
    }
}

extension EngineSettings {
    static func parse(_ configuration: ParleyConfiguration) throws -> EngineSettings {
        do {
            return try EngineSettings(configuration: configuration)
        } catch {
            throw ValidationError(error.message)
        }
    }
}

extension Logger {
    /// Logs to standard error at PARLEY_LOG_LEVEL (default info).
    static func parley() -> Logger {
        var logger = Logger(label: "parley") { StreamLogHandler.standardError(label: $0) }
        logger.logLevel =
            ProcessInfo.processInfo.environment["PARLEY_LOG_LEVEL"].flatMap { Logger.Level(rawValue: $0) } ?? .info
        return logger
    }
}
