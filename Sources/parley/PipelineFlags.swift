import ArgumentParser
import Foundation
import Logging
import ParleyEvents
import ParleyPipeline
import ParleyPluginAPI
import ParleyPlugins
import ParleyStore

/// The settings every command that runs the pipeline takes: a configuration file, then the
/// environment, then these flags.
struct PipelineFlags: ParsableArguments {
    @Option(help: "A YAML configuration file (default: $PARLEY_CONFIG, ./parley.yaml, ~/.config/parley/parley.yaml).")
    var config: String?

    @Option(help: "The transcription backend (see `parley plugins`; default whisper).")
    var transcriber: String?

    @Option(help: "The summarization backend (default extractive).")
    var summarizer: String?

    @Option(help: "The spoken language, as an ISO 639-1 code (default: the backend's).")
    var language: String?

    @Option(
        help: ArgumentHelp(
            "The diarization backend: auto (the best one ready here), classic (built in), neural, command "
                + "(see `parley plugins`; default auto)."))
    var diarizer: String?

    @Option(help: "The number of speakers, if known.")
    var speakers: Int?

    @Option(help: "The fewest speakers the automatic count may choose (default 1).")
    var minSpeakers: Int?

    @Option(help: "The most speakers the automatic count may choose (default 8).")
    var maxSpeakers: Int?

    @Option(
        name: .customLong("set"), help: "Any setting, as key=value (repeatable), e.g. transcriber.whisper.beam_size=1.")
    var assignments: [String] = []

    func configuration() throws -> ParleyConfiguration {
        var configuration = try ParleyConfiguration.load(path: config)
        for assignment in assignments { try configuration.set(assignment: assignment) }
        if let transcriber { configuration.set("pipeline.transcriber", transcriber) }
        if let summarizer { configuration.set("pipeline.summarizer", summarizer) }
        if let language { configuration.set("pipeline.language", language) }
        if let diarizer { configuration.set("pipeline.diarizer", diarizer) }
        for (flag, key, value) in [
            ("--speakers", "pipeline.speakers", speakers), ("--min-speakers", "pipeline.min_speakers", minSpeakers),
            ("--max-speakers", "pipeline.max_speakers", maxSpeakers),
        ] {
            guard let value else { continue }
            guard value >= 1 else { throw ValidationError("\(flag) must be at least 1") }
            configuration.set(key, String(value))
        }
        return configuration
    }

    /// The pipeline the configuration describes, with every backend checked for readiness.
    static func pipeline(_ configuration: ParleyConfiguration, request: DiarizationRequest = .init()) async throws
        -> MeetingPipeline
    {
        // What a meeting's creator asked of its diarization wins over the server's settings.
        var configuration = configuration
        if let diarizer = request.diarizer { configuration.set("pipeline.diarizer", diarizer) }
        for (key, value) in [
            ("pipeline.speakers", request.speakers), ("pipeline.min_speakers", request.minSpeakers),
            ("pipeline.max_speakers", request.maxSpeakers),
        ] {
            if let value { configuration.set(key, String(value)) }
        }
        let registry = PluginRegistry.builtIn
        let transcriberName = configuration.transcriberName
        let summarizerName = configuration.summarizerName
        let transcriber = try registry.transcriber(
            transcriberName, settings: configuration.settings("transcriber.\(transcriberName)"))
        let summarizer = try registry.summarizer(
            summarizerName, settings: configuration.settings("summarizer.\(summarizerName)"))
        if case .notReady(let reason) = await transcriber.readiness() {
            throw PipelineError(.notReady, reason)
        }
        if case .notReady(let reason) = await summarizer.readiness() {
            throw PipelineError(.notReady, reason)
        }
        let diarizer = try await registry.resolveDiarizer(configuration.diarizerName, configuration: configuration)
        return MeetingPipeline(
            transcriber: transcriber, summarizer: summarizer, diarizer: diarizer.backend,
            options: try configuration.pipelineOptions())
    }
}

/// Writes the chosen formats of a finished meeting to `directory/stem.ext`; JSON last, so a
/// complete JSON file means a complete set.
func writeExports(_ state: MeetingState, formats: [ExportFormat], directory: String, stem: String) throws -> [String] {
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    var written: [String] = []
    for format in formats.sorted(by: { ($0 == .json ? 1 : 0) < ($1 == .json ? 1 : 0) }) {
        let path = (directory as NSString).appendingPathComponent("\(stem).\(format.fileExtension)")
        do {
            try writeOutput(Exporter.render(state, as: format), to: path)
        } catch let error as PipelineError {
            throw error
        } catch {
            throw PipelineError(.export, "cannot write \(path): \(error.localizedDescription)")
        }
        written.append(path)
    }
    return written
}

/// Whether standard error is a terminal (progress bars) or a pipe or file (plain lines).
var stderrIsTerminal: Bool { isatty(2) == 1 }

func printError(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}

/// The CLI's logger: standard error, level from PARLEY_LOG_LEVEL (default warning).
func makeLogger() -> Logger {
    var logger = Logger(label: "parley") { StreamLogHandler.standardError(label: $0) }
    let level = ProcessInfo.processInfo.environment["PARLEY_LOG_LEVEL"].flatMap { Logger.Level(rawValue: $0) }
    logger.logLevel = level ?? .warning
    return logger
}

/// Writes a result: to a new or regular file atomically (a temporary file renamed over it), but
/// straight into anything else that exists (`/dev/null`, `/dev/stdout`, a FIFO), which a rename
/// would replace with a regular file (as root, `/dev/null` itself).
func writeOutput(_ text: String, to path: String) throws {
    let type = (try? FileManager.default.attributesOfItem(atPath: path))?[.type] as? FileAttributeType
    let special = type != nil && type != .typeRegular
    try text.write(toFile: path, atomically: !special, encoding: .utf8)
}
