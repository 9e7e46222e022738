import Foundation
import HTTPTypes
import NIOCore
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The uploaded audio, written to the data directory as it arrives (the durable copy a
/// restart resumes from), and read back by the pipeline while it grows: memory holds one
/// chunk at a time however fast the client sends or however late the pipeline starts.
final class UploadFile: Sendable {
    let path: String
    private let descriptor: Int32

    private struct State {
        var written: Int64 = 0
        var finished = false
        var failure: (any Error)?
        /// Readers waiting for more, by ticket (a cancelled reader takes its own back).
        var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
        var nextTicket: UInt64 = 0
    }

    private let state = Mutex(State())

    init(path: String) throws {
        self.path = path
        descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw APIError(
                .internalServerError, "storage", "cannot create \(path): \(String(cString: strerror(errno)))")
        }
    }

    /// Continues a file an earlier process wrote: its first `keeping` bytes stay (anything
    /// after them, such as half a sample, is cut off) and appends go after them.
    init(continuing path: String, keeping bytes: Int64) throws {
        let descriptor = open(path, O_WRONLY | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw APIError(
                .internalServerError, "storage", "cannot continue \(path): \(String(cString: strerror(errno)))")
        }
        guard ftruncate(descriptor, off_t(bytes)) == 0, lseek(descriptor, 0, SEEK_END) == off_t(bytes) else {
            let reason = String(cString: strerror(errno))
            close(descriptor)
            throw APIError(.internalServerError, "storage", "cannot continue \(path): \(reason)")
        }
        self.path = path
        self.descriptor = descriptor
        state.withLock { $0.written = bytes }
    }

    deinit { close(descriptor) }

    /// Appends the bytes (all of them: short writes are continued).
    func append(_ buffer: ByteBuffer) throws {
        try buffer.withUnsafeReadableBytes { bytes in
            var done = 0
            while done < bytes.count {
                let n = write(descriptor, bytes.baseAddress! + done, bytes.count - done)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw APIError(
                        .init(code: 507, reasonPhrase: "Insufficient Storage"), "storage",
                        "cannot write the upload: \(String(cString: strerror(errno)))")
                }
                done += n
            }
        }
        wake { $0.written += Int64(buffer.readableBytes) }
    }

    var bytesWritten: Int64 { state.withLock { $0.written } }

    /// Overwrites bytes already written (a header whose sizes are known at the end); readers
    /// that have read past them do not see the change.
    func overwrite(_ buffer: ByteBuffer, at offset: Int64) throws {
        try buffer.withUnsafeReadableBytes { bytes in
            guard pwrite(descriptor, bytes.baseAddress!, bytes.count, off_t(offset)) == bytes.count else {
                throw APIError(
                    .init(code: 507, reasonPhrase: "Insufficient Storage"), "storage",
                    "cannot write the recording: \(String(cString: strerror(errno)))")
            }
        }
    }

    /// Every byte arrived; flushed to disk.
    func finish() {
        fsync(descriptor)
        wake { $0.finished = true }
    }

    /// The upload failed; readers get `error` once they have read what was written.
    func fail(_ error: any Error) {
        wake { $0.failure = error }
    }

    private func wake(_ change: (inout State) -> Void) {
        let waiters = state.withLock { state in
            change(&state)
            let waiters = state.waiters.values
            state.waiters = [:]
            return waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Waits until more than `offset` bytes are written, the upload ends, or the reading task
    /// is cancelled (a live recording may pause for ever; a server stopping must not wait).
    fileprivate func waitForMore(than offset: Int64) async throws {
        let ticket = state.withLock { state in
            state.nextTicket += 1
            return state.nextTicket
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let ready = state.withLock { state in
                    if state.written > offset || state.finished || state.failure != nil || Task.isCancelled {
                        return true
                    }
                    state.waiters[ticket] = continuation
                    return false
                }
                if ready { continuation.resume() }
            }
        } onCancel: {
            state.withLock { $0.waiters.removeValue(forKey: ticket) }?.resume()
        }
        try Task.checkCancellation()
    }

    /// The file's bytes from `offset` as they are written, in chunks of up to 64 KiB, ending
    /// when the upload finishes (or failing when it fails).
    func chunks(from offset: Int64 = 0) -> AsyncThrowingStream<[UInt8], any Error> {
        let reader = Reader(file: self, offset: offset)
        return AsyncThrowingStream(unfolding: { try await reader.next() })
    }

    private final class Reader: @unchecked Sendable {
        // Used by one consumer at a time (the stream's unfolding closure is called serially).
        let file: UploadFile
        var offset: Int64
        var descriptor: Int32 = -1

        init(file: UploadFile, offset: Int64) {
            self.file = file
            self.offset = offset
        }
        deinit { if descriptor >= 0 { close(descriptor) } }

        func next() async throws -> [UInt8]? {
            if descriptor < 0 {
                descriptor = open(file.path, O_RDONLY | O_CLOEXEC)
                guard descriptor >= 0 else { throw APIError(.internalServerError, "storage", "cannot read the upload") }
            }
            while true {
                enum Step { case read(Int), end, fail(any Error), wait }
                let step: Step = file.state.withLock { state in
                    if state.written > offset { return .read(Int(min(state.written - offset, 65536))) }
                    if let failure = state.failure { return .fail(failure) }
                    return state.finished ? .end : .wait
                }
                switch step {
                case .read(let count):
                    var bytes = [UInt8](repeating: 0, count: count)
                    let n = bytes.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, count, off_t(offset)) }
                    guard n > 0 else { throw APIError(.internalServerError, "storage", "cannot read the upload") }
                    offset += Int64(n)
                    return n == count ? bytes : Array(bytes[0..<n])
                case .end: return nil
                case .fail(let error): throw error
                case .wait: try await file.waitForMore(than: offset)
                }
            }
        }
    }
}
