#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import struct NIOCore.ByteBuffer

/// Splits the client's byte stream into IMAP commands (RFC 9051 §2.2, §4.3 literals, RFC 7888
/// LITERAL+/LITERAL-), pull-based: ``append(_:)``, then ``next()`` until it returns `nil`.
///
/// Literals: a synchronising literal `{n}` stops the parser with ``Item/continuationRequested(tag:size:)``;
/// the state machine answers `+` (``literalAccepted()``) or rejects the command (``literalRejected()``:
/// the command is dropped, nothing of the literal is expected). A non-synchronising `{n+}` is read at once;
/// one over the limit is skipped byte by byte (never buffered) and reported. APPEND's message is not
/// buffered: it is streamed as ``Item/appendData(_:)`` chunks.
///
/// Memory: at most ``Configuration/maxCommandSize`` octets of one command (line and its literals)
/// are buffered; everything beyond is skipped and reported.
public struct IMAPCommandParser: Sendable {
    /// Limits.
    public struct Configuration: Hashable, Sendable {
        /// One command with its (non-APPEND) literals, CRLFs included (Dovecot: 64 KiB).
        public var maxCommandSize: Int
        /// The largest APPEND message (APPENDLIMIT).
        public var maxAppendSize: Int
        /// Nesting depth of parenthesised lists (search programs, BODY section lists).
        public var maxDepth: Int

        /// Creates limits.
        public init(maxCommandSize: Int = 65_536, maxAppendSize: Int = 50 * 1_048_576, maxDepth: Int = 32) {
            self.maxCommandSize = maxCommandSize
            self.maxAppendSize = maxAppendSize
            self.maxDepth = maxDepth
        }
    }

    /// How the next bytes are read.
    public enum Mode: Hashable, Sendable {
        case commands
        /// One line: a SASL response during AUTHENTICATE (`*` cancels).
        case saslResponse
        /// During IDLE: the line `DONE` (RFC 2177).
        case idle
    }

    /// What the parser found.
    public enum Item: Hashable, Sendable {
        case command(TaggedCommand)
        /// A synchronising literal of `size` octets in the command tagged `tag` (`nil` when no tag
        /// could be read yet). Answer with ``literalAccepted()`` (after sending `+`) or ``literalRejected()``.
        case continuationRequested(tag: String, size: Int)
        /// APPEND's options; the message follows as `appendData` chunks. A synchronising literal
        /// also needs ``literalAccepted()``/``literalRejected()``.
        case appendStarted(tag: String, mailbox: MailboxName, message: AppendMessage, synchronizing: Bool)
        case appendData(ByteBuffer)
        /// The message's last octet and the command's CRLF were read.
        case appendFinished(tag: String)
        /// One line in ``Mode/saslResponse``.
        case saslResponse(String)
        /// `DONE` in ``Mode/idle``.
        case idleDone
        /// A command that could not be parsed; the parser has skipped it and goes on with the next line.
        case error(IMAPParseError)
    }

    public let configuration: Configuration
    public private(set) var mode: Mode = .commands

    private var buffer = ByteBuffer()
    private var state: State = .frame
    /// Octets of the current command framed so far, from the reader index (whole lines and literals).
    private var framed = 0
    /// Where the next search for LF starts, from the reader index.
    private var searchFrom = 0
    /// Octets of a literal in the current command that have not arrived yet.
    private var literalRemaining = 0

    private enum State: Sendable {
        /// Reading a command (or, in ``Mode/idle`` and ``Mode/saslResponse``, a line).
        case frame
        /// ``Item/continuationRequested(tag:size:)`` was returned; waiting for the state machine.
        case awaitingLiteral(size: Int)
        /// ``Item/appendStarted(tag:mailbox:message:synchronizing:)`` with a synchronising literal.
        case awaitingAppend(AppendContext)
        /// Streaming an APPEND message.
        case appendMessage(AppendContext, remaining: Int)
        /// The line after an APPEND message: CRLF, or the next message of a MULTIAPPEND.
        case appendTail(AppendContext)
        /// Dropping the rest of a command that failed; the error is returned at its end.
        case skipping(Skip)
    }

    private struct AppendContext: Sendable {
        var tag: String
        var mailbox: MailboxName
        var size: Int
    }

