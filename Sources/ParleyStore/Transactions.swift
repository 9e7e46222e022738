public import Logging
public import NIOCore
public import SQLKit
import Synchronization

/// Runs a body inside one transaction on one connection: committed when it returns, rolled back
/// when it throws.
public protocol SQLTransactor: Sendable {
    func transaction<T: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> T) async throws -> T
}

extension SQLTransactor {
    /// BEGIN, the body, COMMIT; ROLLBACK when anything fails.
    static func run<T: Sendable>(
        on database: any SQLDatabase, begin: SQLQueryString = "BEGIN",
        _ body: @Sendable (any SQLDatabase) async throws -> T
    ) async throws -> T {
        try await database.raw(begin).run()
        do {
            let result = try await body(database)
            try await database.raw("COMMIT").run()
            return result
        } catch {
            try? await database.raw("ROLLBACK").run()
            throw error
        }
    }
}

/// Transactions on a database whose `withSession` hands out one connection of a pool
/// (PostgreSQL): concurrent transactions run on different connections.
struct PooledTransactor: SQLTransactor {
    let database: any SQLDatabase

    func transaction<T: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        try await database.withSession { connection in try await Self.run(on: connection, body) }
    }
}

/// Transactions on a single connection (SQLite) that the store's other statements share
/// through a ``SerializedDatabase`` holding the same lock: no statement lands inside a
/// transaction, and one connection never meets another's write lock.
struct SerialTransactor: SQLTransactor {
    let database: any SQLDatabase
    let lock: AsyncLock

    func transaction<T: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        try await lock.withLock { try await Self.run(on: database, begin: "BEGIN IMMEDIATE", body) }
    }
}

/// A database whose statements each wait for `lock`, so they never run inside a transaction
/// that ``SerialTransactor`` holds on the same connection.
struct SerializedDatabase: SQLDatabase {
    let base: any SQLDatabase
    let lock: AsyncLock

    var logger: Logger { base.logger }
    var eventLoop: any EventLoop { base.eventLoop }
    var version: (any SQLDatabaseReportedVersion)? { base.version }
    var dialect: any SQLDialect { base.dialect }
    var queryLogLevel: Logger.Level? { base.queryLogLevel }

    func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> Void)
        -> EventLoopFuture<Void>
    {
        eventLoop.makeFutureWithTask { try await self.execute(sql: query, onRow) }
    }

    func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> Void) async throws {
        try await lock.withLock { try await base.execute(sql: query, onRow) }
    }
}

/// A first-come, first-served lock for async code (an actor would let a second caller in at
/// the first one's `await`). A task cancelled while it waits stops waiting (CancellationError)
/// and never takes the lock. No package in Parley's list offers an async mutex; SQLite's one
/// connection needs one so that no statement lands inside another's transaction.
final class AsyncLock: Sendable {
    private struct State {
        var held = false
        var waiting: [(id: UInt64, continuation: CheckedContinuation<Void, any Error>)] = []
        var nextID: UInt64 = 0
    }
    private let state = Mutex(State())

    func withLock<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        try await acquire()
        defer { release() }
        return try await body()
    }

    private func acquire() async throws {
        let id = state.withLock { state in
            state.nextID += 1
            return state.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let granted = state.withLock { state -> Bool? in
                    if Task.isCancelled { return nil }
                    if !state.held {
                        state.held = true
                        return true
                    }
                    state.waiting.append((id, continuation))
                    return false
                }
                switch granted {
                case true?: continuation.resume()
                case nil: continuation.resume(throwing: CancellationError())
                case false?: break  // resumed by `release` or by the cancellation handler
                }
            }
        } onCancel: {
            let waiter = state.withLock { state -> CheckedContinuation<Void, any Error>? in
                guard let index = state.waiting.firstIndex(where: { $0.id == id }) else { return nil }
                return state.waiting.remove(at: index).continuation
            }
            waiter?.resume(throwing: CancellationError())
        }
    }

    private func release() {
        let next = state.withLock { state -> CheckedContinuation<Void, any Error>? in
            if state.waiting.isEmpty {
                state.held = false
                return nil
            }
            return state.waiting.removeFirst().continuation
        }
        next?.resume()  // the lock passes to it still held
    }
}
