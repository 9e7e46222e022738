import Foundation
import ParleyAudio
import ParleyTestSupport
import Testing

/// `parley process -`: a meeting recorded from standard input (raw PCM as `arecord` writes it,
/// or a container from a pipe), the transcript printed as it is produced, the recording kept,
/// and Ctrl-C ending the recording but not the meeting.
@Suite(.serialized) struct LiveInputCommandTests {
    typealias CLI = ParleyCommandTests

    /// A generated meeting and its raw PCM (s16le, 16 kHz, mono), made with the ffmpeg command line.
    static func meeting() throws -> (dir: String, pcm: Data) {
        let dir = try CLI.scratch()
        #expect(try CLI.parley("make-meeting", dir, "--seed", "6").status == 0)
        try FFmpegCommandLine.run([
            "-i", "\(dir)/meeting.wav", "-f", "s16le", "-ac", "1", "-ar", "16000", "\(dir)/meeting.pcm",
        ])
        return (dir, try Data(contentsOf: URL(fileURLWithPath: "\(dir)/meeting.pcm")))
    }

    /// Starts `parley process - ARGS` with a pipe on its standard input; the caller writes.
    static func start(_ arguments: [String]) throws -> (Process, FileHandle, Pipe, Pipe) {
        let process = Process()
        process.executableURL = CLI.executable
        process.arguments = ["process", "-"] + arguments
        let input = Pipe(), output = Pipe(), errors = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        return (process, input.fileHandleForWriting, output, errors)
    }

    /// Waits for the process, draining both pipes; returns (status, output, errors).
    static func finish(_ process: Process, _ output: Pipe, _ errors: Pipe) -> (Int32, String, String) {
        let printed = PipeReader(output), said = PipeReader(errors)
        process.waitUntilExit()
        return (process.terminationStatus, printed.wait(), said.wait())
    }