    private struct Skip: Sendable {
        var error: IMAPParseError
        /// Octets of a non-synchronising literal still to drop.
        var literalRemaining: Int
        /// The last octets of the line being dropped (to see a literal announced at its end).
        var tail: [UInt8]
    }

    /// A literal announced at the end of a line.
    private struct Announcement {
        var size: Int
        var synchronizing: Bool
        var binary: Bool
    }

    private enum Step {
        case item(Item)
        case needMore
        case again
    }

    /// Creates a parser.
    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
    }

    /// Adds received bytes.
    public mutating func append(_ bytes: ByteBuffer) {
        if buffer.readableBytes == 0 {
            buffer = bytes
        } else {
            var b = bytes
            buffer.writeBuffer(&b)
        }
    }

    /// The next item, or `nil` when more bytes are needed (or a literal decision is pending).
    public mutating func next() -> Item? {
        var item: Item?
        loop: while true {
            switch step() {
            case .item(let i):
                item = i
                break loop
            case .needMore:
                break loop
            case .again:
                continue
            }
        }
        if buffer.readableBytes == 0 {
            // An idle session keeps no read buffer (nor the storage its last APPEND chunk shares).
            if item == nil, buffer.capacity > 0 { buffer = ByteBuffer() }
        } else if buffer.readerIndex > 65_536, framed == 0, searchFrom == 0 {
            buffer.discardReadBytes()
        }
        return item
    }

    /// Switches how the following bytes are read. ``Mode/idle`` and ``Mode/saslResponse`` return to
    /// ``Mode/commands`` by themselves after `DONE` and after one SASL line.
    public mutating func setMode(_ mode: Mode) {
        self.mode = mode
    }

    /// The `+` for the pending synchronising literal was sent (or an APPEND with a synchronising
    /// literal was accepted): its octets are read next. Does nothing when no literal is pending.
    public mutating func literalAccepted() {
        switch state {
        case .awaitingLiteral(let size):
            literalRemaining = size
            state = .frame
        case .awaitingAppend(let context):
            state = .appendMessage(context, remaining: context.size)
        default:
            break
        }
    }

    /// The command with the pending synchronising literal was refused; the client sends no literal,
    /// and the next octets are a new command. Does nothing when no literal is pending.
    public mutating func literalRejected() {
        switch state {
        case .awaitingLiteral:
            buffer.moveReaderIndex(forwardBy: framed)
            resetFrame()
            state = .frame
        case .awaitingAppend:
            state = .frame
        default:
            break
        }
    }

    /// `true` while a ``Item/continuationRequested(tag:size:)`` or a synchronising
    /// ``Item/appendStarted(tag:mailbox:message:synchronizing:)`` waits for
    /// ``literalAccepted()``/``literalRejected()``.
    public var isAwaitingLiteralDecision: Bool {
        switch state {
        case .awaitingLiteral, .awaitingAppend: true
        default: false
        }
    }

    /// Octets received but not yet returned as items (plaintext pipelined behind STARTTLS). Octets
    /// of a command being skipped are dropped as they arrive and not counted.
    public var bufferedByteCount: Int { buffer.readableBytes }

    /// Drops every buffered octet and any command in progress (after STARTTLS).
    public mutating func discardBufferedBytes() {
        buffer = ByteBuffer()
        resetFrame()
        state = .frame
    }

    // MARK: Steps

    private mutating func step() -> Step {
        switch state {
        case .skipping:
            return skip()
        case .awaitingLiteral, .awaitingAppend:
            return .needMore
        case .appendMessage(let context, let remaining):
            if remaining == 0 {
                state = .appendTail(context)
                return .again
            }
            guard buffer.readableBytes > 0 else { return .needMore }
            let n = min(remaining, buffer.readableBytes)
            let chunk = buffer.readSlice(length: n)!
            state = .appendMessage(context, remaining: remaining - n)
            return .item(.appendData(chunk))
        case .appendTail(let context):
            return appendTail(context)
        case .frame:
            switch mode {
            case .commands: return command()
            case .idle, .saslResponse: return line()
            }
        }
    }

    /// Frames one command: lines, and the literals their ends announce, until a line that ends
    /// without one; then parses it as a whole.
    private mutating func command() -> Step {
        if literalRemaining > 0 {
            guard buffer.readableBytes - framed >= literalRemaining else { return .needMore }
            framed += literalRemaining
            searchFrom = framed
            literalRemaining = 0
        }
        guard let lf = findLF(from: searchFrom) else {
            searchFrom = buffer.readableBytes
            if buffer.readableBytes > configuration.maxCommandSize {
                return abortMidLine(IMAPParseError(tag: leadingTag(), kind: .commandTooLong, message: "command too long"))
            }
            return .needMore
        }
        let length = lf + 1
        let announced = announcement(in: framed..<lf)
        if length > configuration.maxCommandSize {
            return abort(IMAPParseError(tag: leadingTag(), kind: .commandTooLong, message: "command too long"),
                         consuming: length, announced: announced)
        }
        guard let announced else {
            if framed == 0, lf == 0 || (lf == 1 && byte(at: 0) == 0x0D) {
                // An empty line is not a command: answered `* BAD` (as Dovecot does), then skipped.
                buffer.moveReaderIndex(forwardBy: length)
                resetFrame()
                return .item(.error(IMAPParseError(tag: nil, kind: .syntax, message: "empty command line")))
            }
            let maxDepth = configuration.maxDepth
            let item = buffer.withUnsafeReadableBytes {
                IMAPGrammarReader.parseCommand(UnsafeRawBufferPointer(rebasing: $0[..<length]), maxDepth: maxDepth)
            }
            buffer.moveReaderIndex(forwardBy: length)
            resetFrame()
            return .item(item)
        }
        // A literal follows this line.
        let head = buffer.withUnsafeReadableBytes {
            IMAPGrammarReader.leadingTagAndName(UnsafeRawBufferPointer(rebasing: $0[..<length]))
        }
        guard let head else {
            return abort(IMAPParseError(tag: leadingTag(), kind: .syntax, message: "expected tag and command name"),
                         consuming: length, announced: announced)
        }
        guard IMAPGrammarReader.isKnownCommand(head.name) else {
            return abort(IMAPParseError(tag: head.tag, kind: .unknownCommand, message: "unknown command \(head.name.prefix(32))"),
                         consuming: length, announced: announced)
        }
        if head.name == "APPEND" {
            let maxDepth = configuration.maxDepth
            let result = buffer.withUnsafeReadableBytes {
                IMAPGrammarReader.parseAppendHead(UnsafeRawBufferPointer(rebasing: $0[..<length]), maxDepth: maxDepth)
            }
            switch result {
            case .failure(let error):
                return abort(error, consuming: length, announced: announced)
            case .success(.message(let tag, let mailbox, let message, let synchronizing)):
                buffer.moveReaderIndex(forwardBy: length)
                resetFrame()
                return startAppend(AppendContext(tag: tag, mailbox: mailbox, size: message.size), message,
                                   synchronizing: synchronizing)
            case .success(.mailboxLiteral):
                break
            }
        }
        if announced.binary {
            return abort(IMAPParseError(tag: head.tag, kind: .syntax, message: "\(head.name): literal8 is only allowed in APPEND"),
                         consuming: length, announced: announced)
        }
        if announced.size > configuration.maxCommandSize - length {
            return abort(IMAPParseError(tag: head.tag, kind: .literalTooLarge(announced.size),
                                        message: "literal of \(announced.size) octets is too large"),
                         consuming: length, announced: announced)
        }
        framed = length
        searchFrom = length
        if announced.synchronizing {
            state = .awaitingLiteral(size: announced.size)
            return .item(.continuationRequested(tag: head.tag, size: announced.size))
        }
        literalRemaining = announced.size
        return .again
    }

    private mutating func startAppend(_ context: AppendContext, _ message: AppendMessage, synchronizing: Bool) -> Step {
        if message.size > configuration.maxAppendSize {
            let error = IMAPParseError(tag: context.tag, kind: .literalTooLarge(message.size),
                                       message: "message of \(message.size) octets is too large")
            if synchronizing {
                state = .frame
                return .item(.error(error))
            }
            state = .skipping(Skip(error: error, literalRemaining: message.size, tail: []))
            return .again
        }
        state = synchronizing ? .awaitingAppend(context) : .appendMessage(context, remaining: context.size)
        return .item(.appendStarted(tag: context.tag, mailbox: context.mailbox, message: message,
                                    synchronizing: synchronizing))
    }

    /// The line after an APPEND message.
    private mutating func appendTail(_ context: AppendContext) -> Step {
        guard let lf = findLF(from: searchFrom) else {
            searchFrom = buffer.readableBytes
            if buffer.readableBytes > configuration.maxCommandSize {
                return abortMidLine(IMAPParseError(tag: context.tag, kind: .commandTooLong, message: "command too long"))
            }
            return .needMore
        }
        let length = lf + 1
        let announced = announcement(in: 0..<lf)
        if length > configuration.maxCommandSize {
            return abort(IMAPParseError(tag: context.tag, kind: .commandTooLong, message: "command too long"),
                         consuming: length, announced: announced)
        }
        let result = buffer.withUnsafeReadableBytes {
            IMAPGrammarReader.parseAppendTail(UnsafeRawBufferPointer(rebasing: $0[..<length]), tag: context.tag)
        }
        switch result {
        case .failure(let error):
            return abort(error, consuming: length, announced: announced)
        case .success(nil):
            buffer.moveReaderIndex(forwardBy: length)
            resetFrame()
            state = .frame
            return .item(.appendFinished(tag: context.tag))
        case .success(let next?):
            buffer.moveReaderIndex(forwardBy: length)
            resetFrame()
            var c = context
            c.size = next.0.size
            return startAppend(c, next.0, synchronizing: next.1)
        }
    }

    /// One line in ``Mode/idle`` or ``Mode/saslResponse``.
    private mutating func line() -> Step {
        guard let lf = findLF(from: searchFrom) else {
            searchFrom = buffer.readableBytes
            if buffer.readableBytes > configuration.maxCommandSize {
                if mode == .saslResponse { mode = .commands }
                return abortMidLine(IMAPParseError(tag: nil, kind: .commandTooLong, message: "line too long"))
            }
            return .needMore
        }
        let length = lf + 1
        let end = lf > 0 && byte(at: lf - 1) == 0x0D ? lf - 1 : lf
        defer {
            buffer.moveReaderIndex(forwardBy: length)
            resetFrame()
        }
        if length > configuration.maxCommandSize {
            if mode == .saslResponse { mode = .commands }
            return .item(.error(IMAPParseError(tag: nil, kind: .commandTooLong, message: "line too long")))
        }
        switch mode {
        case .idle:
            let done = buffer.withUnsafeReadableBytes { raw in
                end == 4 && raw[0] | 0x20 == 0x64 && raw[1] | 0x20 == 0x6F && raw[2] | 0x20 == 0x6E && raw[3] | 0x20 == 0x65
            }
            guard done else { return .item(.error(IMAPParseError(tag: nil, kind: .syntax, message: "expected DONE"))) }
            mode = .commands
            return .item(.idleDone)
        case .saslResponse, .commands:
            mode = .commands
            let text = buffer.withUnsafeReadableBytes { String(validating: UnsafeRawBufferPointer(rebasing: $0[..<end]), as: UTF8.self) }
            guard let text else {
                return .item(.error(IMAPParseError(tag: nil, kind: .invalidUTF8, message: "SASL response is not valid UTF-8")))
            }
            return .item(.saslResponse(text))
        }
    }

    /// Drops the rest of a failed command: the literal its last line announced, and following lines
    /// while they announce non-synchronising literals; then returns the error.
    private mutating func skip() -> Step {
        guard case .skipping(var s) = state else { preconditionFailure("skip() in state \(state)") }
        while true {
            if s.literalRemaining > 0 {
                let n = min(s.literalRemaining, buffer.readableBytes)
                buffer.moveReaderIndex(forwardBy: n)
                s.literalRemaining -= n
                if s.literalRemaining > 0 {
                    state = .skipping(s)
                    return .needMore
                }
                s.tail = []
            }
            guard let lf = findLF(from: 0) else {
                let keep = buffer.readableBytesView.suffix(32)
                s.tail = Array((s.tail + keep).suffix(32))
                buffer.moveReaderIndex(to: buffer.writerIndex)
                state = .skipping(s)
                return .needMore
            }
            let lineTail = Array((s.tail + buffer.readableBytesView[(buffer.readerIndex + max(0, lf - 32))..<(buffer.readerIndex + lf)]).suffix(32))
            buffer.moveReaderIndex(forwardBy: lf + 1)
            s.tail = []
            if let a = lineTail.withUnsafeBytes({ Self.announcement($0) }), !a.synchronizing {
                s.literalRemaining = a.size
                continue
            }
            state = .frame
            return .item(.error(s.error))
        }
    }

    /// Consumes `length` octets of a failed command; skips the literal they announce, if it is
    /// non-synchronising (a client waiting for `+` sends nothing more).
    private mutating func abort(_ error: IMAPParseError, consuming length: Int, announced: Announcement?) -> Step {
        buffer.moveReaderIndex(forwardBy: length)
        resetFrame()
        if let announced, !announced.synchronizing {
            state = .skipping(Skip(error: error, literalRemaining: announced.size, tail: []))
            return .again
        }
        state = .frame
        return .item(.error(error))
    }

    /// Drops a command whose line is too long before its end arrived; the error follows at its end.
    private mutating func abortMidLine(_ error: IMAPParseError) -> Step {
        let from = buffer.readerIndex + max(framed, buffer.readableBytes - 32)
        let tail = Array(buffer.readableBytesView[from...])
        buffer.moveReaderIndex(to: buffer.writerIndex)
        resetFrame()
        state = .skipping(Skip(error: error, literalRemaining: 0, tail: tail))
        return .needMore
    }

    // MARK: Helpers

    private mutating func resetFrame() {
        framed = 0
        searchFrom = 0
        literalRemaining = 0
    }

    private func byte(at offset: Int) -> UInt8? {
        buffer.getInteger(at: buffer.readerIndex + offset, as: UInt8.self)
    }

    /// The offset of the next LF at or after `offset` (from the reader index).
    private func findLF(from offset: Int) -> Int? {
        buffer.withUnsafeReadableBytes { raw -> Int? in
            guard offset < raw.count, let base = raw.baseAddress else { return nil }
            guard let hit = memchr(base + offset, 0x0A, raw.count - offset) else { return nil }
            return base.distance(to: UnsafeRawPointer(hit))
        }
    }

    private func leadingTag() -> String? {
        buffer.withUnsafeReadableBytes { IMAPGrammarReader.leadingTag(UnsafeRawBufferPointer(rebasing: $0.prefix(1024))) }
    }

    private func announcement(in range: Range<Int>) -> Announcement? {
        buffer.withUnsafeReadableBytes { Self.announcement(UnsafeRawBufferPointer(rebasing: $0[range])) }
    }

    /// `literal` / `literal8` announced at the end of a line (the octets before its LF):
    /// `["~"] "{" number64 ["+"] "}" [CR]`.
    private static func announcement(_ line: UnsafeRawBufferPointer) -> Announcement? {
        var end = line.count
        if end > 0, line[end - 1] == 0x0D { end -= 1 }
        guard end > 0, line[end - 1] == 0x7D else { return nil }
        var i = end - 1
        var synchronizing = true
        if i > 0, line[i - 1] == 0x2B {
            synchronizing = false
            i -= 1
        }
        var j = i
        while j > 0, IMAPGrammarReader.isDigit(line[j - 1]) { j -= 1 }
        guard j < i, j > 0, line[j - 1] == 0x7B else { return nil }
        var size = 0
        for k in j..<i {
            let (m, o1) = size.multipliedReportingOverflow(by: 10)
            let (s, o2) = m.addingReportingOverflow(Int(line[k] - 0x30))
            if o1 || o2 {
                size = .max
                break
            }
            size = s
        }
        return Announcement(size: size, synchronizing: synchronizing, binary: j > 1 && line[j - 2] == 0x7E)
    }
}

/// Why a command could not be parsed.
public struct IMAPParseError: Error, Hashable, Sendable {
    public enum Kind: Hashable, Sendable {
        /// Bad syntax; the text says where.
        case syntax
        /// An unknown command name.
        case unknownCommand
        /// The command line with its literals is over ``IMAPCommandParser/Configuration/maxCommandSize`` (`[TOOBIG]`).
        case commandTooLong
        /// A literal over its limit (`[TOOBIG]`); APPEND over APPENDLIMIT.
        case literalTooLarge(Int)
        /// Parentheses nested deeper than ``IMAPCommandParser/Configuration/maxDepth`` (`[LIMIT]`).
        case tooDeep
        /// A string that is not valid UTF-8 where UTF-8 is required.
        case invalidUTF8
    }

    /// The tag, when one could be read (else the reply is untagged `* BAD`).
    public var tag: String?
    public var kind: Kind
    /// A short text for the `BAD` reply.
    public var message: String

    /// Creates an error.
    public init(tag: String?, kind: Kind, message: String) {
        self.tag = tag
        self.kind = kind
        self.message = message
    }
}
