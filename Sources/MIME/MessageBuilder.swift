#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import MailCore
import struct NIOCore.ByteBuffer

/// Builds an RFC 5322 / MIME message: headers in any script, text and HTML bodies, attachments and
/// inline images.
///
/// ```swift
/// var m = MessageBuilder()
/// m.from = MailboxAddress("发件人名称 <alice@example.test>")
/// m.to = [MailboxAddress(address: "bob@example.test")]
/// m.subject = "你好, Bob"
/// m.textBody = "Hello\n"
/// m.attachments = [.init(filename: "报告.pdf", data: pdfBytes)]
/// let message = m.build()       // message.bytes, message.envelopeRecipients
/// ```
///
/// Output is canonical: CRLF line ends, every line ≤ 998 octets and ≤ 78 wherever the content allows,
/// 7-bit clean (non-ASCII travels as RFC 2047 encoded words, RFC 2231 parameters, quoted-printable or
/// base64). Structure: `multipart/mixed` (when there are attachments) around `multipart/alternative`
/// (text + HTML) whose HTML sits in `multipart/related` with the inline images.
///
/// - SeeAlso: RFC 5322 §3.6, RFC 2045 §6, RFC 2046 §5.1, RFC 2047, RFC 2183, RFC 2231, RFC 2387, RFC 2392
public struct MessageBuilder: Sendable {
    /// A file to attach, or an inline image referenced from the HTML as `cid:<contentID>`.
    public struct Attachment: Hashable, Sendable {
        /// The file name shown to the recipient (any script).
        public var filename: String
        /// `type/subtype`.
        public var contentType: String
        /// The file's octets.
        public var data: [UInt8]
        /// The `Content-ID` (without angle brackets) for inline images (RFC 2392).
        public var contentID: String?

        /// Creates an attachment; without `contentType` the type comes from the file extension
        /// (``MediaTypes/forFilename(_:)``).
        public init(filename: String, data: [UInt8], contentType: String? = nil, contentID: String? = nil) {
            self.filename = filename
            self.data = data
            self.contentType = contentType ?? MediaTypes.forFilename(filename)
            self.contentID = contentID
        }
    }

    /// A rendered message with what the SMTP envelope needs.
    public struct Built: Hashable, Sendable {
        /// The message, CRLF line ends.
        public var bytes: [UInt8]
        /// The `Message-ID` field value, angle brackets included.
        public var messageID: String
        /// The From address (for `MAIL FROM`), when set.
        public var envelopeSender: String?
        /// To + Cc + Bcc addresses, duplicates removed (for `RCPT TO`).
        public var envelopeRecipients: [String]

        /// The message in a `ByteBuffer`.
        public var byteBuffer: ByteBuffer { ByteBuffer(bytes: bytes) }
    }

    /// `From` (RFC 5322 §3.6.2).
    public var from: MailboxAddress?
    /// `Sender`, when different from `From` (RFC 5322 §3.6.2).
    public var sender: MailboxAddress?
    /// `To` (RFC 5322 §3.6.3).
    public var to: [MailboxAddress] = []
    /// `Cc` (RFC 5322 §3.6.3).
    public var cc: [MailboxAddress] = []
    /// Blind copies: envelope recipients, left out of the header unless ``includeBccHeader`` is set.
    public var bcc: [MailboxAddress] = []
    /// `Reply-To` (RFC 5322 §3.6.2).
    public var replyTo: [MailboxAddress] = []
    /// `Subject` in any script (RFC 5322 §3.6.5, RFC 2047).
    public var subject: String?
    /// `Date` text (RFC 5322 §3.3); the current time when `nil`.
    public var date: String?
    /// `Message-ID` with or without angle brackets; `<random@hostname>` when `nil` (RFC 5322 §3.6.4).
    public var messageID: String?
    /// The host name for a generated `Message-ID`; the machine's name when `nil`.
    public var hostname: String?
    /// The plain-text body.
    public var textBody: String?
    /// The HTML body (sent as `multipart/alternative` with the text body when both are set).
    public var htmlBody: String?
    /// Files attached (`multipart/mixed`).
    public var attachments: [Attachment] = []
    /// Images shown inside the HTML (`multipart/related`, RFC 2387); each needs a content ID, the
    /// file name when not set.
    public var inlineImages: [Attachment] = []
    /// Further header fields, placed after the standard ones; values are folded and encoded as needed.
    public var additionalHeaders: [MIMEHeaderField] = []
    /// Write a `Bcc` field too (off by default: the recipients would see each other).
    public var includeBccHeader = false

    /// An empty message.
    public init() {}

    /// The address for `MAIL FROM`.
    public var envelopeSender: String? { (sender ?? from)?.address }

