import Foundation
import Testing

/// `parley process`, `parley batch` and `parley plugins` through the real executable.
@Suite(.serialized) struct ProcessCommandTests {
    typealias CLI = ParleyCommandTests

    @Test func processWritesEveryFormatAndReportsTheStages() throws {
        let dir = try CLI.scratch()
        #expect(try CLI.parley("make-meeting", dir, "--seed", "4").status == 0)
        // The classic diarizer: the generator's voices are told apart by it only (Docs/diarization.md).
        let run = try CLI.parley(
            "process", "\(dir)/meeting.wav", "--out", "\(dir)/out", "--format", "json,srt,vtt,txt,md,rttm",
            "--title", "Release sync", "--diarizer", "classic")
        #expect(run.status == 0, "\(run.errors)")
        // Piped, the stages come as plain lines on standard error.
        for stage in ["upload", "diarization", "transcription", "alignment", "summarization"] {
            #expect(run.errors.contains("meeting: \(stage) completed"), "\(run.errors)")
        }
        #expect(run.output.contains("3 speakers"))
        for ext in ["json", "srt", "vtt", "txt", "md", "rttm"] {
            #expect(FileManager.default.fileExists(atPath: "\(dir)/out/meeting.\(ext)"), "no .\(ext)")
        }
        let minutes = try String(contentsOfFile: "\(dir)/out/meeting.md", encoding: .utf8)
        #expect(minutes.hasPrefix("# Release sync\n"))
        for heading in [
            "## Summary", "## Decisions", "## Action items", "## Transcript", "| Owner | Task | Due | Time |",
        ] {
            #expect(minutes.contains(heading))
        }
        let json = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(dir)/out/meeting.json")))
                as? [String: Any])
        #expect((json["status"] as? [String: Any])?["stage"] as? String == "completed")
        #expect(((json["action_items"] as? [Any])?.count ?? 0) >= 3)
        let srt = try String(contentsOfFile: "\(dir)/out/meeting.srt", encoding: .utf8)
        #expect(srt.hasPrefix("1\n00:00:0"))
    }

    /// Whispered speech has no voicing: the classic diarizer does not count it as speech (its
    /// voiced-frames check), but the recognizer still transcribes it, and its words go to the
    /// nearest speaker's turn.
    @Test func whisperedSpeechIsTranscribedThoughTheDiarizerSkipsIt() throws {
        let dir = try CLI.scratch()
        let script = """
            {"speakers": {"ann": {"voice": "en-us+f3", "pitch": 60, "speed": 150},
                          "ben": {"voice": "en-us+whisper", "pitch": 50, "speed": 150}},
             "turns": [["ann", "Good morning, let us begin the review of the budget."],
                       ["ben", "I will send the report to the finance team tomorrow morning."],
                       ["ann", "Thank you, that sounds good to me."]],
             "action_items": []}
            """
        try script.write(toFile: "\(dir)/script.json", atomically: true, encoding: .utf8)
        #expect(try CLI.parley("make-meeting", dir, "--script", "\(dir)/script.json").status == 0)
        let diarized = try CLI.parley("diarize", "\(dir)/meeting.wav", "--diarizer", "classic", "--json")
        #expect(diarized.status == 0, "\(diarized.errors)")
        let analysis = try #require(
            try JSONSerialization.jsonObject(with: Data(diarized.output.utf8)) as? [String: Any])
        // The whispered turn (after "...budget", about 3 to 8 s) is not speech to the diarizer.
        let speech = (analysis["speech"] as? [[String: Any]] ?? []).compactMap { s -> (Double, Double)? in
            guard let a = s["start"] as? Double, let b = s["end"] as? Double else { return nil }
            return (a, b)
        }
        #expect(!speech.isEmpty)
        #expect(speech.allSatisfy { $0.1 < 5 || $0.0 > 8 }, "\(speech)")
        let run = try CLI.parley(
            "process", "\(dir)/meeting.wav", "--out", "\(dir)/out", "--format", "txt", "--diarizer", "classic")
        #expect(run.status == 0, "\(run.errors)")
        let text = try String(contentsOfFile: "\(dir)/out/meeting.txt", encoding: .utf8).lowercased()
        #expect(text.contains("finance team"), "\(text)")
    }

    @Test func eventsFlagPrintsTheProtocolAsJSONLines() throws {
        let dir = try CLI.scratch()
        #expect(try CLI.parley("make-meeting", dir, "--seed", "5").status == 0)
        let run = try CLI.parley(
            "process", "\(dir)/meeting.wav", "--out", dir, "--transcriber", "pocketsphinx", "--events", "--format",
            "json")
        #expect(run.status == 0, "\(run.errors)")
        let events = run.output.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        #expect(events.count > 10)
        #expect(events.map { $0["offset"] as? Int ?? 0 } == Array(1...events.count))
        #expect(
            Set(events.compactMap { $0["type"] as? String }).isSuperset(of: [
                "status", "transcript", "speakers", "summary", "action_items",
            ]))
    }

    @Test func failuresAreOneLineAndExitOne() throws {
        let dir = try CLI.scratch()
        try "not audio".write(toFile: "\(dir)/notes.wav", atomically: true, encoding: .utf8)
        let bad = try CLI.parley("process", "\(dir)/notes.wav", "--out", dir, "--transcriber", "pocketsphinx")
        #expect(bad.status == 1, "\(bad.errors)")
        #expect(bad.errors.split(separator: "\n").last?.contains("upload") == true, "\(bad.errors)")
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/notes.json"))
        let unknown = try CLI.parley("process", "\(dir)/notes.wav", "--transcriber", "nope")
        #expect(unknown.status != 0)
        #expect(unknown.errors.contains("no transcriber named 'nope'"))
        let notReady = try CLI.parley(
            "process", "\(dir)/notes.wav", "--set", "transcriber.whisper.python=/nonexistent/python")
        #expect(notReady.status != 0)
        #expect(notReady.errors.contains("/nonexistent/python"))
        let filter = try CLI.parley(
            "process", "\(dir)/notes.wav", "--set", "transcriber.whisper.speech_threshold=1.5")
        #expect(filter.status == 1)
        #expect(filter.errors.contains("speech_threshold': must be at least 0 (off) and under 1"), "\(filter.errors)")
        let floor = try CLI.parley(
            "diarize", "\(dir)/notes.wav", "--diarizer", "neural", "--set", "diarizer.neural.threshold_floor=0")
        #expect(floor.status == 1)
        #expect(floor.errors.contains("threshold_floor': must lie between 0 and 2"), "\(floor.errors)")
        let chunk = try CLI.parley(
            "diarize", "\(dir)/notes.wav", "--diarizer", "neural", "--set", "diarizer.neural.chunk=0.2")
        #expect(chunk.status == 1)
        #expect(chunk.errors.contains("chunk': must be 0 (off) or lie between 0.5 and 5 seconds"), "\(chunk.errors)")
        let format = try CLI.parley("process", "\(dir)/notes.wav", "--format", "docx")
        #expect(format.status != 0)
        #expect(format.errors.contains("unknown format 'docx'"))
    }

    @Test func pluginsListsEveryBackendAndWhyOneIsNotReady() throws {
        let run = try CLI.parley("plugins", "--json")
        #expect(run.status == 0)
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(run.output.utf8)) as? [[String: Any]])
        let names = Set(rows.compactMap { $0["name"] as? String })
        #expect(
            names == ["whisper", "pocketsphinx", "command", "openai", "extractive", "openai-chat", "classic", "neural"])
        let command = try #require(
            rows.first { $0["name"] as? String == "command" && $0["kind"] as? String == "transcriber" })
        #expect(command["ready"] as? Bool == false)
        #expect((command["detail"] as? String)?.contains("transcriber.command.command") == true)
        #expect(rows.first { $0["name"] as? String == "whisper" }?["ready"] as? Bool == true)
        #expect(rows.first { $0["name"] as? String == "pocketsphinx" }?["ready"] as? Bool == true)
        // Setup installs the neural diarizer's models: it is ready, and auto selects it.
        let neural = try #require(rows.first { $0["name"] as? String == "neural" })
        #expect(neural["ready"] as? Bool == true, "\(neural)")
        #expect(neural["selected"] as? Bool == true)
        #expect(rows.first { $0["name"] as? String == "classic" }?["selected"] as? Bool == false)
    }

    @Test func batchGoesOnPastABadFileResumesAndForces() throws {
        let dir = try CLI.scratch()
        let input = "\(dir)/in"
        try FileManager.default.createDirectory(atPath: "\(input)/sub", withIntermediateDirectories: true)
        for (seed, name) in [(6, "a"), (7, "sub/b")] {
            #expect(try CLI.parley("make-meeting", "\(dir)/m\(seed)", "--seed", "\(seed)").status == 0)
            try FileManager.default.copyItem(atPath: "\(dir)/m\(seed)/meeting.wav", toPath: "\(input)/\(name).wav")
        }
        try "broken".write(toFile: "\(input)/broken.wav", atomically: true, encoding: .utf8)
        let first = try CLI.parley(
            "batch", input, "--out", "\(dir)/out", "--jobs", "2", "--recursive")
        #expect(first.status == 1)
        #expect(first.errors.contains("broken.wav: failed"))
        #expect(first.output.contains("file"))
        #expect(first.output.contains("3 files: 2 ok, 0 skipped, 1 failed"), "\(first.output)")
        #expect(FileManager.default.fileExists(atPath: "\(dir)/out/a.json"))
        #expect(FileManager.default.fileExists(atPath: "\(dir)/out/sub/b.md"))
        let report = try #require(
            try JSONSerialization.jsonObject(
                with: Data(contentsOf: URL(fileURLWithPath: "\(dir)/out/batch-report.json")))
                as? [String: Any])
        #expect((report["files"] as? [Any])?.count == 3)

        let again = try CLI.parley(
            "batch", input, "--out", "\(dir)/out", "--recursive", "--jobs", "2")
        #expect(again.output.contains("3 files: 0 ok, 2 skipped, 1 failed"), "\(again.output)")
        try FileManager.default.removeItem(atPath: "\(input)/broken.wav")
        let forced = try CLI.parley("batch", input, "--out", "\(dir)/out", "--force", "--jobs", "2")
        #expect(forced.status == 0)
        #expect(forced.output.contains("1 file: 1 ok, 0 skipped, 0 failed"), "\(forced.output)")
    }
}
