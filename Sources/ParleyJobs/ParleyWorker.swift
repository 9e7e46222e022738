public import Logging
public import ParleyPipeline
public import ParleyStore
import ServiceLifecycle
import UnixSignals

/// `parley worker`: processes meetings from the shared job queue, publishing their events
/// through the shared event log; serves no HTTP.
public struct ParleyWorker: Sendable {
    let engine: Engine
    let logger: Logger

    public static func build(
        settings: EngineSettings, logger: Logger,
        makePipeline: @escaping @Sendable (DiarizationRequest) async throws -> MeetingPipeline
    ) async throws -> ParleyWorker {
        guard settings.database != nil else {
            throw SettingsError(
                .missing,
                "a worker shares the queue through PostgreSQL: give --database postgres://user:password@host:port/db")
        }
        var settings = settings
        settings.processing = true
        return ParleyWorker(
            engine: try await Engine.open(settings: settings, logger: logger, makePipeline: makePipeline),
            logger: logger)
    }

    /// This worker's name in job leases.
    public var name: String { engine.processor.node }

    /// Runs until SIGTERM or SIGINT; running jobs are then given back to the queue.
    public func run() async throws {
        let group = ServiceGroup(
            configuration: .init(
                services: engine.services.map { .init(service: $0) } + [.init(service: engine.runner)],
                gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        try await engine.store.close()
    }
}
