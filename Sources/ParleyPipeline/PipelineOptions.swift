public import ParleyAudio
public import ParleyEvents
public import ParleyPluginAPI

/// Where a meeting's audio comes from.
public enum AudioSource: Sendable {
    /// A file on disk, decoded in place.
    case file(String)
    /// Bytes still arriving (an upload), spooled to `spoolPath` (or an anonymous temporary
    /// file) and decoded as they come.
    case upload(AsyncThrowingStream<[UInt8], any Error>, expectedLength: Int64?, spoolPath: String?)
    /// A recording made as the meeting happens (a microphone, standard input): decoded like an
    /// upload, but it may pause for as long as it likes, ends whenever its producer stops it
    /// (a container cut short is not an error), and its speech goes to the recognizer in short
    /// windows (``PipelineOptions/liveWindow``) so the transcript follows the speakers.
    case live(AsyncThrowingStream<[UInt8], any Error>, spoolPath: String?)

    var isLive: Bool {
        if case .live = self { return true }
        return false
    }
}

/// Limits on how long a stage may take before the meeting fails with a timeout.
public struct StageTimeouts: Sendable, Hashable, Codable {
    /// One transcription request (a speech window of up to about 30 s).
    public var transcriptionRequest: Double = 600
    public var summarization: Double = 300
    /// An upload that sends no bytes for this long is given up (the stage fails with `timeout`).
    public var uploadIdle: Double = 120

    public init() {}
}

public struct PipelineOptions: Sendable {
    public var transcription = TranscriptionOptions()
    public var diarization = DiarizationConfiguration()
    public var analyzer = AudioAnalyzer()
    public var timeouts = StageTimeouts()
    /// Where segment audio is written while waiting for the recognizer; a temporary directory by default.
    public var scratchDirectory: String?
    /// Seconds of audio added before and after each speech window sent to the recognizer,
    /// so no word is clipped at a boundary.
    public var padding: Double = 0.25
    /// The longest pause kept inside one transcription window.
    public var windowPause: Double = 2
    /// For a live recording: the longest transcription window (when the backend prefers longer
    /// ones; speech that goes on longer is cut at its quietest moment), and the longest pause kept
    /// inside one. Shorter windows put the words on screen sooner, at a cost in accuracy (less
    /// context for the recognizer): Docs/benchmarks.md has the figures.
    public var liveWindow: Double = 3.5
    public var liveWindowPause: Double = 0.1
    /// For a live recording: the quiet (seconds) that ends a stretch of speech for the
    /// recognizer (a file's windows use the voice activity detector's `minSilence`, 0.4).
    public var liveSilence: Double = 0.3
    /// For a live recording: while a window's speech goes on, a provisional transcript of it
    /// every this many seconds, when the recognizer is idle (replaced by the window's own when it
    /// closes); 0, the default, makes none. Words show sooner, but on two cores the extra work
    /// lengthens the tail (Docs/benchmarks.md).
    public var livePartial: Double = 0
    /// Re-run the clustering on the audio so far, for provisional labels, once the audio has
    /// grown by this factor since the last run (the final pass always runs).
    public var provisionalGrowth: Double = 2
    /// For a live recording: re-run it at least every this many seconds of audio too, so a
    /// speaker who joins late is labelled (and recognized by voice) within about this long
    /// (or ten times what the last run took, when that is longer: a long meeting's clustering
    /// never takes more than a tenth of the time).
    public var liveRecluster: Double = 10

    public init() {}
}

/// How a meeting run went, beyond its events.
public struct MeetingReport: Sendable, Hashable {
    public var failure: PipelineFailure?
    /// Seconds of audio.
    public var duration: Double
    /// Wall-clock seconds for the whole run.
    public var elapsed: Double
    /// Wall-clock seconds spent waiting for the recognizer.
    public var transcriptionTime: Double
    public var wordTiming: WordTiming
    public var speakers: Int
    public var words: Int
}
