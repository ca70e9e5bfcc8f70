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

    /// Creates a parser.
    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
    }

    /// Adds received bytes.
    public mutating func append(_ buffer: ByteBuffer) {
        fatalError("not yet implemented")
    }

    /// The next item, or `nil` when more bytes are needed.
    public mutating func next() -> Item? {
        fatalError("not yet implemented")
    }

    /// Switches how the following bytes are read.
    public mutating func setMode(_ mode: Mode) {
        self.mode = mode
    }

    /// The `+` for the pending synchronising literal was sent.
    public mutating func literalAccepted() {}

    /// The command with the pending synchronising literal was refused; the client sends no literal.
    public mutating func literalRejected() {}

    /// Octets received but not yet returned as items (plaintext pipelined behind STARTTLS).
    public var bufferedByteCount: Int { 0 }

    /// Drops every buffered octet (after STARTTLS).
    public mutating func discardBufferedBytes() {}
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
