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

/// Meetings: who may see them, their state (built from their event log), uploads that feed
/// the pipeline while the bytes arrive, exports, and resuming after a restart.
final class MeetingService: Sendable {
    let store: any Store
    let hub: Hub
    let processor: MeetingProcessor
    let states: MeetingStates
    let settings: ServerSettings
    let metrics: ServerMetrics
    let logger: Logger
    var runner: JobRunner { processor.runner }
    /// This process's name in job leases.
    var node: String { processor.node }
    /// Meetings whose upload request is running: a second concurrent PUT gets 409 before it
    /// touches the first one's file.
    private let uploading = Mutex<Set<String>>([])

    init(engine: Engine, settings: ServerSettings, metrics: ServerMetrics, logger: Logger) {
        self.store = engine.store
        self.hub = engine.hub
        self.processor = engine.processor
        self.states = engine.states
        self.settings = settings
        self.metrics = metrics
        self.logger = logger
    }

    // MARK: Access

    /// What a user may do with a meeting: watch it (members), edit its speakers' names and
    /// action items (members with edit rights), or everything (its owner).
    enum Access: Int, Comparable {
        case watch, edit, own

        static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
    }

    /// The meeting if `user` may do what `need` says: 404 when it does not exist, 403 otherwise.
    func meeting(_ id: String, for user: AuthenticatedUser, need: Access = .watch) async throws -> MeetingRecord {
        guard let meeting = try await store.meeting(id: id) else { throw APIError.notFound("no meeting '\(id)'") }
        if let access = try await access(of: user, to: meeting), access >= need { return meeting }
        switch need {
        case .own: throw APIError.forbidden("only the meeting's owner may do this")
        case .edit: throw APIError.forbidden("only the meeting's owner and members allowed to edit may do this")
        case .watch: throw APIError.forbidden("you are neither the owner nor a member of this meeting")
        }
    }

    func access(of user: AuthenticatedUser, to meeting: MeetingRecord) async throws -> Access? {
        if meeting.ownerID == user.id { return .own }
        guard let member = try await store.members(meetingID: meeting.id).first(where: { $0.userID == user.id })
        else { return nil }
        return member.canEdit ? .edit : .watch
    }

    // MARK: State

    /// The meeting's whole state, from the read model (a snapshot and the events after it).
    func state(of meeting: MeetingRecord) async throws -> MeetingState {
        try await states.state(of: meeting)
    }

    func view(of meeting: MeetingRecord, for user: AuthenticatedUser) async throws -> MeetingView {
        let state = try await state(of: meeting)
        let owner = try await store.user(id: meeting.ownerID)?.username ?? meeting.ownerID
        let (members, editors) = try await memberNames(meeting.id)
        return MeetingView(
            meeting: meeting, owner: owner, members: members, editors: editors, state: state,
            canEdit: try await access(of: user, to: meeting).map { $0 >= .edit } ?? false)
    }

    /// The usernames of the meeting's members (not its owner), and of those who may edit.
    func memberNames(_ meetingID: String) async throws -> (members: [String], editors: [String]) {
        var members: [String] = []
        var editors: [String] = []
        for member in try await store.members(meetingID: meetingID) {
            guard let user = try await store.user(id: member.userID) else { continue }
            members.append(user.username)
            if member.canEdit { editors.append(user.username) }
        }
        return (members, editors)
    }

    /// The meeting's status as its clients know it: the log's `completed` or `failed` event is
    /// out a moment before the processing process records it in the meeting's row.
    func status(of meeting: MeetingRecord) async throws -> MeetingStatus {
        guard meeting.status == .processing,
            let stored = try await store.latestEvent(meetingID: meeting.id, type: "status"),
            case .status(let update) = try JSONDecoder().decode(MeetingEvent.self, from: Data(stored.json.utf8)).data
        else { return meeting.status }
        switch update.stage {
        case .completed: return .completed
        case .failed: return .failed
        default: return meeting.status
        }
    }

    /// Seconds of audio decoded so far (the latest `upload_progress`), nil before an upload.
    func duration(of meeting: MeetingRecord) async throws -> Double? {
        guard let stored = try await store.latestEvent(meetingID: meeting.id, type: "upload_progress"),
            case .uploadProgress(let progress) = try JSONDecoder().decode(
                MeetingEvent.self, from: Data(stored.json.utf8)
            ).data
        else { return nil }
        return progress.seconds
    }

    // MARK: Playback

