import struct NIOCore.ByteBuffer

/// Writes server responses (RFC 9051 §7). Strings are sent as atoms, quoted strings or literals,
/// whichever the bytes allow; 8-bit text is a literal unless UTF-8 is enabled (RFC 6855).
///
/// FETCH bodies too large to hold are streamed: ``beginFetch(sequenceNumber:into:)``,
/// ``writeFetchItem(_:first:into:)``, ``beginStreamedSection(name:size:binary:first:into:)``, then the
/// octets themselves, then ``endFetch(into:)``.
///
/// String rules: an atom only where the grammar takes one (flags, capabilities, keywords); an
/// `astring` (mailbox names, quota roots) is an atom when every octet is an `ASTRING-CHAR` and it
/// is not `NIL`; everything else is a quoted string when it has no CR, LF, NUL or (unless
/// ``Options/utf8``) 8-bit octet, and a literal `{n}\r\n…` otherwise. Status texts (`resp-text`)
/// never carry CR or LF: they are replaced by spaces.
public struct IMAPResponseEncoder: Sendable {
    /// Session options that change the encoding.
    public struct Options: Hashable, Sendable {
        /// `ENABLE UTF8=ACCEPT` or IMAP4rev2: UTF-8 may appear in quoted strings.
        public var utf8: Bool
        public init(utf8: Bool = false) {
            self.utf8 = utf8
        }
    }

    public var options: Options

    /// Creates an encoder.
    public init(options: Options = Options()) {
        self.options = options
    }