    /// To + Cc + Bcc addresses in order, duplicates (case-insensitive) removed.
    public var envelopeRecipients: [String] {
        var seen = Set<String>()
        var out: [String] = []
        for m in to + cc + bcc where seen.insert(m.address.lowercased()).inserted { out.append(m.address) }
        return out
    }

    /// Renders the message.
    public func build() -> Built {
        let id = messageID.map { $0.hasPrefix("<") ? $0 : "<\($0)>" } ?? Self.generateMessageID(hostname: hostname ?? Self.localHostname())
        var head: [String] = []
        head.append(HeaderFolder.fold(name: "Date", [.plain(Self.clean(date ?? MessageDate.now()))]))
        if let f = from { head.append(Self.addressField("From", [f])) }
        if let s = sender { head.append(Self.addressField("Sender", [s])) }
        if !replyTo.isEmpty { head.append(Self.addressField("Reply-To", replyTo)) }
        if !to.isEmpty { head.append(Self.addressField("To", to)) }
        if !cc.isEmpty { head.append(Self.addressField("Cc", cc)) }
        if includeBccHeader, !bcc.isEmpty { head.append(Self.addressField("Bcc", bcc)) }
        if let s = subject { head.append(Self.unstructuredField("Subject", s)) }
        head.append(HeaderFolder.fold(name: "Message-ID", [.plain(Self.clean(id))]))
        head.append("MIME-Version: 1.0")
        for f in additionalHeaders {
            let name = String(f.name.unicodeScalars.filter { $0.value > 0x20 && $0.value < 0x7F && $0 != ":" })
            guard !name.isEmpty else { continue }
            head.append(Self.unstructuredField(name, f.value))
        }
        let body = Self.render(node: structure(), extraHeaders: head)
        return Built(bytes: body, messageID: id, envelopeSender: envelopeSender, envelopeRecipients: envelopeRecipients)
    }

    /// Renders the message (``build()``'s bytes).
    public func render() -> [UInt8] { build().bytes }

    // MARK: - Structure

    indirect enum Node {
        case leaf(headers: [String], body: [UInt8])
        case multipart(subtype: String, parameters: [String], children: [Node])
    }

    func structure() -> Node {
        var core: Node
        let text = textBody.map { Self.textLeaf($0, subtype: "plain") }
        var html = htmlBody.map { Self.textLeaf($0, subtype: "html") }
        if let h = html, !inlineImages.isEmpty {
            html = .multipart(subtype: "related", parameters: ["type=\"text/html\""],
                              children: [h] + inlineImages.map { Self.fileLeaf($0, inline: true) })
        }
        switch (text, html) {
        case let (t?, h?): core = .multipart(subtype: "alternative", parameters: [], children: [t, h])
        case let (t?, nil): core = t
        case let (nil, h?): core = h
        case (nil, nil): core = Self.textLeaf("", subtype: "plain")
        }
        var files = attachments.map { Self.fileLeaf($0, inline: false) }
        if htmlBody == nil { files += inlineImages.map { Self.fileLeaf($0, inline: true) } }
        if !files.isEmpty { core = .multipart(subtype: "mixed", parameters: [], children: [core] + files) }
        return core
    }

    /// A UTF-8 text part: 7bit when ASCII with short lines, else the shorter of quoted-printable and base64.
    static func textLeaf(_ text: String, subtype: String) -> Node {
        let bytes = canonicalLineEnds(Array(text.utf8))
        let (cte, body) = encodeText(bytes)
        let charset = bytes.allSatisfy { $0 < 0x80 } ? "us-ascii" : "utf-8"
        var headers = [HeaderFolder.fold(name: "Content-Type", [.plain("text/\(subtype);"), .plain("charset=\(charset)")])]
        headers.append("Content-Transfer-Encoding: \(cte)")
        return .leaf(headers: headers, body: body)
    }

    static func encodeText(_ bytes: [UInt8]) -> (String, [UInt8]) {
        var ascii = true
        var longest = 0
        var lines = LineIterator(bytes, 0..<bytes.count)
        while let l = lines.next() {
            longest = max(longest, l.contentEnd - l.start)
            if bytes[l.start..<l.contentEnd].contains(where: { $0 >= 0x80 || $0 == 0 || $0 == .cr }) { ascii = false }
        }
        if ascii && longest <= 78 {
            var body = bytes
            if !body.isEmpty, body.last != .lf { body += [.cr, .lf] }
            return ("7bit", body)
        }
        let qp = QuotedPrintable.encode(bytes)
        let b64Length = (bytes.count + 2) / 3 * 4 * 78 / 76
        if qp.count <= b64Length {
            var body = qp
            if !body.isEmpty, body.last != .lf { body += [.cr, .lf] }
            return ("quoted-printable", body)
        }
        return ("base64", MIMEBase64.encode(bytes))
    }

