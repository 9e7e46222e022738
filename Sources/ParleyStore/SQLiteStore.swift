public import Foundation
public import Logging
import SQLKit
import SQLiteKit

extension SQLStore {
    /// The embedded default: one SQLite file (write-ahead log, foreign keys on), created with its
    /// folder when missing.
    public static func sqlite(path: String, logger: Logger) async throws -> SQLStore {
        let folder = (path as NSString).deletingLastPathComponent
        if !folder.isEmpty {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        }
        // One connection. Transactions (appends, resets) and single statements take turns
        // through one lock, so no statement lands inside a transaction.
        let connection: SQLiteConnection
        do {
            connection = try await SQLiteConnection.open(storage: .file(path: path), logger: logger)
        } catch {
            throw StoreError.unavailable("cannot open the database \(path): \(error)")
        }
        let raw = connection.sql(queryLogLevel: .trace)
        for pragma in ["PRAGMA journal_mode = WAL", "PRAGMA synchronous = NORMAL", "PRAGMA foreign_keys = ON"] {
            try await raw.raw(SQLQueryString(pragma)).run()
        }
        let lock = AsyncLock()
        let store = SQLStore(
            database: SerializedDatabase(base: raw, lock: lock),
            transactor: SerialTransactor(database: raw, lock: lock),
            onClose: { try await connection.close() })
        do {
            try await store.migrate()
        } catch {
            try? await store.close()
            throw StoreError.unavailable("cannot bring the database \(path) up to date: \(error)")
        }
        return store
    }
}