    /// Writes one response, CRLF included.
    ///
    /// ```
    /// response        = *(continue-req / response-data) response-done
    /// response-data   = "*" SP (resp-cond-state / resp-cond-bye /
    ///                   mailbox-data / message-data / capability-data /
    ///                   enable-data) CRLF
    /// response-tagged = tag SP resp-cond-state CRLF
    /// resp-cond-state = ("OK" / "NO" / "BAD") SP resp-text
    /// resp-cond-bye   = "BYE" SP resp-text
    /// resp-cond-auth  = ("OK" / "PREAUTH") SP resp-text
    /// continue-req    = "+" SP (resp-text / base64) CRLF
    /// ```
    public func encode(_ response: IMAPResponse, into buffer: inout ByteBuffer) {
        switch response {
        case .tagged(let tag, let status, let code, let text):
            buffer.writeString(tag)
            buffer.writeStaticString(" ")
            writeCondition(status, code, text, into: &buffer)
        case .untagged(let status, let code, let text):
            buffer.writeStaticString("* ")
            writeCondition(status, code, text, into: &buffer)
        case .continuation(let text):
            buffer.writeStaticString("+ ")
            writeText(text, into: &buffer)
        case .capability(let names):
            // capability-data = "CAPABILITY" *(SP capability) SP "IMAP4rev2" *(SP capability)
            buffer.writeStaticString("* CAPABILITY")
            for n in names { buffer.writeStaticString(" "); writeAtom(n, into: &buffer) }
        case .enabled(let names):
            // enable-data = "ENABLED" *(SP capability)
            buffer.writeStaticString("* ENABLED")
            for n in names { buffer.writeStaticString(" "); writeAtom(n, into: &buffer) }
        case .list(let item):
            buffer.writeStaticString("* LIST ")
            writeMailboxList(item, into: &buffer)
        case .lsub(let item):
            buffer.writeStaticString("* LSUB ")
            writeMailboxList(item, into: &buffer)
        case .status(let name, let items):
            // mailbox-data =/ "STATUS" SP mailbox SP "(" [status-att-list] ")"
            // status-att-list = status-att-val *(SP status-att-val)
            buffer.writeStaticString("* STATUS ")
            writeAstring(name, into: &buffer)
            buffer.writeStaticString(" (")
            for (i, (attribute, value)) in items.enumerated() {
                if i > 0 { buffer.writeStaticString(" ") }
                buffer.writeString(attribute.rawValue)
                buffer.writeStaticString(" ")
                writeNumber(value, into: &buffer)
            }
            buffer.writeStaticString(")")
        case .flags(let flags):
            // mailbox-data =/ "FLAGS" SP flag-list
            buffer.writeStaticString("* FLAGS ")
            writeFlagList(flags, into: &buffer)
        case .exists(let n):
            // mailbox-data =/ number SP "EXISTS"
            buffer.writeStaticString("* ")
            writeNumber(n, into: &buffer)
            buffer.writeStaticString(" EXISTS")
        case .recent(let n):
            buffer.writeStaticString("* ")
            writeNumber(n, into: &buffer)
            buffer.writeStaticString(" RECENT")
        case .expunge(let n):
            // message-data = nz-number SP ("EXPUNGE" / ("FETCH" SP msg-att))
            buffer.writeStaticString("* ")
            writeNumber(n, into: &buffer)
            buffer.writeStaticString(" EXPUNGE")
        case .vanished(let earlier, let set):
            // expunged-resp = "VANISHED" [SP "(EARLIER)"] SP known-uids
            buffer.writeStaticString(earlier ? "* VANISHED (EARLIER) " : "* VANISHED ")
            writeSequenceSet(set, into: &buffer)
        case .fetch(let number, let items):
            beginFetch(sequenceNumber: number, into: &buffer)
            for (i, item) in items.enumerated() { writeFetchItem(item, first: i == 0, into: &buffer) }
            buffer.writeStaticString(")")
        case .search(let numbers, let modSeq):
            // mailbox-data =/ "SEARCH" *(SP nz-number) [SP "(" "MODSEQ" SP mod-sequence-value ")"]
            buffer.writeStaticString("* SEARCH")
            for n in numbers { buffer.writeStaticString(" "); writeNumber(n, into: &buffer) }
            if let modSeq {
                buffer.writeStaticString(" (MODSEQ ")
                writeNumber(modSeq, into: &buffer)
                buffer.writeStaticString(")")
            }
        case .extendedSearch(let result):
            writeExtendedSearch(result, into: &buffer)
        case .sort(let numbers):
            // sort-data = "SORT" *(SP nz-number)
            buffer.writeStaticString("* SORT")
            for n in numbers { buffer.writeStaticString(" "); writeNumber(n, into: &buffer) }
        case .thread(let roots):
            // thread-data = "THREAD" [SP 1*thread-list]
            buffer.writeStaticString("* THREAD")
            if !roots.isEmpty { buffer.writeStaticString(" ") }
            for root in roots {
                buffer.writeStaticString("(")
                writeThreadMembers(root, into: &buffer)
                buffer.writeStaticString(")")
            }
        case .namespace(let prefix, let delimiter):
            // namespace-response = "NAMESPACE" SP namespace SP namespace SP namespace
            // namespace = nil / "(" 1*namespace-descr ")"
            // namespace-descr = "(" string SP (DQUOTE QUOTED-CHAR DQUOTE / nil) ")"
            buffer.writeStaticString("* NAMESPACE ((")
            writeString(prefix, into: &buffer)
            buffer.writeStaticString(" ")
            writeDelimiter(delimiter, into: &buffer)
            buffer.writeStaticString(")) NIL NIL")
        case .id(let fields):
            // id-response = "ID" SP id-params-list ; RFC 2971: NIL when there is nothing to say
            buffer.writeStaticString("* ID ")
            if let fields, !fields.isEmpty {
                buffer.writeStaticString("(")
                for (i, f) in fields.enumerated() {
                    if i > 0 { buffer.writeStaticString(" ") }
                    writeString(f.name, into: &buffer)
                    buffer.writeStaticString(" ")
                    writeNString(f.value, into: &buffer)
                }
                buffer.writeStaticString(")")
            } else {
                buffer.writeStaticString("NIL")
            }
        case .quota(let root, let resources):
            // quota-response = "QUOTA" SP quota-root-name SP quota-list
            // quota-list = "(" quota-resource *(SP quota-resource) ")"
            // quota-resource = resource-name SP resource-usage SP resource-limit
            buffer.writeStaticString("* QUOTA ")
            writeAstring(root, into: &buffer)
            buffer.writeStaticString(" (")
            for (i, r) in resources.enumerated() {
                if i > 0 { buffer.writeStaticString(" ") }
                writeAtom(r.resource, into: &buffer)
                buffer.writeStaticString(" ")
                writeNumber(r.usage, into: &buffer)
                buffer.writeStaticString(" ")
                writeNumber(r.limit, into: &buffer)
            }
            buffer.writeStaticString(")")
        case .quotaRoot(let mailbox, let roots):
            // quotaroot-response = "QUOTAROOT" SP mailbox *(SP quota-root-name)
            buffer.writeStaticString("* QUOTAROOT ")
            writeAstring(mailbox, into: &buffer)
            for r in roots { buffer.writeStaticString(" "); writeAstring(r, into: &buffer) }
        }
        buffer.writeStaticString("\r\n")
    }