    static func fileLeaf(_ a: Attachment, inline: Bool) -> Node {
        let type = clean(a.contentType).filter { !$0.isWhitespace }
        let name = clean(a.filename)
        var ctTokens: [HeaderFolder.Token] = [.plain(type.contains("/") ? type : "application/octet-stream")]
        ctTokens += [.glued(";")] + nameParameter(name)
        var headers = [HeaderFolder.fold(name: "Content-Type", ctTokens)]
        var cdTokens: [HeaderFolder.Token] = [.plain(inline ? "inline" : "attachment")]
        for p in rfc2231Parameter("filename", name) { cdTokens += [.glued(";"), .plain(p)] }
        headers.append(HeaderFolder.fold(name: "Content-Disposition", cdTokens))
        headers.append("Content-Transfer-Encoding: base64")
        if inline || a.contentID != nil {
            let cid = clean(a.contentID ?? a.filename).filter { !$0.isWhitespace && $0 != "<" && $0 != ">" }
            headers.append(HeaderFolder.fold(name: "Content-ID", [.plain("<\(cid)>")]))
        }
        return .leaf(headers: headers, body: MIMEBase64.encode(a.data))
    }

    /// `name="…"` for Content-Type: plain when short ASCII, else RFC 2047 encoded words inside the quotes
    /// (the fallback that RFC 2231-unaware readers understand).
    static func nameParameter(_ name: String) -> [HeaderFolder.Token] {
        if name.isASCII, !name.contains("=?"), name.utf8.count <= 60 {
            return [.plain("name=" + quoteIfNeeded(name))]
        }
        let words = EncodedWord.encodeSplitting(name, useQ: false, firstLimit: 60, limit: 70)
        var tokens: [HeaderFolder.Token] = []
        for (i, w) in words.enumerated() {
            var s = w
            if i == 0 { s = "name=\"" + s }
            if i == words.count - 1 { s += "\"" }
            tokens.append(.plain(s))
        }
        return tokens
    }

    /// RFC 2231 parameter sections: `filename="x"` when short ASCII, `filename*=UTF-8''…` when short
    /// otherwise, else `filename*0*=UTF-8''…; filename*1*=…` sections of about 60 characters,
    /// split between characters.
    static func rfc2231Parameter(_ attribute: String, _ value: String) -> [String] {
        let plainOK = value.isASCII && !value.contains("=?") && value.unicodeScalars.allSatisfy { $0.value >= 0x20 && $0.value < 0x7F }
        if plainOK {
            let q = quoteIfNeeded(value)
            if q.utf8.count + attribute.utf8.count + 1 <= 70 { return ["\(attribute)=\(q)"] }
        }
        func pct(_ s: String) -> String {
            var out = ""
            for b in s.utf8 {
                let safe = (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || "!#$&+-.^_`|~".utf8.contains(b)
                if safe { out.unicodeScalars.append(Unicode.Scalar(b)) } else {
                    out += "%" + String(decoding: [hexDigitsUpper[Int(b >> 4)], hexDigitsUpper[Int(b & 0x0F)]], as: UTF8.self)
                }
            }
            return out
        }
        let whole = pct(value)
        if whole.utf8.count + attribute.utf8.count + 9 <= 70 { return ["\(attribute)*=UTF-8''\(whole)"] }
        var sections: [String] = []
        var current = ""
        for ch in value {
            let e = pct(String(ch))
            let limit = sections.isEmpty ? 52 : 60
            if !current.isEmpty, current.utf8.count + e.utf8.count > limit {
                sections.append(current)
                current = ""
            }
            current += e
        }
        if !current.isEmpty || sections.isEmpty { sections.append(current) }
        return sections.enumerated().map { i, s in i == 0 ? "\(attribute)*0*=UTF-8''\(s)" : "\(attribute)*\(i)*=\(s)" }
    }

    static func render(node: Node, extraHeaders: [String]) -> [UInt8] {
        var out: [UInt8] = []
        render(node, extraHeaders: extraHeaders, into: &out)
        return out
    }

    static func render(_ node: Node, extraHeaders: [String], into out: inout [UInt8]) {
        for h in extraHeaders { appendLine(h, to: &out) }
        switch node {
        case .leaf(let headers, let body):
            for h in headers { appendLine(h, to: &out) }
            out.append(.cr)
            out.append(.lf)
            out += body
        case .multipart(let subtype, let parameters, let children):
            var rendered: [[UInt8]] = []
            for c in children {
                var b: [UInt8] = []
                render(c, extraHeaders: [], into: &b)
                rendered.append(b)
            }
            var boundary = randomBoundary()
            while rendered.contains(where: { containsSequence($0, Array(("--" + boundary).utf8)) }) { boundary = randomBoundary() }
            var tokens: [HeaderFolder.Token] = [.plain("multipart/\(subtype);")]
            for p in parameters { tokens += [.plain(p), .glued(";")] }
            tokens.append(.plain("boundary=\"\(boundary)\""))
            appendLine(HeaderFolder.fold(name: "Content-Type", tokens), to: &out)
            out.append(.cr)
            out.append(.lf)
            out.append(contentsOf: "This is a multi-part message in MIME format.\r\n".utf8)
            for r in rendered {
                out.append(contentsOf: "\r\n--\(boundary)\r\n".utf8)
                out += r
            }
            out.append(contentsOf: "\r\n--\(boundary)--\r\n".utf8)
        }
    }

    /// `line` and CRLF, without temporary arrays.
    static func appendLine(_ line: String, to out: inout [UInt8]) {
        out.append(contentsOf: line.utf8)
        out.append(.cr)
        out.append(.lf)
    }

    static func randomBoundary() -> String {
        var g = SystemRandomNumberGenerator()
        var s = "=_swallow_"
        for _ in 0..<24 { s.append(Character(Unicode.Scalar(hexDigitsUpper[Int(g.next() % 16)]))) }
        return s
    }

    static func generateMessageID(hostname: String) -> String {
        var g = SystemRandomNumberGenerator()
        var s = "<"
        for _ in 0..<2 { s += String(g.next(), radix: 36) }
        let host = hostname.filter { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "-") }
        return s + "@" + (host.isEmpty ? "localhost" : host) + ">"
    }

