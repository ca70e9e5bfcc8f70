#if canImport(Glibc)
import Glibc
#endif
import struct NIOCore.ByteBuffer

/// Splits the bytes a client sends into command lines, DATA content and BDAT chunks.
///
/// Pull-based: ``append(_:)`` bytes, then call ``next()`` until it returns `nil` ("need more bytes").
/// The mode changes only by explicit calls (``beginData()``, ``beginChunk(size:)``), made when the state
/// machine says so, and returns to command mode by itself at the end of DATA or of a chunk.
///
/// DATA ends only at `CRLF "." CRLF`. A bare CR or LF never ends DATA and never starts a line for
/// dot-unstuffing; it is reported in ``ContentFlags/bareLineEnding`` so the state machine can refuse the
/// message (SMTP smuggling, CVE-2023-51764/51765/51766).
///
/// ``bufferedByteCount`` tells how many bytes are held but not yet returned: after STARTTLS or DATA
/// those bytes were pipelined where RFC 3207 §4.2 / RFC 2920 §3.1 forbid it.
public struct SMTPCommandParser: Sendable {
    /// What the parser is reading.
    public enum Mode: Hashable, Sendable {
        /// Command lines ended by LF (CR before it is removed).
        case commands
        /// DATA content until `CRLF.CRLF`.
        case data
        /// A BDAT chunk with this many octets still to come.
        case chunk(remaining: Int)
        /// One line of an AUTH exchange (RFC 4954 §4), returned raw.
        case saslLine
    }

    /// One thing the parser found.
    public enum Item: Hashable, Sendable {
        /// A command line, parsed.
        case command(SMTPCommand)
        /// A command line that did not parse.
        case invalidCommand(SMTPCommandError)
        /// Unstuffed DATA content, CRLF line ends as received.
        case messageData(ByteBuffer)
        /// The `CRLF.CRLF` that ends DATA, with facts about the whole content.
        case endOfMessage(ContentFlags)
        /// Bytes of a BDAT chunk (not unstuffed).
        case chunkData(ByteBuffer)
        /// The last byte of the current BDAT chunk has been returned.
        case endOfChunk
        /// A line of an AUTH exchange, without its line end.
        case saslLine([UInt8])
    }

    private var buffer: ByteBuffer
    /// The current mode.
    public private(set) var mode: Mode = .commands
    private var discardingLongLine = false
    // DATA state
    private var atLineStart = true
    private var dataPreviousCR = false
    private var checker = ContentChecker()

    /// The longest command line accepted, including CRLF (RFC 5321 §4.5.3.1.4).
    public var maximumCommandLength: Int
    /// The longest MAIL/RCPT line accepted, including CRLF: RFC 5321 allows extensions to extend the
    /// limit for their parameters (SIZE, BODY, SMTPUTF8, later DSN's ORCPT/ENVID).
    public var maximumPathCommandLength: Int
    /// The longest AUTH line (RFC 4954 §4: 12288 octets).
    public var maximumAuthLength: Int

    /// Creates a parser in command mode.
    public init(maximumCommandLength: Int = 512, maximumPathCommandLength: Int = 1024, maximumAuthLength: Int = 12288) {
        self.buffer = ByteBuffer()
        self.maximumCommandLength = maximumCommandLength
        self.maximumPathCommandLength = maximumPathCommandLength
        self.maximumAuthLength = maximumAuthLength
    }

    /// Bytes received but not yet returned by ``next()``.
    public var bufferedByteCount: Int { buffer.readableBytes }

    /// Adds bytes read from the connection.
    public mutating func append(_ bytes: ByteBuffer) {
        if buffer.readableBytes == 0 {
            buffer = bytes
        } else {
            var b = bytes
            buffer.writeBuffer(&b)
        }
    }

    /// Drops every byte buffered (used when plaintext was pipelined behind STARTTLS).
    public mutating func discardBufferedBytes() {
        buffer.clear()
        discardingLongLine = false
    }

