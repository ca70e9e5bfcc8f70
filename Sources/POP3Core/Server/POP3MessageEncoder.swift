import struct NIOCore.ByteBuffer
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Turns a stored message (LF or CRLF line ends) into the bytes of a RETR/TOP body: CRLF line ends,
/// dot-stuffed (RFC 1939 §3), optionally only the header and the first `n` body lines (TOP), followed
/// by the terminating `.` line. Feed it chunks in order; memory stays bounded by the chunk size.
public struct POP3MessageEncoder: Sendable {
    private var atLineStart = true
    private var previousCR = false
    private var inBody = false
    private var lineWasEmpty = true
    private var bodyLinesLeft: Int?
    private var done = false
    /// Octets of the message as sent with CRLF line ends, excluding stuffing dots and the final `.`
    /// line (what LIST reports and what `poplib` counts).
    public private(set) var octets = 0

    /// `topLines`: for TOP, how many body lines to send after the header; `nil` sends everything.
    public init(topLines: Int? = nil) { bodyLinesLeft = topLines }

    /// `true` once TOP has sent all it should; further input is ignored.
    public var isComplete: Bool { done }

    /// Encodes the next chunk of stored content into `out`.
    public mutating func encode(_ chunk: UnsafeRawBufferPointer, into out: inout ByteBuffer) {
        guard !done else { return }
        out.reserveCapacity(minimumWritableBytes: chunk.count + chunk.count / 16 + 8)
        var i = 0
        let n = chunk.count
        guard n > 0, let base = chunk.baseAddress else { return }
        // Line ends are found with memchr (vectorised); stored messages rarely hold a CR at all, so its
        // next position is looked up once and again only after it is passed.
        var nextCR = Self.find(0x0D, base, from: 0, to: n)
        while i < n && !done {
            // Fast path: copy the rest of an ordinary line in one write.
            if !atLineStart && !previousCR {
                if nextCR < i { nextCR = Self.find(0x0D, base, from: i, to: n) }
                let j = Self.find(0x0A, base, from: i, to: nextCR)
                if j > i {
                    out.writeBytes(UnsafeRawBufferPointer(rebasing: chunk[i..<j]))
                    octets += j - i
                    lineWasEmpty = false
                    i = j
                    continue
                }
            }
            let b = chunk[i]
            i += 1
            if b == 0x0A {
                if previousCR {
                    out.writeInteger(UInt8(0x0A))
                    octets += 1
                } else {
                    out.writeInteger(UInt16(0x0D0A))  // CR LF in one write (big-endian)
                    octets += 2
                }
                previousCR = false
                endLine()
                continue
            }
            if previousCR {
                // A CR not followed by LF: keep the stored form exact but give it a line end on the wire.
                out.writeInteger(UInt8(0x0A))
                octets += 1
                previousCR = false
                endLine()
                if done { break }
            }
            if b == 0x0D {
                if atLineStart { startLine(isDot: false, into: &out) }
                out.writeInteger(b)
                octets += 1
                previousCR = true
                continue
            }
            if atLineStart { startLine(isDot: b == UInt8(ascii: "."), into: &out) }
            lineWasEmpty = false
            out.writeInteger(b)
            octets += 1
        }
    }

    /// The index of the first `byte` in `base[from..<to]`, or `to`.
    private static func find(_ byte: UInt8, _ base: UnsafeRawPointer, from: Int, to: Int) -> Int {
        guard from < to, let hit = memchr(base + from, Int32(byte), to - from) else { return to }
        return base.distance(to: UnsafeRawPointer(hit))
    }

    private mutating func startLine(isDot: Bool, into out: inout ByteBuffer) {
        atLineStart = false
        lineWasEmpty = true
        if isDot { out.writeInteger(UInt8(ascii: ".")) }  // stuffing is transport, not message size
    }

    private mutating func endLine() {
        let wasEmpty = atLineStart || lineWasEmpty
        atLineStart = true
        lineWasEmpty = true
        if !inBody {
            if wasEmpty { inBody = true; if bodyLinesLeft == 0 { done = true } }
            return
        }
        if let left = bodyLinesLeft {
            bodyLinesLeft = left - 1
            if left - 1 <= 0 { done = true }
        }
    }

    /// Finishes the body: a missing final CRLF is added, then the `.` line.
    public mutating func finish(into out: inout ByteBuffer) {
        if previousCR {
            // A final bare CR gains its LF, counted like one in the middle (and like the maildrop's size).
            out.writeInteger(UInt8(0x0A))
            octets += 1
            previousCR = false
            atLineStart = true
        }
        if !atLineStart && !done {
            out.writeStaticString("\r\n")
            octets += 2
        }
        out.writeStaticString(".\r\n")
    }
}
