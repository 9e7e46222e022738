import Foundation
import Hummingbird
import ParleyEvents
import ParleyHub
import ParleyPipeline
import ParleyPluginAPI
import ParleyStore
import Synchronization

/// `/api/dev`, only with `server.development: true` (`parley serve --development`): publishes
/// synthetic events through the real path (numbered, persisted, broadcast), for the load
/// benchmark and for trying a client without processing audio; and cuts a live recording's
/// ingest connection without a close frame, as a network would (the browser test's dropped socket).
struct DevelopmentRoutes {
    let hub: Hub
    let meetings: MeetingService

    struct Burst: Decodable {
        var count: Int
        /// Characters of filler text per event (a transcript segment is typically 100-300).
        var size: Int?
        /// Microseconds between events (0: as fast as they are persisted).
        var interval_us: Int?
        /// Then this many action items in one `action_items` event (the read model benchmark edits them).
        var action_items: Int?
        /// Events as the pipeline makes them: a sentence of meeting talk with each word's times
        /// and confidence (the compression benchmark), instead of filler.
        var words: Bool?
    }

    /// What `words` events say, in turn (benchmarks/peers/fastapi_hub.py has the same).
    static let talk = [
        "Okay, let's get started with the release review for this week.",
        "The installer works on all three platforms now, but the migration is still slow.",
        "I profiled the migration yesterday and most of the time goes into rebuilding the search index.",
        "Can you make the index rebuild incremental before the end of the sprint?",
        "Yes, I will take that, and I'll write up the numbers for the team by Friday.",
        "We also have to decide whether to drop support for the old storage format.",
        "Only two customers still use it, and both have a plan to convert their data.",
        "Then I think we should drop it in this release and say so in the notes.",
        "Agreed. Priya, could you send the upgrade notes to the administrators before Monday?",
        "Sure. Is there anything else on the dashboard that looks wrong to anyone?",
        "The error rate on the upload service went up a little after Tuesday's deploy.",
        "Let's look at that together after this call and decide if we roll back.",
    ]

    /// Event `n` of a `words` burst: `talk` in turn, each word timed and scored.
    static func spoken(_ n: Int, published nanoseconds: Int64) -> TranscriptSegment {
        let sentence = talk[n % talk.count]
        let words = sentence.split(separator: " ").enumerated().map { i, word in
            Word(
                word: String(word), start: Double(n) + 0.32 * Double(i), end: Double(n) + 0.32 * Double(i) + 0.3,
                confidence: 0.7 + Double((n * 7 + i * 13) % 30) / 100)
        }
        return TranscriptSegment(
            id: n, speaker: "S\(n % 3 + 1)", start: Double(n), end: Double(n) + 0.32 * Double(words.count),
            text: "t\(nanoseconds) " + sentence, words: words)
    }

    struct Published: ResponseEncodable {
        var first: Int
        var last: Int
    }

    func add(to group: RouterGroup<ParleyRequestContext>) {
        group.post("meetings/:id/ingest/drop") { request, context -> Response in
            let meeting = try await meetings.meeting(
                try context.parameters.require("id"), for: try context.requireUser(), need: .own)
            guard let connection = meetings.recordings.withLock({ $0[meeting.id] })?.connection else {
                throw APIError.notFound("no ingest connection is open for this meeting")
            }
            connection.drop()
            return Response(status: .noContent)
        }
        // Each event is a transcript segment whose text starts with the wall-clock nanoseconds at
        // which it was handed to the hub (`t<ns> word word ...`), for publish-to-receipt latency.
        group.post("meetings/:id/events") { request, context -> Published in
            let meeting = try await meetings.meeting(
                try context.parameters.require("id"), for: try context.requireUser(), need: .own)
            let burst = try await request.decode(as: Burst.self, context: context)
            guard (1...100_000).contains(burst.count) else { throw APIError.badRequest("count must be 1...100000") }
            let filler = String(repeating: "word ", count: max(0, burst.size ?? 120) / 5)
            let interval = Duration.microseconds(max(0, burst.interval_us ?? 0))
            return try await hub.withChannel(meetingID: meeting.id, epoch: meeting.epoch) { channel in
                var first = 0
                var last = 0
                let start = ContinuousClock.now
                for n in 0..<burst.count {
                    if interval > .zero { try await Task.sleep(until: start + interval * n, clock: .continuous) }
                    let nanoseconds = Int64(Date().timeIntervalSince1970 * 1e9)
                    let segment =
                        burst.words == true
                        ? Self.spoken(n, published: nanoseconds)
                        : TranscriptSegment(
                            id: n, speaker: "S1", start: Double(n), end: Double(n) + 1,
                            text: "t\(nanoseconds) " + filler, words: [])
                    let event = try await channel.publish(.transcript(segment))
                    if n == 0 { first = event.offset }
                    last = event.offset
                }
                if let count = burst.action_items, count > 0 {
                    let items = (1...min(count, 1000)).map {
                        ActionItemRecord(id: $0, owner: "S1", task: "item \($0)", due: nil, time: Double($0))
                    }
                    last = try await channel.publish(.actionItems(.init(items: items))).offset
                }
                return Published(first: first, last: last)
            }
        }
    }
}
