import ArgumentParser
import Foundation
import ParleySynth

struct MakeMeeting: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "make-meeting",
        abstract: "Synthesize a multi-speaker meeting with espeak-ng, with its exact ground truth.",
        discussion: "Writes meeting.<format>, reference.rttm (speaker turns), reference.json (turns with text, "
            + "action items) and reference.txt (the words) into OUT. Needs espeak-ng on PATH.")

    @Argument(help: "The folder to write into (created if missing).")
    var out: String

    @Option(help: "A built-in script: \(MeetingScript.presets.keys.sorted().joined(separator: ", ")).")
    var preset = "standup"

    @Option(help: "A script in JSON (speakers, turns, action_items), instead of a preset.")
    var script: String?

    @Option(help: "Random seed for pauses, overlaps and noise.")
    var seed: UInt64 = 1

    @Option(help: "Sample rate of the written audio.")
    var rate = 16_000

    @Option(help: "Add white noise at this signal-to-noise ratio (dB).")
    var snr: Double?

    @Option(help: "The chance (0...1) that a turn starts before the previous one ends.")
    var overlap = 0.0

    @Option(help: "wav, flac, ogg or aiff.")
    var format = "wav"

    @Option(help: "Speak the script this many times, for longer meetings (each time with slightly varied delivery).")
    var `repeat` = 1

    func run() async throws {
        let chosen: MeetingScript
        if let script {
            guard let data = FileManager.default.contents(atPath: script) else {
                throw ValidationError("cannot read the script \(script)")
            }
            do {
                chosen = try JSONDecoder().decode(MeetingScript.self, from: data)
            } catch {
                throw ValidationError("\(script) is not a meeting script: \(error)")
            }
        } else {
            guard let preset = MeetingScript.presets[preset] else {
                throw ValidationError(
                    "no preset '\(preset)'; choose one of "
                        + MeetingScript.presets.keys.sorted().joined(separator: ", "))
            }
            chosen = preset
        }
        var generator = MeetingGenerator(script: chosen)
        generator.seed = seed
        generator.sampleRate = rate
        generator.snr = snr
        generator.overlap = overlap
        generator.format = format
        generator.repeats = `repeat`
        let output = try generator.write(to: out)
        let r = output.reference
        print("\(output.audioPath): \(r.duration) s, \(r.turns.count) turns, \(r.speakers.count) speakers")
    }
}
