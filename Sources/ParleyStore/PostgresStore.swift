public import Foundation
public import Logging
import NIOCore
import NIOPosix
import PostgresKit

extension SQLStore {
    /// The store on PostgreSQL (`postgres://user:password@host:port/database`): the same SQL as
    /// on SQLite, over a pool of `connections`, migrated on open. The connections run on
    /// ``databaseLoop``, not on the server's loops, where a query's answer would wait behind the
    /// WebSocket writes of a burst (measured: 47 instead of 100 events/s to 1,000 watchers).
    public static func postgres(url: String, logger: Logger, connections: Int = 8) async throws -> SQLStore {
        let configuration: SQLPostgresConfiguration
        do {
            configuration = try SQLPostgresConfiguration(url: url)
        } catch {
            throw StoreError.unavailable("the database address is not a postgres:// URL: \(redacted(url))")
        }
        do {
            try await migrateAlone(configuration, logger: logger)
        } catch {
            throw StoreError.unavailable("cannot use PostgreSQL at \(redacted(url)): \(String(reflecting: error))")
        }
        let loop = databaseLoop
        let pool = EventLoopGroupConnectionPool(
            source: PostgresConnectionSource(sqlConfiguration: configuration),
            maxConnectionsPerEventLoop: connections, logger: logger, on: loop)
        let shared = SharedPool(pool: pool)
        let database = pool.database(logger: logger).sql(queryLogLevel: .trace)
        let listener = PostgresListener(configuration: configuration.coreConfiguration, loop: loop, logger: logger)
        return SQLStore(
            database: database, transactor: PooledTransactor(database: database),
            follow: { handle in await listener.follow(handle) },
            isTransient: isTransient, describe: describe,
            onClose: { try await shared.pool.shutdownAsync() })
    }

    /// One event loop thread for every PostgreSQL connection of the process (the pools and the
    /// listeners of all its stores), for the life of the process, like NIO's singleton group.
    static let databaseLoop = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    /// Migrates on one connection holding an advisory lock, so nodes starting together take
    /// turns (the second finds the versions recorded and does nothing).
    static func migrateAlone(_ configuration: SQLPostgresConfiguration, logger: Logger) async throws {
        let connection = try await PostgresConnection.connect(
            on: MultiThreadedEventLoopGroup.singleton.any(), configuration: configuration.coreConfiguration, id: 0,
            logger: logger)
        let database = connection.sql(queryLogLevel: .trace)
        do {
            try await database.raw("SELECT pg_advisory_lock(\(literal: migrationLock))").run()
            try await SQLStore(database: database, transactor: PooledTransactor(database: database)).migrate()
            try await database.raw("SELECT pg_advisory_unlock(\(literal: migrationLock))").run()
        } catch {
            try? await connection.close()
            throw error
        }
        try await connection.close()
    }

    /// Errors that pass when the server is back: a lost or refused connection, the server
    /// shutting down or starting, a pool waiting too long for a connection, a serialization
    /// conflict.
    static func isTransient(_ error: any Error) -> Bool {
        switch error {
        case let error as PSQLError:
            switch error.code {
            case .serverClosedConnection, .connectionError, .uncleanShutdown: return true
            case .server:
                let state = error.serverInfo?[.sqlState] ?? ""
                return state.hasPrefix("08") || state.hasPrefix("57P") || state == "40001" || state == "40P01"
            default: return false
            }
        case is ConnectionPoolTimeoutError, is NIOConnectionError, is ChannelError, is IOError:
            return true
        default:
            return false
        }
    }

    /// Words for a log line: PostgreSQL's code, state and message, never the query or its
    /// values (they can hold meeting content).
    static func describe(_ error: any Error) -> String {
        guard let error = error as? PSQLError else { return "\(error)" }
        var words = "PostgreSQL \(error.code)"
        if let state = error.serverInfo?[.sqlState] { words += " \(state)" }
        if let message = error.serverInfo?[.message] { words += ": \(message)" }
        if let underlying = error.underlying { words += " (\(underlying))" }
        return words
    }

