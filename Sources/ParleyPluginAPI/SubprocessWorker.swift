import Foundation
public import Logging
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A long-lived worker process speaking Parley's subprocess protocol: one JSON object per
/// line, requests `{"id", "method", "params"}` on its stdin, responses `{"id", "result"}` or
/// `{"id", "error": {"message"}}` on its stdout, anything else on stderr (kept for error
/// messages and logged at debug level). See Docs/plugins.md.
///
/// The worker is started once and serves every request of a meeting. Requests may be
/// outstanding together; responses are matched by id. Cancelling a request stops the worker
/// (it cannot be told to drop a request half done), and every later request fails.
public final class SubprocessWorker: Sendable {
    /// How to start the worker.
    public struct Launch: Sendable, Hashable {
        public var executable: String
        public var arguments: [String]
        /// Added to (and overriding) Parley's own environment.
        public var environment: [String: String]
        public var workingDirectory: String?

        public init(
            executable: String, arguments: [String] = [], environment: [String: String] = [:],
            workingDirectory: String? = nil
        ) {
            self.executable = executable
            self.arguments = arguments
            self.environment = environment
            self.workingDirectory = workingDirectory
        }
    }

    private struct State: ~Copyable {
        var process: Process?
        var stdin: FileHandle?
        var nextID = 1
        var pending: [Int: CheckedContinuation<Data, any Error>] = [:]
        /// Set once the worker is gone; every later request fails with it.
        var ended: PluginError?
        var stderrTail: [String] = []
    }

    public let launch: Launch
    /// Used in messages: "whisper worker".
    public let displayName: String
    private let logger: Logger
    private let state = Mutex(State())

    public init(launch: Launch, displayName: String, logger: Logger) {
        self.launch = launch
        self.displayName = displayName
        self.logger = logger
    }

    deinit {
        state.withLock { state in
            if let process = state.process, process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
    }

    /// Starts the process and performs the `hello` handshake, returning what the worker reports.
    public func start<Handshake: Decodable & Sendable>(
        handshake: Handshake.Type, timeout: Duration = .seconds(120)
    ) async throws -> Handshake {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: launch.executable)
        process.arguments = launch.arguments
        var environment = ProcessInfo.processInfo.environment
        environment.merge(launch.environment) { _, new in new }
        process.environment = environment
        if let directory = launch.workingDirectory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        let input = Pipe()
        let output = Pipe()
        let errors = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = errors
        do {
            try process.run()
        } catch {
            throw PluginError(
                .notReady, "\(displayName): cannot start \(launch.executable): \(error.localizedDescription)")
        }
        state.withLock { state in
            state.process = process
            state.stdin = input.fileHandleForWriting
        }
        // Our copies of the child's ends must go, or EOF never comes.
        try? input.fileHandleForReading.close()
        try? output.fileHandleForWriting.close()
        try? errors.fileHandleForWriting.close()
        startReader(output.fileHandleForReading.fileDescriptor, retain: output)
        startErrorReader(errors.fileHandleForReading.fileDescriptor, retain: errors)
        logger.debug("worker started", metadata: ["worker": "\(displayName)", "pid": "\(process.processIdentifier)"])
        do {
            return try await withTimeout(timeout, what: "the handshake") {
                try await self.request("hello", params: HelloParams(), as: Handshake.self)
            }
        } catch {
            await stop()
            throw error
        }
    }

    private struct HelloParams: Encodable, Sendable { var protocolVersion = 1 }

