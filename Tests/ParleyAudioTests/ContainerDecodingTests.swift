import Foundation
import ParleyTestSupport
import Synchronization
import Testing

@testable import ParleyAudio

/// What FFmpeg's libraries decode behind the same API: files made by the `ffmpeg` command line
/// (as phones, Zoom, browsers and screen recorders make them) from a known signal, from a path
/// and from bytes still arriving; and the ways they break.
@Suite struct ContainerDecodingTests {
    /// Two tones one after the other (2 s each) at 44.1 kHz stereo, written as WAV.
    static func source() throws -> String {
        let rate = 44_100
        let tones =
            Signals.sine(frequency: 440, seconds: 2, rate: rate) + Signals.sine(frequency: 880, seconds: 2, rate: rate)
        let path = try Signals.temporaryPath("tones.wav")
        try AudioFileWriter.write(tones, sampleRate: rate, to: path)
        return path
    }

    /// The containers and codecs libsndfile does not read, as the ffmpeg arguments that make them.
    static let containers: [(name: String, file: String, arguments: [String])] = [
        ("M4A (AAC), index at the end", "a.m4a", ["-c:a", "aac", "-b:a", "96k"]),
        ("M4A (AAC), index first", "b.m4a", ["-c:a", "aac", "-b:a", "96k", "-movflags", "+faststart"]),
        ("MP4 video with AAC", "c.mp4", ["-c:a", "aac", "-c:v", "libx264", "-preset", "ultrafast"]),
        ("MOV (AAC)", "d.mov", ["-c:a", "aac"]),
        ("MKV (Vorbis)", "e.mkv", ["-c:a", "libvorbis"]),
        ("WebM (Opus), as MediaRecorder makes it", "f.webm", ["-c:a", "libopus", "-b:a", "48k"]),
        ("WebM video (VP8 + Opus)", "g.webm", ["-c:a", "libopus", "-c:v", "libvpx", "-deadline", "realtime"]),
        ("WMA", "h.wma", ["-c:a", "wmav2"]),
        ("3GP (AAC)", "i.3gp", ["-c:a", "aac", "-ar", "16000", "-ac", "1"]),
    ]

    static func convert(_ source: String, to file: String, _ arguments: [String]) throws -> String {
        let out = try Signals.temporaryPath(file)
        try FFmpegCommandLine.convert(source, to: out, arguments)
        return out
    }

    /// Zero crossings per second over [from, to) seconds of 16 kHz samples: twice the tone's
    /// frequency.
    static func crossingRate(_ samples: [Float], from: Double, to: Double) -> Double {
        let part = samples[Int(from * 16_000)..<min(samples.count, Int(to * 16_000))]
        let crossings = zip(part, part.dropFirst()).filter { ($0 < 0) != ($1 < 0) }.count
        return Double(crossings) / (to - from)
    }

