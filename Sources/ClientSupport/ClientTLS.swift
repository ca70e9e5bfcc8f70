import MailCore
import NIOSSL

/// The TLS side of a client connection, built once before connecting: the context (TLS 1.2 or later,
/// certificates checked as `verification` says) and the name sent as SNI and checked against the
/// certificate. Used for implicit TLS (the first handler of the pipeline) and for STARTTLS/STLS.
///
/// - SeeAlso: RFC 8314 §3 (implicit TLS), RFC 6125 (host names in certificates), RFC 6066 §3 (SNI).
public struct ClientTLS: Sendable {
    /// How the server's certificate is checked; each client's public configuration maps its own enum
    /// onto this one.
    public enum Verification: Hashable, Sendable {
        /// Full verification against the system trust store, including the host name.
        case systemTrustStore
        /// Full verification against the CA certificates in this PEM file.
        case customCA(pemFile: String)
        /// No verification at all (tests, self-signed servers trusted by other means).
        case insecureNoVerification
    }

    /// The context every handshake of the connection uses.
    public let context: NIOSSLContext
    /// The SNI name and the name the certificate must carry; `nil` when connecting to an IP literal
    /// (RFC 6066 §3: literal addresses are not sent as SNI).
    public let serverHostname: String?

    /// Builds the context for `verification`; the name is `serverName`, else `host`.
    ///
    /// - Throws: NIOSSL's error when the context cannot be built (an unreadable CA file).
    public init(verification: Verification, host: String, serverName: String?) throws {
        self.context = try NIOSSLContext(configuration: Self.configuration(verification))
        self.serverHostname = Self.serverHostname(host: host, serverName: serverName)
    }

    /// The TLS configuration for `verification`: a client configuration with TLS 1.2 as the minimum.
    public static func configuration(_ verification: Verification) -> TLSConfiguration {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = .tlsv12
        switch verification {
        case .systemTrustStore: break
        case .customCA(let file): tls.trustRoots = .file(file)
        case .insecureNoVerification: tls.certificateVerification = .none
        }
        return tls
    }

    /// The name for SNI and the certificate check: `serverName ?? host`, or `nil` when that is an IP
    /// address.
    public static func serverHostname(host: String, serverName: String?) -> String? {
        let name = serverName ?? host
        return CIDR.parseIP(name) == nil ? name : nil
    }

    /// A new handler that runs the client side of the handshake with this context and name.
    public func makeHandler() throws -> NIOSSLClientHandler {
        try NIOSSLClientHandler(context: context, serverHostname: serverHostname)
    }
}
