/// A string as a double-quoted literal with backslash escapes: `"`, `\`, CR, LF, TAB by name and
/// every other control character as `\u00XX`. The same text is a JSON string (RFC 8259 §7) and a
/// TOML basic string, so `swallow mime show --json` and `swallow config show` share it.
public enum QuotedLiteral {
    /// `s` quoted and escaped.
    public static func quote(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 || u.value == 0x7F {
                    let hex = String(u.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out + "\""
    }
}
