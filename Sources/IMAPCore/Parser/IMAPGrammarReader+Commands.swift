extension IMAPGrammarReader {
    /// `true` for every command name ``command(named:)`` knows (APPEND included), so a literal in an
    /// unknown command is refused before it is asked for.
    static func isKnownCommand(_ name: String) -> Bool {
        switch name {
        case "CAPABILITY", "NOOP", "LOGOUT", "ID", "STARTTLS", "LOGIN", "AUTHENTICATE", "ENABLE", "SELECT",
             "EXAMINE", "CREATE", "DELETE", "RENAME", "SUBSCRIBE", "UNSUBSCRIBE", "LIST", "LSUB", "NAMESPACE",
             "STATUS", "APPEND", "IDLE", "GETQUOTA", "GETQUOTAROOT", "SETQUOTA", "COMPRESS", "CHECK", "CLOSE",
             "UNSELECT", "EXPUNGE", "SEARCH", "FETCH", "STORE", "COPY", "MOVE", "SORT", "THREAD", "UID":
            true
        default:
            false
        }
    }

    /// Parses a whole command (the octets of its lines and literals).
    ///
    /// ```
    /// command         = tag SP (command-any / command-auth / command-nonauth /
    ///                   command-select) CRLF
    /// ```
    static func parseCommand(_ bytes: UnsafeRawBufferPointer, maxDepth: Int) -> IMAPCommandParser.Item {
        var r = IMAPGrammarReader(bytes, maxDepth: maxDepth)
        let tag: String
        do throws(GrammarError) {
            tag = try r.tag()
            try r.space()
        } catch {
            return .error(IMAPParseError(tag: nil, kind: error.kind, message: error.message))
        }
        var name = ""
        do throws(GrammarError) {
            name = try r.keyword("command name")
            let command = try r.command(named: name)
            try r.lineEnd()
            return .command(TaggedCommand(tag: tag, command: command))
        } catch {
            let prefix = name.isEmpty || error.kind == .unknownCommand ? "" : "\(name): "
            return .error(IMAPParseError(tag: tag, kind: error.kind, message: prefix + error.message))
        }
    }

    /// The tag at the start of a (possibly incomplete) command, when it is complete and valid.
    static func leadingTag(_ bytes: UnsafeRawBufferPointer) -> String? {
        var r = IMAPGrammarReader(bytes, maxDepth: 0)
        guard let tag = try? r.tag(), r.peek() == 0x20 else { return nil }
        return tag
    }

    /// The tag and upper-cased command name at the start of a command.
    static func leadingTagAndName(_ bytes: UnsafeRawBufferPointer) -> (tag: String, name: String)? {
        var r = IMAPGrammarReader(bytes, maxDepth: 0)
        guard let tag = try? r.tag(), r.consume(0x20), let name = try? r.keyword("command name") else { return nil }
        return (tag, name)
    }

    mutating func command(named name: String) throws(GrammarError) -> IMAPCommand {
        switch name {
        // command-any = "CAPABILITY" / "LOGOUT" / "NOOP" / enable / x-command / id
        case "CAPABILITY": return .capability
        case "NOOP": return .noop
        case "LOGOUT": return .logout
        case "ID": return try id()
        // command-nonauth = login / authenticate / "STARTTLS"
        case "STARTTLS": return .startTLS
        case "LOGIN": return try login()
        case "AUTHENTICATE": return try authenticate()
        // command-auth
        case "ENABLE": return try enable()
        case "SELECT":
            try space()
            let (m, p) = try select()
            return .select(m, p)
        case "EXAMINE":
            try space()
            let (m, p) = try select()
            return .examine(m, p)
        case "CREATE": return try create()
        case "DELETE":
            try space()
            return .delete(try mailbox())
        case "RENAME":
            try space()
            let from = try mailbox()
            try space()
            return .rename(from: from, to: try mailbox())
        case "SUBSCRIBE":
            try space()
            return .subscribe(try mailbox())
        case "UNSUBSCRIBE":
            try space()
            return .unsubscribe(try mailbox())
        case "LIST": return .list(try list())
        case "LSUB":
            // lsub = "LSUB" SP mailbox SP list-mailbox
            try space()
            let reference = try astring("reference name")
            try space()
            return .lsub(reference: reference, pattern: try listMailbox())
        case "NAMESPACE": return .namespace
        case "STATUS": return try status()
        case "IDLE": return .idle
        case "APPEND":
            throw GrammarError(.syntax, "expected a message literal")
        case "GETQUOTA":
            // getquota = "GETQUOTA" SP quota-root-name
            try space()
            return .getQuota(root: try astring("quota root"))
        case "GETQUOTAROOT":
            // getquotaroot = "GETQUOTAROOT" SP mailbox
            try space()
            return .getQuotaRoot(try mailbox())
        case "SETQUOTA": return try setQuota()
        case "COMPRESS":
            // compress = "COMPRESS" SP algorithm ; algorithm = "DEFLATE"
            try space()
            return .compress(mechanism: try keyword("compression algorithm"))
        // command-select
        case "CHECK": return .check
        case "CLOSE": return .close
        case "UNSELECT": return .unselect
        case "EXPUNGE": return .expunge
        case "SEARCH": return try search(uid: false)
        case "FETCH": return try fetch(uid: false)
        case "STORE": return try store(uid: false)
        case "COPY":
            let (s, m) = try sequenceAndMailbox()
            return .copy(s, m, uid: false)
        case "MOVE":
            let (s, m) = try sequenceAndMailbox()
            return .move(s, m, uid: false)
        case "SORT": return try sort(uid: false)
        case "THREAD": return try thread(uid: false)
        case "UID": return try uid()
        default:
            throw GrammarError(.unknownCommand, "unknown command \(name.utf8.count > 32 ? String(name.prefix(32)) + "…" : name)")
        }
    }

    /// ```
    /// uid             = "UID" SP (copy / move / fetch / search / store / uid-expunge)
    ///                   ; RFC 5256 adds sort / thread
    /// uid-expunge     = "EXPUNGE" SP sequence-set
    /// ```
    mutating func uid() throws(GrammarError) -> IMAPCommand {
        try space()
        let sub = try keyword("UID command")
        switch sub {
        case "FETCH": return try fetch(uid: true)
        case "STORE": return try store(uid: true)
        case "SEARCH": return try search(uid: true)
        case "COPY":
            let (s, m) = try sequenceAndMailbox()
            return .copy(s, m, uid: true)
        case "MOVE":
            let (s, m) = try sequenceAndMailbox()
            return .move(s, m, uid: true)
        case "EXPUNGE":
            try space()
            return .uidExpunge(try sequenceSet())
        case "SORT": return try sort(uid: true)
        case "THREAD": return try thread(uid: true)
        default: throw GrammarError(.syntax, "UID \(sub) is not a UID command")
        }
    }

    /// ```
    /// copy            = "COPY" SP sequence-set SP mailbox
    /// move            = "MOVE" SP sequence-set SP mailbox
    /// ```
    mutating func sequenceAndMailbox() throws(GrammarError) -> (SequenceSet, MailboxName) {
        try space()
        let set = try sequenceSet()
        try space()
        return (set, try mailbox())
    }

    /// ```
    /// id              = "ID" SP id-params-list
    /// id-params-list  = "(" #(string SP nstring) ")" / nil
    /// ```
    mutating func id() throws(GrammarError) -> IMAPCommand {
        try space()
        if consumeKeyword("NIL") { return .id(nil) }
        try expect(0x28, "\"(\" or NIL")
        var fields: [IMAPCommand.IDField] = []
        if consume(0x29) { return .id(fields) }
        repeat {
            let name = try string("ID field name")
            try space()
            fields.append(IMAPCommand.IDField(name: name, value: try nstring("ID field value")))
        } while consume(0x20)
        try expect(0x29, "\")\"")
        return .id(fields)
    }

    /// ```
    /// login           = "LOGIN" SP userid SP password
    /// userid          = astring
    /// password        = astring
    /// ```
    mutating func login() throws(GrammarError) -> IMAPCommand {
        try space()
        let user = try astring("user name")
        try space()
        return .login(user: user, password: try astring("password"))
    }

    /// ```
    /// authenticate    = "AUTHENTICATE" SP auth-type [SP initial-resp]
    /// auth-type       = atom
    /// initial-resp    = (base64 / "=")       ; RFC 4959
    /// base64          = *(4base64-char) [base64-terminal]
    /// ```
    mutating func authenticate() throws(GrammarError) -> IMAPCommand {
        try space()
        let mechanism = try keyword("SASL mechanism")
        guard consume(0x20) else { return .authenticate(mechanism: mechanism, initialResponse: nil) }
        let r = scan { Self.isAlpha($0) || Self.isDigit($0) || $0 == 0x2B || $0 == 0x2F || $0 == 0x3D }
        guard !r.isEmpty else { throw expected("initial response") }
        let text = ascii(r)
        if text != "=" {
            let padding = text.utf8.reversed().prefix { $0 == 0x3D }.count
            guard text.utf8.count % 4 == 0, padding <= 2, !text.utf8.dropLast(padding).contains(0x3D) else {
                throw GrammarError(.syntax, "initial response is not base64")
            }
        }
        return .authenticate(mechanism: mechanism, initialResponse: text)
    }

    /// ```
    /// enable          = "ENABLE" 1*(SP capability)
    /// capability      = ("AUTH=" auth-type) / atom
    /// ```
    /// Names are upper-cased (capability names are case-insensitive).
    mutating func enable() throws(GrammarError) -> IMAPCommand {
        var names: [String] = []
        repeat {
            try space()
            names.append(try keyword("capability"))
        } while !atLineEnd
        return .enable(names)
    }

    /// ```
    /// select          = "SELECT" SP mailbox [select-params]
    /// examine         = "EXAMINE" SP mailbox [select-params]
    /// select-params   = SP "(" select-param *(SP select-param) ")"
    /// select-param    = "CONDSTORE" / "QRESYNC" SP "(" uidvalidity SP mod-sequence-value
    ///                   [SP known-uids] [SP seq-match-data] ")"
    /// seq-match-data  = "(" known-sequence-set SP known-uid-set ")"
    /// ```
    mutating func select() throws(GrammarError) -> (MailboxName, SelectParameters) {
        let name = try mailbox()
        var parameters = SelectParameters()
        guard consume(0x20) else { return (name, parameters) }
        try expect(0x28, "\"(\"")
        repeat {
            let p = try keyword("select parameter")
            switch p {
            case "CONDSTORE":
                parameters.condStore = true
            case "QRESYNC":
                try space()
                try expect(0x28, "\"(\" after QRESYNC")
                let validity = try nzNumber("UIDVALIDITY")
                try space()
                let modSeq = try modSequence(allowZero: false)
                var q = SelectParameters.QResync(uidValidity: validity, modSeq: modSeq)
                if consume(0x20) {
                    if peek() != 0x28 {
                        q.knownUIDs = try sequenceSet()
                        if consume(0x20) { q.sequenceMatch = try sequenceMatch() }
                    } else {
                        q.sequenceMatch = try sequenceMatch()
                    }
                }
                try expect(0x29, "\")\" after QRESYNC parameters")
                parameters.qresync = q
            default:
                throw GrammarError(.syntax, "unknown select parameter \(p)")
            }
        } while consume(0x20)
        try expect(0x29, "\")\"")
        return (name, parameters)
    }

    private mutating func sequenceMatch() throws(GrammarError) -> SelectParameters.QResync.SequenceMatch {
        try expect(0x28, "\"(\"")
        let sequences = try sequenceSet()
        try space()
        let uids = try sequenceSet()
        try expect(0x29, "\")\"")
        return .init(sequences: sequences, uids: uids)
    }

    /// ```
    /// create          = "CREATE" SP mailbox [create-params]
    /// create-params   = SP "(" create-param *( SP create-param) ")"
    /// create-param    = "USE" SP "(" [use-attr *(SP use-attr)] ")"     ; RFC 6154
    /// use-attr        = "\All" / "\Archive" / "\Drafts" / "\Flagged" /
    ///                   "\Junk" / "\Sent" / "\Trash" / use-attr-ext
    /// use-attr-ext    = "\" atom
    /// ```
    mutating func create() throws(GrammarError) -> IMAPCommand {
        try space()
        let name = try mailbox()
        var use: [String] = []
        if consume(0x20) {
            try expect(0x28, "\"(\"")
            repeat {
                let p = try keyword("create parameter")
                guard p == "USE" else { throw GrammarError(.syntax, "unknown create parameter \(p)") }
                try space()
                try expect(0x28, "\"(\" after USE")
                if !consume(0x29) {
                    repeat {
                        try expect(0x5C, "\"\\\" before special-use attribute")
                        use.append("\\" + (try atom("special-use attribute")))
                    } while consume(0x20)
                    try expect(0x29, "\")\"")
                }
            } while consume(0x20)
            try expect(0x29, "\")\"")
        }
        return .create(name, specialUse: use)
    }

    /// ```
    /// list            = "LIST" [SP list-select-opts] SP mailbox SP mbox-or-pat
    ///                   [SP list-return-opts]
    /// list-select-opts = "(" [list-select-opt *(SP list-select-opt)] ")"
    /// list-select-opt = "SUBSCRIBED" / "REMOTE" / "RECURSIVEMATCH" / "SPECIAL-USE"
    /// mbox-or-pat     = list-mailbox / patterns
    /// patterns        = "(" list-mailbox *(SP list-mailbox) ")"
    /// list-return-opts = "RETURN" SP "(" [return-option *(SP return-option)] ")"
    /// return-option   = "SUBSCRIBED" / "CHILDREN" / "SPECIAL-USE" /
    ///                   "STATUS" SP "(" status-att *(SP status-att) ")"
    /// ```
    /// RECURSIVEMATCH needs a base option (SUBSCRIBED or SPECIAL-USE; RFC 5258 §3).
    mutating func list() throws(GrammarError) -> ListCommand {
        try space()
        var command = ListCommand(reference: "", patterns: [])
        if consume(0x28) {
            command.isExtended = true
            if !consume(0x29) {
                repeat {
                    let o = try keyword("LIST select option")
                    switch o {
                    case "SUBSCRIBED": command.selectOptions.subscribed = true
                    case "REMOTE": command.selectOptions.remote = true
                    case "RECURSIVEMATCH": command.selectOptions.recursiveMatch = true
                    case "SPECIAL-USE": command.selectOptions.specialUse = true
                    default: throw GrammarError(.syntax, "unknown LIST select option \(o)")
                    }
                } while consume(0x20)
                try expect(0x29, "\")\"")
            }
            let s = command.selectOptions
            if s.recursiveMatch && !s.subscribed && !s.specialUse {
                throw GrammarError(.syntax, "RECURSIVEMATCH needs SUBSCRIBED or SPECIAL-USE")
            }
            try space()
        }
        command.reference = try astring("reference name")
        try space()
        if consume(0x28) {
            command.isExtended = true
            repeat { command.patterns.append(try listMailbox()) } while consume(0x20)
            try expect(0x29, "\")\"")
        } else {
            command.patterns = [try listMailbox()]
        }
        if consume(0x20) {
            guard consumeKeyword("RETURN") else { throw expected("RETURN") }
            command.isExtended = true
            try space()
            try expect(0x28, "\"(\" after RETURN")
            if !consume(0x29) {
                repeat {
                    let o = try keyword("LIST return option")
                    switch o {
                    case "SUBSCRIBED": command.returnOptions.subscribed = true
                    case "CHILDREN": command.returnOptions.children = true
                    case "SPECIAL-USE": command.returnOptions.specialUse = true
                    case "STATUS":
                        try space()
                        command.returnOptions.status = try statusAttributes()
                    default: throw GrammarError(.syntax, "unknown LIST return option \(o)")
                    }
                } while consume(0x20)
                try expect(0x29, "\")\"")
            }
        }
        return command
    }

    /// ```
    /// status          = "STATUS" SP mailbox SP
    ///                   "(" status-att *(SP status-att) ")"
    /// ```
    mutating func status() throws(GrammarError) -> IMAPCommand {
        try space()
        let name = try mailbox()
        try space()
        return .status(name, try statusAttributes())
    }

    /// `"(" status-att *(SP status-att) ")"`
    mutating func statusAttributes() throws(GrammarError) -> [StatusAttribute] {
        try expect(0x28, "\"(\"")
        var items: [StatusAttribute] = []
        repeat {
            let a = try keyword("status item")
            guard let item = StatusAttribute(rawValue: a) else { throw GrammarError(.syntax, "unknown status item \(a)") }
            items.append(item)
        } while consume(0x20)
        try expect(0x29, "\")\"")
        return items
    }

    /// ```
    /// setquota        = "SETQUOTA" SP quota-root-name SP setquota-list
    /// setquota-list   = "(" [setquota-resource *(SP setquota-resource)] ")"
    /// setquota-resource = resource-name SP resource-limit
    /// resource-limit  = number64
    /// ```
    mutating func setQuota() throws(GrammarError) -> IMAPCommand {
        try space()
        let root = try astring("quota root")
        try space()
        try expect(0x28, "\"(\"")
        var limits: [IMAPCommand.QuotaLimit] = []
        if !consume(0x29) {
            repeat {
                let resource = try keyword("quota resource")
                try space()
                limits.append(.init(resource: resource, limit: try number64("resource limit")))
            } while consume(0x20)
            try expect(0x29, "\")\"")
        }
        return .setQuota(root: root, limits: limits)
    }

    /// ```
    /// store           = "STORE" SP sequence-set [store-modifiers] SP store-att-flags
    /// store-modifiers = SP "(" store-modifier *(SP store-modifier) ")"
    /// store-modifier  = "UNCHANGEDSINCE" SP mod-sequence-valzer
    /// store-att-flags = (["+" / "-"] "FLAGS" [".SILENT"]) SP
    ///                   (flag-list / (flag *(SP flag)))
    /// ```
    mutating func store(uid: Bool) throws(GrammarError) -> IMAPCommand {
        try space()
        let set = try sequenceSet()
        try space()
        var unchangedSince: UInt64?
        if consume(0x28) {
            repeat {
                let m = try keyword("store modifier")
                guard m == "UNCHANGEDSINCE" else { throw GrammarError(.syntax, "unknown store modifier \(m)") }
                try space()
                unchangedSince = try modSequence(allowZero: true)
            } while consume(0x20)
            try expect(0x29, "\")\"")
            try space()
        }
        let operation: StoreModification.Operation
        if consume(0x2B) { operation = .add } else if consume(0x2D) { operation = .remove } else { operation = .replace }
        let item = upper(scan { Self.isAlpha($0) || $0 == 0x2E })
        let silent: Bool
        switch item {
        case "FLAGS": silent = false
        case "FLAGS.SILENT": silent = true
        default: throw GrammarError(.syntax, item.isEmpty ? "expected FLAGS, found \(found)" : "unknown store item \(item)")
        }
        try space()
        var flags: [IMAPFlag]
        if peek() == 0x28 {
            flags = try flagList()
        } else {
            flags = [try flag()]
            while consume(0x20) { flags.append(try flag()) }
        }
        return .store(set, StoreModification(operation: operation, silent: silent, flags: flags,
                                             unchangedSince: unchangedSince), uid: uid)
    }
}
