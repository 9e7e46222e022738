internal import CAudioFront

/// Writes mono float samples to a file; the extension picks the format
/// (.wav and .aiff 16-bit PCM, .flac, .ogg Vorbis).
public enum AudioFileWriter {
    public static func write(_ samples: [Float], sampleRate: Int, to path: String) throws(AudioError) {
        var error = pa_error()
        guard let writer = pa_writer_open(path, Int32(clamping: sampleRate), 0, &error) else {
            throw AudioError(error)
        }
        let status = samples.withUnsafeBufferPointer { pa_writer_write(writer, $0.baseAddress, $0.count, &error) }
        let writeError = error
        if pa_writer_close(writer, &error) != 0 { throw AudioError(error) }
        if status != 0 { throw AudioError(writeError) }
    }
}
