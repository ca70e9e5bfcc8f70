import ArgumentParser
import MailAuth
import MailCore
import MailServer

/// `swallow dns records|check DOMAIN`: what a domain must publish, and whether DNS shows it.
struct DNSCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dns", abstract: "Print the DNS records a domain needs (MX, SPF, DKIM, DMARC), or check them.",
        subcommands: [Records.self, Check.self])

    /// The records of `domain`, which must be one of the configured domains.
    static func records(_ domain: String, _ options: ConfigOption) throws -> [DNSRecordLine] {
        let (layout, c) = try dataLayout(options, create: false)
        let d = domain.lowercased()
        guard c.domains.contains(d) else {
            throw fail("\(domain) is not one of the configured domains (\(c.domains.joined(separator: ", ")))")
        }
        let keys: [DKIMKeyStore.Key]
        do { keys = try DKIMKeyStore(root: layout.dkim).keys(of: d) } catch { throw fail("\(error)") }
        return DomainDNS.records(for: d, configuration: c, keys: keys)
    }

    struct Records: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print every record to publish for DOMAIN, as zone-file lines.")
        @Argument(help: "The domain.") var domain: String
        @Flag(name: .long, help: "One JSON array of {\"name\", \"type\", \"value\"} objects.") var json = false
        @OptionGroup var options: ConfigOption

        func run() async throws {
            let records = try DNSCommand.records(domain, options)
            if json {
                let items = records.map {
                    "{\"name\": \(QuotedLiteral.quote($0.name)), \"type\": \(QuotedLiteral.quote($0.type)), \"value\": \(QuotedLiteral.quote($0.value))}"
                }
                print("[" + items.joined(separator: ",\n ") + "]")
                return
            }
            for r in records { print("; \(r.purpose)\n\(r.zoneLine)") }
        }
    }

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Look each record up through the configured resolver; exit 1 when one is missing or different.")
        @Argument(help: "The domain.") var domain: String
        @OptionGroup var options: ConfigOption

        func run() async throws {
            let records = try DNSCommand.records(domain, options)
            let c: ServerConfiguration
            do { c = try options.load() } catch { throw fail("invalid configuration: \(error)", code: 78) }
            let resolver = try DomainDNS.resolver(for: c)
            let statuses = await DomainDNS.check(records, resolver: resolver)
            var bad = 0
            for (r, status) in zip(records, statuses) {
                switch status {
                case .published:
                    print("ok        \(r.purpose): \(r.name) \(r.type)")
                case .missing:
                    bad += 1
                    print("missing   \(r.purpose): \(r.zoneLine)")
                case .different(let found):
                    bad += 1
                    print("different \(r.purpose): \(r.name) \(r.type) has \(found.map { "\"\($0)\"" }.joined(separator: ", "))")
                    print("          expected \(r.zoneLine)")
                case .lookupFailed(let why):
                    bad += 1
                    print("failed    \(r.purpose): \(r.name) \(r.type): \(why)")
                }
            }
            if bad > 0 { throw ExitCode(1) }
        }
    }
}