    /// Sends one request and waits for its response.
    public func request<Params: Encodable & Sendable, Result: Decodable & Sendable>(
        _ method: String, params: Params, as: Result.Type
    ) async throws -> Result {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        let data: Data = try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Data, any Error>) in
                let failure: (any Error)? = state.withLock { state in
                    if let ended = state.ended { return ended }
                    guard let stdin = state.stdin else {
                        return PluginError(.unavailable, "\(displayName) is not running")
                    }
                    let id = state.nextID
                    state.nextID += 1
                    do {
                        var line = try encoder.encode(Envelope(id: id, method: method, params: params))
                        line.append(0x0A)
                        try stdin.write(contentsOf: line)
                    } catch {
                        return PluginError(.unavailable, "\(displayName): cannot send the request: \(error)")
                    }
                    state.pending[id] = continuation
                    return nil
                }
                if let failure { continuation.resume(throwing: failure) }
            }
        } onCancel: {
            terminate(reason: PluginError(.unavailable, "\(displayName) was stopped: the request was cancelled"))
        }
        try Task.checkCancellation()
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        do {
            return try decoder.decode(Result.self, from: data)
        } catch {
            throw PluginError(
                .protocolViolation, "\(displayName) answered '\(method)' with a result Parley cannot read: \(error)")
        }
    }

    private struct Envelope<Params: Encodable & Sendable>: Encodable {
        var id: Int
        var method: String
        var params: Params
    }

    /// Asks the worker to exit, then stops it: SIGTERM after 2 s, SIGKILL after 2 s more.
    public func stop() async {
        let process: Process? = state.withLock { state in
            let process = state.process
            if state.ended == nil { state.ended = PluginError(.unavailable, "\(displayName) was stopped") }
            if let stdin = state.stdin {
                var line = Data(#"{"id":0,"method":"shutdown","params":{}}"#.utf8)
                line.append(0x0A)
                try? stdin.write(contentsOf: line)
                try? stdin.close()
                state.stdin = nil
            }
            return process
        }
        guard let process else { return }
        for (signal, wait) in [(Int32(0), 20), (SIGTERM, 20), (SIGKILL, 20)] {
            if signal != 0, process.isRunning { kill(process.processIdentifier, signal) }
            for _ in 0..<wait where process.isRunning { try? await Task.sleep(for: .milliseconds(100)) }
            if !process.isRunning { break }
        }
    }

    /// Closes the worker's stdin without waiting: a worker that follows the protocol exits.
    public func closeInput() {
        state.withLock { state in
            if state.ended == nil { state.ended = PluginError(.unavailable, "\(displayName) was stopped") }
            try? state.stdin?.close()
            state.stdin = nil
        }
    }

    /// Kills the worker now and fails whatever is waiting.
    public func terminate(reason: PluginError) {
        let waiting = state.withLock { state in
            if state.ended == nil { state.ended = reason }
            if let process = state.process, process.isRunning { kill(process.processIdentifier, SIGKILL) }
            try? state.stdin?.close()
            state.stdin = nil
            let waiting = state.pending
            state.pending = [:]
            return waiting
        }
        for continuation in waiting.values { continuation.resume(throwing: reason) }
    }

    /// Whether the worker is running and has not failed: safe to hand to another meeting.
    public var isHealthy: Bool {
        state.withLock { state in
            state.ended == nil && state.pending.isEmpty && state.process?.isRunning == true
        }
    }

    /// The last lines the worker wrote to stderr, for error messages.
    public var stderrTail: String { state.withLock { $0.stderrTail.joined(separator: "\n") } }

    // MARK: reading

    private func startReader(_ fd: Int32, retain pipe: Pipe) {
        let thread = Thread { [self] in
            withExtendedLifetime(pipe) {
                readLines(fd) { line in self.handle(line: line) }
                workerExited()
            }
        }
        thread.name = "parley-worker-out"
        thread.start()
    }

    private func startErrorReader(_ fd: Int32, retain pipe: Pipe) {
        let thread = Thread { [self] in
            withExtendedLifetime(pipe) {
                readLines(fd) { data in
                    let line = String(decoding: data, as: UTF8.self)
                    self.logger.debug("worker stderr", metadata: ["worker": "\(self.displayName)", "line": "\(line)"])
                    self.state.withLock { state in
                        state.stderrTail.append(line)
                        if state.stderrTail.count > 12 { state.stderrTail.removeFirst() }
                    }
                }
            }
        }
        thread.name = "parley-worker-err"
        thread.start()
    }

    private func handle(line: Data) {
        guard !line.isEmpty else { return }
        guard let object = try? JSONSerialization.jsonObject(with: line) as? [String: Any] else {
            terminate(
                reason: PluginError(
                    .protocolViolation,
                    "\(displayName) wrote a line that is not a JSON object: \(String(decoding: line.prefix(200), as: UTF8.self))"
                ))
            return
        }
        guard let id = (object["id"] as? NSNumber)?.intValue else {
            terminate(reason: PluginError(.protocolViolation, "\(displayName) answered without an id"))
            return
        }
        let continuation = state.withLock { $0.pending.removeValue(forKey: id) }
        guard let continuation else {
            if id != 0 { logger.warning("worker answered an unknown id", metadata: ["worker": "\(displayName)"]) }
            return
        }
        if let error = object["error"] {
            let message = (error as? [String: Any])?["message"] as? String ?? "\(error)"
            continuation.resume(throwing: PluginError(.engine, "\(displayName): \(message)"))
        } else if let result = object["result"],
            let data = try? JSONSerialization.data(withJSONObject: result, options: [.fragmentsAllowed])
        {
            continuation.resume(returning: data)
        } else {
            continuation.resume(
                throwing: PluginError(.protocolViolation, "\(displayName) answered with neither result nor error"))
        }
    }

    private func workerExited() {
        let process = state.withLock { $0.process }
        if let process {
            // The pipe closed; give the process a moment to be reaped so its status is known.
            for _ in 0..<50 where process.isRunning { usleep(10_000) }
        }
        let status = process.map { $0.isRunning ? "still running" : "exit status \($0.terminationStatus)" } ?? ""
        let tail = stderrTail
        let detail = tail.isEmpty ? "" : "; its last words: \(tail.suffix(600))"
        terminate(reason: PluginError(.unavailable, "\(displayName) exited (\(status))\(detail)"))
    }
}

/// Calls `body` with each newline-terminated line read from `fd` (and a last unterminated one).
private func readLines(_ fd: Int32, _ body: (Data) -> Void) {
    var pending = Data()
    var buffer = [UInt8](repeating: 0, count: 65_536)
    while true {
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0, errno == EINTR { continue }
        if n <= 0 { break }
        pending.append(contentsOf: buffer[0..<n])
        while let newline = pending.firstIndex(of: 0x0A) {
            body(pending[pending.startIndex..<newline])
            pending.removeSubrange(pending.startIndex...newline)
        }
    }
    if !pending.isEmpty { body(pending) }
}

/// Runs `body`, failing with a timeout error after `limit`.
public func withTimeout<T: Sendable>(
    _ limit: Duration, what: String, _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: limit)
            throw PluginError(.timeout, "\(what) took longer than \(limit)")
        }
        defer { group.cancelAll() }
        return try await group.next()!
    }
}
