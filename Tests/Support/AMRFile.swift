import Foundation

/// AMR-NB recordings as phones make them (8 kHz mono, silences sent as comfort noise: DTX),
/// written by the `sox` command line through opencore-amr: Debian's ffmpeg command line has no
/// AMR encoder.
public enum AMRFile {
    public static func write(from source: String, to output: String) throws {
        try FFmpegCommandLine.runQuietly("sox", [source, "-r", "8000", "-c", "1", "-t", "amr-nb", output])
    }
}
