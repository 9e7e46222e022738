import Foundation
import ParleyAudio
import ParleyCommand
import ParleyEvents
import ParleyExtractive
import ParleyPipeline
import ParleyPluginAPI
import ParleyPlugins
import ParleyPocketSphinx
import ParleySynth
import ParleyWhisper
import Synchronization
import Testing

/// The whole pipeline on meetings from the project's generator, with the real engines.
@Suite(.serialized) struct PipelineTests {
    static func pipeline(
        _ transcriber: String, _ settings: [String: String] = [:], summarizer: String = "extractive",
        summarizerSettings: [String: String] = [:], options: PipelineOptions = .init()
    ) throws -> MeetingPipeline {
        let registry = PluginRegistry.builtIn
        return MeetingPipeline(
            transcriber: try registry.transcriber(
                transcriber, settings: PluginSettings(settings, section: transcriber)),
            summarizer: try registry.summarizer(summarizer, settings: PluginSettings(summarizerSettings)),
            options: options)
    }

    static func referenceWords(_ reference: MeetingReference) -> [String] {
        Fixtures.normalizedWords(reference.turns.map(\.text).joined(separator: " "))
    }

    static func hypothesisWords(_ state: MeetingState) -> [String] {
        Fixtures.normalizedWords(state.segments.map(\.text).joined(separator: " "))
    }

    /// Stages in the order ARCHITECTURE.md gives, offsets 1, 2, 3 ... without gaps.
    static func checkProtocol(_ events: [MeetingEvent]) {
        #expect(events.map(\.offset) == Array(1...events.count))
        let finished = events.compactMap { event -> Stage? in
            if case .status(let s) = event.data, s.state == .completed { return s.stage }
            return nil
        }
        #expect(finished == [.upload, .diarization, .transcription, .alignment, .summarization, .completed])
        #expect(events.last?.type == "status")
    }

    @Test func whisperTranscribesAttributesAndSummarizesTheBuiltInMeeting() async throws {
        let meeting = try Fixtures.standup()
        let (report, events, state) = await Fixtures.run(try Self.pipeline("whisper"), .file(meeting.audioPath))
        #expect(report.failure == nil)
        Self.checkProtocol(events)
        let wer = Fixtures.wordErrorRate(
            reference: Self.referenceWords(meeting.reference), hypothesis: Self.hypothesisWords(state))
        #expect(wer < 0.2, "WER \(wer)")
        let attribution = Fixtures.attribution(state, reference: meeting.reference)
        #expect(attribution > 0.9, "attribution \(attribution)")
        #expect(state.speakers.count == 3)
        #expect(report.wordTiming == .engine)
        // All three action items, with their owners; Priya is named, so her label gets her name.
        let tasks = state.actionItems.map { $0.task.lowercased() }
        #expect(tasks.contains { $0.contains("administrator") })
        #expect(tasks.contains { $0.contains("tell the two customers") })
        #expect(tasks.contains { $0.contains("incremental") })
        #expect(state.actionItems.count <= 4)
        #expect(state.actionItems.contains { $0.owner == "Priya" })
        #expect(state.speakers.contains { $0.name == "Priya" })
        #expect(state.summary?.points.isEmpty == false)
        #expect(state.summary?.decisions.contains { $0.text.lowercased().contains("storage format") } == true)
    }