    /// `("OK" / "NO" / "BAD" / "BYE" / "PREAUTH") SP resp-text`
    /// ```
    /// resp-text       = ["[" resp-text-code "]" SP] [text]
    /// ```
    private func writeCondition(_ status: IMAPStatus, _ code: ResponseCode?, _ text: String, into buffer: inout ByteBuffer) {
        buffer.writeString(status.rawValue)
        buffer.writeStaticString(" ")
        if let code {
            buffer.writeStaticString("[")
            writeResponseCode(code, into: &buffer)
            buffer.writeStaticString("] ")
        }
        writeText(text, into: &buffer)
    }

    /// `text = 1*(TEXT-CHAR / UTF8-2 / UTF8-3 / UTF8-4)`: CR, LF and NUL become spaces.
    public func writeText(_ text: String, into buffer: inout ByteBuffer) {
        if !text.utf8.contains(where: { $0 == 0x0D || $0 == 0x0A || $0 == 0 }) {
            buffer.writeString(text)
            return
        }
        for b in text.utf8 { buffer.writeInteger(b == 0x0D || b == 0x0A || b == 0 ? 0x20 : b) }
    }

    /// Writes a response code (without its brackets).
    public func writeResponseCode(_ code: ResponseCode, into buffer: inout ByteBuffer) {
        switch code {
        case .alert: buffer.writeStaticString("ALERT")
        case .badCharset(let charsets):
            // "BADCHARSET" [SP "(" charset *(SP charset) ")"] ; charset = atom / quoted
            buffer.writeStaticString("BADCHARSET")
            if !charsets.isEmpty {
                buffer.writeStaticString(" (")
                for (i, c) in charsets.enumerated() {
                    if i > 0 { buffer.writeStaticString(" ") }
                    if Self.isAtom(c) { buffer.writeString(c) } else { writeString(c, into: &buffer) }
                }
                buffer.writeStaticString(")")
            }
        case .capability(let names):
            buffer.writeStaticString("CAPABILITY")
            for n in names { buffer.writeStaticString(" "); writeAtom(n, into: &buffer) }
        case .parse: buffer.writeStaticString("PARSE")
        case .permanentFlags(let flags, let allowsNew):
            // "PERMANENTFLAGS" SP "(" [flag-perm *(SP flag-perm)] ")" ; flag-perm = flag / "\*"
            buffer.writeStaticString("PERMANENTFLAGS (")
            for (i, f) in flags.enumerated() {
                if i > 0 { buffer.writeStaticString(" ") }
                writeFlag(f, into: &buffer)
            }
            if allowsNew { buffer.writeStaticString(flags.isEmpty ? "\\*" : " \\*") }
            buffer.writeStaticString(")")
        case .readOnly: buffer.writeStaticString("READ-ONLY")
        case .readWrite: buffer.writeStaticString("READ-WRITE")
        case .tryCreate: buffer.writeStaticString("TRYCREATE")
        case .uidNext(let n): buffer.writeStaticString("UIDNEXT "); writeNumber(n, into: &buffer)
        case .uidValidity(let n): buffer.writeStaticString("UIDVALIDITY "); writeNumber(n, into: &buffer)
        case .unseen(let n): buffer.writeStaticString("UNSEEN "); writeNumber(n, into: &buffer)
        case .appendUID(let validity, let uid):
            // resp-code-apnd = "APPENDUID" SP nz-number SP append-uid
            buffer.writeStaticString("APPENDUID ")
            writeNumber(validity, into: &buffer)
            buffer.writeStaticString(" ")
            writeNumber(uid, into: &buffer)
        case .copyUID(let validity, let source, let destination):
            // resp-code-copy = "COPYUID" SP nz-number SP uid-set SP uid-set
            buffer.writeStaticString("COPYUID ")
            writeNumber(validity, into: &buffer)
            buffer.writeStaticString(" ")
            writeSequenceSet(source, into: &buffer)
            buffer.writeStaticString(" ")
            writeSequenceSet(destination, into: &buffer)
        case .uidNotSticky: buffer.writeStaticString("UIDNOTSTICKY")
        case .closed: buffer.writeStaticString("CLOSED")
        case .highestModSeq(let n): buffer.writeStaticString("HIGHESTMODSEQ "); writeNumber(n, into: &buffer)
        case .noModSeq: buffer.writeStaticString("NOMODSEQ")
        case .modified(let set): buffer.writeStaticString("MODIFIED "); writeSequenceSet(set, into: &buffer)
        case .unavailable: buffer.writeStaticString("UNAVAILABLE")
        case .authenticationFailed: buffer.writeStaticString("AUTHENTICATIONFAILED")
        case .authorizationFailed: buffer.writeStaticString("AUTHORIZATIONFAILED")
        case .expired: buffer.writeStaticString("EXPIRED")
        case .privacyRequired: buffer.writeStaticString("PRIVACYREQUIRED")
        case .contactAdmin: buffer.writeStaticString("CONTACTADMIN")
        case .noPerm: buffer.writeStaticString("NOPERM")
        case .inUse: buffer.writeStaticString("INUSE")
        case .expungeIssued: buffer.writeStaticString("EXPUNGEISSUED")
        case .corruption: buffer.writeStaticString("CORRUPTION")
        case .serverBug: buffer.writeStaticString("SERVERBUG")
        case .clientBug: buffer.writeStaticString("CLIENTBUG")
        case .cannot: buffer.writeStaticString("CANNOT")
        case .limit: buffer.writeStaticString("LIMIT")
        case .overQuota: buffer.writeStaticString("OVERQUOTA")
        case .alreadyExists: buffer.writeStaticString("ALREADYEXISTS")
        case .nonexistent: buffer.writeStaticString("NONEXISTENT")
        case .notSaved: buffer.writeStaticString("NOTSAVED")
        case .hasChildren: buffer.writeStaticString("HASCHILDREN")
        case .unknownCTE: buffer.writeStaticString("UNKNOWN-CTE")
        case .tooBig: buffer.writeStaticString("TOOBIG")
        case .compressionActive: buffer.writeStaticString("COMPRESSIONACTIVE")
        case .useAttr: buffer.writeStaticString("USEATTR")
        }
    }

