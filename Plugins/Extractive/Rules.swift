import Foundation

/// The patterns the extractive summarizer reads meetings with.
enum Rules {
    static let stopwords: Set<String> = [
        "a", "about", "after", "again", "all", "also", "am", "an", "and", "any", "are", "as", "at", "be", "been",
        "before", "being", "both", "but", "by", "can", "could", "did", "do", "does", "doing", "for", "from", "had",
        "has", "have", "having", "he", "her", "here", "him", "his", "how", "i", "if", "in", "into", "is", "it", "its",
        "just", "let", "lets", "me", "more", "most", "my", "no", "not", "now", "of", "on", "one", "only", "or",
        "other", "our", "out", "over", "same", "she", "should", "so", "some", "still", "such", "than", "that", "the",
        "their", "them", "then", "there", "these", "they", "this", "those", "through", "to", "too", "up", "us",
        "very", "was", "we", "well", "were", "what", "when", "where", "whether", "which", "while", "who", "why",
        "will", "with", "would", "yes", "you", "your", "ll", "s", "t", "re", "ve", "m", "d", "okay", "ok", "good",
        "thank", "thanks", "think", "going", "go", "get", "got", "said", "say", "yeah", "right",
    ]

    /// Lower-cased words without stopwords, with a plural "s" taken off.
    static func contentWords(_ text: String) -> [String] {
        text.lowercased().split { !$0.isLetter && !$0.isNumber }.map(String.init)
            .filter { !stopwords.contains($0) }
            .map { $0.count > 3 && $0.hasSuffix("s") && !$0.hasSuffix("ss") ? String($0.dropLast()) : $0 }
    }

    static func similar(_ a: String, _ b: String) -> Bool {
        let x = Set(contentWords(a))
        let y = Set(contentWords(b))
        guard !x.isEmpty, !y.isEmpty else { return false }
        return Double(x.intersection(y).count) / Double(x.union(y).count) >= 0.5
    }

    static func capitalized(_ name: String) -> String { name.prefix(1).uppercased() + name.dropFirst().lowercased() }

    /// Words that start a sentence followed by a comma without being a name.
    static let notNames: Set<String> = [
        "yes", "no", "okay", "ok", "so", "well", "then", "good", "agreed", "right", "sure", "thanks", "thank", "hi",
        "hello", "also", "and", "but", "first", "finally", "now", "actually", "great", "fine", "alright", "oh", "um",
        "uh", "everyone", "team", "guys", "folks", "yeah", "sorry", "please", "anyway", "however", "look", "listen",
        "honestly", "again", "second", "third", "next", "today", "tomorrow", "perfect", "excellent", "cool", "wait",
        "we", "it", "that", "this", "there", "they", "he", "she", "i", "you", "nobody", "someone", "somebody",
    ]

    static func isName(_ word: some StringProtocol) -> Bool {
        guard let first = word.first, first.isUppercase, word.count >= 2, word.allSatisfy(\.isLetter) else {
            return false
        }
        return !notNames.contains(word.lowercased())
    }

    /// "Priya, could you ..." -> "Priya".
    static func vocative(_ sentence: String) -> String? {
        let stripped = stripLeading(sentence)
        guard let comma = stripped.firstIndex(of: ","), stripped.distance(from: stripped.startIndex, to: comma) < 20
        else { return nil }
        let word = stripped[..<comma]
        return isName(word) ? String(word) : nil
    }

