import Foundation
import ParleyAudio
import Testing

@Suite struct AudioDecoderTests {
    @Test(arguments: ["wav", "flac", "ogg", "aiff"])
    func decodesEachFormatAndResamplesTo16k(format: String) throws {
        let rate = 44_100
        let path = try Signals.temporaryPath("tone.\(format)")
        try AudioFileWriter.write(Signals.sine(frequency: 1_000, seconds: 1, rate: rate), sampleRate: rate, to: path)
        let decoder = try AudioDecoder(path: path, targetRate: 16_000)
        #expect(decoder.info.sourceRate == rate)
        #expect(decoder.info.targetRate == 16_000)
        let samples = try decoder.readAll()
        #expect(abs(samples.count - 16_000) < 200, "\(samples.count) samples")
        // 1 kHz survives resampling: 2000 zero crossings a second.
        let body = samples[1_000..<15_000]
        let crossings = zip(body, body.dropFirst()).filter { ($0 < 0) != ($1 < 0) }.count
        #expect(abs(Double(crossings) / 0.875 - 2_000) < 20, "\(crossings) crossings")
    }

    /// An upload whose bytes stop coming while libsndfile reads its header (a slow or stalled
    /// client) holds up only itself: a file opened meanwhile decodes at once. (libsndfile's
    /// opens were serialized by one lock, held while the upload's header was awaited, so one
    /// stalled client stopped every meeting from starting.)
    @Test func aStalledUploadDoesNotHoldUpOtherDecoding() throws {
        let path = try Signals.writeWAV(Signals.sine(frequency: 300, seconds: 1))
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        // Past the 4 KB the decoder waits for before it asks libsndfile, short of what
        // libsndfile reads to open it: the open waits for the rest inside libsndfile.
        let upload = try ByteSpool()
        try upload.append(bytes.prefix(5_000))
        let stalled = Completion()
        Thread.detachNewThread {
            stalled.finish(with: (try? AudioDecoder(spool: upload).readAll().count) ?? -1)
        }
        Thread.sleep(forTimeInterval: 1)
        let other = Completion()
        Thread.detachNewThread { other.finish(with: (try? AudioDecoder(path: path).readAll().count) ?? -1) }
        let decoded = other.wait(seconds: 60)
        // Whatever happened, the upload completes, so no thread is left waiting.
        try upload.append(bytes.dropFirst(5_000))
        upload.finish()
        #expect(decoded == 16_000, "a file opened while an upload stalled: \(String(describing: decoded))")
        #expect(stalled.wait(seconds: 60) == 16_000)
    }

    /// A value handed from a thread, waited for with a time limit.
    final class Completion: @unchecked Sendable {
        private let condition = NSCondition()
        private var value: Int?

        func finish(with value: Int) {
            condition.lock()
            self.value = value
            condition.broadcast()
            condition.unlock()
        }

        func wait(seconds: Double) -> Int? {
            let deadline = Date(timeIntervalSinceNow: seconds)
            condition.lock()
            defer { condition.unlock() }
            while value == nil && condition.wait(until: deadline) {}
            return value
        }
    }

    @Test func sixteenKilohertzPassesThroughUnchanged() throws {
        let signal = Signals.sine(frequency: 300, seconds: 0.5)
        let decoded = try AudioDecoder(path: try Signals.writeWAV(signal)).readAll()
        #expect(decoded.count == signal.count)
        #expect(zip(decoded, signal).allSatisfy { abs($0 - $1) < 1.0 / 16_000 })
    }

    @Test func aTextFileIsNotAudio() throws {
        let path = try Signals.temporaryPath("notes.wav")
        try "these are meeting notes, not audio\n".write(toFile: path, atomically: true, encoding: .utf8)
        let error = #expect(throws: AudioError.self) { try AudioDecoder(path: path) }
        #expect(error?.code == .open)
        #expect(error?.message.contains("Format not recognised") == true, "libsndfile's own words: \(error!.message)")
    }

    @Test func anEmptyFile() throws {
        let path = try Signals.temporaryPath("empty.wav")
        _ = FileManager.default.createFile(atPath: path, contents: Data())
        #expect(throws: AudioError.self) { try AudioDecoder(path: path) }
        #expect((try? AudioDecoder(path: path)) == nil)
        do { _ = try AudioDecoder(path: path) } catch { #expect(error.code == .empty) }
    }

    @Test func aDirectoryAndAMissingFile() {
        do { _ = try AudioDecoder(path: NSTemporaryDirectory()) } catch {
            #expect(error.code == .open)
            #expect(error.message.contains("directory"))
        }
        do { _ = try AudioDecoder(path: "/nonexistent/meeting.wav") } catch { #expect(error.code == .open) }
    }

    @Test func aTruncatedWAVFailsUnlessAllowed() throws {
        let path = try Signals.writeWAV(Signals.sine(frequency: 200, seconds: 2))
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let cut = try Signals.temporaryPath("cut.wav")
        try data.prefix(data.count / 2).write(to: URL(fileURLWithPath: cut))
        do {
            _ = try AudioDecoder(path: cut).readAll()
            Issue.record("a truncated WAV decoded without error")
        } catch {
            #expect(error.code == .truncated)
        }
        let partial = try AudioDecoder(path: cut, allowTruncated: true).readAll()
        #expect(abs(partial.count - 16_000) < 100)
    }

    /// A 44-byte WAV header whose fields we can spoil.
    static func wavHeader(channels: UInt16, rate: UInt32, dataBytes: UInt32 = 3_200) -> Data {
        var d = Data()
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { d.append(contentsOf: $0) } }
        func u16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { d.append(contentsOf: $0) } }
        d.append(contentsOf: Array("RIFF".utf8)); u32(36 + dataBytes)
        d.append(contentsOf: Array("WAVEfmt ".utf8)); u32(16); u16(1); u16(channels); u32(rate)
        u32(rate &* UInt32(max(1, channels)) &* 2); u16(max(1, channels) * 2); u16(16)
        d.append(contentsOf: Array("data".utf8)); u32(dataBytes)
        d.append(Data(count: Int(dataBytes)))
        return d
    }

    @Test(arguments: [(UInt16(0), UInt32(16_000)), (1, 0), (1, 4_000_000_000), (300, 16_000)])
    func aHeaderWithAbsurdFieldsIsRejected(channels: UInt16, rate: UInt32) throws {
        let path = try Signals.temporaryPath("bad.wav")
        try Self.wavHeader(channels: channels, rate: rate).write(to: URL(fileURLWithPath: path))
        do {
            _ = try AudioDecoder(path: path).readAll()
            Issue.record("accepted \(channels) channels at \(rate) Hz")
        } catch {
            #expect([.open, .format].contains(error.code), "\(error)")
            #expect(!error.message.contains("\n"))
        }
    }
}