    static func localHostname() -> String {
        var buf = [CChar](repeating: 0, count: 256)
        guard gethostname(&buf, buf.count - 1) == 0 else { return "localhost" }
        let bytes = buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        return String(decoding: bytes, as: UTF8.self)
    }

    // MARK: - Header fields

    /// An address-list field; display names that need it become encoded words (RFC 2047 §5 (3)).
    static func addressField(_ name: String, _ list: [MailboxAddress]) -> String {
        var tokens: [HeaderFolder.Token] = []
        for (i, m) in list.enumerated() {
            if i > 0 { tokens.append(.glued(",")) }
            let address = clean(m.address)
            if let display = m.displayName.map(clean), !display.isEmpty {
                if display.isASCII, !display.contains("=?"), display.utf8.count < 200,
                   display.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value < 0x7F }) {
                    tokens.append(.plain(MailboxAddress.phrase(display)))
                } else {
                    tokens.append(.encoded(display))
                }
                tokens.append(.plain("<\(address)>"))
            } else {
                tokens.append(.plain(address))
            }
        }
        return HeaderFolder.fold(name: name, tokens)
    }

    /// An unstructured field: ASCII words as they are, runs of words that need it as encoded words.
    static func unstructuredField(_ name: String, _ value: String) -> String {
        let words = clean(value).split(separator: " ", omittingEmptySubsequences: false).map(String.init)
        var tokens: [HeaderFolder.Token] = []
        var run: [String] = []
        func needsEncoding(_ w: String) -> Bool {
            !w.isASCII || w.contains("=?") || w.utf8.count > 70 || w.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F }
        }
        for w in words {
            if needsEncoding(w) {
                run.append(w)
            } else {
                if !run.isEmpty { tokens.append(.encoded(run.joined(separator: " "))); run = [] }
                tokens.append(.plain(w))
            }
        }
        if !run.isEmpty { tokens.append(.encoded(run.joined(separator: " "))) }
        return HeaderFolder.fold(name: name, tokens)
    }

    /// CR and LF become spaces (no header injection); other controls except TAB are dropped.
    static func clean(_ s: String) -> String {
        String(String.UnicodeScalarView(s.unicodeScalars.compactMap { c -> Unicode.Scalar? in
            if c == "\r" || c == "\n" || c == "\t" { return " " }
            if c.value < 0x20 || c.value == 0x7F { return nil }
            return c
        }))
    }

    /// Bare CR, bare LF and CRLF all become CRLF (RFC 2046 §4.1.1 canonical text).
    static func canonicalLineEnds(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + bytes.count / 40)
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            if b == .cr || b == .lf {
                out.append(.cr)
                out.append(.lf)
                if b == .cr, i + 1 < bytes.count, bytes[i + 1] == .lf { i += 1 }
            } else {
                out.append(b)
            }
            i += 1
        }
        return out
    }
}
