/// Why the grammar rejected a command (turned into an ``IMAPParseError`` with the tag).
struct GrammarError: Error {
    var kind: IMAPParseError.Kind
    var message: String

    init(_ kind: IMAPParseError.Kind = .syntax, _ message: String) {
        self.kind = kind
        self.message = message
    }
}

/// A cursor over one complete command (its lines and literals, as contiguous octets) with the
/// lexical rules of RFC 9051 §4 and §9. It never allocates per octet: tokens are ranges of `bytes`
/// until a value is built from them.
///
/// Only valid inside the `withUnsafeReadableBytes` call that produced `bytes`.
struct IMAPGrammarReader {
    let bytes: UnsafeRawBufferPointer
    var index = 0
    let maxDepth: Int
    private(set) var depth = 0

    init(_ bytes: UnsafeRawBufferPointer, maxDepth: Int) {
        self.bytes = bytes
        self.maxDepth = maxDepth
    }

    // MARK: Octet classes

    /// ```
    /// ATOM-CHAR       = <any CHAR except atom-specials>
    /// atom-specials   = "(" / ")" / "{" / SP / CTL / list-wildcards /
    ///                   quoted-specials / resp-specials
    /// list-wildcards  = "%" / "*"
    /// quoted-specials = DQUOTE / "\"
    /// resp-specials   = "]"
    /// ```
    @inline(__always) static func isAtomChar(_ b: UInt8) -> Bool {
        switch b {
        case 0x21, 0x23...0x24, 0x26...0x27, 0x2B...0x5B, 0x5E...0x7A, 0x7C...0x7E: true
        default: false
        }
    }

    /// `ASTRING-CHAR = ATOM-CHAR / resp-specials`
    @inline(__always) static func isAstringChar(_ b: UInt8) -> Bool { isAtomChar(b) || b == 0x5D }

    /// `tag = 1*<any ASTRING-CHAR except "+">`
    @inline(__always) static func isTagChar(_ b: UInt8) -> Bool { b != 0x2B && isAstringChar(b) }

    /// `list-char = ATOM-CHAR / list-wildcards / resp-specials`
    @inline(__always) static func isListChar(_ b: UInt8) -> Bool { isAstringChar(b) || b == 0x25 || b == 0x2A }

