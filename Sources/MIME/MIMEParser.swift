#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import struct NIOCore.ByteBuffer

/// Parses a complete message (RFC 5322 + MIME) into a tree of ``MIMEPart``s.
///
/// The parser works on octets, accepts LF or CRLF line ends, and never fails: malformed input yields a
/// best-effort ``MIMEMessage`` with ``MIMEDiagnostic``s. Work is linear in the input per nesting level,
/// and nesting, part count and header size are bounded by ``Configuration``.
///
/// - SeeAlso: RFC 5322 §2.1–§2.2 (header section, unfolding), RFC 2045, RFC 2046 §5.1 (multipart),
///   §5.2 (message), RFC 3464 §2.1 (message/delivery-status as header blocks)
public struct MIMEParser: Sendable {
    /// Limits that protect against hostile input.
    public struct Configuration: Hashable, Sendable {
        /// Deepest nesting of multiparts and embedded messages; deeper parts are kept as leaves.
        public var maximumDepth: Int = 50
        /// Most parts in one message (all levels); further parts are dropped.
        public var maximumParts: Int = 10_000
        /// Largest header section of one part, in octets; the rest of the section is skipped.
        public var maximumHeaderBytes: Int = 1 << 20
        /// Most fields in one part's header section.
        public var maximumHeaderFields: Int = 5_000
        /// Whether leaves keep a copy of their body in ``MIMEPart/body``. `false` leaves `body` empty,
        /// for callers that slice the input with ``MIMEPart/ranges`` instead (IMAP sections).
        public var retainsBodies: Bool = true
        /// Whether base64 and quoted-printable bodies are checked for invalid characters (reported as
        /// ``MIMEDiagnostic``s; it costs a pass over every encoded body). `false` for callers that never
        /// look at diagnostics (IMAP's BODYSTRUCTURE).
        public var checksTransferEncodings: Bool = true

        /// The defaults: depth 50, 10,000 parts, 1 MiB and 5,000 fields per header section.
        public init() {}
    }

    /// The limits in force.
    public var configuration: Configuration

