/// The `Date:` header read leniently, for SENTBEFORE/SENTON/SENTSINCE, SORT DATE and THREAD.
///
/// ```
/// date-time   = [ day-of-week "," ] date time [CFWS]
/// date        = day month year              ; 2-digit years: 00-49 → 20xx, 50-99 → 19xx (§4.3)
/// time        = hour ":" minute [ ":" second ] FWS zone
/// zone        = ("+" / "-") 4DIGIT / obs-zone ; UT, GMT, EST…PDT, military letters (taken as +0000)
/// ```
/// - SeeAlso: RFC 5322 §3.3, §4.3
public enum SentDate {
    /// Parses a `Date:` value; `nil` when there is no day, month and year to be found. A missing time
    /// is midnight, a missing or unknown zone +0000.
    public static func parse(_ value: String) -> IMAPDateTime? {
        var words: [Substring]
        var depth = 0
        var current = ""
        var all: [String] = []
        for c in value {
            if c == "(" { depth += 1; continue }
            if c == ")" { depth = max(0, depth - 1); continue }
            if depth > 0 { continue }
            if c == " " || c == "\t" || c == "," || c == "\r" || c == "\n" {
                if !current.isEmpty { all.append(current); current = "" }
            } else {
                current.append(c)
            }
        }
        if !current.isEmpty { all.append(current) }
        words = all.map { Substring($0) }
        // Skip a day name.
        if let first = words.first, first.first?.isLetter == true { words.removeFirst() }
        // "17-Jul-1996" written with dashes.
        if words.count >= 1, words[0].contains("-"), words[0].first?.isNumber == true {
            let split = words[0].split(separator: "-")
            if split.count == 3 { words.replaceSubrange(0..<1, with: split) }
        }
        guard words.count >= 3, let day = Int(words[0]), (1...31).contains(day),
              let month = monthNumber(words[1]), var year = Int(words[2]) else { return nil }
        if words[2].count <= 2 { year += year < 50 ? 2000 : 1900 } else if words[2].count == 3 { year += 1900 }
        var hour = 0, minute = 0, second = 0, zone = 0
        if words.count >= 4 {
            let t = words[3].split(separator: ":")
            if t.count >= 2, let h = Int(t[0]), let m = Int(t[1]), (0...23).contains(h), (0...59).contains(m) {
                hour = h
                minute = m
                if t.count >= 3, let s = Int(t[2]), (0...60).contains(s) { second = s }
            }
        }
        if words.count >= 5 { zone = zoneMinutes(words[4]) ?? 0 }
        return IMAPDateTime(date: IMAPDate(year: year, month: month, day: day), hour: hour, minute: minute, second: second,
                            zoneMinutes: zone)
    }

    static func monthNumber(_ s: Substring) -> Int? {
        let names = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
        guard s.count >= 3 else { return nil }
        let key = s.prefix(3).lowercased()
        return names.firstIndex(of: key).map { $0 + 1 }
    }

    static func zoneMinutes(_ s: Substring) -> Int? {
        if let sign = s.first, sign == "+" || sign == "-", s.count == 5, let v = Int(s.dropFirst()) {
            let minutes = (v / 100) * 60 + v % 100
            return sign == "-" ? -minutes : minutes
        }
        switch s.uppercased() {
        case "UT", "GMT", "Z": return 0
        case "EST": return -300
        case "EDT": return -240
        case "CST": return -360
        case "CDT": return -300
        case "MST": return -420
        case "MDT": return -360
        case "PST": return -480
        case "PDT": return -420
        default: return nil
        }
    }
}
