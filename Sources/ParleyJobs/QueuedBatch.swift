public import Foundation
public import Logging
public import ParleyEvents
public import ParleyPipeline
public import ParleyStore
import ServiceLifecycle

/// `parley batch --database`: each file of a folder becomes a meeting of `owner` queued in the
/// shared job queue, so every `parley worker` and processing node (and this process, with
/// `jobs` above 0) takes a share; the batch waits for each and reads its results from the log.
/// The meetings stay: their owner sees them in the web app.
public final class QueuedBatch: Sendable {
    let engine: Engine
    let owner: UserRecord
    let logger: Logger

    /// Opens the shared store; `owner` must be an existing account. `settings.jobs` 0: this
    /// process only queues and waits.
    public static func open(
        settings: EngineSettings, owner username: String, logger: Logger,
        makePipeline: @escaping @Sendable (DiarizationRequest) async throws -> MeetingPipeline
    ) async throws -> QueuedBatch {
        guard settings.database != nil else {
            throw SettingsError(
                .missing, "a queued batch shares the queue through PostgreSQL: give --database postgres://...")
        }
        var settings = settings
        settings.processing = settings.jobs > 0
        let engine = try await Engine.open(settings: settings, logger: logger, makePipeline: makePipeline)
        guard let owner = try await engine.store.user(named: username) else {
            try await engine.store.close()
            throw SettingsError(.missing, "no account '\(username)' to own the batch's meetings")
        }
        return QueuedBatch(engine: engine, owner: owner, logger: logger)
    }

    init(engine: Engine, owner: UserRecord, logger: Logger) {
        self.engine = engine
        self.owner = owner
        self.logger = logger
    }

    /// Runs this process's share of the work (the job runner, the queue, the store's
    /// notifications) until the task is cancelled.
    public func work() async {
        await withDiscardingTaskGroup { group in
            group.addTask { try? await self.engine.runner.run() }
            for service in engine.services { group.addTask { try? await service.run() } }
        }
    }

    /// Copies the recording into the shared audio folder and queues a meeting for it; returns
    /// the meeting's id.
    public func submit(path: String, title: String) async throws -> String {
        let id = Identifiers.meeting()
        let folder = engine.processor.settings.audioDirectory
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let stored = (folder as NSString).appendingPathComponent("\(id).audio")
        try FileManager.default.copyItem(atPath: path, toPath: stored)
        let bytes = (try FileManager.default.attributesOfItem(atPath: stored)[.size] as? NSNumber)?.int64Value ?? 0
        let meeting = MeetingRecord(
            id: id, title: title, ownerID: owner.id, createdAt: Date(), epoch: Identifiers.epoch(),
            status: .processing, audioPath: stored, audioBytes: bytes)
        try await engine.store.createMeeting(meeting)
        try await engine.store.putJob(meetingID: id, epoch: meeting.epoch, owner: nil, leaseUntil: nil, at: Date())
        return id
    }

    /// The meeting's state once it completed or failed; nil while it is processing.
    public func outcome(of meetingID: String) async throws -> MeetingState? {
        guard let meeting = try await engine.store.meeting(id: meetingID) else {
            throw StoreError(code: .notFound, message: "the meeting \(meetingID) was deleted while the batch waited")
        }
        guard meeting.status == .completed || meeting.status == .failed else { return nil }
        return try await engine.states.state(of: meeting)
    }

    public func close() async throws {
        try await engine.store.close()
    }
}
