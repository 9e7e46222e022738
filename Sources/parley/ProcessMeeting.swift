import ArgumentParser
import Foundation
import Logging
import ParleyAudio
import ParleyEvents
import ParleyPipeline

struct ProcessMeeting: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "process",
        abstract: "Transcribe, attribute and summarize one recording.",
        discussion: "Runs the whole pipeline (diarization, transcription, alignment, summarization), shows the "
            + "stages live, and writes the results as OUT/NAME.FORMAT. The exit status is 0 only if every stage "
            + "completed. With - it records a meeting from standard input (any container FFmpeg can read from a "
            + "pipe, or raw PCM with --raw), prints the transcript as it is produced, keeps the recording in OUT, "
            + "and finishes the meeting when the input ends or on Ctrl-C.")

    @Argument(help: "An audio or video file (WAV, FLAC, MP3, M4A, MP4, WebM, ...), or - for standard input.")
    var file: String

    @Option(
        help: ArgumentHelp(
            "Standard input is raw PCM: ENCODING:RATE:CHANNELS, ENCODING s16le, s32le or f32le "
                + "(e.g. arecord -f S16_LE -r 16000 -c 1 -t raw | parley process - --raw s16le:16000:1).",
            valueName: "format"))
    var raw: String?

    @OptionGroup var flags: PipelineFlags

    @Option(help: "Formats to write, comma-separated: json, srt, vtt, txt, md, rttm.")
    var format = "json,md,srt"

    @Option(help: "The directory to write into (created if missing).")
    var out = "."

    @Option(help: "The meeting's title in the minutes (default: the file name).")
    var title: String?

    @Flag(help: "Print every event as a line of JSON on standard output, as the WebSocket hub sends them.")
    var events = false

    @Flag(name: .shortAndLong, help: "Show transcript segments as they are produced.")
    var verbose = false

    @Option(
        help: ArgumentHelp(
            "Read the file as an upload arriving at this many MB/s, as the server receives one (for trying streaming).",
            valueName: "MB/s"))
    var pace: Double?

    var live: Bool { file == "-" }

    func validate() throws {
        _ = try ExportFormat.list(format)
        if let pace, !(pace > 0) { throw ValidationError("--pace must be a positive number of MB/s") }
        if let raw {
            guard live else { throw ValidationError("--raw describes standard input: give - as the file") }
            _ = try PCMFormat(parsing: raw)
        }
        if live && pace != nil { throw ValidationError("--pace reads a file; standard input comes at its own pace") }
    }

    func run() async throws {
        let formats = try ExportFormat.list(format)
        guard live || FileManager.default.isReadableFile(atPath: file) else {
            throw ValidationError("\(file): no such readable file")
        }
        let rawFormat = try raw.map(PCMFormat.init(parsing:))
        let pipeline = try await PipelineFlags.pipeline(try flags.configuration())
        let stem = live ? (title ?? "live") : ((file as NSString).lastPathComponent as NSString).deletingPathExtension
        // Standard input: the recording is kept beside the minutes, as it came; raw PCM is spooled
        // behind a streaming AU header and saved as WAV at the end.
        let recording =
            live ? (out as NSString).appendingPathComponent(stem + (rawFormat == nil ? ".recording" : ".au")) : nil
        if live {
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        }
        let log = MeetingEventLog(meetingID: "m_\(stem)", title: title ?? stem, keepHistory: false)
        var meetingLogger = makeLogger()
        meetingLogger[metadataKey: "meeting.id"] = "\(log.meetingID)"
        let logger = meetingLogger
        let file = self.file
        let stream = log.events()
        let showEvents = events
        let showTranscript = verbose || live
        let report = await withTaskGroup(of: MeetingReport?.self) { group in
            group.addTask {
                var display = ProgressDisplay(label: stem, showTranscript: showTranscript)
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
                for await event in stream {
                    display.show(event)
                    if showEvents, let line = try? encoder.encode(event) {
                        FileHandle.standardOutput.write(line + Data("\n".utf8))
                    }
                }
                display.finish()
                return nil
            }
            let source: AudioSource
            if live {
                source = .live(standardInputChunks(header: rawFormat?.streamingHeader ?? []), spoolPath: recording)
            } else if let pace {
                let length = (try? FileManager.default.attributesOfItem(atPath: file)[.size] as? NSNumber)?.int64Value
                source = .upload(
                    pacedChunks(of: file, megabytesPerSecond: pace), expectedLength: length, spoolPath: nil)
            } else {
                source = .file(file)
            }
            group.addTask { await pipeline.run(source, sink: log, logger: logger) }
            var report: MeetingReport?
            for await result in group { if let result { report = result } }
            return report!
        }
        var kept = recording
        if let recording, let rawFormat, FileManager.default.fileExists(atPath: recording) {
            let wav = (recording as NSString).deletingPathExtension + ".wav"
            try rawFormat.saveAsWAV(stream: recording, path: wav)
            kept = wav
        }
        if let failure = report.failure {
            throw CLIFailure(failure.description)
        }
        var written = try writeExports(log.state, formats: formats, directory: out, stem: stem)
        if let kept { written.append((kept as NSString).lastPathComponent) }
        let line = String(
            format: "%@: %.1f s of audio in %.1f s (%.0fx real time), %d speakers, %d words; wrote %@", stem,
            report.duration, report.elapsed, report.duration / max(report.elapsed, 0.001), report.speakers,
            report.words, written.joined(separator: ", "))
        if showEvents { printError(line) } else { print(line) }
    }
}

/// A file's bytes in 64 KiB chunks, no faster than `megabytesPerSecond`: an upload, simulated.
func pacedChunks(of path: String, megabytesPerSecond: Double) -> AsyncThrowingStream<[UInt8], any Error> {
    let handle = FileHandle(forReadingAtPath: path)
    let chunk = 65_536
    let interval = Double(chunk) / (megabytesPerSecond * 1_000_000)
    return AsyncThrowingStream {
        guard let handle else { throw CLIFailure("\(path): cannot be read") }
        guard let data = try handle.read(upToCount: chunk), !data.isEmpty else {
            try? handle.close()
            return nil
        }
        try await Task.sleep(for: .seconds(interval))
        return [UInt8](data)
    }
}

/// A failure the CLI reports as one line on standard error, exiting 1.
struct CLIFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
