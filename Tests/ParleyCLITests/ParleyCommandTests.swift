import Foundation
import ParleyAudio
import ParleyTestSupport
import Synchronization
import Testing

/// Runs the real `parley` executable as a user would: the generator, the diarizer, bad inputs.
@Suite(.serialized) struct ParleyCommandTests {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    static var executable: URL {
        if let path = ProcessInfo.processInfo.environment["PARLEY_BIN"] { return URL(fileURLWithPath: path) }
        return packageRoot.appendingPathComponent(".build/debug/parley")
    }

    struct Run {
        var status: Int32
        var output: String
        var errors: String
    }

    static func parley(_ arguments: String..., environment: [String: String] = [:]) throws -> Run {
        try parley(arguments, environment: environment)
    }

    static func parley(_ arguments: [String], environment: [String: String] = [:]) throws -> Run {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        // Both pipes drain at once: a child that fills one while we wait on the other would hang.
        let output = PipeReader(out), errors = PipeReader(err)
        process.waitUntilExit()
        return Run(status: process.terminationStatus, output: output.wait(), errors: errors.wait())
    }

    static func scratch() throws -> String {
        try TestScratch.folder("cli")
    }

    /// The fraction of reference speech whose speaker the hypothesis names, under the best
    /// one-to-one mapping of labels (greedy on shared frames), on 10 ms frames; where several
    /// people speak at once, a frame counts when the hypothesis names one of them there. (The
    /// reported DER comes from pyannote.metrics in the benchmark; this is only the test's own
    /// sanity bound.)
    static func attributedFraction(reference: [SpeakerTurn], hypothesis: [SpeakerTurn]) -> Double {
        func speakers(_ turns: [SpeakerTurn]) -> [Int: Set<String>] {
            var frames: [Int: Set<String>] = [:]
            for t in turns {
                for f in Int(t.start * 100)..<Int(t.end * 100) { frames[f, default: []].insert(t.speaker) }
            }
            return frames
        }
        let ref = speakers(reference), hyp = speakers(hypothesis)
        var counts: [String: [String: Int]] = [:]
        for (f, rs) in ref {
            for r in rs { for h in hyp[f] ?? [] { counts[r, default: [:]][h, default: 0] += 1 } }
        }
        let pairs = counts.flatMap { r, hs in hs.map { (r, $0.key, $0.value) } }
            .sorted { $0.2 != $1.2 ? $0.2 > $1.2 : ($0.0, $0.1) < ($1.0, $1.1) }
        var mapped: [String: String] = [:]  // reference speaker -> hypothesis speaker
        var used = Set<String>()
        for (r, h, _) in pairs where mapped[r] == nil && !used.contains(h) {
            mapped[r] = h
            used.insert(h)
        }
        let named = ref.filter { f, rs in rs.contains { mapped[$0].map { hyp[f]?.contains($0) ?? false } ?? false } }
        return Double(named.count) / Double(max(1, ref.count))
    }

    @Test func generateAndDiarizeAMeeting() throws {
        let dir = try Self.scratch()
        let made = try Self.parley("make-meeting", dir, "--format", "flac", "--seed", "7")
        #expect(made.status == 0, "\(made.errors)")
        for file in ["meeting.flac", "reference.rttm", "reference.json", "reference.txt"] {
            #expect(FileManager.default.fileExists(atPath: dir + "/" + file), "\(file) written")
        }
        let reference = try RTTM.parse(String(contentsOfFile: dir + "/reference.rttm", encoding: .utf8))
        #expect(reference.count == 12)
        #expect(Set(reference.map(\.speaker)).count == 3)

        let run = try Self.parley(
            "diarize", dir + "/meeting.flac", "--speakers", "3", "--rttm", dir + "/hyp.rttm", "--json", "--diarizer",
            "classic")
        #expect(run.status == 0, "\(run.errors)")
        let json = try JSONSerialization.jsonObject(with: Data(run.output.utf8)) as? [String: Any]
        #expect((json?["speakers"] as? [String])?.count == 3)
        let hypothesis = try RTTM.parse(String(contentsOfFile: dir + "/hyp.rttm", encoding: .utf8))
        let fraction = Self.attributedFraction(reference: reference, hypothesis: hypothesis)
        #expect(fraction > 0.9, "attributed \(fraction) of the speech to the right speaker")

        // The automatic count finds the three voices too (two of them 1.6 semitones apart).
        let auto = try Self.parley(
            "diarize", dir + "/meeting.flac", "--rttm", dir + "/auto.rttm", "--diarizer", "classic")
        #expect(auto.status == 0)
        let counted = try RTTM.parse(String(contentsOfFile: dir + "/auto.rttm", encoding: .utf8))
        #expect(Set(counted.map(\.speaker)).count == 3)
        #expect(Self.attributedFraction(reference: reference, hypothesis: counted) > 0.9)
    }

