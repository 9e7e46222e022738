import Foundation
public import ParleyPluginAPI

/// An offline summarizer that picks sentences rather than writing them: TextRank over the
/// transcript's sentences for the summary; rules for decisions and for action items (who
/// said "I will ...", or who was asked "Name, could you ...", the task, the due phrase and
/// when it was said). It also learns speakers' names from who answers when addressed.
///
/// Settings (`[summarizer.extractive]`): `max_points` (7).
public struct ExtractiveSummarizer: Summarizer {
    public static let name = "extractive"
    public static let summary = "TextRank summary and rule-based decisions and action items; built in, offline"

    public let maxPoints: Int

    public init(settings: PluginSettings) throws(PluginError) {
        maxPoints = try settings.int("max_points", default: 7)
        guard maxPoints >= 1 else { throw .badSetting("max_points", "must be 1 or more") }
    }

    public func readiness() async -> Readiness { .ready("built in") }

    public func summarize(
        _ transcript: [AttributedSegment], participants: [Participant], context: PluginContext
    ) async throws -> MeetingSummary {
        let sentences = Sentence.split(transcript)
        try Task.checkCancellation()
        let names = Self.learnNames(sentences)
        let display = { (speaker: String) -> String in
            names[speaker] ?? participants.first { $0.id == speaker }?.name ?? speaker
        }
        let points = TextRank.top(sentences.map(\.text), count: min(maxPoints, max(3, sentences.count / 5)))
            .map { sentences[$0].text }
        try Task.checkCancellation()
        let decisions = sentences.filter { Rules.isDecision($0.text) }.map { Decision(text: $0.text, time: $0.time) }
        var items: [(item: ActionItem, speaker: String, named: Bool)] = []
        for sentence in sentences {
            guard let found = Rules.actionItem(in: sentence.text) else { continue }
            let owner = found.owner.map { Rules.capitalized($0) } ?? display(sentence.speaker)
            let item = ActionItem(owner: owner, task: found.task, due: found.due, time: sentence.time)
            // The same task said twice (asked, then accepted) is one item; the named owner wins.
            if let index = items.lastIndex(where: {
                sentence.time - $0.item.time < 120 && Rules.similar($0.item.task, found.task)
            }) {
                if items[index].item.due == nil { items[index].item.due = found.due }
                if found.owner != nil, !items[index].named {
                    items[index].item.owner = owner
                    items[index].named = true
                }
                continue
            }
            items.append((item, sentence.speaker, found.owner != nil))
        }
        return MeetingSummary(
            points: points, decisions: decisions, actionItems: items.map(\.item), speakerNames: names)
    }

    /// "Priya, could you ...?" answered by another speaker: that speaker is probably Priya.
    /// A name is kept when most of the answers after it came from one speaker.
    static func learnNames(_ sentences: [Sentence]) -> [String: String] {
        var votes: [String: [String: Int]] = [:]
        for (index, sentence) in sentences.enumerated() {
            // Only a name that opens a question or a request counts: "Agreed, ..." misheard as
            // "Read, ..." must not name anyone.
            guard let name = Rules.vocative(sentence.text), Rules.isRequest(sentence.text) else { continue }
            guard
                let reply = sentences[(index + 1)...].first(where: { $0.speaker != sentence.speaker }),
                reply.time - sentence.time < 15
            else { continue }
            votes[name, default: [:]][reply.speaker, default: 0] += 1
        }
        var names: [String: String] = [:]
        var taken: Set<String> = []
        for (name, tally) in votes.sorted(by: { $0.value.values.reduce(0, +) > $1.value.values.reduce(0, +) }) {
            guard let (speaker, count) = tally.max(by: { $0.value < $1.value }),
                Double(count) > Double(tally.values.reduce(0, +)) / 2, names[speaker] == nil, !taken.contains(name)
            else { continue }
            names[speaker] = Rules.capitalized(name)
            taken.insert(name)
        }
        return names
    }
}

/// One sentence of the transcript, with who said it and when.
struct Sentence {
    var text: String
    var speaker: String
    var time: Double

    static func split(_ transcript: [AttributedSegment]) -> [Sentence] {
        var sentences: [Sentence] = []
        for segment in transcript {
            let text = segment.text
            let length = max(1, text.count)
            var start = text.startIndex
            var index = text.startIndex
            func flush(_ end: String.Index) {
                let piece = text[start..<end].trimmingCharacters(in: .whitespacesAndNewlines)
                if piece.count > 1 {
                    let fraction = Double(text.distance(from: text.startIndex, to: start)) / Double(length)
                    sentences.append(
                        Sentence(
                            text: piece, speaker: segment.speaker,
                            time: segment.start + fraction * (segment.end - segment.start)))
                }
                start = end
            }
            while index < text.endIndex {
                let character = text[index]
                index = text.index(after: index)
                if ".?!".contains(character), index == text.endIndex || text[index].isWhitespace { flush(index) }
            }
            flush(text.endIndex)
        }
        // A sentence cut across two segments of one speaker is joined again.
        var joined: [Sentence] = []
        for sentence in sentences {
            if let last = joined.last, last.speaker == sentence.speaker, let end = last.text.last,
                !".?!".contains(end)
            {
                joined[joined.count - 1].text += " " + sentence.text
            } else {
                joined.append(sentence)
            }
        }
        return joined
    }
}
