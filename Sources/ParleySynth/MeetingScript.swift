/// What a synthesized meeting says and who says it. The JSON form is the one
/// `make_meeting.py` reads, so either generator can render the same script.
public struct MeetingScript: Codable, Sendable, Hashable {
    public struct Voice: Codable, Sendable, Hashable {
        /// An espeak-ng voice, e.g. "en-us+f3".
        public var voice: String
        /// espeak-ng pitch, 0...99.
        public var pitch: Int?
        /// Words per minute.
        public var speed: Int?

        public init(voice: String, pitch: Int? = nil, speed: Int? = nil) {
            self.voice = voice
            self.pitch = pitch
            self.speed = speed
        }
    }

    public struct ActionItem: Codable, Sendable, Hashable {
        public var owner: String
        public var text: String
        public var due: String?
    }

    public var speakers: [String: Voice]
    /// [speaker, text] pairs, spoken in order.
    public var turns: [[String]]
    public var actionItems: [ActionItem]

    enum CodingKeys: String, CodingKey {
        case speakers, turns
        case actionItems = "action_items"
    }

    public init(speakers: [String: Voice], turns: [[String]], actionItems: [ActionItem] = []) {
        self.speakers = speakers
        self.turns = turns
        self.actionItems = actionItems
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        speakers = try c.decode([String: Voice].self, forKey: .speakers)
        turns = try c.decode([[String]].self, forKey: .turns)
        actionItems = try c.decodeIfPresent([ActionItem].self, forKey: .actionItems) ?? []
    }
}

extension MeetingScript {
    /// The built-in meeting: three people (two women, one man) plan a release.
    public static let standup = MeetingScript(
        speakers: [
            "maria": Voice(voice: "en-us+f3", pitch: 70, speed: 160),
            "tom": Voice(voice: "en-us+m3", pitch: 35, speed: 150),
            "priya": Voice(voice: "en-gb+f4", pitch: 55, speed: 170),
        ],
        turns: [
            ["maria", "Good morning. Let's go through the release checklist for version two."],
            ["tom", "The installer works on all three platforms now, but the migration script is still slow."],
            ["priya", "I profiled the migration yesterday. Most of the time goes into rebuilding the search index."],
            ["maria", "Priya, could you make the index rebuild incremental by Thursday?"],
            ["priya", "Yes, I will make the index rebuild incremental by Thursday."],
            ["tom", "I will write the upgrade notes for the administrators before Monday."],
            ["maria", "Good. We also have to decide whether to drop support for the old storage format."],
            ["tom", "Only two customers still use it, and both have agreed to convert their data."],
            ["priya", "Then I think we should drop it in this release."],
            ["maria", "Agreed, we drop the old storage format. I will tell the two customers this afternoon."],
            ["tom", "One more thing. The security review is scheduled for the twelfth."],
            ["maria", "Thank you both. Same time next week."],
        ],
        actionItems: [
            .init(owner: "priya", text: "make the index rebuild incremental", due: "Thursday"),
            .init(owner: "tom", text: "write the upgrade notes for the administrators", due: "Monday"),
            .init(owner: "maria", text: "tell the two customers", due: "this afternoon"),
        ])

    /// Four people: two women (about 230 and 250 Hz) and two men (about 80 and 100 Hz), so each
    /// voice has a same-gender neighbour close in pitch: the hard case for speaker counting.
    public static let fourVoices = MeetingScript(
        speakers: [
            "anna": Voice(voice: "en-us+f2", pitch: 65, speed: 165),
            "ben": Voice(voice: "en-us+m1", pitch: 30, speed: 150),
            "chris": Voice(voice: "en-gb+m4", pitch: 50, speed: 170),
            "dora": Voice(voice: "en-us+f4", pitch: 80, speed: 155),
        ],
        turns: [
            ["anna", "Welcome everyone. Today we review the support backlog and the hiring plan."],
            ["ben", "The backlog grew by forty tickets last week, mostly about password resets."],
            ["chris", "Most of those come from the new single sign on flow. The error message is confusing."],
            ["dora", "I can rewrite the error message and the help page for it."],
            ["anna", "Thanks Dora. Please have the new text ready by Wednesday."],
            ["ben", "I will close the duplicate tickets and tag the rest by tomorrow."],
            ["chris", "For hiring, we have three candidates for the backend role."],
            ["dora", "I interviewed two of them. Both are strong, the second one more so."],
            ["anna", "Then we make an offer to the second candidate. Chris, can you send it on Friday?"],
            ["chris", "Yes, I will send the offer on Friday."],
            ["ben", "Should we also open a second support position?"],
            ["anna", "Not yet. Let's look at the numbers again next month."],
            ["dora", "Sounds good to me."],
            ["chris", "Same here. Thanks everyone."],
        ],
        actionItems: [
            .init(owner: "dora", text: "rewrite the error message and the help page", due: "Wednesday"),
            .init(owner: "ben", text: "close the duplicate tickets and tag the rest", due: "tomorrow"),
            .init(owner: "chris", text: "send the offer to the second candidate", due: "Friday"),
        ])

    public static let presets: [String: MeetingScript] = ["standup": standup, "four-voices": fourVoices]
}
