import ArgumentParser
import Foundation
import ParleyAudio

struct Features: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a recording's per-frame features as raw float32 files.",
        discussion: "Writes PREFIX.energy.f32, PREFIX.f0.f32, PREFIX.voicing.f32 (one value a frame), "
            + "PREFIX.mfcc.f32 (20 a frame), PREFIX.logmel.f32 (40 a frame) and PREFIX.json (frame count, "
            + "hop, configuration, source). Frame i is centred at (i * 160 + 256) / 16000 s.")

    @Argument(help: "An audio file.")
    var file: String

    @Option(help: "Path prefix for the output files.")
    var output: String

    @Flag(help: "MFCC without noise compensation (librosa's exactly).")
    var plainMfcc = false

    func run() async throws {
        var configuration = FeatureConfiguration()
        configuration.noiseCompensation = !plainMfcc
        let analyzed = try AudioAnalyzer(features: configuration, keepLogMel: true).analyze(path: file)
        let f = analyzed.frames
        func write(_ values: [Float], _ suffix: String) throws {
            let data = values.withUnsafeBufferPointer { Data(buffer: $0) }
            try data.write(to: URL(fileURLWithPath: output + "." + suffix))
        }
        try write(f.energy, "energy.f32")
        try write(f.f0, "f0.f32")
        try write(f.voicing, "voicing.f32")
        try write(f.mfcc, "mfcc.f32")
        try write(f.logMel, "logmel.f32")
        struct Header: Encodable {
            var frames: Int
            var configuration: FeatureConfiguration
            var source: AudioSourceInfo
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(Header(frames: f.count, configuration: configuration, source: analyzed.info))
            .write(to: URL(fileURLWithPath: output + ".json"))
        print("\(f.count) frames written to \(output).*")
    }
}
