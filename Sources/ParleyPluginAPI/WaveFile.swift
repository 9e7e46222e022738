public import Foundation

/// The one audio format the plugin protocol exchanges: 16-bit PCM mono WAV.
public enum WaveFile {
    /// One sample in [-1, 1] as a 16-bit integer, clipped.
    public static func int16(_ sample: Float) -> Int16 {
        Int16(max(-32_768, min(32_767, (sample * 32_768).rounded())))
    }

    /// Samples clipped to [-1, 1] as little-endian 16-bit integers.
    public static func pcm16(_ samples: [Float]) -> Data {
        var data = Data(count: samples.count * 2)
        data.withUnsafeMutableBytes { raw in
            let out = raw.bindMemory(to: Int16.self)
            for (i, s) in samples.enumerated() { out[i] = int16(s).littleEndian }
        }
        return data
    }

    /// Writes a mono 16-bit WAV file.
    public static func write(_ samples: [Float], sampleRate: Int, to path: String) throws {
        guard FileManager.default.createFile(atPath: path, contents: encode(samples, sampleRate: sampleRate)) else {
            throw PluginError(.engine, "cannot write \(path)")
        }
    }

    /// A mono 16-bit WAV file's bytes.
    public static func encode(_ samples: [Float], sampleRate: Int) -> Data {
        let pcm = pcm16(samples)
        var header = Data()
        func put(_ text: String) { header.append(contentsOf: Array(text.utf8)) }
        func put32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { header.append(contentsOf: $0) } }
        func put16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { header.append(contentsOf: $0) } }
        put("RIFF")
        put32(UInt32(36 + pcm.count))
        put("WAVE")
        put("fmt ")
        put32(16)
        put16(1)
        put16(1)
        put32(UInt32(sampleRate))
        put32(UInt32(sampleRate * 2))
        put16(2)
        put16(16)
        put("data")
        put32(UInt32(pcm.count))
        return header + pcm
    }
}
