import struct NIOCore.ByteBuffer

/// A domain name as a sequence of labels (RFC 1035 §3.1), compared ASCII-case-insensitively.
///
/// Labels are raw octets (1–63 each); the whole name is at most 255 octets in wire form
/// (length octets and the root label included). The root name has no labels.
/// - SeeAlso: RFC 1035 §2.3.4, §3.1; RFC 4343 (case insensitivity)
public struct DNSName: Hashable, Sendable, CustomStringConvertible {
    /// The labels in uncompressed wire form, each preceded by its length, without the root octet:
    /// one array per name (parsing an answer allocates once per name, not once per label).
    let wire: [UInt8]

    /// The labels, most specific first, without the empty root label.
    public var labels: [[UInt8]] {
        var out: [[UInt8]] = []
        var i = 0
        while i < wire.count {
            let n = Int(wire[i])
            out.append(Array(wire[(i + 1)..<(i + 1 + n)]))
            i += n + 1
        }
        return out
    }

    /// The number of labels.
    public var labelCount: Int {
        var count = 0
        var i = 0
        while i < wire.count {
            count += 1
            i += Int(wire[i]) + 1
        }
        return count
    }

    /// The longest label (RFC 1035 §2.3.4).
    public static let maxLabelLength = 63
    /// The longest name in wire form, length octets and root included (RFC 1035 §2.3.4).
    public static let maxWireLength = 255
    /// The most labels a name can have within 255 octets (127 one-octet labels plus the root).
    public static let maxLabels = 128

    /// The root name (`.`).
    public static let root = DNSName(wire: [])

    init(wire: [UInt8]) { self.wire = wire }

    init(uncheckedLabels: [[UInt8]]) {
        var wire: [UInt8] = []
        wire.reserveCapacity(uncheckedLabels.reduce(0) { $0 + $1.count + 1 })
        for label in uncheckedLabels {
            wire.append(UInt8(label.count))
            wire.append(contentsOf: label)
        }
        self.wire = wire
    }

    /// Creates a name from labels, checking the RFC 1035 §2.3.4 limits.
    /// - Throws: ``DNSNameError`` when a label is empty or longer than 63 octets, or the name exceeds 255 octets.
    public init(labels: [[UInt8]]) throws(DNSNameError) {
        var length = 1
        for label in labels {
            guard !label.isEmpty else { throw .emptyLabel }
            guard label.count <= Self.maxLabelLength else { throw .labelTooLong }
            length += label.count + 1
        }
        guard length <= Self.maxWireLength else { throw .nameTooLong }
        self.init(uncheckedLabels: labels)
    }

    /// Parses presentation form: dot-separated labels, an optional trailing dot; `""` and `"."` are the root.
    ///
    /// Only ASCII is accepted (convert U-labels to A-labels first); `\.` and `\DDD` escapes are not
    /// supported because mail domains never need them.
    /// - Throws: ``DNSNameError``.
    public init(_ string: String) throws(DNSNameError) {
        var text = Substring(string)
        if text.hasSuffix(".") { text = text.dropLast() }
        if text.isEmpty {
            self = .root
            return
        }
        var labels: [[UInt8]] = []
        for part in text.split(separator: ".", omittingEmptySubsequences: false) {
            let bytes = Array(part.utf8)
            guard bytes.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "\\") }) else {
                throw .invalidCharacter
            }
            labels.append(bytes)
        }
        try self.init(labels: labels)
    }

    /// Whether this is the root name.
    public var isRoot: Bool { wire.isEmpty }

    /// The length in uncompressed wire form (length octets and the root octet included).
    public var wireLength: Int { wire.count + 1 }

    /// Presentation form without the trailing dot (`"."` for the root); octets outside printable
    /// ASCII, dots and backslashes inside labels are escaped as `\DDD` so hostile names stay readable.
    public var description: String {
        if wire.isEmpty { return "." }
        var s = ""
        var i = 0
        while i < wire.count {
            if i > 0 { s += "." }
            let n = Int(wire[i])
            for byte in wire[(i + 1)..<(i + 1 + n)] {
                if byte > 0x20 && byte < 0x7F && byte != UInt8(ascii: ".") && byte != UInt8(ascii: "\\") {
                    s.unicodeScalars.append(Unicode.Scalar(byte))
                } else {
                    let d = String(byte)
                    s += "\\" + String(repeating: "0", count: 3 - d.count) + d
                }
            }
            i += n + 1
        }
        return s
    }

    /// The name with every ASCII letter in lower case (length octets are below 64: unchanged).
    public var lowercased: DNSName { DNSName(wire: wire.map(Self.lower)) }

    /// Whether `self` equals `other` or lies below it (`mx.example.test` is a subdomain of `example.test`).
    public func isSubdomain(of other: DNSName) -> Bool {
        // Walk to the label boundary where `other`'s length of wire form is left.
        var i = 0
        while wire.count - i > other.wire.count { i += Int(wire[i]) + 1 }
        guard wire.count - i == other.wire.count else { return false }
        return DNSName(wire: Array(wire[i...])) == other
    }

    static func lower(_ b: UInt8) -> UInt8 { b >= 0x41 && b <= 0x5A ? b | 0x20 : b }

    public static func == (lhs: DNSName, rhs: DNSName) -> Bool {
        guard lhs.wire.count == rhs.wire.count else { return false }
        for (x, y) in zip(lhs.wire, rhs.wire) where lower(x) != lower(y) { return false }
        return true
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(wire.count)
        for b in wire { hasher.combine(Self.lower(b)) }
    }
}

/// Why a domain name is not acceptable (RFC 1035 §2.3.4).
public enum DNSNameError: Error, Hashable, Sendable {
    /// Two dots in a row or a leading dot.
    case emptyLabel
    /// A label longer than 63 octets.
    case labelTooLong
    /// More than 255 octets in wire form.
    case nameTooLong
    /// A character outside printable ASCII, or a backslash.
    case invalidCharacter
}
