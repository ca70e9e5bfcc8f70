import CoreFoundation
import Logging
import NIOConcurrencyHelpers
#if canImport(Glibc)
import Glibc
#endif

/// Where and how the server's log lines go (`[log] format` and `output`): swift-log's text lines,
/// logfmt or one JSON object per line, on standard error or as datagrams to the local syslog socket
/// (facility mail, like Postfix and Dovecot; journald and rsyslog listen on `/dev/log`).
public enum LogOutput {
    /// The handler `swallow serve` bootstraps swift-log with.
    public static func handler(label: String, configuration log: ServerConfiguration.Log) -> any LogHandler {
        let level = Logger.Level(rawValue: log.level) ?? .info
        let format = LogLineHandler.Format(rawValue: log.format) ?? .text
        if format == .text && log.output != "syslog" {
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = level
            return h
        }
        let sink: LogSink = log.output == "syslog" ? .syslog(SyslogSocket.shared(path: log.syslogSocket)) : .standardError
        var h = LogLineHandler(label: label, format: format, sink: sink)
        h.logLevel = level
        return h
    }
}

/// Where a ``LogLineHandler`` writes.
public enum LogSink: Sendable {
    case standardError
    case syslog(SyslogSocket)
}

/// A swift-log handler writing one line per event as text, logfmt or JSON.
public struct LogLineHandler: LogHandler {
    public enum Format: String, Sendable {
        case text, logfmt, json
    }

    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    public var logLevel: Logger.Level = .info
    let label: String
    let format: Format
    let sink: LogSink

    public init(label: String, format: Format, sink: LogSink) {
        self.label = label
        self.format = format
        self.sink = sink
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var all = metadata
        if let provided = metadataProvider?.get() { all.merge(provided) { $1 } }
        if let m = event.metadata { all.merge(m) { $1 } }
        let syslog: Bool
        if case .syslog = sink { syslog = true } else { syslog = false }
        // syslog stamps the time itself.
        let line = Self.render(format: format, time: syslog ? nil : Self.timestamp(), level: event.level, label: label,
                               source: event.source, message: event.message.description, metadata: all)
        switch sink {
        case .standardError: Self.writeAll(STDERR_FILENO, line + "\n")
        case .syslog(let socket):
            if !socket.send(severity: Self.severity(event.level), line) { Self.writeAll(STDERR_FILENO, line + "\n") }
        }
    }

    /// One event as a line (no line end). `time` is left out when nil.
    public static func render(format: Format, time: String?, level: Logger.Level, label: String, source: String,
                              message: String, metadata: Logger.Metadata) -> String {
        let keys = metadata.keys.sorted()
        switch format {
        case .text:
            var s = time.map { "\($0) " } ?? ""
            s += "\(level) \(label) :"
            for k in keys { s += " \(k)=\(metadata[k]!)" }
            return s + " [\(source)] \(message)"
        case .logfmt:
            var fields: [(String, String)] = []
            if let time { fields.append(("time", time)) }
            fields += [("level", "\(level)"), ("logger", label), ("source", source), ("msg", message)]
            let fixed = Set(fields.map(\.0))
            for k in keys { fields.append((fixed.contains(k) ? "meta.\(k)" : k, "\(metadata[k]!)")) }
            return fields.map { "\(logfmtKey($0.0))=\(logfmtValue($0.1))" }.joined(separator: " ")
        case .json:
            var s = "{"
            var fixed: Set<String> = []
            func add(_ key: String, _ value: String) {
                if s.count > 1 { s += "," }
                s += jsonString(key) + ":" + value
                fixed.insert(key)
            }
            if let time { add("time", jsonString(time)) }
            add("level", jsonString("\(level)"))
            add("logger", jsonString(label))
            add("source", jsonString(source))
            add("msg", jsonString(message))
            let reserved = fixed
            for k in keys { add(reserved.contains(k) ? "meta.\(k)" : k, json(metadata[k]!)) }
            return s + "}"
        }
    }