    /// The uploaded recording, whole or the byte range asked for (`Range: bytes=a-b`), so a
    /// browser's audio element can seek in it.
    func audio(of meeting: MeetingRecord, request: Request, context: ParleyRequestContext) async throws -> Response {
        guard meeting.status != .created, let path = meeting.audioPath,
            let attributes = try? FileManager.default.attributesOfItem(atPath: path),
            let size = (attributes[.size] as? NSNumber)?.intValue, size > 0
        else { throw APIError.notFound("this meeting has no recording yet") }
        var headers: HTTPFields = [.contentType: Self.audioType(path), .acceptRanges: "bytes"]
        let fileIO = FileIO()
        guard let header = request.headers[.range] else {
            headers[.contentLength] = "\(size)"
            return Response(
                status: .ok, headers: headers, body: try await fileIO.loadFile(path: path, context: context))
        }
        guard let range = Self.byteRange(header, size: size) else {
            headers[.contentRange] = "bytes */\(size)"
            return Response(status: .rangeNotSatisfiable, headers: headers)
        }
        headers[.contentRange] = "bytes \(range.lowerBound)-\(range.upperBound)/\(size)"
        headers[.contentLength] = "\(range.count)"
        return Response(
            status: .partialContent, headers: headers,
            body: try await fileIO.loadFile(path: path, range: range, context: context))
    }

    /// One range of `bytes=a-b`, `bytes=a-` or `bytes=-n`, within the file; nil when unsatisfiable.
    static func byteRange(_ header: String, size: Int) -> ClosedRange<Int>? {
        guard header.hasPrefix("bytes="), !header.contains(",") else { return nil }
        let parts = header.dropFirst(6).split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2 else { return nil }
        let first = Int(parts[0].trimmingCharacters(in: .whitespaces))
        let last = Int(parts[1].trimmingCharacters(in: .whitespaces))
        switch (first, last) {
        case (let start?, let end?) where start <= end && start < size: return start...min(end, size - 1)
        case (let start?, nil) where start < size && parts[1].isEmpty: return start...(size - 1)
        case (nil, let suffix?) where parts[0].isEmpty && suffix > 0: return max(0, size - suffix)...(size - 1)
        default: return nil
        }
    }

    /// The recording's media type from its first bytes (uploads are kept as they came).
    static func audioType(_ path: String) -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else { return "application/octet-stream" }
        defer { try? handle.close() }
        let head = [UInt8](handle.readData(ofLength: 12))
        func starts(_ text: String) -> Bool { head.starts(with: Array(text.utf8)) }
        if starts("RIFF") { return "audio/wav" }
        if starts("fLaC") { return "audio/flac" }
        if starts("OggS") { return "audio/ogg" }
        if starts("ID3") || (head.count > 1 && head[0] == 0xFF && head[1] & 0xE0 == 0xE0) { return "audio/mpeg" }
        if head.count >= 8, head[4...7].elementsEqual(Array("ftyp".utf8)) { return "audio/mp4" }
        return "application/octet-stream"
    }

    // MARK: Upload

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
        let processHere = settings.processing
        var pipeline: MeetingPipeline?
        if processHere {
            do {
                pipeline = try await processor.pipeline()
            } catch let error as PipelineError {
                throw APIError(.serviceUnavailable, "backend_not_ready", error.message)
            }
        }

        // Claimed in the database, so an upload to the same meeting through another node gets
        // 409 too; given back as it was if the upload cannot even start.
        guard try await store.startProcessing(meetingID: current.id) else {
            throw APIError.conflict("this meeting is already being processed")
        }
        var meeting = current
        let path = (settings.audioDirectory as NSString).appendingPathComponent("\(meeting.id).audio")
        do {
            try FileManager.default.createDirectory(atPath: settings.audioDirectory, withIntermediateDirectories: true)
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
            if processHere {
                // Leased to this node from the first byte: if it dies, another takes the meeting over.
                try await store.putJob(
                    meetingID: meeting.id, epoch: meeting.epoch, owner: node,
                    leaseUntil: now.addingTimeInterval(settings.jobLease), at: now)
            }
            try await store.updateMeeting(meeting)
        } catch {
            var previous = current
            previous.epoch = meeting.epoch
            try? await store.updateMeeting(previous)
            throw error
        }

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

    // MARK: Delete

    func delete(_ meeting: MeetingRecord) async throws {
        await runner.cancel(meetingID: meeting.id)
        defer { states.forget(meetingID: meeting.id) }
        try await store.deleteMeeting(id: meeting.id)
        hub.openChannel(meetingID: meeting.id)?.closeAll(.meetingDeleted)
        if let path = meeting.audioPath { try? FileManager.default.removeItem(atPath: path) }
    }
}
