import Foundation
import ParleyAudio
import ParleyEvents
import ParleyPipeline
import ParleyPluginAPI
import Testing

@Suite struct EngineTests {
    static func speech(_ start: Double, _ end: Double) -> SpeechSegment {
        SpeechSegment(startFrame: Int(start * 100), endFrame: Int(end * 100), start: start, end: end)
    }

    @Test func windowsGroupNeighbouringSpeechUpToThePreferredLength() {
        var windows = TranscriptionWindows(preferred: 10, maxPause: 2)
        #expect(windows.add(Self.speech(0, 3)).isEmpty)
        #expect(windows.add(Self.speech(3.5, 6)).isEmpty)
        // Too long together: the first window closes.
        let closed = windows.add(Self.speech(6.5, 12))
        #expect(closed.map { [$0.start, $0.end] } == [[0, 6]])
        #expect(closed.first?.segments == 2)
        // A long pause closes a window once the detector has settled past it.
        #expect(windows.advance(to: 13).isEmpty)
        #expect(windows.advance(to: 14.5).map(\.start) == [6.5])
        #expect(windows.finish().isEmpty)
    }

    /// Speech that starts right after a window (no pause to wait for) and is still going on when
    /// the window with it would be too long: the window goes at once, not when that speech ends.
    @Test func aWindowDoesNotWaitForTheEndOfSpeechThatCannotJoinIt() {
        var windows = TranscriptionWindows(preferred: 4, maxPause: 0.6)
        #expect(windows.add(Self.speech(0, 3)).isEmpty)
        // The next segment opened at 3.1: the detector is settled only to 3.1.
        #expect(windows.advance(to: 3.1, now: 3.5).isEmpty, "it might still join")
        #expect(windows.advance(to: 3.1, now: 4.2).map(\.end) == [3], "it cannot any more")
        #expect(windows.add(Self.speech(3.1, 9)).isEmpty)
        #expect(windows.advance(to: 9, now: 9.2).map(\.start) == [3.1], "longer than preferred alone")
        #expect(windows.finish().isEmpty)
    }

    @Test func aZeroWindowSendsEachSegmentAlone() {
        var windows = TranscriptionWindows(preferred: 0)
        #expect(windows.add(Self.speech(0, 1)).count == 1)
        #expect(windows.add(Self.speech(1.2, 2)).count == 1)
        #expect(windows.finish().isEmpty)
    }

