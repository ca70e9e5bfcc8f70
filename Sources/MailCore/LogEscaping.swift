extension String {
    /// This text made safe for one log line: control characters, DEL and backslashes become `\xNN`
    /// escapes, and anything past `limit` characters is cut with `…`. For values a peer chose
    /// (HELO names, login names, addresses) so they cannot forge or split log lines.
    public func logEscaped(limit: Int = 256) -> String {
        var out = ""
        var count = 0
        for scalar in unicodeScalars {
            if count >= limit {
                out += "…"
                break
            }
            count += 1
            let v = scalar.value
            if v < 0x20 || v == 0x7F || v == 0x5C || (0x80..<0xA0).contains(v) || v == 0x2028 || v == 0x2029 {
                let hex = String(v, radix: 16, uppercase: true)
                out += "\\x" + (hex.count < 2 ? "0" + hex : hex)
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}