    /// Switches to DATA mode; call after the 354 decision, before sending 354.
    public mutating func beginData() {
        precondition(mode == .commands, "beginData() in mode \(mode)")
        mode = .data
        atLineStart = true
        dataPreviousCR = false
        checker = ContentChecker()
    }

    /// Switches to reading a BDAT chunk of `size` octets.
    public mutating func beginChunk(size: Int) {
        precondition(mode == .commands, "beginChunk() in mode \(mode)")
        mode = .chunk(remaining: size)
    }

    /// Reads the next line as a SASL response instead of a command.
    public mutating func beginSASLLine() {
        precondition(mode == .commands, "beginSASLLine() in mode \(mode)")
        mode = .saslLine
    }

    /// Returns the next item, or `nil` when more bytes are needed.
    public mutating func next() -> Item? {
        let item = nextItem()
        // An idle session keeps no read buffer (the last one read could be kilobytes of capacity).
        if item == nil && buffer.readableBytes == 0 && buffer.capacity > 0 { buffer = ByteBuffer() }
        return item
    }

    private mutating func nextItem() -> Item? {
        switch mode {
        case .saslLine:
            switch nextCommandLine() {
            case nil: return nil
            case .some(.success(let line)):
                mode = .commands
                return .saslLine(line)
            case .some(.failure):
                mode = .commands
                return .invalidCommand(.lineTooLong)
            }
        case .commands: return nextCommand()
        case .data: return nextData()
        case .chunk(let remaining): return nextChunk(remaining: remaining)
        }
    }

    /// One raw line for a SASL response (limit: the AUTH line length).
    private mutating func nextCommandLine() -> Result<[UInt8], SMTPCommandError>? {
        guard let lf = buffer.readableBytesView.firstIndex(of: 0x0A) else {
            if buffer.readableBytes > maximumAuthLength {
                buffer.clear()
                discardingLongLine = true
                return .failure(.lineTooLong)
            }
            return nil
        }
        var end = lf
        if end > buffer.readerIndex, buffer.getInteger(at: end - 1, as: UInt8.self) == 0x0D { end -= 1 }
        let line = buffer.getBytes(at: buffer.readerIndex, length: end - buffer.readerIndex) ?? []
        buffer.moveReaderIndex(to: lf + 1)
        if buffer.readableBytes == 0 { buffer.clear() }
        return line.count + 2 > maximumAuthLength ? .failure(.lineTooLong) : .success(line)
    }

    private mutating func nextCommand() -> Item? {
        let hardLimit = max(maximumCommandLength, maximumPathCommandLength, maximumAuthLength)
        while true {
            let lf = buffer.readableBytesView.firstIndex(of: 0x0A)
            if discardingLongLine {
                guard let lf else {
                    buffer.clear()
                    return nil
                }
                buffer.moveReaderIndex(to: lf + 1)
                discardingLongLine = false
                continue
            }
            guard let lf else {
                if buffer.readableBytes > hardLimit {
                    buffer.clear()
                    discardingLongLine = true
                    return .invalidCommand(.lineTooLong)
                }
                compactIfNeeded()
                return nil
            }
            let lineLength = lf + 1 - buffer.readerIndex  // including LF
            var lineEnd = lf
            if lineEnd > buffer.readerIndex, buffer.getInteger(at: lineEnd - 1, as: UInt8.self) == 0x0D { lineEnd -= 1 }
            let line = buffer.readableBytesView[buffer.readerIndex..<lineEnd]
            let limit = Self.limit(forLine: line, base: maximumCommandLength,
                                   path: maximumPathCommandLength, auth: maximumAuthLength)
            // Count as if the line ended in CRLF.
            let wireLength = lineLength + (lineEnd == lf ? 1 : 0)
            let item: Item
            if wireLength > limit {
                item = .invalidCommand(.lineTooLong)
            } else {
                switch SMTPCommandLineParser.parse(line) {
                case .success(let c): item = .command(c)
                case .failure(let e): item = .invalidCommand(e)
                }
            }
            buffer.moveReaderIndex(to: lf + 1)
            return item
        }
    }

