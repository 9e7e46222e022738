import ArgumentParser
import Foundation
import Logging
import ParleyAudio
import ParleyPipeline
import ParleyPluginAPI
import ParleyPlugins

struct Diarize: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print who spoke when in a recording.",
        discussion: "Decodes any format libsndfile reads, streams it through the feature front in bounded memory, "
            + "and prints one line per speaker turn: start, end and speaker, in seconds. --diarizer auto (the "
            + "default) uses the neural backend when setup installed it, else the built-in classic one.")

    @Argument(help: "An audio file (WAV, FLAC, Ogg Vorbis, AIFF, MP3, ...).")
    var file: String

    @Option(help: "The exact number of speakers, if known.")
    var speakers: Int?

    @Option(help: "The fewest speakers the automatic count may choose.")
    var minSpeakers: Int = 1

    @Option(help: "The most speakers the automatic count may choose (default 8).")
    var maxSpeakers: Int?

    @Option(help: "Also write the turns as NIST RTTM to this path ('-' for standard output).")
    var rttm: String?

    @Flag(help: "Print JSON (turns, speakers, speech segments, source) instead of a table.")
    var json = false

    @Flag(help: "With --json: each speaker's voice embedding, as voice profiles use them (biometric data).")
    var voices = false

    @Flag(help: "Decode a file that is shorter than its header says instead of failing.")
    var allowTruncated = false

    @Flag(help: "Label units directly, without the frame-level re-segmentation pass (classic).")
    var noResegment = false

    @Option(
        help:
            "auto (the best backend ready here), classic (built in), neural or command (default: pipeline.diarizer, else auto)."
    )
    var diarizer: String?

    @Option(help: "A YAML configuration file (the diarizer.* settings are read from it).")
    var config: String?

    @Option(name: .customLong("set"), help: "A setting, as key=value (repeatable), e.g. diarizer.neural.threads=2.")
    var assignments: [String] = []

    func validate() throws {
        if let speakers, speakers < 1 { throw ValidationError("--speakers must be at least 1") }
        if minSpeakers < 1 { throw ValidationError("--min-speakers must be at least 1") }
        if let maxSpeakers, maxSpeakers < minSpeakers {
            throw ValidationError("--max-speakers must not be below --min-speakers")
        }
        if let speakers, speakers < minSpeakers || speakers > (maxSpeakers ?? .max) {
            throw ValidationError("--speakers must lie between --min-speakers and --max-speakers")
        }
    }

    func run() async throws {
        var configuration = DiarizationConfiguration(
            speakers: speakers, minSpeakers: minSpeakers, maxSpeakers: maxSpeakers ?? max(8, minSpeakers, speakers ?? 0)
        )
        configuration.resegment = !noResegment
        var settings = try ParleyConfiguration.load(path: config)
        for assignment in assignments { try settings.set(assignment: assignment) }
        let choice = try await PluginRegistry.builtIn.resolveDiarizer(
            diarizer ?? settings.diarizerName, configuration: settings)
        var analyzer = AudioAnalyzer(allowTruncated: allowTruncated)
        let analyzed: AnalyzedAudio
        let result: Diarization
        if let backend = choice.backend {
            // The backend reads the recording as a 16 kHz mono WAV, written while it is decoded.
            let folder = try ScratchFolder("diarize")
            defer { folder.remove() }
            let scratch = folder.path
            let wave = try WaveFileWriter(path: scratch + "/audio.wav", sampleRate: analyzer.features.sampleRate)
            analyzer.emitSamples = true
            analyzed = try await analyzer.analyze(file: file) { event in
                if case .samples(let block, _) = event { try wave.append(block) }
            }
            try wave.finish()
            let output = try await backend.diarize(
                file: wave.path, count: configuration.speakerCount,
                context: PluginContext(logger: makeLogger(), scratchDirectory: scratch))
            result = Diarization(output, duration: analyzed.duration, features: analyzer.features)
        } else {
            analyzed = try analyzer.analyze(path: file)
            result = try SpeakerDiarizer(configuration: configuration).diarize(
                analyzed.frames, duration: analyzed.duration)
        }
        let recording = ((file as NSString).lastPathComponent as NSString).deletingPathExtension
        if let rttm {
            let text = RTTM.format(result.turns, recording: recording)
            if rttm == "-" {
                print(text, terminator: "")
            } else {
                do {
                    try writeOutput(text, to: rttm)
                } catch {
                    throw ValidationError("cannot write \(rttm): \(error.localizedDescription)")
                }
            }
            if rttm == "-" { return }
        }
        if json {
            struct Output: Encodable {
                var file: String
                var diarizer: String
                var source: AudioSourceInfo
                var duration: Double
                var speakers: [String]
                var turns: [SpeakerTurn]
                var speech: [SpeechSegment]
                /// Which voice embeddings the diarizer computed per speaker, if any.
                var embeddingKind: String?
                /// Each speaker's voice embedding, with --voices.
                var voices: [String: [Float]]?

                enum CodingKeys: String, CodingKey {
                    case file, diarizer, source, duration, speakers, turns, speech, voices
                    case embeddingKind = "embedding_kind"
                }
            }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            let output = Output(
                file: file, diarizer: choice.name, source: analyzed.info, duration: result.duration,
                speakers: result.speakers,
                turns: result.turns, speech: result.speech, embeddingKind: result.voiceKind,
                voices: voices ? result.voices : nil)
            print(String(decoding: try encoder.encode(output), as: UTF8.self))
            return
        }
        print(
            "\(file): \(format(result.duration)) s, \(Exporter.counted(result.speakers.count, "speaker")), "
                + "\(Exporter.counted(result.turns.count, "turn")) (\(choice.name) diarizer)")
        for turn in result.turns {
            print(
                "\(format(turn.start))\t\(format(turn.end))\t\(turn.speaker)\(turn.overlap ? "\t(over another)" : "")")
        }
    }

    private func format(_ seconds: Double) -> String { String(format: "%.2f", seconds) }
}
