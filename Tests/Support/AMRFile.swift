import Foundation

/// AMR-NB recordings as phones make them (8 kHz mono, silences sent as comfort noise: DTX),
/// written by the `sox` command line through opencore-amr: Debian's ffmpeg command line has no
/// AMR encoder.
public enum AMRFile {
    public static func write(from source: String, to output: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["sox", source, "-r", "8000", "-c", "1", "-t", "amr-nb", output]
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let words = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw FFmpegCommandLine.Failure(
                description: "sox \(source) -t amr-nb \(output): \(String(decoding: words, as: UTF8.self))")
        }
    }
}
