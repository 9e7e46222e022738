import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Folders for the files tests write. They all live in one folder of the test process's own,
/// `parley-test-run-PID` in the temporary directory, removed when the process exits; at its first
/// use, the folders of earlier runs whose process is gone (a run that crashed or was killed) are
/// removed too. A test run leaves nothing behind in the temporary directory.
public enum TestScratch {
    /// A new, empty folder: `name`, then a random suffix.
    public static func folder(_ name: String) throws -> String {
        let path = (root as NSString).appendingPathComponent("\(name)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// A path for one file named `name` in a new folder of its own.
    public static func file(_ name: String) throws -> String {
        (try folder("file") as NSString).appendingPathComponent(name)
    }

    static let prefix = "parley-test-run-"

    /// Made on first use (Swift runs a static's initializer once, whichever thread asks first).
    static let root: String = {
        let temporary = NSTemporaryDirectory()
        removeFoldersOfEndedRuns(in: temporary)
        let path = (temporary as NSString).appendingPathComponent("\(prefix)\(getpid())")
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        atexit { try? FileManager.default.removeItem(atPath: TestScratch.root) }
        return path
    }()

    private static func removeFoldersOfEndedRuns(in temporary: String) {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: temporary)) ?? []
        for name in names where name.hasPrefix(prefix) {
            guard let pid = pid_t(name.dropFirst(prefix.count)), pid != getpid() else { continue }
            // No such process: its run is over.
            if kill(pid, 0) != 0 && errno == ESRCH {
                try? FileManager.default.removeItem(atPath: (temporary as NSString).appendingPathComponent(name))
            }
        }
    }
}
