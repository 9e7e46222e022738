public import Foundation
public import ParleyAudio
public import ParleyPluginAPI
import Yams

/// Parley's settings, from three layers, later ones winning: a YAML file, environment
/// variables, then command-line flags (`--set key=value` and the named flags).
///
/// Keys are dotted paths: `pipeline.transcriber`, `transcriber.whisper.model`. The environment
/// variable of a key is `PARLEY_` and the key upper-cased with dots and dashes as underscores:
/// `PARLEY_TRANSCRIBER_WHISPER_MODEL`, `PARLEY_SUMMARIZER_OPENAI_CHAT_API_KEY`.
public struct ParleyConfiguration: Sendable, Hashable {
    public private(set) var values: [String: String]
    /// The file read, if any.
    public private(set) var file: String?

    public init(values: [String: String] = [:], file: String? = nil) {
        self.values = values
        self.file = file
    }

    /// Reads `path` (or, when nil, `$PARLEY_CONFIG`, `./parley.yaml`, `~/.config/parley/parley.yaml`,
    /// whichever exists first), then applies the environment.
    public static func load(
        path: String?, environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> ParleyConfiguration {
        var configuration = ParleyConfiguration()
        let home = environment["HOME"] ?? NSHomeDirectory()
        let candidates =
            path.map { [$0] }
            ?? [environment["PARLEY_CONFIG"], "parley.yaml", "\(home)/.config/parley/parley.yaml"].compactMap { $0 }
        for candidate in candidates {
            guard FileManager.default.fileExists(atPath: candidate) else {
                if path != nil || candidate == environment["PARLEY_CONFIG"] {
                    throw PipelineError(.badConfiguration, "configuration file \(candidate) does not exist")
                }
                continue
            }
            try configuration.read(file: candidate)
            break
        }
        configuration.applyEnvironment(environment)
        return configuration
    }

    /// Reads a YAML file's mappings into dotted keys.
    public mutating func read(file path: String) throws {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw PipelineError(.badConfiguration, "cannot read the configuration file \(path)")
        }
        let node: Node?
        do {
            node = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw PipelineError(.badConfiguration, "\(path): \(error)")
        }
        guard let node else {
            file = path
            return
        }
        guard node.mapping != nil else {
            throw PipelineError(.badConfiguration, "\(path): the top level must be a mapping (key: value)")
        }
        try Self.flatten(node, prefix: "", into: &values, file: path)
        file = path
    }

    private static func flatten(_ node: Node, prefix: String, into values: inout [String: String], file: String) throws
    {
        switch node {
        case .mapping(let mapping):
            for (key, value) in mapping {
                guard let name = key.string else {
                    throw PipelineError(.badConfiguration, "\(file): a key under '\(prefix)' is not text")
                }
                try flatten(value, prefix: prefix.isEmpty ? name : "\(prefix).\(name)", into: &values, file: file)
            }
        case .sequence(let sequence):
            values[prefix] = sequence.compactMap(\.string).joined(separator: " ")
        case .scalar(let scalar):
            values[prefix] = scalar.string
        case .alias:
            throw PipelineError(.badConfiguration, "\(file): aliases are not supported ('\(prefix)')")
        }
    }

    /// The environment variable name of a key.
    public static func environmentName(of key: String) -> String {
        "PARLEY_" + key.uppercased().map { $0 == "." || $0 == "-" ? "_" : $0 }.map(String.init).joined()
    }

    /// Applies `PARLEY_*` variables: those naming a key already known, or a key under one of
    /// the plugin sections (`PARLEY_TRANSCRIBER_WHISPER_<KEY>`).
    public mutating func applyEnvironment(_ environment: [String: String]) {
        let known = Set(values.keys).union(Self.wellKnownKeys)
        var byName: [String: String] = [:]
        for key in known { byName[Self.environmentName(of: key)] = key }
        let sections = Self.pluginSections
        for (name, value) in environment where name.hasPrefix("PARLEY_") {
            if let key = byName[name] {
                values[key] = value
                continue
            }
            for section in sections {
                let prefix = Self.environmentName(of: section) + "_"
                if name.hasPrefix(prefix), name.count > prefix.count {
                    values["\(section).\(name.dropFirst(prefix.count).lowercased())"] = value
                    break
                }
            }
        }
    }

    /// Sets one key (from `--set key=value` or a named flag).
    public mutating func set(_ key: String, _ value: String) { values[key] = value }

