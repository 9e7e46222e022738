import Foundation
import HTTPTypes
import NIOCore
import ParleyAudio
import ParleyHub
import Synchronization

/// A meeting being recorded through its ingest socket (`/ws/meeting/{id}/ingest`): the audio
/// file (a WAV of 16 kHz mono 16-bit PCM whose sizes are written when it ends), how much of the
/// recording it holds, the one connection sending to it (a newer one replaces it: a dropped
/// connection may not have been noticed yet), and how it ends: `stop`, no word from any client
/// for the idle timeout, the size limit, or the pipeline giving up.
final class LiveRecording: Sendable {
    let meetingID: String
    let file: UploadFile
    let format = PCMFormat.speech
    let maxBytes: Int64

    enum Ending: Sendable, Equatable {
        case stopped, idle, tooLarge, failed
    }

    /// What became of the bytes of one binary frame.
    enum Appended: Equatable {
        /// Stored (or skipped as already stored); the total stored.
        case stored(Int64)
        case oddLength(Int)
        case ended
        case tooLarge
        /// Another connection took the recording over.
        case replaced
    }

    private struct State {
        /// Bytes of PCM stored (after the WAV header).
        var stored: Int64 = 0
        var connection: IngestConnection?
        /// Bytes the connection resends that are stored already (it resumed from an earlier ack).
        var skip: Int64 = 0
        var lastHeard = ContinuousClock.now
        var ending: Ending?
    }

    private let state = Mutex(State())
    /// Completed with how the recording ended, once it should.
    let ended = Completion<Ending>()

    init(meetingID: String, file: UploadFile, maxBytes: Int64) throws {
        self.meetingID = meetingID
        self.file = file
        self.maxBytes = maxBytes
        try file.append(ByteBuffer(bytes: format.waveHeader(dataBytes: .max)))
    }

    /// A recording a stopped process left unfinished (the server stopped in the middle): the
    /// samples it stored stay (half a sample at the end is cut off), and whoever resumes sends
    /// what comes after them. Its idle timeout runs from now.
    init(continuing meetingID: String, path: String, maxBytes: Int64) throws {
        let header = Int64(PCMFormat.waveHeaderBytes)
        let size = ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.int64Value ?? 0
        guard size >= header else {
            throw APIError(.internalServerError, "storage", "the stored recording \(path) has no WAV header")
        }
        let frame = Int64(PCMFormat.speech.frameBytes)
        let stored = (size - header) / frame * frame
        self.meetingID = meetingID
        self.maxBytes = maxBytes
        file = try UploadFile(continuing: path, keeping: header + stored)
        state.withLock { $0.stored = stored }
    }

    /// What the pipeline decodes: the samples as they are stored, behind a streaming header.
    func audio() -> AsyncThrowingStream<[UInt8], any Error> {
        let header = format.streamingHeader
        let samples = file.chunks(from: Int64(PCMFormat.waveHeaderBytes))
        return AsyncThrowingStream(unfolding: Prefixed(header: header, rest: samples).next)
    }

    private final class Prefixed: @unchecked Sendable {
        // Used by one consumer at a time (the stream's unfolding closure is called serially).
        var header: [UInt8]?
        var rest: AsyncThrowingStream<[UInt8], any Error>.Iterator

        init(header: [UInt8], rest: AsyncThrowingStream<[UInt8], any Error>) {
            self.header = header
            self.rest = rest.makeAsyncIterator()
        }

        func next() async throws -> [UInt8]? {
            if let header {
                self.header = nil
                return header
            }
            return try await rest.next()
        }
    }

    var stored: Int64 { state.withLock { $0.stored } }
    var ending: Ending? { state.withLock { $0.ending } }

    /// Makes `connection` the one that sends, resuming after `resume` bytes (nil: it has sent
    /// nothing yet). Returns the connection it replaced, to be closed.
    func attach(_ connection: IngestConnection, resume: Int64?) throws -> IngestConnection? {
        try state.withLock { state in
            if state.ending != nil {
                throw APIError.conflict("the recording of this meeting has ended", code: "recording_ended")
            }
            let resume = resume ?? 0
            guard resume <= state.stored else {
                throw APIError.conflict(
                    "the server holds \(state.stored) bytes of this recording, fewer than resume=\(resume)",
                    code: "resume_mismatch")
            }
            let previous = state.connection
            state.connection = connection
            state.skip = state.stored - resume
            state.lastHeard = .now
            return previous
        }
    }

    /// The connection closed; the idle timeout runs from now if no other takes over.
    func detach(_ connection: IngestConnection) {
        state.withLock { state in
            if state.connection === connection {
                state.connection = nil
                state.lastHeard = .now
            }
        }
    }

    /// Any frame from the sending connection: a sign of life.
    func heard(from connection: IngestConnection) {
        state.withLock { state in
            if state.connection === connection { state.lastHeard = .now }
        }
    }

    /// Stores a binary frame's samples (those the server does not have yet). Frames arrive on
    /// the connection's event loop, one at a time, and only the current connection's count.
    func append(_ buffer: ByteBuffer, from connection: IngestConnection) throws -> Appended {
        var buffer = buffer
        let count = buffer.readableBytes
        let step: Appended = try state.withLock { state in
            guard state.connection === connection else { return .replaced }
            state.lastHeard = .now
            if state.ending != nil { return .ended }
            if count % format.frameBytes != 0 { return .oddLength(count) }
            let skipped = Int(min(state.skip, Int64(count)))
            state.skip -= Int64(skipped)
            buffer.moveReaderIndex(forwardBy: skipped)
            if state.stored + Int64(buffer.readableBytes) > maxBytes {
                state.ending = .tooLarge
                return .tooLarge
            }
            if buffer.readableBytes == 0 { return .stored(state.stored) }
            // Written under the lock so that `stored` never counts bytes not yet in the file.
            try file.append(buffer)
            state.stored += Int64(buffer.readableBytes)
            return .stored(state.stored)
        }
        if step == .tooLarge { ended.complete(.tooLarge) }
        return step
    }

    /// Ends the recording (the first reason counts).
    func end(_ reason: Ending) {
        let first = state.withLock { state in
            if state.ending != nil { return false }
            state.ending = reason
            return true
        }
        if first { ended.complete(reason) }
    }

    /// Ends the recording when no client has said anything for `timeout` seconds; returns
    /// when it has ended, for whatever reason.
    func watchIdle(timeout: Double) async {
        while !ended.isCompleted {
            try? await Task.sleep(for: .milliseconds(Int(min(1000, timeout * 250))))
            if Task.isCancelled { return }
            let quiet = state.withLock { ContinuousClock.now - $0.lastHeard }
            if quiet > .seconds(timeout) { end(.idle) }
        }
    }

    /// The connection sending now, if any.
    var connection: IngestConnection? { state.withLock { $0.connection } }

    /// Writes the WAV header's true sizes: the stored file is an ordinary WAV from now on.
    func writeFinalHeader() throws {
        let data = UInt32(clamping: stored)
        try file.overwrite(ByteBuffer(bytes: format.waveHeader(dataBytes: data)), at: 0)
    }
}
