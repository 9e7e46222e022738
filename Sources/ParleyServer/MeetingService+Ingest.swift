import Foundation
import HTTPTypes
import Logging
import ParleyAudio
import ParleyEvents
import ParleyHub
import ParleyJobs
import ParleyPipeline
import ParleyStore
import Synchronization

/// Live recording: the ingest socket's audio stored into the meeting's WAV file and fed to the
/// pipeline while the meeting happens.
extension MeetingService {
    /// Attaches an ingest connection to the meeting's recording: the running one (resuming after
    /// `resume` bytes, what the client had acknowledged), or a new one for a meeting that has no
    /// audio yet. Returns the connection it replaced, to be closed.
    func ingest(_ meeting: MeetingRecord, connection: IngestConnection, resume: Int64?) async throws
        -> IngestConnection?
    {
        if let running = recordings.withLock({ $0[meeting.id] }) {
            connection.recording = running
            return try running.attach(connection, resume: resume)
        }
        if let resume, resume > 0 {
            let current = try await store.meeting(id: meeting.id) ?? meeting
            if let path = current.audioPath, current.audioBytes == nil,
                FileManager.default.fileExists(atPath: MeetingProcessor.liveMarker(for: path))
            {
                // Not ended: another process holds it, or held it and stopped.
                return try await takeOver(current, connection: connection, resume: resume)
            }
            throw APIError.conflict(
                "this meeting's recording is not running any more (it was stopped or timed out)",
                code: "recording_ended")
        }
        guard settings.engine.processing else {
            throw APIError(
                .serviceUnavailable, "not_processing",
                "this server does not process meetings (--no-processing); record through one that does")
        }
        let claimed = uploading.withLock { $0.insert(meeting.id).inserted }
        guard claimed else { throw APIError.conflict("an upload or recording to this meeting is starting") }
        defer { _ = uploading.withLock { $0.remove(meeting.id) } }
        let current = try await store.meeting(id: meeting.id) ?? meeting
        guard current.status == .created, current.audioPath == nil, !runner.isRunning(meeting.id) else {
            throw APIError.conflict(
                "this meeting has audio already; record into a new meeting", code: "has_audio")
        }
        let pipeline = try await readyPipeline(for: current)
        let record = try await claimRecording(current, leased: true)
        let path = record.audioPath ?? ""
        let recording: LiveRecording
        do {
            // Says "a live recording" to a process that takes the meeting over after this one stopped.
            _ = FileManager.default.createFile(atPath: MeetingProcessor.liveMarker(for: path), contents: nil)
            recording = try LiveRecording(
                meetingID: record.id, file: try UploadFile(path: path), maxBytes: settings.maxUploadBytes)
        } catch {
            await processor.fail(
                record,
                PipelineFailure(stage: .upload, code: "storage", message: "cannot store the recording: \(error)"))
            throw error
        }
        connection.recording = recording
        _ = try recording.attach(connection, resume: nil)
        recordings.withLock { $0[record.id] = recording }
        let accepted = runner.submit(meetingID: record.id) {
            await self.record(recording, meeting: record, pipeline: pipeline)
        }
        guard accepted else {
            recordings.withLock { _ = $0.removeValue(forKey: record.id) }
            recording.file.fail(PipelineFailure(stage: .upload, code: "cancelled", message: "the server is stopping"))
            _ = try? await store.releaseJob(meetingID: record.id, owner: node)
            throw APIError(.serviceUnavailable, "stopping", "the server is stopping; try again shortly")
        }
        return nil
    }

    /// A client resumes a recording this process does not hold. If the process that held it
    /// stopped (its job's lease ran out, or it gave the job back), this one takes the job and
    /// continues the recording; otherwise the client is told to try again (the holder is
    /// another node, or this one's start has not taken it over yet).
    private func takeOver(_ meeting: MeetingRecord, connection: IngestConnection, resume: Int64) async throws
        -> IngestConnection?
    {
        let moving = APIError(
            .serviceUnavailable, "recording_moving",
            "this meeting's recording is held by another server, or being taken over after its server stopped; reconnect in a moment"
        )
        guard settings.engine.processing else { throw moving }
        let now = Date()
        guard
            let job = try await store.claimJob(
                meetingID: meeting.id, owner: node, until: now.addingTimeInterval(settings.engine.jobLease), now: now)
        else { throw moving }
        guard job.epoch == meeting.epoch else {
            _ = try? await store.releaseJob(meetingID: meeting.id, owner: node)
            throw moving
        }
        guard let (recording, pipeline) = await reopen(meeting, attempt: job.attempts) else {
            throw APIError(.internalServerError, "storage", "the interrupted recording cannot be continued")
        }
        connection.recording = recording
        _ = try recording.attach(connection, resume: resume)
        let accepted = runner.submit(meetingID: meeting.id) {
            await self.record(recording, meeting: meeting, pipeline: pipeline)
        }
        guard accepted else {
            recordings.withLock { _ = $0.removeValue(forKey: meeting.id) }
            _ = try? await store.releaseJob(meetingID: meeting.id, owner: node)
            throw APIError(.serviceUnavailable, "stopping", "the server is stopping; try again shortly")
        }
        return nil
    }

    /// Continues a recording whose process stopped in the middle, for the job queue (this node
    /// took its job over): see ``reopen(_:attempt:)``. Nobody reconnecting within the idle
    /// timeout ends it with what was stored.
    func continueRecording(_ meeting: MeetingRecord, attempt: Int) async {
        guard let (recording, pipeline) = await reopen(meeting, attempt: attempt) else { return }
        await record(recording, meeting: meeting, pipeline: pipeline)
    }

