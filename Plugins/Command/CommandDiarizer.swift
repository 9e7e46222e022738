public import ParleyPluginAPI

/// Any executable that answers `diarize` requests of Parley's subprocess protocol
/// (Docs/plugins.md): pyannote on a GPU, a cloud service's client, a program of your own.
///
/// Settings (`[diarizer.command]`): `command` (required: the program, then its arguments,
/// separated by spaces), `start_timeout` (seconds, 60), `timeout` (seconds per meeting, 7200).
public struct CommandDiarizer: Diarizer {
    public static let name = "command"
    public static let summary = "any program answering 'diarize' in the NDJSON subprocess protocol (Docs/plugins.md)"

    let program: CommandProgram
    public let startTimeout: Double
    public let timeout: Double
    let pool = WorkerPool(capacity: 1)

    public init(settings: PluginSettings) throws(PluginError) {
        program = CommandProgram(settings.string("command"), setting: "diarizer.command.command")
        startTimeout = try settings.double("start_timeout", default: 60)
        timeout = try settings.double("timeout", default: 7200)
    }

    public func readiness() async -> Readiness { program.readiness() }

    public func diarize(file: String, count: SpeakerCount, context: PluginContext) async throws -> DiarizerOutput {
        let (launch, displayName) = try program.launch()
        return try await SubprocessDiarization.diarize(
            file: file, count: count, launch: launch, displayName: displayName, context: context,
            startTimeout: .seconds(startTimeout), timeout: .seconds(timeout), pool: pool)
    }
}
