import NIOCore

/// How an ``SMTPClient`` connects, secures the connection and logs in.
public struct SMTPClientConfiguration: Sendable {
    /// Transport security.
    public enum Security: Hashable, Sendable {
        /// No TLS. Authentication is refused unless ``allowPlaintextAuthentication``.
        case plain
        /// STARTTLS is required (RFC 3207); fail if the server does not offer it.
        case startTLS
        /// STARTTLS when offered, plaintext otherwise (opportunistic, as MTAs relay).
        case startTLSIfAvailable
        /// TLS from the first byte (RFC 8314, port 465).
        case implicitTLS
    }

    /// How the server's certificate is checked.
    public enum CertificateVerification: Hashable, Sendable {
        /// Full verification against the system trust store, including the host name.
        case systemTrustStore
        /// Full verification against the CA certificates in this PEM file.
        case customCA(pemFile: String)
        /// No verification at all (tests, self-signed servers you trust by other means).
        case insecureNoVerification
    }

    /// Credentials.
    public enum Authentication: Hashable, Sendable {
        /// Do not authenticate.
        case none
        /// A password, with the mechanisms to try in order of preference (default: SCRAM-SHA-256,
        /// PLAIN, LOGIN — whichever the server offers first).
        case password(user: String, password: String, mechanisms: [String] = ["SCRAM-SHA-256", "PLAIN", "LOGIN"])
        /// An OAuth 2 access token (XOAUTH2).
        case oauth2(user: String, accessToken: String)
    }

    /// RFC 5321 §4.5.3.2 timeouts.
    public struct Timeouts: Hashable, Sendable {
        public var connect: TimeAmount = .seconds(30)
        /// Initial 220 (5 minutes).
        public var greeting: TimeAmount = .minutes(5)
        /// MAIL, RCPT and other commands (5 minutes).
        public var command: TimeAmount = .minutes(5)
        /// DATA initiation (2 minutes).
        public var dataInitiation: TimeAmount = .minutes(2)
        /// Final reply after the content (10 minutes).
        public var dataTermination: TimeAmount = .minutes(10)
        /// Each 64 KiB block written must be taken by the server within this time (3 minutes).
        public var dataBlock: TimeAmount = .minutes(3)
        public init() {}
    }

    /// Server host name or IP address.
    public var host: String
    /// Port (25, 587, 465 …).
    public var port: Int
    /// Transport security.
    public var security: Security
    /// Certificate checking (on by default).
    public var certificateVerification: CertificateVerification = .systemTrustStore
    /// The name the certificate must carry and SNI; defaults to ``host``.
    public var serverName: String?
    /// Our name in EHLO; defaults to `localhost`.
    public var heloName: String = "localhost"
    /// Credentials.
    public var authentication: Authentication = .none
    /// Send credentials over a connection without TLS (never by default).
    public var allowPlaintextAuthentication = false
    /// Use CHUNKING/BDAT when the server offers it.
    public var useChunking = true
    /// Timeouts.
    public var timeouts = Timeouts()

    /// A configuration for `host:port` with `security`.
    public init(host: String, port: Int, security: Security) {
        self.host = host
        self.port = port
        self.security = security
    }
}
