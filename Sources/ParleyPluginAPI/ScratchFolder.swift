import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A folder for one job's temporary files (a meeting's 16 kHz copy, a plugin's work):
/// `parley-PURPOSE-RANDOM` in a base folder, the system's temporary directory by default, removed
/// by `remove()`.
///
/// A process that is killed or crashes cannot remove its folders, and a meeting's copy of its
/// audio is large (a three-hour meeting is 345 MB, in memory where the temporary directory is a
/// tmpfs). So each folder holds a lock file that its process keeps locked (`flock`) while the
/// folder is in use; the kernel lets go of the lock when the process ends, however it ends. The
/// first folder a process makes in a base folder removes the folders there whose lock nobody
/// holds: those of processes that are gone, on this machine or in another container sharing the
/// folder.
public final class ScratchFolder: Sendable {
    public let path: String
    private let lock: Int32

    static let prefix = "parley-"
    static let lockName = ".parley-lock"
    private static let swept = Mutex<Set<String>>([])

    /// Makes the folder. `purpose` names it (letters and digits).
    public init(_ purpose: String, in base: String? = nil) throws(ScratchFolderError) {
        let base = base ?? NSTemporaryDirectory()
        let fm = FileManager.default
        do {
            try fm.createDirectory(atPath: base, withIntermediateDirectories: true)
        } catch {
            throw ScratchFolderError(
                description: "cannot make the scratch folder \(base): \(error.localizedDescription)")
        }
        if Self.swept.withLock({ $0.insert(base).inserted }) { Self.removeAbandoned(in: base) }
        let name = "\(Self.prefix)\(purpose)-\(UUID().uuidString.prefix(8).lowercased())"
        let final = (base as NSString).appendingPathComponent(name)
        // Made under a name the sweep skips, locked, then given its name: a sweep never sees
        // the folder without its lock held.
        let making = final + ".new"
        guard mkdir(making, 0o700) == 0 else {
            throw ScratchFolderError(
                description: "cannot make a scratch folder in \(base): \(String(cString: strerror(errno)))")
        }
        let fd = open(making + "/" + Self.lockName, O_CREAT | O_RDWR | O_CLOEXEC, 0o600)
        guard fd >= 0, flock(fd, LOCK_EX | LOCK_NB) == 0, rename(making, final) == 0 else {
            let reason = String(cString: strerror(errno))
            if fd >= 0 { close(fd) }
            try? fm.removeItem(atPath: making)
            throw ScratchFolderError(description: "cannot make a scratch folder in \(base): \(reason)")
        }
        path = final
        lock = fd
    }

    /// Removes the folder and everything in it.
    public func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }

    /// A folder left behind (no `remove()`) is unlocked here, so the next process's sweep
    /// removes it.
    deinit { close(lock) }

    /// Removes the folders of `base` made by processes that have ended.
    static func removeAbandoned(in base: String) {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: base)) ?? []
        for name in names where name.hasPrefix(prefix) && !name.hasSuffix(".new") {
            let folder = (base as NSString).appendingPathComponent(name)
            let fd = open(folder + "/" + lockName, O_RDWR | O_CLOEXEC)
            guard fd >= 0 else { continue }  // not one of these folders
            if flock(fd, LOCK_EX | LOCK_NB) == 0 { try? FileManager.default.removeItem(atPath: folder) }
            close(fd)
        }
    }
}

/// A scratch folder could not be made (the base folder is missing and cannot be made, not
/// writable, or full).
public struct ScratchFolderError: Error, CustomStringConvertible {
    public let description: String
}
