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
        let connection: SQLiteConnection
        do {
            connection = try await SQLiteConnection.open(storage: .file(path: path), logger: logger)
        } catch {
            throw StoreError.unavailable("cannot open the database \(path): \(error)")
        }
        let database = connection.sql(queryLogLevel: .trace)
        for pragma in ["PRAGMA journal_mode = WAL", "PRAGMA synchronous = NORMAL", "PRAGMA foreign_keys = ON"] {
            try await database.raw(SQLQueryString(pragma)).run()
        }
        let store = SQLStore(database: database, onClose: { try await connection.close() })
        try await store.migrate()
        return store
    }
}
