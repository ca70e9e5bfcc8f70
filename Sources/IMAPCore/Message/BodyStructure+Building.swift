import MIME
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import struct NIOCore.ByteBuffer

extension MessageStructure {
    /// `BODYSTRUCTURE` of the message (also `BODY`: the encoder leaves out the extension data).
    /// - SeeAlso: RFC 9051 §7.5.2
    public var bodyStructure: BodyStructure { BodyStructure(root, in: self, isRoot: true) }
}

extension BodyStructure {
    /// The structure of one node, as Dovecot builds it:
    ///
    /// - type, subtype, disposition and encoding as written (an absent or invalid Content-Type is
    ///   `"text" "plain" ("charset" "us-ascii")`; a `text/*` without charset gets `charset us-ascii`;
    ///   an absent encoding is `7bit`; a message that is plain us-ascii 7bit text is written in that
    ///   canonical lower-case form whatever its case);
    /// - parameter names lower-cased, RFC 2231 continuations joined and values decoded; a value that
    ///   is not ASCII after decoding is sent as an RFC 2231 extended value (`name*` =
    ///   `utf-8''percent-encoded`) so the structure stays 7-bit;
    /// - id, description, md5 and location are the raw field values; language the comma-separated tags;
    /// - size is the body's octets as given, lines its LF count (text/* and message/rfc822);
    /// - a multipart without parts (no boundary, or no delimiter found) gets one empty text/plain part.
    /// - SeeAlso: RFC 9051 §7.5.2, RFC 2045 §5.2, RFC 2231
    init(_ node: MessageStructure.Node, in structure: MessageStructure, isRoot: Bool) {
        let fields = ContentFields(node.headers)
        // The Content-Type value as written (its parameters are the MIME parser's, `node.contentType`).
        let typeWords: [Substring]? = fields.type.flatMap { raw in
            let words = ParameterizedValue.parse(raw).value.split(separator: "/", maxSplits: 1).map(Self.trimmed)
            return words.count == 2 && words.allSatisfy(Self.isToken) ? words : nil
        }
        let rawType = typeWords == nil ? nil : fields.type
        func trimmed(_ s: Substring) -> String { String(Self.trimmed(s)) }
        let disposition = fields.disposition.flatMap { raw -> Disposition? in
            let p = ParameterizedValue.parse(raw)
            guard !p.value.isEmpty else { return nil }
            return Disposition(kind: p.value, parameters: Self.parameters(p.parameters))
        }
        let language = fields.language.flatMap(Self.languageTags)
        let location = fields.location

        if node.isMultipart {
            var parts = node.children.map { BodyStructure($0, in: structure, isRoot: false) }
            if parts.isEmpty {
                parts = [.singlepart(SinglePart(type: "text", subtype: "plain", parameters: [Parameter(name: "charset", value: "us-ascii")],
                                                encoding: "7bit", size: 0, lines: 0))]
            }
            let subtype = typeWords.flatMap { $0.count == 2 ? trimmed($0[1]) : nil } ?? node.contentType.subtype
            self = .multipart(Multipart(parts: parts, subtype: subtype, parameters: Self.parameters(node.contentType.parameters),
                                        disposition: disposition, language: language, location: location))
            return
        }

        var type = typeWords.map { trimmed($0[0]) } ?? "text"
        var subtype = typeWords.flatMap { $0.count == 2 ? trimmed($0[1]) : nil } ?? "plain"
        var parameters = rawType == nil ? [] : Self.parameters(node.contentType.parameters)
        if node.contentType.type == "text", !parameters.contains(where: { $0.name == "charset" }) {
            parameters.append(Parameter(name: "charset", value: "us-ascii"))
        }
        let encoding = fields.encoding.flatMap(Self.encodingToken) ?? "7bit"
        let id = fields.id
        let description = fields.description
        let md5 = fields.md5
        let size = node.bodyRange.count
        var lines: Int?
        var message: EncapsulatedMessage?
        if node.isEncapsulatedMessage {
            let inner = node.children[0]
            if node.contentType.subtype == "rfc822" {
                type = "message"
                subtype = "rfc822"
            }
            lines = structure.lineCount(node.bodyRange)
            message = EncapsulatedMessage(envelope: Envelope(headers: inner.headers), body: BodyStructure(inner, in: structure, isRoot: false))
        } else if node.contentType.type == "text" {
            lines = structure.lineCount(node.bodyRange)
        }
        if isRoot, node.contentType.type == "text", node.contentType.subtype == "plain",
           parameters.count == 1, parameters[0].name == "charset", parameters[0].value.lowercased() == "us-ascii",
           encoding.lowercased() == "7bit", id == nil, description == nil, md5 == nil, disposition == nil,
           language == nil, location == nil {
            // Dovecot writes plain us-ascii text in this one canonical form.
            type = "text"
            subtype = "plain"
            parameters = [Parameter(name: "charset", value: "us-ascii")]
        }
        self = .singlepart(SinglePart(type: type, subtype: subtype, parameters: parameters, id: id, description: description,
                                      encoding: encoding, size: size, lines: lines, message: message, md5: md5,
                                      disposition: disposition, language: language, location: location))
    }

