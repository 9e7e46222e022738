public import Foundation
import Synchronization

/// The Python environment `scripts/setup.sh` makes (`.venv`), where the Python-backed plugins
/// (whisper, neural) find their interpreter and models.
public enum ProjectPython {
    /// The project's `.venv` directory, searched from the current directory and from the
    /// executable upwards.
    public static func environment() -> String? {
        var starts = [FileManager.default.currentDirectoryPath]
        if let executable = Bundle.main.executablePath {
            starts.append((executable as NSString).deletingLastPathComponent)
        }
        for start in starts {
            var directory = start
            for _ in 0..<6 {
                let candidate = (directory as NSString).appendingPathComponent(".venv")
                if FileManager.default.isExecutableFile(atPath: candidate + "/bin/python") { return candidate }
                directory = (directory as NSString).deletingLastPathComponent
            }
        }
        return nil
    }

    /// The `.venv` interpreter, else `python3` from PATH.
    public static func interpreter() -> String { environment().map { $0 + "/bin/python" } ?? "python3" }

    /// Runs a short command, returning its trimmed stdout, or the last line it wrote to stderr.
    public static func run(
        _ executable: String, _ arguments: [String], environment: [String: String]
    ) -> Result<String, PluginError> {
        let process = Process()
        if executable.contains("/") {
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = arguments
        } else {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = [executable] + arguments
        }
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        process.standardInput = FileHandle.nullDevice
        do { try process.run() } catch {
            return .failure(PluginError(.notReady, "cannot run \(executable): \(error.localizedDescription)"))
        }
        let out = output.fileHandleForReading.readDataToEndOfFile()
        let err = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = { (data: Data) in
            String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        guard process.terminationStatus == 0 else {
            let said =
                text(err).split(separator: "\n").last.map(String.init) ?? "exit status \(process.terminationStatus)"
            return .failure(PluginError(.notReady, said))
        }
        return .success(text(out))
    }
}

/// Readiness checks that passed, by what was checked, so each meeting of a batch does not start
/// Python to ask again.
public final class ReadinessCache: Sendable {
    private let ready = Mutex<Set<[String]>>([])

    public init() {}

    public func readiness(key: [String], check: () async -> Readiness) async -> Readiness {
        if ready.withLock({ $0.contains(key) }) { return .ready("checked before") }
        let result = await check()
        if result.isReady { ready.withLock { _ = $0.insert(key) } }
        return result
    }
}