    @Test func theFirstSegmentIsOutWhileTheUploadIsStillArriving() async throws {
        let meeting = try Fixtures.standup()
        // About 1.8 MB at 32 KB every 120 ms: the upload takes about seven seconds. Its length is
        // declared, as an HTTP upload's Content-Length would be.
        let length = try FileManager.default.attributesOfItem(atPath: meeting.audioPath)[.size] as? Int
        let (report, events, state) = await Fixtures.run(
            try Self.pipeline("pocketsphinx"),
            .upload(
                slowUpload(meeting.audioPath, delay: .milliseconds(120)), expectedLength: length.map(Int64.init),
                spoolPath: nil))
        #expect(report.failure == nil)
        let firstTranscript = try #require(events.first { $0.type == "transcript" })
        let uploadDone = try #require(
            events.first {
                if case .status(let s) = $0.data { return s.stage == .upload && s.state == .completed }
                return false
            })
        #expect(firstTranscript.offset < uploadDone.offset)
        #expect(events.contains { $0.type == "upload_progress" })
        // Provisional labels first, then the final clustering's.
        let reasons = events.compactMap { event -> SpeakersUpdate.Reason? in
            if case .speakers(let s) = event.data { return s.reason }
            return nil
        }
        #expect(reasons.first == .provisional)
        #expect(reasons.contains(.clustering))
        // Whatever the provisional labels were, after every relabel each segment's speaker is the
        // one whose final turns hold it.
        let aligner = Aligner(turns: state.turns.map(SpeakerTurn.init))
        for segment in state.segments {
            let middle = (segment.start + segment.end) / 2
            let words = segment.words.filter { aligner.speaker(from: $0.start, to: $0.end) == segment.speaker }
            #expect(Double(words.count) >= Double(segment.words.count) / 2, "segment at \(middle)")
        }
        Self.checkProtocol(events)
    }

    @Test func pocketSphinxRunsInProcessWithWordTimesInsideTheMeeting() async throws {
        let meeting = try Fixtures.standup()
        let (report, _, state) = await Fixtures.run(try Self.pipeline("pocketsphinx"), .file(meeting.audioPath))
        #expect(report.failure == nil)
        #expect(report.words > 50)
        let words = state.segments.flatMap(\.words)
        #expect(words.allSatisfy { $0.start >= 0 && $0.end <= meeting.reference.duration + 0.5 && $0.start <= $0.end })
        // Weak on synthetic voices, but it hears the common words.
        let heard = Set(Self.hypothesisWords(state))
        #expect(heard.isSuperset(of: ["we", "the"]))
    }

    @Test func anyProgramSpeakingTheProtocolIsABackend() async throws {
        let meeting = try Fixtures.standup()
        let example = "\(Fixtures.packageRoot)/examples/plugins/minimal_whisper.py"
        let (report, _, state) = await Fixtures.run(
            try Self.pipeline("command", ["command": "\(Fixtures.python) \(example)", "window": "25"]),
            .file(meeting.audioPath))
        #expect(report.failure == nil)
        let wer = Fixtures.wordErrorRate(
            reference: Self.referenceWords(meeting.reference), hypothesis: Self.hypothesisWords(state))
        #expect(wer < 0.25, "WER \(wer)")
    }

    static func failingWorker(_ mode: String, pidFile: String) -> [String: String] {
        let script = "\(Fixtures.packageRoot)/Tests/ParleyPipelineTests/StandIns/failing_worker.py"
        return ["command": "\(Fixtures.python) \(script) \(mode) \(pidFile)"]
    }

    static func isRunning(pidFile: String) -> Bool {
        guard let text = try? String(contentsOfFile: pidFile, encoding: .utf8), let pid = Int32(text) else {
            return false
        }
        return kill(pid, 0) == 0
    }

    @Test(arguments: [("crash", "out of memory while decoding"), ("garbage", "not a JSON object")])
    func aWorkerThatFailsEndsTheMeetingNamingTheStage(mode: String, words: String) async throws {
        let meeting = try Fixtures.standup()
        let pidFile = "\(try Fixtures.scratch("pid"))/pid"
        let (report, events, state) = await Fixtures.run(
            try Self.pipeline("command", Self.failingWorker(mode, pidFile: pidFile)), .file(meeting.audioPath))
        let failure = try #require(report.failure)
        #expect(failure.stage == .transcription)
        #expect(failure.message.contains(words), "\(failure.message)")
        #expect(state.error == failure)
        #expect(events.last.map { if case .status(let s) = $0.data { s.stage == .failed } else { false } } == true)
        #expect(!Self.isRunning(pidFile: pidFile))
    }

    @Test func aHungRequestTimesOutAndItsWorkerIsStopped() async throws {
        let meeting = try Fixtures.standup()
        let pidFile = "\(try Fixtures.scratch("pid"))/pid"
        var options = PipelineOptions()
        options.timeouts.transcriptionRequest = 1
        let started = ContinuousClock.now
        let (report, _, _) = await Fixtures.run(
            try Self.pipeline("command", Self.failingWorker("hang", pidFile: pidFile), options: options),
            .file(meeting.audioPath))
        #expect(report.failure?.stage == .transcription)
        #expect(report.failure?.code == "timeout")
        #expect(ContinuousClock.now - started < .seconds(20))
        #expect(!Self.isRunning(pidFile: pidFile))
    }

    @Test func cancellingAMeetingStopsItsWorkerPromptly() async throws {
        let meeting = try Fixtures.standup()
        let pidFile = "\(try Fixtures.scratch("pid"))/pid"
        let pipeline = try Self.pipeline("command", Self.failingWorker("hang", pidFile: pidFile))
        let log = MeetingEventLog(meetingID: "m", title: "t")
        let task = Task { await pipeline.run(.file(meeting.audioPath), sink: log, logger: Fixtures.logger) }
        // Wait until the worker is busy with a request.
        for _ in 0..<200
        where !log.history.contains(where: { $0.type == "status" && "\($0.data)".contains("transcription") }) {
            try await Task.sleep(for: .milliseconds(50))
        }
        let cancelled = ContinuousClock.now
        task.cancel()
        let report = await task.value
        #expect(ContinuousClock.now - cancelled < .seconds(5))
        #expect(report.failure?.code == "cancelled")
        #expect(!Self.isRunning(pidFile: pidFile))
    }

    @Test func cancellingDuringAnUploadStopsTheDecodingPromptly() async throws {
        let meeting = try Fixtures.standup()
        let length = try FileManager.default.attributesOfItem(atPath: meeting.audioPath)[.size] as? Int
        let pipeline = try Self.pipeline("pocketsphinx")
        let log = MeetingEventLog(meetingID: "m", title: "t")
        // Half a second per chunk: the upload would take half a minute.
        let upload = slowUpload(meeting.audioPath, delay: .milliseconds(500))
        let task = Task {
            await pipeline.run(
                .upload(upload, expectedLength: length.map(Int64.init), spoolPath: nil), sink: log,
                logger: Fixtures.logger)
        }
        try await Task.sleep(for: .seconds(2))
        let cancelled = ContinuousClock.now
        task.cancel()
        let report = await task.value
        #expect(ContinuousClock.now - cancelled < .seconds(3))
        #expect(report.failure?.code == "cancelled")
        #expect(log.state.status?.stage == .failed)
        #expect(!log.history.contains { $0.type == "summary" })
    }

    @Test func anUploadThatStallsIsGivenUp() async throws {
        let meeting = try Fixtures.standup()
        let data = try Data(contentsOf: URL(fileURLWithPath: meeting.audioPath))
        let sent = Mutex(0)
        // Three chunks, then silence: a client that went away without closing.
        let stalled = AsyncThrowingStream<[UInt8], any Error> {
            let n = sent.withLock { count -> Int in
                count += 1
                return count
            }
            if n > 3 { try await Task.sleep(for: .seconds(3600)) }
            return [UInt8](data[((n - 1) * 32_768)..<(n * 32_768)])
        }
        var options = PipelineOptions()
        options.timeouts.uploadIdle = 1
        let started = ContinuousClock.now
        let (report, events, _) = await Fixtures.run(
            try Self.pipeline("pocketsphinx", options: options),
            .upload(stalled, expectedLength: Int64(data.count), spoolPath: nil))
        #expect(report.failure?.stage == .upload)
        #expect(report.failure?.code == "timeout")
        #expect(report.failure?.message.contains("no bytes arrived") == true)
        #expect(ContinuousClock.now - started < .seconds(10))
        #expect(events.contains { $0.type == "error" })
    }

    @Test func aMisconfiguredBackendFailsBeforeAnyAudioIsRead() async throws {
        let meeting = try Fixtures.standup()
        let (report, events, _) = await Fixtures.run(
            try Self.pipeline("whisper", ["python": "/nonexistent/python"]), .file(meeting.audioPath))
        #expect(report.failure?.stage == .transcription)
        #expect(report.failure?.code == "not_ready")
        #expect(report.failure?.message.contains("/nonexistent/python") == true)
        #expect(!events.contains { $0.type == "transcript" || $0.type == "upload_progress" })
        let readiness = try await PocketSphinxTranscriber(settings: PluginSettings(["model_dir": "/nonexistent"]))
            .readiness()
        #expect(!readiness.isReady)
        #expect("\(readiness)".contains("pocketsphinx-en-us"))
    }

    @Test func audioThatIsNotAudioFailsTheUploadStage() async throws {
        let dir = try Fixtures.scratch("bad")
        try "this is not a recording".write(toFile: "\(dir)/notes.wav", atomically: true, encoding: .utf8)
        let (report, events, _) = await Fixtures.run(try Self.pipeline("pocketsphinx"), .file("\(dir)/notes.wav"))
        #expect(report.failure?.stage == .upload)
        #expect(events.contains { $0.type == "error" })
        #expect(!events.contains { $0.type == "transcript" })
    }
}
