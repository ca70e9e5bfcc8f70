/// The flags of a Maildir file name's info part `:2,<letters>`.
///
/// System flags are upper-case letters: `D` \Draft, `F` \Flagged, `R` \Answered, `S` \Seen,
/// `T` \Deleted; keywords are `a`–`z`, the index into `dovecot-keywords`. Letters with no meaning here
/// (`P` passed, a keyword letter the keywords file does not name) are kept as they are when flags change.
/// Letters are written in ASCII order, as the Maildir specification asks.
public struct MaildirInfo: Hashable, Sendable {
    /// The letters after `:2,` (empty when the name has no info part).
    public var letters: [UInt8]
    /// An info part that is not `2,…` (kept as it is; such a file's flags are never changed).
    public var foreign: String?

    /// Parses the part of a file name after `:` (`nil` when the name has no `:`).
    public init(info: Substring?) {
        guard let info else { letters = []; foreign = nil; return }
        if info.hasPrefix("2,") {
            letters = Array(info.dropFirst(2).utf8)
            foreign = nil
        } else {
            letters = []
            foreign = String(info)
        }
    }

    init(letters: [UInt8]) {
        self.letters = letters
        foreign = nil
    }

    static let system: [(UInt8, String)] = [
        (UInt8(ascii: "D"), "\\Draft"), (UInt8(ascii: "F"), "\\Flagged"), (UInt8(ascii: "R"), "\\Answered"),
        (UInt8(ascii: "S"), "\\Seen"), (UInt8(ascii: "T"), "\\Deleted"),
    ]

    /// The IMAP flags: system flags then keywords (names from `keywords`, index = letter − `a`).
    public func flags(keywords: [String?]) -> [String] {
        var out: [String] = []
        for (letter, name) in Self.system where letters.contains(letter) { out.append(name) }
        for l in letters where l >= UInt8(ascii: "a") && l <= UInt8(ascii: "z") {
            let i = Int(l - UInt8(ascii: "a"))
            if i < keywords.count, let k = keywords[i] { out.append(k) }
        }
        return out
    }

    /// The letters for `flags`, keeping letters that carry no IMAP flag (`P`, unnamed keyword letters).
    /// `letterFor` gives the keyword letter of a keyword (creating one if needed).
    func replacingFlags(with flags: [String], keywords: [String?], letterFor: (String) throws -> UInt8) rethrows -> MaildirInfo {
        var kept: [UInt8] = letters.filter { l in
            if Self.system.contains(where: { $0.0 == l }) { return false }
            if l >= UInt8(ascii: "a") && l <= UInt8(ascii: "z") {
                let i = Int(l - UInt8(ascii: "a"))
                return !(i < keywords.count && keywords[i] != nil)
            }
            return true
        }
        for f in flags {
            if let s = Self.system.first(where: { $0.1.lowercased() == f.lowercased() }) {
                kept.append(s.0)
            } else if !f.hasPrefix("\\") {
                if let i = keywords.firstIndex(where: { $0?.lowercased() == f.lowercased() }) {
                    kept.append(UInt8(ascii: "a") + UInt8(i))
                } else {
                    kept.append(try letterFor(f))
                }
            }  // \Recent and unknown system flags are not stored
        }
        return MaildirInfo(letters: Array(Set(kept)).sorted())
    }

    /// The info part to append to a base name: `:2,<letters>` (or the foreign info as it was).
    var suffix: String {
        if let foreign { return ":" + foreign }
        return ":2," + String(decoding: letters, as: UTF8.self)
    }
}

/// `dovecot-keywords`: lines `<index> <name>`, index 0–25 ↔ info letter `a`–`z`.
enum KeywordsFile {
    static func parse(_ bytes: [UInt8]) -> [String?] {
        var out = [String?](repeating: nil, count: 26)
        for line in bytes.split(separator: UInt8(ascii: "\n")) {
            guard let space = line.firstIndex(of: UInt8(ascii: " ")),
                  let i = Int(String(decoding: line[..<space], as: UTF8.self)), (0..<26).contains(i) else { continue }
            let name = String(decoding: line[(space + 1)...], as: UTF8.self)
            guard !name.isEmpty, !out.contains(name) else { continue }
            out[i] = name
        }
        while out.last == .some(nil) { out.removeLast() }
        return out
    }

    static func encode(_ keywords: [String?]) -> [UInt8] {
        var s = ""
        for (i, k) in keywords.enumerated() { if let k { s += "\(i) \(k)\n" } }
        return Array(s.utf8)
    }
}

/// The parts of a Maildir file name `<base>[:<info>]`, with `,S=` and `,W=` from the base.
struct MaildirFileName {
    var base: Substring
    var info: Substring?
    var size: Int?
    var virtualSize: Int?

    /// Splits at the first `:` and reads `S=`/`W=` from the `,`-separated fields of the base, in one
    /// pass over the name's UTF-8 (SELECT of a large new folder parses every name several times).
    init(_ name: String) {
        let utf8 = name.utf8
        let colon = utf8.firstIndex(of: UInt8(ascii: ":"))
        base = name[..<(colon ?? name.endIndex)]
        info = colon.map { name[name.index(after: $0)...] }
        size = nil
        virtualSize = nil
        // Fields after the first "," of the base: S=<n>, W=<n>.
        var i = utf8.firstIndex(of: UInt8(ascii: ","))
        let end = colon ?? utf8.endIndex
        while let comma = i, comma < end {
            var j = utf8.index(after: comma)
            guard j < end else { break }
            let key = utf8[j]
            var value: Int? = nil
            j = utf8.index(after: j)
            if key == UInt8(ascii: "S") || key == UInt8(ascii: "W"), j < end, utf8[j] == UInt8(ascii: "=") {
                j = utf8.index(after: j)
                var n = 0, digits = 0
                while j < end, utf8[j] >= 0x30, utf8[j] <= 0x39, digits < 18 {
                    n = n * 10 + Int(utf8[j] - 0x30)
                    digits += 1
                    j = utf8.index(after: j)
                }
                if digits > 0, j == end || utf8[j] == UInt8(ascii: ",") { value = n }
            }
            if let value { if key == UInt8(ascii: "S") { size = value } else { virtualSize = value } }
            while j < end, utf8[j] != UInt8(ascii: ",") { j = utf8.index(after: j) }
            i = j < end ? j : nil
        }
    }
}
