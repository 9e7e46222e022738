import Foundation
import Logging
import ParleyAudio
import ParleyEvents
import ParleyPluginAPI
import Synchronization

/// What the analysis side shares with the transcription side while both run.
final class SharedAnalysis: Sendable {
    struct State {
        var frames: FeatureFrames
        var seconds: Double = 0
        var final: Diarization?
        var totalSpeech: Double?
        /// Set when the analysis failed: the transcription side then ends without a word.
        var failed = false
        /// Windows (either kind) handed to the recognizer and not done yet: a provisional one is
        /// made only when this is 0, so at most one is ever queued, and anything queued behind
        /// it is a released window, which it would only delay.
        var outstanding = 0
    }
    let state: Mutex<State>
    init(features: FeatureConfiguration) { state = Mutex(State(frames: FeatureFrames(configuration: features))) }
}

final class ByteCounter: Sendable {
    private let count = Mutex<(bytes: Int64, chunks: Int)>((0, 0))
    func add(_ n: Int) {
        count.withLock {
            $0.bytes += Int64(n); $0.chunks += 1
        }
    }
    var value: Int64 { count.withLock { $0.bytes } }
    /// How many chunks have arrived: the watchdog's sign of life.
    var arrivals: Int { count.withLock { $0.chunks } }
}

/// A window of speech written to the scratch directory, waiting for the recognizer.
struct PendingWindow: Sendable {
    var window: TranscriptionWindows.Window
    var offset: Double
    var file: String
    /// A live recording's window still open (its speech goes on): a provisional transcript,
    /// replaced by the window's own when it closes.
    var provisional = false
}

/// One meeting's run: the stage context every stage shares (the pipeline, the sink, the
/// transcription session, the plugin context, when it started, the stage it is in). Each stage
/// is an extension in a file of its own (`PipelineRun+Stage.swift`).
struct PipelineRun<Sink: EventSink>: Sendable {
    let pipeline: MeetingPipeline
    let sink: Sink
    let session: any TranscriptionSession
    let context: PluginContext
    let started: ContinuousClock.Instant
    let stage: StageBox
    /// The owner's voice profiles, when the meeting has an owner who keeps them.
    let voices: (any VoiceDirectory)?
    var options: PipelineOptions { pipeline.options }

    /// Publishes an event, remembering the stage a status event starts, so a cancellation can
    /// name the stage it interrupted.
    @discardableResult
    func publish(_ data: EventData) async throws -> MeetingEvent {
        if case .status(let status) = data, status.state == .started { stage.set(status.stage) }
        return try await sink.publish(data)
    }

    struct Transcribed: Sendable {
        var segments: [TranscriptSegment] = []
        var tracker = SpeakerTracker()
        var time: Double = 0
        var wordTiming = WordTiming.engine
        var nextID = 1
        /// Live, the speakers recognition has named or suggested a name for so far.
        var recognized: [String: SpeakerInfo] = [:]
    }

    enum ChildResult: Sendable {
        case analysis(AnalyzedAudio, Diarization)
        case transcription(Transcribed)
    }

    func execute(_ source: AudioSource, report: inout MeetingReport) async throws {
        let shared = SharedAnalysis(features: options.analyzer.features)
        let (windows, windowSink) = AsyncStream<PendingWindow>.makeStream()
        var analysis: (AnalyzedAudio, Diarization)?
        var transcribed = Transcribed()
        try await withThrowingTaskGroup(of: ChildResult.self) { group in
            group.addTask {
                defer { windowSink.finish() }
                return try await analyse(source, shared: shared, windows: windowSink)
            }
            group.addTask {
                .transcription(try await transcribeAll(windows, shared: shared, live: source.isLive))
            }
            for try await result in group {
                switch result {
                case .analysis(let a, let d): analysis = (a, d)
                case .transcription(let t): transcribed = t
                }
            }
        }
        guard let (audio, diarization) = analysis else { return }
        report.duration = audio.duration
        report.transcriptionTime = transcribed.time
        report.wordTiming = transcribed.wordTiming

        let aligned = try await align(transcribed, audio: audio, diarization: diarization, report: &report)
        var recognized = transcribed.recognized
        let speakers = try await recognize(
            voices: diarization.voices, kind: diarization.voiceKind, labels: aligned.labels, turns: aligned.turns,
            speakers: aligned.speakers, recognized: &recognized)
        try await summarize(aligned.final, speakers: speakers, audio: audio, report: &report)
    }

    static func speakerList(turns: [SpeakerTurn]) -> [SpeakerInfo] {
        var seen: [String] = []
        for turn in turns.sorted(by: { $0.start < $1.start }) where !seen.contains(turn.speaker) {
            seen.append(turn.speaker)
        }
        return seen.sorted { $0.count != $1.count ? $0.count < $1.count : $0 < $1 }.map {
            SpeakerInfo(id: $0, name: "Speaker \($0.dropFirst())")
        }
    }

    static func segment(
        id: Int, speaker: String, words: [Word], replaces: [Int]? = nil, wordTiming: WordTiming? = nil
    ) -> TranscriptSegment {
        TranscriptSegment(
            id: id, speaker: speaker, start: words.first?.start ?? 0, end: words.last?.end ?? 0,
            text: words.map(\.word).joined(separator: " "), words: words, replaces: replaces,
            wordTiming: wordTiming == .estimated ? .estimated : nil)
    }

    /// The speaker holding most of the words' time.
    static func majority(_ words: [Word], _ aligner: Aligner) -> String? {
        var time: [String: Double] = [:]
        for word in words {
            if let speaker = aligner.speaker(from: word.start, to: max(word.end, word.start + 0.01)) {
                time[speaker, default: 0] += max(0.01, word.end - word.start)
            }
        }
        return time.max { $0.value < $1.value }?.key
    }

    static func code(_ error: any Error) -> String {
        switch error {
        case let e as PluginError: e.code.description
        case let e as AudioError: e.code.description
        case is CancellationError: "cancelled"
        default: "internal"
        }
    }
}
