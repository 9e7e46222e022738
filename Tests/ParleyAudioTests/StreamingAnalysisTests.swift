import Foundation
import ParleyAudio
import Testing

@Suite struct StreamingAnalysisTests {
    /// Chunks of a file's bytes, optionally failing part way.
    struct Chunks: AsyncSequence, Sendable {
        typealias Element = [UInt8]
        let bytes: [UInt8]
        let size: Int
        var failAfter: Int?

        struct Broken: Error {}

        struct AsyncIterator: AsyncIteratorProtocol {
            let source: Chunks
            var offset = 0
            var sent = 0
            mutating func next() async throws -> [UInt8]? {
                if let limit = source.failAfter, sent >= limit { throw Broken() }
                guard offset < source.bytes.count else { return nil }
                let end = Swift.min(source.bytes.count, offset + source.size)
                defer { offset = end; sent += 1 }
                await Task.yield()
                return Array(source.bytes[offset..<end])
            }
        }

        func makeAsyncIterator() -> AsyncIterator { AsyncIterator(source: self) }
    }

    static func meetingLikeFile(format: String) throws -> String {
        let signal =
            Signals.harmonic(f0: 130, seconds: 1.2) + Signals.silence(seconds: 0.4)
            + Signals.harmonic(f0: 220, seconds: 1.0)
        let path = try Signals.temporaryPath("speech.\(format)")
        try AudioFileWriter.write(signal, sampleRate: 22_050, to: path)
        return path
    }

    @Test(arguments: ["wav", "flac", "ogg"])
    func chunksGiveTheSameFeaturesAsTheFile(format: String) async throws {
        let path = try Self.meetingLikeFile(format: format)
        let analyzer = AudioAnalyzer(blockSize: 4_096)
        let fromFile = try analyzer.analyze(path: path)
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        var blocks = 0
        let fromChunks = try await analyzer.analyze(chunks: Chunks(bytes: bytes, size: 1_000)) { event in
            if case .frames = event { blocks += 1 }
        }
        #expect(fromChunks.frames.count == fromFile.frames.count)
        #expect(fromChunks.frames.mfcc == fromFile.frames.mfcc)
        #expect(fromChunks.info.sourceRate == 22_050)
        #expect(blocks > 1, "features arrived incrementally, in \(blocks) blocks")
    }

    @Test func aStreamThatFailsAbortsTheDecoding() async throws {
        let path = try Self.meetingLikeFile(format: "wav")
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        await #expect(throws: (any Error).self) {
            _ = try await AudioAnalyzer().analyze(chunks: Chunks(bytes: bytes, size: 4_096, failAfter: 5))
        }
    }

    @Test func garbageChunksAreATypedError() async throws {
        let bytes = [UInt8](repeating: 0x41, count: 10_000)
        do {
            _ = try await AudioAnalyzer().analyze(chunks: Chunks(bytes: bytes, size: 512))
            Issue.record("garbage was accepted as audio")
        } catch let error as AudioError {
            #expect(error.code == .open)
        }
    }

    @Test func anEmptyStream() async throws {
        do {
            _ = try await AudioAnalyzer().analyze(chunks: Chunks(bytes: [], size: 512))
            Issue.record("an empty stream was accepted")
        } catch let error as AudioError {
            #expect(error.code == .empty)
        }
    }
}
