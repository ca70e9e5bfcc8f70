import MailCore

/// RFC 6154 special-use attributes Swallow keeps per folder (Dovecot keeps them in its configuration,
/// so Swallow writes them to its own file, `swallow-special-use`).
public enum SpecialUse: String, CaseIterable, Hashable, Sendable {
    /// `\Sent`
    case sent = "\\Sent"
    /// `\Drafts`
    case drafts = "\\Drafts"
    /// `\Trash`
    case trash = "\\Trash"
    /// `\Junk`
    case junk = "\\Junk"
    /// `\Archive`
    case archive = "\\Archive"
}

/// One folder in a listing.
public struct FolderInfo: Hashable, Sendable {
    /// The name in Unicode, hierarchy delimiter `/` (`INBOX`, `Archive/2026`).
    public var name: String
    /// Its special use, if any.
    public var specialUse: SpecialUse?
    /// Whether the name is in `subscriptions`.
    public var isSubscribed: Bool
    /// Whether other folders sit below it (`\HasChildren`).
    public var hasChildren: Bool
    /// `false` for a hierarchy level with no folder of its own (`.a.b` exists, `.a` does not):
    /// IMAP `\NonExistent` / `\Noselect`.
    public var exists: Bool
}

/// The `subscriptions` file as Dovecot 2.3 reads and writes it.
///
/// Version 2 (what Dovecot 2.3 writes): `V\t2\n\n`, then one name per line, its hierarchy levels
/// separated by a tab, each level as stored on disk (modified UTF-7) with `\001` + `1`/`t`/`r`/`n`
/// escaping `\001`, tab, CR, LF. Version 1 (older Dovecot, Courier): one name per line with `.` between
/// levels (Courier's `INBOX.` prefix is removed). Names are returned in Unicode with `/`.
enum SubscriptionsFile {
    static let header = Array("V\t2\n\n".utf8)

    static func parse(_ bytes: [UInt8]) -> [String] {
        let v2 = bytes.starts(with: header)
        let body = v2 ? Array(bytes.dropFirst(header.count)) : bytes
        var out: [String] = []
        for line in body.split(separator: UInt8(ascii: "\n")) where !line.isEmpty {
            let text = String(decoding: line, as: UTF8.self)
            var levels: [String]
            if v2 {
                levels = text.split(separator: "\t", omittingEmptySubsequences: false).map { unescape(String($0)) }
            } else {
                var t = Substring(text)
                if t.uppercased().hasPrefix("INBOX.") && t.count > 6 { t = t.dropFirst(6) }
                levels = t.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
                if levels.count == 1 { levels = t.split(separator: "/", omittingEmptySubsequences: false).map(String.init) }
            }
            while levels.count > 1 && levels.last == "" { levels.removeLast() }  // trailing separator
            let name = levels.map { ModifiedUTF7.decode($0) ?? $0 }.joined(separator: "/")
            let normal = name.uppercased() == "INBOX" ? "INBOX" : name
            if !out.contains(normal) { out.append(normal) }
        }
        return out
    }

    static func encode(_ names: [String]) -> [UInt8] {
        var s = "V\t2\n\n"
        for n in names {
            s += n.split(separator: "/", omittingEmptySubsequences: false).map { escape(ModifiedUTF7.encode(String($0))) }
                .joined(separator: "\t") + "\n"
        }
        return Array(s.utf8)
    }

    static func escape(_ s: String) -> String {
        var out = ""
        for c in s.unicodeScalars {
            switch c {
            case "\u{1}": out += "\u{1}1"
            case "\t": out += "\u{1}t"
            case "\r": out += "\u{1}r"
            case "\n": out += "\u{1}n"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    static func unescape(_ s: String) -> String {
        var out = String.UnicodeScalarView()
        var escaped = false
        for c in s.unicodeScalars {
            if escaped {
                switch c {
                case "1": out.append("\u{1}")
                case "t": out.append("\t")
                case "r": out.append("\r")
                case "n": out.append("\n")
                case "0": out.append("\u{0}")
                default: out.append(c)
                }
                escaped = false
            } else if c == "\u{1}" {
                escaped = true
            } else {
                out.append(c)
            }
        }
        return String(out)
    }
}
