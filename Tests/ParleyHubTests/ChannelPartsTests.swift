import NIOCore
import ParleyEvents
import ParleyStore
import Testing

@testable import ParleyHub

/// The parts a channel keeps under its lock, each alone: the delivery order, the write queue and
/// the audience. (The channel with a store around them is in HubTests and SharedLogTests.)
@Suite struct ChannelPartsTests {
    static func message(_ offset: Int) -> (offset: Int, message: ByteBuffer) {
        (offset, ByteBuffer(string: "\(offset)"))
    }
    static func text(_ messages: [ByteBuffer]) -> [String] { messages.map { String(buffer: $0) } }

    @Test func eventsArrivingOutOfOrderAreDeliveredInOrderAndAGapIsReadAtOnce() {
        var order = DeliveryOrder(epoch: "e1", latest: 2, keep: 8)
        #expect(step(&order) { $0.accept([Self.message(4), Self.message(5)], epoch: "e1") }.isEmpty)
        #expect(order.published == 2)
        #expect(order.known == 5)
        // The gap (offset 3) is read even while the channel writes.
        #expect(step(&order) { $0.claimFill(writing: true) })
        #expect(!step(&order) { $0.claimFill(writing: true) })  // one read at a time
        let range = order.nextRead()
        #expect(range?.after == 2)
        #expect(range?.through == 3)
        #expect(Self.text(step(&order) { $0.accept([Self.message(3)], epoch: "e1") }) == ["3", "4", "5"])
        #expect(order.published == 5)
        #expect(step(&order) { $0.nextRead() } == nil)  // caught up: the read ends
        #expect(!order.filling)
        // Replayed from memory, and not again: delivered events are not delivered twice.
        #expect(Self.text(order.kept(after: 2) ?? []) == ["3", "4", "5"])
        #expect(step(&order) { $0.accept([Self.message(5)], epoch: "e1") }.isEmpty)
    }

    @Test func anOffsetOnlyAnnouncedIsReadOnceTheChannelStopsWriting() {
        var order = DeliveryOrder(epoch: "e1", latest: 0, keep: 8)
        #expect(!step(&order) { $0.observe(epoch: "e1", latest: 3) })
        #expect(!step(&order) { $0.claimFill(writing: true) })
        #expect(step(&order) { $0.claimFill(writing: false) })
        #expect(step(&order) { $0.nextRead() }?.through == 3)
        order.stopFilling()
        #expect(step(&order) { $0.claimFill(writing: false) })
    }

    @Test func aNewEpochStartsOverAndEventsOfTheOldOneAreDropped() {
        var order = DeliveryOrder(epoch: "e1", latest: 0, keep: 8)
        #expect(step(&order) { $0.accept([Self.message(1)], epoch: "e1") }.count == 1)
        #expect(order.recovers(since: 1, epoch: "e1"))
        #expect(step(&order) { $0.observe(epoch: "e2", latest: 0) })
        #expect(order.published == 0)
        #expect(step(&order) { $0.accept([Self.message(1)], epoch: "e1") }.isEmpty)
        #expect(order.kept(after: 0) == [])
        #expect(!order.recovers(since: 1, epoch: nil))  // offset 1 is not this log's yet
        #expect(!order.recovers(since: 0, epoch: "e1"))  // the client knew the old log
        #expect(order.recovers(since: 0, epoch: nil))
        #expect(!order.recovers(since: nil, epoch: "e2"))
    }

    @Test func onlyTheLatestEventsAreKeptForReplay() {
        var order = DeliveryOrder(epoch: "e1", latest: 0, keep: 2)
        _ = order.accept((1...4).map(Self.message), epoch: "e1")
        #expect(Self.text(order.kept(after: 2) ?? []) == ["3", "4"])
        #expect(order.kept(after: 1) == nil)  // offset 2 is no longer kept: read the store
        #expect(order.kept(after: 4) == [])
    }

    static func pending(lease: String? = nil, latest: Int? = nil) -> MeetingChannel.Pending {
        MeetingChannel.Pending(
            data: .status(.init(stage: .transcription, state: .progress, detail: nil)),
            requirement: .init(lease: lease, latest: latest), result: Completion())
    }

