import Foundation
import Logging
public import ParleyAudio
import ParleyEvents
public import ParleyPluginAPI
import Synchronization

extension PipelineRun {
    /// Decodes and analyses the audio, closing speech windows as the voice activity detector
    /// finds them; then runs the final clustering.
    func analyse(
        _ source: AudioSource, shared: SharedAnalysis, windows: AsyncStream<PendingWindow>.Continuation
    ) async throws -> ChildResult {
        var analyzer = options.analyzer
        analyzer.emitSamples = true
        if source.isLive {
            // A live recording ends when its producer stops it, wherever that falls in a container.
            analyzer.allowTruncated = true
            // Small blocks: the decoder waits for a whole block of samples to arrive.
            analyzer.blockSize = min(analyzer.blockSize, 1600)
        }
        let features = analyzer.features
        let rate = Double(features.sampleRate)
        var voiceActivity = options.diarization.voiceActivity
        // The recognizer hears all that the energy finds: the diarizer's voiced-frames check
        // drops a hoarse voice's stretches and short words with little voicing ("six"), which
        // doubled the word error rate on real speech (benchmarks/real_wer.py), while the
        // recognizer itself writes nothing for a breath or a rustle.
        voiceActivity.minVoiced = 0
        // Its floor may always fall to -62 dB, the absolute bound the detector had before the
        // diarizer's bound became relative to the recording's level, and further only in a quiet
        // recording: 18 dB under its level, which is lower than -62 dB only when the level is under
        // -44 dB (as if such a recording were made that loud). With the diarizer's relative bound
        // alone, real-train's transcripts counted 448 words where the reference has speech
        // instead of 474 (benchmarks/real.py), and a hoarse voice beside a few loud sounds (MFA's
        // speaker with a cold) lost most of its words (benchmarks/real_wer.py); with the absolute
        // one alone, real-train 24 dB quieter kept 35 of its 474 words, 36 dB quieter none.
        voiceActivity.absoluteFloor = -62
        voiceActivity.floorBelowLevel = 18
        if source.isLive {
            // Live, speech ends after a shorter quiet, and a start is looked for only a little way
            // back (the window's padding covers the rest): a window can go as soon as its speech
            // ends. (These windows are for the recognizer only; the speakers come from the audio.)
            voiceActivity.minSilence = min(voiceActivity.minSilence, options.liveSilence)
            voiceActivity.maxOnsetExtension = min(voiceActivity.maxOnsetExtension, 0.1)
        }
        var vad = VoiceActivityDetector(configuration: voiceActivity, features: features)
        // Live, a talker who does not pause is cut into pieces of at most a window.
        if source.isLive { vad.maxSegment = options.liveWindow }
        let preferred = pipeline.transcriber.capabilities.preferredWindow
        let grouping =
            source.isLive
            ? TranscriptionWindows(
                preferred: preferred > 0 ? min(preferred, options.liveWindow) : 0, maxPause: options.liveWindowPause)
            : TranscriptionWindows(preferred: preferred, maxPause: options.windowPause)
        var state = WindowState(
            grouping: grouping, padding: options.padding, rate: rate, scratch: context.scratchDirectory)
        let bytes = ByteCounter()
        var expected: Int64?
        var declared: Double?
        var lastProgress = ContinuousClock.now
        var lastFraction = 0.0
        var diarizationStarted = false
        var speech = 0.0
        // A diarization backend reads the whole meeting as a 16 kHz WAV file, written as it is decoded.
        let wave = try pipeline.diarizer.map { _ in
            try WaveFileWriter(
                path: (context.scratchDirectory as NSString).appendingPathComponent("meeting.wav"),
                sampleRate: Int(rate))
        }

        func emit(_ closed: [TranscriptionWindows.Window]) throws {
            for window in closed {
                let pending = try state.write(window)
                shared.state.withLock { $0.outstanding += 1 }
                windows.yield(pending)
            }
        }
        // Live, the window being formed gets a provisional transcript now and then.
        var lastPartial = -Double.infinity
        func emitPartial(at seconds: Double) throws {
            guard source.isLive, options.livePartial > 0, seconds - lastPartial >= options.livePartial else { return }
            // Only while someone speaks: once the speech has ended, the window itself goes soon.
            guard let speaking = vad.openSpeechStart else { return }
            let open = state.grouping.openWindow
            let start = open?.start ?? speaking
            guard seconds - start >= options.livePartial else { return }
            // Only when the recognizer is idle: a provisional transcript never delays a window's own.
            guard shared.state.withLock({ $0.outstanding == 0 }) else { return }
            let window =
                open ?? .init(index: state.grouping.nextIndex, start: start, end: seconds, segments: 0)
            if let partial = try state.provisional(window) {
                lastPartial = seconds
                shared.state.withLock { $0.outstanding += 1 }
                windows.yield(partial)
            }
        }
        let onEvent: (AnalysisEvent) async throws -> Void = { event in
            switch event {
            case .opened(let info):
                declared = info.declaredDuration
                context.logger.debug("audio opened", metadata: ["format": "\(info.format)"])
            case .notice(let message):
                try await publish(.status(.init(stage: .upload, state: .progress, detail: message)))
            case .samples(let block, let first):
                state.append(block, first: first)
                try wave?.append(block)
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
                for segment in vad.push(block.energy, voicing: block.voicing) {
                    speech += segment.duration
                    try emit(state.grouping.add(segment))
                }
                try emit(state.grouping.advance(to: vad.settledUntil, now: seconds))
                try emitPartial(at: seconds)
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
            case .live(let stream, let spoolPath):
                // No watchdog: a live recording may pause for as long as it likes.
                let counted = stream.map { chunk in
                    bytes.add(chunk.count)
                    return chunk
                }
                audio = try await analyzer.analyze(
                    chunks: counted, expectedLength: nil, spoolPath: spoolPath, onEvent: onEvent)
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

        // The final pass over the whole meeting.
        let clusteringStart = ContinuousClock.now
        let (diarization, note) = try await finalDiarization(audio, wave: wave, features: features)
        shared.state.withLock { $0.final = diarization }
        try await publish(
            .status(
                .init(
                    stage: .diarization, state: .completed, progress: 1,
                    detail: note
                        + "\(Exporter.counted(diarization.speakers.count, "speaker")), "
                        + "\(Exporter.counted(diarization.turns.count, "turn"))",
                    elapsed: (ContinuousClock.now - clusteringStart).seconds)))
        return .analysis(audio, diarization)
    }

    /// The chosen backend on the meeting's WAV file, or the classic clustering and
    /// re-segmentation on its features; also when the backend fails, so the meeting is not lost
    /// (the note, put before the counts in the status detail, says why).
    private func finalDiarization(
        _ audio: AnalyzedAudio, wave: WaveFileWriter?, features: FeatureConfiguration
    ) async throws -> (Diarization, note: String) {
        var note = ""
        if let backend = pipeline.diarizer, let wave {
            let name = type(of: backend).name
            defer { try? FileManager.default.removeItem(atPath: wave.path) }
            do {
                try wave.finish()
                let output = try await backend.diarize(
                    file: wave.path, count: options.diarization.speakerCount, context: context)
                return (Diarization(output, duration: audio.duration, features: features), "\(name), ")
            } catch {
                if error is CancellationError || Task.isCancelled { throw CancellationError() }
                let reason = MeetingPipeline.words(error)
                context.logger.warning(
                    "diarization backend failed; the classic diarizer takes over",
                    metadata: ["diarizer": "\(name)", "error": "\(reason)"])
                note = "classic (\(name) failed: \(reason)), "
            }
        }
        do {
            let classic = try SpeakerDiarizer(configuration: options.diarization).diarize(
                audio.frames, duration: audio.duration)
            return (classic, note)
        } catch {
            throw PipelineFailure(stage: .diarization, code: Self.code(error), message: MeetingPipeline.words(error))
        }
    }
}

extension Diarization {
    /// A backend's turns as the pipeline's diarization: speakers named `SPEAKER_00` on, speech
    /// the union of the turns.
    public init(_ output: DiarizerOutput, duration: Double, features: FeatureConfiguration) {
        let turns = output.turns.map {
            SpeakerTurn(
                speaker: String(format: "SPEAKER_%02d", $0.speaker), start: $0.start, end: min(duration, $0.end),
                overlap: $0.overlap)
        }
        var speech: [SpeechSegment] = []
        let hop = features.hopDuration
        for turn in turns.sorted(by: { $0.start < $1.start }) {
            if let last = speech.last, turn.start <= last.end {
                speech[speech.count - 1].end = max(last.end, turn.end)
                speech[speech.count - 1].endFrame = max(last.endFrame, Int((turn.end / hop).rounded(.up)))
            } else {
                speech.append(
                    SpeechSegment(
                        startFrame: Int(turn.start / hop), endFrame: Int((turn.end / hop).rounded(.up)),
                        start: turn.start, end: turn.end))
            }
        }
        var names: [String] = []
        for turn in turns where !names.contains(turn.speaker) { names.append(turn.speaker) }
        var voices: [String: [Float]] = [:]
        if output.embeddingKind != nil {
            for (index, vector) in output.embeddings.enumerated() where !vector.isEmpty {
                voices[String(format: "SPEAKER_%02d", index)] = vector
            }
        }
        self.init(
            turns: turns, speakers: names.sorted(), speech: speech, duration: duration, voices: voices,
            voiceKind: voices.isEmpty ? nil : output.embeddingKind)
    }
}