    /// ```
    /// mailbox-list    = "(" [mbx-list-flags] ")" SP
    ///                   (DQUOTE QUOTED-CHAR DQUOTE / nil) SP mailbox
    ///                   [SP mbox-list-extended]
    /// mbox-list-extended = "(" [mbox-list-extended-item
    ///                   *(SP mbox-list-extended-item)] ")"
    /// mbox-list-extended-item = mbox-list-extended-item-tag SP tagged-ext-val
    /// ```
    private func writeMailboxList(_ item: ListItem, into buffer: inout ByteBuffer) {
        buffer.writeStaticString("(")
        for (i, a) in item.attributes.enumerated() {
            if i > 0 { buffer.writeStaticString(" ") }
            writeAtom(a, into: &buffer)
        }
        buffer.writeStaticString(") ")
        if let d = item.delimiter { writeDelimiter(d, into: &buffer) } else { buffer.writeStaticString("NIL") }
        buffer.writeStaticString(" ")
        writeAstring(item.name, into: &buffer)
        if item.childInfoSubscribed || item.oldName != nil {
            buffer.writeStaticString(" (")
            if item.childInfoSubscribed { buffer.writeStaticString("\"CHILDINFO\" (\"SUBSCRIBED\")") }
            if let old = item.oldName {
                if item.childInfoSubscribed { buffer.writeStaticString(" ") }
                buffer.writeStaticString("\"OLDNAME\" (")
                writeAstring(old, into: &buffer)
                buffer.writeStaticString(")")
            }
            buffer.writeStaticString(")")
        }
    }

    /// `DQUOTE QUOTED-CHAR DQUOTE`
    private func writeDelimiter(_ d: Character, into buffer: inout ByteBuffer) {
        buffer.writeStaticString("\"")
        if d == "\\" || d == "\"" { buffer.writeStaticString("\\") }
        buffer.writeString(String(d))
        buffer.writeStaticString("\"")
    }

    /// ```
    /// esearch-response = "ESEARCH" [search-correlator] [SP "UID"] *(SP search-return-data)
    /// search-correlator = SP "(" "TAG" SP tag-string ")"
    /// search-return-data = "MIN" SP nz-number / "MAX" SP nz-number /
    ///                   "ALL" SP sequence-set / "COUNT" SP number /
    ///                   "MODSEQ" SP mod-sequence-value
    /// ```
    private func writeExtendedSearch(_ r: ExtendedSearchResult, into buffer: inout ByteBuffer) {
        buffer.writeStaticString("* ESEARCH (TAG ")
        writeString(r.tag, into: &buffer)
        buffer.writeStaticString(")")
        if r.uid { buffer.writeStaticString(" UID") }
        if let n = r.min { buffer.writeStaticString(" MIN "); writeNumber(n, into: &buffer) }
        if let n = r.max { buffer.writeStaticString(" MAX "); writeNumber(n, into: &buffer) }
        if let n = r.count { buffer.writeStaticString(" COUNT "); writeNumber(n, into: &buffer) }
        if let all = r.all, !all.ranges.isEmpty { buffer.writeStaticString(" ALL "); writeSequenceSet(all, into: &buffer) }
        if let n = r.modSeq { buffer.writeStaticString(" MODSEQ "); writeNumber(n, into: &buffer) }
    }

