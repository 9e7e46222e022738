public import Foundation
public import Logging
import ParleyAudio
public import ParleyEvents
public import ParleyHub
public import ParleyPipeline
import ParleyPluginAPI
public import ParleyStore
import Synchronization

/// Runs meetings: a pipeline on the meeting's channel under this process's job lease (kept
/// alive while it runs), a job claimed from the queue (a takeover says so first), a failure
/// recorded as events, and what a start finds left over. Knows nothing of HTTP: the server's
/// uploads, `parley worker` and a queued batch all run meetings through it.
public final class MeetingProcessor: Sendable {
    public let store: any Store
    public let hub: Hub
    public let runner: JobRunner
    public let settings: EngineSettings
    /// The read model, for the names people gave a meeting's speakers.
    let states: MeetingStates
    let metrics = JobMetrics()
    let makePipeline: @Sendable (DiarizationRequest) async throws -> MeetingPipeline
    let logger: Logger
    private let liveTakeover = Mutex<(@Sendable (MeetingRecord, Int) async -> Void)?>(nil)

    /// This process's name in job leases.
    public var node: String { hub.node }

    public init(
        store: any Store, hub: Hub, runner: JobRunner, settings: EngineSettings, states: MeetingStates,
        makePipeline: @escaping @Sendable (DiarizationRequest) async throws -> MeetingPipeline, logger: Logger
    ) {
        self.store = store
        self.hub = hub
        self.runner = runner
        self.settings = settings
        self.states = states
        self.makePipeline = makePipeline
        self.logger = logger
    }

    /// A pipeline ready to run, made the way every job of this process makes it, with what the
    /// meeting's creator asked of its diarization.
    public func pipeline(for request: DiarizationRequest = .init()) async throws -> MeetingPipeline {
        try await makePipeline(request)
    }

    /// Runs the pipeline on the meeting's channel under this node's job lease (kept alive
    /// while it runs) and records how it ended. A lost lease stops it without a word: the
    /// process that took the meeting over speaks for it now.
    @discardableResult
    public func process(_ meeting: MeetingRecord, source: AudioSource, pipeline ready: MeetingPipeline? = nil) async
        -> PipelineFailure?
    {
        var meetingLogger = self.logger
        meetingLogger[metadataKey: "meeting.id"] = "\(meeting.id)"
        let logger = meetingLogger
        let lost = Completion<Void>()
        return await withTaskGroup(of: PipelineFailure?.self) { group in
            group.addTask {
                if await keepLease(
                    meetingID: meeting.id, owner: self.node, lease: self.settings.jobLease, store: self.store,
                    logger: logger)
                {
                    lost.complete(())
                }
                return nil
            }
            group.addTask {
                await self.runPipeline(meeting, source: source, pipeline: ready, lost: lost, logger: logger)
            }
            let first = await group.next() ?? nil
            if lost.isCompleted {
                group.cancelAll()  // the lease went first: stop the pipeline
                await group.waitForAll()
                return PipelineFailure(
                    stage: .upload, code: "taken_over", message: "another process took the meeting over")
            }
            group.cancelAll()  // the pipeline ended: stop renewing
            return first
        }
    }