    @Test func wordsTakeTheSpeakerOfMostOverlapOrTheNearestTurn() {
        let aligner = Aligner(turns: [
            SpeakerTurn(speaker: "S1", start: 0, end: 2), SpeakerTurn(speaker: "S2", start: 2, end: 4),
            SpeakerTurn(speaker: "S1", start: 6, end: 8),
        ])
        #expect(aligner.speaker(from: 1.8, to: 2.5) == "S2")
        #expect(aligner.speaker(from: 1.2, to: 2.1) == "S1")
        #expect(aligner.speaker(from: 4.5, to: 4.8) == "S2")  // in the gap, nearer S2's end
        #expect(aligner.speaker(from: 5.5, to: 5.8) == "S1")  // nearer the next turn
        #expect(aligner.speaker(from: 9, to: 9.5) == "S1")
        let words = [
            Word(word: "one", start: 1, end: 1.5, confidence: 1),
            Word(word: "two", start: 2.2, end: 2.6, confidence: 1),
            Word(word: "three", start: 3, end: 3.5, confidence: 1),
        ]
        let runs = aligner.split(
            TranscribedSegment(start: 1, end: 3.5, text: "one two three", words: words), unknown: "?")
        #expect(runs.map(\.speaker) == ["S1", "S2"])
        #expect(runs.map { $0.words.map(\.word) } == [["one"], ["two", "three"]])
        #expect(
            Aligner(turns: []).split(TranscribedSegment(start: 0, end: 1, text: "a b", words: []), unknown: "S9").map(
                \.speaker) == ["S9"])
    }

    /// A second voice the diarizer added over another's turn does not take that turn's words;
    /// it takes the words only it covers.
    @Test func aTurnAddedOverAnotherTakesOnlyTheWordsNoOtherTurnCovers() {
        let turns = [
            SpeakerTurn(speaker: "S1", start: 0, end: 4), SpeakerTurn(speaker: "S2", start: 1, end: 2, overlap: true),
            SpeakerTurn(speaker: "S2", start: 3.5, end: 5, overlap: true),
        ]
        let aligner = Aligner(turns: turns)
        #expect(aligner.speaker(from: 1.2, to: 1.6) == "S1")  // inside both: the counted speaker
        #expect(aligner.speaker(from: 3.8, to: 4.6) == "S1")  // more inside the added turn, still S1's
        #expect(aligner.speaker(from: 4.2, to: 4.6) == "S2")  // only the added turn covers it
        // Without the mark, the later turn wins a tie and most overlap wins otherwise.
        let plain = Aligner(turns: turns.map { SpeakerTurn(speaker: $0.speaker, start: $0.start, end: $0.end) })
        #expect(plain.speaker(from: 1.2, to: 1.6) == "S2")
        #expect(plain.speaker(from: 3.8, to: 4.6) == "S2")
    }

    @Test func labelsStayStableWhenAClusteringRenamesItsSpeakers() {
        var tracker = SpeakerTracker()
        let first = Diarization(
            turns: [SpeakerTurn(speaker: "A", start: 0, end: 5), SpeakerTurn(speaker: "B", start: 5, end: 10)],
            speakers: ["A", "B"], speech: [], duration: 10)
        #expect(tracker.adopt(first, covering: 10).map(\.speaker) == ["S1", "S2"])
        // The next run calls them the other way round and finds a third voice.
        let second = Diarization(
            turns: [
                SpeakerTurn(speaker: "X", start: 0, end: 5), SpeakerTurn(speaker: "Y", start: 5, end: 10),
                SpeakerTurn(speaker: "Z", start: 10, end: 14), SpeakerTurn(speaker: "Y", start: 14, end: 20),
            ], speakers: ["Y", "X", "Z"], speech: [], duration: 20)
        #expect(tracker.adopt(second, covering: 20).map(\.speaker) == ["S1", "S2", "S3", "S2"])
        #expect(tracker.coveredUntil == 20)
    }

    @Test func configurationLayersFileThenEnvironmentThenFlags() throws {
        let dir = try Fixtures.scratch("config")
        let file = "\(dir)/parley.yaml"
        try """
        pipeline:
          transcriber: pocketsphinx
          language: en
        transcriber:
          whisper:
            model: tiny.en
            beam_size: 2
        timeouts:
          summarization: 30
        """.write(toFile: file, atomically: true, encoding: .utf8)
        var configuration = try ParleyConfiguration.load(
            path: file,
            environment: [
                "PARLEY_TRANSCRIBER_WHISPER_BEAM_SIZE": "3", "PARLEY_TRANSCRIBER_WHISPER_COMPUTE_TYPE": "float32",
                "PARLEY_PIPELINE_LANGUAGE": "de", "HOME": dir,
            ])
        try configuration.set(assignment: "transcriber.whisper.beam_size=4")
        #expect(configuration.transcriberName == "pocketsphinx")
        #expect(configuration["pipeline.language"] == "de")
        let whisper = configuration.settings("transcriber.whisper")
        #expect(whisper.string("model") == "tiny.en")
        #expect(whisper.string("compute_type") == "float32")
        #expect(try whisper.int("beam_size", default: 5) == 4)
        #expect(try configuration.pipelineOptions().timeouts.summarization == 30)
        #expect(
            ParleyConfiguration.environmentName(of: "summarizer.openai-chat.api_key")
                == "PARLEY_SUMMARIZER_OPENAI_CHAT_API_KEY")
    }

    @Test func aBrokenConfigurationSaysWhereAndWhat() throws {
        let dir = try Fixtures.scratch("config")
        try "pipeline: [unclosed".write(toFile: "\(dir)/bad.yaml", atomically: true, encoding: .utf8)
        #expect(throws: PipelineError.self) { try ParleyConfiguration.load(path: "\(dir)/bad.yaml") }
        #expect(throws: PipelineError.self) { try ParleyConfiguration.load(path: "\(dir)/missing.yaml") }
        var configuration = ParleyConfiguration()
        #expect(throws: PipelineError.self) { try configuration.set(assignment: "no-equals-sign") }
        configuration.set("timeouts.summarization", "soon")
        #expect(throws: PipelineError.self) { try configuration.pipelineOptions() }
        #expect(throws: PluginError.self) { try PluginSettings(["beam_size": "many"]).int("beam_size", default: 1) }
    }

    @Test func unknownPluginsAreNamedWithTheKnownOnes() {
        let registry = PluginRegistry()
        #expect(throws: PipelineError.self) { try registry.transcriber("nope", settings: .init()) }
    }

    static func finishedState() -> MeetingState {
        var state = MeetingState(
            meetingID: "m_x", title: "Release | sync", createdAt: Date(timeIntervalSince1970: 1_795_948_502))
        state.duration = 3725
        state.speakers = [SpeakerInfo(id: "S1", name: "Maria"), SpeakerInfo(id: "S2", name: "Speaker 2")]
        state.turns = [
            SpeakerTurnRecord(speaker: "S1", start: 0, end: 2), SpeakerTurnRecord(speaker: "S2", start: 2, end: 3725),
        ]
        state.segments = [
            TranscriptSegment(id: 1, speaker: "S1", start: 0.5, end: 1.75, text: "Good morning.", words: []),
            TranscriptSegment(
                id: 2, speaker: "S2", start: 3661.2, end: 3662, text: "I will write the notes.", words: []),
            TranscriptSegment(id: 3, speaker: "S2", start: 3663.5, end: 3665, text: "Then send them.", words: []),
            TranscriptSegment(id: 4, speaker: "S2", start: 3700, end: 3701, text: "Done.", words: []),
        ]
        state.summary = SummaryUpdate(
            points: ["Notes are due."], decisions: [Decision(text: "Drop it.", time: 70)], summarizer: "extractive")
        state.actionItems = [
            ActionItemRecord(id: 1, owner: "Tom", task: "write the notes", due: "Monday", time: 3661.2)
        ]
        return state
    }

    @Test func subtitlesAndMinutesCarryTimesSpeakersAndItems() throws {
        let state = Self.finishedState()
        let srt = try Exporter.render(state, as: .srt)
        #expect(
            srt.hasPrefix(
                "1\n00:00:00,500 --> 00:00:01,750\nMaria: Good morning.\n\n2\n01:01:01,200 --> 01:01:02,000\n"))
        let vtt = try Exporter.render(state, as: .vtt)
        #expect(vtt.hasPrefix("WEBVTT\n\n00:00:00.500 --> 00:00:01.750\n<v Maria>Good morning.\n"))
        let md = try Exporter.render(state, as: .md)
        #expect(md.hasPrefix("# Release | sync\n"))
        #expect(md.contains("- **Duration:** 1:02:05"))
        #expect(md.contains("- **Participants:** Maria, Speaker 2"))
        #expect(md.contains("| Done | Owner | Task | Due | Time |"))
        #expect(md.contains("|  | Tom | write the notes | Monday | 1:01:01 |"))
        #expect(md.contains("## Decisions\n\n- Drop it. _(01:10)_"))
        // One speaker's segments a short pause apart are one paragraph; after a long pause, a new one.
        #expect(md.contains("**Speaker 2** _1:01:01_: I will write the notes. Then send them.\n\n"))
        #expect(md.contains("**Speaker 2** _1:01:40_: Done.\n"))
        #expect(!md.contains("_1:01:03_"))
        #expect(try Exporter.render(state, as: .rttm).hasPrefix("SPEAKER m_x 1 0.000 2.000 <NA> <NA> S1 <NA> <NA>\n"))
        #expect(try Exporter.render(state, as: .txt).contains("[1:01:01] Speaker 2: I will write the notes."))
        let json = try #require(
            try JSONSerialization.jsonObject(with: Data(Exporter.render(state, as: .json).utf8)) as? [String: Any])
        #expect((json["action_items"] as? [[String: Any]])?.first?["task"] as? String == "write the notes")
        #expect(throws: PipelineError.self) { try ExportFormat.list("json,docx") }
    }
}
