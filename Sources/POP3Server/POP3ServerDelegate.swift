import NIOCore
import POP3Core

/// What the POP3 server needs from the mail system.
public protocol POP3ServerDelegate: Sendable {
    /// Checks credentials. Implementations delay failures, throttle per client IP and per account,
    /// and answer the same way whether or not the user exists.
    func authenticate(user: String, password: String, remoteIP: String) async -> Bool
    /// Locks and lists the user's maildrop. Throw ``POP3MaildropError/inUse`` when another session
    /// holds it.
    func openMaildrop(user: String) async throws -> any POP3Maildrop
}

/// A locked snapshot of one maildrop.
public protocol POP3Maildrop: AnyObject, Sendable {
    /// The messages, in order (index 0 is message 1).
    var messages: [POP3ServerStateMachine.MessageInfo] { get }
    /// Reads message `index` in chunks of at most `chunkSize` octets; `body` is called for each.
    /// Runs off the event loop.
    func read(_ index: Int, chunkSize: Int) async throws -> any POP3MessageReader
    /// The whole message `index` if it is at most `limit` octets and can be read without waiting for
    /// the disk (already in the page cache); `nil` means: use ``read(_:chunkSize:)``. Called on the
    /// event loop, so it must never block.
    func readCached(_ index: Int, limit: Int) -> ByteBuffer?
    /// Applies the UPDATE state: delete `deleted`, mark `retrieved` as seen.
    func update(deleted: Set<Int>, retrieved: Set<Int>) async throws
    /// Releases the lock (called exactly once, after UPDATE or when the session ends without it).
    func release() async
}

extension POP3Maildrop {
    /// Always stream.
    public func readCached(_ index: Int, limit: Int) -> ByteBuffer? { nil }
}

/// Sequential reads of one stored message.
public protocol POP3MessageReader: AnyObject, Sendable {
    /// The next chunk, or `nil` at the end.
    func next() async throws -> ByteBuffer?
    /// Closes the file.
    func close() async
}

/// Why a maildrop could not be opened.
public enum POP3MaildropError: Error, Hashable, Sendable {
    /// Another session holds the maildrop (`-ERR [IN-USE]`).
    case inUse
}
