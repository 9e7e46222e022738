import ArgumentParser
import Foundation
import ParleyAudio

struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure the audio front on a file (used by benchmarks/run.py and benchmarks/decode.py).",
        subcommands: [Front.self, Decode.self, Voices.self, Search.self])

    /// Seconds of a duration, as a Double.
    static func seconds(_ elapsed: Duration) -> Double {
        Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
    }

    struct Decode: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Time decode + downmix + resample (no features) of a whole file and print JSON.")

        @Argument var file: String
        @Option(help: "Runs; the fastest is reported.") var runs = 3
        @Option(help: "The rate delivered (0: the file's own, no resampling).") var rate = 16_000

        func run() async throws {
            var best = Double.infinity
            var samples = 0
            var info: AudioSourceInfo?
            var buffer = [Float](repeating: 0, count: 65_536)
            for _ in 0..<max(1, runs) {
                let start = ContinuousClock.now
                let decoder = try AudioDecoder(path: file, targetRate: rate)
                samples = 0
                while true {
                    let n = try buffer.withUnsafeMutableBufferPointer { try decoder.read(into: $0) }
                    if n == 0 { break }
                    samples += n
                }
                best = min(best, Bench.seconds(ContinuousClock.now - start))
                info = decoder.info
            }
            guard let info else { return }
            let audio = Double(samples) / Double(info.targetRate)
            let report: [String: Any] = [
                "file": file, "format": info.format, "source_rate": info.sourceRate, "channels": info.channels,
                "audio_seconds": audio, "seconds": best, "realtime_factor": audio / best,
            ]
            let json = try JSONSerialization.data(
                withJSONObject: report, options: [.sortedKeys, .withoutEscapingSlashes])
            print(String(decoding: json, as: UTF8.self))
        }
    }

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
                best = min(best, Bench.seconds(elapsed))
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
