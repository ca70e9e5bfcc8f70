import DNSCore
import NIOCore

extension StubResolver {
    /// How the stub resolver talks to its recursive nameservers.
    public struct Configuration: Sendable {
        /// The recursive nameservers, tried in order (RFC 1123 §6.1.3.3: a stub uses a list of servers).
        public var nameservers: [SocketAddress]
        /// How long to wait for one answer from one server (resolv.conf `options timeout:`, default 5 s).
        public var timeout: Duration
        /// Rounds over the whole server list (resolv.conf `options attempts:`, default 2).
        public var attempts: Int
        /// The EDNS(0) UDP payload size to advertise, or `nil` for plain 512-octet DNS (RFC 6891 §6.2.5).
        public var udpPayloadSize: UInt16?
        /// The most CNAME records followed for one lookup (RFC 1034 §3.6.2 asks for a limit).
        public var maxCNAMEChain: Int
        /// The most cached answers kept; the soonest to expire are dropped first.
        public var cacheCapacity: Int
        /// Positive TTLs are capped at this many seconds (default one day).
        public var maxTTL: UInt32
        /// Negative TTLs are capped at this many seconds (RFC 2308 §5 suggests 1–3 hours; default 3 h).
        public var maxNegativeTTL: UInt32

        /// A configuration for these servers, every other field defaulted.
        public init(nameservers: [SocketAddress], timeout: Duration = .seconds(5), attempts: Int = 2,
                    udpPayloadSize: UInt16? = 1232, maxCNAMEChain: Int = 8, cacheCapacity: Int = 10_000,
                    maxTTL: UInt32 = 86_400, maxNegativeTTL: UInt32 = 10_800) {
            self.nameservers = nameservers
            self.timeout = timeout
            self.attempts = max(1, attempts)
            self.udpPayloadSize = udpPayloadSize
            self.maxCNAMEChain = maxCNAMEChain
            self.cacheCapacity = max(1, cacheCapacity)
            self.maxTTL = maxTTL
            self.maxNegativeTTL = maxNegativeTTL
        }

        /// A configuration from `"host:port"` strings (`[dns] nameservers = […]`): IPv4 or IPv6
        /// literals only (`192.0.2.53`, `127.0.0.1:5353`, `[2001:db8::53]:53`, `::1`); port 53 by default.
        /// - Throws: ``DNSResolverError/invalidName(_:)`` for anything else (host names would need DNS).
        public init(nameservers: [String], timeout: Duration = .seconds(5), attempts: Int = 2) throws {
            self.init(nameservers: try nameservers.map { try Self.nameserverAddress($0) }, timeout: timeout, attempts: attempts)
        }

        /// Parses one nameserver as `ip`, `ip:port` or `[ipv6]:port`.
        public static func nameserverAddress(_ text: String, defaultPort: Int = 53) throws -> SocketAddress {
            var host = Substring(text).drop(while: \.isWhitespace)
            while host.last?.isWhitespace == true { host = host.dropLast() }
            var port = defaultPort
            if host.hasPrefix("[") {
                guard let close = host.firstIndex(of: "]") else { throw DNSResolverError.invalidName(text) }
                let rest = host[host.index(after: close)...]
                host = host[host.index(after: host.startIndex)..<close]
                if !rest.isEmpty {
                    guard rest.hasPrefix(":"), let p = Int(rest.dropFirst()) else { throw DNSResolverError.invalidName(text) }
                    port = p
                }
            } else if host.filter({ $0 == ":" }).count == 1, let colon = host.firstIndex(of: ":") {
                guard let p = Int(host[host.index(after: colon)...]) else { throw DNSResolverError.invalidName(text) }
                port = p
                host = host[..<colon]
            }
            if let percent = host.firstIndex(of: "%") { host = host[..<percent] }
            guard (1...65_535).contains(port), IPAddress(String(host)) != nil else { throw DNSResolverError.invalidName(text) }
            do {
                return try SocketAddress(ipAddress: String(host), port: port)
            } catch {
                throw DNSResolverError.invalidName(text)
            }
        }

        /// Reads resolv.conf(5) text: `nameserver` lines (at most 3 are used, like glibc) and
        /// `options timeout:n attempts:n`. Without any `nameserver` line, 127.0.0.1 is used.
        /// `search`, `domain` and other options are ignored: mail only looks up fully qualified names.
        public static func resolvConf(_ text: String) -> Configuration {
            var servers: [SocketAddress] = []
            var timeout = 5, attempts = 2
            for rawLine in text.split(whereSeparator: { $0 == "\n" || $0 == "\r" }) {
                let line = rawLine.prefix { $0 != "#" && $0 != ";" }
                let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
                guard let keyword = words.first else { continue }
                switch keyword {
                case "nameserver" where words.count >= 2:
                    if servers.count < 3, let address = try? nameserverAddress(String(words[1])) {
                        servers.append(address)
                    }
                case "options":
                    for option in words.dropFirst() {
                        if option.hasPrefix("timeout:"), let v = Int(option.dropFirst(8)) { timeout = min(max(v, 1), 30) }
                        if option.hasPrefix("attempts:"), let v = Int(option.dropFirst(9)) { attempts = min(max(v, 1), 5) }
                    }
                default:
                    continue
                }
            }
            if servers.isEmpty, let local = try? SocketAddress(ipAddress: "127.0.0.1", port: 53) {
                servers = [local]
            }
            return Configuration(nameservers: servers, timeout: .seconds(timeout), attempts: attempts)
        }
    }
}