    @Test func diarizeTableAndRTTMOnStandardOutput() throws {
        let dir = try Self.scratch()
        #expect(try Self.parley("make-meeting", dir, "--seed", "3").status == 0)
        let table = try Self.parley("diarize", dir + "/meeting.wav")
        #expect(table.status == 0)
        let lines = table.output.split(separator: "\n")
        #expect(lines.first?.contains("speakers") == true)
        #expect(lines.dropFirst().allSatisfy { $0.split(separator: "\t").count == 3 })
        let rttm = try Self.parley("diarize", dir + "/meeting.wav", "--rttm", "-")
        #expect(try RTTM.parse(rttm.output).count == lines.count - 1)
    }

    /// FFTW's measured plans are kept in a file between runs (`PARLEY_FFTW_WISDOM`, its folder
    /// made if missing): written when a run had to measure, left alone when it had not, and
    /// written anew over a damaged file; what comes out is the same each time.
    @Test func fftwPlansAreKeptBetweenRunsAndADamagedFileIsReplaced() throws {
        let dir = try Self.scratch()
        #expect(try Self.parley("make-meeting", dir, "--seed", "3").status == 0)
        let wisdom = "\(dir)/cache/parley/fftw-wisdom"
        func diarize() throws -> String {
            let run = try Self.parley(
                "diarize", dir + "/meeting.wav", "--diarizer", "classic", "--rttm", "-",
                environment: ["PARLEY_FFTW_WISDOM": wisdom])
            #expect(run.status == 0, "\(run.errors)")
            return run.output
        }
        func written() throws -> (text: String, file: Int?) {
            let attributes = try FileManager.default.attributesOfItem(atPath: wisdom)
            return (
                try String(contentsOfFile: wisdom, encoding: .utf8),
                (attributes[.systemFileNumber] as? NSNumber)?.intValue
            )
        }
        let first = try diarize()
        #expect(try RTTM.parse(first).count >= 5)
        let saved = try written()
        #expect(saved.text.hasPrefix("(fftw-3"), "\(saved.text.prefix(80))")
        // Read, with nothing new measured: not written again.
        #expect(try diarize() == first)
        #expect(try written().file == saved.file, "the wisdom file was replaced though nothing was measured")
        try Data("(not fftw wisdom".utf8).write(to: URL(fileURLWithPath: wisdom))
        #expect(try diarize() == first)
        #expect(try written().text.hasPrefix("(fftw-3"), "the damaged wisdom file was not written anew")
        // A file that cannot be written (its folder is a file) only costs the measuring.
        let blocked = try Self.parley(
            "diarize", dir + "/meeting.wav", "--diarizer", "classic", "--rttm", "-",
            environment: ["PARLEY_FFTW_WISDOM": "\(dir)/meeting.wav/fftw-wisdom"])
        #expect(blocked.status == 0, "\(blocked.errors)")
        #expect(blocked.output == first)
    }

