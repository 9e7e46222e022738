import Foundation
import Testing

@testable import ParleyEvents

/// Due phrases as people say them, counted from the day they were said.
@Suite struct DueDateTests {
    /// Thursday 2026-12-03.
    static let thursday = Date(timeIntervalSince1970: 1_796_256_000 + 3 * 3600)

    @Test(arguments: [
        ("before Monday", "2026-12-07"),
        ("by Thursday", "2026-12-10"),  // the same weekday: next week's
        ("next friday", "2026-12-04"),
        ("today", "2026-12-03"),
        ("this afternoon", "2026-12-03"),
        ("tomorrow morning", "2026-12-04"),
        ("the day after tomorrow", "2026-12-05"),
        ("in two weeks", "2026-12-17"),
        ("in 3 days", "2026-12-06"),
        ("by the end of the week", "2026-12-04"),
        ("next week", "2026-12-07"),
        ("end of the month", "2026-12-31"),
        ("next month", "2027-01-01"),
        ("by the 12th", "2026-12-12"),
        ("for the 2nd", "2027-01-02"),
        ("December 24", "2026-12-24"),
        ("3rd of March", "2027-03-03"),
        ("Nov 30", "2027-11-30"),
        ("2027-02-01", "2027-02-01"),
    ])
    func phrasesBecomeDates(_ phrase: String, _ date: String) {
        #expect(DueDate.date(of: phrase, saidOn: Self.thursday) == date, "\(phrase)")
    }

    @Test(arguments: ["soon", "when we can", "after the release", "the 45th", ""])
    func phrasesWithoutADayHaveNone(_ phrase: String) {
        #expect(DueDate.date(of: phrase, saidOn: Self.thursday) == nil, "\(phrase)")
    }
}
