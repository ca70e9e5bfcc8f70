import Logging
import MailAuth
import ServiceLifecycle

/// `serve`'s part of the DKIM key lifecycle. At start, every configured domain without a key gets its
/// first Ed25519 + RSA pair (pending) and the log shows the records to publish. Then, at start and
/// every ``interval``, a pending key whose record the configured resolver can see becomes active —
/// so Swallow never signs with a key nobody can look up, and needs no `swallow dkim activate` once
/// the record is in DNS.
struct DKIMActivation: Service {
    let store: DKIMKeyStore
    let domains: [String]
    let resolver: any MailAuthResolver
    let logger: Logger
    var interval: Duration = .seconds(3600)

    /// Generates the first pair for each multi-label domain (not `localhost`) that has no key at all.
    static func bootstrap(store: DKIMKeyStore, configuration c: ServerConfiguration, logger: Logger) {
        for domain in c.domains where domain.contains(".") {
            let existing = (try? store.keys(of: domain)) ?? []
            guard existing.isEmpty else { continue }
            var made: [DKIMKeyStore.Key] = []
            for algorithm in [DKIMAlgorithm.ed25519SHA256, .rsaSHA256] {
                do { made.append(try store.generate(domain: domain, algorithm: algorithm)) } catch {
                    logger.error("cannot generate a DKIM key", metadata: ["d": "\(domain)", "error": "\(error)"])
                }
            }
            guard !made.isEmpty else { continue }
            logger.notice("generated DKIM keys (pending until their records are visible in DNS)", metadata: [
                "d": "\(domain)", "selectors": "\(made.map(\.selector).joined(separator: ","))"])
            for line in DomainDNS.records(for: domain, configuration: c, keys: made) {
                logger.notice("publish: \(line.zoneLine)", metadata: ["d": "\(domain)"])
            }
        }
    }

    func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await activatePublished()
                try await Task.sleep(for: interval)
            }
        }
    }

    /// Activates every pending key whose record is published as generated.
    func activatePublished() async {
        for domain in domains {
            for key in ((try? store.keys(of: domain)) ?? []) where key.state == .pending {
                guard await DomainDNS.isPublished(key, resolver: resolver) else { continue }
                do {
                    try store.setState(.active, domain: key.domain, selector: key.selector)
                    logger.notice("DKIM key activated: its record is visible in DNS", metadata: ["d": "\(key.domain)", "s": "\(key.selector)"])
                } catch {
                    logger.error("cannot activate a DKIM key", metadata: ["d": "\(key.domain)", "s": "\(key.selector)", "error": "\(error)"])
                }
            }
        }
    }
}
