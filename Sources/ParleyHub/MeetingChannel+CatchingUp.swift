import Foundation
import Logging
import NIOCore
public import ParleyStore
import Synchronization

/// Catching up with what other processes append to the same log: gaps read from the store, in
/// offset order.
extension MeetingChannel {
    /// Hands the catching up to the hub (the state is marked `filling` already); if the hub
    /// stopped, the mark goes, and the next observation tries again.
    func startFilling() {
        if !work.submit(HubWork(.fill, self)) { state.withLock { $0.order.stopFilling() } }
    }

    /// Reads from the store what this channel has not delivered, until it has caught up with
    /// the latest offset it knows of. One read runs at a time (the hub runs it).
    func fill() async {
        var delay = Duration.milliseconds(100)
        while true {
            guard let range = state.withLock({ $0.order.nextRead() }) else { return }
            do {
                let events = try await store.events(meetingID: meetingID, after: range.after, through: range.through)
                let progressed = state.withLock { $0.order.published }
                accept(events.map { ($0.offset, ByteBuffer(string: $0.json)) }, epoch: range.epoch)
                let stuck = state.withLock { state in
                    // The store had nothing new: stop, the next notification or sweep resumes.
                    guard state.order.published == progressed && events.isEmpty else { return false }
                    state.order.stopFilling()
                    return true
                }
                if stuck { return }
            } catch {
                logger.warning(
                    "cannot read the event log to catch up; retrying",
                    metadata: ["meeting.id": "\(meetingID)", "error": "\(store.describe(error))"])
                if (try? await Task.sleep(for: delay)) == nil {
                    state.withLock { $0.order.stopFilling() }
                    return
                }
                delay = min(delay * 2, .seconds(5))
            }
        }
    }

    /// Another process (or this one) brought the log to `position`: delivers what is missing;
    /// a new epoch means the log was reset, so every subscriber is closed with `logReset`.
    public func observe(_ position: LogPosition) {
        let (reset, fill) = state.withLock { state in
            let reset = state.order.observe(epoch: position.epoch, latest: position.latest)
            return (reset, state.claimFill())
        }
        if reset { closeAll(.logReset) }
        if fill { startFilling() }
    }

    /// Reads the meeting's position from the store and observes it (after a stale write).
    func resynchronize() async {
        guard let position = try? await store.logPositions(meetingIDs: [meetingID])[meetingID] else { return }
        observe(position)
    }
}
