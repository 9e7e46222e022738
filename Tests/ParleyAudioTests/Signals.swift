import Foundation
import ParleyAudio
import ParleyTestSupport

/// Test signals made here, not fixture files.
enum Signals {
    static func sine(frequency: Double, seconds: Double, rate: Int = 16_000, amplitude: Float = 0.5) -> [Float] {
        (0..<Int(seconds * Double(rate))).map {
            amplitude * Float(sin(2 * .pi * frequency * Double($0) / Double(rate)))
        }
    }

    /// A voiced-like tone: a fundamental and decaying harmonics.
    static func harmonic(f0: Double, seconds: Double, rate: Int = 16_000, secondHarmonic: Float = 0.5) -> [Float] {
        (0..<Int(seconds * Double(rate))).map { i in
            let t = Double(i) / Double(rate)
            var v = 0.3 * Float(sin(2 * .pi * f0 * t))
            v += 0.3 * secondHarmonic * Float(sin(2 * .pi * 2 * f0 * t))
            for h in 3...8 { v += 0.3 / Float(h) * Float(sin(2 * .pi * Double(h) * f0 * t)) }
            return v
        }
    }

    static func silence(seconds: Double, rate: Int = 16_000) -> [Float] {
        [Float](repeating: 0, count: Int(seconds * Double(rate)))
    }

    static func temporaryPath(_ name: String) throws -> String {
        try TestScratch.file(name)
    }

    static func writeWAV(_ samples: [Float], rate: Int = 16_000, name: String = "signal.wav") throws -> String {
        let path = try temporaryPath(name)
        try AudioFileWriter.write(samples, sampleRate: rate, to: path)
        return path
    }
}
