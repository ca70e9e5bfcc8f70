import ArgumentParser
import Directory
import SASL
import Logging
import MailServer
import UnixSignals
#if canImport(Glibc)
import Glibc
#endif

/// `swallow`: the mail server and its administration commands.
public struct SwallowCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "swallow",
        abstract: "Swallow: an SMTP/POP3 mail server.",
        version: swallowVersion,
        subcommands: [Serve.self, ConfigCommand.self, UserCommand.self, AliasCommand.self, MailboxCommand.self, QueueCommand.self, DKIMCommand.self, DNSCommand.self, SRSCommand.self, Send.self, Fetch.self, MIMECommand.self])

    public init() {}

    /// Parses the process arguments and runs the chosen command (the executable's entry point).
    public static func runFromCommandLine() async {
        await main()
    }
}

/// The version `swallow --version` prints.
public let swallowVersion = SwallowServer.version

/// `--config FILE`, shared by every command.
struct ConfigOption: ParsableArguments {
    @Option(name: .customLong("config"),
            help: "Configuration file (TOML). Default: $SWALLOW_CONFIG, else ./swallow.toml, else /etc/swallow/swallow.toml, else the embedded default.")
    var explicitConfig: String?

    /// Where the configuration is looked for when `--config` is not given, in order.
    static let searchPath = ["swallow.toml", "/etc/swallow/swallow.toml"]

    /// The configuration file in use: `--config`, then `$SWALLOW_CONFIG`, then the first of
    /// ``searchPath`` that exists; `nil` for the embedded default.
    var config: String? {
        if let explicitConfig { return explicitConfig }
        if let env = getenv("SWALLOW_CONFIG"), case let path = String(cString: env), !path.isEmpty { return path }
        return Self.searchPath.first { access($0, F_OK) == 0 }
    }

    func load() throws -> ServerConfiguration {
        guard let path = config else { return .embeddedDefault }
        return try ServerConfiguration.load(path: path)
    }
}

/// Prints one sentence to stderr and exits non-zero.
func fail(_ message: String, code: Int32 = 1) -> ExitCode {
    var err = StandardError()
    print("swallow: \(message)", to: &err)
    return ExitCode(code)
}

struct StandardError: TextOutputStream {
    mutating func write(_ string: String) { writeStandardError(string) }
}

func writeStandardError(_ string: String) {
    var bytes = Array(string.utf8)
    var offset = 0
    while offset < bytes.count {
        let n = bytes.withUnsafeMutableBytes { Glibc.write(STDERR_FILENO, $0.baseAddress! + offset, $0.count - offset) }
        if n <= 0 { break }
        offset += n
    }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the server in the foreground (SIGTERM/SIGINT stop it).")
    @OptionGroup var options: ConfigOption

    func run() async throws {
        let c: ServerConfiguration
        do { c = try options.load() } catch { throw fail("invalid configuration: \(error)", code: 78) }
        LoggingSystem.bootstrap { label in LogOutput.handler(label: label, configuration: c.log) }
        let logger = Logger(label: "swallow")
        // Trap the stop signals (and SIGHUP, which reloads the certificate) before anything listens: a
        // signal during start-up then shuts down gracefully instead of killing the process.
        let signals = await UnixSignalsSequence(trapping: .sigterm, .sigint, .sighup)
        let server: SwallowServer
        do {
            server = try await SwallowServer.start(configuration: c, logger: logger)
        } catch {
            throw fail("cannot start: \(error)", code: 78)
        }
        var out = ""
        out += "Swallow is running\(options.config == nil ? " on the embedded default (no configuration file)" : "").\n"
        out += "  host name:      \(c.hostname)\n"
        out += "  domains:        \(c.domains.joined(separator: ", "))\n"
        out += "  data directory: \(c.dataDirectory)\n"
        for (name, label) in [("smtp", "smtp (MX):     "), ("submission", "submission:    "), ("submissions", "submissions:   "),
                              ("imap", "imap (STARTTLS):"), ("imaps", "imaps (TLS):   "),
                              ("pop3", "pop3 (STLS):   "), ("pop3s", "pop3s (TLS):   ")] {
            let e = server.endpoints(name)
            if !e.isEmpty { out += "  \(label) \(e.joined(separator: ", "))\n" }
        }
        out += "  TLS SHA-256:    \(server.tls.fingerprint)\n"
        let cfg = options.config.map { " --config \($0)" } ?? ""
        // The command as this binary was started (`.build/debug/swallow`, or `swallow` from the PATH).
        let me = CommandLine.arguments.first.map { $0.contains(" ") ? "'\($0)'" : $0 } ?? "swallow"
        out += "Add a first user:  echo 'a long passphrase' | \(me) user add you@\(c.domains[0]) --password-stdin\(cfg)\n"
        print(out, terminator: "")
        fflush(nil)
        try await server.run(until: signals)
    }
}

