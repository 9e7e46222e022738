import ArgumentParser
import Foundation
import Logging
import ParleyPipeline
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

    @Flag(help: "Serve /api/dev (synthetic events for load tests). Never in production.")
    var development = false

    @OptionGroup var pipeline: PipelineFlags

    func run() async throws {
        var configuration = try pipeline.configuration()
        if let host { configuration.set("server.host", host) }
        if let port { configuration.set("server.port", String(port)) }
        if let dataDir { configuration.set("server.data_dir", dataDir) }
        if let database { configuration.set("server.database", database) }
        if development { configuration.set("server.development", "true") }
        let settings: ServerSettings
        do {
            settings = try ServerSettings(configuration: configuration)
        } catch let error as PipelineError {
            throw ValidationError(error.message)
        }
        var logger = Logger(label: "parley") { StreamLogHandler.standardError(label: $0) }
        logger.logLevel =
            ProcessInfo.processInfo.environment["PARLEY_LOG_LEVEL"].flatMap { Logger.Level(rawValue: $0) } ?? .info
        let frozen = configuration
        let server: ParleyServer
        do {
            server = try await ParleyServer.build(
                settings: settings, logger: logger,
                makePipeline: { try await PipelineFlags.pipeline(frozen) },
                onServerRunning: { port in
                    printError("parley: serving on http://\(settings.host):\(port) (data in \(settings.dataDirectory))")
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