    nonisolated(unsafe) static let request = try! Regex(#"\b(?:could|can|would|will) you\b|\bplease\b"#).ignoresCase()

    static func isRequest(_ sentence: String) -> Bool {
        sentence.trimmingCharacters(in: .whitespaces).hasSuffix("?") || sentence.contains(request)
    }

    nonisolated(unsafe) static let leading = try! Regex(
        #"^(?:(?:yes|yeah|ok|okay|sure|so|and|then|well|right|agreed|good|fine|alright|great)[,.!]?\s+)+"#
    ).ignoresCase()

    static func stripLeading(_ sentence: String) -> String {
        var text = sentence.trimmingCharacters(in: .whitespaces)
        if let match = text.prefixMatch(of: leading) { text = String(text[match.range.upperBound...]) }
        return text
    }

    nonisolated(unsafe) static let decision = try! Regex(
        #"\b(?:we(?:'ve| have)? (?:decided|agreed)|the decision is|decided to|let'?s go with|we(?:'ll| will)? go with|we(?:'ll| will)? (?:drop|keep|ship|adopt|postpone|switch to|move to|stay with)|^agreed\b)"#
    ).ignoresCase()

    static func isDecision(_ sentence: String) -> Bool { sentence.contains(decision) }

    nonisolated(unsafe) static let asked = try! Regex(
        #"(?<name>[A-Z][a-z]+),\s*(?:(?:could|can|would|will)\s+you\s+(?:please\s+)?|please\s+)(?<task>.+)$"#)
    nonisolated(unsafe) static let named = try! Regex(
        #"^(?<name>[A-Z][a-z]+)\s+(?:will|is going to|'ll|is taking|takes)\s+(?<task>.+)$"#)
    nonisolated(unsafe) static let offered = try! Regex(
        #"\b(?:I will|I'll|I am going to|I'm going to|I can|let me|I'll go ahead and|I will take care of)\s+(?<task>.+)$"#
    ).ignoresCase()
    nonisolated(unsafe) static let flagged = try! Regex(#"^(?:action item|todo|to do)\s*[:,-]\s*(?<task>.+)$"#)
        .ignoresCase()

    static let weekday = "monday|tuesday|wednesday|thursday|friday|saturday|sunday"
    static let month =
        "january|february|march|april|may|june|july|august|september|october|november|december|jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec"
    static let ordinal =
        "first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|eleventh|twelfth|thirteenth|fourteenth|"
        + "fifteenth|sixteenth|seventeenth|eighteenth|nineteenth|twentieth|thirtieth|"
        + "(?:twenty|thirty)[- ]?(?:first|second|third|fourth|fifth|sixth|seventh|eighth|ninth)"
    /// "by Thursday", "before the end of the month", "on the 12th", "for next week", "by March 3".
    nonisolated(unsafe) static let dueWithPreposition = try! Regex(
        #"\s*,?\s*\b(?:by|before|until|on|no later than|due|for)\s+(?<due>(?:the\s+)?(?:end of (?:the )?(?:day|week|month|sprint|quarter)|next (?:week|month|sprint|"#
            + weekday + #")|this (?:week|month|afternoon|evening|morning)|tomorrow|tonight|today|"# + weekday
            + #"|\d{1,2}(?:st|nd|rd|th)?(?: of (?:"# + month + #"))?|(?:"# + month + #") \d{1,2}(?:st|nd|rd|th)?|(?:"#
            + ordinal + #")(?: of (?:"# + month + #"))?))\b"#
    ).ignoresCase()
    /// "tomorrow", "this afternoon", "next week", "at the end of the day", "after lunch".
    nonisolated(unsafe) static let dueBare = try! Regex(
        #"\s*,?\s*\b(?<due>today|tomorrow|tonight|after (?:lunch|the meeting|the call)|this (?:morning|afternoon|evening|week)|next (?:week|month|sprint|"#
            + weekday + #")|(?:at )?the end of (?:the )?(?:day|week|month))\b"#
    ).ignoresCase()

    /// An action item in one sentence: who (when named), the task, the due phrase.
    static func actionItem(in sentence: String) -> (owner: String?, task: String, due: String?)? {
        let text = stripLeading(sentence)
        var owner: String?
        var task: Substring
        if let m = text.firstMatch(of: asked), let name = m["name"]?.substring, isName(name),
            let t = m["task"]?.substring
        {
            owner = String(name)
            task = t
        } else if let m = text.firstMatch(of: flagged), let t = m["task"]?.substring {
            task = t
        } else if text.hasSuffix("?") {
            return nil
        } else if let m = text.firstMatch(of: named), let name = m["name"]?.substring, isName(name),
            let t = m["task"]?.substring
        {
            owner = String(name)
            task = t
        } else if let m = text.firstMatch(of: offered), let t = m["task"]?.substring {
            task = t
        } else {
            return nil
        }
        var words = String(task)
        for prefix in ["also ", "then ", "just ", "go ahead and ", "take care of "]
        where words.lowercased().hasPrefix(prefix) {
            words.removeFirst(prefix.count)
        }
        let lower = words.lowercased()
        // "I will be ...", "I'll not ...", "I can see ..." are not tasks.
        for non in ["be ", "not ", "see ", "say ", "think ", "tell you", "agree", "hear ", "try to remember"]
        where lower.hasPrefix(non) {
            return nil
        }
        var due: String?
        for pattern in [dueWithPreposition, dueBare] {
            if let m = words.firstMatch(of: pattern), let d = m["due"]?.substring {
                due = String(d)
                words.removeSubrange(m.range)
                break
            }
        }
        let cleaned = words.trimmingCharacters(in: CharacterSet(charactersIn: " .,;:!?"))
        guard cleaned.split(separator: " ").count >= 2 else { return nil }
        return (owner, cleaned, due)
    }
}
