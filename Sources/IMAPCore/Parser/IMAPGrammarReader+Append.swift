extension IMAPGrammarReader {
    /// What the octets of an APPEND up to a literal announcement mean.
    enum AppendHead {
        /// The literal is the mailbox name: read it like any literal and go on.
        case mailboxLiteral
        /// The literal is the message.
        case message(tag: String, mailbox: MailboxName, AppendMessage, synchronizing: Bool)
    }

    /// Parses an APPEND up to the literal announced at the end of `bytes` (the last line, its LF
    /// included).
    ///
    /// ```
    /// append          = "APPEND" SP mailbox 1*append-message
    /// append-message  = append-opts SP append-data
    /// append-opts     = [SP flag-list] [SP date-time]
    /// append-data     = literal / literal8
    /// literal8        = "~{" number64 ["+"] "}" CRLF *OCTET     ; RFC 3516
    /// ```
    static func parseAppendHead(_ bytes: UnsafeRawBufferPointer, maxDepth: Int) -> Result<AppendHead, IMAPParseError> {
        var r = IMAPGrammarReader(bytes, maxDepth: maxDepth)
        var tag: String?
        do throws(GrammarError) {
            tag = try r.tag()
            try r.space()
            guard r.consumeKeyword("APPEND") else { throw r.expected("APPEND") }
            try r.space()
            if r.peek() == 0x7B {
                var probe = r
                if (try? probe.literalHeader()) != nil, probe.isAtEnd { return .success(.mailboxLiteral) }
            }
            let mailbox = try r.mailbox()
            let (message, sync) = try r.appendMessage()
            return .success(.message(tag: tag!, mailbox: mailbox, message, synchronizing: sync))
        } catch {
            return .failure(IMAPParseError(tag: tag, kind: error.kind, message: "APPEND: " + error.message))
        }
    }

    /// The line after an APPEND message: its end, or the next message (MULTIAPPEND, RFC 3502).
    ///
    /// ```
    /// append          = "APPEND" SP mailbox 1*append-message
    /// ```
    static func parseAppendTail(_ bytes: UnsafeRawBufferPointer, tag: String) -> Result<(AppendMessage, Bool)?, IMAPParseError> {
        var r = IMAPGrammarReader(bytes, maxDepth: 0)
        do throws(GrammarError) {
            if r.atLineEnd {
                try r.lineEnd()
                return .success(nil)
            }
            return .success(try r.appendMessage())
        } catch {
            return .failure(IMAPParseError(tag: tag, kind: error.kind, message: "APPEND: " + error.message))
        }
    }

    /// `append-message = append-opts SP append-data`, where the literal's header must end the octets.
    mutating func appendMessage() throws(GrammarError) -> (AppendMessage, synchronizing: Bool) {
        try space()
        var flags: [IMAPFlag] = []
        var date: IMAPDateTime?
        if peek() == 0x28 {
            flags = try flagList()
            try space()
        }
        if peek() == 0x22 {
            date = try dateTime()
            try space()
        }
        guard peek() == 0x7B || peek() == 0x7E else { throw expected("message literal") }
        let (size, binary, sync) = try literalHeader()
        guard isAtEnd else { throw GrammarError(.syntax, "unexpected data after message literal") }
        return (AppendMessage(flags: flags, internalDate: date, size: size, isBinary: binary), sync)
    }
}
