import ArgumentParser
import Foundation
import ParleyAudio

struct Diarize: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print who spoke when in a recording.",
        discussion: "Decodes any format libsndfile reads, streams it through the feature front in bounded memory, "
            + "and prints one line per speaker turn: start, end and speaker, in seconds.")

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

    @Flag(help: "Decode a file that is shorter than its header says instead of failing.")
    var allowTruncated = false

    @Flag(help: "Label units directly, without the frame-level re-segmentation pass.")
    var noResegment = false

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
        let analyzer = AudioAnalyzer(allowTruncated: allowTruncated)
        let analyzed = try analyzer.analyze(path: file)
        let result = try SpeakerDiarizer(configuration: configuration).diarize(
            analyzed.frames, duration: analyzed.duration)

        let recording = ((file as NSString).lastPathComponent as NSString).deletingPathExtension
        if let rttm {
            let text = RTTM.format(result.turns, recording: recording)
            if rttm == "-" {
                print(text, terminator: "")
            } else {
                do {
                    try text.write(toFile: rttm, atomically: true, encoding: .utf8)
                } catch {
                    throw ValidationError("cannot write \(rttm): \(error.localizedDescription)")
                }
            }
            if rttm == "-" { return }
        }
        if json {
            struct Output: Encodable {
                var file: String
                var source: AudioSourceInfo
                var duration: Double
                var speakers: [String]
                var turns: [SpeakerTurn]
                var speech: [SpeechSegment]
            }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            let output = Output(
                file: file, source: analyzed.info, duration: result.duration, speakers: result.speakers,
                turns: result.turns, speech: result.speech)
            print(String(decoding: try encoder.encode(output), as: UTF8.self))
            return
        }
        print("\(file): \(format(result.duration)) s, \(result.speakers.count) speakers, \(result.turns.count) turns")
        for turn in result.turns {
            print("\(format(turn.start))\t\(format(turn.end))\t\(turn.speaker)")
        }
    }

    private func format(_ seconds: Double) -> String { String(format: "%.2f", seconds) }
}
