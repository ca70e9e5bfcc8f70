import Crypto

/// `c=`: how header fields and the body are canonicalized before hashing.
/// - SeeAlso: RFC 6376 §3.4
public enum DKIMCanonicalization: String, Sendable, Hashable {
    case simple, relaxed
}

/// One header field as it is in the message: its name and its raw octets (name, colon, value and
/// folding, including the final CRLF).
public struct DKIMHeaderField: Sendable, Hashable {
    public var name: String
    public var raw: [UInt8]

    public init(name: String, raw: [UInt8]) {
        self.name = name
        self.raw = raw
    }

    /// The field's value: after the colon, unfolded neither way (for tag lists, addresses).
    public var value: String {
        guard let colon = raw.firstIndex(of: UInt8(ascii: ":")) else { return "" }
        var end = raw.endIndex
        while end > colon + 1, raw[end - 1] == 0x0A || raw[end - 1] == 0x0D { end -= 1 }
        return String(decoding: raw[(colon + 1)..<end], as: UTF8.self)
    }

    /// The field canonicalized (RFC 6376 §3.4.1 simple, §3.4.2 relaxed), with its CRLF.
    public func canonicalized(_ c: DKIMCanonicalization) -> [UInt8] {
        switch c {
        case .simple:
            return raw
        case .relaxed:
            guard let colon = raw.firstIndex(of: UInt8(ascii: ":")) else { return raw }
            var out: [UInt8] = []
            out.reserveCapacity(raw.count)
            // The name in lower case, without the whitespace before the colon.
            var nameEnd = colon
            while nameEnd > 0, raw[nameEnd - 1] == 0x20 || raw[nameEnd - 1] == 0x09 { nameEnd -= 1 }
            for b in raw[..<nameEnd] { out.append(b >= 0x41 && b <= 0x5A ? b | 0x20 : b) }
            out.append(UInt8(ascii: ":"))
            // The value unfolded, each run of whitespace one space, none at either end.
            var pendingSpace = false
            var started = false
            for b in raw[(colon + 1)...] {
                switch b {
                case 0x0D, 0x0A: continue
                case 0x20, 0x09: pendingSpace = true
                default:
                    if pendingSpace && started { out.append(0x20) }
                    pendingSpace = false
                    started = true
                    out.append(b)
                }
            }
            out += [0x0D, 0x0A]
            return out
        }
    }
}

/// The body canonicalized and hashed as it arrives, in any pieces: no copy of the body is kept,
/// so a message of any size costs one pass. Bare LFs count as line ends (CRLF is written).
/// - SeeAlso: RFC 6376 §3.4.3 (simple), §3.4.4 (relaxed), §3.7 (body hash)
public struct DKIMBodyHasher: Sendable {
    public let canonicalization: DKIMCanonicalization
    private var hash = SHA256()
    /// Empty lines seen but not yet written (they are dropped if the body ends here).
    private var emptyLines = 0
    /// The current line so far (relaxed: with runs of whitespace already reduced), not yet written.
    private var line: [UInt8] = []
    private var pendingSpace = false
    private var previousCR = false
    /// Octets given to the hash (at most `limit`).
    public private(set) var canonicalLength = 0

    /// `l=`: hash only this many canonical octets (a verifier's limit; the signer never sets it).
    public let limit: Int?
    /// Canonical octets seen, including those past `limit`.
    public private(set) var totalLength = 0

    public init(_ canonicalization: DKIMCanonicalization, limit: Int? = nil) {
        self.canonicalization = canonicalization
        self.limit = limit
        line.reserveCapacity(1024)
    }

    /// Adds body octets.
    public mutating func update(_ bytes: some Sequence<UInt8>) {
        for b in bytes { add(b) }
    }

    /// Adds body octets from a buffer.
    public mutating func update(bufferPointer: UnsafeRawBufferPointer) {
        // Runs of octets that are neither whitespace nor a line end go to the line in one piece
        // (most of a body); everything else takes the octet-by-octet path.
        let n = bufferPointer.count
        var i = 0
        while i < n {
            let b = bufferPointer[i]
            guard !previousCR, !Self.isSpecial(b) else {
                add(b)
                i += 1
                continue
            }
            var j = i + 1
            while j < n, !Self.isSpecial(bufferPointer[j]) { j += 1 }
            if pendingSpace { line.append(0x20) }  // (only ever set by relaxed)
            pendingSpace = false
            line.append(contentsOf: UnsafeRawBufferPointer(rebasing: bufferPointer[i..<j]))
            if line.count >= 4096 { flushLine(final: false) }
            i = j
        }
    }

    @inline(__always) private static func isSpecial(_ b: UInt8) -> Bool {
        b == 0x0A || b == 0x0D || b == 0x20 || b == 0x09
    }

    private mutating func add(_ b: UInt8) {
        if b == 0x0A {
            endLine()
            previousCR = false
            return
        }
        if previousCR {
            // A CR that does not start CRLF belongs to the line.
            append(0x0D)
        }
        previousCR = b == 0x0D
        if !previousCR { append(b) }
    }

    private mutating func append(_ b: UInt8) {
        if canonicalization == .relaxed {
            if b == 0x20 || b == 0x09 {
                pendingSpace = true
                return
            }
            if pendingSpace { line.append(0x20) }
            pendingSpace = false
        }
        line.append(b)
        if line.count >= 4096 { flushLine(final: false) }
    }

    /// Writes the pending empty lines, then the line so far (a long line is written in pieces).
    private mutating func flushLine(final: Bool) {
        if emptyLines > 0 {
            for _ in 0..<emptyLines { write([0x0D, 0x0A]) }
            emptyLines = 0
        }
        write(line)
        line.removeAll(keepingCapacity: true)
        inLine = !final
    }

    /// A long line has been partly written: its end is not an empty line even if nothing follows.
    private var inLine = false

    private mutating func endLine() {
        // Relaxed: whitespace at the end of a line is dropped (pendingSpace is forgotten).
        pendingSpace = false
        if line.isEmpty && !inLine {
            emptyLines += 1
            return
        }
        flushLine(final: true)
        write([0x0D, 0x0A])
        inLine = false
    }

    private mutating func write(_ bytes: [UInt8]) {
        guard !bytes.isEmpty else { return }
        totalLength += bytes.count
        var n = bytes.count
        if let limit { n = max(0, min(n, limit - canonicalLength)) }
        guard n > 0 else { return }
        bytes.withUnsafeBytes { hash.update(bufferPointer: UnsafeRawBufferPointer(rebasing: $0[..<n])) }
        canonicalLength += n
    }

    /// The body hash (`bh=`). The body ends here: a last line without CRLF gets one; trailing empty
    /// lines are dropped; an empty body is CRLF (simple) or nothing (relaxed).
    public func finalize() -> [UInt8] {
        Array(finished().hash.finalize())
    }

    /// The canonical body's whole length once it ends here (past any `limit`).
    public func finalizedLength() -> Int { finished().totalLength }

    private func finished() -> DKIMBodyHasher {
        var copy = self
        if copy.previousCR { copy.append(0x0D); copy.previousCR = false }
        if copy.canonicalization == .relaxed { copy.pendingSpace = false }
        if !copy.line.isEmpty || copy.inLine {
            copy.flushLine(final: true)
            copy.write([0x0D, 0x0A])
        }
        if copy.canonicalization == .simple && copy.totalLength == 0 { copy.write([0x0D, 0x0A]) }
        return copy
    }
}
