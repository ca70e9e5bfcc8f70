import MIME

/// The base subject of RFC 5256 §2.1, used by SORT SUBJECT and THREAD.
///
/// ```
/// subj-refwd   = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":"
/// subj-blob    = "[" *BLOBCHAR "]" *WSP
/// subj-leader  = (*subj-blob subj-refwd) / WSP
/// subj-trailer = "(fwd)" / WSP
/// subj-fwd-hdr = "[fwd:"   ;  subj-fwd-trl = "]"
/// ```
/// Steps: decode encoded words; tabs and runs of spaces become one space; remove trailers; remove
/// leaders and a leading blob that does not leave the subject empty, until nothing changes; unwrap
/// `[fwd: …]` and start again. Comparison is case-insensitive, so the result is lower-cased.
/// - SeeAlso: RFC 5256 §2.1
public struct BaseSubject: Hashable, Sendable {
    /// The base subject, lower-cased.
    public var text: String
    /// `true` when a `Re:`, `Fw:`/`Fwd:`, `(fwd)` or `[fwd: …]` was removed (RFC 5256 §2.1 step 6 and
    /// the "reply or forward" test of §3 step 5).
    public var isReplyOrForward: Bool

    /// Extracts the base subject of a raw `Subject:` value (encoded words still encoded).
    public init(subject raw: String) {
        var s = Array(Self.normalizeSpaces(EncodedWord.decode(raw)).lowercased())
        var replyOrForward = false
        while true {
            // Step 2: trailers.
            while let last = s.last {
                if last == " " { s.removeLast(); continue }
                if s.count >= 5, String(s[(s.count - 5)...]) == "(fwd)" {
                    s.removeLast(5)
                    replyOrForward = true
                    continue
                }
                break
            }
            // Steps 3–5: leaders and blobs.
            var changed = true
            while changed {
                changed = false
                while s.first == " " { s.removeFirst(); changed = true }
                if let n = Self.refwdLength(s) {
                    s.removeFirst(n)
                    replyOrForward = true
                    changed = true
                    continue
                }
                if let n = Self.blobLength(s, at: 0), n < s.count {
                    s.removeFirst(n)
                    changed = true
                }
            }
            // Step 6: [fwd: … ].
            if s.count >= 6, String(s[..<5]) == "[fwd:", s.last == "]" {
                s = Array(s[5..<(s.count - 1)])
                replyOrForward = true
                continue
            }
            break
        }
        text = String(s)
        isReplyOrForward = replyOrForward
    }

    /// The length of `*subj-blob subj-refwd` at the start, or `nil`.
    static func refwdLength(_ s: [Character]) -> Int? {
        var i = 0
        while let n = blobLength(s, at: i) { i += n }
        if s.count >= i + 3, s[i] == "f", s[i + 1] == "w", s[i + 2] == "d" {
            i += 3
        } else if s.count >= i + 2, (s[i] == "r" && s[i + 1] == "e") || (s[i] == "f" && s[i + 1] == "w") {
            i += 2
        } else {
            return nil
        }
        while i < s.count, s[i] == " " { i += 1 }
        if let n = blobLength(s, at: i) { i += n }
        guard i < s.count, s[i] == ":" else { return nil }
        return i + 1
    }

    /// The length of a `subj-blob` at `start` (with the spaces after it), or `nil`.
    static func blobLength(_ s: [Character], at start: Int) -> Int? {
        guard start < s.count, s[start] == "[" else { return nil }
        var i = start + 1
        while i < s.count, s[i] != "]" {
            if s[i] == "[" { return nil }
            i += 1
        }
        guard i < s.count else { return nil }
        i += 1
        while i < s.count, s[i] == " " { i += 1 }
        return i - start
    }

    static func normalizeSpaces(_ s: String) -> String {
        var out = ""
        var space = false
        for c in s {
            if c == " " || c == "\t" || c == "\r" || c == "\n" || c == "\r\n" {
                space = true
            } else {
                if space { out.append(" ") }
                space = false
                out.append(c)
            }
        }
        if space { out.append(" ") }
        return out
    }
}
