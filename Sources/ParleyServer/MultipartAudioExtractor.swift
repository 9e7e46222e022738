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

    init(contentType: String) throws {
        guard let boundary = Self.boundary(in: contentType) else {
            throw APIError.badRequest("multipart/form-data without a boundary parameter")
        }
        parser = MultipartParser(boundary: boundary)
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
