#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// RFC 5322 §3.3 date-time text, e.g. `Sun, 22 Nov 2026 01:25:42 +0000`.
public enum MessageDate {
    /// Formats `secondsSinceEpoch` in UTC.
    public static func format(secondsSinceEpoch: Int) -> String {
        var t = time_t(secondsSinceEpoch)
        var tm = tm()
        gmtime_r(&t, &tm)
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(days[Int(tm.tm_wday)]), \(tm.tm_mday) \(months[Int(tm.tm_mon)]) \(tm.tm_year + 1900) "
            + "\(two(tm.tm_hour)):\(two(tm.tm_min)):\(two(tm.tm_sec)) +0000"
    }

    /// The current time, formatted.
    public static func now() -> String {
        format(secondsSinceEpoch: Int(time(nil)))
    }
}