    @Test func writesGoInBatchesOfOneRequirementAndACompareAndAppendAlone() {
        var queue = WriteQueue()
        #expect(step(&queue) { $0.add(Self.pending(lease: "a")) })  // the first caller writes
        #expect(!step(&queue) { $0.add(Self.pending(lease: "a")) })
        #expect(!step(&queue) { $0.add(Self.pending(lease: "b")) })
        #expect(!step(&queue) { $0.add(Self.pending(latest: 7)) })
        #expect(!step(&queue) { $0.add(Self.pending(latest: 7)) })
        #expect(!step(&queue) { $0.add(Self.pending()) })
        var batches: [[MeetingChannel.Requirement]] = []
        for _ in 0..<5 { batches.append(queue.nextBatch().map(\.requirement)) }
        #expect(batches.map(\.count) == [2, 1, 1, 1, 1])
        #expect(batches[0].allSatisfy { $0.lease == "a" })
        #expect(batches[2].first?.latest == 7)
        #expect(queue.writing)
        #expect(step(&queue) { $0.nextBatch() }.isEmpty)
        #expect(!queue.writing)  // the writer stopped: the next caller writes
        #expect(step(&queue) { $0.add(Self.pending()) })
    }

    static let ana = Viewer(userID: "u_1", username: "ana")
    static let bo = Viewer(userID: "u_2", username: "bo")

    @Test func aViewerArrivesWithTheFirstConnectionAndLeavesWithTheLast() {
        var audience = Audience()
        #expect(step(&audience) { $0.connect(Self.ana) })
        #expect(!step(&audience) { $0.connect(Self.ana) })
        #expect(!step(&audience) { $0.disconnect(Self.ana) })
        #expect(audience.viewers == [Self.ana])
        #expect(step(&audience) { $0.disconnect(Self.ana) })
        #expect(audience.viewers.isEmpty)
    }

    @Test func aViewerWatchingThroughAnotherProcessNeitherArrivesNorLeavesHere() {
        var audience = Audience()
        #expect(step(&audience) { $0.observeRemote([Self.bo]) } == ([Self.bo], []))
        #expect(!step(&audience) { $0.connect(Self.bo) })
        #expect(step(&audience) { $0.connect(Self.ana) })
        #expect(audience.viewers == [Self.ana, Self.bo])
        #expect(step(&audience) { $0.observeRemote([]) } == ([], []))  // bo still watches here
        #expect(step(&audience) { $0.disconnect(Self.bo) })
        #expect(step(&audience) { $0.observeRemote([Self.ana]) } == ([], []))
        #expect(!step(&audience) { $0.disconnect(Self.ana) })  // still watching elsewhere
        #expect(step(&audience) { $0.observeRemote([]) } == ([], [Self.ana]))
    }

    @Test func theLatestViewersAreSharedOnceAndAStoppedWriteIsRetried() {
        var audience = Audience()
        #expect(!step(&audience) { $0.beginSharing() })  // nothing changed
        _ = audience.connect(Self.ana)
        #expect(step(&audience) { $0.beginSharing() })
        #expect(!step(&audience) { $0.beginSharing() })  // one write at a time
        _ = audience.connect(Self.bo)
        #expect(step(&audience) { $0.nextShare() }?.map(\.username) == ["ana", "bo"])
        #expect(step(&audience) { $0.nextShare() } == nil)  // the store has the latest: the write ends
        #expect(!step(&audience) { $0.beginSharing() })
        _ = audience.disconnect(Self.bo)
        #expect(step(&audience) { $0.beginSharing() })
        #expect(step(&audience) { $0.nextShare() }?.map(\.username) == ["ana"])
        audience.sharingStopped()  // the write failed: the sweep writes it again
        #expect(step(&audience) { $0.beginSharing() })
        #expect(step(&audience) { $0.nextShare() }?.map(\.username) == ["ana"])
    }
}

/// Runs a mutating step and returns its result (`#expect` cannot call a mutating method).
func step<Value, Result>(_ value: inout Value, _ body: (inout Value) -> Result) -> Result { body(&value) }
