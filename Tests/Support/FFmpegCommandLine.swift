import Foundation

/// The `ffmpeg` command line (Debian's `ffmpeg`, installed by `scripts/setup.sh --test`), which
/// the tests use to make recordings as phones, video calls and browsers make them.
public enum FFmpegCommandLine {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// Runs `ffmpeg ARGUMENTS` quietly (overwriting outputs, never reading standard input);
    /// throws with its words when it fails.
    public static func run(_ arguments: [String]) throws {
        try runQuietly("ffmpeg", ["-hide_banner", "-loglevel", "error", "-nostdin", "-y"] + arguments)
    }

    /// Runs a program found on the PATH, its output discarded; throws with what it said on
    /// standard error when it fails.
    static func runQuietly(_ program: String, _ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [program] + arguments
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let words = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            let said = String(decoding: words, as: UTF8.self)
            throw Failure(description: "\(program) \(arguments.joined(separator: " ")): \(said)")
        }
    }

    /// `source` converted to `output` with `encoding` (ffmpeg's output arguments). When they
    /// name a video codec, a black picture is added as the video stream, as long as the sound.
    public static func convert(_ source: String, to output: String, _ encoding: [String]) throws {
        var inputs = ["-i", source]
        if encoding.contains("-c:v") {
            inputs += ["-f", "lavfi", "-i", "color=c=black:s=64x64:r=5", "-map", "0:a", "-map", "1:v", "-shortest"]
        }
        try run(inputs + encoding + [output])
    }
}