    private func runPipeline(
        _ meeting: MeetingRecord, source: AudioSource, pipeline ready: MeetingPipeline?, lost: Completion<Void>,
        logger: Logger
    ) async -> PipelineFailure? {
        do {
            let pipeline: MeetingPipeline
            if let ready { pipeline = ready } else { pipeline = try await makePipeline(meeting.diarization) }
            return try await hub.withChannel(meetingID: meeting.id, epoch: meeting.epoch) { channel in
                let sink = JobSink(channel: channel, lease: node, metrics: metrics)
                logger.info("processing started")
                let report = await pipeline.run(
                    source, sink: sink, logger: logger,
                    voices: OwnerVoices(
                        store: store, meeting: meeting, mode: settings.voiceRecognition, states: states))
                if Task.isCancelled && (runner.isStopping || lost.isCompleted) {
                    if runner.isStopping {
                        // Given back at once, so another process (or this one's next start) resumes it.
                        _ = try? await store.releaseJob(meetingID: meeting.id, owner: node)
                        logger.info("processing interrupted by shutdown; the job is back in the queue")
                    }
                    return report.failure
                }
                let status: MeetingStatus = report.failure == nil ? .completed : .failed
                guard try await store.finishJob(meetingID: meeting.id, owner: node, status: status) else {
                    logger.warning("processing ended after the meeting was taken over, deleted or replaced")
                    return report.failure
                }
                logger.info(
                    "processing ended",
                    metadata: ["status": "\(status.rawValue)", "error": "\(report.failure?.message ?? "")"])
                return report.failure
            }
        } catch {
            logger.error("processing could not run", metadata: ["error": "\(store.describe(error))"])
            // What people watching the meeting read: what they can act on, never internals.
            let reason =
                switch error {
                case let e as PipelineError: e.message
                case let e as PluginError: e.message
                default: "an internal error (the server's log has the details)"
                }
            let failure = PipelineFailure(
                stage: .upload, code: "internal", message: "processing could not start: \(reason)")
            await fail(meeting, failure, lease: node)
            return failure
        }
    }

    /// Runs a job this node claimed from the queue: a meeting another node received (its
    /// recording complete), or one whose worker stopped. A takeover says so first (a `status`
    /// event with state `restarted`), then processing starts again from the stored recording.
    public func runClaimed(_ job: JobRecord) async {
        var logger = self.logger
        logger[metadataKey: "meeting.id"] = "\(job.meetingID)"
        do {
            guard var meeting = try await store.meeting(id: job.meetingID), meeting.epoch == job.epoch else {
                // Deleted, or replaced by a new upload since: nothing to do.
                _ = try await store.finishJob(meetingID: job.meetingID, owner: node, status: nil)
                return
            }
            if let path = meeting.audioPath, meeting.audioBytes == nil,
                FileManager.default.fileExists(atPath: Self.liveMarker(for: path))
            {
                if let continueRecording = liveTakeover.withLock({ $0 }) {
                    // A server: the recording goes on, the client reconnects and resumes.
                    logger.info(
                        "continuing a live recording its process left", metadata: ["attempt": "\(job.attempts)"])
                    await continueRecording(meeting, job.attempts)
                    return
                }
                meeting.audioBytes = try await finishLiveRecording(meeting, path: path, logger: logger)
            }
            guard let path = meeting.audioPath, meeting.audioBytes != nil, FileManager.default.fileExists(atPath: path)
            else {
                logger.warning("interrupted upload: meeting failed")
                await fail(
                    meeting,
                    PipelineFailure(
                        stage: .upload, code: "interrupted",
                        message:
                            "the upload stopped before it finished (the server receiving it stopped); upload the audio again"
                    ),
                    lease: node)
                return
            }
            if job.attempts > 1 {
                logger.info("taking over an interrupted meeting", metadata: ["attempt": "\(job.attempts)"])
                try await announceRestart(
                    meeting,
                    "the process running this meeting stopped; processing starts again from the recording (attempt \(job.attempts))"
                )
            }
            await process(meeting, source: .file(path))
        } catch {
            logger.error("cannot run the claimed job", metadata: ["error": "\(store.describe(error))"])
            _ = try? await store.releaseJob(meetingID: job.meetingID, owner: node)
        }
    }

    /// Says, under this node's lease, that processing of the meeting starts again (a `status`
    /// event with state `restarted`: watchers clear what they were shown and follow).
    public func announceRestart(_ meeting: MeetingRecord, _ detail: String) async throws {
        try await hub.withChannel(meetingID: meeting.id, epoch: meeting.epoch) { channel in
            _ = try await channel.publish(
                .status(.init(stage: .upload, state: .restarted, detail: detail)), lease: node, expecting: nil)
        }
    }

