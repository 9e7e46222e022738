import Foundation
public import ParleySynth
import Synchronization

/// Meetings made by the project's own generator (espeak-ng), each made once per test run and
/// shared by every test that needs it.
public enum GeneratedMeetings {
    private static let made = Mutex<[String: MeetingGenerator.Output]>([:])

    /// The built-in standup meeting (about a minute, three voices, three action items).
    public static func standup(seed: UInt64 = 1) throws -> MeetingGenerator.Output {
        try make("standup-\(seed)", script: .standup, seed: seed)
    }

    /// The standup's three voices speaking another script (the four-voice meeting's lines, taken
    /// in turn): what a later meeting of the same people sounds like.
    public static func standupVoicesAgain(seed: UInt64 = 7) throws -> MeetingGenerator.Output {
        let people = ["tom", "priya", "maria"]
        let turns = MeetingScript.fourVoices.turns.enumerated().map { index, turn in
            [people[index % people.count], turn[1]]
        }
        return try make(
            "standup-voices-again-\(seed)",
            script: MeetingScript(speakers: MeetingScript.standup.speakers, turns: turns),
            seed: seed)
    }

    /// One of the standup's voices alone, reading the four-voice meeting's lines: an
    /// enrollment recording.
    public static func standupVoiceAlone(_ person: String) throws -> MeetingGenerator.Output {
        guard let voice = MeetingScript.standup.speakers[person] else {
            throw CocoaError(.fileNoSuchFile, userInfo: [NSLocalizedDescriptionKey: "no voice \(person)"])
        }
        let turns = MeetingScript.fourVoices.turns.prefix(6).map { [person, $0[1]] }
        return try make(
            "alone-\(person)", script: MeetingScript(speakers: [person: voice], turns: Array(turns)), seed: 3)
    }

    private static func make(_ key: String, script: MeetingScript, seed: UInt64) throws -> MeetingGenerator.Output {
        if let output = made.withLock({ $0[key] }) { return output }
        var generator = MeetingGenerator(script: script)
        generator.seed = seed
        let output = try generator.write(to: try TestScratch.folder("meeting-\(key)"))
        made.withLock { $0[key] = output }
        return output
    }
}