    /// Creates a parser.
    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
    }

    /// Parses a message.
    public func parse(_ bytes: [UInt8]) -> MIMEMessage {
        var state = State(bytes: bytes, configuration: configuration)
        let root = state.parsePart(0..<bytes.count, depth: 0, defaultType: .defaultPlain, path: [], skipUnixFrom: true)
        return MIMEMessage(root: root, diagnostics: state.diagnostics)
    }

    /// Parses a message held in a `ByteBuffer` (the readable bytes).
    public func parse(_ buffer: ByteBuffer) -> MIMEMessage {
        parse(buffer.getBytes(at: buffer.readerIndex, length: buffer.readableBytes) ?? [])
    }

    /// Parses only a header section (up to the first empty line, or all of `bytes`).
    public func parseHeaders(_ bytes: [UInt8]) -> MIMEHeaders {
        var state = State(bytes: bytes, configuration: configuration)
        return state.parseHeaderSection(0..<bytes.count, path: [], skipUnixFrom: true).headers
    }

    struct State {
        let bytes: [UInt8]
        let configuration: Configuration
        var diagnostics: [MIMEDiagnostic] = []
        var partCount = 0

        init(bytes: [UInt8], configuration: Configuration) {
            self.bytes = bytes
            self.configuration = configuration
        }

        mutating func note(_ code: MIMEDiagnostic.Code, _ detail: String, _ path: [Int]) {
            if diagnostics.count < 1000 { diagnostics.append(MIMEDiagnostic(code, detail, path: path)) }
        }

        /// ```
        /// fields = *(field-name ":" unstructured CRLF)      ; RFC 5322 §3.6.8
        /// field-name = 1*ftext ; ftext = %d33-57 / %d59-126
        /// ```
        /// Returns the fields and where the body starts.
        mutating func parseHeaderSection(_ range: Range<Int>, path: [Int], skipUnixFrom: Bool) -> (headers: MIMEHeaders, bodyStart: Int) {
            let r = parseHeaderSectionWithStart(range, path: path, skipUnixFrom: skipUnixFrom)
            return (r.headers, r.bodyStart)
        }

        /// Like ``parseHeaderSection(_:path:skipUnixFrom:)``, also returning where the section starts
        /// (after a skipped mbox `From ` line).
        mutating func parseHeaderSectionWithStart(_ range: Range<Int>, path: [Int], skipUnixFrom: Bool)
            -> (headers: MIMEHeaders, headerStart: Int, bodyStart: Int) {
            var headerStart = range.lowerBound
            var fields: [MIMEHeaderField] = []
            // The field being read: its name, its first line's value and, once a continuation line
            // came, the unfolded value so far (most fields are one line: no copy until then).
            var currentName: Range<Int>?
            var currentValue: Range<Int> = 0..<0
            var folded: [UInt8]?
            var lines = LineIterator(bytes, range)
            var bodyStart = range.upperBound
            var first = true
            var headerBytes = 0
            var overLimit = false
            func flush(_ fields: inout [MIMEHeaderField]) {
                guard let n = currentName else { return }
                func trimmed(_ v: UnsafeBufferPointer<UInt8>) -> UnsafeBufferPointer<UInt8> {
                    var lo = 0, hi = v.count
                    while lo < hi, v[lo].isWSP || v[lo] == .cr || v[lo] == .lf { lo += 1 }
                    while hi > lo, v[hi - 1].isWSP || v[hi - 1] == .cr || v[hi - 1] == .lf { hi -= 1 }
                    return UnsafeBufferPointer(rebasing: v[lo..<hi])
                }
                let value: String
                if let folded {
                    value = folded.withUnsafeBufferPointer { String(utf8OrLatin1: trimmed($0)) }
                } else {
                    value = bytes.withUnsafeBufferPointer { String(utf8OrLatin1: trimmed(UnsafeBufferPointer(rebasing: $0[currentValue]))) }
                }
                let name = bytes.withUnsafeBufferPointer { String(decoding: UnsafeBufferPointer(rebasing: $0[n]), as: UTF8.self) }
                fields.append(MIMEHeaderField(name: name, value: value))
                currentName = nil
                folded = nil
            }
            while let line = lines.next() {
                let isFirst = first
                first = false
                if line.contentEnd == line.start {
                    bodyStart = line.end
                    break
                }
                headerBytes += line.end - line.start
                if !overLimit, headerBytes > configuration.maximumHeaderBytes || fields.count >= configuration.maximumHeaderFields {
                    overLimit = true
                    note(.headerLimitExceeded, "header section larger than the limit; the rest of it was skipped", path)
                }
                let b0 = bytes[line.start]
                if b0.isWSP {
                    if currentName == nil {
                        if !overLimit && fields.isEmpty { note(.continuationWithoutField, "continuation line before the first field", path) }
                        continue
                    }
                    if !overLimit {
                        if folded == nil { folded = Array(bytes[currentValue]) }
                        folded!.append(contentsOf: bytes[line.start..<line.contentEnd])
                    }
                    continue
                }
                if isFirst, skipUnixFrom, line.contentEnd - line.start >= 5, Array(bytes[line.start..<(line.start + 5)]) == Array("From ".utf8) {
                    headerStart = line.end
                    continue
                }
                var i = line.start
                while i < line.contentEnd, (bytes[i] >= 0x21 && bytes[i] <= 0x39) || (bytes[i] >= 0x3B && bytes[i] <= 0x7E) { i += 1 }
                if i < line.contentEnd, bytes[i] == .colon {
                    flush(&fields)
                    if overLimit { continue }
                    currentName = line.start..<i
                    currentValue = (i + 1)..<line.contentEnd
                    continue
                }
                // Not a header line: the header section ends and this line starts the body.
                note(.malformedHeaderLine, "a line that is not a header field ends the header section", path)
                bodyStart = line.start
                break
            }
            flush(&fields)
            if fields.count > configuration.maximumHeaderFields { fields.removeLast(fields.count - configuration.maximumHeaderFields) }
            return (MIMEHeaders(fields), headerStart, bodyStart)
        }

        mutating func parsePart(_ range: Range<Int>, depth: Int, defaultType: ContentType, path: [Int], skipUnixFrom: Bool = false) -> MIMEPart {
            partCount += 1
            let (headers, headerStart, bodyStart) = parseHeaderSectionWithStart(range, path: path, skipUnixFrom: skipUnixFrom)
            let bodyRange = min(bodyStart, range.upperBound)..<range.upperBound
            var contentType = defaultType
            if let raw = headers["Content-Type"] {
                if let ct = ContentType(headerValue: raw) {
                    contentType = ct
                } else {
                    note(.invalidContentType, "invalid Content-Type \(raw.prefix(80).debugDescription); text/plain assumed", path)
                    contentType = .defaultPlain
                }
            }
            let disposition = headers["Content-Disposition"].map(ContentDisposition.init(headerValue:))
            let cte = headers["Content-Transfer-Encoding"].map(ContentTransferEncoding.init(headerValue:)) ?? .sevenBit
            var part = MIMEPart(headers: headers, contentType: contentType, contentDisposition: disposition,
                                transferEncoding: cte, body: [], encodedSize: bodyRange.count, children: [])
            part.ranges = MIMEPart.ByteRanges(header: min(headerStart, bodyRange.lowerBound)..<bodyRange.lowerBound, body: bodyRange)
            // Leaves keep a copy of their body unless the caller slices the input itself.
            func leafBody() -> [UInt8] { configuration.retainsBodies ? Array(bytes[bodyRange]) : [] }

            if contentType.isMultipart {
                guard let boundary = contentType.boundary, !boundary.isEmpty else {
                    note(.missingBoundary, "multipart without a boundary parameter; kept as one part", path)
                    part.body = leafBody()
                    return part
                }
                guard depth < configuration.maximumDepth else {
                    note(.depthLimitExceeded, "nesting deeper than \(configuration.maximumDepth); kept as one part", path)
                    part.body = leafBody()
                    return part
                }
                guard let ranges = splitMultipart(bodyRange, boundary: Array(boundary.utf8), path: path) else {
                    part.body = leafBody()
                    return part
                }
                let childDefault = contentType.subtype == "digest"
                    ? ContentType(type: "message", subtype: "rfc822") : ContentType.defaultPlain
                for (index, r) in ranges.enumerated() {
                    guard partCount < configuration.maximumParts else {
                        note(.partLimitExceeded, "more than \(configuration.maximumParts) parts; the rest were dropped", path)
                        break
                    }
                    part.children.append(parsePart(r, depth: depth + 1, defaultType: childDefault, path: path + [index]))
                }
                return part
            }

            if contentType.type == "message" {
                guard depth < configuration.maximumDepth else {
                    note(.depthLimitExceeded, "nesting deeper than \(configuration.maximumDepth); kept as one part", path)
                    part.body = leafBody()
                    return part
                }
                guard partCount < configuration.maximumParts else {
                    note(.partLimitExceeded, "more than \(configuration.maximumParts) parts; the rest were dropped", path)
                    part.body = leafBody()
                    return part
                }
                if contentType.subtype == "delivery-status" {
                    for (index, r) in headerBlocks(bodyRange).enumerated() {
                        guard partCount < configuration.maximumParts else { break }
                        part.children.append(parsePart(r, depth: depth + 1, defaultType: .defaultPlain, path: path + [index]))
                    }
                    return part
                }
                switch cte {
                case .base64, .quotedPrintable:
                    // Not allowed by RFC 2046 §5.2.1, but seen: decode, then parse the result.
                    // The decoded octets are not in the input, so the parts inside keep their bodies and
                    // have no ranges.
                    let decoded = cte.decode(bytes[bodyRange]).bytes
                    var innerConfiguration = configuration
                    innerConfiguration.retainsBodies = true
                    var inner = State(bytes: decoded, configuration: innerConfiguration)
                    inner.partCount = partCount
                    var child = inner.parsePart(0..<decoded.count, depth: depth + 1, defaultType: .defaultPlain, path: path + [0])
                    child.removeRanges()
                    partCount = inner.partCount
                    diagnostics.append(contentsOf: inner.diagnostics.prefix(max(0, 1000 - diagnostics.count)))
                    part.children = [child]
                default:
                    part.children = [parsePart(bodyRange, depth: depth + 1, defaultType: .defaultPlain, path: path + [0])]
                }
                return part
            }

            part.body = leafBody()
            switch cte {
            case .other(let name):
                note(.unknownTransferEncoding, "unknown Content-Transfer-Encoding \(name.prefix(40).debugDescription); body taken as is", path)
            case .base64 where configuration.checksTransferEncodings:
                if !MIMEBase64.isWellFormed(bytes[bodyRange]) { note(.invalidBase64, "base64 body with invalid characters or padding", path) }
            case .quotedPrintable where configuration.checksTransferEncodings:
                if !QuotedPrintable.decode(bytes[bodyRange]).wellFormed { note(.invalidQuotedPrintable, "quoted-printable body with invalid escapes", path) }
            default:
                break
            }
            if contentType.type == "text", let cs = contentType.charset, !Charset.isKnown(cs) {
                note(.unknownCharset, "unknown charset \(cs.prefix(40).debugDescription); read as UTF-8", path)
            }
            return part
        }

        /// Splits a multipart body at its delimiter lines.
        ///
        /// ```
        /// dash-boundary := "--" boundary
        /// delimiter     := CRLF dash-boundary            ; the CRLF belongs to the delimiter
        /// close-delimiter := delimiter "--"
        /// ```
        /// Trailing whitespace after a delimiter is allowed (RFC 2046 §5.1.1). Returns `nil` when no
        /// delimiter is found.
        mutating func splitMultipart(_ range: Range<Int>, boundary: [UInt8], path: [Int]) -> [Range<Int>]? {
            var ranges: [Range<Int>] = []
            var partStart: Int?
            var closed = false
            let dashBoundary = [UInt8.dash, .dash] + boundary
            // Only the occurrences of "--boundary" are visited, not every line of the body; one counts
            // only at the start of a line.
            var from = range.lowerBound
            while let at = find(dashBoundary, in: from..<range.upperBound) {
                from = at + 1
                guard at == range.lowerBound || bytes[at - 1] == .lf else { continue }
                var lines = LineIterator(bytes, at..<range.upperBound)
                guard let line = lines.next() else { break }
                var j = at + dashBoundary.count
                var isClose = false
                if j + 1 < line.contentEnd, bytes[j] == .dash, bytes[j + 1] == .dash { isClose = true; j += 2 }
                while j < line.contentEnd, bytes[j].isWSP { j += 1 }
                guard j == line.contentEnd else { continue }
                // The line break before the delimiter line belongs to the delimiter (CRLF or LF).
                let terminatorStart: Int? = at == range.lowerBound ? nil
                    : (at >= range.lowerBound + 2 && bytes[at - 2] == .cr ? at - 2 : at - 1)
                // Consecutive delimiter lines make no empty part between them (as Python's email
                // package and most readers do).
                if let s = partStart, s != line.start {
                    let end = max(s, terminatorStart ?? line.start)
                    ranges.append(s..<end)
                }
                if isClose {
                    closed = true
                    break
                }
                partStart = line.end
                from = line.end
            }
            if partStart == nil {
                note(.boundaryNotFound, "no delimiter line for the boundary was found; kept as one part", path)
                return nil
            }
            if !closed {
                note(.missingCloseDelimiter, "multipart body without its close delimiter", path)
                if let s = partStart { ranges.append(s..<range.upperBound) }
            }
            return ranges
        }

        /// The first occurrence of `needle` (which starts with "-") in `bytes[range]`: memchr finds
        /// each "-" (never in base64, rare in text), the rest is compared from there.
        func find(_ needle: [UInt8], in range: Range<Int>) -> Int? {
            guard range.count >= needle.count else { return nil }
            return bytes.withUnsafeBytes { haystack -> Int? in
                needle.withUnsafeBytes { n -> Int? in
                    let base = haystack.baseAddress!
                    var at = range.lowerBound
                    let last = range.upperBound - needle.count
                    while at <= last {
                        guard let hit = memchr(base + at, Int32(n[0]), last + 1 - at) else { return nil }
                        at = base.distance(to: UnsafeRawPointer(hit))
                        if memcmp(base + at, n.baseAddress!, n.count) == 0 { return at }
                        at += 1
                    }
                    return nil
                }
            }
        }

        /// The header blocks of a `message/delivery-status` body, separated by empty lines.
        func headerBlocks(_ range: Range<Int>) -> [Range<Int>] {
            var blocks: [Range<Int>] = []
            var start = range.lowerBound
            var lines = LineIterator(bytes, range)
            while let line = lines.next() {
                if line.contentEnd == line.start {
                    blocks.append(start..<line.start)
                    start = line.end
                }
            }
            if start < range.upperBound || blocks.isEmpty { blocks.append(start..<range.upperBound) }
            return blocks
        }
    }
}
