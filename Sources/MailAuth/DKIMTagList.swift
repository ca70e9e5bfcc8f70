/// A DKIM tag list: the value of a `DKIM-Signature` field or of a key record.
///
/// ```
/// tag-list  =  tag-spec *( ";" tag-spec ) [ ";" ]
/// tag-spec  =  [FWS] tag-name [FWS] "=" [FWS] tag-value [FWS]
/// tag-name  =  ALPHA *ALNUMPUNC          ; ALNUMPUNC = ALPHA / DIGIT / "_"
/// tag-value =  [ tval *( 1*(WSP / FWS) tval ) ]
/// tval      =  1*VALCHAR                 ; VALCHAR = %x21-3A / %x3C-7E
/// ```
/// Tag names are case-sensitive; a tag that appears twice makes the list invalid.
/// - SeeAlso: RFC 6376 §3.2
public struct DKIMTagList: Sendable, Hashable {
    /// The tags in order; values with their inner whitespace as written, outer whitespace removed.
    public let tags: [(name: String, value: String)]

    public static func == (a: DKIMTagList, b: DKIMTagList) -> Bool {
        a.tags.count == b.tags.count && zip(a.tags, b.tags).allSatisfy { $0.name == $1.name && $0.value == $1.value }
    }

    public func hash(into hasher: inout Hasher) {
        for t in tags { hasher.combine(t.name); hasher.combine(t.value) }
    }

    /// The value of tag `name`, if present.
    public subscript(name: String) -> String? { tags.first { $0.name == name }?.value }

    /// Parses a tag list. - Throws: ``DKIMError/malformed(_:)`` with the reason.
    public init(parsing text: String) throws(DKIMError) {
        var out: [(name: String, value: String)] = []
        for spec in text.utf8.split(separator: UInt8(ascii: ";"), omittingEmptySubsequences: false) {
            let trimmed = Self.trimmed(spec)
            if trimmed.isEmpty { continue }  // the optional trailing ";" (and empty specs)
            guard let eq = trimmed.firstIndex(of: UInt8(ascii: "=")) else {
                throw .malformed("tag without \"=\": \(String(decoding: trimmed.prefix(40), as: UTF8.self))")
            }
            let name = Self.trimmed(trimmed[..<eq])
            let value = Self.trimmed(trimmed[trimmed.index(after: eq)...])
            guard let first = name.first, Self.isAlpha(first),
                  name.allSatisfy({ Self.isAlpha($0) || ($0 >= 0x30 && $0 <= 0x39) || $0 == UInt8(ascii: "_") }) else {
                throw .malformed("invalid tag name \(String(decoding: name.prefix(40), as: UTF8.self))")
            }
            guard value.allSatisfy({ ($0 >= 0x21 && $0 <= 0x7E && $0 != UInt8(ascii: ";")) || Self.isWhitespace($0) }) else {
                throw .malformed("invalid character in the value of \(String(decoding: name, as: UTF8.self))=")
            }
            let n = String(decoding: name, as: UTF8.self)
            guard !out.contains(where: { $0.name == n }) else { throw .malformed("tag \(n)= appears twice") }
            out.append((n, String(decoding: value, as: UTF8.self)))
        }
        tags = out
    }

    static func isAlpha(_ b: UInt8) -> Bool { (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) }
    static func isWhitespace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0D || b == 0x0A }

    static func trimmed(_ s: Substring.UTF8View) -> Substring.UTF8View {
        var s = s
        while let f = s.first, isWhitespace(f) { s = s.dropFirst() }
        while let l = s.last, isWhitespace(l) { s = s.dropLast() }
        return s
    }

    /// `value` with every whitespace octet removed (`b=`, `bh=`, `p=` are base64 that may be folded).
    static func compact(_ value: String) -> String {
        String(decoding: value.utf8.filter { !isWhitespace($0) }, as: UTF8.self)
    }
}

/// Why a signature, a key or a tag list cannot be used.
public enum DKIMError: Error, Hashable, Sendable {
    /// Syntax (RFC 6376 `permerror`).
    case malformed(String)
}