    static func json(_ value: Logger.MetadataValue) -> String {
        switch value {
        case .string(let s): return jsonString(s)
        case .stringConvertible(let c): return jsonString(c.description)
        case .array(let a): return "[" + a.map(json).joined(separator: ",") + "]"
        case .dictionary(let d):
            return "{" + d.keys.sorted().map { jsonString($0) + ":" + json(d[$0]!) }.joined(separator: ",") + "}"
        @unknown default: return jsonString(value.description)
        }
    }

    /// A JSON string literal (RFC 8259 §7): quotes, backslash and control characters escaped.
    public static func jsonString(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where u.value < 0x20 || u.value == 0x7F || u.value == 0x2028 || u.value == 0x2029:
                let hex = String(u.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(u)
            }
        }
        return out + "\""
    }

    /// A logfmt key: characters other than letters, digits and `._-` become `_`.
    static func logfmtKey(_ k: String) -> String {
        String(k.unicodeScalars.map { u -> Character in
            u.properties.isAlphabetic || ("0"..."9").contains(u) || u == "." || u == "_" || u == "-" ? Character(u) : "_"
        })
    }

    /// A logfmt value: bare unless empty or holding a space, `=`, `"` or a control character; then
    /// quoted with `\"`, `\\` and `\n`-style escapes.
    static func logfmtValue(_ v: String) -> String {
        let needsQuotes = v.isEmpty || v.unicodeScalars.contains { $0.value <= 0x20 || $0 == "=" || $0 == "\"" || $0.value == 0x7F }
        guard needsQuotes else { return v }
        return jsonString(v)
    }

    /// RFC 3339 UTC with milliseconds: `2026-12-05T15:04:05.123Z`.
    static func timestamp() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        var t = ts.tv_sec
        var tm = Glibc.tm()
        gmtime_r(&t, &tm)
        func pad(_ n: Int32, _ width: Int) -> String {
            let s = String(n)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        return "\(pad(tm.tm_year + 1900, 4))-\(pad(tm.tm_mon + 1, 2))-\(pad(tm.tm_mday, 2))T\(pad(tm.tm_hour, 2)):"
            + "\(pad(tm.tm_min, 2)):\(pad(tm.tm_sec, 2)).\(pad(Int32(ts.tv_nsec / 1_000_000), 3))Z"
    }

    /// syslog severities (RFC 5424 §6.2.1).
    static func severity(_ level: Logger.Level) -> Int32 {
        switch level {
        case .trace, .debug: return 7
        case .info: return 6
        case .notice: return 5
        case .warning: return 4
        case .error: return 3
        case .critical: return 2
        }
    }

    static func writeAll(_ fd: Int32, _ string: String) {
        var bytes = Array(string.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Glibc.write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            offset += n
        }
    }
}

/// A connected UNIX datagram socket to the local syslog daemon. Each line is one datagram
/// `<PRI>swallow[PID]: line` (facility mail); the daemon adds the time and host. A daemon that is
/// not there (yet), or restarted, is reconnected on the next line; until then lines go to stderr.
public final class SyslogSocket: Sendable {
    let path: String
    let fd = NIOLockedValueBox<Int32>(-1)
    let tag: String

    private static let sockets = NIOLockedValueBox<[String: SyslogSocket]>([:])

    /// One socket per path for the whole process (every logger label shares it).
    public static func shared(path: String) -> SyslogSocket {
        sockets.withLockedValue { all in
            if let s = all[path] { return s }
            let s = SyslogSocket(path: path)
            all[path] = s
            return s
        }
    }

    init(path: String) {
        self.path = path
        self.tag = "swallow[\(getpid())]"
    }

    /// Sends one line at `severity`; false when no daemon took it.
    public func send(severity: Int32, _ line: String) -> Bool {
        let datagram = Array("<\(2 * 8 + severity)>\(tag): \(line)".utf8)
        return fd.withLockedValue { fd in
            for _ in 0..<2 {
                if fd < 0 { fd = Self.connect(path) }
                if fd < 0 { return false }
                let n = datagram.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if n == datagram.count { return true }
                // ECONNREFUSED / ENOTCONN after the daemon restarted: reconnect once.
                close(fd)
                fd = -1
            }
            return false
        }
    }

    static func connect(_ path: String) -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return -1 }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { close(fd); return -1 }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let ok = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        if ok != 0 { close(fd); return -1 }
        return fd
    }
}
