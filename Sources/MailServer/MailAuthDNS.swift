import DNSClient
import DNSCore
import MailAuth

/// Adapts the stub resolver to what MailAuth declares it needs: NXDOMAIN kept apart from NODATA, and
/// every failure (timeouts, SERVFAIL, CNAME loops, invalid names) as a ``MailAuthDNSError``, which
/// the evaluators report as `temperror`.
struct MailAuthDNS: MailAuthResolver {
    let resolver: StubResolver

    func txt(_ name: String) async throws(MailAuthDNSError) -> MailAuthLookup<[UInt8]> {
        try await lookup(name, .txt) { if case .txt(let strings) = $0 { Array(strings.joined()) } else { nil } }
    }

    func ipv4(_ name: String) async throws(MailAuthDNSError) -> MailAuthLookup<[UInt8]> {
        try await lookup(name, .a) { if case .a(let ip) = $0 { ip.bytes } else { nil } }
    }

    func ipv6(_ name: String) async throws(MailAuthDNSError) -> MailAuthLookup<[UInt8]> {
        try await lookup(name, .aaaa) { if case .aaaa(let ip) = $0 { ip.bytes } else { nil } }
    }

    func mx(_ name: String) async throws(MailAuthDNSError) -> MailAuthLookup<String> {
        let answer: DNSAnswer
        do { answer = try await resolver.lookup(try Self.name(name), type: .mx) } catch { throw MailAuthDNSError(error.description) }
        if answer.responseCode == .nameError { return .nxdomain }
        let sorted = answer.records.enumerated().compactMap { (i, r) -> (UInt16, Int, String)? in
            guard case .mx(let preference, let exchange) = r.data else { return nil }
            return (preference, i, exchange.isRoot ? "" : exchange.description)
        }.sorted { ($0.0, $0.1) < ($1.0, $1.1) }
        return .records(sorted.map(\.2))
    }

    func ptr(_ name: String) async throws(MailAuthDNSError) -> MailAuthLookup<String> {
        try await lookup(name, .ptr) { if case .ptr(let target) = $0 { target.description } else { nil } }
    }

    /// SPF macros can expand to labels with any printable octet (`%_` is a space, RFC 7208 §7.3):
    /// DNS carries them (RFC 2181 §11), so only the lengths are checked here.
    static func name(_ text: String) throws(DNSResolverError) -> DNSName {
        let trimmed = text.hasSuffix(".") ? text.dropLast() : Substring(text)
        do { return try DNSName(labels: trimmed.utf8.split(separator: 0x2E, omittingEmptySubsequences: false).map(Array.init)) }
        catch { throw .invalidName(text) }
    }

    private func lookup<T>(_ name: String, _ type: DNSRecordType,
                           _ transform: (DNSRecordData) -> T?) async throws(MailAuthDNSError) -> MailAuthLookup<T> {
        let answer: DNSAnswer
        do { answer = try await resolver.lookup(try Self.name(name), type: type) } catch { throw MailAuthDNSError(error.description) }
        if answer.responseCode == .nameError { return .nxdomain }
        return .records(answer.records.compactMap { transform($0.data) })
    }
}
