import Foundation
import Hummingbird
import Logging
import Metrics
import NIOCore
import ParleyEvents
import ParleyHub
import ParleyJobs
import ParleyPipeline
import ParleyStore
import Synchronization

/// Upload ingest: the recording streamed to disk and, on a processing node, into the pipeline
/// while it arrives; on another, queued for a worker once it is whole.
extension MeetingService {
    /// Streams the request body to the meeting's audio file while the pipeline decodes it.
    /// Returns once every byte arrived (202), or with the reason the upload or the audio failed.
    func upload(_ meeting: MeetingRecord, request: Request, context: ParleyRequestContext) async throws -> Response {
        let rawContentType = request.headers[.contentType] ?? ""
        let contentType = rawContentType.lowercased()
        let isMultipart = contentType.hasPrefix("multipart/form-data")
        guard
            isMultipart || contentType.hasPrefix("audio/") || contentType.hasPrefix("application/octet-stream")
                || contentType.hasPrefix("video/")
        else {
            throw APIError.unsupportedMediaType(
                "send the audio as the raw body (audio/*, application/octet-stream) or as multipart/form-data")
        }
        let declared = request.headers[.contentLength].flatMap { Int64($0) }
        if let declared, declared > settings.maxUploadBytes {
            throw APIError.tooLarge("the upload is \(declared) bytes; the limit is \(settings.maxUploadBytes)")
        }
        let claimed = uploading.withLock { $0.insert(meeting.id).inserted }
        guard claimed else { throw APIError.conflict("an upload to this meeting is already running") }
        defer { _ = uploading.withLock { $0.remove(meeting.id) } }
        let current = try await store.meeting(id: meeting.id) ?? meeting
        if current.status == .processing || runner.isRunning(meeting.id) {
            throw APIError.conflict("this meeting is already being processed")
        }
        // A node that processes runs the pipeline while the bytes arrive; one that does not
        // (`--no-processing`) keeps the file and queues the meeting for a worker once it is whole.
        let processHere = settings.engine.processing
        let pipeline = processHere ? try await readyPipeline(for: current) : nil

        let meeting = try await claimRecording(current, leased: processHere)
        let path = meeting.audioPath ?? ""
        let file = try UploadFile(path: path)
        let finished = Completion<PipelineFailure?>()
        let expected = isMultipart ? nil : declared
        let record = meeting
        if let pipeline {
            let accepted = runner.submit(meetingID: meeting.id) {
                finished.complete(
                    await self.processor.process(
                        record, source: .upload(file.chunks(), expectedLength: expected, spoolPath: nil),
                        pipeline: pipeline))
            }
            guard accepted else {
                file.fail(PipelineFailure(stage: .upload, code: "cancelled", message: "the server is stopping"))
                _ = try? await store.releaseJob(meetingID: meeting.id, owner: node)
                throw APIError(.serviceUnavailable, "stopping", "the server is stopping; try again shortly")
            }
        } else {
            try await processor.publish(
                .status(.init(stage: .upload, state: .started, detail: "receiving the recording")), in: record)
        }

        var received: Int64 = 0
        var overLimit = false
        var stoppedEarly = false
        do {
            let extractor = isMultipart ? try MultipartAudioExtractor(contentType: rawContentType) : nil
            for try await buffer in request.body {
                received += Int64(buffer.readableBytes)
                metrics.uploadBytes.increment(by: buffer.readableBytes)
                if received > settings.maxUploadBytes {
                    overLimit = true
                    file.fail(
                        PipelineFailure(
                            stage: .upload, code: "too_large",
                            message: "the upload passed the limit of \(settings.maxUploadBytes) bytes"))
                    break
                }
                if finished.isCompleted {
                    stoppedEarly = true  // the pipeline gave up on the audio already
                    break
                }
                if let extractor {
                    for chunk in try extractor.feed(buffer) { try file.append(ByteBuffer(bytes: chunk)) }
                } else {
                    try file.append(buffer)
                }
            }
            if !overLimit && !stoppedEarly {
                if let extractor { try extractor.finish() }
                // Recorded before the pipeline can see the end of the file: a restart resumes
                // only uploads that were complete.
                try await store.recordUpload(meetingID: meeting.id, bytes: file.bytesWritten)
                file.finish()
                if !processHere {
                    try await processor.publish(
                        .status(
                            .init(
                                stage: .upload, state: .progress,
                                detail: "received \(file.bytesWritten) bytes; queued for a worker")), in: record)
                    try await store.putJob(
                        meetingID: meeting.id, epoch: meeting.epoch, owner: nil, leaseUntil: nil, at: Date())
                }
            }
        } catch let error as APIError {
            let failure = PipelineFailure(stage: .upload, code: "bad_request", message: error.message)
            file.fail(failure)
            if processHere { _ = await finished.value } else { await processor.fail(record, failure) }
            throw error
        } catch {
            // The client went away mid-upload: the pipeline (or this node) fails the upload stage.
            let failure = PipelineFailure(
                stage: .upload, code: "interrupted", message: "the upload was interrupted: \(error)")
            file.fail(failure)
            if !processHere { await processor.fail(record, failure) }
            throw error
        }
        if overLimit {
            if processHere {
                _ = await finished.value
            } else {
                await processor.fail(
                    record,
                    PipelineFailure(
                        stage: .upload, code: "too_large",
                        message: "the upload passed the limit of \(settings.maxUploadBytes) bytes"))
            }
            try? FileManager.default.removeItem(atPath: path)
            throw APIError.tooLarge("the upload passed the limit of \(settings.maxUploadBytes) bytes")
        }
        if stoppedEarly {
            let failure = await finished.value
            let message = failure?.message ?? "processing stopped before the upload finished"
            throw APIError(.unprocessableContent, failure?.code ?? "bad_audio", message)
        }
        struct Accepted: ResponseEncodable {
            let id: String
            let status: String
            let bytes: Int64
            let epoch: String
        }
        var response = try Accepted(id: meeting.id, status: "processing", bytes: received, epoch: meeting.epoch)
            .response(from: request, context: context)
        response.status = .accepted
        return response
    }

