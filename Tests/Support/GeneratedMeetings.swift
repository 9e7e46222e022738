import Foundation
public import ParleySynth
import Synchronization

/// Meetings made by the project's own generator (espeak-ng), each made once per test run and
/// shared by every test that needs it.
public enum GeneratedMeetings {
    private static let made = Mutex<[String: MeetingGenerator.Output]>([:])

    /// The built-in standup meeting (about a minute, three voices, three action items).
    public static func standup(seed: UInt64 = 1) throws -> MeetingGenerator.Output {
        let key = "standup-\(seed)"
        if let output = made.withLock({ $0[key] }) { return output }
        var generator = MeetingGenerator(script: .standup)
        generator.seed = seed
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent(
            "parley-test-meeting-\(key)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let output = try generator.write(to: folder.path)
        made.withLock { $0[key] = output }
        return output
    }
}
