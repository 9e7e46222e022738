public import ParleyPluginAPI

/// The transcription and summarization backends Parley knows, by name. Built once at startup;
/// read-only after that. Registering a second plugin under a taken name is a programming error.
public struct PluginRegistry: Sendable {
    public private(set) var transcribers: [String: any Transcriber.Type] = [:]
    public private(set) var summarizers: [String: any Summarizer.Type] = [:]

    public init() {}

    public mutating func register(_ plugin: any Transcriber.Type) {
        precondition(transcribers[plugin.name] == nil, "a transcriber named '\(plugin.name)' is already registered")
        transcribers[plugin.name] = plugin
    }

    public mutating func register(_ plugin: any Summarizer.Type) {
        precondition(summarizers[plugin.name] == nil, "a summarizer named '\(plugin.name)' is already registered")
        summarizers[plugin.name] = plugin
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
}