    @inline(__always) static func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }

    @inline(__always) static func isAlpha(_ b: UInt8) -> Bool { (b | 0x20) >= 0x61 && (b | 0x20) <= 0x7A }

    // MARK: Cursor

    var isAtEnd: Bool { index >= bytes.count }

    @inline(__always) func peek() -> UInt8? { index < bytes.count ? bytes[index] : nil }

    @inline(__always) func peek(at offset: Int) -> UInt8? {
        index + offset < bytes.count ? bytes[index + offset] : nil
    }

    @inline(__always) mutating func consume(_ b: UInt8) -> Bool {
        guard index < bytes.count, bytes[index] == b else { return false }
        index += 1
        return true
    }

    /// What stands at the cursor, for error texts.
    var found: String {
        guard let b = peek() else { return "end of command" }
        switch b {
        case 0x0D, 0x0A: return "end of line"
        case 0x20: return "SP"
        case 0x21...0x7E: return "\"\(Character(Unicode.Scalar(b)))\""
        default: return "octet 0x\(String(b, radix: 16, uppercase: true))"
        }
    }

    func expected(_ what: String) -> GrammarError {
        GrammarError(.syntax, "expected \(what), found \(found)")
    }

    mutating func expect(_ b: UInt8, _ what: String) throws(GrammarError) {
        guard consume(b) else { throw expected(what) }
    }

    /// `SP`
    mutating func space() throws(GrammarError) {
        guard consume(0x20) else { throw expected("SP") }
    }

    /// `CRLF` ending the command (a bare LF is accepted); nothing may follow.
    mutating func lineEnd() throws(GrammarError) {
        _ = consume(0x0D)
        guard consume(0x0A) else {
            if peek() == 0x20 { throw GrammarError(.syntax, "unexpected SP before end of line") }
            throw expected("end of line")
        }
        guard isAtEnd else { throw GrammarError(.syntax, "unexpected data after end of line") }
    }

    /// `true` when the cursor stands at the CRLF (or LF) that ends the command.
    var atLineEnd: Bool { peek() == 0x0D || peek() == 0x0A || isAtEnd }

    /// Enters one level of parentheses (or NOT/OR), failing past ``maxDepth``.
    mutating func enter() throws(GrammarError) {
        depth += 1
        if depth > maxDepth { throw GrammarError(.tooDeep, "nested more than \(maxDepth) levels deep") }
    }

    mutating func leave() { depth -= 1 }

    // MARK: Tokens

    /// Advances over octets matching `predicate`; the range read (possibly empty).
    @inline(__always) mutating func scan(_ predicate: (UInt8) -> Bool) -> Range<Int> {
        let start = index
        while index < bytes.count, predicate(bytes[index]) { index += 1 }
        return start..<index
    }

    /// The octets of `range` as ASCII upper case (short names are small strings: no allocation).
    func upper(_ range: Range<Int>) -> String {
        String(unsafeUninitializedCapacity: range.count) { out in
            for (i, b) in bytes[range].enumerated() { out[i] = b >= 0x61 && b <= 0x7A ? b - 0x20 : b }
            return range.count
        }
    }

    /// ASCII octets of `range` as written.
    func ascii(_ range: Range<Int>) -> String {
        String(decoding: UnsafeRawBufferPointer(rebasing: bytes[range]), as: UTF8.self)
    }

    /// `atom = 1*ATOM-CHAR`, as written.
    mutating func atom(_ what: String) throws(GrammarError) -> String {
        let r = scan(Self.isAtomChar)
        guard !r.isEmpty else { throw expected(what) }
        return ascii(r)
    }

    /// An atom upper-cased: a command name, a keyword of the grammar.
    mutating func keyword(_ what: String) throws(GrammarError) -> String {
        let r = scan(Self.isAtomChar)
        guard !r.isEmpty else { throw expected(what) }
        return upper(r)
    }

    /// Reads `word` (case-insensitively) when it stands at the cursor as a whole atom; else leaves
    /// the cursor where it was.
    mutating func consumeKeyword(_ word: StaticString) -> Bool {
        let n = word.utf8CodeUnitCount
        guard index + n <= bytes.count else { return false }
        let w = UnsafeRawBufferPointer(start: word.utf8Start, count: n)
        for k in 0..<n {
            let b = bytes[index + k]
            guard (b >= 0x61 && b <= 0x7A ? b - 0x20 : b) == w[k] else { return false }
        }
        if index + n < bytes.count, Self.isAtomChar(bytes[index + n]) { return false }
        index += n
        return true
    }

    /// `tag = 1*<any ASTRING-CHAR except "+">`
    mutating func tag() throws(GrammarError) -> String {
        let r = scan(Self.isTagChar)
        guard !r.isEmpty else { throw expected("tag") }
        return ascii(r)
    }

    // MARK: Numbers

    /// `number64 = 1*DIGIT` (at most 2^63-1).
    mutating func number64(_ what: String = "number") throws(GrammarError) -> UInt64 {
        let r = scan(Self.isDigit)
        guard !r.isEmpty else { throw expected(what) }
        var value: UInt64 = 0
        for b in bytes[r] {
            let (m, o1) = value.multipliedReportingOverflow(by: 10)
            let (s, o2) = m.addingReportingOverflow(UInt64(b - 0x30))
            guard !o1, !o2, s <= UInt64(Int64.max) else { throw GrammarError(.syntax, "\(what) too large") }
            value = s
        }
        return value
    }

    /// `number = 1*DIGIT` (unsigned 32-bit).
    mutating func number32(_ what: String = "number") throws(GrammarError) -> UInt32 {
        let v = try number64(what)
        guard v <= UInt64(UInt32.max) else { throw GrammarError(.syntax, "\(what) too large") }
        return UInt32(v)
    }

    /// `nz-number = digit-nz *DIGIT` (unsigned 32-bit, not zero).
    mutating func nzNumber(_ what: String = "number") throws(GrammarError) -> UInt32 {
        if peek() == 0x30 { throw GrammarError(.syntax, "\(what) must not be 0 or start with 0") }
        return try number32(what)
    }

    /// `mod-sequence-value = 1*DIGIT` (1 … 2^63-1); with `allowZero`, `mod-sequence-valzer`.
    mutating func modSequence(allowZero: Bool) throws(GrammarError) -> UInt64 {
        let v = try number64("mod-sequence")
        if v == 0 && !allowZero { throw GrammarError(.syntax, "mod-sequence must not be 0") }
        return v
    }

    // MARK: Strings

    /// Builds a String from octets, failing with `.invalidUTF8`.
    func utf8(_ range: Range<Int>) throws(GrammarError) -> String {
        let raw = UnsafeRawBufferPointer(rebasing: bytes[range])
        var ascii = true
        for b in raw where b >= 0x80 {
            ascii = false
            break
        }
        if ascii { return String(decoding: raw, as: UTF8.self) }
        guard let s = String(validating: raw, as: UTF8.self) else {
            throw GrammarError(.invalidUTF8, "string is not valid UTF-8")
        }
        return s
    }

    /// A literal's header `"{" number64 ["+"] "}" CRLF` at the cursor; returns its size. `~{` is a
    /// literal8 (only APPEND takes one; the caller decides).
    mutating func literalHeader() throws(GrammarError) -> (size: Int, binary: Bool, synchronizing: Bool) {
        let binary = consume(0x7E)
        try expect(0x7B, "\"{\"")
        let n = try number64("literal size")
        let plus = consume(0x2B)
        try expect(0x7D, "\"}\"")
        _ = consume(0x0D)
        guard consume(0x0A) else { throw expected("CRLF after literal size") }
        return (Int(n), binary, !plus)
    }

    /// `literal = "{" number64 ["+"] "}" CRLF *CHAR8` — the octets' range.
    mutating func literal() throws(GrammarError) -> Range<Int> {
        if peek() == 0x7E { throw GrammarError(.syntax, "literal8 is only allowed in APPEND") }
        let (n, _, _) = try literalHeader()
        guard n <= bytes.count - index else { throw GrammarError(.syntax, "literal truncated") }
        let r = index..<(index + n)
        // CHAR8 = %x01-ff: NUL is never allowed in a literal.
        if UnsafeRawBufferPointer(rebasing: bytes[r]).contains(0) {
            throw GrammarError(.syntax, "NUL in literal")
        }
        index += n
        return r
    }

    /// ```
    /// quoted          = DQUOTE *QUOTED-CHAR DQUOTE
    /// QUOTED-CHAR     = <any TEXT-CHAR except quoted-specials> /
    ///                   "\" quoted-specials / UTF8-2 / UTF8-3 / UTF8-4
    /// ```
    mutating func quoted() throws(GrammarError) -> String {
        try expect(0x22, "DQUOTE")
        let start = index
        var escaped = false
        while true {
            guard let b = peek() else { throw GrammarError(.syntax, "unterminated quoted string") }
            switch b {
            case 0x22:
                let end = index
                index += 1
                return escaped ? try unescape(start..<end) : try utf8(start..<end)
            case 0x5C:
                guard let e = peek(at: 1), e == 0x22 || e == 0x5C else {
                    throw GrammarError(.syntax, "invalid escape in quoted string")
                }
                escaped = true
                index += 2
            case 0x00, 0x0D, 0x0A:
                throw GrammarError(.syntax, "CR, LF or NUL in quoted string")
            default:
                index += 1
            }
        }
    }

    private func unescape(_ range: Range<Int>) throws(GrammarError) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(range.count)
        var i = range.lowerBound
        while i < range.upperBound {
            if bytes[i] == 0x5C { i += 1 }
            out.append(bytes[i])
            i += 1
        }
        guard let s = String(validating: out, as: UTF8.self) else {
            throw GrammarError(.invalidUTF8, "string is not valid UTF-8")
        }
        return s
    }

    /// `string = quoted / literal`
    mutating func string(_ what: String = "string") throws(GrammarError) -> String {
        switch peek() {
        case 0x22: return try quoted()
        case 0x7B: return try utf8(literal())
        case 0x7E where peek(at: 1) == 0x7B: return try utf8(literal())
        default: throw expected(what)
        }
    }

    /// `astring = 1*ASTRING-CHAR / string`
    mutating func astring(_ what: String = "astring") throws(GrammarError) -> String {
        switch peek() {
        case 0x22, 0x7B: return try string(what)
        case 0x7E where peek(at: 1) == 0x7B: return try string(what)
        default:
            let r = scan(Self.isAstringChar)
            guard !r.isEmpty else { throw expected(what) }
            return ascii(r)
        }
    }

    /// `nstring = string / nil`
    mutating func nstring(_ what: String = "nstring") throws(GrammarError) -> String? {
        if consumeKeyword("NIL") { return nil }
        return try string(what)
    }

    /// `mailbox = "INBOX" / astring`
    mutating func mailbox() throws(GrammarError) -> MailboxName {
        MailboxName(try astring("mailbox name"))
    }

    /// `list-mailbox = 1*list-char / string`
    mutating func listMailbox() throws(GrammarError) -> String {
        switch peek() {
        case 0x22, 0x7B: return try string("mailbox pattern")
        case 0x7E where peek(at: 1) == 0x7B: return try string("mailbox pattern")
        default:
            let r = scan(Self.isListChar)
            guard !r.isEmpty else { throw expected("mailbox pattern") }
            return ascii(r)
        }
    }

    // MARK: Flags

    /// ```
    /// flag            = "\Answered" / "\Flagged" / "\Deleted" / "\Seen" / "\Draft" /
    ///                   flag-keyword / flag-extension
    /// flag-keyword    = "$MDNSent" / "$Forwarded" / "$Junk" / "$NotJunk" / "$Phishing" / atom
    /// flag-extension  = "\" atom
    /// ```
    mutating func flag() throws(GrammarError) -> IMAPFlag {
        if consume(0x5C) {
            let r = scan(Self.isAtomChar)
            guard !r.isEmpty else { throw expected("flag name after \"\\\"") }
            return IMAPFlag("\\" + ascii(r))
        }
        return IMAPFlag(try atom("flag"))
    }

    /// `flag-list = "(" [flag *(SP flag)] ")"`
    mutating func flagList() throws(GrammarError) -> [IMAPFlag] {
        try expect(0x28, "\"(\"")
        var flags: [IMAPFlag] = []
        if consume(0x29) { return flags }
        repeat { flags.append(try flag()) } while consume(0x20)
        try expect(0x29, "\")\"")
        return flags
    }

    // MARK: Sequence sets

    /// ```
    /// sequence-set    = (seq-number / seq-range) ["," sequence-set]
    /// sequence-set    =/ seq-last-command      ; RFC 5182
    /// seq-range       = seq-number ":" seq-number
    /// seq-number      = nz-number / "*"
    /// seq-last-command = "$"
    /// ```
    mutating func sequenceSet() throws(GrammarError) -> SequenceSet {
        var ranges: [SequenceSet.Range] = []
        var last = false
        repeat {
            if consume(0x24) {
                last = true
                continue
            }
            let a = try seqNumber()
            if consume(0x3A) {
                ranges.append(SequenceSet.Range(a, try seqNumber()))
            } else {
                ranges.append(SequenceSet.Range(a, a))
            }
        } while consume(0x2C)
        var set = SequenceSet(ranges)
        set.isLastSearchResult = last
        return set
    }

    /// `seq-number = nz-number / "*"`
    mutating func seqNumber() throws(GrammarError) -> SequenceSet.Bound {
        if consume(0x2A) { return .star }
        guard let b = peek(), Self.isDigit(b) else { throw expected("sequence number") }
        return .number(try nzNumber("sequence number"))
    }

    // MARK: Dates

    static let months: [String] = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]

    /// `date-month = "Jan" / … / "Dec"` (case-insensitive): 1 … 12.
    mutating func month() throws(GrammarError) -> Int {
        let r = scan(Self.isAlpha)
        guard r.count == 3, let m = Self.months.firstIndex(of: upper(r)) else { throw GrammarError(.syntax, "invalid month") }
        return m + 1
    }

    /// `date-year = 4DIGIT`
    mutating func year() throws(GrammarError) -> Int {
        let r = scan(Self.isDigit)
        guard r.count == 4 else { throw GrammarError(.syntax, "year must have 4 digits") }
        return bytes[r].reduce(0) { $0 * 10 + Int($1 - 0x30) }
    }

    /// ```
    /// date            = date-text / DQUOTE date-text DQUOTE
    /// date-text       = date-day "-" date-month "-" date-year
    /// date-day        = 1*2DIGIT
    /// ```
    mutating func date() throws(GrammarError) -> IMAPDate {
        let quotedDate = consume(0x22)
        let d = scan(Self.isDigit)
        guard (1...2).contains(d.count) else { throw expected("date") }
        let day = bytes[d].reduce(0) { $0 * 10 + Int($1 - 0x30) }
        guard (1...31).contains(day) else { throw GrammarError(.syntax, "invalid day of month") }
        try expect(0x2D, "\"-\" in date")
        let month = try month()
        try expect(0x2D, "\"-\" in date")
        let year = try year()
        if quotedDate { try expect(0x22, "DQUOTE after date") }
        try Self.checkDay(day, month: month, year: year)
        return IMAPDate(year: year, month: month, day: day)
    }

    /// A day past the end of its month (`31-Feb-2021`) is refused rather than rolled over into the
    /// next month (an APPEND would otherwise store a different INTERNALDATE than the one given).
    private static func checkDay(_ day: Int, month: Int, year: Int) throws(GrammarError) {
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
        let days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        guard (1...12).contains(month), day <= days[month - 1] else { throw GrammarError(.syntax, "invalid day of month") }
    }

    private mutating func twoDigits(_ what: String, max: Int) throws(GrammarError) -> Int {
        guard let a = peek(), let b = peek(at: 1), Self.isDigit(a), Self.isDigit(b) else { throw expected(what) }
        index += 2
        let v = Int(a - 0x30) * 10 + Int(b - 0x30)
        guard v <= max else { throw GrammarError(.syntax, "invalid \(what)") }
        return v
    }

    /// ```
    /// date-time       = DQUOTE date-day-fixed "-" date-month "-" date-year
    ///                   SP time SP zone DQUOTE
    /// date-day-fixed  = (SP DIGIT) / 2DIGIT
    /// time            = 2DIGIT ":" 2DIGIT ":" 2DIGIT
    /// zone            = ("+" / "-") 4DIGIT
    /// ```
    mutating func dateTime() throws(GrammarError) -> IMAPDateTime {
        try expect(0x22, "DQUOTE before date-time")
        _ = consume(0x20)
        let d = scan(Self.isDigit)
        guard (1...2).contains(d.count) else { throw expected("day in date-time") }
        let day = bytes[d].reduce(0) { $0 * 10 + Int($1 - 0x30) }
        guard (1...31).contains(day) else { throw GrammarError(.syntax, "invalid day of month") }
        try expect(0x2D, "\"-\" in date-time")
        let month = try month()
        try expect(0x2D, "\"-\" in date-time")
        let year = try year()
        try Self.checkDay(day, month: month, year: year)
        try space()
        let hour = try twoDigits("hour", max: 23)
        try expect(0x3A, "\":\" in time")
        let minute = try twoDigits("minute", max: 59)
        try expect(0x3A, "\":\" in time")
        let second = try twoDigits("second", max: 60)
        try space()
        let sign: Int
        if consume(0x2B) { sign = 1 } else if consume(0x2D) { sign = -1 } else { throw expected("zone") }
        let zh = try twoDigits("zone", max: 99)
        let zm = try twoDigits("zone", max: 59)
        try expect(0x22, "DQUOTE after date-time")
        return IMAPDateTime(date: IMAPDate(year: year, month: month, day: day), hour: hour, minute: minute,
                            second: second, zoneMinutes: sign * (zh * 60 + zm))
    }
}
