import Foundation
public import Logging
import ParleyAudio
public import ParleyEvents
public import ParleyPluginAPI
import Synchronization

/// Runs one meeting: audio -> features and voice activity (streaming) -> transcription of each
/// speech window as soon as it closes, with provisional speakers -> final clustering ->
/// alignment (relabels and splits) -> summarization -> completed, or failed with an `error`
/// event naming the stage. Every step is published to the ``EventSink``.
public struct MeetingPipeline: Sendable {
    public let transcriber: any Transcriber
    public let summarizer: any Summarizer
    public var options: PipelineOptions

    public init(transcriber: any Transcriber, summarizer: any Summarizer, options: PipelineOptions = .init()) {
        self.transcriber = transcriber
        self.summarizer = summarizer
        self.options = options
    }

    /// Processes `source`, publishing every event to `sink`. Never throws: a failure is
    /// published (`error`, then `status` failed) and returned in the report.
    public func run(_ source: AudioSource, sink: some EventSink, logger: Logger) async -> MeetingReport {
        let started = ContinuousClock.now
        let scratch =
            (options.scratchDirectory ?? NSTemporaryDirectory())
            + "/parley-\(UUID().uuidString.prefix(8).lowercased())"
        try? FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let context = PluginContext(logger: logger, scratchDirectory: scratch)
        var report = MeetingReport(
            failure: nil, duration: 0, elapsed: 0, transcriptionTime: 0,
            wordTiming: .engine, speakers: 0, words: 0)
        var session: (any TranscriptionSession)?
        let stage = StageBox()
        do {
            try await sink.publish(.status(.init(stage: .upload, state: .started)))
            // Both backends are checked before any audio is read, so a misconfigured one fails now.
            if case .notReady(let reason) = await summarizer.readiness() {
                throw PipelineFailure(stage: .summarization, code: "not_ready", message: reason)
            }
            do {
                session = try await transcriber.makeSession(context: context)
            } catch {
                throw PipelineFailure(stage: .transcription, code: "not_ready", message: Self.words(error))
            }
            let run = Run(
                pipeline: self, sink: sink, session: session!, context: context, started: started, stage: stage)
            try await run.execute(source, report: &report)
        } catch {
            let failure =
                (error as? PipelineFailure)
                ?? PipelineFailure(
                    stage: stage.value, code: error is CancellationError ? "cancelled" : "internal",
                    message: Self.words(error))
            report.failure = failure
            logger.info(
                "meeting failed", metadata: ["stage": "\(failure.stage.rawValue)", "error": "\(failure.message)"])
            _ = try? await sink.publish(.error(failure))
            _ = try? await sink.publish(.status(.init(stage: .failed, state: .failed, detail: failure.description)))
        }
        await session?.close()
        report.elapsed = (ContinuousClock.now - started).seconds
        return report
    }

