/// New ids for stored records: a prefix naming the kind, then 14 random characters from an
/// alphabet without look-alikes (`m_3kx9...` a meeting, `u_` a user, `e_` an event log epoch).
public enum Identifiers {
    static func make(_ prefix: String) -> String {
        let alphabet = Array("abcdefghijkmnpqrstuvwxyz23456789")
        var generator = SystemRandomNumberGenerator()
        return prefix + String((0..<14).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &generator)] })
    }
    public static func meeting() -> String { make("m_") }
    public static func user() -> String { make("u_") }
    public static func epoch() -> String { make("e_") }
    public static func webhook() -> String { make("w_") }
}
