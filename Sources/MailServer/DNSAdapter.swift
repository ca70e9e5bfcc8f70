import DNSClient
import MailDelivery

/// Adapts the DNS client to what delivery declares it needs.
struct DNSAdapter: MailExchangerResolver {
    let dns: any DNSResolver

    func mailExchangers(for domain: String) async -> MXLookup {
        do {
            switch try await dns.mx(domain) {
            case .records(let r): return .exchangers(r.map { MailDelivery.MXRecord(preference: Int($0.preference), host: $0.exchange) })
            case .noRecords: return .noMX
            case .nullMX: return .nullMX
            case .nxdomain: return .noSuchDomain
            }
        } catch let e as DNSResolverError {
            return e.isTemporary ? .temporaryFailure(e.description) : .permanentFailure(e.description)
        } catch {
            return .temporaryFailure("\(error)")
        }
    }

    func addresses(for host: String) async throws -> [String] {
        try await dns.addresses(host).map { "\($0)" }
    }
}
