public import Foundation
public import Logging
public import ParleyHub
public import ParleyPipeline
public import ParleyStore
public import ServiceLifecycle

/// What `parley serve`, `parley worker` and a queued batch share: the store, the hub, the job
/// runner, the processor that runs meetings under a lease, and (when this process processes
/// meetings) the job queue.
public struct Engine: Sendable {
    public let store: any Store
    public let hub: Hub
    public let runner: JobRunner
    public let processor: MeetingProcessor
    /// The meetings' states (the read model).
    public let states: MeetingStates
    /// Nil when this process does not process meetings.
    public let queue: JobQueue?
    /// Keeps the search index following what this process appends.
    public let indexer: SearchIndexer
    /// Queues webhook deliveries for what this process appends.
    public let webhooks: WebhookTrigger
    /// Tells users what changed in the meetings they see (`/ws/user`).
    public let notifier: UserNotifier
    /// The hub, the indexer and the queue, to run beside the runner (the hub first: a service group stops
    /// its services in reverse order, so the hub outlives what publishes through it).
    public let services: [any Service]

    /// The data folder holds password and token hashes, recordings and transcripts: it is made
    /// (or tightened to) 0700, and this process creates every file 0600 and folder 0700
    /// (umask 077: the database, its journal, the audio, scratch files).
    static func keepPrivate(_ folder: String, logger: Logger) throws {
        umask(0o077)
        let manager = FileManager.default
        if !manager.fileExists(atPath: folder) {
            try manager.createDirectory(
                atPath: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            return
        }
        let mode = ((try? manager.attributesOfItem(atPath: folder))?[.posixPermissions] as? NSNumber)?.intValue ?? 0
        if mode & 0o077 != 0 {
            try manager.setAttributes([.posixPermissions: 0o700], ofItemAtPath: folder)
            logger.notice(
                "the data folder was readable by others; it is now for this user only (0700)",
                metadata: ["folder": "\(folder)", "was": "\(String(mode, radix: 8))"])
        }
    }

    /// Opens the store (creating the data directory; migrating it) and builds the rest on it.
    public static func open(
        settings: EngineSettings, logger: Logger,
        makePipeline: @escaping @Sendable (DiarizationRequest) async throws -> MeetingPipeline
    ) async throws -> Engine {
        try Self.keepPrivate(settings.dataDirectory, logger: logger)
        let store =
            if let url = settings.database {
                try await SQLStore.postgres(url: url, logger: logger)
            } else {
                try await SQLStore.sqlite(path: settings.databasePath, logger: logger)
            }
        var hubConfiguration = HubConfiguration(
            sendQueue: settings.sendQueue, sweepInterval: .milliseconds(Int(settings.sweepInterval * 1000)))
        hubConfiguration.enforcesAccess = true
        let hub = Hub(store: store, configuration: hubConfiguration, logger: logger)
        let runner = JobRunner(logger: logger)
        let states = MeetingStates(store: store, capacity: settings.stateCache, snapshotEvery: settings.snapshotEvery)
        let processor = MeetingProcessor(
            store: store, hub: hub, runner: runner, settings: settings, states: states, makePipeline: makePipeline,
            logger: logger)
        let queue = settings.processing ? JobQueue(processor: processor, logger: logger) : nil
        let indexer = SearchIndexer(hub: hub, states: states, logger: logger)
        let webhooks = WebhookTrigger(hub: hub, logger: logger)
        let notifier = UserNotifier(hub: hub, logger: logger)
        var services: [any Service] = [hub, indexer, notifier]
        if let queue { services.append(queue) }
        return Engine(
            store: store, hub: hub, runner: runner, processor: processor,
            states: states, queue: queue, indexer: indexer, webhooks: webhooks, notifier: notifier,
            services: services)
    }
}