    /// Parses `key=value`.
    public mutating func set(assignment: String) throws {
        guard let equals = assignment.firstIndex(of: "="), equals != assignment.startIndex else {
            throw PipelineError(.badConfiguration, "'\(assignment)' is not key=value")
        }
        values[String(assignment[..<equals]).trimmingCharacters(in: .whitespaces)] = String(
            assignment[assignment.index(after: equals)...])
    }

    public subscript(key: String) -> String? { values[key].flatMap { $0.isEmpty ? nil : $0 } }

    public func double(_ key: String, default fallback: Double) throws -> Double {
        guard let text = self[key] else { return fallback }
        guard let value = Double(text), value > 0 else {
            throw PipelineError(.badConfiguration, "setting '\(key)': '\(text)' is not a positive number")
        }
        return value
    }

    /// The settings section of one plugin: `transcriber.whisper` -> its keys.
    public func settings(_ section: String) -> PluginSettings {
        var own: [String: String] = [:]
        for (key, value) in values where key.hasPrefix(section + ".") {
            own[String(key.dropFirst(section.count + 1))] = value
        }
        return PluginSettings(own, section: section)
    }

    public var transcriberName: String { self["pipeline.transcriber"] ?? "whisper" }
    public var summarizerName: String { self["pipeline.summarizer"] ?? "extractive" }
    /// `auto` (the best backend ready here), `classic`, or a backend's name.
    public var diarizerName: String { self["pipeline.diarizer"] ?? "auto" }

    /// The pipeline options these settings give.
    public func pipelineOptions() throws -> PipelineOptions {
        var options = PipelineOptions()
        options.transcription.language = self["pipeline.language"]
        options.transcription.prompt = self["pipeline.prompt"]
        options.timeouts.transcriptionRequest = try double(
            "timeouts.transcription_request", default: options.timeouts.transcriptionRequest)
        options.timeouts.summarization = try double("timeouts.summarization", default: options.timeouts.summarization)
        options.timeouts.uploadIdle = try double("timeouts.upload_idle", default: options.timeouts.uploadIdle)
        options.padding = try double("pipeline.padding", default: options.padding)
        options.windowPause = try double("pipeline.window_pause", default: options.windowPause)
        options.liveWindow = try double("pipeline.live_window", default: options.liveWindow)
        options.liveWindowPause = try double("pipeline.live_window_pause", default: options.liveWindowPause)
        options.liveSilence = try double("pipeline.live_silence", default: options.liveSilence)
        options.livePartial =
            self["pipeline.live_partial"] == "0" ? 0 : try double("pipeline.live_partial", default: options.livePartial)
        options.liveRecluster = try double("pipeline.live_recluster", default: options.liveRecluster)
        options.diarization.speakers = try count("pipeline.speakers")
        options.diarization.minSpeakers = try count("pipeline.min_speakers") ?? 1
        options.diarization.maxSpeakers =
            try count("pipeline.max_speakers")
            ?? max(8, options.diarization.speakers ?? 0, options.diarization.minSpeakers)
        if let problem = options.diarization.speakerCount.problem {
            throw PipelineError(.badConfiguration, "speaker count: \(problem)")
        }
        options.scratchDirectory = self["pipeline.scratch_dir"]
        return options
    }

    /// A speaker count setting: a whole number of at least 1, or nil when not set.
    func count(_ key: String) throws -> Int? {
        guard let text = self[key] else { return nil }
        guard let n = Int(text), n >= 1 else {
            throw PipelineError(.badConfiguration, "setting '\(key)': '\(text)' is not a count")
        }
        return n
    }

    static let wellKnownKeys = [
        "pipeline.transcriber", "pipeline.summarizer", "pipeline.language", "pipeline.prompt", "pipeline.padding",
        "pipeline.window_pause", "pipeline.live_window", "pipeline.live_window_pause", "pipeline.live_silence",
        "pipeline.live_partial", "pipeline.live_recluster",
        "pipeline.speakers", "pipeline.min_speakers", "pipeline.max_speakers",
        "pipeline.diarizer", "pipeline.scratch_dir", "timeouts.transcription_request",
        "timeouts.summarization", "timeouts.upload_idle",
    ]

    static let pluginSections = [
        "transcriber.whisper", "transcriber.pocketsphinx", "transcriber.command", "transcriber.openai",
        "summarizer.extractive", "summarizer.openai-chat", "diarizer.neural", "diarizer.command", "server",
    ]
}

extension DiarizationConfiguration {
    /// The count hints as a diarization backend takes them.
    public var speakerCount: SpeakerCount { SpeakerCount(exact: speakers, min: minSpeakers, max: maxSpeakers) }
}