struct ConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "config", abstract: "Configuration tools.",
                                                    subcommands: [Check.self, Show.self, Reference.self])

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the configuration in force as TOML: every key, defaults filled in, secrets masked.")
        @OptionGroup var options: ConfigOption

        func run() async throws {
            let c: ServerConfiguration
            do { c = try options.load() } catch { throw fail("\(options.config ?? "embedded default"): \(error)") }
            print("# \(options.config.map { "swallow.toml: \($0)" } ?? "the embedded default (no configuration file)")")
            print(c.effectiveText, terminator: "")
        }
    }

    struct Reference: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print every configuration key with its default and what it does (the README's reference).")

        func run() async throws {
            print(ServerConfiguration.reference, terminator: "")
        }
    }

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Validate a configuration file and print the result.")
        @OptionGroup var options: ConfigOption

        func run() async throws {
            let c: ServerConfiguration
            do { c = try options.load() } catch { throw fail("\(options.config ?? "embedded default"): \(error)") }
            if c.tls.certificate != nil {
                do {
                    _ = try TLSMaterial.load(configuration: c.tls, tlsDirectory: "/nonexistent", hostname: c.hostname)
                } catch { throw fail("\(options.config ?? "embedded default"): \(error)") }
            }
            print("\(options.config ?? "embedded default"): OK (domains: \(c.domains.joined(separator: ", ")); smtp: \(c.smtp.listen.joined(separator: ", ")))")
        }
    }
}

/// The data directory of the configuration; with `create` (only `serve`, `user add` and `alias
/// add`) it is made when missing, otherwise a missing one is an error that says where it was looked
/// for and how to point at the right one.
func dataLayout(_ options: ConfigOption, create: Bool) throws -> (DataLayout, ServerConfiguration) {
    let c: ServerConfiguration
    do { c = try options.load() } catch { throw fail("invalid configuration: \(error)", code: 78) }
    let layout = DataLayout(root: c.dataDirectory)
    if create {
        do { try layout.prepare(clearSpool: false) } catch { throw fail("\(error)") }
    } else if access(layout.database, F_OK) != 0 {
        throw fail(missingDataDirectory(layout, configFile: options.config))
    }
    return (layout, c)
}

/// The one sentence for a data directory (or its database) that is not there.
func missingDataDirectory(_ layout: DataLayout, configFile: String?) -> String {
    var relative = Substring(layout.root)
    while relative.hasPrefix("./") { relative = relative.dropFirst(2) }
    let cwd = currentDirectory()
    let absolute = layout.root.hasPrefix("/") ? layout.root : (cwd.hasSuffix("/") ? cwd : cwd + "/") + relative
    let what = access(layout.root, F_OK) == 0 ? "no \(DataLayout.databaseName) in the data directory \(absolute)"
                                               : "no data directory at \(absolute)"
    let hint = configFile == nil
        ? "the embedded default keeps it in ./swallow-data of the directory where `swallow serve` runs: run this command there, or give --config FILE with its data_dir"
        : "check data_dir in \(configFile!), or create it with `swallow serve` or `swallow user add`"
    return "\(what) (\(hint))"
}