    /// ```
    /// thread-list     = "(" (thread-members / thread-nested) ")"
    /// thread-members  = nz-number *(SP nz-number) [SP thread-nested]
    /// thread-nested   = 2*thread-list
    /// ```
    /// A chain of single children stays in one list; several children are nested lists; a dummy
    /// parent (no message) writes only its children.
    private func writeThreadMembers(_ node: ThreadNode, into buffer: inout ByteBuffer) {
        var current = node
        var wroteNumber = false
        while true {
            if let m = current.message {
                if wroteNumber { buffer.writeStaticString(" ") }
                writeNumber(m, into: &buffer)
                wroteNumber = true
            }
            if current.children.count == 1 {
                current = current.children[0]
                continue
            }
            if current.children.count > 1 {
                if wroteNumber { buffer.writeStaticString(" ") }
                for child in current.children {
                    buffer.writeStaticString("(")
                    writeThreadMembers(child, into: &buffer)
                    buffer.writeStaticString(")")
                }
            }
            return
        }
    }

    // MARK: FETCH

    /// Writes `* n FETCH (`.
    ///
    /// ```
    /// message-data    = nz-number SP ("EXPUNGE" / ("FETCH" SP msg-att))
    /// msg-att         = "(" (msg-att-dynamic / msg-att-static)
    ///                   *(SP (msg-att-dynamic / msg-att-static)) ")"
    /// ```
    public func beginFetch(sequenceNumber: Int, into buffer: inout ByteBuffer) {
        buffer.writeStaticString("* ")
        writeNumber(sequenceNumber, into: &buffer)
        buffer.writeStaticString(" FETCH (")
    }

    /// Writes one item, preceded by a space unless `first`.
    ///
    /// ```
    /// msg-att-dynamic = "FLAGS" SP "(" [flag-fetch *(SP flag-fetch)] ")"
    ///                   ; RFC 7162: "MODSEQ" SP "(" permsg-modsequence ")"
    /// msg-att-static  = "ENVELOPE" SP envelope /
    ///                   "INTERNALDATE" SP date-time /
    ///                   "RFC822.SIZE" SP number64 /
    ///                   "BODY" ["STRUCTURE"] SP body /
    ///                   "BODY" section ["<" number ">"] SP nstring /
    ///                   "BINARY" section-binary SP (nstring / literal8) /
    ///                   "BINARY.SIZE" section-binary SP number /
    ///                   "UID" SP uniqueid
    /// ```
    public func writeFetchItem(_ item: FetchItem, first: Bool, into buffer: inout ByteBuffer) {
        if !first { buffer.writeStaticString(" ") }
        switch item {
        case .uid(let uid):
            buffer.writeStaticString("UID ")
            writeNumber(uid, into: &buffer)
        case .flags(let flags):
            buffer.writeStaticString("FLAGS ")
            writeFlagList(flags, into: &buffer)
        case .internalDate(let date):
            buffer.writeStaticString("INTERNALDATE ")
            writeDateTime(date, into: &buffer)
        case .rfc822Size(let n):
            buffer.writeStaticString("RFC822.SIZE ")
            writeNumber(n, into: &buffer)
        case .modSeq(let n):
            buffer.writeStaticString("MODSEQ (")
            writeNumber(n, into: &buffer)
            buffer.writeStaticString(")")
        case .envelope(let envelope):
            buffer.writeStaticString("ENVELOPE ")
            writeEnvelope(envelope, into: &buffer)
        case .bodyStructure(let body, let extensible):
            buffer.writeStaticString(extensible ? "BODYSTRUCTURE " : "BODY ")
            writeBody(body, extensible: extensible, into: &buffer)
        case .section(let name, let data):
            buffer.writeString(name)
            buffer.writeStaticString(" ")
            if var data {
                let binary = name.utf8.starts(with: "BINARY".utf8) && data.readableBytesView.contains(0)
                writeLiteralHeader(size: data.readableBytes, binary: binary, into: &buffer)
                buffer.writeBuffer(&data)
            } else {
                buffer.writeStaticString("NIL")
            }
        case .binarySize(let part, let size):
            buffer.writeStaticString("BINARY.SIZE[")
            writePart(part, into: &buffer)
            buffer.writeStaticString("] ")
            writeNumber(size, into: &buffer)
        case .encoded(var bytes):
            buffer.writeBuffer(&bytes)
        }
    }

