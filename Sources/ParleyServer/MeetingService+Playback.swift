import Foundation
import Hummingbird
import Logging
import Metrics
import NIOCore
import ParleyEvents
import ParleyHub
import ParleyJobs
import ParleyPipeline
import ParleyStore
import Synchronization

/// Playback: the uploaded recording, whole or by byte range.
extension MeetingService {
    /// The uploaded recording, whole or the byte range asked for (`Range: bytes=a-b`), so a
    /// browser's audio element can seek in it.
    func audio(of meeting: MeetingRecord, request: Request, context: ParleyRequestContext) async throws -> Response {
        guard meeting.status != .created, let path = meeting.audioPath,
            let attributes = try? FileManager.default.attributesOfItem(atPath: path),
            let size = (attributes[.size] as? NSNumber)?.intValue, size > 0
        else { throw APIError.notFound("this meeting has no recording yet") }
        var headers: HTTPFields = [.contentType: Self.audioType(path), .acceptRanges: "bytes"]
        let fileIO = FileIO()
        guard let header = request.headers[.range] else {
            headers[.contentLength] = "\(size)"
            return Response(
                status: .ok, headers: headers, body: try await fileIO.loadFile(path: path, context: context))
        }
        guard let range = Self.byteRange(header, size: size) else {
            headers[.contentRange] = "bytes */\(size)"
            return Response(status: .rangeNotSatisfiable, headers: headers)
        }
        headers[.contentRange] = "bytes \(range.lowerBound)-\(range.upperBound)/\(size)"
        headers[.contentLength] = "\(range.count)"
        return Response(
            status: .partialContent, headers: headers,
            body: try await fileIO.loadFile(path: path, range: range, context: context))
    }

    /// One range of `bytes=a-b`, `bytes=a-` or `bytes=-n`, within the file; nil when unsatisfiable.
    static func byteRange(_ header: String, size: Int) -> ClosedRange<Int>? {
        guard header.hasPrefix("bytes="), !header.contains(",") else { return nil }
        let parts = header.dropFirst(6).split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2 else { return nil }
        let first = Int(parts[0].trimmingCharacters(in: .whitespaces))
        let last = Int(parts[1].trimmingCharacters(in: .whitespaces))
        switch (first, last) {
        case (let start?, let end?) where start <= end && start < size: return start...min(end, size - 1)
        case (let start?, nil) where start < size && parts[1].isEmpty: return start...(size - 1)
        case (nil, let suffix?) where parts[0].isEmpty && suffix > 0: return max(0, size - suffix)...(size - 1)
        default: return nil
        }
    }

    /// The recording's media type from its first bytes (uploads are kept as they came).
    static func audioType(_ path: String) -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else { return "application/octet-stream" }
        defer { try? handle.close() }
        return audioType(head: [UInt8](handle.readData(ofLength: 64)))
    }

    static func audioType(head: [UInt8]) -> String {
        func starts(_ text: String) -> Bool { head.starts(with: Array(text.utf8)) }
        func contains(_ text: String) -> Bool {
            let needle = Array(text.utf8)
            return head.count >= needle.count
                && (0...(head.count - needle.count)).contains { head[$0..<($0 + needle.count)].elementsEqual(needle) }
        }
        if starts("RIFF") { return "audio/wav" }
        if starts("fLaC") { return "audio/flac" }
        if starts("OggS") { return "audio/ogg" }
        if starts("#!AMR") { return "audio/amr" }
        if starts("ID3") || (head.count > 1 && head[0] == 0xFF && head[1] & 0xE0 == 0xE0) { return "audio/mpeg" }
        if head.count >= 12, head[4...7].elementsEqual(Array("ftyp".utf8)) {
            if head[8...10].elementsEqual(Array("3gp".utf8)) { return "audio/3gpp" }
            if head[8...11].elementsEqual(Array("qt  ".utf8)) { return "video/quicktime" }
            return "audio/mp4"
        }
        // EBML: Matroska, or WebM when its doc type says so.
        if head.starts(with: [0x1A, 0x45, 0xDF, 0xA3]) { return contains("webm") ? "audio/webm" : "video/x-matroska" }
        // ASF (WMA, WMV).
        if head.starts(with: [0x30, 0x26, 0xB2, 0x75, 0x8E, 0x66, 0xCF, 0x11]) { return "audio/x-ms-wma" }
        return "application/octet-stream"
    }
}
