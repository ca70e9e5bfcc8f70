#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import MailCore
import MailAuth
import MailServer

/// `swallow dkim generate|list|activate|retire`: the domains' DKIM keys (in `data_dir/dkim/`).
struct DKIMCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dkim", abstract: "Generate, list, activate and retire the DKIM keys that sign submitted mail.",
        subcommands: [Generate.self, List.self, Activate.self, Retire.self])

    static func store(_ options: ConfigOption) throws -> DKIMKeyStore {
        let (layout, _) = try dataLayout(options, create: false)
        return DKIMKeyStore(root: layout.dkim)
    }

    /// `activate` and `retire`: sets a key's state and says so.
    static func change(_ state: DKIMKeyStore.State, _ domain: String, _ selector: String, _ options: ConfigOption) throws {
        do { try store(options).setState(state, domain: domain, selector: selector) } catch let e as ExitCode { throw e } catch {
            throw fail("\(error)")
        }
        print("\(domain.lowercased()) \(selector): \(state.rawValue)")
    }

    /// The record as a zone-file line: strings of at most 255 octets (RFC 1035 §3.3).
    static func zoneLine(_ key: DKIMKeyStore.Key) -> String {
        DNSRecordLine(name: key.recordName, type: "TXT", value: key.record, purpose: "DKIM").zoneLine
    }

    struct Generate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a key (pending: it signs nothing until activated) and print the TXT record to publish.")
        @Argument(help: "The domain (d=).") var domain: String
        @Option(name: .long, help: "ed25519 or rsa (2048 bits); both when not given.") var algorithm: String?
        @Option(name: .long, help: "The selector (s=); default <algorithm>-<yyyymm>.") var selector: String?
        @OptionGroup var options: ConfigOption

        func run() async throws {
            let store = try DKIMCommand.store(options)
            var algorithms: [DKIMAlgorithm] = [.ed25519SHA256, .rsaSHA256]
            if let a = algorithm {
                switch a.lowercased() {
                case "ed25519", "ed25519-sha256": algorithms = [.ed25519SHA256]
                case "rsa", "rsa-sha256": algorithms = [.rsaSHA256]
                default: throw fail("unknown algorithm '\(a)' (ed25519 or rsa)", code: 64)
                }
            }
            if selector != nil, algorithms.count > 1 { throw fail("--selector needs --algorithm (one key per selector)", code: 64) }
            for a in algorithms {
                let key: DKIMKeyStore.Key
                do { key = try store.generate(domain: domain, algorithm: a, selector: selector) } catch { throw fail("\(error)") }
                print("generated \(key.domain) \(key.selector) \(key.algorithm.rawValue) (pending: publish this record, then `swallow dkim activate \(key.domain) \(key.selector)`)")
                print(DKIMCommand.zoneLine(key))
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the keys: domain, selector, algorithm, state, created, and their records.")
        @Flag(name: .long, help: "One JSON array of {domain, selector, algorithm, state, created, name, record, published}.") var json = false
        @OptionGroup var options: ConfigOption

        func run() async throws {
            let (layout, c) = try dataLayout(options, create: false)
            let store = DKIMKeyStore(root: layout.dkim)
            var keys: [DKIMKeyStore.Key] = []
            do { for d in store.domains() { keys += try store.keys(of: d) } } catch { throw fail("\(error)") }
            // Whether DNS shows each record, through the configured resolver.
            let resolver = try? DomainDNS.resolver(for: c)
            var published: [Bool] = []
            for k in keys {
                if let resolver { published.append(await DomainDNS.isPublished(k, resolver: resolver)) } else { published.append(false) }
            }
            if json {
                let items = zip(keys, published).map { k, seen in
                    "{\"domain\": \(QuotedLiteral.quote(k.domain)), \"selector\": \(QuotedLiteral.quote(k.selector)), \"algorithm\": \(QuotedLiteral.quote(k.algorithm.rawValue)), "
                        + "\"state\": \(QuotedLiteral.quote(k.state.rawValue)), \"created\": \(k.created), \"name\": \(QuotedLiteral.quote(k.recordName)), "
                        + "\"record\": \(QuotedLiteral.quote(k.record)), \"published\": \(seen)}"
                }
                print("[" + items.joined(separator: ",\n ") + "]")
                return
            }
            if keys.isEmpty { print("no DKIM keys (swallow dkim generate DOMAIN)") }
            for (k, seen) in zip(keys, published) {
                print("\(k.domain)\t\(k.selector)\t\(k.algorithm.rawValue)\t\(k.state.rawValue)\tcreated \(isoDate(k.created))"
                    + "\t\(seen ? "in DNS" : "not in DNS")")
                if k.state != .retired { print("  \(DKIMCommand.zoneLine(k))") }
            }
        }
    }

    struct Activate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Start signing with a key (its record must be published).")
        @Argument(help: "The domain.") var domain: String
        @Argument(help: "The selector.") var selector: String
        @OptionGroup var options: ConfigOption

        func run() async throws { try DKIMCommand.change(.active, domain, selector, options) }
    }

    struct Retire: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop signing with a key (keep its record published for a few days).")
        @Argument(help: "The domain.") var domain: String
        @Argument(help: "The selector.") var selector: String
        @OptionGroup var options: ConfigOption

        func run() async throws { try DKIMCommand.change(.retired, domain, selector, options) }
    }
}

func isoDate(_ seconds: Int64) -> String {
    var t = time_t(seconds)
    var tm = tm()
    gmtime_r(&t, &tm)
    func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }
    return "\(tm.tm_year + 1900)-\(two(tm.tm_mon + 1))-\(two(tm.tm_mday))"
}