    /// The pipeline for the meeting's diarization request; 503 when a backend is not ready.
    func readyPipeline(for meeting: MeetingRecord) async throws -> MeetingPipeline {
        do {
            return try await processor.pipeline(for: meeting.diarization)
        } catch let error as PipelineError {
            throw APIError(.serviceUnavailable, "backend_not_ready", error.message)
        }
    }

    /// Claims `current` for a new recording (in the database, so an upload or recording through
    /// another node gets 409 too): a new epoch if it had one before, status `processing`, the
    /// audio file's path, and, when `leased`, a job leased to this node from the first byte (if
    /// the node dies, another takes the meeting over). Given back as it was if this fails.
    func claimRecording(_ current: MeetingRecord, leased: Bool) async throws -> MeetingRecord {
        guard try await store.startProcessing(meetingID: current.id) else {
            throw APIError.conflict("this meeting is already being processed")
        }
        var meeting = current
        let path = (settings.engine.audioDirectory as NSString).appendingPathComponent("\(meeting.id).audio")
        do {
            try FileManager.default.createDirectory(
                atPath: settings.engine.audioDirectory, withIntermediateDirectories: true)
            try? FileManager.default.removeItem(atPath: path)
            if meeting.status != .created {
                meeting.epoch = Identifiers.epoch()
                let epoch = meeting.epoch
                try await hub.withChannel(meetingID: meeting.id, epoch: epoch) { try await $0.reset(epoch: epoch) }
            }
            meeting.status = .processing
            meeting.audioPath = path
            meeting.audioBytes = nil
            let now = Date()
            if leased {
                try await store.putJob(
                    meetingID: meeting.id, epoch: meeting.epoch, owner: node,
                    leaseUntil: now.addingTimeInterval(settings.engine.jobLease), at: now)
            }
            try await store.updateMeeting(meeting)
        } catch {
            var previous = current
            previous.epoch = meeting.epoch
            try? await store.updateMeeting(previous)
            throw error
        }
        return meeting
    }
}