    @Test(arguments: containers.indices)
    func decodesAsTheWAVDoes(index: Int) throws {
        let container = Self.containers[index]
        let path = try Self.convert(try Self.source(), to: container.file, container.arguments)
        let decoder = try AudioDecoder(path: path)
        #expect(decoder.info.targetRate == 16_000)
        let samples = try decoder.readAll()
        // Codec delay and padding move the end by some milliseconds, never by more.
        #expect(abs(Double(samples.count) / 16_000 - 4) < 0.1, "\(container.name): \(samples.count) samples")
        #expect(abs(Self.crossingRate(samples, from: 0.3, to: 1.7) - 880) < 15, "\(container.name): 440 Hz")
        #expect(abs(Self.crossingRate(samples, from: 2.3, to: 3.7) - 1_760) < 25, "\(container.name): 880 Hz")
        #expect(!decoder.info.format.isEmpty)
        // The duration a container declares may be its video's (here up to one frame longer).
        if let declared = decoder.info.declaredDuration { #expect(abs(declared - 4) < 0.3, "\(container.name)") }
    }

    /// A phone's AMR-NB: silence (sent as comfort noise, DTX), a tone, two seconds of silence,
    /// another tone. Every frame decodes (FFmpeg's own decoder stops at the first comfort-noise
    /// frame), and the timeline is the WAV's: each tone is where it was. (The file's duration,
    /// guessed from the first frame's bitrate, is no declared length: no "truncated".)
    @Test func aPhonesAMRWithSilencesKeepsItsTimeline() throws {
        let rate = 8_000
        let signal =
            Signals.silence(seconds: 1, rate: rate) + Signals.sine(frequency: 440, seconds: 1, rate: rate)
            + Signals.silence(seconds: 2, rate: rate) + Signals.sine(frequency: 880, seconds: 1, rate: rate)
        let wav = try Signals.writeWAV(signal, rate: rate, name: "phone.wav")
        let path = try Signals.temporaryPath("phone.amr")
        try AMRFile.write(from: wav, to: path)
        let decoder = try AudioDecoder(path: path)
        #expect(decoder.info.format.contains("AMR"), "\(decoder.info.format)")
        let samples = try decoder.readAll()
        #expect(abs(Double(samples.count) / 16_000 - 5) < 0.1, "\(samples.count) samples")
        #expect(abs(Self.crossingRate(samples, from: 1.2, to: 1.8) - 880) < 30, "440 Hz")
        #expect(abs(Self.crossingRate(samples, from: 4.2, to: 4.8) - 1_760) < 50, "880 Hz")
        let quiet = samples[Int(2.4 * 16_000)..<Int(3.6 * 16_000)]
        let tone = samples[Int(4.2 * 16_000)..<Int(4.8 * 16_000)]
        func rms(_ part: ArraySlice<Float>) -> Float {
            (part.reduce(0) { $0 + $1 * $1 } / Float(part.count)).squareRoot()
        }
        #expect(rms(quiet) < 0.05 * rms(tone), "comfort noise \(rms(quiet)) against the tone's \(rms(tone))")
    }

    @Test func anMP4WhoseIndexIsAtTheEndWaitsForTheEndAndSaysSo() async throws {
        let path = try Self.convert(try Self.source(), to: "late.m4a", ["-c:a", "aac"])
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        let notices = Mutex<[String]>([])
        // The first half arrives; the rest only once the decoder said it waits for it (or after
        // 20 s, and then the test fails): what an upload of such a file looks like.
        let (chunks, feed) = AsyncStream<[UInt8]>.makeStream()
        let feeder = Task {
            let half = bytes.count / 2
            for start in stride(from: 0, to: half, by: 4_000) {
                feed.yield(Array(bytes[start..<min(half, start + 4_000)]))
            }
            let deadline = ContinuousClock.now + .seconds(20)
            while notices.withLock({ $0.isEmpty }) && ContinuousClock.now < deadline {
                try? await Task.sleep(for: .milliseconds(10))
            }
            feed.yield(Array(bytes[half...]))
            feed.finish()
        }
        let analyzer = AudioAnalyzer(blockSize: 4_096)
        let audio = try await analyzer.analyze(chunks: chunks) {
            if case .notice(let message) = $0 { notices.withLock { $0.append(message) } }
        }
        await feeder.value
        #expect(abs(audio.duration - 4) < 0.1)
        let said = notices.withLock { $0 }
        #expect(said.count == 1)
        #expect(said.first?.contains("waiting for the end of the upload") == true)

        // With the index first, decoding starts as the bytes arrive: nothing to say.
        let early = try Self.convert(try Self.source(), to: "early.m4a", ["-c:a", "aac", "-movflags", "+faststart"])
        let earlyBytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: early)))
        let quiet = try await analyzer.analyze(chunks: StreamingAnalysisTests.Chunks(bytes: earlyBytes, size: 4_000)) {
            if case .notice = $0 { Issue.record("no notice for an M4A whose index comes first") }
        }
        #expect(abs(quiet.duration - 4) < 0.1)
    }

    @Test func aWebMArrivingInChunksDecodesLikeTheFile() async throws {
        let path = try Self.convert(try Self.source(), to: "recorded.webm", ["-c:a", "libopus"])
        let analyzer = AudioAnalyzer(blockSize: 4_096)
        let fromFile = try analyzer.analyze(path: path)
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        let fromChunks = try await analyzer.analyze(chunks: StreamingAnalysisTests.Chunks(bytes: bytes, size: 1_500))
        #expect(fromChunks.frames.count == fromFile.frames.count)
        #expect(fromChunks.frames.mfcc == fromFile.frames.mfcc)
    }

    @Test func aTruncatedM4AIsAClearError() throws {
        let source = try Self.source()
        // Index first, data cut: the data stops before the duration the index declares.
        let early = try Self.convert(source, to: "cut-early.m4a", ["-c:a", "aac", "-movflags", "+faststart"])
        let data = try Data(contentsOf: URL(fileURLWithPath: early))
        let cut = try Signals.temporaryPath("cut-early-half.m4a")
        try data.prefix(data.count / 2).write(to: URL(fileURLWithPath: cut))
        do {
            _ = try AudioDecoder(path: cut).readAll()
            Issue.record("a truncated M4A decoded without an error")
        } catch {
            #expect(error.code == .truncated, "\(error)")
            #expect(!error.message.contains("\n"))
        }
        // Allowed, what is there decodes.
        let partial = try AudioDecoder(path: cut, allowTruncated: true).readAll()
        #expect(partial.count > 16_000 && partial.count < 4 * 16_000)

        // Index at the end, cut: there is no index at all; FFmpeg's own words say so.
        let late = try Self.convert(source, to: "cut-late.m4a", ["-c:a", "aac"])
        let lateData = try Data(contentsOf: URL(fileURLWithPath: late))
        let lateCut = try Signals.temporaryPath("cut-late-half.m4a")
        try lateData.prefix(lateData.count / 2).write(to: URL(fileURLWithPath: lateCut))
        let error = #expect(throws: AudioError.self) { try AudioDecoder(path: lateCut) }
        #expect(error?.message.contains("moov atom not found") == true, "\(error?.message ?? "")")
        #expect(error?.message.contains("\n") == false)
    }

    @Test func aVideoWithoutSoundIsAClearError() throws {
        let path = try Signals.temporaryPath("silent-film.mp4")
        try FFmpegCommandLine.run([
            "-f", "lavfi", "-i", "color=c=black:s=64x64:r=5", "-t", "2", "-c:v", "libx264", "-preset", "ultrafast",
            path,
        ])
        let error = #expect(throws: AudioError.self) { try AudioDecoder(path: path) }
        #expect(error?.code == .format)
        #expect(error?.message.contains("no audio stream") == true, "\(error?.message ?? "")")
    }

    @Test func bytesThatAreNoKnownContainerAreNotAudio() throws {
        // Noise-like bytes (the same every run): neither library may take a weak guess for audio.
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        let bytes = (0..<50_000).map { _ -> UInt8 in
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            return UInt8(truncatingIfNeeded: state >> 24)
        }
        let path = try Signals.temporaryPath("noise.bin")
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let error = #expect(throws: AudioError.self) { try AudioDecoder(path: path) }
        #expect(error?.code == .open, "\(error?.message ?? "")")
        #expect(error?.message.contains("libsndfile") == true && error?.message.contains("FFmpeg") == true)
    }
}
