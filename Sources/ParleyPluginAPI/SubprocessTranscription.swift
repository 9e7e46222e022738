import Foundation
import Logging

/// What a worker says about itself in the `hello` handshake.
public struct WorkerHandshake: Sendable, Hashable, Codable {
    public var name: String?
    public var `protocol`: Int?
    /// How it takes audio: "path" (a 16 kHz mono WAV file) and/or "pcm_s16le_base64".
    public var audio: [String]?
    public var wordTimestamps: Bool?
    public var languages: [String]?
}

/// The transcription side of the subprocess protocol, shared by the `whisper` and `command`
/// plugins: a worker started once per meeting, one `transcribe` request per segment.
public struct SubprocessTranscriptionSession: TranscriptionSession {
    public let worker: SubprocessWorker
    public let handshake: WorkerHandshake
    let scratchDirectory: String
    let usePath: Bool
    let pool: WorkerPool?

    /// Takes an idle worker from `pool`, or starts one and performs the handshake.
    public static func start(
        launch: SubprocessWorker.Launch, displayName: String, context: PluginContext,
        startTimeout: Duration = .seconds(120), pool: WorkerPool? = nil
    ) async throws -> Self {
        let (worker, handshake) = try await WorkerPool.checkOut(
            from: pool, launch: launch, displayName: displayName, logger: context.logger, startTimeout: startTimeout)
        let modes = handshake.audio ?? ["path"]
        guard modes.contains("path") || modes.contains("pcm_s16le_base64") else {
            await worker.stop()
            throw PluginError(
                .protocolViolation, "\(displayName) takes audio as \(modes), Parley sends 'path' or 'pcm_s16le_base64'")
        }
        return Self(
            worker: worker, handshake: handshake, scratchDirectory: context.scratchDirectory,
            usePath: modes.contains("path"), pool: pool)
    }

    private struct Request: Encodable, Sendable {
        struct Audio: Encodable, Sendable {
            var path: String?
            var pcmS16leBase64: String?
            var sampleRate: Int
        }
        var audio: Audio
        var offset: Double
        var duration: Double
        var language: String?
        var prompt: String?
    }

    private struct Response: Decodable, Sendable {
        struct Segment: Decodable, Sendable {
            var start: Double
            var end: Double
            var text: String
            var words: [Word]?
        }
        var segments: [Segment]
    }

    public func transcribe(_ audio: AudioSegment, options: TranscriptionOptions) async throws -> Transcription {
        var file: String?
        var request = Request(
            audio: .init(sampleRate: audio.sampleRate), offset: audio.offset, duration: audio.duration,
            language: options.language, prompt: options.prompt)
        if usePath {
            let path = (scratchDirectory as NSString).appendingPathComponent("segment-\(UUID().uuidString).wav")
            try WaveFile.write(audio.samples, sampleRate: audio.sampleRate, to: path)
            request.audio.path = path
            file = path
        } else {
            request.audio.pcmS16leBase64 = WaveFile.pcm16(audio.samples).base64EncodedString()
        }
        defer { if let file { try? FileManager.default.removeItem(atPath: file) } }
        let response = try await worker.request("transcribe", params: request, as: Response.self)
        var timing = WordTiming.engine
        let segments = response.segments.compactMap { segment -> TranscribedSegment? in
            let text = segment.text.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !text.isEmpty else { return nil }
            let start = audio.offset + max(0, segment.start)
            let end = audio.offset + max(segment.start, segment.end)
            if let words = segment.words, !words.isEmpty {
                return TranscribedSegment(
                    start: start, end: end, text: text,
                    words: words.map {
                        Word(
                            word: $0.word.trimmingCharacters(in: .whitespaces), start: audio.offset + $0.start,
                            end: audio.offset + $0.end, confidence: min(1, max(0, $0.confidence)))
                    })
            }
            timing = .estimated
            return TranscribedSegment(
                start: start, end: end, text: text, words: Word.spread(text, from: start, to: end))
        }
        return Transcription(segments: segments, wordTiming: timing)
    }

    /// Gives the worker back to the pool (when it is healthy), or stops it.
    public func close() async {
        if let pool { await pool.give(worker, handshake: handshake) } else { await worker.stop() }
    }
}

extension Word {
    /// Words of `text` spread over [start, end] in proportion to their length, for backends
    /// that time only segments. Confidence is 1: nothing is known about it.
    public static func spread(_ text: String, from start: Double, to end: Double) -> [Word] {
        let tokens = text.split(whereSeparator: \.isWhitespace).map(String.init)
        let total = tokens.reduce(0) { $0 + $1.count + 1 }
        guard total > 0 else { return [] }
        var position = 0
        let span = max(0, end - start)
        return tokens.map { token in
            let a = start + span * Double(position) / Double(total)
            position += token.count + 1
            let b = start + span * Double(position - 1) / Double(total)
            return Word(word: token, start: a, end: b, confidence: 1)
        }
    }
}

extension Word {
    private enum CodingKeys: String, CodingKey { case word, start, end, confidence, probability }

    /// Reads `confidence`, or `probability` as whisper calls it; 1 when neither is given.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        word = try c.decode(String.self, forKey: .word)
        start = try c.decode(Double.self, forKey: .start)
        end = try c.decode(Double.self, forKey: .end)
        confidence =
            try c.decodeIfPresent(Double.self, forKey: .confidence)
            ?? c.decodeIfPresent(Double.self, forKey: .probability) ?? 1
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(word, forKey: .word)
        try c.encode(start, forKey: .start)
        try c.encode(end, forKey: .end)
        try c.encode(confidence, forKey: .confidence)
    }
}
