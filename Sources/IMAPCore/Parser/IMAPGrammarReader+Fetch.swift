extension IMAPGrammarReader {
    /// ```
    /// fetch           = "FETCH" SP sequence-set SP ("ALL" / "FULL" / "FAST" /
    ///                   fetch-att / "(" fetch-att *(SP fetch-att) ")") [fetch-modifiers]
    /// fetch-modifiers = SP "(" fetch-modifier *(SP fetch-modifier) ")"
    /// fetch-modifier  = chgsince-fetch-mod / "VANISHED"        ; RFC 7162
    /// chgsince-fetch-mod = "CHANGEDSINCE" SP mod-sequence-value
    /// ```
    /// VANISHED needs UID FETCH and CHANGEDSINCE (RFC 7162 §3.2.6).
    mutating func fetch(uid: Bool) throws(GrammarError) -> IMAPCommand {
        try space()
        let set = try sequenceSet()
        try space()
        var attributes: [FetchAttribute]
        if consume(0x28) {
            attributes = [try fetchAttribute()]
            while consume(0x20) { attributes.append(try fetchAttribute()) }
            try expect(0x29, "\")\"")
        } else if consumeKeyword("ALL") {
            attributes = FetchAttribute.all
        } else if consumeKeyword("FAST") {
            attributes = FetchAttribute.fast
        } else if consumeKeyword("FULL") {
            attributes = FetchAttribute.full
        } else {
            attributes = [try fetchAttribute()]
        }
        var modifiers = FetchModifiers()
        if consume(0x20) {
            try expect(0x28, "\"(\" before fetch modifiers")
            repeat {
                let m = try keyword("fetch modifier")
                switch m {
                case "CHANGEDSINCE":
                    try space()
                    modifiers.changedSince = try modSequence(allowZero: false)
                case "VANISHED":
                    modifiers.vanished = true
                default:
                    throw GrammarError(.syntax, "unknown fetch modifier \(m)")
                }
            } while consume(0x20)
            try expect(0x29, "\")\"")
            if modifiers.vanished {
                guard uid else { throw GrammarError(.syntax, "VANISHED needs UID FETCH") }
                guard modifiers.changedSince != nil else { throw GrammarError(.syntax, "VANISHED needs CHANGEDSINCE") }
            }
        }
        return .fetch(set, attributes, modifiers, uid: uid)
    }

    /// ```
    /// fetch-att       = "ENVELOPE" / "FLAGS" / "INTERNALDATE" /
    ///                   "RFC822.SIZE" /
    ///                   "BODY" ["STRUCTURE"] / "UID" /
    ///                   "BODY" section [partial] /
    ///                   "BODY.PEEK" section [partial] /
    ///                   "BINARY" [".PEEK"] section-binary [partial] /
    ///                   "BINARY.SIZE" section-binary
    ///                   ; RFC 3501: "RFC822" / "RFC822.HEADER" / "RFC822.TEXT"
    ///                   ; RFC 7162: "MODSEQ"
    /// ```
    mutating func fetchAttribute() throws(GrammarError) -> FetchAttribute {
        let r = scan { Self.isAlpha($0) || Self.isDigit($0) || $0 == 0x2E }
        guard !r.isEmpty else { throw expected("fetch attribute") }
        let name = upper(r)
        switch name {
        case "ENVELOPE": return .envelope
        case "FLAGS": return .flags
        case "INTERNALDATE": return .internalDate
        case "RFC822.SIZE": return .rfc822Size
        case "RFC822": return .rfc822
        case "RFC822.HEADER": return .rfc822Header
        case "RFC822.TEXT": return .rfc822Text
        case "BODYSTRUCTURE": return .bodyStructure(extensible: true)
        case "UID": return .uid
        case "MODSEQ": return .modSeq
        case "BODY", "BODY.PEEK":
            guard peek() == 0x5B else {
                if name == "BODY" { return .bodyStructure(extensible: false) }
                throw expected("\"[\" after BODY.PEEK")
            }
            let section = try section()
            return .bodySection(section, partial: try partial(), peek: name == "BODY.PEEK")
        case "BINARY", "BINARY.PEEK":
            let part = try sectionBinary()
            return .binary(part: part, partial: try partial(), peek: name == "BINARY.PEEK")
        case "BINARY.SIZE":
            return .binarySize(part: try sectionBinary())
        default:
            throw GrammarError(.syntax, "unknown fetch attribute \(name)")
        }
    }

    /// ```
    /// section         = "[" [section-spec] "]"
    /// section-spec    = section-msgtext / (section-part ["." section-text])
    /// section-msgtext = "HEADER" / "HEADER.FIELDS" [".NOT"] SP header-list / "TEXT"
    /// section-part    = nz-number *("." nz-number)
    /// section-text    = section-msgtext / "MIME"
    /// header-list     = "(" header-fld-name *(SP header-fld-name) ")"
    /// header-fld-name = astring
    /// ```
    mutating func section() throws(GrammarError) -> SectionSpecifier {
        try expect(0x5B, "\"[\"")
        var part: [Int] = []
        var kind = SectionSpecifier.Kind.complete
        if let b = peek(), Self.isDigit(b) {
            part.append(Int(try nzNumber("section part")))
            while consume(0x2E) {
                if let b = peek(), Self.isDigit(b) {
                    part.append(Int(try nzNumber("section part")))
                } else {
                    kind = try sectionText(afterPart: true)
                    break
                }
            }
        } else if peek() != 0x5D {
            kind = try sectionText(afterPart: false)
        }
        try expect(0x5D, "\"]\"")
        return SectionSpecifier(part: part, kind: kind)
    }

    private mutating func sectionText(afterPart: Bool) throws(GrammarError) -> SectionSpecifier.Kind {
        let r = scan { Self.isAlpha($0) || $0 == 0x2E }
        guard !r.isEmpty else { throw expected("section text") }
        let text = upper(r)
        switch text {
        case "HEADER": return .header
        case "TEXT": return .text
        case "MIME":
            guard afterPart else { throw GrammarError(.syntax, "MIME needs a part number") }
            return .mime
        case "HEADER.FIELDS", "HEADER.FIELDS.NOT":
            try space()
            try expect(0x28, "\"(\" before header list")
            var names = [try astring("header field name")]
            while consume(0x20) { names.append(try astring("header field name")) }
            try expect(0x29, "\")\" after header list")
            return text == "HEADER.FIELDS" ? .headerFields(names) : .headerFieldsNot(names)
        default:
            throw GrammarError(.syntax, "unknown section text \(text)")
        }
    }

    /// `section-binary = "[" [section-part] "]"`
    mutating func sectionBinary() throws(GrammarError) -> [Int] {
        try expect(0x5B, "\"[\"")
        var part: [Int] = []
        if !consume(0x5D) {
            repeat { part.append(Int(try nzNumber("section part"))) } while consume(0x2E)
            try expect(0x5D, "\"]\"")
        }
        return part
    }

    /// `partial = "<" number64 "." nz-number64 ">"`
    mutating func partial() throws(GrammarError) -> Partial? {
        guard consume(0x3C) else { return nil }
        let offset = try number64("partial offset")
        try expect(0x2E, "\".\" in partial")
        if peek() == 0x30 { throw GrammarError(.syntax, "partial length must not be 0") }
        let length = try number64("partial length")
        try expect(0x3E, "\">\"")
        return Partial(offset: offset, length: length)
    }
}
