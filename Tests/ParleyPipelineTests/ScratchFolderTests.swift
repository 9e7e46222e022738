import Foundation
import Glibc
import ParleyPluginAPI
import ParleyTestSupport
import Testing

/// Scratch folders: removed after use, and those a dead process left are removed by the next
/// process's first folder, while those still in use are kept.
@Suite struct ScratchFolderTests {
    @Test func aFolderIsRemovedWithWhatItHolds() throws {
        let base = try TestScratch.folder("scratch")
        let scratch = try ScratchFolder("meeting", in: base)
        #expect((scratch.path as NSString).lastPathComponent.hasPrefix("parley-meeting-"))
        try Data(count: 1000).write(to: URL(fileURLWithPath: scratch.path + "/meeting.wav"))
        scratch.remove()
        #expect(!FileManager.default.fileExists(atPath: scratch.path))
    }

    /// A folder left by a killed `parley` (a child process killed mid-meeting) goes; a folder
    /// another live process is using stays, and so do folders that are not Parley's.
    @Test func foldersOfEndedProcessesAreRemovedAndLiveOnesKept() throws {
        let base = try TestScratch.folder("scratch")
        // Another process, alive, holding its folder.
        let live = try Holder(in: base)
        // Another process, killed while it held its folder.
        let killed = try Holder(in: base)
        killed.kill()
        let foreign = base + "/parley-notes"
        try FileManager.default.createDirectory(atPath: foreign, withIntermediateDirectories: true)
        #expect(FileManager.default.fileExists(atPath: killed.folder))

        let mine = try ScratchFolder("meeting", in: base)
        defer { mine.remove() }
        #expect(!FileManager.default.fileExists(atPath: killed.folder))
        #expect(FileManager.default.fileExists(atPath: live.folder + "/meeting.wav"))
        #expect(FileManager.default.fileExists(atPath: foreign))
        #expect(FileManager.default.fileExists(atPath: mine.path))
    }

    /// A folder that cannot be made is a clear error, not a path that fails later.
    @Test func aBaseThatIsAFileIsAClearError() throws {
        let file = try TestScratch.file("not-a-folder")
        try Data("x".utf8).write(to: URL(fileURLWithPath: file))
        #expect {
            _ = try ScratchFolder("meeting", in: file)
        } throws: { error in
            "\(error)".contains("cannot make the scratch folder \(file)")
        }
    }

    /// A process holding a folder's lock the way ScratchFolder does: flock(1) takes the lock on
    /// the folder's lock file and keeps it while its command (a sleep, which does not hold it)
    /// runs. Returns once the lock is held.
    final class Holder {
        let process = Process()
        let folder: String
        private let sleeper: pid_t

        init(in base: String) throws {
            folder = base + "/parley-meeting-\(UUID().uuidString.prefix(8).lowercased())"
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            try Data(count: 1000).write(to: URL(fileURLWithPath: folder + "/meeting.wav"))
            let ready = folder + "/ready"
            process.executableURL = URL(fileURLWithPath: "/usr/bin/flock")
            process.arguments = [
                "-o", folder + "/.parley-lock", "sh", "-c",
                "echo $$ > '\(ready).part'; mv '\(ready).part' '\(ready)'; exec sleep 300",
            ]
            try process.run()
            var pid: pid_t?
            while pid == nil {
                pid = (try? String(contentsOfFile: ready, encoding: .utf8)).flatMap {
                    pid_t($0.trimmingCharacters(in: .whitespacesAndNewlines))
                }
                if pid == nil { usleep(10_000) }
            }
            sleeper = pid!
        }

        /// Ends it as a crash would (the lock goes with the process), and its sleep with it.
        func kill() {
            _ = Glibc.kill(process.processIdentifier, SIGKILL)
            _ = Glibc.kill(sleeper, SIGKILL)
            process.waitUntilExit()
        }

        deinit { if process.isRunning { kill() } }
    }
}
