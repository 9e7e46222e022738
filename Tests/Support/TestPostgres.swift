public import Foundation
import Logging
import NIOPosix
import PostgresKit

/// PostgreSQL for the tests: the server make test starts (PARLEY_TEST_POSTGRES_URL), and a new
/// empty database in it for each test, so tests running at once never share tables.
public enum TestPostgres {
    public struct NotConfigured: Error, CustomStringConvertible {
        public var description: String {
            "PARLEY_TEST_POSTGRES_URL is not set: make test starts PostgreSQL with scripts/test-postgres.sh; "
                + "by hand: export PARLEY_TEST_POSTGRES_URL=$(scripts/test-postgres.sh start /tmp/parley-pg)"
        }
    }

    public static var adminURL: String {
        get throws {
            guard let url = ProcessInfo.processInfo.environment["PARLEY_TEST_POSTGRES_URL"], !url.isEmpty else {
                throw NotConfigured()
            }
            return url
        }
    }

    /// Creates an empty database and returns its URL.
    public static func freshDatabase() async throws -> String {
        let admin = try adminURL
        let name = "parley_test_\(UUID().uuidString.prefix(12).lowercased().replacingOccurrences(of: "-", with: "_"))"
        let configuration = try SQLPostgresConfiguration(url: admin)
        let connection = try await PostgresConnection.connect(
            on: MultiThreadedEventLoopGroup.singleton.any(), configuration: configuration.coreConfiguration, id: 1,
            logger: Logger(label: "test-postgres"))
        do {
            try await connection.query(
                PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"), logger: Logger(label: "test"))
        } catch {
            try? await connection.close()
            throw error
        }
        try await connection.close()
        guard var components = URLComponents(string: admin) else { throw NotConfigured() }
        components.path = "/" + name
        return components.string!
    }
}
