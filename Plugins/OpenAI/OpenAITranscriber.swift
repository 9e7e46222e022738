import Foundation
public import ParleyPluginAPI

/// Any OpenAI-compatible `/v1/audio/transcriptions` server (OpenAI, faster-whisper-server,
/// whisper.cpp's server, ...), asked for `verbose_json` with word and segment timestamps.
/// A server that gives no word timings gets its words spread over each segment, and the
/// meeting's metadata says the word times are estimated.
///
/// Settings (`[transcriber.openai]`): `base_url` (required, e.g. `http://127.0.0.1:8000/v1`),
/// `api_key`, `model` (`whisper-1`), `model_fields` (form fields that carry the model name,
/// space-separated; `model`, add `model_name` for faster-whisper-server 0.0.3), `window`
/// (seconds per request, 25), `timeout` (seconds, 300), `max_retries` (4).
public struct OpenAITranscriber: Transcriber {
    public static let name = "openai"
    public static let summary = "any OpenAI-compatible /v1/audio/transcriptions server, with retries"

    let client: OpenAIClient
    public let model: String
    public let modelFields: [String]
    public let window: Double

    public init(settings: PluginSettings) throws(PluginError) {
        client = try OpenAIClient(settings: settings, pluginName: "openai")
        model = settings.string("model", default: "whisper-1")
        modelFields = settings.string("model_fields", default: "model").split(separator: " ").map(String.init)
        window = try settings.double("window", default: 25)
    }

    public var capabilities: TranscriberCapabilities {
        .init(wordTimestamps: true, preferredWindow: window, acceptsPrompt: true)
    }

    public func readiness() async -> Readiness { await client.readiness() }

    public func makeSession(context: PluginContext) async throws -> any TranscriptionSession {
        if case .notReady(let reason) = await readiness() { throw PluginError(.notReady, reason) }
        return Session(transcriber: self)
    }

    struct Session: TranscriptionSession {
        let transcriber: OpenAITranscriber

        struct Verbose: Decodable {
            struct Segment: Decodable {
                var start: Double
                var end: Double
                var text: String
                var words: [Word]?
            }
            var text: String?
            var segments: [Segment]?
            var words: [Word]?
        }

        func transcribe(_ audio: AudioSegment, options: TranscriptionOptions) async throws -> Transcription {
            var form = MultipartForm()
            let wav = WaveFile.encode(audio.samples, sampleRate: audio.sampleRate)
            form.file("file", filename: "segment.wav", contentType: "audio/wav", data: wav)
            for field in transcriber.modelFields { form.field(field, transcriber.model) }
            form.field("response_format", "verbose_json")
            form.field("timestamp_granularities[]", "word")
            form.field("timestamp_granularities[]", "segment")
            if let language = options.language { form.field("language", language) }
            if let prompt = options.prompt { form.field("prompt", prompt) }
            let data = try await transcriber.client.post(
                path: "/audio/transcriptions", contentType: form.contentType, body: form.finished())
            let verbose: Verbose
            do {
                verbose = try JSONDecoder().decode(Verbose.self, from: data)
            } catch {
                throw PluginError(
                    .protocolViolation,
                    "openai: the server's answer is not verbose_json: \(String(decoding: data.prefix(200), as: UTF8.self))"
                )
            }
            return Self.transcription(verbose, offset: audio.offset, duration: audio.duration)
        }

        /// Segments with words: the segment's own, else the top-level words inside it, else spread.
        static func transcription(_ verbose: Verbose, offset: Double, duration: Double) -> Transcription {
            let segments =
                verbose.segments
                ?? [Verbose.Segment(start: 0, end: duration, text: verbose.text ?? "", words: nil)]
            let loose = verbose.words ?? []
            var estimated = false
            let result = segments.compactMap { segment -> TranscribedSegment? in
                let text = segment.text.trimmingCharacters(in: .whitespacesAndNewlines)
                guard !text.isEmpty else { return nil }
                let start = offset + segment.start
                let end = offset + max(segment.start, segment.end)
                var words =
                    segment.words
                    ?? loose.filter { w in
                        let middle = (w.start + w.end) / 2
                        return middle >= segment.start && middle < segment.end
                    }
                words = words.map {
                    Word(
                        word: $0.word.trimmingCharacters(in: .whitespaces), start: offset + $0.start,
                        end: offset + $0.end, confidence: $0.confidence)
                }
                if words.isEmpty {
                    estimated = true
                    words = Word.spread(text, from: start, to: end)
                }
                return TranscribedSegment(start: start, end: end, text: text, words: words)
            }
            return Transcription(segments: result, wordTiming: estimated ? .estimated : .engine)
        }

        func close() async {}
    }
}
