import Foundation
import Testing

/// The neural diarizer's clustering cut follows the recording's own spread of one voice
/// (`diarizer.neural.threshold_floor`), and one-second chunks' own voices decide who speaks
/// where one voice is heard (`diarizer.neural.chunk`): through the real executable and worker,
/// on a meeting that Parley's generator speaks with three espeak-ng voices it was never tuned on.
@Suite(.serialized) struct NeuralCutTests {
    typealias CLI = ParleyCommandTests

    /// Three voices drawn as `benchmarks/run.py` draws its "new voices" (its meeting 8).
    static let script = """
        {"speakers": {"ann": {"voice": "en-gb+shelby", "pitch": 68, "speed": 168},
                      "ben": {"voice": "en-us+Jacky", "pitch": 34, "speed": 153},
                      "cat": {"voice": "en-us+f1", "pitch": 28, "speed": 155}},
         "turns": [["ann", "Yes."],
                   ["ben", "I think the design review went well, but the timeline is still tight."],
                   ["cat", "Can someone take the action to follow up with the vendor by Thursday?"],
                   ["ben", "I will prepare the slides for the board meeting."],
                   ["cat", "Right, exactly."],
                   ["ben", "My concern is that the new hires need more onboarding time."],
                   ["cat", "No, I do not think so."],
                   ["ann", "That sounds reasonable to me, as long as the budget holds."],
                   ["ben", "We should look at the numbers from last quarter before we decide anything."],
                   ["cat", "I think the design review went well, but the timeline is still tight."],
                   ["ben", "Can someone take the action to follow up with the vendor by Thursday?"],
                   ["ann", "Okay, I agree, let us go with the second option then."],
                   ["cat", "We should look at the numbers from last quarter before we decide anything."],
                   ["ben", "Can someone take the action to follow up with the vendor by Thursday?"],
                   ["ann", "We still have three open bugs in the payment flow."],
                   ["cat", "I will prepare the slides for the board meeting."],
                   ["ben", "We still have three open bugs in the payment flow."],
                   ["ann", "Okay, I agree, let us go with the second option then."]],
         "action_items": []}
        """

    static func speakers(_ wav: String, floor: String?, chunk: String? = "0") throws -> Int {
        var arguments = ["diarize", wav, "--diarizer", "neural", "--json"]
        if let floor { arguments += ["--set", "diarizer.neural.threshold_floor=\(floor)"] }
        if let chunk { arguments += ["--set", "diarizer.neural.chunk=\(chunk)"] }
        let run = try CLI.parley(arguments)
        #expect(run.status == 0, "\(run.errors)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(run.output.utf8)) as? [String: Any])
        let turns = try #require(json["turns"] as? [[String: Any]])
        return Set(turns.compactMap { $0["speaker"] as? String }).count
    }

    /// One espeak-ng voice's embeddings lie close together (a steady recording), so the cut is
    /// lowered and two of the voices that the fixed cut at 0.62 hears as one come apart (the
    /// chunks off, which would tell them apart too: the next test).
    @Test func aSteadyRecordingLowersTheCutAndTellsCloseVoicesApart() throws {
        let dir = try CLI.scratch()
        try Self.script.write(toFile: dir + "/script.json", atomically: true, encoding: .utf8)
        let made = try CLI.parley("make-meeting", dir, "--script", dir + "/script.json", "--seed", "9")
        #expect(made.status == 0, "\(made.errors)")
        let fixed = try Self.speakers(dir + "/meeting.wav", floor: "0.62")
        let followed = try Self.speakers(dir + "/meeting.wav", floor: nil)
        #expect(fixed == 1, "the fixed cut found \(fixed) speakers")
        // The table's first line says it in the singular.
        let table = try CLI.parley(
            "diarize", dir + "/meeting.wav", "--diarizer", "neural", "--set", "diarizer.neural.threshold_floor=0.62",
            "--set", "diarizer.neural.chunk=0")
        #expect(table.output.contains(" s, 1 speaker, "), "\(table.output)")
        #expect(followed >= 2 && followed <= 3, "the cut that follows the recording found \(followed) speakers")
    }

    /// Under the fixed cut the windows hear the three voices as one; the one-second chunks, each
    /// embedded on its own, hear more than one, and decide who speaks where one voice is heard.
    @Test func chunksTellApartVoicesTheWindowsHearAsOne() throws {
        let dir = try CLI.scratch()
        try Self.script.write(toFile: dir + "/script.json", atomically: true, encoding: .utf8)
        let made = try CLI.parley("make-meeting", dir, "--script", dir + "/script.json", "--seed", "9")
        #expect(made.status == 0, "\(made.errors)")
        let windows = try Self.speakers(dir + "/meeting.wav", floor: "0.62", chunk: "0")
        let chunks = try Self.speakers(dir + "/meeting.wav", floor: "0.62", chunk: nil)
        #expect(windows == 1, "the windows alone found \(windows) speakers")
        #expect(chunks >= 2 && chunks <= 3, "with the chunks: \(chunks) speakers")
    }
}
