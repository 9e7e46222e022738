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

    let program: CommandProgram
    public var command: [String] { program.words }
    public let window: Double
    public let wordTimestamps: Bool
    public let startTimeout: Double
    /// Workers kept between meetings (a batch starts the program once per job, not per file).
    let pool = WorkerPool()

    public init(settings: PluginSettings) throws(PluginError) {
        program = CommandProgram(settings.string("command"), setting: "transcriber.command.command")
        window = try settings.double("window", default: 0)
        wordTimestamps = try settings.bool("word_timestamps", default: true)
        startTimeout = try settings.double("start_timeout", default: 60)
    }

    public var capabilities: TranscriberCapabilities {
        .init(wordTimestamps: wordTimestamps, preferredWindow: window, acceptsPrompt: true)
    }

    public func readiness() async -> Readiness { program.readiness() }

    public func makeSession(context: PluginContext) async throws -> any TranscriptionSession {
        let (launch, displayName) = try program.launch()
        return try await SubprocessTranscriptionSession.start(
            launch: launch, displayName: displayName, context: context, startTimeout: .seconds(startTimeout),
            pool: pool)
    }
}
