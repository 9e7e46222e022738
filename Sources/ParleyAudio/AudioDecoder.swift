internal import CAudioFront

/// What the decoder learned from a file's header.
public struct AudioSourceInfo: Sendable, Hashable, Codable {
    /// Frames at the source rate the header declares, if it declares them.
    public var frames: Int64?
    public var sourceRate: Int
    public var channels: Int
    /// The rate the decoder delivers, after resampling.
    public var targetRate: Int
    /// The container and encoding, in libsndfile's or FFmpeg's words.
    public var format: String
    public var declaredDuration: Double? { frames.map { Double($0) / Double(sourceRate) } }
}

/// The length of the band-limited sinc filter libswresample resamples with when rates differ
/// (16, 32 or 64 taps).
public enum ResamplerQuality: String, Sendable, CaseIterable, Codable {
    case best, medium, fastest

    var cValue: Int32 {
        switch self {
        case .best: Int32(PA_QUALITY_BEST)
        case .medium: Int32(PA_QUALITY_MEDIUM)
        case .fastest: Int32(PA_QUALITY_FASTEST)
        }
    }
}

/// Decodes any format the installed libsndfile reads, and through FFmpeg's libraries what it
/// does not (AAC/M4A, MP4/MOV/MKV/WebM, Opus in WebM, WMA, AMR, 3GP: the first audio stream),
/// into mono float samples at a target rate. One owner; closed exactly once, in `deinit`.
///
/// Reading from a ``ByteSpool`` blocks until bytes arrive: do it on a thread of
/// its own (``AudioAnalyzer`` does), never on the cooperative pool.
public final class AudioDecoder {
    private let handle: OpaquePointer
    /// Keeps a spool alive while the decoder reads it.
    private let spool: ByteSpool?
    /// Keeps the notice callback's context alive while the decoder may call it.
    private let notices: NoticeRelay?
    public let info: AudioSourceInfo

    /// Opens a file. `targetRate` 0 keeps the source rate.
    public init(
        path: String, targetRate: Int = 16_000, quality: ResamplerQuality = .fastest, allowTruncated: Bool = false
    ) throws(AudioError) {
        var error = pa_error()
        guard
            let handle = pa_decoder_open_path(
                path, Int32(clamping: targetRate), quality.cValue, allowTruncated ? 1 : 0, &error)
        else { throw AudioError(error) }
        self.handle = handle
        self.spool = nil
        self.notices = nil
        self.info = Self.readInfo(handle)
    }

    /// Opens bytes that are still arriving. Blocks until the header has arrived. `onNotice` is
    /// called (on this thread, at most once) when decoding has to wait for the end of the bytes:
    /// an MP4 whose index is at the end.
    public init(
        spool: ByteSpool, targetRate: Int = 16_000, quality: ResamplerQuality = .fastest, allowTruncated: Bool = false,
        onNotice: (@Sendable (String) -> Void)? = nil
    ) throws(AudioError) {
        var error = pa_error()
        let relay = onNotice.map(NoticeRelay.init)
        let context = relay.map { Unmanaged.passUnretained($0).toOpaque() }
        let notice: pa_notice_fn? =
            relay == nil
            ? nil
            : { context, message in
                guard let context, let message else { return }
                Unmanaged<NoticeRelay>.fromOpaque(context).takeUnretainedValue().handle(String(cString: message))
            }
        // The relay must outlive the call: the decoder may call it while opening.
        let opened = withExtendedLifetime(relay) {
            pa_decoder_open_spool_notify(
                spool.handle, Int32(clamping: targetRate), quality.cValue, allowTruncated ? 1 : 0, notice, context,
                &error)
        }
        guard let handle = opened
        else { throw AudioError(error) }
        self.handle = handle
        self.spool = spool
        self.notices = relay
        self.info = Self.readInfo(handle)
    }

    deinit { pa_decoder_free(handle) }

    private static func readInfo(_ handle: OpaquePointer) -> AudioSourceInfo {
        var raw = pa_source_info()
        pa_decoder_info(handle, &raw)
        let format = withUnsafeBytes(of: &raw.format_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        return AudioSourceInfo(
            frames: raw.frames >= 0 ? raw.frames : nil, sourceRate: Int(raw.source_rate), channels: Int(raw.channels),
            targetRate: Int(raw.target_rate), format: format)
    }

    /// Fills `buffer` from its start; returns how many samples were written, 0 at the end.
    public func read(into buffer: UnsafeMutableBufferPointer<Float>) throws(AudioError) -> Int {
        var error = pa_error()
        let n = pa_decoder_read(handle, buffer.baseAddress, buffer.count, &error)
        if n < 0 { throw AudioError(error) }
        return n
    }

    /// Decodes everything that is left. Only for short inputs: a long file
    /// should go through ``AudioAnalyzer``, which streams it.
    public func readAll() throws(AudioError) -> [Float] {
        var all: [Float] = []
        var block = [Float](repeating: 0, count: 16_384)
        while true {
            let n = try block.withUnsafeMutableBufferPointer { (buffer) throws(AudioError) -> Int in
                try read(into: buffer)
            }
            if n == 0 { return all }
            all.append(contentsOf: block[0..<n])
        }
    }
}

/// The Swift side of the C front's notice callback (`pa_notice_fn`).
private final class NoticeRelay {
    let handle: @Sendable (String) -> Void
    init(_ handle: @escaping @Sendable (String) -> Void) { self.handle = handle }
}
