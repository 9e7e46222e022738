public import Foundation
public import Logging
import NIOPosix
import PostgresKit

extension SQLStore {
    /// The store on PostgreSQL (`postgres://user:password@host:port/database`): the same SQL as
    /// on SQLite, over a pool of connections per event loop, migrated on open.
    public static func postgres(url: String, logger: Logger, connectionsPerEventLoop: Int = 4) async throws -> SQLStore
    {
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
        let pool = EventLoopGroupConnectionPool(
            source: PostgresConnectionSource(sqlConfiguration: configuration),
            maxConnectionsPerEventLoop: connectionsPerEventLoop, logger: logger,
            on: MultiThreadedEventLoopGroup.singleton)
        let shared = SharedPool(pool: pool)
        return SQLStore(
            database: pool.database(logger: logger).sql(queryLogLevel: .trace),
            onClose: { try await shared.pool.shutdownAsync() })
    }

    /// Migrates on one connection holding an advisory lock, so nodes starting together take
    /// turns (the second finds the versions recorded and does nothing).
    static func migrateAlone(_ configuration: SQLPostgresConfiguration, logger: Logger) async throws {
        let connection = try await PostgresConnection.connect(
            on: MultiThreadedEventLoopGroup.singleton.any(), configuration: configuration.coreConfiguration, id: 0,
            logger: logger)
        let database = connection.sql(queryLogLevel: .trace)
        do {
            try await database.raw("SELECT pg_advisory_lock(\(literal: migrationLock))").run()
            try await SQLStore(database: database).migrate()
            try await database.raw("SELECT pg_advisory_unlock(\(literal: migrationLock))").run()
        } catch {
            try? await connection.close()
            throw error
        }
        try await connection.close()
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
