import ArgumentParser
import Foundation
import ParleyAudio

struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure the audio front on a file (used by benchmarks/run.sh).",
        subcommands: [Front.self])

    struct Front: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Time decode + resample + STFT + log-mel + MFCC (no pitch) and print JSON.")

        @Argument var file: String
        @Option(help: "Runs; the fastest is reported.") var runs = 3
        @Option(help: "Write the log-mel matrix (frames x 40, float32) here, for comparison with librosa.")
        var dumpLogMel: String?
        @Flag(help: "Include pitch estimation in the timed work.") var pitch = false

        func run() async throws {
            var features = FeatureConfiguration()
            features.pitch = pitch
            // The plain MFCC of librosa, so both sides do the same work.
            features.noiseCompensation = false
            var best = Double.infinity
            var result: AnalyzedAudio?
            for _ in 0..<max(1, runs) {
                let analyzer = AudioAnalyzer(features: features, keepLogMel: dumpLogMel != nil)
                let clock = ContinuousClock()
                let start = clock.now
                result = try analyzer.analyze(path: file)
                let elapsed = clock.now - start
                best = min(best, Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18)
            }
            guard let result else { return }
            if let dumpLogMel {
                let data = result.frames.logMel.withUnsafeBufferPointer { Data(buffer: $0) }
                try data.write(to: URL(fileURLWithPath: dumpLogMel))
            }
            let audio = result.duration
            print(
                #"{"file": "\#(file)", "audio_seconds": \#(audio), "frames": \#(result.frames.count), "#
                    + #""seconds": \#(best), "realtime_factor": \#(audio / best)}"#)
        }
    }
}
