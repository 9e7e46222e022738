import ArgumentParser
import Foundation
import Logging
import ParleyAudio
import ParleyPipeline

struct Batch: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Process every audio file in a folder, N at a time.",
        discussion: "Writes OUT/RELATIVE/NAME.FORMAT for each file. A rerun skips files whose JSON result is "
            + "complete (unless --force). A file that fails is reported and the batch goes on; the exit status "
            + "is 1 if any file failed. A summary table ends the run, and OUT/batch-report.json keeps it.")

    @Argument(help: "The folder of recordings.")
    var directory: String

    @Option(help: "Where to write the results.")
    var out: String

    @Option(help: "How many files to process at once.")
    var jobs = 1

    @Flag(help: "Include sub-folders.")
    var recursive = false

    @Flag(help: "Process files even when their results exist.")
    var force = false

    @Option(help: "Formats to write, comma-separated: json, srt, vtt, txt, md, rttm.")
    var format = "json,md,srt"

    @OptionGroup var flags: PipelineFlags

    static let audioExtensions: Set<String> = [
        "wav", "wave", "flac", "ogg", "oga", "opus", "mp3", "aif", "aiff", "aifc", "au", "snd", "caf", "w64", "rf64",
    ]

    func validate() throws {
        guard jobs >= 1 else { throw ValidationError("--jobs must be at least 1") }
        _ = try ExportFormat.list(format)
    }

    struct Entry: Codable, Sendable {
        var file: String
        var duration: Double?
        var speakers: Int?
        var words: Int?
        var seconds: Double?
        var transcriptionSeconds: Double?
        var status: String
        var error: String?
    }

    func run() async throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ValidationError("\(directory): not a folder")
        }
        let formats = try ExportFormat.list(format)
        var configuration = try flags.configuration()
        // Share the cores between the jobs unless told otherwise.
        if configuration["transcriber.whisper.threads"] == nil {
            let cores = ProcessInfo.processInfo.activeProcessorCount
            configuration.set("transcriber.whisper.threads", String(max(1, cores / jobs)))
        }
        let pipeline = try await PipelineFlags.pipeline(configuration)
        let files = try listFiles()
        guard !files.isEmpty else { throw ValidationError("\(directory): no audio files") }

        // Declared durations (headers only) give the progress bar its ETA.
        let durations = files.map { (try? AudioDecoder(path: $0.path, targetRate: 16_000))?.info.declaredDuration ?? 0 }
        let total = durations.reduce(0, +)
        let logger = makeLogger()
        let started = Date()
        var entries = [Entry?](repeating: nil, count: files.count)
        var done = 0.0
        var finished = 0
        var failed = 0
        var skipped = 0
        let terminal = stderrIsTerminal

        func progress(_ last: String) {
            let elapsed = Date().timeIntervalSince(started)
            let fraction = total > 0 ? done / total : Double(finished) / Double(files.count)
            let eta = fraction > 0 ? elapsed / fraction * (1 - fraction) : 0
            let line = String(
                format: "batch [%@] %d/%d files, %d failed, elapsed %@, ETA %@ (%@)", progressBar(fraction), finished,
                files.count, failed, Exporter.shortClock(elapsed), Exporter.shortClock(eta), last)
            if terminal {
                FileHandle.standardError.write(Data(("\r\u{1B}[K" + line).utf8))
            } else {
                printError(line)
            }
        }

        await withTaskGroup(of: (Int, Entry).self) { group in
            var next = 0
            func start() {
                guard next < files.count else { return }
                let index = next
                next += 1
                let file = files[index]
                let outDirectory = (out as NSString).appendingPathComponent(file.relativeDirectory)
                let force = self.force
                group.addTask { [logger, formats, pipeline] in
                    if !force, Self.isDone(directory: outDirectory, stem: file.stem) {
                        return (index, Entry(file: file.relative, status: "skipped"))
                    }
                    let log = MeetingEventLog(meetingID: "m_\(file.stem)", title: file.stem, keepHistory: false)
                    var meetingLogger = logger
                    meetingLogger[metadataKey: "meeting.id"] = "\(file.relative)"
                    let report = await pipeline.run(.file(file.path), sink: log, logger: meetingLogger)
                    var entry = Entry(
                        file: file.relative, duration: report.duration, speakers: report.speakers, words: report.words,
                        seconds: report.elapsed, transcriptionSeconds: report.transcriptionTime, status: "ok")
                    if let failure = report.failure {
                        entry.status = "failed"
                        entry.error = failure.description
                    } else {
                        do {
                            _ = try writeExports(log.state, formats: formats, directory: outDirectory, stem: file.stem)
                        } catch {
                            entry.status = "failed"
                            entry.error = "\(error)"
                        }
                    }
                    return (index, entry)
                }
            }
            for _ in 0..<jobs { start() }
            progress("starting")
            for await (index, entry) in group {
                entries[index] = entry
                finished += 1
                done += durations[index]
                if entry.status == "failed" {
                    failed += 1
                    if terminal { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
                    printError("\(entry.file): failed: \(entry.error ?? "")")
                }
                if entry.status == "skipped" { skipped += 1 }
                progress("\(entry.file) \(entry.status)")
                start()
            }
        }
        if terminal { FileHandle.standardError.write(Data("\n".utf8)) }

        let rows = entries.compactMap { $0 }
        printTable(rows)
        let elapsed = Date().timeIntervalSince(started)
        print(
            String(
                format: "%d %@: %d ok, %d skipped, %d failed in %.1f s", rows.count, rows.count == 1 ? "file" : "files",
                rows.count - failed - skipped, skipped, failed, elapsed))
        struct Report: Encodable {
            var elapsed: Double
            var jobs: Int
            var transcriber: String
            var files: [Entry]
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        try encoder.encode(
            Report(elapsed: elapsed, jobs: jobs, transcriber: configuration.transcriberName, files: rows)
        ).write(to: URL(fileURLWithPath: (out as NSString).appendingPathComponent("batch-report.json")))
        if failed > 0 { throw ExitCode(1) }
    }

    struct AudioFile: Sendable {
        var path: String
        var relative: String
        var relativeDirectory: String
        var stem: String
    }

    func listFiles() throws -> [AudioFile] {
        let root = URL(fileURLWithPath: directory).standardizedFileURL
        var paths: [String] = []
        if recursive {
            guard let walker = FileManager.default.enumerator(atPath: root.path) else {
                throw ValidationError("\(directory): cannot be read")
            }
            for case let relative as String in walker { paths.append(relative) }
        } else {
            paths = try FileManager.default.contentsOfDirectory(atPath: root.path)
        }
        return paths.filter { Self.audioExtensions.contains(($0 as NSString).pathExtension.lowercased()) }.sorted()
            .map { relative in
                AudioFile(
                    path: root.appendingPathComponent(relative).path, relative: relative,
                    relativeDirectory: (relative as NSString).deletingLastPathComponent,
                    stem: ((relative as NSString).lastPathComponent as NSString).deletingPathExtension)
            }
    }

    /// A result counts as done when its JSON says the meeting completed.
    static func isDone(directory: String, stem: String) -> Bool {
        let path = (directory as NSString).appendingPathComponent("\(stem).json")
        guard let data = FileManager.default.contents(atPath: path),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let status = object["status"] as? [String: Any]
        else { return false }
        return status["stage"] as? String == "completed"
    }

    func printTable(_ rows: [Entry]) {
        let header = ["file", "duration", "speakers", "words", "time", "status"]
        let body = rows.map { row in
            [
                row.file, row.duration.map { Exporter.shortClock($0) } ?? "-", row.speakers.map(String.init) ?? "-",
                row.words.map(String.init) ?? "-", row.seconds.map { String(format: "%.1f s", $0) } ?? "-",
                row.status,
            ]
        }
        let widths = header.indices.map { column in ([header] + body).map { $0[column].count }.max() ?? 0 }
        for line in [header] + body {
            print(
                line.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }
                    .joined(separator: "  "))
        }
    }
}
