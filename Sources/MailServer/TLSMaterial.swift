import Crypto
import NIOConcurrencyHelpers
import NIOCore
import NIOSSL
import SwiftASN1
import X509
import struct Foundation.Date
#if canImport(Glibc)
import Glibc
#endif

/// The server's certificate and key, loaded from the configured files or generated once (self-signed,
/// ECDSA P-256, host name as SAN) into `<data_dir>/tls/`, and the TLS policy (`[tls] min_version`,
/// `ciphers`).
///
/// ``reload()`` (SIGHUP) reads the pair again: handshakes that start afterwards present the new
/// certificate (applied from NIOSSL's per-hello callback), sessions already established keep theirs,
/// and a pair that does not load leaves the old one in use.
public final class TLSMaterial: Sendable {
    /// The TLS server context every listener uses.
    public let context: NIOSSLContext
    /// `true` when the certificate was generated on this start.
    public let generated: Bool
    /// Paths of the certificate and key in use.
    public let certificatePath: String, privateKeyPath: String
    private let configuration: TLSConfiguration
    private let current: NIOLockedValueBox<(fingerprint: String, override: NIOSSLContextConfigurationOverride?)>

    /// SHA-256 fingerprint of the leaf certificate in use, colon-separated hex.
    public var fingerprint: String { current.withLockedValue { $0.fingerprint } }

    private init(context: NIOSSLContext, configuration: TLSConfiguration, generated: Bool, certificatePath: String, privateKeyPath: String,
                 current: NIOLockedValueBox<(fingerprint: String, override: NIOSSLContextConfigurationOverride?)>) {
        self.context = context
        self.configuration = configuration
        self.generated = generated
        self.certificatePath = certificatePath
        self.privateKeyPath = privateKeyPath
        self.current = current
    }

    /// Loads the configured pair, or the self-signed pair in `tlsDirectory` (creating it if absent).
    public static func load(configuration: ServerConfiguration.TLS, tlsDirectory: String, hostname: String) throws -> TLSMaterial {
        var certPath = configuration.certificate
        var keyPath = configuration.privateKey
        var generated = false
        if certPath == nil {
            certPath = tlsDirectory + "/cert.pem"
            keyPath = tlsDirectory + "/key.pem"
            if access(certPath!, R_OK) != 0 || access(keyPath!, R_OK) != 0 {
                try generateSelfSigned(certificatePath: certPath!, keyPath: keyPath!, hostname: hostname)
                generated = true
            }
        }
        let pair = try loadPair(certificatePath: certPath!, keyPath: keyPath!)
        var tls = TLSConfiguration.makeServerConfiguration(certificateChain: pair.chain.map { .certificate($0) }, privateKey: .privateKey(pair.key))
        tls.minimumTLSVersion = configuration.minimumVersion == "1.3" ? .tlsv13 : .tlsv12
        tls.cipherSuites = configuration.ciphers
        let current = NIOLockedValueBox<(fingerprint: String, override: NIOSSLContextConfigurationOverride?)>((pair.fingerprint, nil))
        // Until the first reload there is nothing to override (no work per handshake).
        tls.sslContextCallback = { _, promise in
            promise.succeed(current.withLockedValue { $0.override } ?? .noChanges)
        }
        let context: NIOSSLContext
        do {
            context = try NIOSSLContext(configuration: tls)
        } catch {
            // (The cipher list was checked against the known names when the configuration was read.)
            throw ConfigurationError(key: "tls.private_key", line: nil, message: "certificate and key do not work together: \(error)")
        }
        return TLSMaterial(context: context, configuration: tls, generated: generated, certificatePath: certPath!, privateKeyPath: keyPath!,
                           current: current)
    }

    /// Reads the certificate and key files again and uses them for every handshake from now on;
    /// returns the new fingerprint. Throws (and keeps the pair in use) when they do not load or do
    /// not belong together.
    @discardableResult
    public func reload() throws -> String {
        let pair = try Self.loadPair(certificatePath: certificatePath, keyPath: privateKeyPath)
        var check = configuration
        check.certificateChain = pair.chain.map { .certificate($0) }
        check.privateKey = .privateKey(pair.key)
        check.sslContextCallback = nil
        do {
            _ = try NIOSSLContext(configuration: check)
        } catch {
            throw ConfigurationError(key: "tls.private_key", line: nil, message: "certificate and key do not work together: \(error)")
        }
        var override = NIOSSLContextConfigurationOverride()
        override.certificateChain = pair.chain.map { .certificate($0) }
        override.privateKey = .privateKey(pair.key)
        current.withLockedValue { $0 = (pair.fingerprint, override) }
        return pair.fingerprint
    }

    private static func loadPair(certificatePath: String, keyPath: String) throws
        -> (chain: [NIOSSLCertificate], key: NIOSSLPrivateKey, fingerprint: String) {
        let chain: [NIOSSLCertificate]
        let key: NIOSSLPrivateKey
        do {
            chain = try NIOSSLCertificate.fromPEMFile(certificatePath)
        } catch {
            throw ConfigurationError(key: "tls.certificate", line: nil, message: "cannot load certificate \(certificatePath): \(error)")
        }
        guard let leaf = chain.first else {
            throw ConfigurationError(key: "tls.certificate", line: nil, message: "\(certificatePath) holds no certificate")
        }
        do {
            key = try NIOSSLPrivateKey(file: keyPath, format: .pem)
        } catch {
            throw ConfigurationError(key: "tls.private_key", line: nil, message: "cannot load private key \(keyPath): \(error)")
        }
        let digest = SHA256.hash(data: try leaf.toDERBytes())
        let hex = digest.map { b in (b < 16 ? "0" : "") + String(b, radix: 16, uppercase: true) }.joined(separator: ":")
        return (chain, key, hex)
    }

    /// Writes a new self-signed certificate and key (mode 0600) for `hostname`.
    public static func generateSelfSigned(certificatePath: String, keyPath: String, hostname: String) throws {
        let key = Certificate.PrivateKey(P256.Signing.PrivateKey())
        let name = try DistinguishedName {
            CommonName(hostname)
            OrganizationName("Swallow self-signed")
        }
        var sans: [GeneralName] = [.dnsName(hostname)]
        if hostname != "localhost" { sans.append(.dnsName("localhost")) }
        let now = Date()
        let cert = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: key.publicKey,
            notValidBefore: now.addingTimeInterval(-300), notValidAfter: now.addingTimeInterval(3 * 365 * 86400),
            issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                try ExtendedKeyUsage([.serverAuth])
                SubjectAlternativeNames(sans)
            }, issuerPrivateKey: key)
        try writeFile(keyPath, try key.serializeAsPEM().pemString + "\n", mode: 0o600)
        try writeFile(certificatePath, try cert.serializeAsPEM().pemString + "\n", mode: 0o644)
    }

    static func writeFile(_ path: String, _ text: String, mode: mode_t) throws {
        let tmp = path + ".tmp"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard fd >= 0 else { throw ConfigurationError(key: "data_dir", line: nil, message: "cannot write \(tmp): \(String(cString: strerror(errno)))") }
        let bytes = Array(text.utf8)
        let ok = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } == bytes.count && fsync(fd) == 0
        close(fd)
        guard ok, rename(tmp, path) == 0 else {
            unlink(tmp)
            throw ConfigurationError(key: "data_dir", line: nil, message: "cannot write \(path): \(String(cString: strerror(errno)))")
        }
    }
}