    private static func limit(forLine line: some Collection<UInt8>, base: Int, path: Int, auth: Int) -> Int {
        guard line.count >= 4 else { return base }
        var verb: UInt32 = 0
        for b in line.prefix(4) { verb = verb << 8 | UInt32(b & 0xDF) }  // ASCII upper-case
        switch verb {
        case 0x4D41_494C, 0x5243_5054: return path  // MAIL, RCPT
        case 0x4155_5448: return auth  // AUTH
        default: return base
        }
    }

    private mutating func nextData() -> Item? {
        let start = buffer.readerIndex
        let end = buffer.writerIndex
        guard start < end else { return nil }
        if atLineStart, buffer.getInteger(at: start, as: UInt8.self) == UInt8(ascii: ".") {
            let available = end - start
            if available >= 3, buffer.getInteger(at: start + 1, as: UInt8.self) == 0x0D,
               buffer.getInteger(at: start + 2, as: UInt8.self) == 0x0A {
                buffer.moveReaderIndex(forwardBy: 3)
                mode = .commands
                checker.finish()
                compactIfNeeded()
                return .endOfMessage(checker.flags)
            }
            if available == 1 || (available == 2 && buffer.getInteger(at: start + 1, as: UInt8.self) == 0x0D) {
                return nil  // cannot decide yet
            }
            // A stuffed dot (RFC 5321 §4.5.2): drop it; the rest of the line is content.
            buffer.moveReaderIndex(forwardBy: 1)
            atLineStart = false
            if buffer.readableBytes == 0 { return nil }
        }
        // Scan forward to the end of the buffer or to the next line that starts with '.'.
        let from = buffer.readerIndex
        var stop = end
        var previousCR = dataPreviousCR
        var lineStarts = false
        buffer.withUnsafeReadableBytes { raw in
            // memchr finds each LF; only a CRLF followed by '.' (or the end of the input) matters here.
            let n = raw.count
            guard n > 0, let base = raw.baseAddress else { return }
            var i = 0
            while i < n, let hit = memchr(base + i, 0x0A, n - i) {
                let k = base.distance(to: UnsafeRawPointer(hit))
                let afterCR = k > 0 ? raw[k - 1] == 0x0D : previousCR
                i = k + 1
                guard afterCR else { continue }
                if i == n {
                    previousCR = false
                    lineStarts = true
                    return
                }
                if raw[i] == UInt8(ascii: ".") {
                    // A new line starts at i with '.': stop there.
                    stop = from + i
                    previousCR = false
                    lineStarts = true
                    return
                }
            }
            previousCR = raw[n - 1] == 0x0D
            lineStarts = false
        }
        dataPreviousCR = previousCR
        atLineStart = lineStarts
        let chunk = buffer.readSlice(length: stop - from)!
        chunk.withUnsafeReadableBytes { checker.feed($0) }
        if buffer.readableBytes == 0 { buffer.clear() }
        return .messageData(chunk)
    }

    private mutating func nextChunk(remaining: Int) -> Item? {
        if remaining == 0 {
            mode = .commands
            return .endOfChunk
        }
        guard buffer.readableBytes > 0 else { return nil }
        let n = min(remaining, buffer.readableBytes)
        let slice = buffer.readSlice(length: n)!
        mode = .chunk(remaining: remaining - n)
        if buffer.readableBytes == 0 { buffer.clear() }
        return .chunkData(slice)
    }

    private mutating func compactIfNeeded() {
        if buffer.readableBytes == 0 {
            buffer.clear()
        } else if buffer.readerIndex > 65536 {
            buffer.discardReadBytes()
        }
    }
}