func currentDirectory() -> String {
    var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
    guard getcwd(&buffer, buffer.count) != nil else { return "." }
    return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// Opens the directory database of the configured data directory (creating it only with `create`).
func openDirectory(_ options: ConfigOption, create: Bool = false) async throws -> SQLiteDirectory {
    let (layout, c) = try dataLayout(options, create: create)
    do {
        return try await SQLiteDirectory.open(
            path: layout.database,
            policy: DirectoryPolicy(domains: Set(c.domains), recipientDelimiter: c.recipientDelimiter, postmaster: c.postmaster))
    } catch {
        throw fail("cannot open \(layout.database): \(error)")
    }
}

/// Runs a directory command, turning directory errors into one sentence.
func withDirectory(_ options: ConfigOption, create: Bool = false, _ body: (SQLiteDirectory) async throws -> Void) async throws {
    let d = try await openDirectory(options, create: create)
    do {
        try await body(d)
        try? await d.close()
    } catch let e as DirectoryError {
        try? await d.close()
        throw fail("\(e)")
    } catch let e as ExitCode {
        try? await d.close()
        throw e
    } catch {
        try? await d.close()
        throw fail("\(error)")
    }
}

/// Reads a password: one line from stdin with `--password-stdin`, or twice from the terminal. A
/// `new` password (`user add`, `user passwd`) must have ``minimumPasswordLength`` characters; one to
/// log in with (`send`, `fetch`) only must not be empty — the server decides whether it is right.
func readPassword(fromStdin: Bool, required: Bool, new: Bool = true) throws -> String? {
    if fromStdin {
        guard let line = readLine(strippingNewline: true) else { throw fail("no password on standard input") }
        let pw = line.hasSuffix("\r") ? String(line.dropLast()) : line
        if new { try checkPasswordLength(pw) } else if pw.isEmpty { throw fail("the password is empty") }
        return pw
    }
    guard isatty(STDIN_FILENO) == 1 else {
        if required { throw fail("no terminal to ask for a password; use --password-stdin") }
        return nil
    }
    let first = try promptHidden("Password: ")
    let second = try promptHidden("Repeat password: ")
    guard first == second else { throw fail("the passwords do not match") }
    try checkPasswordLength(first)
    return first
}

/// Fewest characters a new password may have (NIST SP 800-63B's minimum for a chosen secret).
let minimumPasswordLength = 8

func checkPasswordLength(_ password: String) throws {
    guard !password.isEmpty else { throw fail("the password is empty") }
    guard password.count >= minimumPasswordLength else {
        throw fail("the password is too short: at least \(minimumPasswordLength) characters (\(password.count) given)")
    }
}

func promptHidden(_ prompt: String) throws -> String {
    writeStandardError(prompt)
    var old = termios()
    tcgetattr(STDIN_FILENO, &old)
    var quiet = old
    quiet.c_lflag &= ~tcflag_t(ECHO)
    tcsetattr(STDIN_FILENO, TCSANOW, &quiet)
    defer {
        tcsetattr(STDIN_FILENO, TCSANOW, &old)
        writeStandardError("\n")
    }
    return readLine(strippingNewline: true) ?? ""
}

struct UserCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "user", abstract: "Manage users (mailboxes that can log in).",
        subcommands: [Add.self, List.self, Remove.self, Passwd.self, Quota.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a user. Without a password the user receives mail but cannot log in.",
                                                        discussion: "Passwords have at least \(minimumPasswordLength) characters.")
        @Argument(help: "The address, e.g. alice@example.test") var address: String
        @Flag(name: .long, help: "Read the password as one line from standard input.") var passwordStdin = false
        @OptionGroup var options: ConfigOption

        func run() async throws {
            let pw = try readPassword(fromStdin: passwordStdin, required: false)
            let hash = try pw.map { p -> String in
                do { return try PasswordHasher.hash(p) } catch { throw fail("cannot hash the password: \(error)") }
            }
            let scram = pw.map { SCRAMCredentials(password: $0).encoded }
            try await withDirectory(options, create: true) { d in
                try await d.addUser(address, passwordHash: hash, scram: scram)
                print("added \(try d.canonicalLocalAddress(address))\(hash == nil ? " (no password: receives mail, cannot log in)" : "")")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List users.")
        @OptionGroup var options: ConfigOption

        func run() async throws {
            try await withDirectory(options) { d in
                for u in try await d.listUsers() { print(u.hasPassword ? u.address : "\(u.address)\t(no password)") }
            }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove a user (the Maildir stays on disk).",
            discussion: "A user that aliases deliver to is kept unless --remove-aliases is given: the command names those aliases.")
        @Argument var address: String
        @Flag(name: .long, help: "Also remove the user from every alias that delivers to it (an alias left without targets is removed).")
        var removeAliases = false
        @OptionGroup var options: ConfigOption

        func run() async throws {
            try await withDirectory(options) { d in
                let aliases = try await d.removeUser(address, removingAliases: removeAliases)
                let key = try d.canonicalLocalAddress(address)
                print("removed \(key)\(aliases.isEmpty ? "" : " and its entries in the aliases \(aliases.joined(separator: ", "))")")
            }
        }
    }

    struct Passwd: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Set a user's password.",
                                                        discussion: "Passwords have at least \(minimumPasswordLength) characters.")
        @Argument var address: String
        @Flag(name: .long, help: "Read the password as one line from standard input.") var passwordStdin = false
        @OptionGroup var options: ConfigOption

        func run() async throws {
            guard let pw = try readPassword(fromStdin: passwordStdin, required: true) else { return }
            let hash: String
            do { hash = try PasswordHasher.hash(pw) } catch { throw fail("cannot hash the password: \(error)") }
            try await withDirectory(options) { d in
                try await d.setPassword(address, passwordHash: hash, scram: SCRAMCredentials(password: pw).encoded)
                print("password changed for \(try d.canonicalLocalAddress(address))")
            }
        }
    }
}

struct AliasCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "alias", abstract: "Manage aliases (addresses that deliver to users, other aliases, or addresses elsewhere).",
        subcommands: [Add.self, List.self, Remove.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add targets to an alias, creating it.",
            discussion: "An alias @example.org is the domain's catch-all: it receives for every address of the domain that no user or alias has (after +tag and postmaster).")
        @Argument var alias: String
        @Argument(help: "Local users or aliases, or addresses in other domains (forwarded with an SRS sender).") var targets: [String]
        @OptionGroup var options: ConfigOption

        func validate() throws {
            guard !targets.isEmpty else { throw ValidationError("give at least one target") }
        }

        func run() async throws {
            try await withDirectory(options, create: true) { d in
                try await d.addAlias(alias, targets: targets)
                print("\(try d.aliasKey(alias)) -> \(targets.joined(separator: ", "))")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List aliases.")
        @OptionGroup var options: ConfigOption

        func run() async throws {
            try await withDirectory(options) { d in
                for a in try await d.listAliases() { print("\(a.alias)\t\(a.targets.joined(separator: ", "))") }
            }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove an alias.")
        @Argument var alias: String
        @OptionGroup var options: ConfigOption

        func run() async throws {
            try await withDirectory(options) { d in
                try await d.removeAlias(alias)
                print("removed \(try d.aliasKey(alias))")
            }
        }
    }
}
