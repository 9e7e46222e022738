/// Headerless PCM as it comes from a capture (a microphone through `arecord`, a browser's
/// AudioWorklet): the sample encoding, rate and channel count that the bytes do not say.
public struct PCMFormat: Sendable, Hashable {
    public enum Encoding: String, CaseIterable, Sendable {
        case s16le, s32le, f32le

        public var bytes: Int { self == .s16le ? 2 : 4 }
        /// WAVE_FORMAT_PCM or WAVE_FORMAT_IEEE_FLOAT.
        var wavFormat: UInt16 { self == .f32le ? 3 : 1 }
        /// The AU encoding number.
        var auEncoding: UInt32 { self == .s16le ? 3 : self == .s32le ? 5 : 6 }
    }

    public var encoding: Encoding
    public var rate: Int
    public var channels: Int

    public init(encoding: Encoding, rate: Int, channels: Int) {
        self.encoding = encoding
        self.rate = rate
        self.channels = channels
    }

    /// 16-bit mono at 16 kHz: what the browser's recorder sends.
    public static let speech = PCMFormat(encoding: .s16le, rate: 16_000, channels: 1)

    /// Bytes of one frame (a sample of every channel).
    public var frameBytes: Int { encoding.bytes * channels }

    /// A little-endian AU header whose data size says "unknown" (0xFFFFFFFF), which libsndfile
    /// reads as "to the end of the stream": the samples are decoded as they arrive. (A WAV
    /// header with a made-up size would not do: libsndfile looks for chunks after the data,
    /// which waits for the end of the input.)
    public var streamingHeader: [UInt8] {
        var header: [UInt8] = Array("dns.".utf8)
        for value in [UInt32(24), UInt32.max, encoding.auEncoding, UInt32(rate), UInt32(channels)] {
            withUnsafeBytes(of: value.littleEndian) { header += $0 }
        }
        return header
    }

    /// The size of ``waveHeader(dataBytes:)``.
    public static let waveHeaderBytes = 44

    /// A canonical 44-byte WAV header for `dataBytes` of these samples (0xFFFFFFFF while the
    /// length is not known yet).
    public func waveHeader(dataBytes: UInt32) -> [UInt8] {
        var header: [UInt8] = []
        func put(_ text: String) { header += Array(text.utf8) }
        func put<T: FixedWidthInteger>(_ value: T) { withUnsafeBytes(of: value.littleEndian) { header += $0 } }
        put("RIFF")
        put(dataBytes > UInt32.max - 36 ? UInt32.max : UInt32(36) + dataBytes)
        put("WAVE")
        put("fmt ")
        put(UInt32(16))
        put(encoding.wavFormat)
        put(UInt16(channels))
        put(UInt32(rate))
        put(UInt32(rate * frameBytes))
        put(UInt16(frameBytes))
        put(UInt16(encoding.bytes * 8))
        put("data")
        put(dataBytes)
        return header
    }
}
