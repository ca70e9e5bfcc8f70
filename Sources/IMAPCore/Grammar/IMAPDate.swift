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