    /// Writes `name {size}\r\n` (`~{size}` for binary content), preceded by a space unless `first`;
    /// the caller writes exactly `size` octets next.
    public func beginStreamedSection(name: String, size: Int, binary: Bool, first: Bool, into buffer: inout ByteBuffer) {
        if !first { buffer.writeStaticString(" ") }
        buffer.writeString(name)
        buffer.writeStaticString(" ")
        writeLiteralHeader(size: size, binary: binary, into: &buffer)
    }

    /// Writes `)\r\n`.
    public func endFetch(into buffer: inout ByteBuffer) {
        buffer.writeStaticString(")\r\n")
    }

    private func writePart(_ part: [Int], into buffer: inout ByteBuffer) {
        for (i, p) in part.enumerated() {
            if i > 0 { buffer.writeStaticString(".") }
            writeNumber(p, into: &buffer)
        }
    }

    private static let monthNames: [StaticString] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    /// ```
    /// date-time       = DQUOTE date-day-fixed "-" date-month "-" date-year
    ///                   SP time SP zone DQUOTE
    /// date-day-fixed  = (SP DIGIT) / 2DIGIT
    /// ```
    public func writeDateTime(_ d: IMAPDateTime, into buffer: inout ByteBuffer) {
        func two(_ n: Int, pad: UInt8 = 0x30) {
            let v = max(0, n) % 100
            buffer.writeInteger(v < 10 ? pad : UInt8(0x30 + v / 10))
            buffer.writeInteger(UInt8(0x30 + v % 10))
        }
        buffer.writeStaticString("\"")
        two(d.date.day, pad: 0x20)
        buffer.writeStaticString("-")
        buffer.writeStaticString(Self.monthNames[min(max(d.date.month, 1), 12) - 1])
        buffer.writeStaticString("-")
        let y = min(max(d.date.year, 0), 9999)
        two(y / 100)
        two(y % 100)
        buffer.writeStaticString(" ")
        two(d.hour)
        buffer.writeStaticString(":")
        two(d.minute)
        buffer.writeStaticString(":")
        two(d.second)
        buffer.writeStaticString(d.zoneMinutes < 0 ? " -" : " +")
        let z = min(abs(d.zoneMinutes), 99 * 60 + 59)
        two(z / 60)
        two(z % 60)
        buffer.writeStaticString("\"")
    }

    /// ```
    /// envelope        = "(" env-date SP env-subject SP env-from SP
    ///                   env-sender SP env-reply-to SP env-to SP env-cc SP
    ///                   env-bcc SP env-in-reply-to SP env-message-id ")"
    /// env-from        = "(" 1*address ")" / nil
    /// ```
    /// An empty sender or reply-to is sent as the from list (RFC 9051 §7.5.2).
    public func writeEnvelope(_ e: Envelope, into buffer: inout ByteBuffer) {
        buffer.writeStaticString("(")
        writeNString(e.date, into: &buffer)
        buffer.writeStaticString(" ")
        writeNString(e.subject, into: &buffer)
        for list in [e.from, e.sender.isEmpty ? e.from : e.sender, e.replyTo.isEmpty ? e.from : e.replyTo, e.to, e.cc, e.bcc] {
            buffer.writeStaticString(" ")
            writeAddresses(list, into: &buffer)
        }
        buffer.writeStaticString(" ")
        writeNString(e.inReplyTo, into: &buffer)
        buffer.writeStaticString(" ")
        writeNString(e.messageID, into: &buffer)
        buffer.writeStaticString(")")
    }

    /// `"(" 1*address ")" / nil`; `address = "(" addr-name SP addr-adl SP addr-mailbox SP addr-host ")"`
    private func writeAddresses(_ list: [EnvelopeAddress], into buffer: inout ByteBuffer) {
        guard !list.isEmpty else {
            buffer.writeStaticString("NIL")
            return
        }
        buffer.writeStaticString("(")
        for a in list {
            buffer.writeStaticString("(")
            writeNString(a.name, into: &buffer)
            buffer.writeStaticString(" ")
            writeNString(a.adl, into: &buffer)
            buffer.writeStaticString(" ")
            writeNString(a.mailbox, into: &buffer)
            buffer.writeStaticString(" ")
            writeNString(a.host, into: &buffer)
            buffer.writeStaticString(")")
        }
        buffer.writeStaticString(")")
    }

