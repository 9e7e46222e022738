public import Foundation

/// A due phrase as people say it ("before Monday", "by the 12th", "end of the month", "in two
/// weeks", "tomorrow") turned into the date it means, counted from the day it was said (in
/// UTC). Nil when the phrase names no day ("soon", "when we can").
public enum DueDate {
    static let weekdays = ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"]
    static let months = [
        "january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
        "november", "december",
    ]
    static let numbers = [
        "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
        "a": 1, "an": 1,
    ]

    static var calendar: Calendar {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar
    }

    /// The date as `YYYY-MM-DD`, or nil.
    public static func date(of phrase: String, saidOn day: Date) -> String? {
        guard let date = resolve(phrase, from: day) else { return nil }
        let parts = calendar.dateComponents([.year, .month, .day], from: date)
        return String(format: "%04d-%02d-%02d", parts.year ?? 0, parts.month ?? 0, parts.day ?? 0)
    }

    static func resolve(_ phrase: String, from said: Date) -> Date? {
        let calendar = calendar
        let today = calendar.startOfDay(for: said)
        let text = phrase.lowercased()
        let words = text.split { !($0.isLetter || $0.isNumber || $0 == "-") }.map(String.init)
        func days(_ n: Int) -> Date? { calendar.date(byAdding: .day, value: n, to: today) }
        let weekday = calendar.component(.weekday, from: today)  // 1 = Sunday

        // 2026-12-12
        if let iso = words.first(where: { $0.count == 10 && $0.split(separator: "-").count == 3 }) {
            let parts = iso.split(separator: "-").compactMap { Int($0) }
            if parts.count == 3 {
                return calendar.date(from: DateComponents(year: parts[0], month: parts[1], day: parts[2]))
            }
        }
        if text.contains("day after tomorrow") { return days(2) }
        if words.contains("tomorrow") { return days(1) }
        if words.contains("today") || words.contains("tonight") || text.contains("this afternoon")
            || text.contains("this morning") || text.contains("this evening") || text.contains("end of day")
            || words.contains("eod")
        {
            return days(0)
        }
        // in three days, in 2 weeks
        if let at = words.firstIndex(of: "in"), at + 2 < words.count {
            let count = Int(words[at + 1]) ?? numbers[words[at + 1]]
            if let count {
                if words[at + 2].hasPrefix("day") { return days(count) }
                if words[at + 2].hasPrefix("week") { return days(7 * count) }
            }
        }
        // Monday, before Monday, next Monday: the next one after the day it was said.
        if let name = words.first(where: { weekdays.contains($0) }), let target = weekdays.firstIndex(of: name) {
            let ahead = (target + 1 - weekday + 7) % 7
            return days(ahead == 0 ? 7 : ahead)
        }
        if text.contains("end of the week") || text.contains("end of week") || text.contains("this week") {
            return days((6 - weekday + 7) % 7)  // Friday
        }
        if text.contains("next week") { return days((2 - weekday + 7) % 7 == 0 ? 7 : (2 - weekday + 7) % 7) }
        let month = calendar.component(.month, from: today)
        let year = calendar.component(.year, from: today)
        if text.contains("end of the month") || text.contains("end of month") || text.contains("this month") {
            let next = calendar.date(from: DateComponents(year: year, month: month + 1, day: 1))!
            return calendar.date(byAdding: .day, value: -1, to: next)
        }
        if text.contains("next month") {
            return calendar.date(from: DateComponents(year: year, month: month + 1, day: 1))
        }
        // December 12, 12 December, Dec 12th: this year's, or next year's once passed.
        let dayNumber = { (word: String) -> Int? in
            let digits = word.prefix { $0.isNumber }
            guard !digits.isEmpty, let n = Int(digits), (1...31).contains(n),
                word.count == digits.count || ["st", "nd", "rd", "th"].contains(String(word.dropFirst(digits.count)))
            else { return nil }
            return n
        }
        if let at = words.firstIndex(where: { word in months.contains { $0.hasPrefix(word) && word.count >= 3 } }) {
            let monthNumber = months.firstIndex { $0.hasPrefix(words[at]) }! + 1
            let near = [at + 1, at - 1, at - 2].filter { words.indices.contains($0) }  // 3rd of March
            if let n = near.lazy.compactMap({ dayNumber(words[$0]) }).first,
                let date = calendar.date(from: DateComponents(year: year, month: monthNumber, day: n))
            {
                return date < today ? calendar.date(byAdding: .year, value: 1, to: date) : date
            }
        }
        // the 12th, by the 12: this month's, or next month's once passed.
        if let at = words.firstIndex(of: "the"), at + 1 < words.count, let n = dayNumber(words[at + 1]) {
            let day = calendar.component(.day, from: today)
            return calendar.date(from: DateComponents(year: year, month: n >= day ? month : month + 1, day: n))
        }
        return nil
    }
}
