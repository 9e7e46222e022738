import Foundation
import ParleyAudio
import ParleyTestSupport
import Synchronization
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
        let collected = Mutex(Data())
        let drain = Thread { collected.withLock { $0 = errors.fileHandleForReading.readDataToEndOfFile() } }
        drain.start()
        let out = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        while !drain.isFinished { usleep(1_000) }
        return (
            process.terminationStatus, String(decoding: out, as: UTF8.self),
            String(decoding: collected.withLock { $0 }, as: UTF8.self)
        )
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
        let printed = Mutex(Data())
        let reader = Thread {
            while true {
                let data = output.fileHandleForReading.availableData
                if data.isEmpty { return }
                printed.withLock { $0.append(data) }
            }
        }
        reader.start()
        let said = Mutex(Data())
        let drain = Thread { said.withLock { $0 = errors.fileHandleForReading.readDataToEndOfFile() } }
        drain.start()
        // Forty seconds of the meeting, the input left open.
        let sent = 40 * 16_000 * 2
        input.write(pcm.prefix(sent))
        let deadline = Date().addingTimeInterval(300)
        func transcribed() -> Bool {
            printed.withLock { String(decoding: $0, as: UTF8.self).contains(#""type":"transcript""#) }
        }
        while !transcribed() && Date() < deadline { usleep(50_000) }
        #expect(transcribed(), "no transcript while the input was still open")
        process.interrupt()
        process.waitUntilExit()
        while !reader.isFinished || !drain.isFinished { usleep(1_000) }
        try? input.close()
        let words = String(decoding: said.withLock { $0 }, as: UTF8.self)
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
        let (dir, pcm) = try Self.meeting()
        func events(_ extra: [String]) throws -> [[String: Any]] {
            let (process, input, output, errors) = try Self.start(
                [
                    "--raw", "s16le:16000:1", "--out", "\(dir)/out", "--transcriber", "pocketsphinx", "--diarizer",
                    "classic", "--events",
                ] + extra)
            // Thirty seconds at twice real time, in 100 ms pieces, as a recorder sends (much
            // faster, a provisional transcript is late before it is made, and is skipped).
            let writer = Thread {
                for start in stride(from: 0, to: 30 * 32_000, by: 3_200) {
                    input.write(pcm.subdata(in: start..<min(pcm.count, start + 3_200)))
                    usleep(50_000)
                }
                try? input.close()
            }
            writer.start()
            let (status, printed, said) = Self.finish(process, output, errors)
            #expect(status == 0, "\(said)")
            return printed.split(separator: "\n").compactMap {
                try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            }
        }
        let transcripts = try events(["--set", "pipeline.live_partial=1"]).filter {
            $0["type"] as? String == "transcript"
        }.compactMap {
            $0["data"] as? [String: Any]
        }
        let provisional = transcripts.filter { $0["provisional"] as? Bool == true }.compactMap { $0["id"] as? Int }
        // How many there are depends on how fast the recognizer is on this machine (one is made
        // only while it is idle); the first stretch of speech always gets one, since nothing is
        // queued before the first window closes.
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

        let off = try events([])
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
