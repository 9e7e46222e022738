import Dispatch
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A plain TCP client for what a WebSocket library will not do: read the HTTP status of a
/// refused upgrade, complete a handshake and then never answer pings, or never read.
final class RawSocket: @unchecked Sendable {
    private let fd: Int32

    init(port: Int, receiveBuffer: Int32? = nil) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EIO) }
        if var size = receiveBuffer {
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard result == 0 else {
            close(fd)
            throw POSIXError(.ECONNREFUSED)
        }
        var timeout = timeval(tv_sec: 20, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd) }

    /// A socket upgraded to the meeting's WebSocket with `token`; the test fails if the server
    /// refuses the upgrade.
    static func watching(
        _ meeting: String, token: String, port: Int, receiveBuffer: Int32? = nil,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws -> RawSocket {
        let socket = try RawSocket(port: port, receiveBuffer: receiveBuffer)
        socket.upgrade("/ws/meeting/\(meeting)?token=\(token)")
        #expect(await socket.readUpgradeHead().status == 101, sourceLocation: sourceLocation)
        return socket
    }

    /// Blocking reads run on a dispatch thread, never on the cooperative pool the server in this
    /// process runs on.
    private func offload<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(returning: body()) }
        }
    }

    func readHead() async -> (status: Int, text: String) { await offload { self.readHeadBlocking() } }
    func readUpgradeHead() async -> (status: Int, head: String) { await offload { self.readUpgradeHeadBlocking() } }
    func readUntilClose(limit: Double) async -> (code: Int?, texts: Int, seconds: Double) {
        await offload { self.readUntilCloseBlocking(limit: limit) }
    }

    /// Reads `count` frames after the handshake's head: each frame's first byte (FIN, RSV1-3,
    /// opcode) and payload. Fewer if the socket goes quiet.
    func readFrames(_ count: Int) async -> [(first: UInt8, payload: [UInt8])] {
        await offload { self.readFramesBlocking(count) }
    }

    private func readFramesBlocking(_ count: Int) -> [(first: UInt8, payload: [UInt8])] {
        var data: [UInt8] = []
        var frames: [(first: UInt8, payload: [UInt8])] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while frames.count < count {
            if data.count >= 2 {
                var length = Int(data[1] & 0x7f)
                var header = 2
                if length == 126, data.count >= 4 {
                    length = Int(data[2]) << 8 | Int(data[3])
                    header = 4
                } else if length == 127, data.count >= 10 {
                    length = (2..<10).reduce(0) { $0 << 8 | Int(data[$1]) }
                    header = 10
                }
                if length < 126 || header > 2, data.count >= header + length {
                    frames.append((data[0], Array(data[header..<header + length])))
                    data.removeFirst(header + length)
                    continue
                }
            }
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { break }
            data += buffer[0..<n]
        }
        return frames
    }

    func send(_ text: String) {
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    /// Sends one masked text frame, as a client must.
    func sendText(_ text: String) {
        sendFrame(first: 0x81, payload: Array(text.utf8))
    }

    /// Sends one masked frame with `first` as its first byte (FIN, RSV1-3, opcode).
    func sendFrame(first: UInt8, payload: [UInt8]) {
        var frame: [UInt8] = [first]
        if payload.count < 126 {
            frame.append(0x80 | UInt8(payload.count))
        } else if payload.count < 65536 {
            frame += [0x80 | 126, UInt8(payload.count >> 8), UInt8(payload.count & 0xff)]
        } else {
            frame.append(0x80 | 127)
            frame += (0..<8).reversed().map { UInt8((payload.count >> ($0 * 8)) & 0xff) }
        }
        let mask: [UInt8] = [0x12, 0x34, 0x56, 0x78]
        frame += mask
        frame += payload.enumerated().map { $0.element ^ mask[$0.offset % 4] }
        _ = frame.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    /// Sends a WebSocket upgrade request for `path`.
    func upgrade(_ path: String, headers: [String] = []) {
        send(
            "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                + "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                + headers.map { $0 + "\r\n" }.joined() + "\r\n")
    }

    /// Reads until the HTTP head is complete; returns the status code and the whole text read.
    private func readHeadBlocking() -> (status: Int, text: String) {
        var received = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !String(decoding: received, as: UTF8.self).contains("\r\n\r\n") {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { break }
            received += buffer[0..<n]
        }
        // Read the rest briefly (a refusal's JSON body).
        var short = timeval(tv_sec: 0, tv_usec: 300_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &short, socklen_t(MemoryLayout<timeval>.size))
        while true {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { break }
            received += buffer[0..<n]
        }
        let text = String(decoding: received, as: UTF8.self)
        let status = text.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
        return (status, text)
    }

    /// Reads WebSocket frames (after the handshake's head) until a close frame or `limit`
    /// seconds; returns the close code, the text frames seen, and the seconds it took.
    /// Never answers pings.
    private func readUntilCloseBlocking(limit: Double, pending: [UInt8] = []) -> (
        code: Int?, texts: Int, seconds: Double
    ) {
        let start = Date()
        var timeout = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var data = pending
        var texts = 0
        var buffer = [UInt8](repeating: 0, count: 65536)
        while Date().timeIntervalSince(start) < limit {
            // Parse every complete frame in `data`.
            while data.count >= 2 {
                let opcode = data[0] & 0x0f
                var length = Int(data[1] & 0x7f)
                var header = 2
                if length == 126 {
                    guard data.count >= 4 else { break }
                    length = Int(data[2]) << 8 | Int(data[3])
                    header = 4
                } else if length == 127 {
                    guard data.count >= 10 else { break }
                    length = (2..<10).reduce(0) { $0 << 8 | Int(data[$1]) }
                    header = 10
                }
                guard data.count >= header + length else { break }
                if opcode == 0x1 { texts += 1 }
                if opcode == 0x8 {
                    let code = length >= 2 ? Int(data[header]) << 8 | Int(data[header + 1]) : 1005
                    return (code, texts, Date().timeIntervalSince(start))
                }
                data.removeFirst(header + length)
            }
            let n = recv(fd, &buffer, buffer.count, 0)
            if n == 0 { return (nil, texts, Date().timeIntervalSince(start)) }
            if n > 0 { data += buffer[0..<n] }
        }
        return (nil, texts, Date().timeIntervalSince(start))
    }

    /// Reads the handshake's response head only (no frame bytes); returns its status and text.
    private func readUpgradeHeadBlocking() -> (status: Int, head: String) {
        var received = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 1)
        // Byte by byte, so no frame bytes are consumed with the head.
        while !(received.count >= 4 && Array(received.suffix(4)) == [13, 10, 13, 10]) {
            let n = recv(fd, &buffer, 1, 0)
            if n <= 0 { break }
            received.append(buffer[0])
        }
        let text = String(decoding: received, as: UTF8.self)
        return (text.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0, text)
    }

}
