import DNSClient
import Logging
import MailAuth
import NIOPosix

/// One DNS record an administrator publishes for a mail domain.
public struct DNSRecordLine: Sendable, Hashable {
    /// The owner name, without the trailing dot.
    public var name: String
    /// `MX`, `TXT`.
    public var type: String
    /// The record data in presentation form (`10 mx.example.org.`, or the TXT text without quotes).
    public var value: String
    /// What it is for (`mail exchanger`, `SPF`, `DKIM ed25519-202612 (active)`, `DMARC`).
    public var purpose: String

    public init(name: String, type: String, value: String, purpose: String) {
        self.name = name
        self.type = type
        self.value = value
        self.purpose = purpose
    }

    /// The record as a zone-file line (TXT text split into quoted strings of at most 255 octets).
    public var zoneLine: String {
        guard type == "TXT" else { return "\(name). IN \(type) \(value)" }
        var chunks: [String] = []
        var rest = Substring(value)
        repeat {
            chunks.append("\"\(rest.prefix(255))\"")
            rest = rest.dropFirst(255)
        } while !rest.isEmpty
        return "\(name). IN TXT \(chunks.joined(separator: " "))"
    }
}

/// The records a domain needs for Swallow to receive its mail and for other servers to trust the mail
/// it sends (`swallow dns records|check`), and their lookup through the configured resolver.
public enum DomainDNS {
    /// How a record looks in DNS now.
    public enum Status: Sendable, Hashable {
        case published
        /// Records of that kind exist but differ: what was found.
        case different([String])
        case missing
        /// The lookup failed (timeout, SERVFAIL).
        case lookupFailed(String)
    }

    /// Every record to publish for `domain`: MX → our host name, SPF allowing the MX, one DKIM record
    /// per active or pending key, DMARC with `p=reject` and aggregate reports to the postmaster.
    public static func records(for domain: String, configuration c: ServerConfiguration, keys: [DKIMKeyStore.Key]) -> [DNSRecordLine] {
        let d = domain.lowercased()
        var out = [DNSRecordLine(name: d, type: "MX", value: "10 \(c.hostname).", purpose: "mail exchanger"),
                   DNSRecordLine(name: d, type: "TXT", value: "v=spf1 mx -all", purpose: "SPF")]
        for k in keys where k.state != .retired {
            out.append(DNSRecordLine(name: k.recordName, type: "TXT", value: k.record,
                                     purpose: "DKIM \(k.selector) \(k.algorithm.rawValue) (\(k.state.rawValue))"))
        }
        out.append(DNSRecordLine(name: "_dmarc." + d, type: "TXT", value: "v=DMARC1; p=reject; rua=mailto:postmaster@\(d)",
                                 purpose: "DMARC"))
        return out
    }

    /// Looks every record up and compares: MX by exchange name; SPF, DMARC and DKIM by the record of
    /// that kind at the name (whitespace ignored).
    public static func check(_ records: [DNSRecordLine], resolver: any MailAuthResolver) async -> [Status] {
        var out: [Status] = []
        for r in records {
            do {
                switch r.type {
                case "MX":
                    let want = r.value.split(separator: " ").last.map { String($0).lowercased().trimmingDot() } ?? ""
                    let found = try await resolver.mx(r.name).records.map { $0.lowercased() }
                    out.append(found.contains(want) ? .published : found.isEmpty ? .missing : .different(found))
                default:
                    let texts = try await resolver.txt(r.name).records.map { String(decoding: $0, as: UTF8.self) }
                    let kind = r.value.prefix { $0 != ";" && $0 != " " }.lowercased()  // "v=spf1", "v=dmarc1", "v=dkim1"
                    let same = texts.filter { $0.lowercased().hasPrefix(kind) || (kind.hasPrefix("v=dkim1") && $0.contains("p=")) }
                    if same.contains(where: { squeezed($0) == squeezed(r.value) }) {
                        out.append(.published)
                    } else {
                        out.append(same.isEmpty ? .missing : .different(same))
                    }
                }
            } catch {
                out.append(.lookupFailed(error.reason))
            }
        }
        return out
    }

    /// Whether `key`'s record can be seen through `resolver` now (what activates a pending key).
    public static func isPublished(_ key: DKIMKeyStore.Key, resolver: any MailAuthResolver) async -> Bool {
        guard let found = try? await resolver.txt(key.recordName).records else { return false }
        let want = squeezed(key.record)
        return found.contains { squeezed(String(decoding: $0, as: UTF8.self)) == want }
    }

    /// A resolver for the CLI: `[dns] nameservers`, or /etc/resolv.conf.
    public static func resolver(for c: ServerConfiguration) throws -> any MailAuthResolver {
        MailAuthDNS(resolver: try SwallowServer.makeResolver(c.dns, group: MultiThreadedEventLoopGroup.singleton))
    }

    static func squeezed(_ s: String) -> String { String(s.filter { !$0.isWhitespace }).lowercased() }
}

extension String {
    fileprivate func trimmingDot() -> String { hasSuffix(".") ? String(dropLast()) : self }
}
