#if canImport(Glibc)
import Glibc
#endif
import Crypto
import MailAuth
import MailCore

/// Mail that aliases forward to other domains (like Postfix with postsrsd, plus an ARC sealer):
/// the forwarded copy's envelope sender is rewritten by SRS, so the next hop's SPF check sees us
/// and not the original sender's domain; bounces to those SRS addresses are led back to the
/// original sender after their hash and age are checked; and, with `[arc] seal`, the copy gets an
/// ARC set recording what our checks found.
struct Forwarding: Sendable {
    let srs: SRSRewriter
    /// Our domains: their senders are not rewritten (we may send for them ourselves).
    let localDomains: Set<String>
    let sealARC: Bool
    let keys: DKIMKeyStore

    init(srs: SRSRewriter, localDomains: [String], sealARC: Bool, keys: DKIMKeyStore) {
        self.srs = srs
        self.localDomains = Set(localDomains.map { $0.lowercased() })
        self.sealARC = sealARC
        self.keys = keys
    }

    /// The envelope sender for a copy that `forwarderDomain` forwards: the null sender and senders
    /// of our own domains stay as they are; any other is rewritten (SRS0, or SRS1 for an SRS0).
    func sender(_ original: String, forwarderDomain: String, now: Int64) -> String {
        guard let at = original.utf8.lastIndex(of: UInt8(ascii: "@")) else { return original }
        let domain = String(decoding: original.utf8[original.utf8.index(after: at)...], as: UTF8.self).lowercased()
        if localDomains.contains(domain) { return original }
        return srs.forward(original, forwarderDomain: forwarderDomain, now: now)
    }

    /// For a recipient in one of our domains that looks like an SRS address: where it leads back
    /// to, or why not. `nil` for any other address.
    func reverse(_ address: EmailAddress, now: Int64) -> Result<String, SRSRewriter.ReverseError>? {
        guard SRSRewriter.looksLikeSRS(address.localPart), localDomains.contains(address.normalizedDomain) else { return nil }
        return srs.reverse(address.description, now: now)
    }

    /// The ARC set (storage form, LF) for a forwarded copy whose header section is `header` (wire
    /// form, without the empty line), signed with the first active RSA key of `domain`; `nil` when
    /// sealing is off, the domain has no RSA key, or the chain may not be extended.
    func arcSet(header: DKIMMessage, bodyHash: [UInt8], results: AuthenticationResults, chain: ARCResult.Code,
                domain: String, now: Int64) throws -> [UInt8]? {
        guard sealARC, let rsa = keys.signers(for: domain).first(where: { $0.key.algorithm == .rsaSHA256 }) else { return nil }
        let sealer = ARCSealer(domain: rsa.domain, selector: rsa.selector, key: rsa.key)
        return try sealer.seal(header: header, bodyHash: bodyHash, results: results, chain: chain, time: now).filter { $0 != 0x0D }
    }
}

extension DataLayout {
    /// `srs.secret`: the key of the SRS hashes.
    public var srsSecretFile: String { root + "/srs.secret" }

    /// The SRS secret of this data directory, generated (32 random octets in base64, mode 0600,
    /// fsynced) the first time when `create` is set; `nil` when there is none and `create` is not.
    /// Every node that may receive the bounces must hold the same file.
    public func srsSecret(create: Bool) throws -> String? {
        let path = srsSecretFile
        if access(path, F_OK) == 0 {
            let text = try SecretFile.read(path).split(whereSeparator: \.isWhitespace).first.map(String.init) ?? ""
            guard text.utf8.count >= 16 else { throw SecretFile.Failure(description: "\(path) holds no usable secret (under 16 characters)") }
            return text
        }
        guard create else { return nil }
        let text = Base64.encode(SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) })
        try SecretFile.write(path, text + "\n")
        return text
    }
}