    @Test func silenceHasZeroSpeakers() throws {
        let path = try Self.scratch() + "/quiet.wav"
        try AudioFileWriter.write([Float](repeating: 0, count: 48_000), sampleRate: 16_000, to: path)
        let run = try Self.parley("diarize", path, "--json")
        #expect(run.status == 0)
        #expect(run.output.contains("\"speakers\" : [\n\n  ]") || run.output.contains("\"speakers\" : []"))
    }

    /// An output path that is not a regular file (`/dev/null`, a FIFO) is written into, never
    /// replaced: an atomic write renames a temporary file over its target, which as root turned
    /// `/dev/null` into a regular file.
    @Test func anOutputThatIsNoRegularFileIsWrittenIntoNotReplaced() throws {
        let dir = try Self.scratch()
        #expect(try Self.parley("make-meeting", dir, "--seed", "3").status == 0)
        let fifo = dir + "/turns.fifo"
        #expect(mkfifo(fifo, 0o600) == 0)
        // The read end is held open (without blocking) so that the writer's open succeeds; what
        // it writes (a few hundred bytes) waits in the pipe's buffer.
        let reader = open(fifo, O_RDONLY | O_NONBLOCK)
        #expect(reader >= 0)
        defer { close(reader) }
        let run = try Self.parley("diarize", dir + "/meeting.wav", "--diarizer", "classic", "--rttm", fifo)
        #expect(run.status == 0, "\(run.errors)")
        var buffer = [UInt8](repeating: 0, count: 65_536)
        let count = read(reader, &buffer, buffer.count)
        #expect(String(decoding: buffer.prefix(max(0, count)), as: UTF8.self).hasPrefix("SPEAKER meeting 1 "))
        var status = stat()
        #expect(stat(fifo, &status) == 0 && (status.st_mode & S_IFMT) == S_IFIFO, "still a FIFO")
    }

    static func badInputs() throws -> [(String, String)] {
        let dir = try scratch()
        let text = dir + "/notes.wav"
        try "not audio".write(toFile: text, atomically: true, encoding: .utf8)
        let empty = dir + "/empty.wav"
        _ = FileManager.default.createFile(atPath: empty, contents: Data())
        let tone = dir + "/tone.wav"
        try AudioFileWriter.write([Float](repeating: 0.1, count: 32_000), sampleRate: 16_000, to: tone)
        let data = try Data(contentsOf: URL(fileURLWithPath: tone))
        let cut = dir + "/cut.wav"
        try data.prefix(20_000).write(to: URL(fileURLWithPath: cut))
        return [
            (text, "not audio"), (empty, "empty"), (cut, "truncated"), (dir, "directory"),
            (dir + "/missing.wav", "No such file"),
        ]
    }

    @Test func badInputsExitNonZeroWithOneLine() throws {
        for (path, words) in try Self.badInputs() {
            let run = try Self.parley("diarize", path)
            #expect(run.status != 0, "\(path)")
            let lines = run.errors.split(separator: "\n")
            #expect(lines.count == 1, "one line for \(path): \(run.errors)")
            #expect(run.errors.contains(words), "\(run.errors)")
        }
    }

    @Test func badOptionsAreRejected() throws {
        let run = try Self.parley("diarize", "x.wav", "--min-speakers", "5", "--max-speakers", "2")
        #expect(run.status != 0)
        #expect(run.errors.contains("--max-speakers"))
    }
}

/// Reads a pipe to its end on a thread of its own, keeping what has come so far.
final class PipeReader: Sendable {
    private let collected = Mutex(Data())
    private let ended = Mutex(false)

    init(_ pipe: Pipe) {
        let handle = pipe.fileHandleForReading
        Thread { [self] in
            while true {
                let data = handle.availableData
                if data.isEmpty { break }
                collected.withLock { $0.append(data) }
            }
            ended.withLock { $0 = true }
        }.start()
    }

    var text: String { String(decoding: collected.withLock { $0 }, as: UTF8.self) }

    /// Waits for the end of the pipe; returns all that came.
    func wait() -> String {
        while !ended.withLock({ $0 }) { usleep(1_000) }
        return text
    }
}