    @Test func rawPCMFromStandardInputBecomesAMeetingAndARecording() throws {
        let (dir, pcm) = try Self.meeting()
        let (process, input, output, errors) = try Self.start([
            "--raw", "s16le:16000:1", "--out", "\(dir)/out", "--transcriber", "pocketsphinx", "--diarizer", "classic",
        ])
        for start in stride(from: 0, to: pcm.count, by: 32_000) {
            input.write(pcm.subdata(in: start..<min(pcm.count, start + 32_000)))
        }
        try input.close()
        let (status, printed, said) = Self.finish(process, output, errors)
        #expect(status == 0, "\(said)")
        #expect(printed.contains("3 speakers"), "\(printed)")
        #expect(printed.contains("live.wav"))
        let json = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(dir)/out/live.json")))
                as? [String: Any])
        #expect((json["status"] as? [String: Any])?["stage"] as? String == "completed")
        #expect(((json["segments"] as? [Any])?.count ?? 0) >= 5)
        // The recording is a whole WAV file: its header says the length that was sent.
        let kept = try AudioDecoder(path: "\(dir)/out/live.wav")
        #expect(kept.info.frames == Int64(pcm.count / 2))
        #expect(kept.info.sourceRate == 16_000)
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/out/live.au"), "the spool went once saved")
    }

    @Test func aContainerFromAPipeIsReadToo() throws {
        let (dir, _) = try Self.meeting()
        let webm = "\(dir)/meeting.webm"
        try FFmpegCommandLine.convert("\(dir)/meeting.wav", to: webm, ["-c:a", "libopus"])
        let (process, input, output, errors) = try Self.start([
            "--out", "\(dir)/out", "--title", "piped", "--transcriber", "pocketsphinx", "--diarizer", "classic",
        ])
        input.write(try Data(contentsOf: URL(fileURLWithPath: webm)))
        try input.close()
        let (status, printed, said) = Self.finish(process, output, errors)
        #expect(status == 0, "\(said)")
        #expect(printed.contains("3 speakers"), "\(printed)")
        let kept = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/out/piped.recording"))
        #expect(kept == (try Data(contentsOf: URL(fileURLWithPath: webm))))
    }

    /// The meeting is processed while it is recorded: a transcript event comes out while the
    /// input is still open; then Ctrl-C ends the recording, and the minutes are still written.
    @Test func theTranscriptComesWhileRecordingAndCtrlCStillFinishesTheMeeting() throws {
        let (dir, pcm) = try Self.meeting()
        let (process, input, output, errors) = try Self.start([
            "--raw", "s16le:16000:1", "--out", "\(dir)/out", "--transcriber", "pocketsphinx", "--diarizer", "classic",
            "--events",
        ])
        // Both pipes are read from the start, standard output as it comes.
        let printed = PipeReader(output), said = PipeReader(errors)
        // Forty seconds of the meeting, the input left open.
        let sent = 40 * 16_000 * 2
        input.write(pcm.prefix(sent))
        let deadline = Date().addingTimeInterval(300)
        func transcribed() -> Bool { printed.text.contains(#""type":"transcript""#) }
        while !transcribed() && Date() < deadline { usleep(50_000) }
        #expect(transcribed(), "no transcript while the input was still open")
        process.interrupt()
        process.waitUntilExit()
        _ = printed.wait()
        try? input.close()
        let words = said.wait()
        #expect(process.terminationStatus == 0, "\(words)")
        #expect(words.contains("recording stopped"))
        let kept = try AudioDecoder(path: "\(dir)/out/live.wav")
        #expect(kept.info.frames == Int64(sent / 2))
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/out/live.au"))
        let json = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(dir)/out/live.json")))
                as? [String: Any])
        #expect((json["status"] as? [String: Any])?["stage"] as? String == "completed")
    }

    /// While speech goes on, provisional transcripts show what was said so far; each is
    /// replaced (by id, in a later event) by its window's own transcript, so none is left in the
    /// minutes. They are off by default (`pipeline.live_partial` 0).
    @Test func provisionalTranscriptsAreShownWhileSpeechGoesOnAndAllReplaced() throws {
        // The standup's voices; the first turn is one sentence without a pause.
        let dir = try CLI.scratch()
        try Data(
            #"""
            {"speakers": {"maria": {"voice": "en-us+f3", "pitch": 70, "speed": 160},
                          "tom": {"voice": "en-us+m3", "pitch": 35, "speed": 150},
                          "priya": {"voice": "en-gb+f4", "pitch": 55, "speed": 170}},
             "turns": [["maria", "Let us go through the release checklist for version two of the installer and the migration script this morning"],
                       ["tom", "The installer works on all three platforms now, but the migration script is still slow."],
                       ["priya", "I profiled the migration yesterday. Most of the time goes into rebuilding the search index."],
                       ["maria", "Priya, could you make the index rebuild incremental by Thursday?"],
                       ["priya", "Yes, I will make the index rebuild incremental by Thursday."],
                       ["tom", "I will write the upgrade notes for the administrators before Monday."]]}
            """#.utf8
        ).write(to: URL(fileURLWithPath: "\(dir)/script.json"))
        #expect(try CLI.parley("make-meeting", dir, "--script", "\(dir)/script.json", "--seed", "6").status == 0)
        try FFmpegCommandLine.run([
            "-i", "\(dir)/meeting.wav", "-f", "s16le", "-ac", "1", "-ar", "16000", "\(dir)/meeting.pcm",
        ])
        let pcm = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/meeting.pcm"))
        // The recording first stops two and a half seconds into that turn, with nothing queued,
        // until its provisional transcript is out. (A provisional request is made only while the
        // recognizer is idle, and is skipped if a window closes before the recognizer takes it:
        // sent straight on, a slow or loaded machine may show none.)
        let truth = try RTTM.parse(String(contentsOfFile: "\(dir)/reference.rttm", encoding: .utf8))
        let first = try #require(truth.min { $0.start < $1.start })
        #expect(first.duration >= 4, "the first turn is too short to hold in: \(first)")
        let hold = Int((first.start + 2.5) * 10) * 3_200
        func events(_ extra: [String], holding: Bool) throws -> [[String: Any]] {
            let (process, input, output, errors) = try Self.start(
                [
                    "--raw", "s16le:16000:1", "--out", "\(dir)/out", "--transcriber", "pocketsphinx", "--diarizer",
                    "classic", "--events",
                ] + extra)
            let printed = PipeReader(output), said = PipeReader(errors)
            // Thirty seconds at twice real time, in 100 ms pieces, as a recorder sends.
            let end = min(pcm.count, 30 * 32_000)
            for start in stride(from: 0, to: end, by: 3_200) {
                if holding && start == hold {
                    let deadline = Date().addingTimeInterval(300)
                    func shown() -> Bool { printed.text.contains(#""provisional":true"#) }
                    while !shown() && Date() < deadline { usleep(50_000) }
                    #expect(shown(), "no provisional transcript while the first turn goes on")
                }
                input.write(pcm.subdata(in: start..<min(end, start + 3_200)))
                usleep(50_000)
            }
            try? input.close()
            process.waitUntilExit()
            let lines = printed.wait()
            #expect(process.terminationStatus == 0, "\(said.wait())")
            return lines.split(separator: "\n").compactMap {
                try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            }
        }
        let transcripts = try events(["--set", "pipeline.live_partial=1"], holding: true).filter {
            $0["type"] as? String == "transcript"
        }.compactMap {
            $0["data"] as? [String: Any]
        }
        let provisional = transcripts.filter { $0["provisional"] as? Bool == true }.compactMap { $0["id"] as? Int }
        // How many there are past the first depends on how fast the recognizer is here.
        #expect(provisional.count >= 1, "provisional transcripts while speech goes on: \(provisional.count)")
        for id in provisional {
            let at = try #require(transcripts.firstIndex { $0["id"] as? Int == id })
            #expect(
                transcripts[(at + 1)...].contains { ($0["replaces"] as? [Int] ?? []).contains(id) },
                "provisional segment \(id) is never replaced")
        }
        let json = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(dir)/out/live.json")))
                as? [String: Any])
        let segments = try #require(json["segments"] as? [[String: Any]])
        #expect(segments.count >= 5)
        #expect(!segments.contains { $0["provisional"] as? Bool == true || ($0["text"] as? String ?? "").isEmpty })
        #expect(!segments.contains { provisional.contains($0["id"] as? Int ?? -1) })

        let off = try events([], holding: false)
        #expect(
            !off.contains { ($0["data"] as? [String: Any])?["provisional"] as? Bool == true },
            "provisional transcripts without pipeline.live_partial (off by default)")
    }

    @Test func rawFormatsAreChecked() throws {
        for bad in ["s16le:16000", "u8:16000:1", "s16le:10:1", "s16le:16000:0"] {
            let run = try CLI.parley("process", "-", "--raw", bad)
            #expect(run.status != 0)
            #expect(run.errors.contains("--raw takes ENCODING:RATE:CHANNELS"), "\(run.errors)")
        }
        let misplaced = try CLI.parley("process", "meeting.wav", "--raw", "s16le:16000:1")
        #expect(misplaced.status != 0)
        #expect(misplaced.errors.contains("give - as the file"))
    }
}
