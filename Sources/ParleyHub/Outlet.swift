public import DequeModule
public import NIOCore

/// Where a subscriber's messages go when its connection is pushed to from the event loop
/// (the server's sockets) rather than pulled with `Subscriber.next()` (tests, other readers).
/// Every requirement is called on `eventLoop`.
public protocol Outlet: AnyObject, Sendable {
    /// The connection's event loop: deliveries to all outlets of one loop share one hop.
    var eventLoop: any EventLoop { get }
    /// Whether the socket takes more now. When false, nothing is written until the subscriber's
    /// `resume()` is called (the connection's writability came back).
    var isWritable: Bool { get }
    /// Writes the messages, then a ping frame when `ping` is true, and flushes once.
    func write(_ messages: Deque<ByteBuffer>, ping: Bool)
    /// Ends the connection for `reason` (never called with `clientClosed` twice).
    func close(_ reason: CloseReason)
}