    /// An error in words for people.
    static func words(_ error: any Error) -> String {
        switch error {
        case let e as PluginError: e.message
        case let e as AudioError: e.description
        case let e as PipelineFailure: e.message
        case is CancellationError: "cancelled"
        default: "\(error)"
        }
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

/// What the analysis side shares with the transcription side while both run.
private final class SharedAnalysis: Sendable {
    struct State {
        var frames: FeatureFrames
        var seconds: Double = 0
        var final: Diarization?
        var totalSpeech: Double?
        /// Set when the analysis failed: the transcription side then ends without a word.
        var failed = false
    }
    let state: Mutex<State>
    init(features: FeatureConfiguration) { state = Mutex(State(frames: FeatureFrames(configuration: features))) }
}

/// The stage a meeting is in, as far as its status events say.
final class StageBox: Sendable {
    private let stage = Mutex(Stage.upload)
    func set(_ value: Stage) { stage.withLock { $0 = value } }
    var value: Stage { stage.withLock { $0 } }
}

private final class ByteCounter: Sendable {
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
private struct PendingWindow: Sendable {
    var window: TranscriptionWindows.Window
    var offset: Double
    var file: String
}

/// One meeting's run; the parts that share state live here.
private struct Run<Sink: EventSink>: Sendable {
    let pipeline: MeetingPipeline
    let sink: Sink
    let session: any TranscriptionSession
    let context: PluginContext
    let started: ContinuousClock.Instant
    let stage: StageBox
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
            group.addTask { .transcription(try await transcribeAll(windows, shared: shared)) }
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

        // Alignment: final labels for every word; segments relabelled or split.
        try Task.checkCancellation()
        let alignStart = ContinuousClock.now
        try await publish(.status(.init(stage: .alignment, state: .started)))
        var tracker = transcribed.tracker
        let turns = tracker.adopt(diarization, covering: audio.duration)
        let aligner = Aligner(turns: turns)
        var changes: [SpeakersUpdate.Change] = []
        var replacements: [TranscriptSegment] = []
        var final: [TranscriptSegment] = []
        var nextID = transcribed.nextID
        for segment in transcribed.segments {
            let runs = aligner.split(
                TranscribedSegment(start: segment.start, end: segment.end, text: segment.text, words: segment.words),
                unknown: segment.speaker)
            if runs.count <= 1 {
                var relabelled = segment
                if let speaker = runs.first?.speaker, speaker != segment.speaker {
                    changes.append(.init(segmentID: segment.id, speaker: speaker))
                    relabelled.speaker = speaker
                }
                final.append(relabelled)
            } else {
                for (index, run) in runs.enumerated() {
                    let piece = Self.segment(
                        id: nextID, speaker: run.speaker, words: run.words, replaces: index == 0 ? [segment.id] : nil,
                        wordTiming: segment.wordTiming)
                    nextID += 1
                    replacements.append(piece)
                    final.append(piece)
                }
            }
        }
        var speakers = Self.speakerList(turns: turns)
        try await publish(
            .speakers(.init(reason: .clustering, speakers: speakers, changes: changes, turns: turns.map(\.record))))
        for piece in replacements { try await publish(.transcript(piece)) }
        try await publish(
            .status(
                .init(
                    stage: .alignment, state: .completed,
                    detail: "\(changes.count) relabelled, \(replacements.count) from splits",
                    elapsed: (ContinuousClock.now - alignStart).seconds)))
        report.speakers = speakers.count
        report.words = final.reduce(0) { $0 + $1.words.count }

        // Summarization.
        try Task.checkCancellation()
        let summaryStart = ContinuousClock.now
        try await publish(.status(.init(stage: .summarization, state: .started)))
        let attributed = final.sorted { $0.start < $1.start }.map {
            AttributedSegment(id: $0.id, speaker: $0.speaker, start: $0.start, end: $0.end, text: $0.text)
        }
        let summarizer = pipeline.summarizer
        let participants = speakers.map { Participant(id: $0.id, name: $0.name) }
        let context = self.context
        let summary: MeetingSummary
        do {
            summary = try await withTimeout(.seconds(options.timeouts.summarization), what: "summarization") {
                try await summarizer.summarize(attributed, participants: participants, context: context)
            }
        } catch {
            throw PipelineFailure(
                stage: .summarization, code: Self.code(error), message: MeetingPipeline.words(error))
        }
        if !summary.speakerNames.isEmpty {
            speakers = speakers.map { SpeakerInfo(id: $0.id, name: summary.speakerNames[$0.id] ?? $0.name) }
            try await publish(.speakers(.init(reason: .names, speakers: speakers)))
        }
        try await publish(
            .summary(
                .init(points: summary.points, decisions: summary.decisions, summarizer: type(of: summarizer).name)))
        try await publish(
            .actionItems(
                .init(
                    items: summary.actionItems.enumerated().map { index, item in
                        ActionItemRecord(
                            id: index + 1, owner: item.owner, task: item.task, due: item.due, time: item.time)
                    })))
        try await publish(
            .status(
                .init(
                    stage: .summarization, state: .completed,
                    detail: "\(summary.points.count) points, \(summary.actionItems.count) action items",
                    elapsed: (ContinuousClock.now - summaryStart).seconds)))
        try await publish(
            .status(
                .init(
                    stage: .completed, state: .completed,
                    detail: String(
                        format: "%.1f s of audio, %d speakers, %d words", audio.duration, speakers.count, report.words),
                    elapsed: (ContinuousClock.now - started).seconds)))
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

    // MARK: analysis

    /// Decodes and analyses the audio, closing speech windows as the voice activity detector
    /// finds them; then runs the final clustering.
    func analyse(
        _ source: AudioSource, shared: SharedAnalysis, windows: AsyncStream<PendingWindow>.Continuation
    ) async throws -> ChildResult {
        var analyzer = options.analyzer
        analyzer.emitSamples = true
        let features = analyzer.features
        let rate = Double(features.sampleRate)
        var vad = VoiceActivityDetector(configuration: options.diarization.voiceActivity, features: features)
        let grouping = TranscriptionWindows(
            preferred: pipeline.transcriber.capabilities.preferredWindow,
            maxPause: options.windowPause)
        var state = WindowState(
            grouping: grouping, padding: options.padding, rate: rate, scratch: context.scratchDirectory)
        let bytes = ByteCounter()
        var expected: Int64?
        var declared: Double?
        var lastProgress = ContinuousClock.now
        var lastFraction = 0.0
        var diarizationStarted = false
        var speech = 0.0

        func emit(_ closed: [TranscriptionWindows.Window]) throws {
            for window in closed { windows.yield(try state.write(window)) }
        }
        let onEvent: (AnalysisEvent) async throws -> Void = { event in
            switch event {
            case .opened(let info):
                declared = info.declaredDuration
                context.logger.debug("audio opened", metadata: ["format": "\(info.format)"])
            case .samples(let block, let first):
                state.append(block, first: first)
            case .frames(let block, let total):
                if !diarizationStarted {
                    diarizationStarted = true
                    try await publish(.status(.init(stage: .diarization, state: .started)))
                }
                let seconds = Double(total) / rate
                shared.state.withLock {
                    $0.frames.append(block)
                    $0.seconds = seconds
                }
                for segment in vad.push(block.energy) {
                    speech += segment.duration
                    try emit(state.grouping.add(segment))
                }
                try emit(state.grouping.advance(to: vad.settledUntil))
                let fraction = declared.map { min(1, seconds / max($0, 0.001)) }
                let now = ContinuousClock.now
                if now - lastProgress > .milliseconds(500) || (fraction ?? 0) - lastFraction >= 0.1 {
                    lastProgress = now
                    lastFraction = fraction ?? 0
                    let received = bytes.value
                    try await publish(
                        .uploadProgress(
                            .init(
                                bytes: received > 0 ? received : Int64((fraction ?? 0) * Double(expected ?? 0)),
                                total: expected, seconds: seconds)))
                }
            }
        }
        let audio: AnalyzedAudio
        do {
            switch source {
            case .file(let path):
                expected = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.int64Value
                audio = try await analyzer.analyze(file: path, onEvent: onEvent)
            case .upload(let stream, let length, let spoolPath):
                expected = length
                // The bytes pass through a relay so that a watchdog can end a stalled upload.
                let (relay, relayInput) = AsyncThrowingStream<[UInt8], any Error>.makeStream()
                let idle = options.timeouts.uploadIdle
                audio = try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        do {
                            for try await chunk in stream {
                                bytes.add(chunk.count)
                                relayInput.yield(chunk)
                            }
                            relayInput.finish()
                        } catch {
                            relayInput.finish(throwing: error)
                        }
                    }
                    group.addTask {
                        var seen = bytes.arrivals
                        var quiet = ContinuousClock.now
                        while true {
                            try await Task.sleep(for: .seconds(min(1, idle / 4)))
                            if bytes.arrivals != seen {
                                seen = bytes.arrivals
                                quiet = ContinuousClock.now
                            } else if ContinuousClock.now - quiet > .seconds(idle) {
                                relayInput.finish(
                                    throwing: PipelineFailure(
                                        stage: .upload, code: "timeout",
                                        message: "no bytes arrived for \(Int(idle)) s; the upload was given up"))
                                return
                            }
                        }
                    }
                    defer { group.cancelAll() }
                    return try await analyzer.analyze(
                        chunks: relay, expectedLength: length, spoolPath: spoolPath, onEvent: onEvent)
                }
            }
            for segment in vad.finish() {
                speech += segment.duration
                try emit(state.grouping.add(segment))
            }
            try emit(state.grouping.finish())
        } catch {
            shared.state.withLock { $0.failed = true }
            if error is CancellationError || Task.isCancelled { throw CancellationError() }
            if let failure = error as? PipelineFailure { throw failure }
            throw PipelineFailure(stage: .upload, code: Self.code(error), message: MeetingPipeline.words(error))
        }
        windows.finish()
        let total = bytes.value
        try await publish(
            .uploadProgress(.init(bytes: total > 0 ? total : expected ?? 0, total: expected, seconds: audio.duration)))
        try await publish(
            .status(
                .init(
                    stage: .upload, state: .completed, progress: 1,
                    detail: String(format: "%.1f s of audio, %.1f s of speech", audio.duration, speech),
                    elapsed: (ContinuousClock.now - started).seconds)))
        shared.state.withLock { $0.totalSpeech = speech }
        if !diarizationStarted { try await publish(.status(.init(stage: .diarization, state: .started))) }

        // The final clustering over the whole meeting.
        let clusteringStart = ContinuousClock.now
        let diarizer = SpeakerDiarizer(configuration: options.diarization)
        let diarization: Diarization
        do {
            diarization = try diarizer.diarize(audio.frames, duration: audio.duration)
        } catch {
            throw PipelineFailure(stage: .diarization, code: Self.code(error), message: MeetingPipeline.words(error))
        }
        shared.state.withLock { $0.final = diarization }
        try await publish(
            .status(
                .init(
                    stage: .diarization, state: .completed, progress: 1,
                    detail: "\(diarization.speakers.count) speakers, \(diarization.turns.count) turns",
                    elapsed: (ContinuousClock.now - clusteringStart).seconds)))
        return .analysis(audio, diarization)
    }

    // MARK: transcription

    /// Sends each window to the recognizer as it arrives and publishes its segments with the
    /// best speaker labels known at that moment.
    func transcribeAll(_ windows: AsyncStream<PendingWindow>, shared: SharedAnalysis) async throws -> Transcribed {
        var result = Transcribed()
        var started = false
        var lastProvisional = 0.0
        var done = 0.0
        var adoptedFinal = false
        // Rebuilt only when the tracker adopts new turns.
        var aligner = Aligner(turns: [])
        let timeout = options.timeouts.transcriptionRequest
        for await pending in windows {
            try Task.checkCancellation()
            if !started {
                started = true
                try await publish(.status(.init(stage: .transcription, state: .started)))
            }
            let samples = try Self.read(pending)
            context.logger.debug(
                "transcribing window",
                metadata: [
                    "window": "\(pending.window.index)", "start": "\(pending.offset)",
                    "seconds": "\(Double(samples.count) / 16_000)", "segments": "\(pending.window.segments)",
                ])
            defer { try? FileManager.default.removeItem(atPath: pending.file) }
            let audio = AudioSegment(samples: samples, offset: pending.offset)
            let session = self.session
            let transcriptionOptions = options.transcription
            let requestStart = ContinuousClock.now
            let transcription: Transcription
            do {
                transcription = try await withTimeout(.seconds(timeout), what: "a transcription request") {
                    try await session.transcribe(audio, options: transcriptionOptions)
                }
            } catch {
                // A worker stopped because we were cancelled reports that, not its own end.
                if error is CancellationError || Task.isCancelled { throw CancellationError() }
                throw PipelineFailure(
                    stage: .transcription, code: Self.code(error), message: MeetingPipeline.words(error))
            }
            result.time += (ContinuousClock.now - requestStart).seconds
            if transcription.wordTiming == .estimated { result.wordTiming = .estimated }

            // Provisional speakers: the final clustering if it is there, else a clustering of the
            // audio so far, re-run when the audio has grown enough.
            let (snapshot, final) = shared.state.withLock { s -> ((FeatureFrames, Double)?, Diarization?) in
                if let final = s.final { return (nil, final) }
                let stale =
                    pending.window.end > result.tracker.coveredUntil
                    && s.seconds >= lastProvisional * options.provisionalGrowth
                return (stale ? (s.frames, s.seconds) : nil, nil)
            }
            if let final, !adoptedFinal {
                adoptedFinal = true
                aligner = Aligner(turns: result.tracker.adopt(final, covering: final.duration))
            } else if let (frames, seconds) = snapshot {
                if let provisional = try? SpeakerDiarizer(configuration: options.diarization).diarize(
                    frames, duration: seconds)
                {
                    lastProvisional = seconds
                    let turns = result.tracker.adopt(provisional, covering: seconds)
                    // Segments already out follow the new estimate (by most of their words'
                    // time); splitting them waits for the final clustering.
                    aligner = Aligner(turns: turns)
                    var changes: [SpeakersUpdate.Change] = []
                    for index in result.segments.indices {
                        let segment = result.segments[index]
                        guard let speaker = Self.majority(segment.words, aligner), speaker != segment.speaker
                        else { continue }
                        result.segments[index].speaker = speaker
                        changes.append(.init(segmentID: segment.id, speaker: speaker))
                    }
                    try await publish(
                        .speakers(
                            .init(
                                reason: .provisional, speakers: Self.speakerList(turns: turns), changes: changes,
                                turns: turns.map(\.record))))
                }
            }
            for segment in transcription.segments {
                for run in aligner.split(segment, unknown: "S1") {
                    let piece = Self.segment(
                        id: result.nextID, speaker: run.speaker, words: run.words,
                        wordTiming: transcription.wordTiming)
                    result.nextID += 1
                    result.segments.append(piece)
                    try await publish(.transcript(piece))
                }
            }
            done += pending.window.end - pending.window.start
            let total = shared.state.withLock { $0.totalSpeech }
            try await publish(
                .status(
                    .init(
                        stage: .transcription, state: .progress, progress: total.map { min(1, done / max($0, 0.001)) },
                        detail: String(format: "%.1f s of speech transcribed", done))))
        }
        try Task.checkCancellation()
        // The windows ended because the analysis failed: its error ends the meeting, not this.
        if shared.state.withLock({ $0.failed }) { return result }
        if !started { try await publish(.status(.init(stage: .transcription, state: .started))) }
        try await publish(
            .status(
                .init(
                    stage: .transcription, state: .completed, progress: 1,
                    detail: "\(result.segments.count) segments", elapsed: result.time)))
        return result
    }

    static func read(_ pending: PendingWindow) throws -> [Float] {
        guard let data = FileManager.default.contents(atPath: pending.file) else {
            throw PipelineFailure(stage: .transcription, code: "io", message: "cannot read \(pending.file)")
        }
        return data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    }
}

/// The samples not yet sent to the recognizer, and the windows being formed.
private struct WindowState {
    var grouping: TranscriptionWindows
    let padding: Double
    let rate: Double
    let scratch: String
    var samples: [Float] = []
    /// Index (in the whole meeting) of samples[0].
    var base = 0
    /// Where the last window's audio ended; the next one starts no earlier.
    var lastEnd = 0.0

    init(grouping: TranscriptionWindows, padding: Double, rate: Double, scratch: String) {
        self.grouping = grouping
        self.padding = padding
        self.rate = rate
        self.scratch = scratch
    }

    mutating func append(_ block: [Float], first: Int) {
        if samples.isEmpty { base = first }
        samples.append(contentsOf: block)
    }

    /// Writes a window's samples (padded, never overlapping the previous window) to a file
    /// and forgets everything before its end.
    mutating func write(_ window: TranscriptionWindows.Window) throws -> PendingWindow {
        let from = max(lastEnd, window.start - padding, 0)
        let to = window.end + padding
        let a = max(base, Int((from * rate).rounded()))
        let b = max(a, min(base + samples.count, Int((to * rate).rounded())))
        let file = "\(scratch)/window-\(window.index).f32"
        let slice = samples[(a - base)..<(b - base)]
        let data = slice.withUnsafeBytes { Data($0) }
        guard FileManager.default.createFile(atPath: file, contents: data) else {
            throw PipelineFailure(stage: .transcription, code: "io", message: "cannot write \(file)")
        }
        lastEnd = Double(b) / rate
        samples.removeFirst(b - base)
        base = b
        return PendingWindow(window: window, offset: Double(a) / rate, file: file)
    }
}
