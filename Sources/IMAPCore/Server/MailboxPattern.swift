/// LIST's mailbox pattern (RFC 9051 §6.3.9): `*` matches any run of characters, `%` any run without
/// the hierarchy delimiter; `INBOX` matches case-insensitively. Matching works on Unicode scalars of
/// the decoded name.
///
/// ```
/// list-mailbox    = 1*list-char / string
/// list-char       = ATOM-CHAR / list-wildcards / resp-specials
/// list-wildcards  = "%" / "*"
/// ```
public struct MailboxPattern: Hashable, Sendable {
    private let scalars: [Unicode.Scalar]
    private let delimiter: Unicode.Scalar

    /// The pattern of `reference` and `pattern` (RFC 9051 §6.3.9: the reference is prefixed, with one
    /// delimiter between them when the reference does not end in one).
    public init(reference: String, pattern: String, delimiter: Character = "/") {
        self.delimiter = delimiter.unicodeScalars.first!
        var full = reference
        if !reference.isEmpty, !pattern.isEmpty, !reference.hasSuffix(String(delimiter)), !pattern.hasPrefix(String(delimiter)) {
            full += String(delimiter)
        }
        full += pattern
        // "INBOX" at the start is case-insensitive: canonicalise it.
        if full.uppercased().hasPrefix("INBOX"), full.count == 5 || full.dropFirst(5).first == delimiter {
            full = "INBOX" + full.dropFirst(5)
        }
        self.scalars = Array(full.unicodeScalars)
    }

    /// `true` when `name` (canonical: `INBOX` upper-case) matches.
    public func matches(_ name: String) -> Bool {
        let n = Array(name.unicodeScalars)
        // The INBOX part of `INBOX` and `INBOX/…` matches in any case (`in%`, `Inbox/*`).
        let fold = name == "INBOX" || name.hasPrefix("INBOX" + String(delimiter)) ? 5 : 0
        return Self.match(scalars[...], n[...], delimiter, foldingFirst: fold)
    }

    /// `true` when a child of `name` could match (RFC 5258 §3.5 CHILDINFO and implied parents).
    public func matchesSomeChild(of name: String) -> Bool {
        Self.prefixMatch(scalars[...], Array((name + String(delimiter)).unicodeScalars)[...], delimiter)
    }

    /// Iterative wildcard matching with backtracking on the last `*`/`%` (linear in practice; the
    /// pattern is at most one command long).
    private static func match(_ p: ArraySlice<Unicode.Scalar>, _ s: ArraySlice<Unicode.Scalar>, _ d: Unicode.Scalar,
                              foldingFirst fold: Int) -> Bool {
        func same(_ a: Unicode.Scalar, _ b: Unicode.Scalar, at i: Int) -> Bool {
            guard a != b else { return true }
            guard i - s.startIndex < fold, a.isASCII, b.isASCII else { return false }
            return Character(a).lowercased() == Character(b).lowercased()
        }
        var pi = p.startIndex
        var si = s.startIndex
        var starP: Int? = nil
        var starS = 0
        var starIsPercent = false
        while si < s.endIndex {
            if pi < p.endIndex, p[pi] == "*" || p[pi] == "%" {
                starP = pi
                starIsPercent = p[pi] == "%"
                starS = si
                pi += 1
            } else if pi < p.endIndex, same(p[pi], s[si], at: si) {
                pi += 1
                si += 1
            } else if let sp = starP, !(starIsPercent && s[starS] == d) {
                pi = sp + 1
                starS += 1
                si = starS
            } else {
                return false
            }
        }
        while pi < p.endIndex, p[pi] == "*" || p[pi] == "%" { pi += 1 }
        return pi == p.endIndex
    }

    /// `true` when `prefix` can be the beginning of a string the pattern matches.
    private static func prefixMatch(_ p: ArraySlice<Unicode.Scalar>, _ prefix: ArraySlice<Unicode.Scalar>, _ d: Unicode.Scalar) -> Bool {
        // Brute force over pattern positions reachable after consuming the prefix.
        var positions: Set<Int> = [p.startIndex]
        for c in prefix {
            var next: Set<Int> = []
            for pos in positions {
                var q = pos
                // Wildcards may also match nothing: follow them.
                while q < p.endIndex {
                    if p[q] == "*" { next.insert(q) ; q += 1; continue }
                    if p[q] == "%" { if c != d { next.insert(q) }; q += 1; continue }
                    break
                }
                if q < p.endIndex, p[q] == c { next.insert(q + 1) }
            }
            positions = next
            if positions.isEmpty { return false }
        }
        return true
    }
}
