import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat
import ParleyEvents
import ParleyPipeline
import ParleyPluginAPI
import ParleySynth
import Testing

@testable import ParleyOpenAI

/// The OpenAI-compatible plugins against servers started by the test: the real
/// faster-whisper-server (PyPI, the same local model) for transcription, and a STAND-IN
/// chat-completions server (StandIns/chat_standin.py, no language model) for summaries.
@Suite(.serialized) struct OpenAIPluginTests {
    @Test func transcriptionThroughARealOpenAICompatibleServer() async throws {
        let meeting = try Fixtures.standup()
        let modelPath = try Fixtures.whisperModelPath()
        let port = ServerProcess.freePort()
        let server = try ServerProcess(
            "\(Fixtures.packageRoot)/.venv/bin/faster-whisper-server",
            [modelPath, "--host", "127.0.0.1", "--port", "\(port)"],
            port: port, environment: ["HF_HUB_OFFLINE": "1", "ORT_DISABLE_TELEMETRY": "1"])
        defer { server.stop() }
        try await server.waitUntilListening()
        let pipeline = try PipelineTests.pipeline(
            "openai",
            ["base_url": "http://127.0.0.1:\(port)/v1", "model": modelPath, "model_fields": "model model_name"])
        let (report, events, state) = await Fixtures.run(pipeline, .file(meeting.audioPath))
        #expect(report.failure == nil, "\(String(describing: report.failure))")
        PipelineTests.checkProtocol(events)
        let wer = Fixtures.wordErrorRate(
            reference: PipelineTests.referenceWords(meeting.reference), hypothesis: PipelineTests.hypothesisWords(state)
        )
        #expect(wer < 0.25, "WER \(wer)")
        // This server gives segments without words: they are spread, and the report says so.
        #expect(report.wordTiming == .estimated)
        #expect(state.metadata["word_timing"] == "estimated")
        #expect(state.segments.allSatisfy { $0.wordTiming == .estimated })
        #expect(state.segments.allSatisfy { !$0.words.isEmpty })
    }

    @Test func anUnreachableServerIsNotReadyAndSaysWhere() async throws {
        let port = ServerProcess.freePort()
        let transcriber = try OpenAITranscriber(settings: PluginSettings(["base_url": "http://127.0.0.1:\(port)/v1"]))
        let readiness = await transcriber.readiness()
        #expect(!readiness.isReady)
        #expect("\(readiness)".contains("127.0.0.1:\(port)"))
        #expect(throws: PluginError.self) { try OpenAITranscriber(settings: PluginSettings([:])) }
        #expect(throws: PluginError.self) { try OpenAITranscriber(settings: PluginSettings(["base_url": "ftp://x"])) }
    }

    static func standIn() throws -> ServerProcess {
        try ServerProcess(
            Fixtures.python, ["\(Fixtures.packageRoot)/Tests/ParleyPipelineTests/StandIns/chat_standin.py"])
    }

    static let transcript = [
        AttributedSegment(
            id: 1, speaker: "S1", start: 0, end: 4, text: "Good morning, let's go through the release checklist."),
        AttributedSegment(id: 2, speaker: "S2", start: 5, end: 9, text: "I will write the upgrade notes by Monday."),
        AttributedSegment(
            id: 3, speaker: "S3", start: 10, end: 14, text: "The migration script is still slow and needs work."),
    ]

    static func summarize(model: String, port: Int) async throws -> MeetingSummary {
        let summarizer = try OpenAIChatSummarizer(
            settings: PluginSettings(["base_url": "http://127.0.0.1:\(port)/v1", "model": model, "max_retries": "2"]))
        #expect(await summarizer.readiness().isReady)
        return try await summarizer.summarize(
            transcript, participants: [Participant(id: "S2", name: "Tom")],
            context: PluginContext(logger: Fixtures.logger, scratchDirectory: NSTemporaryDirectory()))
    }

    static func stats(port: Int) async throws -> [String: Int] {
        let response = try await HTTPClient.shared.execute(
            HTTPClientRequest(url: "http://127.0.0.1:\(port)/stats"), timeout: .seconds(10))
        let body = try await response.body.collect(upTo: 1 << 16)
        return try JSONDecoder().decode([String: Int].self, from: Data(buffer: body))
    }

    @Test func chatSummariesAreValidatedAndRetriedOnce() async throws {
        let server = try Self.standIn()
        defer { server.stop() }
        try await server.waitUntilListening()
        let good = try await Self.summarize(model: "standin", port: server.port)
        #expect(
            good.actionItems.first == ActionItem(owner: "Tom", task: "write the upgrade notes", due: "Monday", time: 5))
        #expect(good.points.count == 3)
        // Invalid once: sent back with what was wrong, then accepted.
        let retried = try await Self.summarize(model: "standin-invalid-once", port: server.port)
        #expect(retried.actionItems.count == 1)
        // Invalid twice: the stage fails with the reason.
        await #expect(throws: PluginError.self) {
            try await Self.summarize(model: "standin-invalid", port: server.port)
        }
        // 429 first: retried after the server's Retry-After.
        let limited = try await Self.summarize(model: "standin-429-once", port: server.port)
        #expect(limited.actionItems.count == 1)
        let counts = try await Self.stats(port: server.port)
        #expect(counts == ["standin": 1, "standin-invalid-once": 2, "standin-invalid": 2, "standin-429-once": 2])
    }

    @Test func answersOutsideTheMeetingAreRejected() {
        let late = #"{"summary":["a"],"decisions":[],"action_items":[{"owner":null,"task":"x","due":null,"time":999}]}"#
        if case .success = OpenAIChatSummarizer.validate(late, duration: 60) {
            Issue.record("accepted a time past the end")
        }
        let fenced = "```json\n{\"summary\":[\"a\"],\"decisions\":[],\"action_items\":[]}\n```"
        if case .failure(let problem) = OpenAIChatSummarizer.validate(fenced, duration: 60) {
            Issue.record("\(problem)")
        }
    }
}
