import Foundation
public import ParleyPluginAPI

/// Any executable that speaks Parley's subprocess protocol (Docs/plugins.md), in any language.
///
/// Settings (`[transcriber.command]`): `command` (required: the program, then its arguments,
/// separated by spaces), `window` (seconds of speech per request; 0 sends each speech
/// segment alone), `word_timestamps` (whether the program times words; otherwise Parley
/// spreads them), `start_timeout` (seconds, 60).
public struct CommandTranscriber: Transcriber {
    public static let name = "command"
    public static let summary = "any program speaking the NDJSON subprocess protocol (Docs/plugins.md)"

    public let command: [String]
    public let window: Double
    public let wordTimestamps: Bool
    public let startTimeout: Double
    /// Workers kept between meetings (a batch starts the program once per job, not per file).
    let pool = WorkerPool()

    public init(settings: PluginSettings) throws(PluginError) {
        command = (settings.string("command") ?? "").split(whereSeparator: \.isWhitespace).map(String.init)
        window = try settings.double("window", default: 0)
        wordTimestamps = try settings.bool("word_timestamps", default: true)
        startTimeout = try settings.double("start_timeout", default: 60)
    }

    public var capabilities: TranscriberCapabilities {
        .init(wordTimestamps: wordTimestamps, preferredWindow: window, acceptsPrompt: true)
    }

    /// The program's full path: as given when it has a slash, else searched in PATH.
    func executable() -> String? {
        guard let program = command.first else { return nil }
        if program.contains("/") { return FileManager.default.isExecutableFile(atPath: program) ? program : nil }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for directory in path.split(separator: ":") {
            let candidate = "\(directory)/\(program)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    public func readiness() async -> Readiness {
        guard let program = command.first else {
            return .notReady("command: no program configured (set transcriber.command.command)")
        }
        guard let path = executable() else {
            return .notReady("command: '\(program)' is not an executable file or not in PATH")
        }
        return .ready("\(([path] + command.dropFirst()).joined(separator: " "))")
    }

    public func makeSession(context: PluginContext) async throws -> any TranscriptionSession {
        if case .notReady(let reason) = await readiness() { throw PluginError(.notReady, reason) }
        guard let path = executable() else { throw PluginError(.notReady, "command: no program") }
        return try await SubprocessTranscriptionSession.start(
            launch: .init(executable: path, arguments: Array(command.dropFirst())),
            displayName: "command '\((path as NSString).lastPathComponent)'", context: context,
            startTimeout: .seconds(startTimeout), pool: pool)
    }
}
