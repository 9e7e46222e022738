import Metrics
import Synchronization

/// The hub's counters, in swift-metrics (exported by the server as Prometheus text).
/// Dimensions stay low-cardinality: no meeting or user ids.
struct HubMetrics: Sendable {
    let connections = Gauge(label: "parley_ws_connections")
    let connectionsTotal = Counter(label: "parley_ws_connections_total")
    let events = Counter(label: "parley_events_published_total")
    let deliveries = Counter(label: "parley_ws_messages_delivered_total")
    let slowClients = Counter(label: "parley_ws_slow_clients_closed_total")
    /// Users' own sockets (`/ws/user`), apart from the meetings' watchers.
    let userConnections = Gauge(label: "parley_ws_user_connections")
    private let open = ManagedCount()
    private let openUsers = ManagedCount()

    func published(events count: Int, deliveries delivered: Int, slow: Int) {
        events.increment(by: count)
        if delivered > 0 { deliveries.increment(by: delivered) }
        if slow > 0 { slowClients.increment(by: slow) }
    }

    func connected() {
        connectionsTotal.increment()
        connections.record(open.add(1))
    }

    func disconnected() {
        connections.record(open.add(-1))
    }

    func userConnected() {
        userConnections.record(openUsers.add(1))
    }

    func userDisconnected() {
        userConnections.record(openUsers.add(-1))
    }
}

final class ManagedCount: Sendable {
    private let value = Atomic<Int>(0)
    func add(_ delta: Int) -> Int { value.add(delta, ordering: .relaxed).newValue }
}
