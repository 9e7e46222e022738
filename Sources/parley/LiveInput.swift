import ArgumentParser
import Dispatch
import Foundation
import Synchronization

/// Raw PCM on standard input, as `--raw ENCODING:RATE:CHANNELS` describes it
/// (`s16le:16000:1` is what `arecord -f S16_LE -r 16000 -c 1 -t raw` writes).
struct RawFormat: Sendable, Equatable {
    enum Encoding: String, CaseIterable, Sendable {
        case s16le, s32le, f32le

        var bytes: Int { self == .s16le ? 2 : 4 }
        /// WAVE_FORMAT_PCM or WAVE_FORMAT_IEEE_FLOAT.
        var wavFormat: UInt16 { self == .f32le ? 3 : 1 }
    }

    var encoding: Encoding
    var rate: Int
    var channels: Int

    init(encoding: Encoding, rate: Int, channels: Int) {
        self.encoding = encoding
        self.rate = rate
        self.channels = channels
    }

    init(parsing text: String) throws {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 3, let encoding = Encoding(rawValue: parts[0].lowercased()),
            let rate = Int(parts[1]), (1_000...768_000).contains(rate), let channels = Int(parts[2]),
            (1...64).contains(channels)
        else {
            throw ValidationError(
                "--raw takes ENCODING:RATE:CHANNELS, e.g. s16le:16000:1 (encodings: "
                    + Encoding.allCases.map(\.rawValue).joined(separator: ", ")
                    + "; rate 1000-768000 Hz; 1-64 channels)")
        }
        self.init(encoding: encoding, rate: rate, channels: channels)
    }

    /// A WAV header whose sizes say "as long as it goes" (the largest whole number of frames):
    /// the decoder reads the samples as they arrive and the stream's end is the recording's.
    /// ``WaveHeader/finalize(path:)`` writes the true sizes once it has ended.
    var streamingHeader: [UInt8] { WaveHeader.bytes(format: self, dataBytes: nil) }
}

enum WaveHeader {
    static let size = 44

    static func bytes(format: RawFormat, dataBytes: UInt32?) -> [UInt8] {
        let align = format.encoding.bytes * format.channels
        let data = dataBytes ?? (UInt32.max - 36) / UInt32(align) * UInt32(align)
        var header: [UInt8] = []
        func put(_ text: String) { header += Array(text.utf8) }
        func put<T: FixedWidthInteger>(_ value: T) { withUnsafeBytes(of: value.littleEndian) { header += $0 } }
        put("RIFF")
        put(UInt32(36) &+ data)
        put("WAVE")
        put("fmt ")
        put(UInt32(16))
        put(format.encoding.wavFormat)
        put(UInt16(format.channels))
        put(UInt32(format.rate))
        put(UInt32(format.rate * align))
        put(UInt16(align))
        put(UInt16(format.encoding.bytes * 8))
        put("data")
        put(data)
        return header
    }

    /// Writes the true sizes into a WAV file that was written with ``RawFormat/streamingHeader``.
    static func finalize(path: String, format: RawFormat) throws {
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        let length = try handle.seekToEnd()
        let align = UInt64(format.encoding.bytes * format.channels)
        let data = UInt32(clamping: (length - UInt64(size)) / align * align)
        try handle.seek(toOffset: 0)
        handle.write(Data(bytes(format: format, dataBytes: data)))
    }
}

/// Standard input as chunks, read on a thread of its own (a blocking read must not hold a thread
/// of the cooperative pool), preceded by `header`. The first Ctrl-C ends the stream as if the
/// input had ended (the meeting is then finished and its minutes written); a second one exits.
func standardInputChunks(header: [UInt8]) -> AsyncThrowingStream<[UInt8], any Error> {
    let (stream, continuation) = AsyncThrowingStream<[UInt8], any Error>.makeStream()
    if !header.isEmpty { continuation.yield(header) }
    signal(SIGINT, SIG_IGN)
    let interrupts = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
    let interrupted = Interrupted()
    interrupts.setEventHandler {
        if interrupted.again() { exit(130) }
        FileHandle.standardError.write(Data("\nrecording stopped; finishing the meeting (Ctrl-C again to quit)\n".utf8))
        continuation.finish()
    }
    interrupts.resume()
    interruptSource = interrupts
    let reader = Thread {
        let input = FileHandle.standardInput
        while true {
            let data = input.availableData
            if data.isEmpty { break }
            if case .terminated = continuation.yield([UInt8](data)) { return }
        }
        continuation.finish()
    }
    reader.name = "parley-stdin"
    reader.start()
    return stream
}

/// Kept for the life of the process (one recording per run).
private nonisolated(unsafe) var interruptSource: (any DispatchSourceSignal)?

/// Whether Ctrl-C was pressed before.
private final class Interrupted: Sendable {
    private let seen = Mutex(false)

    /// Records a Ctrl-C; true when it is not the first.
    func again() -> Bool {
        seen.withLock { seen in
            defer { seen = true }; return seen
        }
    }
}
