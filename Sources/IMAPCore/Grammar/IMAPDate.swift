/// A date without time (`date` in SEARCH: `1-Feb-1994`).
///
/// ```
/// date            = date-text / DQUOTE date-text DQUOTE
/// date-text       = date-day "-" date-month "-" date-year
/// date-day        = 1*2DIGIT
/// date-month      = "Jan" / "Feb" / "Mar" / "Apr" / "May" / "Jun" /
///                   "Jul" / "Aug" / "Sep" / "Oct" / "Nov" / "Dec"
/// date-year       = 4DIGIT
/// ```
public struct IMAPDate: Hashable, Sendable, Comparable {
    public var year: Int
    public var month: Int
    public var day: Int

    /// Creates a date; components are not range-checked here (the parser checks them).
    public init(year: Int, month: Int, day: Int) {
        self.year = year
        self.month = month
        self.day = day
    }

    public static func < (a: IMAPDate, b: IMAPDate) -> Bool {
        (a.year, a.month, a.day) < (b.year, b.month, b.day)
    }
}

/// A date and time with zone (`date-time` in APPEND and INTERNALDATE: `"17-Jul-1996 02:44:25 -0700"`).
///
/// ```
/// date-time       = DQUOTE date-day-fixed "-" date-month "-" date-year
///                   SP time SP zone DQUOTE
/// date-day-fixed  = (SP DIGIT) / 2DIGIT
/// time            = 2DIGIT ":" 2DIGIT ":" 2DIGIT
/// zone            = ("+" / "-") 4DIGIT
/// ```
public struct IMAPDateTime: Hashable, Sendable {
    public var date: IMAPDate
    public var hour: Int
    public var minute: Int
    public var second: Int
    /// Offset from UTC in minutes (`-0700` is -420).
    public var zoneMinutes: Int

    /// Creates a date-time.
    public init(date: IMAPDate, hour: Int, minute: Int, second: Int, zoneMinutes: Int) {
        self.date = date
        self.hour = hour
        self.minute = minute
        self.second = second
        self.zoneMinutes = zoneMinutes
    }
}

extension IMAPDateTime {
    /// The UTC date-time of `seconds` since 1970 (zone `+0000`).
    public init(secondsSinceEpoch seconds: Int64) {
        let days = Int(seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400)
        let rest = Int(seconds - Int64(days) * 86_400)
        // Civil from days (proleptic Gregorian), after Howard Hinnant's well-known algorithm.
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        self.init(date: IMAPDate(year: year, month: month, day: day), hour: rest / 3600, minute: rest % 3600 / 60,
                  second: rest % 60, zoneMinutes: 0)
    }

    /// Seconds since 1970-01-01T00:00:00Z.
    public var secondsSinceEpoch: Int64 {
        // Days from the civil date (proleptic Gregorian), Howard Hinnant's algorithm.
        let y = Int64(date.month <= 2 ? date.year - 1 : date.year)
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let m = Int64(date.month)
        let doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + Int64(date.day) - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146_097 + doe - 719_468
        return days * 86_400 + Int64(hour * 3600 + minute * 60 + second) - Int64(zoneMinutes * 60)
    }
}
