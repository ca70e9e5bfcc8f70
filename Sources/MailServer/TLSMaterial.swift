import Crypto
import NIOSSL
import SwiftASN1
import X509
import struct Foundation.Date
#if canImport(Glibc)
import Glibc
#endif

/// The server's certificate and key, loaded from the configured files or generated once (self-signed,
/// ECDSA P-256, host name as SAN) into `<data_dir>/tls/`.
public struct TLSMaterial: Sendable {
    /// The TLS server context (TLS 1.2 minimum).
    public let context: NIOSSLContext
    /// SHA-256 fingerprint of the leaf certificate, colon-separated hex.
    public let fingerprint: String
    /// `true` when the certificate was generated on this start.
    public let generated: Bool
    /// Paths of the certificate and key in use.
    public let certificatePath: String, privateKeyPath: String

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
        let chain: [NIOSSLCertificate]
        let key: NIOSSLPrivateKey
        do {
            chain = try NIOSSLCertificate.fromPEMFile(certPath!)
        } catch {
            throw ConfigurationError(key: "tls.certificate", line: nil, message: "cannot load certificate \(certPath!): \(error)")
        }
        guard let leaf = chain.first else {
            throw ConfigurationError(key: "tls.certificate", line: nil, message: "\(certPath!) holds no certificate")
        }
        do {
            key = try NIOSSLPrivateKey(file: keyPath!, format: .pem)
        } catch {
            throw ConfigurationError(key: "tls.private_key", line: nil, message: "cannot load private key \(keyPath!): \(error)")
        }
        var tls = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        tls.minimumTLSVersion = .tlsv12
        let context: NIOSSLContext
        do {
            context = try NIOSSLContext(configuration: tls)
        } catch {
            throw ConfigurationError(key: "tls.private_key", line: nil, message: "certificate and key do not work together: \(error)")
        }
        let der = try leaf.toDERBytes()
        let digest = SHA256.hash(data: der)
        let hex = digest.map { b in (b < 16 ? "0" : "") + String(b, radix: 16, uppercase: true) }.joined(separator: ":")
        return TLSMaterial(context: context, fingerprint: hex, generated: generated, certificatePath: certPath!, privateKeyPath: keyPath!)
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
