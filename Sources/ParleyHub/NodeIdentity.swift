import Foundation

/// This process's name in what processes share through the store (job leases, presence): the
/// host, the process id and a random tail, so a restarted process is a different one.
public enum NodeIdentity {
    public static let current: String = {
        let host = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "host"
        let alphabet = Array("abcdefghijkmnpqrstuvwxyz23456789")
        let tail = String((0..<6).map { _ in alphabet[Int.random(in: 0..<alphabet.count)] })
        return "\(host)-\(ProcessInfo.processInfo.processIdentifier)-\(tail)"
    }()
}