    /// The advisory lock key Parley's migrations hold ("parley" in ASCII).
    static let migrationLock = 0x7061_726C_6579

    /// The URL without its password, for messages and logs.
    static func redacted(_ url: String) -> String {
        guard var components = URLComponents(string: url), components.password != nil else { return url }
        components.password = "***"
        return components.string ?? "postgres://..."
    }
}

/// AsyncKit's pool guards its state with a lock but is not marked `Sendable`; this box lets the
/// store's close function hold it.
private final class SharedPool: @unchecked Sendable {
    let pool: EventLoopGroupConnectionPool<PostgresConnectionSource>

    init(pool: EventLoopGroupConnectionPool<PostgresConnectionSource>) {
        self.pool = pool
    }
}

/// LISTENs on Parley's notification channel on a connection of its own and turns the
/// payloads into `StoreChange`s, in the task that follows them. A lost connection is opened
/// again (backoff up to 5 s) and announced as `.resumed`, because notifications sent meanwhile
/// are gone. Cancelling the task closes the connection and ends the following.
struct PostgresListener: Sendable {
    let configuration: PostgresConnection.Configuration
    let loop: any EventLoopGroup
    let logger: Logger

    func follow(_ handle: @escaping @Sendable (StoreChange) async -> Void) async {
        var delay = 0.1
        while !Task.isCancelled {
            do {
                let connection = try await PostgresConnection.connect(
                    on: loop.any(), configuration: configuration, id: 0, logger: logger)
                do {
                    try await withTaskCancellationHandler {
                        try await connection.listen(on: SQLStore.notificationChannel) { notifications in
                            // Listening now: whatever was announced before is read from the tables.
                            await handle(.resumed)
                            delay = 0.1
                            for try await notification in notifications {
                                if let change = Self.change(notification.payload) { await handle(change) }
                            }
                        }
                    } onCancel: {
                        let closing: EventLoopFuture<Void> = connection.close()
                        closing.whenComplete { _ in }
                    }
                } catch {
                    try? await connection.close()
                    throw error
                }
                try? await connection.close()
            } catch {
                if Task.isCancelled { break }
                logger.warning(
                    "PostgreSQL notifications interrupted; listening again",
                    metadata: ["error": "\(SQLStore.describe(error))"])
            }
            if (try? await Task.sleep(for: .seconds(delay))) == nil { break }
            delay = min(delay * 2, 5)
        }
    }

    /// `e|meeting|epoch|offset` (a log reached offset), `u|user|epoch|offset` (a user's feed
    /// did), `j` (a job was queued), `p|meeting`
    /// (who watches the meeting changed) or `x|meeting|node|message` (a message not stored).
    static func change(_ payload: String) -> StoreChange? {
        if payload.hasPrefix("x|") {
            let parts = payload.split(separator: "|", maxSplits: 3, omittingEmptySubsequences: false)
            guard parts.count == 4 else { return nil }
            return .ephemeral(meetingID: String(parts[1]), node: String(parts[2]), message: String(parts[3]))
        }
        let parts = payload.split(separator: "|", omittingEmptySubsequences: false)
        switch parts.first {
        case "e" where parts.count == 4:
            guard let latest = Int(parts[3]) else { return nil }
            return .appended(
                meetingID: String(parts[1]), position: LogPosition(epoch: String(parts[2]), latest: latest))
        case "u" where parts.count == 4:
            guard let latest = Int(parts[3]) else { return nil }
            return .userFeed(userID: String(parts[1]), position: LogPosition(epoch: String(parts[2]), latest: latest))
        case "j":
            return .jobQueued
        case "p" where parts.count == 2:
            return .presence(meetingID: String(parts[1]))
        default:
            return nil
        }
    }
}
