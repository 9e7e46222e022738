internal import CAudioFront

/// Bytes of an audio file that arrive in chunks (an upload), kept in a file so
/// memory stays bounded, and decodable while they are still arriving.
///
/// One writer appends; one ``AudioDecoder`` may read at the same time on another
/// thread. The C spool synchronises the two, which is why this is `Sendable`.
public final class ByteSpool: @unchecked Sendable {
    let handle: OpaquePointer

    /// - Parameters:
    ///   - path: where to keep the bytes (kept afterwards), or `nil` for an anonymous temporary file.
    ///   - expectedLength: the total size if known in advance (e.g. a Content-Length).
    public init(path: String? = nil, expectedLength: Int64? = nil) throws(AudioError) {
        var error = pa_error()
        guard let handle = pa_spool_new(path, expectedLength ?? -1, &error) else { throw AudioError(error) }
        self.handle = handle
    }

    deinit { pa_spool_free(handle) }

    public func append(_ bytes: some Collection<UInt8>) throws(AudioError) {
        var error = pa_error()
        let status =
            bytes.withContiguousStorageIfAvailable { buffer in
                pa_spool_append(handle, buffer.baseAddress, buffer.count, &error)
            } ?? Array(bytes).withUnsafeBytes { pa_spool_append(handle, $0.baseAddress, $0.count, &error) }
        if status != 0 { throw AudioError(error) }
    }

    /// No more bytes will come.
    public func finish() { pa_spool_finish(handle) }

    /// The stream is abandoned: a decoder reading it fails with ``AudioError/Code/aborted``.
    public func abort() { pa_spool_abort(handle) }

    /// Bytes appended so far.
    public var length: Int64 { pa_spool_length(handle) }
}
