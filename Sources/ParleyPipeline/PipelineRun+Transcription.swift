import Foundation
import Logging
import ParleyAudio
import ParleyEvents
import ParleyPluginAPI
import Synchronization

extension PipelineRun {
    /// Sends each window to the recognizer as it arrives and publishes its segments with the
    /// best speaker labels known at that moment; live, the speakers are also recognized by
    /// voice as the labels are re-estimated.
    func transcribeAll(_ windows: AsyncStream<PendingWindow>, shared: SharedAnalysis, live: Bool) async throws
        -> Transcribed
    {
        var result = Transcribed()
        var started = false
        var lastProvisional = 0.0
        // Wall-clock seconds the last provisional clustering took: live, clustering again waits
        // ten times that (of audio), so it never takes more than a tenth of the time.
        var clusteringCost = 0.0
        var done = 0.0
        var adoptedFinal = false
        // Rebuilt only when the tracker adopts new turns.
        var aligner = Aligner(turns: [])
        let timeout = options.timeouts.transcriptionRequest
        // The provisional segments on screen for the window being formed.
        var provisional: [Int] = []
        for await pending in windows {
            defer { shared.state.withLock { $0.outstanding -= 1 } }
            try Task.checkCancellation()
            if pending.provisional, shared.state.withLock({ $0.outstanding > 1 }) {
                // A released window waits behind it (perhaps its own): it goes first.
                try? FileManager.default.removeItem(atPath: pending.file)
                continue
            }
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
                let grown =
                    s.seconds >= lastProvisional * options.provisionalGrowth
                    || (live && s.seconds >= lastProvisional + max(options.liveRecluster, 10 * clusteringCost))
                let stale = pending.window.end > result.tracker.coveredUntil && grown
                return (stale ? (s.frames, s.seconds) : nil, nil)
            }
            if let final, !adoptedFinal {
                adoptedFinal = true
                aligner = Aligner(turns: result.tracker.adopt(final, covering: final.duration))
            } else if let (frames, seconds) = snapshot {
                let clusteringStart = ContinuousClock.now
                if let provisional = try? SpeakerDiarizer(configuration: options.diarization).diarize(
                    frames, duration: seconds)
                {
                    lastProvisional = seconds
                    clusteringCost = (ContinuousClock.now - clusteringStart).seconds
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
                    if live {
                        _ = try await recognize(
                            voices: provisional.voices, kind: provisional.voiceKind, labels: result.tracker.mapping,
                            turns: turns.map(\.record), speakers: Self.speakerList(turns: turns),
                            recognized: &result.recognized)
                    }
                }
            }
            // Each transcript replaces the provisional one of its window, if any.
            var replaced = provisional
            provisional = []
            for segment in transcription.segments {
                for run in aligner.split(segment, unknown: "S1") {
                    var piece = Self.segment(
                        id: result.nextID, speaker: run.speaker, words: run.words,
                        replaces: replaced.isEmpty ? nil : replaced, wordTiming: transcription.wordTiming)
                    replaced = []
                    result.nextID += 1
                    if pending.provisional {
                        piece.provisional = true
                        provisional.append(piece.id)
                    } else {
                        result.segments.append(piece)
                    }
                    try await publish(.transcript(piece))
                }
            }
            if !replaced.isEmpty {
                if pending.provisional {
                    provisional = replaced  // nothing new to show: the earlier one stays
                } else {
                    try await removeProvisional(replaced, &result)
                }
            }
            if pending.provisional { continue }
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
        // Speech the voice activity detector gave up on (too short) never got a window.
        if !provisional.isEmpty { try await removeProvisional(provisional, &result) }
        if !started { try await publish(.status(.init(stage: .transcription, state: .started))) }
        try await publish(
            .status(
                .init(
                    stage: .transcription, state: .completed, progress: 1,
                    detail: "\(result.segments.count) segments", elapsed: result.time)))
        return result
    }

    /// A window had no words after all: an empty segment only takes its provisional ones away.
    private func removeProvisional(_ ids: [Int], _ result: inout Transcribed) async throws {
        let empty = Self.segment(id: result.nextID, speaker: "S1", words: [], replaces: ids)
        result.nextID += 1
        try await publish(.transcript(empty))
    }

    static func read(_ pending: PendingWindow) throws -> [Float] {
        guard let data = FileManager.default.contents(atPath: pending.file) else {
            throw PipelineFailure(stage: .transcription, code: "io", message: "cannot read \(pending.file)")
        }
        return data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    }
}

/// The samples not yet sent to the recognizer, and the windows being formed.
struct WindowState {
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
        let file = try save(a..<b, as: "window-\(window.index)")
        lastEnd = Double(b) / rate
        samples.removeFirst(b - base)
        base = b
        return PendingWindow(window: window, offset: Double(a) / rate, file: file)
    }

    /// Writes the samples `range` (indices in the whole meeting) to `name`.f32 in the scratch
    /// directory, for the recognizer; returns the file's path.
    private func save(_ range: Range<Int>, as name: String) throws -> String {
        let file = "\(scratch)/\(name).f32"
        let data = samples[(range.lowerBound - base)..<(range.upperBound - base)].withUnsafeBytes { Data($0) }
        guard FileManager.default.createFile(atPath: file, contents: data) else {
            throw PipelineFailure(stage: .transcription, code: "io", message: "cannot write \(file)")
        }
        return file
    }

    /// Writes the audio of a window still forming, from its start (padded) to the newest
    /// sample, forgetting nothing: a provisional transcript's input. Nil when there is none.
    func provisional(_ window: TranscriptionWindows.Window) throws -> PendingWindow? {
        let from = max(lastEnd, window.start - padding, 0)
        let a = max(base, Int((from * rate).rounded()))
        let b = base + samples.count
        guard b > a else { return nil }
        let file = try save(a..<b, as: "partial-\(window.index)-\(b)")
        var partial = window
        partial.end = Double(b) / rate
        return PendingWindow(window: partial, offset: Double(a) / rate, file: file, provisional: true)
    }
}
