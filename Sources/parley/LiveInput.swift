import ArgumentParser
import Dispatch
import Foundation
import ParleyAudio
import Synchronization

/// Raw PCM on standard input, as `--raw ENCODING:RATE:CHANNELS` describes it
/// (`s16le:16000:1` is what `arecord -f S16_LE -r 16000 -c 1 -t raw` writes).
extension PCMFormat {
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

    /// Writes the recording made behind ``streamingHeader`` (at `stream`) as a WAV file at
    /// `path`, with its true length, and removes `stream`.
    func saveAsWAV(stream: String, path: String) throws {
        let input = try FileHandle(forReadingFrom: URL(fileURLWithPath: stream))
        defer { try? input.close() }
        let length = try input.seekToEnd()
        let align = UInt64(frameBytes)
        let data = (length - UInt64(streamingHeader.count)) / align * align
        try input.seek(toOffset: UInt64(streamingHeader.count))
        let partial = path + ".part"
        FileManager.default.createFile(atPath: partial, contents: Data(waveHeader(dataBytes: UInt32(clamping: data))))
        let output = try FileHandle(forWritingTo: URL(fileURLWithPath: partial))
        defer { try? output.close() }
        try output.seekToEnd()
        var left = data
        while left > 0, let chunk = try input.read(upToCount: Int(min(left, 1 << 20))), !chunk.isEmpty {
            try output.write(contentsOf: chunk)
            left -= UInt64(chunk.count)
        }
        try output.close()
        if FileManager.default.fileExists(atPath: path) { try FileManager.default.removeItem(atPath: path) }
        try FileManager.default.moveItem(atPath: partial, toPath: path)
        try FileManager.default.removeItem(atPath: stream)
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