    /// ```
    /// body            = "(" (body-type-1part / body-type-mpart) ")"
    /// body-type-1part = (body-type-basic / body-type-msg / body-type-text) [SP body-ext-1part]
    /// body-type-basic = media-basic SP body-fields
    /// body-type-msg   = media-message SP body-fields SP envelope SP body SP body-fld-lines
    /// body-type-text  = media-text SP body-fields SP body-fld-lines
    /// body-fields     = body-fld-param SP body-fld-id SP body-fld-desc SP body-fld-enc SP body-fld-octets
    /// body-ext-1part  = body-fld-md5 [SP body-fld-dsp [SP body-fld-lang [SP body-fld-loc *(SP body-extension)]]]
    /// body-type-mpart = 1*body SP media-subtype [SP body-ext-mpart]
    /// body-ext-mpart  = body-fld-param [SP body-fld-dsp [SP body-fld-lang [SP body-fld-loc *(SP body-extension)]]]
    /// ```
    /// `BODY` (`extensible == false`) leaves out the extension data; `BODYSTRUCTURE` writes all of it.
    public func writeBody(_ body: BodyStructure, extensible: Bool, into buffer: inout ByteBuffer) {
        buffer.writeStaticString("(")
        switch body {
        case .multipart(let m):
            for part in m.parts { writeBody(part, extensible: extensible, into: &buffer) }
            if m.parts.isEmpty { buffer.writeStaticString("NIL") }
            buffer.writeStaticString(" ")
            writeString(m.subtype, into: &buffer)
            if extensible {
                buffer.writeStaticString(" ")
                writeParameters(m.parameters, into: &buffer)
                writeExtension(m.disposition, m.language, m.location, into: &buffer)
            }
        case .singlepart(let p):
            writeString(p.type, into: &buffer)
            buffer.writeStaticString(" ")
            writeString(p.subtype, into: &buffer)
            buffer.writeStaticString(" ")
            writeParameters(p.parameters, into: &buffer)
            buffer.writeStaticString(" ")
            writeNString(p.id, into: &buffer)
            buffer.writeStaticString(" ")
            writeNString(p.description, into: &buffer)
            buffer.writeStaticString(" ")
            writeString(p.encoding, into: &buffer)
            buffer.writeStaticString(" ")
            writeNumber(p.size, into: &buffer)
            if let message = p.message {
                buffer.writeStaticString(" ")
                writeEnvelope(message.envelope, into: &buffer)
                buffer.writeStaticString(" ")
                writeBody(message.body, extensible: extensible, into: &buffer)
                buffer.writeStaticString(" ")
                writeNumber(p.lines ?? 0, into: &buffer)
            } else if p.type.uppercased() == "TEXT" {
                buffer.writeStaticString(" ")
                writeNumber(p.lines ?? 0, into: &buffer)
            }
            if extensible {
                buffer.writeStaticString(" ")
                writeNString(p.md5, into: &buffer)
                writeExtension(p.disposition, p.language, p.location, into: &buffer)
            }
        }
        buffer.writeStaticString(")")
    }

    /// `SP body-fld-dsp SP body-fld-lang SP body-fld-loc`
    /// ```
    /// body-fld-dsp    = "(" string SP body-fld-param ")" / nil
    /// body-fld-lang   = nstring / "(" string *(SP string) ")"
    /// body-fld-loc    = nstring
    /// ```
    private func writeExtension(_ disposition: BodyStructure.Disposition?, _ language: [String]?, _ location: String?,
                                into buffer: inout ByteBuffer) {
        buffer.writeStaticString(" ")
        if let d = disposition {
            buffer.writeStaticString("(")
            writeString(d.kind, into: &buffer)
            buffer.writeStaticString(" ")
            writeParameters(d.parameters, into: &buffer)
            buffer.writeStaticString(")")
        } else {
            buffer.writeStaticString("NIL")
        }
        buffer.writeStaticString(" ")
        switch language {
        case nil, []?: buffer.writeStaticString("NIL")
        case let l? where l.count == 1: writeString(l[0], into: &buffer)
        case let l?:
            buffer.writeStaticString("(")
            for (i, s) in l.enumerated() {
                if i > 0 { buffer.writeStaticString(" ") }
                writeString(s, into: &buffer)
            }
            buffer.writeStaticString(")")
        }
        buffer.writeStaticString(" ")
        writeNString(location, into: &buffer)
    }

    /// `body-fld-param = "(" string SP string *(SP string SP string) ")" / nil`
    private func writeParameters(_ parameters: [BodyStructure.Parameter], into buffer: inout ByteBuffer) {
        guard !parameters.isEmpty else {
            buffer.writeStaticString("NIL")
            return
        }
        buffer.writeStaticString("(")
        for (i, p) in parameters.enumerated() {
            if i > 0 { buffer.writeStaticString(" ") }
            writeString(p.name, into: &buffer)
            buffer.writeStaticString(" ")
            writeString(p.value, into: &buffer)
        }
        buffer.writeStaticString(")")
    }

    // MARK: Values

