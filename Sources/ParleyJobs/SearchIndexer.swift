public import Logging
public import ParleyEvents
public import ParleyHub
import ParleyPluginAPI
public import ParleyStore
public import ServiceLifecycle
import Synchronization

/// Keeps the search index following the meetings' logs: a meeting this process appends to is
/// indexed again from its state (the read model) shortly after, so a correction, a rename or
/// an action item edit is searchable within `delay`; a burst of appends is one rewrite, and a
/// reader that waits (`settle`) sees its own edit. At
/// start and every `catchUpInterval` it also indexes the meetings whose index lags their log
/// (a database made before the index, another process that stopped between an append and
/// its indexing). A deleted meeting's documents go with it (`deleteMeeting`).
public final class SearchIndexer: Service, Sendable {
    let store: any Store
    let states: MeetingStates
    let delay: Duration
    let catchUpInterval: Duration
    let logger: Logger
    /// Meetings appended to since the last pass, and how many appends were seen and have been
    /// indexed (a reader waiting for them makes the next pass start at once).
    private struct Pending {
        var meetings: Set<String> = []
        var requested = 0
        var finished = 0
        var urgent = false
    }
    private let pending = Mutex(Pending())
    private let wake: AsyncStream<Void>
    private let wakeSignal: AsyncStream<Void>.Continuation

    public init(
        hub: Hub, states: MeetingStates, delay: Duration = .milliseconds(200),
        catchUpInterval: Duration = .seconds(300), logger: Logger
    ) {
        store = hub.store
        self.states = states
        self.delay = delay
        self.catchUpInterval = catchUpInterval
        self.logger = logger
        (wake, wakeSignal) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1))
        hub.onAppend { [self] meetingID, _, events in
            guard events.contains(where: { Self.changesWhatIsSearched($0.data) }) else { return }
            pending.withLock {
                $0.meetings.insert(meetingID)
                $0.requested += 1
            }
            wakeSignal.yield()
        }
    }

    /// Whether an event changes the meeting's documents (provisional transcripts of speech
    /// still going on do not: the final segment replaces them).
    static func changesWhatIsSearched(_ data: EventData) -> Bool {
        switch data {
        case .transcript(let segment): segment.provisional != true
        case .speakers, .summary, .actionItems: true
        case .status(let status): status.state == .restarted
        case .uploadProgress, .error: false
        }
    }

    public func run() async throws {
        await withDiscardingTaskGroup { group in
            group.addTask {
                while !Task.isCancelled {
                    await self.catchUp()
                    try? await Task.sleep(for: self.catchUpInterval)
                }
            }
            for await _ in wake.cancelOnGracefulShutdown() {
                // Gathers the rest of a burst, unless someone waits to read (`settle`).
                let gathered = ContinuousClock.now + delay
                while ContinuousClock.now < gathered, !pending.withLock({ $0.urgent }) {
                    try? await Task.sleep(for: .milliseconds(10))
                }
                let (meetings, target) = pending.withLock { pending in
                    defer {
                        pending.meetings.removeAll()
                        pending.urgent = false
                    }
                    return (pending.meetings, pending.requested)
                }
                for meetingID in meetings.sorted() { await index(meetingID) }
                pending.withLock { $0.finished = max($0.finished, target) }
            }
            group.cancelAll()
        }
    }

    /// Returns once what this process appended so far is indexed (at once when it is; at most
    /// `limit` later): a search or a list of action items then shows the asker's own edit of a
    /// moment ago. Appends through other processes are indexed by those.
    public func settle(within limit: Duration = .seconds(2)) async {
        let target = pending.withLock { pending -> Int? in
            guard pending.finished < pending.requested else { return nil }
            pending.urgent = true
            return pending.requested
        }
        guard let target else { return }
        wakeSignal.yield()
        let deadline = ContinuousClock.now + limit
        while pending.withLock({ $0.finished < target }), ContinuousClock.now < deadline, !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(10))
        }
    }

    /// Writes the meeting's documents again now, whatever the index reflects: who may see it
    /// changed (a member added or removed).
    public func reindex(_ meetingID: String) async {
        do {
            try await store.forgetSearchPosition(meetingID: meetingID)
        } catch {
            logger.warning(
                "cannot re-index a meeting",
                metadata: ["meeting.id": "\(meetingID)", "error": "\(store.describe(error))"])
            return
        }
        await index(meetingID)
    }

    /// Indexes every meeting whose index lags its log, a page at a time.
    public func catchUp() async {
        var tried: Set<String> = []
        while !Task.isCancelled {
            let behind: [String]
            do {
                behind = try await store.meetingsBehindSearch(limit: 100).filter { !tried.contains($0) }
            } catch {
                logger.warning("cannot list meetings to index", metadata: ["error": "\(store.describe(error))"])
                return
            }
            if behind.isEmpty { return }
            for meetingID in behind {
                tried.insert(meetingID)
                await index(meetingID)
            }
        }
    }

    /// Writes the meeting's documents as its log stands now.
    public func index(_ meetingID: String) async {
        do {
            guard let meeting = try await store.meeting(id: meetingID) else { return }
            let state = try await states.state(of: meeting)
            let readers = try await store.viewerIDs(of: meetingID)
            _ = try await store.replaceSearchDocuments(
                meetingID: meetingID, epoch: meeting.epoch, offset: state.offset, readers: readers,
                documents: Self.documents(of: state), actionItems: Self.actionItems(of: state))
        } catch {
            logger.warning(
                "cannot index a meeting for search",
                metadata: ["meeting.id": "\(meetingID)", "error": "\(store.describe(error))"])
        }
    }

    /// The meeting's action items for people's lists, each due phrase as a date counted from
    /// the day of the meeting.
    public static func actionItems(of state: MeetingState) -> [IndexedActionItem] {
        state.actionItems.map { item in
            IndexedActionItem(
                item: item.id, owner: item.owner, assignee: item.assignee, task: item.task, due: item.due,
                dueDate: item.due.flatMap { DueDate.date(of: $0, saidOn: state.createdAt) }, done: item.done,
                time: item.time)
        }
    }

    /// What is searched of a meeting: its final transcript segments (by the speaker's name
    /// shown), summary points, decisions and action items (with their owner and due phrase).
    public static func documents(of state: MeetingState) -> [SearchDocument] {
        var documents: [SearchDocument] = []
        for segment in state.segments where segment.provisional != true && !segment.text.isEmpty {
            documents.append(
                SearchDocument(
                    kind: .segment, item: segment.id, speaker: state.name(of: segment.speaker), start: segment.start,
                    text: segment.text))
        }
        if let summary = state.summary {
            for (index, point) in summary.points.enumerated() {
                documents.append(SearchDocument(kind: .summary, item: index, speaker: nil, start: nil, text: point))
            }
            for (index, decision) in summary.decisions.enumerated() {
                documents.append(
                    SearchDocument(
                        kind: .decision, item: index, speaker: nil, start: decision.time, text: decision.text))
            }
        }
        for item in state.actionItems {
            documents.append(
                SearchDocument(
                    kind: .actionItem, item: item.id, speaker: item.owner, start: item.time,
                    text: item.due.map { "\(item.task) (\($0))" } ?? item.task))
        }
        return documents
    }
}
