/// A message identifier, unique per host, sortable by creation time, safe as a file name.
///
/// Shaped like Postfix's long queue IDs: microseconds since the epoch and a per-process counter in a
/// base-32 alphabet without vowels, so an ID never spells a word and never contains `/` or `.`.
public struct QueueID: Hashable, Sendable, CustomStringConvertible, Comparable {
    /// The textual form.
    public let rawValue: String

    /// Wraps an existing ID (e.g. read back from a file name).
    public init(rawValue: String) { self.rawValue = rawValue }

    /// Makes a new ID from a time (microseconds since the epoch) and a sequence number. Both parts
    /// have a fixed width (11 and 4 digits), so IDs sort by creation time, then by sequence.
    public init(microseconds: UInt64, sequence: UInt32) {
        let alphabet = Array("0123456789BCDFGHJKLMNPQRSTVWXYZb".utf8)
        var out: [UInt8] = []
        var t = microseconds
        for _ in 0..<11 { out.append(alphabet[Int(t & 31)]); t >>= 5 }
        out.reverse()
        out.append(UInt8(ascii: "z"))
        var s = sequence & 0xFFFFF
        var tail: [UInt8] = []
        for _ in 0..<4 { tail.append(alphabet[Int(s & 31)]); s >>= 5 }
        out.append(contentsOf: tail.reversed())
        rawValue = String(decoding: out, as: UTF8.self)
    }

    public var description: String { rawValue }
    public static func < (lhs: QueueID, rhs: QueueID) -> Bool { lhs.rawValue < rhs.rawValue }
}
