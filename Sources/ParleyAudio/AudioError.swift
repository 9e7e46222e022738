internal import CAudioFront

/// Every failure of the audio front, decoding, feature extraction or diarization.
///
/// Callers compare ``code``; ``message`` is one line for people and carries
/// libsndfile's or FFmpeg's own words where one of them failed.
public struct AudioError: Error, Hashable, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }
        public var description: String { name }

        /// The input cannot be opened, or is not audio libsndfile or FFmpeg reads.
        public static let open = Code("open")
        /// The header is unusable (no channels, an absurd sample rate), or the file has no
        /// audio stream (a video without sound) or no decoder for it.
        public static let format = Code("format")
        /// Decoding failed part way through.
        public static let read = Code("read")
        /// The data ends before the header says it should.
        public static let truncated = Code("truncated")
        /// The resampler failed.
        public static let resample = Code("resample")
        /// A parameter given by the caller is invalid.
        public static let invalidArgument = Code("invalidArgument")
        /// An allocation failed.
        public static let memory = Code("memory")
        /// The byte stream was abandoned by its writer or the task was cancelled.
        public static let aborted = Code("aborted")
        /// An operating-system I/O call failed.
        public static let io = Code("io")
        /// The input holds no bytes.
        public static let empty = Code("empty")
    }

    public let code: Code
    public let message: String
    /// The C library's own error number (sf_error, an FFmpeg AVERROR or errno), or 0.
    public let libraryCode: Int32

    public init(_ code: Code, _ message: String, libraryCode: Int32 = 0) {
        self.code = code
        self.message = message
        self.libraryCode = libraryCode
    }

    public var description: String { message }

    public static func invalidArgument(_ message: String) -> Self { .init(.invalidArgument, message) }
}

extension AudioError {
    /// Copies a C error out of the front straight away.
    init(_ error: pa_error) {
        var error = error
        let message = withUnsafeBytes(of: &error.message) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        let code: Code =
            switch pa_status(rawValue: UInt32(error.code)) {
            case PA_ERR_OPEN: .open
            case PA_ERR_FORMAT: .format
            case PA_ERR_READ: .read
            case PA_ERR_TRUNCATED: .truncated
            case PA_ERR_RESAMPLE: .resample
            case PA_ERR_CONFIG: .invalidArgument
            case PA_ERR_MEMORY: .memory
            case PA_ERR_ABORTED: .aborted
            case PA_ERR_EMPTY: .empty
            default: .io
            }
        self.init(code, message, libraryCode: error.library_code)
    }
}
