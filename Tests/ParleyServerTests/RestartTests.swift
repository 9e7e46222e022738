import Foundation
import NIOHTTP1
import NIOWebSocket
import ParleyJobs
import ParleyStore
import ParleySynth
import ParleyTestSupport
import Synchronization
import Testing

@testable import ParleyServer

/// What survives a restart: the numbered log, interrupted work (resumed or failed, never stuck),
/// and a graceful stop that closes sockets with 1001.
@Suite struct RestartTests {
    enum Database: String, CaseIterable, Sendable { case sqlite, postgres }

    @Test(arguments: Database.allCases) func replayAfterARestartHasNoGapAndNoDuplicate(on database: Database)
        async throws
    {
        let data = try ServerFixture.scratch("restart")
        let url = database == .postgres ? try await TestPostgres.freshDatabase() : nil
        let settings = try ServerFixture.settings(dataDirectory: data) { $0.engine.database = url }
        let (token, meeting, epoch) = try await ServerFixture.withServer(settings) { h in
            let (_, token) = try await h.user("alice")
            let meeting = try await h.meeting("Restart", token: token)
            try await h.publish(meeting, count: 20, token: token)
            let seen = try await h.watch(meeting, token: token, query: "&since=0") { $0.lastEventOffset == 20 }
            return (token, meeting, seen.messages.first?.fields["epoch"] as? String)
        }
        // A new process on the same data: the client that saw up to 12 gets 13...20, then live 21...25.
        try await ServerFixture.withServer(try ServerFixture.settings(dataDirectory: data) { $0.engine.database = url })
        { h in
            let publisher = Task {
                try await Task.sleep(for: .milliseconds(400))
                try await h.publish(meeting, count: 5, token: token)
            }
            let seen = try await h.watch(meeting, token: token, query: "&since=12&epoch=\(epoch ?? "")") {
                $0.lastEventOffset == 25
            }
            try await publisher.value
            #expect(seen.messages.first?.recovered == true)
            #expect(seen.messages.first?.fields["epoch"] as? String == epoch)
            #expect(seen.offsets == Array(13...25))
        }
    }

    @Test func interruptedWorkIsResumedOrFailedAfterARestart() async throws {
        let data = try ServerFixture.scratch("recover")
        let audio = try ServerFixture.standup()
        let (token, interruptedUpload, interruptedProcessing) = try await ServerFixture.withServer(
            try ServerFixture.settings(dataDirectory: data)
        ) { h in
            let (_, token) = try await h.user("alice")
            let upload = try await h.meeting("Cut off upload", token: token)
            let processing = try await h.meeting("Cut off processing", token: token)
            // What a crash leaves behind: both `processing` and leased to the process that died;
            // one with the audio fully stored, and events already published.
            let lease = Date().addingTimeInterval(3600)
            for meeting in [upload, processing] {
                try await h.server.store.putJob(
                    meetingID: meeting, epoch: try #require(try await h.server.store.meeting(id: meeting)).epoch,
                    owner: "crashed-node", leaseUntil: lease, at: Date())
            }
            try await h.publish(processing, count: 3, token: token)
            var first = try #require(try await h.server.store.meeting(id: upload))
            first.status = .processing
            first.audioPath = data + "/audio/\(upload).audio"
            try await h.server.store.updateMeeting(first)
            var second = try #require(try await h.server.store.meeting(id: processing))
            try FileManager.default.createDirectory(atPath: data + "/audio", withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: audio.audioPath, toPath: data + "/audio/\(processing).audio")
            second.status = .processing
            second.audioPath = data + "/audio/\(processing).audio"
            second.audioBytes = 1
            try await h.server.store.updateMeeting(second)
            return (token, upload, processing)
        }
        try await ServerFixture.withServer(try ServerFixture.settings(dataDirectory: data), recover: true) { h in
            let failed = try await h.watch(interruptedUpload, token: token, query: "&since=0") { messages in
                messages.contains { $0.type == "status" && $0.stage == "failed" }
            }
            #expect(failed.events.contains { $0.type == "error" && $0.data["code"] as? String == "interrupted" })
            let resumed = try await h.watch(interruptedProcessing, token: token, query: "&since=0") { messages in
                messages.contains { $0.type == "status" && ($0.stage == "completed" || $0.stage == "failed") }
            }
            #expect(resumed.events.last?.stage == "completed")
            // Same log, no gap: what the dead process published, then `restarted`, then the run.
            #expect(resumed.offsets == Array(1...(resumed.offsets.last ?? 0)))
            #expect(resumed.events.count > 4 && resumed.events[3].type == "status")
            #expect(resumed.events[3].data["state"] as? String == "restarted")
            let states = try await h.request(.GET, "/api/meetings", token: token)
            let statuses = (states.json["meetings"] as? [[String: Any]])?.compactMap { $0["status"] as? String }
            #expect(statuses?.sorted() == ["completed", "failed"])
        }
    }