    /// Who continues a live recording whose process stopped before it ended (the server, which
    /// can take the client's audio again): given the meeting and the job's attempt, under this
    /// node's lease. Without one (`parley worker`), the recording is finished with what was stored.
    public func continueLiveRecordings(with takeover: @escaping @Sendable (MeetingRecord, Int) async -> Void) {
        liveTakeover.withLock { $0 = takeover }
    }

    /// The file beside a live recording's audio while it is being recorded.
    public static func liveMarker(for path: String) -> String { path + ".live" }

    /// A live recording whose process stopped before it ended: its WAV header gets the length
    /// that was stored, and the meeting is processed with what arrived.
    private func finishLiveRecording(_ meeting: MeetingRecord, path: String, logger: Logger) async throws -> Int64? {
        let marker = Self.liveMarker(for: path)
        guard FileManager.default.fileExists(atPath: marker),
            let handle = FileHandle(forUpdatingAtPath: path)
        else { return nil }
        defer { try? handle.close() }
        let size = try handle.seekToEnd()
        let header = PCMFormat.waveHeaderBytes
        guard size >= UInt64(header) else { return nil }
        let data = (size - UInt64(header)) / UInt64(PCMFormat.speech.frameBytes) * UInt64(PCMFormat.speech.frameBytes)
        try handle.seek(toOffset: 0)
        try handle.write(contentsOf: PCMFormat.speech.waveHeader(dataBytes: UInt32(clamping: data)))
        try handle.synchronize()
        try await store.recordUpload(meetingID: meeting.id, bytes: Int64(size))
        try? FileManager.default.removeItem(atPath: marker)
        logger.info("finishing a live recording its process left", metadata: ["bytes": "\(data)"])
        return Int64(size)
    }

    /// Publishes an event on the meeting's channel (not under a lease).
    public func publish(_ data: EventData, in meeting: MeetingRecord) async throws {
        try await hub.withChannel(meetingID: meeting.id, epoch: meeting.epoch) { _ = try await $0.publish(data) }
    }

    /// Ends a meeting as failed with an `error` event and a `failed` status; under `lease`,
    /// only while this node holds the meeting's job.
    public func fail(_ meeting: MeetingRecord, _ failure: PipelineFailure, lease: String? = nil) async {
        do {
            try await hub.withChannel(meetingID: meeting.id, epoch: meeting.epoch) { channel in
                try await channel.publish(.error(failure), lease: lease, expecting: nil)
                try await channel.publish(
                    .status(
                        .init(stage: .failed, state: .failed, detail: "\(failure.stage.rawValue): \(failure.message)")),
                    lease: lease, expecting: nil)
            }
            if let lease {
                _ = try await store.finishJob(meetingID: meeting.id, owner: lease, status: .failed)
            } else {
                var failed = try await store.meeting(id: meeting.id) ?? meeting
                failed.status = .failed
                try await store.updateMeeting(failed)
            }
        } catch {
            logger.error(
                "cannot mark the meeting failed",
                metadata: ["meeting.id": "\(meeting.id)", "error": "\(store.describe(error))"])
        }
    }

    /// After a start. With a database only this process uses (SQLite), whoever held a job's
    /// lease is gone, so every lease ends now and the queue takes the meetings over at once
    /// (processing again from the recording when it was complete, failed when it was not).
    /// Shared databases need nothing: leases of a stopped process run out by themselves.
    public func recover() async throws {
        guard !store.isShared else { return }
        try await store.expireLeases()
    }
}

/// The pipeline's sink in a process that runs meetings: the meeting's channel, written under the node's job
/// lease, plus metrics; drops events once the job is cancelled (the server stopping, the lease
/// lost), since whoever resumes the meeting publishes them again.
struct JobSink: EventSink {
    let channel: MeetingChannel
    let lease: String
    let metrics: JobMetrics

    func publish(_ data: EventData) async throws -> MeetingEvent {
        if Task.isCancelled { throw CancellationError() }
        metrics.observe(data)
        return try await channel.publish(data, lease: lease, expecting: nil)
    }
}
