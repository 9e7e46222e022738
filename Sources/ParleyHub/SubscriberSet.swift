/// One channel's subscribers by id, with the array every delivery iterates kept between changes.
struct SubscriberSet {
    private var byID: [Int: Subscriber] = [:] {
        didSet { snapshot = nil }
    }
    private var snapshot: [Subscriber]?
    private var nextID = 1

    var count: Int { byID.count }

    /// An id no subscriber of this channel has had.
    mutating func newID() -> Int {
        defer { nextID += 1 }
        return nextID
    }

    mutating func insert(_ subscriber: Subscriber) { byID[subscriber.id] = subscriber }

    /// Removes the subscriber; false when it was gone already.
    mutating func remove(_ subscriber: Subscriber) -> Bool { byID.removeValue(forKey: subscriber.id) != nil }

    /// Everyone subscribed.
    mutating func everyone() -> [Subscriber] {
        if let snapshot { return snapshot }
        let all = Array(byID.values)
        snapshot = all
        return all
    }

    /// The subscribers already closed (a full send queue, a silent client).
    var closed: [Subscriber] { byID.values.filter { $0.closeReason != nil } }
}
