import Foundation
import MultipartKit
import NIOCore

/// Pulls the audio file out of a `multipart/form-data` body as it streams: the bytes of the
/// first part that carries a filename (or is named `audio` or `file`), nothing else.
struct MultipartAudioExtractor {
    private final class Parts {
        var headers: [String: String] = [:]
        /// nil until the current part's body starts; then whether it is the audio.
        var currentIsAudio: Bool?
        var found = false
        var finishedAudio = false
        var chunks: [[UInt8]] = []
    }

    private let parser: MultipartParser
    private let parts = Parts()
    private let headerGuard: HeaderNameGuard

    init(contentType: String) throws {
        guard let boundary = Self.boundary(in: contentType) else {
            throw APIError.badRequest("multipart/form-data without a boundary parameter")
        }
        parser = MultipartParser(boundary: boundary)
        headerGuard = HeaderNameGuard(boundary: boundary)
        let parts = self.parts
        parser.onHeader = { name, value in parts.headers[name.lowercased()] = value }
        parser.onBody = { buffer in
            if parts.currentIsAudio == nil {
                let disposition = parts.headers["content-disposition"]?.lowercased() ?? ""
                let isAudio =
                    !parts.finishedAudio
                    && (disposition.contains("filename=") || disposition.contains("name=\"audio\"")
                        || disposition.contains("name=\"file\""))
                parts.currentIsAudio = isAudio
                if isAudio { parts.found = true }
            }
            if parts.currentIsAudio == true { parts.chunks.append(Array(buffer.readableBytesView)) }
        }
        parser.onPartComplete = {
            if parts.currentIsAudio == true { parts.finishedAudio = true }
            if parts.currentIsAudio == nil {
                // A file part with an empty body still counts as found (and fails as empty audio).
                let disposition = parts.headers["content-disposition"]?.lowercased() ?? ""
                if !parts.finishedAudio && disposition.contains("filename=") {
                    parts.found = true
                    parts.finishedAudio = true
                }
            }
            parts.headers = [:]
            parts.currentIsAudio = nil
        }
    }

    /// Parses the next piece of the body; returns the audio bytes it held.
    func feed(_ buffer: ByteBuffer) throws -> [[UInt8]] {
        guard buffer.withUnsafeReadableBytes({ headerGuard.accepts($0) }) else {
            throw APIError.badRequest("malformed multipart/form-data body: a part header's name is not ASCII")
        }
        do {
            try parser.execute(buffer)
        } catch {
            throw APIError.badRequest("malformed multipart/form-data body")
        }
        let chunks = parts.chunks
        parts.chunks = []
        return chunks
    }

    func finish() throws {
        guard parts.found else {
            throw APIError.badRequest(
                "the multipart body has no audio part (a part with a filename, or named 'audio' or 'file')")
        }
    }

    static func boundary(in contentType: String) -> String? {
        for parameter in contentType.split(separator: ";").dropFirst() {
            let pair = parameter.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard pair.count == 2, pair[0].lowercased() == "boundary" else { continue }
            let value = pair[1].trimmingCharacters(in: CharacterSet(charactersIn: "\""))
            return value.isEmpty ? nil : value
        }
        return nil
    }
}

/// Finds a byte above 0x7F in a part header's name before MultipartParser reads it: the
/// parser (MultipartKit 4) looks such a byte up in a table of 128 entries and traps, which
/// would take the server down on one malformed upload. Follows the body byte by byte through
/// the delimiters (`CRLF--boundary`) and the header lines after each; the parts' contents are
/// skipped with memchr for the CR a delimiter starts with.
final class HeaderNameGuard {
    private enum State {
        /// In a part's content (or the preamble): `matched` bytes of the delimiter seen.
        case content(matched: Int)
        /// The rest of a delimiter's line (`--` after the last, or spaces).
        case delimiterLine(sawCR: Bool)
        /// A header line's name; `empty` until its first byte.
        case name(empty: Bool)
        case value(sawCR: Bool)
        /// The CR of the empty line that ends the headers.
        case headersEnd
    }

    private let delimiter: [UInt8]
    /// The body starts as if just after a CRLF: its first delimiter has none before it.
    private var state = State.content(matched: 2)

    init(boundary: String) { delimiter = Array("\r\n--\(boundary)".utf8) }

    /// False when `bytes` (the next piece of the body) put a byte above 0x7F in a header name.
    func accepts(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard let base = bytes.baseAddress else { return true }
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            switch state {
            case .content(let matched):
                if matched == 0 {
                    // Straight to the next CR, where a delimiter may start.
                    guard let found = memchr(base + index, 0x0D, bytes.count - index) else { return true }
                    index = base.distance(to: found) + 1
                    state = .content(matched: 1)
                    continue
                }
                if byte == delimiter[matched] {
                    state =
                        matched + 1 == delimiter.count ? .delimiterLine(sawCR: false) : .content(matched: matched + 1)
                } else {
                    // No CR inside a delimiter after its first byte: start again from this byte.
                    state = .content(matched: byte == 0x0D ? 1 : 0)
                }
            case .delimiterLine(let sawCR):
                if sawCR && byte == 0x0A {
                    state = .name(empty: true)
                } else {
                    state = .delimiterLine(sawCR: byte == 0x0D)
                }
            case .name(let empty):
                if byte == 0x0D && empty {
                    state = .headersEnd
                } else if byte == UInt8(ascii: ":") {
                    state = .value(sawCR: false)
                } else if byte > 0x7F {
                    return false
                } else {
                    state = .name(empty: false)
                }
            case .value(let sawCR):
                state = sawCR && byte == 0x0A ? .name(empty: true) : .value(sawCR: byte == 0x0D)
            case .headersEnd:
                state = .content(matched: byte == 0x0D ? 1 : 0)
            }
            index += 1
        }
        return true
    }
}
