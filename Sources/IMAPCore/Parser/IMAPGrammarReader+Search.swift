extension IMAPGrammarReader {
    /// ```
    /// search          = "SEARCH" [search-return-opts] SP search-program
    /// search-return-opts = SP "RETURN" SP "(" [search-return-opt *(SP search-return-opt)] ")"
    /// search-return-opt  = "MIN" / "MAX" / "ALL" / "COUNT" / "SAVE"
    /// search-program  = ["CHARSET" SP charset SP] search-key *(SP search-key)
    /// charset         = atom / quoted
    /// ```
    /// One key is returned as it is; several as ``SearchKey/and(_:)``.
    mutating func search(uid: Bool) throws(GrammarError) -> IMAPCommand {
        try space()
        var returnOptions: SearchReturnOptions?
        if consumeKeyword("RETURN") {
            try space()
            try expect(0x28, "\"(\" after RETURN")
            var o = SearchReturnOptions()
            if !consume(0x29) {
                repeat {
                    let name = try keyword("search return option")
                    switch name {
                    case "MIN": o.min = true
                    case "MAX": o.max = true
                    case "ALL": o.all = true
                    case "COUNT": o.count = true
                    case "SAVE": o.save = true
                    default: throw GrammarError(.syntax, "unknown search return option \(name)")
                    }
                } while consume(0x20)
                try expect(0x29, "\")\"")
            }
            returnOptions = o
            try space()
        }
        var charset: String?
        if consumeKeyword("CHARSET") {
            try space()
            charset = try charsetName()
            try space()
        }
        return .search(SearchCommand(returnOptions: returnOptions, charset: charset, key: try searchKeys()), uid: uid)
    }

    /// `charset = atom / quoted`
    mutating func charsetName() throws(GrammarError) -> String {
        peek() == 0x22 ? try quoted() : try atom("charset")
    }

    /// `search-key *(SP search-key)`, up to the end of the line.
    mutating func searchKeys() throws(GrammarError) -> SearchKey {
        let first = try searchKey()
        guard peek() == 0x20 else { return first }
        var keys = [first]
        while consume(0x20) { keys.append(try searchKey()) }
        return .and(keys)
    }

    /// ```
    /// search-key      = "ALL" / "ANSWERED" / "BCC" SP astring /
    ///                   "BEFORE" SP date / "BODY" SP astring /
    ///                   "CC" SP astring / "DELETED" / "FLAGGED" /
    ///                   "FROM" SP astring / "KEYWORD" SP flag-keyword /
    ///                   "ON" SP date / "SEEN" /
    ///                   "SINCE" SP date / "SUBJECT" SP astring /
    ///                   "TEXT" SP astring / "TO" SP astring /
    ///                   "UNANSWERED" / "UNDELETED" / "UNFLAGGED" /
    ///                   "UNKEYWORD" SP flag-keyword / "UNSEEN" /
    ///                   "DRAFT" / "HEADER" SP header-fld-name SP astring /
    ///                   "LARGER" SP number64 / "NOT" SP search-key /
    ///                   "OR" SP search-key SP search-key /
    ///                   "SENTBEFORE" SP date / "SENTON" SP date /
    ///                   "SENTSINCE" SP date / "SMALLER" SP number64 /
    ///                   "UID" SP sequence-set / "UNDRAFT" / sequence-set /
    ///                   "(" search-key *(SP search-key) ")"
    ///                   ; RFC 3501: "NEW" / "OLD" / "RECENT"
    ///                   ; RFC 7162: search-modsequence
    /// search-modsequence = "MODSEQ" [search-modseq-ext] SP mod-sequence-valzer
    /// search-modseq-ext  = SP entry-name SP entry-type-req
    /// entry-type-req  = "priv" / "shared" / "all"
    /// ```
    /// A parenthesised list is always ``SearchKey/and(_:)``; NOT, OR and parentheses count towards
    /// the depth limit.
    mutating func searchKey() throws(GrammarError) -> SearchKey {
        guard let b = peek() else { throw expected("search key") }
        if b == 0x28 {
            try enter()
            index += 1
            var keys = [try searchKey()]
            while consume(0x20) { keys.append(try searchKey()) }
            try expect(0x29, "\")\"")
            leave()
            return .and(keys)
        }
        if Self.isDigit(b) || b == 0x2A || b == 0x24 { return .sequenceNumbers(try sequenceSet()) }
        let name = try keyword("search key")
        switch name {
        case "ALL": return .all
        case "ANSWERED": return .answered
        case "DELETED": return .deleted
        case "DRAFT": return .draft
        case "FLAGGED": return .flagged
        case "SEEN": return .seen
        case "UNANSWERED": return .unanswered
        case "UNDELETED": return .undeleted
        case "UNDRAFT": return .undraft
        case "UNFLAGGED": return .unflagged
        case "UNSEEN": return .unseen
        case "NEW": return .new
        case "OLD": return .old
        case "RECENT": return .recent
        case "KEYWORD", "UNKEYWORD":
            try space()
            let flag = IMAPFlag(try atom("keyword"))
            return name == "KEYWORD" ? .keyword(flag) : .unkeyword(flag)
        case "BCC", "CC", "FROM", "TO", "SUBJECT", "BODY", "TEXT":
            try space()
            let s = try astring("search string")
            switch name {
            case "BCC": return .bcc(s)
            case "CC": return .cc(s)
            case "FROM": return .from(s)
            case "TO": return .to(s)
            case "SUBJECT": return .subject(s)
            case "BODY": return .body(s)
            default: return .text(s)
            }
        case "HEADER":
            try space()
            let field = try astring("header field name")
            try space()
            return .header(field: field, value: try astring("search string"))
        case "BEFORE", "ON", "SINCE", "SENTBEFORE", "SENTON", "SENTSINCE":
            try space()
            let d = try date()
            switch name {
            case "BEFORE": return .before(d)
            case "ON": return .on(d)
            case "SINCE": return .since(d)
            case "SENTBEFORE": return .sentBefore(d)
            case "SENTON": return .sentOn(d)
            default: return .sentSince(d)
            }
        case "LARGER":
            try space()
            return .larger(try number64("size"))
        case "SMALLER":
            try space()
            return .smaller(try number64("size"))
        case "UID":
            try space()
            return .uid(try sequenceSet())
        case "MODSEQ":
            try space()
            if peek() == 0x22 {
                _ = try quoted()
                try space()
                let type = try keyword("entry type")
                guard type == "PRIV" || type == "SHARED" || type == "ALL" else {
                    throw GrammarError(.syntax, "unknown entry type \(type)")
                }
                try space()
            }
            return .modSeq(try modSequence(allowZero: true))
        case "NOT":
            try space()
            try enter()
            let key = try searchKey()
            leave()
            return .not(key)
        case "OR":
            try space()
            try enter()
            let a = try searchKey()
            try space()
            let b = try searchKey()
            leave()
            return .or(a, b)
        default:
            throw GrammarError(.syntax, "unknown search key \(name.utf8.count > 32 ? String(name.prefix(32)) + "…" : name)")
        }
    }

    /// ```
    /// sort            = ["UID" SP] "SORT" SP sort-criteria SP search-criteria
    /// sort-criteria   = "(" sort-criterion *(SP sort-criterion) ")"
    /// sort-criterion  = ["REVERSE" SP] sort-key
    /// sort-key        = "ARRIVAL" / "CC" / "DATE" / "FROM" / "SIZE" / "SUBJECT" / "TO"
    /// search-criteria = charset 1*(SP search-key)
    /// ```
    mutating func sort(uid: Bool) throws(GrammarError) -> IMAPCommand {
        try space()
        try expect(0x28, "\"(\" before sort criteria")
        var criteria: [SortCriterion] = []
        repeat {
            var name = try keyword("sort key")
            var reverse = false
            if name == "REVERSE" {
                reverse = true
                try space()
                name = try keyword("sort key")
            }
            guard let key = SortCriterion.Key(rawValue: name) else { throw GrammarError(.syntax, "unknown sort key \(name)") }
            criteria.append(SortCriterion(key, reverse: reverse))
        } while consume(0x20)
        try expect(0x29, "\")\"")
        try space()
        let charset = try charsetName()
        try space()
        return .sort(criteria, charset: charset, key: try searchKeys(), uid: uid)
    }

    /// ```
    /// thread          = ["UID" SP] "THREAD" SP thread-alg SP search-criteria
    /// thread-alg      = "ORDEREDSUBJECT" / "REFERENCES" / thread-alg-ext
    /// thread-alg-ext  = atom
    /// ```
    mutating func thread(uid: Bool) throws(GrammarError) -> IMAPCommand {
        try space()
        let algorithm = try keyword("thread algorithm")
        try space()
        let charset = try charsetName()
        try space()
        return .thread(algorithm: algorithm, charset: charset, key: try searchKeys(), uid: uid)
    }
}
