public import ParleyPluginAPI

/// The transcription, summarization and diarization backends Parley knows, by name. Built once at startup;
/// read-only after that. Registering a second plugin under a taken name is a programming error.
public struct PluginRegistry: Sendable {
    public private(set) var transcribers: [String: any Transcriber.Type] = [:]
    public private(set) var summarizers: [String: any Summarizer.Type] = [:]
    /// Diarization backends besides the built-in classic one (see ``DiarizerChoice``).
    public private(set) var diarizers: [String: any Diarizer.Type] = [:]

    public init() {}

    public mutating func register(_ plugin: any Transcriber.Type) {
        precondition(transcribers[plugin.name] == nil, "a transcriber named '\(plugin.name)' is already registered")
        transcribers[plugin.name] = plugin
    }

    public mutating func register(_ plugin: any Summarizer.Type) {
        precondition(summarizers[plugin.name] == nil, "a summarizer named '\(plugin.name)' is already registered")
        summarizers[plugin.name] = plugin
    }

    public mutating func register(_ plugin: any Diarizer.Type) {
        precondition(
            diarizers[plugin.name] == nil && !DiarizerChoice.reserved.contains(plugin.name),
            "a diarizer named '\(plugin.name)' is already registered")
        diarizers[plugin.name] = plugin
    }

    public func transcriber(_ name: String, settings: PluginSettings) throws -> any Transcriber {
        guard let type = transcribers[name] else {
            throw PipelineError.unknownPlugin("transcriber", name, known: transcribers.keys.sorted())
        }
        do {
            return try type.init(settings: settings)
        } catch {
            throw PipelineError(.badConfiguration, "transcriber \(name): \(error.message)")
        }
    }

    public func summarizer(_ name: String, settings: PluginSettings) throws -> any Summarizer {
        guard let type = summarizers[name] else {
            throw PipelineError.unknownPlugin("summarizer", name, known: summarizers.keys.sorted())
        }
        do {
            return try type.init(settings: settings)
        } catch {
            throw PipelineError(.badConfiguration, "summarizer \(name): \(error.message)")
        }
    }

    public func diarizer(_ name: String, settings: PluginSettings) throws -> any Diarizer {
        guard let type = diarizers[name] else {
            throw PipelineError.unknownPlugin(
                "diarizer", name, known: (DiarizerChoice.reserved + diarizers.keys).sorted())
        }
        do {
            return try type.init(settings: settings)
        } catch {
            throw PipelineError(.badConfiguration, "diarizer \(name): \(error.message)")
        }
    }

    /// The diarizer `name` asks for: `classic` (built in), a registered backend by name, or
    /// `auto`, the best that is ready here (`preferred` in order, else classic), with the
    /// reasons the others are not.
    public func resolveDiarizer(
        _ name: String, configuration: ParleyConfiguration, preferred: [String] = ["neural"]
    ) async throws -> DiarizerChoice {
        switch name {
        case "classic":
            return DiarizerChoice(backend: nil, name: "classic", reason: "asked for")
        case "auto":
            var notReady: [String] = []
            for candidate in preferred where diarizers[candidate] != nil {
                let backend = try diarizer(candidate, settings: configuration.settings("diarizer.\(candidate)"))
                switch await backend.readiness() {
                case .ready: return DiarizerChoice(backend: backend, name: candidate, reason: "the best one ready")
                case .notReady(let why): notReady.append(why)
                }
            }
            return DiarizerChoice(
                backend: nil, name: "classic",
                reason: notReady.isEmpty ? "no other backend" : notReady.joined(separator: "; "))
        default:
            let backend = try diarizer(name, settings: configuration.settings("diarizer.\(name)"))
            if case .notReady(let reason) = await backend.readiness() { throw PipelineError(.notReady, reason) }
            return DiarizerChoice(backend: backend, name: name, reason: "asked for")
        }
    }
}

/// The diarizer a pipeline runs: a backend, or nil for the built-in classic diarizer (the C
/// front's features, energy-based segmentation, spectral clustering), with why it was chosen.
public struct DiarizerChoice: Sendable {
    /// Names that are not registered backends: `classic` (built in) and `auto`.
    public static let reserved = ["classic", "auto"]
    public var backend: (any Diarizer)?
    public var name: String
    public var reason: String

    public init(backend: (any Diarizer)?, name: String, reason: String) {
        self.backend = backend
        self.name = name
        self.reason = reason
    }
}