    /// `flag-list = "(" [flag *(SP flag)] ")"`
    public func writeFlagList(_ flags: [IMAPFlag], into buffer: inout ByteBuffer) {
        buffer.writeStaticString("(")
        for (i, f) in flags.enumerated() {
            if i > 0 { buffer.writeStaticString(" ") }
            writeFlag(f, into: &buffer)
        }
        buffer.writeStaticString(")")
    }

    /// `flag = "\" atom / atom`; a flag that is no atom (it cannot come from a client) is dropped to
    /// its atom characters so the response stays parseable.
    public func writeFlag(_ flag: IMAPFlag, into buffer: inout ByteBuffer) {
        writeAtom(flag.name, into: &buffer, allowLeadingBackslash: true)
    }

    /// Writes an atom (capabilities, flags, list attributes); octets that are not `ATOM-CHAR`
    /// are left out, since an atom cannot carry them.
    public func writeAtom(_ atom: String, into buffer: inout ByteBuffer, allowLeadingBackslash: Bool = true) {
        if Self.isAtom(atom) || (allowLeadingBackslash && atom.utf8.first == 0x5C && Self.isAtom(String(atom.utf8.dropFirst())!)) {
            buffer.writeString(atom)
            return
        }
        for (i, b) in atom.utf8.enumerated() where IMAPGrammarReader.isAtomChar(b) || (i == 0 && b == 0x5C) {
            buffer.writeInteger(b)
        }
    }

    /// `true` when `s` is a non-empty atom.
    static func isAtom(_ s: String) -> Bool {
        !s.isEmpty && s.utf8.allSatisfy(IMAPGrammarReader.isAtomChar)
    }

    /// `astring = 1*ASTRING-CHAR / string` (mailbox names, quota roots): an atom when it can be one
    /// and is not `NIL`.
    public func writeAstring(_ s: String, into buffer: inout ByteBuffer) {
        let u = s.utf8
        if !u.isEmpty, u.allSatisfy(IMAPGrammarReader.isAstringChar),
           !(u.count == 3 && s.uppercased() == "NIL") {
            buffer.writeString(s)
        } else {
            writeString(s, into: &buffer)
        }
    }

    /// `nstring = string / nil`
    public func writeNString(_ s: String?, into buffer: inout ByteBuffer) {
        if let s { writeString(s, into: &buffer) } else { buffer.writeStaticString("NIL") }
    }

    /// `string = quoted / literal`: quoted when it may be, else a literal.
    public func writeString(_ s: String, into buffer: inout ByteBuffer) {
        var quotable = true
        var escapes = false
        for b in s.utf8 {
            switch b {
            case 0x00, 0x0D, 0x0A: quotable = false
            case 0x80...: if !options.utf8 { quotable = false }
            case 0x22, 0x5C: escapes = true
            default: break
            }
            if !quotable { break }
        }
        guard quotable else {
            writeLiteralHeader(size: s.utf8.count, binary: false, into: &buffer)
            buffer.writeString(s)
            return
        }
        buffer.writeStaticString("\"")
        if escapes {
            for b in s.utf8 {
                if b == 0x22 || b == 0x5C { buffer.writeInteger(UInt8(0x5C)) }
                buffer.writeInteger(b)
            }
        } else {
            buffer.writeString(s)
        }
        buffer.writeStaticString("\"")
    }

    /// `"{" number64 "}" CRLF` (`literal8`: `"~{" number64 "}" CRLF`).
    public func writeLiteralHeader(size: Int, binary: Bool, into buffer: inout ByteBuffer) {
        buffer.writeStaticString(binary ? "~{" : "{")
        writeNumber(size, into: &buffer)
        buffer.writeStaticString("}\r\n")
    }

    /// `sequence-set` as `1:3,5,7:*`.
    public func writeSequenceSet(_ set: SequenceSet, into buffer: inout ByteBuffer) {
        func bound(_ b: SequenceSet.Bound) {
            switch b {
            case .number(let n): writeNumber(n, into: &buffer)
            case .star: buffer.writeStaticString("*")
            }
        }
        for (i, r) in set.ranges.enumerated() {
            if i > 0 { buffer.writeStaticString(",") }
            bound(r.first)
            if r.first != r.last {
                buffer.writeStaticString(":")
                bound(r.last)
            }
        }
        if set.isLastSearchResult { buffer.writeStaticString(set.ranges.isEmpty ? "$" : ",$") }
    }

    /// A decimal number.
    public func writeNumber<N: BinaryInteger>(_ n: N, into buffer: inout ByteBuffer) {
        buffer.writeString(String(n))
    }
}
