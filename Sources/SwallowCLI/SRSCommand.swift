#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import MailAuth
import MailServer

/// `swallow srs forward|reverse`: the sender rewriting that forwarding aliases apply, by hand (to
/// read a bounce's address, or to check another implementation against ours).
struct SRSCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "srs", abstract: "Rewrite a sender as forwarding does (SRS), or lead an SRS address back.",
        discussion: "The secret is <data_dir>/srs.secret, made by `swallow serve` the first time it starts.",
        subcommands: [Forward.self, Reverse.self])

    /// The rewriter of the configured data directory.
    static func rewriter(_ options: ConfigOption) throws -> (SRSRewriter, ServerConfiguration) {
        let (layout, c) = try dataLayout(options, create: false)
        let secret: String?
        do { secret = try layout.srsSecret(create: false) } catch { throw fail("\(error)") }
        guard let secret else { throw fail("no SRS secret at \(layout.srsSecretFile) (`swallow serve` makes it the first time it starts)") }
        return (SRSRewriter(secret: secret, maximumAgeDays: c.srs.maxAgeDays), c)
    }

    struct Forward: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the envelope sender a forwarded copy from SENDER gets.")
        @Argument(help: "The original envelope sender, local@domain.") var sender: String
        @Option(name: .long, help: "The forwarding domain (default: the first configured domain).") var domain: String?
        @Option(name: .long, help: "The time to stamp, seconds since 1970 (default: now).") var at: Int64?
        @OptionGroup var options: ConfigOption

        func run() async throws {
            let (srs, c) = try SRSCommand.rewriter(options)
            guard sender.contains("@") else { throw fail("'\(sender)' is not an address (local@domain)") }
            print(srs.forward(sender, forwarderDomain: (domain ?? c.domains[0]).lowercased(), now: at ?? Int64(time(nil))))
        }
    }

    struct Reverse: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print where an SRS address leads back to; exit 1 when its hash or age does not check out.")
        @Argument(help: "An SRS0 or SRS1 address.") var address: String
        @Option(name: .long, help: "The time to check the stamp against, seconds since 1970 (default: now).") var at: Int64?
        @OptionGroup var options: ConfigOption

        func run() async throws {
            let (srs, _) = try SRSCommand.rewriter(options)
            switch srs.reverse(address, now: at ?? Int64(time(nil))) {
            case .success(let original): print(original)
            case .failure(let why): throw fail("\(address): \(why)")
            }
        }
    }
}