    /// Opens again a recording whose process stopped in the middle, under this node's lease on
    /// its job: the stored audio stays, the client's reconnect resumes after it, and processing
    /// starts again from the beginning of the recording (a `restarted` status) to follow it
    /// live. Nil when it cannot (the meeting is then failed).
    private func reopen(_ meeting: MeetingRecord, attempt: Int) async -> (LiveRecording, MeetingPipeline)? {
        var logger = self.logger
        logger[metadataKey: "meeting.id"] = "\(meeting.id)"
        let recording: LiveRecording
        let pipeline: MeetingPipeline
        do {
            pipeline = try await processor.pipeline(for: meeting.diarization)
            recording = try LiveRecording(
                continuing: meeting.id, path: meeting.audioPath ?? "", maxBytes: settings.maxUploadBytes)
            try await processor.announceRestart(
                meeting,
                "the server recording this meeting stopped; the recording continues after the \(Self.seconds(recording.stored)) s it stored, and processing starts again from its beginning (attempt \(attempt))"
            )
        } catch {
            logger.error("cannot continue the live recording", metadata: ["error": "\(store.describe(error))"])
            await processor.fail(
                meeting,
                PipelineFailure(
                    stage: .upload, code: "storage", message: "the interrupted recording cannot be continued"),
                lease: node)
            return nil
        }
        recordings.withLock { $0[meeting.id] = recording }
        logger.info("live recording continues", metadata: ["bytes": "\(recording.stored)", "attempt": "\(attempt)"])
        return (recording, pipeline)
    }

    private static func seconds(_ bytes: Int64) -> String {
        String(format: "%.1f", Double(bytes) / Double(PCMFormat.speech.frameBytes * PCMFormat.speech.rate))
    }

    /// Runs the pipeline on the recording while it grows, and ends it when asked (stop, idle,
    /// size limit) or when the pipeline gives up.
    private func record(_ recording: LiveRecording, meeting: MeetingRecord, pipeline: MeetingPipeline) async {
        let idle = settings.liveIdleTimeout
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await recording.watchIdle(timeout: idle) }
            group.addTask {
                await self.processor.process(
                    meeting, source: .live(recording.audio(), spoolPath: nil), pipeline: pipeline)
                recording.end(.failed)  // the pipeline ended first: nothing more is stored
            }
            let reason = await recording.ended.value
            await finish(recording, meeting: meeting, reason: reason)
            await group.waitForAll()
        }
    }

    /// Ends the recording: the WAV's sizes, the stored length, the end of the pipeline's input,
    /// and a last word to the sending client.
    private func finish(_ recording: LiveRecording, meeting: MeetingRecord, reason: LiveRecording.Ending) async {
        var logger = self.logger
        logger[metadataKey: "meeting.id"] = "\(meeting.id)"
        let path = meeting.audioPath ?? ""
        let bytes = recording.stored
        let leftForTakeover = reason == .failed && runner.isStopping
        do {
            try recording.writeFinalHeader()
            if leftForTakeover {
                // Left for the process that takes the meeting over: a server continues the
                // recording when the client resumes (a worker finishes it with what was stored).
                logger.info("server stopping during a live recording", metadata: ["bytes": "\(bytes)"])
            } else {
                // Recorded before the pipeline can see the end of the file, like an upload.
                try await store.recordUpload(meetingID: meeting.id, bytes: bytes + Int64(PCMFormat.waveHeaderBytes))
                try? FileManager.default.removeItem(atPath: MeetingProcessor.liveMarker(for: path))
            }
            recording.file.finish()
        } catch {
            logger.error("cannot finish the live recording", metadata: ["error": "\(error)"])
            recording.file.fail(
                PipelineFailure(stage: .upload, code: "storage", message: "cannot finish the recording: \(error)"))
        }
        recordings.withLock { _ = $0.removeValue(forKey: meeting.id) }
        logger.info("live recording ended", metadata: ["reason": "\(reason)", "bytes": "\(bytes)"])
        guard let connection = recording.connection else { return }
        if leftForTakeover {
            // Not ended: the client reconnects, and resumes once the server has started again.
            connection.close(code: 1001, reason: "the server is stopping; reconnect and resume")
            return
        }
        let words: String
        switch reason {
        case .stopped: words = "stop"
        case .idle: words = "idle"
        case .tooLarge: words = "too_large"
        case .failed: words = "failed"
        }
        connection.send(["type": "stopped", "bytes": bytes, "reason": words])
        connection.close(code: 1000, reason: "recording ended")
    }

    /// Closes (4003) the recordings made through this node by someone who may no longer edit
    /// the meeting: removed from it or their edit rights taken away, through any node. Run every
    /// sweep (`PeriodicService.recordingAccess`).
    func closeRecordingsWithoutAccess() async {
        let open = recordings.withLock { recordings in
            recordings.compactMap { meetingID, recording in recording.connection.map { (meetingID, $0) } }
        }
        for (meetingID, connection) in open {
            guard let userID = connection.userID else { continue }
            do {
                guard let meeting = try await store.meeting(id: meetingID), meeting.ownerID != userID else { continue }
                let member = try await store.members(meetingID: meetingID).first { $0.userID == userID }
                if member?.canEdit != true {
                    connection.close(code: 4003, reason: "no longer allowed to record this meeting")
                }
            } catch {
                logger.debug(
                    "cannot check a recording's access",
                    metadata: ["meeting.id": "\(meetingID)", "error": "\(store.describe(error))"])
            }
        }
    }
}