    /// `parley serve` as a user runs it: SIGTERM closes WebSockets with 1001 and exits 0; the
    /// meeting whose processing was cut short is resumed by the next start.
    @Test func gracefulShutdownClosesSocketsWith1001AndResumesWorkOnTheNextStart() async throws {
        let data = try ServerFixture.scratch("sigterm")
        let audio = try ServerFixture.standup()
        let first = try ServeProcess(dataDirectory: data)
        let h = Harness(port: first.port, server: nil)
        let (_, token) = try await h.user("alice")
        let meeting = try await h.meeting("Stopped", token: token)
        let socket = try await RawSocket.watching(meeting, token: token, port: first.port)
        let upload = try await h.request(
            .PUT, "/api/meetings/\(meeting)/audio", token: token,
            body: try Data(contentsOf: URL(fileURLWithPath: audio.audioPath)), contentType: "audio/wav")
        #expect(upload.status == 202)
        #expect(FileManager.default.fileExists(atPath: data + "/audio/\(meeting).audio"))
        first.terminate()
        let (code, _, _) = await socket.readUntilClose(limit: 15)
        #expect(code == 1001)
        #expect(first.wait() == 0)
        #expect(FileManager.default.fileExists(atPath: data + "/audio/\(meeting).audio"))

        let second = try ServeProcess(dataDirectory: data)
        let h2 = Harness(port: second.port, server: nil)
        let login = try await h2.request(
            .POST, "/api/auth/login", json: ["username": "alice", "password": "correct horse"])
        let token2 = try #require(login.json["access_token"] as? String)
        let seen = try await h2.watch(meeting, token: token2, query: "&since=0") { messages in
            messages.contains { $0.type == "status" && ($0.stage == "completed" || $0.stage == "failed") }
        }
        #expect(seen.events.last?.stage == "completed", "\(seen.events.filter { $0.type == "error" })")
        second.terminate()
        #expect(second.wait() == 0)
    }
}

/// `parley serve` in a child process on a free port.
final class ServeProcess: @unchecked Sendable {
    let process = Process()
    let port: Int

    init(dataDirectory: String) throws {
        let binary =
            ProcessInfo.processInfo.environment["PARLEY_BIN"] ?? ServerFixture.packageRoot + "/.build/debug/parley"
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = [
            "serve", "--port", "0", "--data-dir", dataDirectory, "--set", "server.bcrypt_cost=4",
        ]
        // Its scratch files go with the test run's even when the test kills it mid-meeting.
        let temporary = try TestScratch.folder("tmp")
        process.environment = ProcessInfo.processInfo.environment.merging(["TMPDIR": temporary]) { $1 }
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        // "parley: serving on http://127.0.0.1:PORT (...)"
        var seen = ""
        let handle = errors.fileHandleForReading
        var found: Int?
        while found == nil {
            let data = handle.availableData
            if data.isEmpty { break }
            seen += String(decoding: data, as: UTF8.self)
            if let range = seen.range(of: #"serving on http://127\.0\.0\.1:(\d+)"#, options: .regularExpression) {
                found = Int(seen[range].split(separator: ":").last ?? "")
            }
        }
        guard let found else { throw POSIXError(.ECHILD) }
        port = found
        // Keep draining stderr (into <data>/serve.log) so the child never blocks on a full pipe.
        _ = FileManager.default.createFile(
            atPath: dataDirectory + "/serve-\(process.processIdentifier).log", contents: Data(seen.utf8))
        let log = FileHandle(forWritingAtPath: dataDirectory + "/serve-\(process.processIdentifier).log")
        log?.seekToEndOfFile()
        let drain = Thread {
            while true {
                let data = handle.availableData
                if data.isEmpty { break }
                log?.write(data)
            }
        }
        drain.start()
    }

    func terminate() { process.terminate() }

    func wait() -> Int32 {
        process.waitUntilExit()
        return process.terminationStatus
    }
}
