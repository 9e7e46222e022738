public import Foundation
import Logging
public import ParleyStore
import Synchronization

/// Users' live feeds (`/ws/user`): opened while one of the user's sockets is here.
extension Hub {
    /// Opens (or joins) the user's feed; every `acquireFeed` needs one `releaseFeed`.
    public func acquireFeed(userID: String) async throws -> UserFeed {
        if let feed = feeds.withLock({ feeds -> UserFeed? in
            feeds[userID]?.users += 1
            return feeds[userID]?.feed
        }) {
            return feed
        }
        guard let position = try await store.feedPositions(userIDs: [userID])[userID] else {
            throw StoreError(code: .notFound, message: "no account \(userID)")
        }
        let fresh = UserFeed(
            userID: userID, position: position, store: store, configuration: configuration, metrics: metrics,
            loops: loops, logger: logger, work: work)
        let (feed, opened) = feeds.withLock { feeds in
            // Someone may have opened it while the store was read: theirs wins.
            let opened = feeds[userID] == nil
            var entry = feeds[userID] ?? FeedEntry(feed: fresh)
            entry.users += 1
            feeds[userID] = entry
            return (entry.feed, opened)
        }
        // A notification written between the read and now told no open feed: look again (a
        // single process has no sweep to find it).
        if opened, let now = try? await store.feedPositions(userIDs: [userID])[userID] { feed.observe(now) }
        return feed
    }

    public func releaseFeed(userID: String) {
        feeds.withLock { feeds in
            guard var entry = feeds[userID] else { return }
            entry.users -= 1
            feeds[userID] = entry.users <= 0 ? nil : entry
        }
    }

    public func openFeed(userID: String) -> UserFeed? { feeds.withLock { $0[userID]?.feed } }

    public var openFeeds: [UserFeed] { feeds.withLock { $0.values.map(\.feed) } }

    /// Appends notifications to their users' feeds and delivers them to the users' sockets on
    /// this process now (other processes learn from the store's announcement or their sweep).
    /// Returns them numbered.
    @discardableResult
    public func notify(_ drafts: [NotificationDraft]) async throws -> [StoredNotification] {
        let stored = try await store.appendNotifications(drafts, at: Date())
        var latest: [String: LogPosition] = [:]
        for notification in stored where notification.offset > latest[notification.userID]?.latest ?? 0 {
            latest[notification.userID] = LogPosition(epoch: notification.epoch, latest: notification.offset)
        }
        for (userID, position) in latest { openFeed(userID: userID)?.observe(position) }
        return stored
    }

    /// Compares the open feeds with the store (what another process appended and whose
    /// announcement was lost) and closes the sockets of sessions that logged out elsewhere.
    func sweepFeeds() async {
        let feeds = openFeeds
        guard !feeds.isEmpty else { return }
        do {
            let positions = try await store.feedPositions(userIDs: feeds.map(\.userID))
            let sessions = feeds.reduce(into: Set<String>()) { $0.formUnion($1.sessions) }
            let loggedOut = sessions.isEmpty ? [] : try await store.revokedFamilies(Array(sessions))
            for feed in feeds {
                if let position = positions[feed.userID] { feed.observe(position) }
                if !loggedOut.isEmpty { feed.closeSessions(loggedOut) }
            }
        } catch {
            logger.warning(
                "cannot compare the open feeds with the store", metadata: ["error": "\(store.describe(error))"])
        }
    }
}