    /// MIME parameters as BODYSTRUCTURE parameters (non-ASCII values as RFC 2231 extended values).
    static func parameters(_ parameters: [MIMEParameter]) -> [Parameter] {
        parameters.map { p in
            if p.value.utf8.allSatisfy({ $0 < 0x80 }) { return Parameter(name: p.name, value: p.value) }
            return Parameter(name: p.name + "*", value: "utf-8''" + percentEncoded(p.value))
        }
    }

    /// RFC 2231 §7 `attribute-char`s as they are, every other octet as `%XX`.
    static func percentEncoded(_ value: String) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        for b in value.utf8 {
            let plain = (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A)
                || "!#$&+-.^_`|~".utf8.contains(b)
            if plain {
                out.append(b)
            } else {
                out.append(UInt8(ascii: "%"))
                out.append(hex[Int(b >> 4)])
                out.append(hex[Int(b & 0x0F)])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// `Content-Language: en, de (comment)` → `["en", "de"]`; `nil` when there is no tag.
    static func languageTags(_ value: String) -> [String]? {
        var tags: [String] = []
        var depth = 0
        var current = ""
        for c in value {
            switch c {
            case "(": depth += 1
            case ")": depth = max(0, depth - 1)
            case "," where depth == 0:
                if !current.isEmpty { tags.append(current) }
                current = ""
            case " ", "\t", "\r", "\n", "\"": break
            default: if depth == 0 { current.append(c) }
            }
        }
        if !current.isEmpty { tags.append(current) }
        return tags.isEmpty ? nil : tags
    }

    /// The first token of a `Content-Transfer-Encoding` value, as written.
    static func encodingToken(_ value: String) -> String? {
        let token = value.prefix { $0 != " " && $0 != "\t" && $0 != "(" && $0 != ";" }.filter { $0 != "\"" }
        return token.isEmpty ? nil : String(token)
    }
}

/// The `Content-*` fields of one header section, found in one pass (first occurrence wins).
struct ContentFields {
    var type, disposition, language, location, encoding, id, description, md5: String?

    init(_ headers: MIMEHeaders) {
        for field in headers.fields {
            let name = field.name.utf8
            // "content-" and at least two more octets.
            guard name.count >= 10, Self.hasContentPrefix(name) else { continue }
            switch name.count {
            case 10 where Self.suffix(name, is: "id"): if id == nil { id = field.value }
            case 11 where Self.suffix(name, is: "md5"): if md5 == nil { md5 = field.value }
            case 12 where Self.suffix(name, is: "type"): if type == nil { type = field.value }
            case 16 where Self.suffix(name, is: "language"): if language == nil { language = field.value }
            case 16 where Self.suffix(name, is: "location"): if location == nil { location = field.value }
            case 19 where Self.suffix(name, is: "description"): if description == nil { description = field.value }
            case 19 where Self.suffix(name, is: "disposition"): if disposition == nil { disposition = field.value }
            case 25 where Self.suffix(name, is: "transfer-encoding"): if encoding == nil { encoding = field.value }
            default: break
            }
        }
    }

    private static func lower(_ c: UInt8) -> UInt8 { c >= 0x41 && c <= 0x5A ? c | 0x20 : c }

    private static func hasContentPrefix(_ name: String.UTF8View) -> Bool {
        zip(name, "content-".utf8).allSatisfy { lower($0) == $1 }
    }

    /// `true` when the name after `content-` is `expected` (lower case), ignoring case.
    private static func suffix(_ name: String.UTF8View, is expected: StaticString) -> Bool {
        let tail = name.dropFirst(8)
        guard tail.count == expected.utf8CodeUnitCount else { return false }
        return expected.withUTF8Buffer { e in zip(tail, e).allSatisfy { lower($0) == $1 } }
    }
}

extension BodyStructure {
    /// `s` without leading and trailing spaces and tabs.
    static func trimmed(_ s: Substring) -> Substring {
        let u = s.utf8
        guard let first = u.firstIndex(where: { $0 != 0x20 && $0 != 0x09 }) else { return s[s.endIndex...] }
        let last = u.lastIndex(where: { $0 != 0x20 && $0 != 0x09 })!
        return s[first...last]
    }

    /// An RFC 2045 token: one or more printable ASCII octets other than space and tspecials.
    static func isToken(_ s: Substring) -> Bool {
        !s.isEmpty && s.utf8.allSatisfy { b in
            b > 0x20 && b < 0x7F && !"()<>@,;:\\\"/[]?=".utf8.contains(b)
        }
    }
}

extension MessageStructure {
    /// Lines of `range`: its LF count (a last line without a line end is not counted, as in Dovecot).
    func lineCount(_ range: Range<Int>) -> Int {
        guard !range.isEmpty else { return 0 }
        return message.withUnsafeReadableBytes { raw in
            guard let base = raw.baseAddress else { return 0 }
            var n = 0
            var p = base + range.lowerBound
            let end = base + range.upperBound
            while p < end, let hit = memchr(p, 0x0A, end - p) {
                n += 1
                p = UnsafeRawPointer(hit) + 1
            }
            return n
        }
    }
}
