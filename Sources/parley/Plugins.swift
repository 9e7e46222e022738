import ArgumentParser
import Foundation
import ParleyPipeline
import ParleyPluginAPI
import ParleyPlugins

struct Plugins: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List every transcription, summarization and diarization backend, and whether it is ready.",
        discussion: "Each backend is checked as configured (file, environment, --set): model present, "
            + "executable found, server reachable. A backend that is not ready says why.")

    @OptionGroup var flags: PipelineFlags

    @Flag(help: "Print JSON.")
    var json = false

    struct Row: Encodable {
        var kind: String
        var name: String
        var ready: Bool
        var detail: String
        var summary: String
        var selected: Bool
    }

    func run() async throws {
        let configuration = try flags.configuration()
        let registry = PluginRegistry.builtIn
        var rows: [Row] = []
        for name in registry.transcribers.keys.sorted() {
            rows.append(
                await row(
                    "transcriber", name, registry.transcribers[name]!.summary, configuration.transcriberName == name
                ) {
                    try await registry.transcriber(name, settings: configuration.settings("transcriber.\(name)"))
                        .readiness()
                })
        }
        for name in registry.summarizers.keys.sorted() {
            rows.append(
                await row(
                    "summarizer", name, registry.summarizers[name]!.summary, configuration.summarizerName == name
                ) {
                    try await registry.summarizer(name, settings: configuration.settings("summarizer.\(name)"))
                        .readiness()
                })
        }
        let chosen: DiarizerChoice
        do {
            chosen = try await registry.resolveDiarizer(configuration.diarizerName, configuration: configuration)
        } catch {
            chosen = DiarizerChoice(backend: nil, name: configuration.diarizerName, reason: "\(error)")
        }
        rows.append(
            Row(
                kind: "diarizer", name: "classic", ready: true,
                detail: chosen.name == "classic"
                    ? "used: \(chosen.reason)" : "built in (C front, energy segmentation, spectral clustering)",
                summary: "built in: energy-based segmentation and clustering of spectral features",
                selected: chosen.name == "classic"))
        for name in registry.diarizers.keys.sorted() {
            rows.append(
                await row("diarizer", name, registry.diarizers[name]!.summary, chosen.name == name) {
                    try await registry.diarizer(name, settings: configuration.settings("diarizer.\(name)")).readiness()
                })
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try encoder.encode(rows), as: UTF8.self))
            return
        }
        if let file = configuration.file { print("configuration: \(file)") }
        for kind in ["transcriber", "summarizer", "diarizer"] {
            print("\(kind)s:")
            for row in rows where row.kind == kind {
                let mark = row.selected ? "*" : " "
                print(
                    "  \(mark) \(row.name.padding(toLength: 14, withPad: " ", startingAt: 0))"
                        + "\(row.ready ? "ready    " : "NOT READY") \(row.summary)")
                print("      \(row.detail)")
            }
        }
        print("(* = selected by the configuration; diarizer \(configuration.diarizerName) chose \(chosen.name))")
    }

    /// A backend's row: its readiness as configured, or why it cannot even be configured.
    private func row(
        _ kind: String, _ name: String, _ summary: String, _ selected: Bool,
        readiness check: () async throws -> Readiness
    ) async -> Row {
        let readiness: Readiness
        do { readiness = try await check() } catch { readiness = .notReady("\(error)") }
        switch readiness {
        case .ready(let detail):
            return Row(kind: kind, name: name, ready: true, detail: detail, summary: summary, selected: selected)
        case .notReady(let reason):
            return Row(kind: kind, name: name, ready: false, detail: reason, summary: summary, selected: selected)
        }
    }
}
