#if canImport(Glibc)
import Glibc
#endif

/// Watches message content for bare CR, bare LF and over-long lines, across chunk boundaries, and
/// counts the `Received:` fields of its header section (loop detection).
///
/// Used for BDAT chunks (RFC 3030) and, inside ``SMTPCommandParser``, for DATA. A line is limited to
/// 1000 octets including its CRLF (RFC 5321 §4.5.3.1.6).
public struct ContentChecker: Hashable, Sendable {
    /// What the content contained so far.
    public private(set) var flags = ContentFlags()
    private var previousWasCR = false
    private var lineLength = 0
    private var hops = HopCounter()
    /// The longest permitted line including CRLF.
    public static let maximumLineLength = 1000

    /// A checker at the start of a message.
    public init() {}

    /// Feeds the next bytes of content.
    ///
    /// Works a line at a time: `memchr` finds each LF, and the line before it is checked for a CR that
    /// is not its last octet, so the cost is per line rather than per octet.
    public mutating func feed(_ bytes: UnsafeRawBufferPointer) {
        var previousWasCR = self.previousWasCR
        var lineLength = self.lineLength
        var bare = flags.bareLineEnding
        var long = flags.overlongLine
        let n = bytes.count
        if n > 0, let base = bytes.baseAddress {
            var i = 0
            while i < n {
                let k = memchr(base + i, 0x0A, n - i).map { base.distance(to: UnsafeRawPointer($0)) } ?? n
                // [i, k): octets of the current line up to its LF (or the end of this input).
                if k > i {
                    if previousWasCR { bare = true }  // a CR that ended the previous input, then no LF
                    if k - 1 > i, memchr(base + i, 0x0D, k - 1 - i) != nil { bare = true }  // CR inside the line
                    previousWasCR = bytes[k - 1] == 0x0D
                    lineLength += k - i
                    // The longest line is judged at its last octet: CRLF counts 2 only once the CR is there.
                    if lineLength > Self.maximumLineLength - 2 + (previousWasCR ? 1 : 0) { long = true }
                }
                if k == n { break }
                if !previousWasCR { bare = true }  // LF without CR
                lineLength = 0
                previousWasCR = false
                i = k + 1
            }
        }
        self.previousWasCR = previousWasCR
        self.lineLength = lineLength
        flags.bareLineEnding = bare
        flags.overlongLine = long
        flags.octets += bytes.count
        hops.feed(bytes)  // returns at once after the header section
        flags.receivedFields = hops.hops
    }

    /// Marks the end of the content: a CR left dangling at the very end is bare; a last line without
    /// CRLF is noted.
    public mutating func finish() {
        if previousWasCR { flags.bareLineEnding = true }
        if lineLength > 0 { flags.missingFinalCRLF = true }
        previousWasCR = false
        lineLength = 0
    }
}

/// Facts about a message's content that decide whether it may be accepted.
public struct ContentFlags: Hashable, Sendable {
    /// A CR not followed by LF, or an LF not preceded by CR, was seen (SMTP smuggling shape).
    public var bareLineEnding = false
    /// A line longer than 1000 octets including CRLF was seen.
    public var overlongLine = false
    /// The content (BDAT) did not end with CRLF.
    public var missingFinalCRLF = false
    /// Octets of content, after dot-unstuffing, as they will be stored with CRLF line ends.
    public var octets = 0
    /// `Received:` fields in the header section (RFC 5321 §6.3: too many means a mail loop).
    public var receivedFields = 0

    /// No flags, zero octets.
    public init() {}
}
