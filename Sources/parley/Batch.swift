import ArgumentParser
import Foundation
import Logging
import ParleyAudio
import ParleyEvents
import ParleyJobs
import ParleyPipeline

struct Batch: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Process every audio file in a folder, N at a time.",
        discussion: "Writes OUT/RELATIVE/NAME.FORMAT for each file. A rerun skips files whose JSON result is "
            + "complete (unless --force). A file that fails is reported and the batch goes on; the exit status "
            + "is 1 if any file failed. A summary table ends the run, and OUT/batch-report.json keeps it. "
            + "With --database, the files become meetings of --owner in the shared job queue, and every "
            + "`parley worker` (and this process, --jobs at a time; 0: none) takes a share; --data-dir must be "
            + "the folder the workers share.")

    @Argument(help: "The folder of recordings.")
    var directory: String

    @Option(help: "Where to write the results.")
    var out: String

    @Option(help: "How many files to process at once (here; with --database, 0 leaves them all to workers).")
    var jobs = 1

    @Option(help: "Spread the files over workers: the postgres:// URL they share.")
    var database: String?

    @Option(help: "With --database: the account that owns the meetings (it sees them in the web app).")
    var owner: String?

    @Option(help: "With --database: the data folder the workers share (default ./data).")
    var dataDir: String?

    @Flag(help: "Include sub-folders.")
    var recursive = false

    @Flag(help: "Process files even when their results exist.")
    var force = false

    @Option(help: "Formats to write, comma-separated: json, srt, vtt, txt, md, rttm.")
    var format = "json,md,srt"

    @OptionGroup var flags: PipelineFlags

    /// What libsndfile reads, then what FFmpeg's libraries read (audio, and video for its sound).
    static let audioExtensions: Set<String> = [
        "wav", "wave", "flac", "ogg", "oga", "opus", "mp3", "aif", "aiff", "aifc", "au", "snd", "caf", "w64", "rf64",
        "m4a", "aac", "mp4", "m4v", "mov", "3gp", "3g2", "mkv", "mka", "webm", "wma", "wmv", "asf", "amr", "awb",
    ]

    func validate() throws {
        guard jobs >= (database == nil ? 1 : 0) else {
            throw ValidationError("--jobs must be at least \(database == nil ? 1 : 0)")
        }
        if database != nil && owner == nil { throw ValidationError("--database needs --owner (an existing account)") }
        if database == nil && (owner != nil || dataDir != nil) {
            throw ValidationError("--owner and --data-dir go with --database")
        }
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
            configuration.set("transcriber.whisper.threads", String(max(1, cores / max(jobs, 1))))
        }
        let files = try listFiles()
        guard !files.isEmpty else { throw ValidationError("\(directory): no audio files") }
        if database != nil {
            try await runQueued(files, formats: formats, configuration: configuration)
            return
        }
        let pipeline = try await PipelineFlags.pipeline(configuration)

        // Declared durations (headers only) give the progress bar its ETA.
        let durations = files.map { (try? AudioDecoder(path: $0.path, targetRate: 16_000))?.info.declaredDuration ?? 0 }
        let total = durations.reduce(0, +)
        let logger = makeLogger()
        let started = Date()
        var entries = [Entry?](repeating: nil, count: files.count)
        var done = 0.0
        var finished = 0
        var failed = 0
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
                progress("\(entry.file) \(entry.status)")
                start()
            }
        }
        if terminal { FileHandle.standardError.write(Data("\n".utf8)) }
        try report(entries.compactMap { $0 }, started: started, transcriber: configuration.transcriberName)
    }

    /// The summary table, the totals line and OUT/batch-report.json; exit status 1 if a file failed.
    func report(_ rows: [Entry], started: Date, transcriber: String) throws {
        let failed = rows.filter { $0.status == "failed" }.count
        let skipped = rows.filter { $0.status == "skipped" }.count
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
            Report(elapsed: elapsed, jobs: jobs, transcriber: transcriber, files: rows)
        ).write(to: URL(fileURLWithPath: (out as NSString).appendingPathComponent("batch-report.json")))
        if failed > 0 { throw ExitCode(1) }
    }

    /// `--database`: queues every file (but those already done), works on its share here, waits
    /// for each meeting and writes its results as the local batch does.
    func runQueued(_ files: [AudioFile], formats: [ExportFormat], configuration: ParleyConfiguration) async throws {
        var configuration = configuration
        configuration.set("server.database", database ?? "")
        if let dataDir { configuration.set("server.data_dir", dataDir) }
        configuration.set("server.jobs", String(max(jobs, 1)))
        let settings = try EngineSettings.parse(configuration)
        var queueSettings = settings
        if jobs == 0 { queueSettings.jobs = 0 }
        let frozen = configuration
        let batch: QueuedBatch
        do {
            batch = try await QueuedBatch.open(
                settings: queueSettings, owner: owner ?? "", logger: makeLogger(),
                makePipeline: { try await PipelineFlags.pipeline(frozen, request: $0) })
        } catch let error as SettingsError {
            throw ValidationError(error.message)
        }
        let started = Date()
        let entries: [Entry]
        do {
            // This process's share of the work runs beside the waiting, and ends with it.
            entries = try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await batch.work() }
                let entries = try await collect(files, from: batch, formats: formats)
                group.cancelAll()
                return entries
            }
        } catch {
            try? await batch.close()
            throw error
        }
        try await batch.close()
        try report(entries, started: started, transcriber: configuration.transcriberName)
    }

    /// Queues every file (but those already done), waits for each meeting and writes its results.
    func collect(_ files: [AudioFile], from batch: QueuedBatch, formats: [ExportFormat]) async throws -> [Entry] {
        var entries: [Entry?] = Array(repeating: nil, count: files.count)
        var waiting: [(index: Int, meeting: String, queued: Date)] = []
        for (index, file) in files.enumerated() {
            let outDirectory = (out as NSString).appendingPathComponent(file.relativeDirectory)
            if !force, Self.isDone(directory: outDirectory, stem: file.stem) {
                entries[index] = Entry(file: file.relative, status: "skipped")
                continue
            }
            waiting.append((index, try await batch.submit(path: file.path, title: file.stem), Date()))
        }
        printError("batch: \(waiting.count) queued, \(files.count - waiting.count) skipped; waiting for the workers")
        let total = waiting.count
        var finished = 0
        while !waiting.isEmpty {
            try await Task.sleep(for: .milliseconds(500))
            var still: [(index: Int, meeting: String, queued: Date)] = []
            for item in waiting {
                guard let state = try await batch.outcome(of: item.meeting) else {
                    still.append(item)
                    continue
                }
                let file = files[item.index]
                var entry = Entry(
                    file: file.relative, duration: state.duration, speakers: state.speakers.count,
                    words: state.wordCount, seconds: Date().timeIntervalSince(item.queued), status: "ok")
                if let error = state.error {
                    entry.status = "failed"
                    entry.error = error.description
                    printError("\(file.relative): failed: \(error.description)")
                } else {
                    let outDirectory = (out as NSString).appendingPathComponent(file.relativeDirectory)
                    do {
                        _ = try writeExports(state, formats: formats, directory: outDirectory, stem: file.stem)
                    } catch {
                        entry.status = "failed"
                        entry.error = "\(error)"
                    }
                }
                entries[item.index] = entry
                finished += 1
                printError("batch: \(finished)/\(total) done (\(file.relative) \(entry.status))")
            }
            waiting = still
        }
        return entries.compactMap { $0 }
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
