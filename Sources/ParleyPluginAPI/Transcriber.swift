/// 16 kHz mono speech handed to a transcription backend, with where it sits in the meeting.
public struct AudioSegment: Sendable {
    /// Samples in [-1, 1] at ``sampleRate``.
    public var samples: [Float]
    public var sampleRate: Int
    /// Seconds from the start of the meeting to the first sample.
    public var offset: Double

    public init(samples: [Float], sampleRate: Int = 16_000, offset: Double) {
        self.samples = samples
        self.sampleRate = sampleRate
        self.offset = offset
    }

    public var duration: Double { Double(samples.count) / Double(sampleRate) }
}

/// Per-request options.
public struct TranscriptionOptions: Sendable, Hashable, Codable {
    /// ISO 639-1 code, or nil to let the backend decide.
    public var language: String?
    /// Text that conditions the recognizer: names, jargon, the previous sentence.
    public var prompt: String?

    public init(language: String? = nil, prompt: String? = nil) {
        self.language = language
        self.prompt = prompt
    }
}

/// One recognized word. Times are seconds from the start of the meeting.
public struct Word: Sendable, Hashable, Codable {
    public var word: String
    public var start: Double
    public var end: Double
    /// 0...1; 1 when the backend gives none.
    public var confidence: Double

    public init(word: String, start: Double, end: Double, confidence: Double) {
        self.word = word
        self.start = start
        self.end = end
        self.confidence = confidence
    }
}

/// A stretch of recognized text. Times are seconds from the start of the meeting.
public struct TranscribedSegment: Sendable, Hashable, Codable {
    public var start: Double
    public var end: Double
    public var text: String
    public var words: [Word]

    public init(start: Double, end: Double, text: String, words: [Word]) {
        self.start = start
        self.end = end
        self.text = text
        self.words = words
    }
}

/// Where word times came from.
public enum WordTiming: String, Sendable, Hashable, Codable {
    /// The recognizer aligned each word.
    case engine
    /// The backend gave only segment times; words were spread over the segment by length.
    case estimated
}

/// What a backend returns for one ``AudioSegment``.
public struct Transcription: Sendable, Hashable {
    public var segments: [TranscribedSegment]
    public var wordTiming: WordTiming

    public init(segments: [TranscribedSegment], wordTiming: WordTiming = .engine) {
        self.segments = segments
        self.wordTiming = wordTiming
    }
}

/// What a transcription backend can do; the engine shapes its requests by it.
public struct TranscriberCapabilities: Sendable, Hashable, Codable {
    /// Whether word times come from the engine (otherwise they are estimated).
    public var wordTimestamps: Bool
    /// Languages it knows; empty means it detects or accepts any.
    public var languages: [String]
    /// Seconds of speech worth sending in one request. Backends with a fixed window
    /// (whisper: 30 s) work best when short segments are grouped up to it; 0 sends each
    /// speech segment alone.
    public var preferredWindow: Double
    /// Whether ``TranscriptionOptions/prompt`` is used.
    public var acceptsPrompt: Bool

    public init(
        wordTimestamps: Bool, languages: [String] = [], preferredWindow: Double = 0, acceptsPrompt: Bool = false
    ) {
        self.wordTimestamps = wordTimestamps
        self.languages = languages
        self.preferredWindow = preferredWindow
        self.acceptsPrompt = acceptsPrompt
    }
}

/// A transcription backend, registered by type and chosen by ``name``.
///
/// Configure in `init` (cheap, no I/O); check the environment in ``readiness()``;
/// do the work in a ``TranscriptionSession``, one per meeting, which may hold a
/// worker process or a loaded model.
public protocol Transcriber: Sendable {
    /// The name users choose it by: "whisper".
    static var name: String { get }
    /// One line for `parley plugins`.
    static var summary: String { get }
    /// Reads the plugin's settings; throws ``PluginError/Code-swift.struct/badSetting`` on a malformed one.
    init(settings: PluginSettings) throws(PluginError)
    /// What this backend, so configured, can do.
    var capabilities: TranscriberCapabilities { get }
    /// Checks that the model, executable or server is there, without starting a meeting.
    func readiness() async -> Readiness
    /// Starts what a meeting needs (a worker, a model). Fails with ``PluginError/Code-swift.struct/notReady``
    /// and a clear message when the backend cannot run.
    func makeSession(context: PluginContext) async throws -> any TranscriptionSession
}

/// One meeting's use of a backend. Requests come one at a time, in meeting order.
public protocol TranscriptionSession: Sendable {
    /// Transcribes one segment. Times in the result are meeting times (the segment's offset added).
    /// Cancelling the calling task stops the work promptly.
    func transcribe(_ audio: AudioSegment, options: TranscriptionOptions) async throws -> Transcription
    /// Releases the worker or model. Called once, also after a failure or cancellation.
    func close() async
}
