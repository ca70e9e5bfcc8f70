#if canImport(Glibc)
import Glibc
#endif
import Crypto
import CryptoExtras
import MailAuth
import NIOConcurrencyHelpers
import struct Foundation.Data
import struct Foundation.Date

/// The DKIM keys of the served domains, in `data_dir/dkim/<domain>/`: `<selector>.key` (mode 0600:
/// an RSA key in PEM, an Ed25519 key as its base64 32-octet seed) and `<selector>.state` (one line:
/// algorithm, state, creation time). A key is `pending` when generated (its record is not published
/// yet, so it never signs), `active` once activated (it signs), `retired` after (kept, never used).
public final class DKIMKeyStore: Sendable {
    public enum State: String, Sendable, CaseIterable {
        case pending, active, retired
    }

    /// One key as stored.
    public struct Key: Sendable {
        public var domain: String
        public var selector: String
        public var algorithm: DKIMAlgorithm
        public var state: State
        /// Seconds since 1970.
        public var created: Int64
        public var privateKey: DKIMPrivateKey

        /// The TXT record to publish at ``recordName``.
        public var record: String { privateKey.keyRecord }
        public var recordName: String { "\(selector)._domainkey.\(domain)" }
    }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    public let root: String
    /// The active signers per domain and the directory stamp they were read at.
    private let cache = NIOLockedValueBox<[String: (stamp: [Int], signers: [DKIMSigner])]>([:])

    public init(root: String) { self.root = root }

    private func directory(_ domain: String) -> String { root + "/" + domain.lowercased() }

    // MARK: Generating and changing keys

    /// Generates a key in state `pending`. The selector defaults to `<algorithm>-<yyyymm>` (with a
    /// suffix when taken). - Throws: ``Failure`` when the selector exists or a file cannot be written.
    @discardableResult
    public func generate(domain: String, algorithm: DKIMAlgorithm, selector: String? = nil, now: Date = Date()) throws -> Key {
        let domain = domain.lowercased()
        try makeDirectory(root)
        try makeDirectory(directory(domain))
        let base = selector ?? "\(algorithm == .ed25519SHA256 ? "ed25519" : "rsa")-\(Self.month(now))"
        guard Self.isValidSelector(base) else { throw Failure(description: "invalid selector \(base): letters, digits and '-' only") }
        var chosen = base
        var n = 2
        while exists(domain, chosen) {
            guard selector == nil else { throw Failure(description: "selector \(base) already exists for \(domain)") }
            chosen = "\(base)-\(n)"
            n += 1
        }
        let key: DKIMPrivateKey
        let encoded: String
        switch algorithm {
        case .ed25519SHA256:
            let k = Curve25519.Signing.PrivateKey()
            key = .ed25519(k)
            encoded = k.rawRepresentation.base64EncodedString() + "\n"
        case .rsaSHA256:
            let k = try _RSA.Signing.PrivateKey(keySize: .bits2048)
            key = .rsa(k)
            encoded = k.pemRepresentation + "\n"
        }
        let created = Int64(now.timeIntervalSince1970)
        try write(directory(domain) + "/\(chosen).key", encoded)
        try write(directory(domain) + "/\(chosen).state", "\(algorithm.rawValue) \(State.pending.rawValue) \(created)\n")
        return Key(domain: domain, selector: chosen, algorithm: algorithm, state: .pending, created: created, privateKey: key)
    }

    /// Changes a key's state. - Throws: ``Failure`` when there is no such key.
    public func setState(_ state: State, domain: String, selector: String) throws {
        let domain = domain.lowercased()
        guard let key = try keys(of: domain).first(where: { $0.selector == selector }) else {
            throw Failure(description: "no DKIM key \(selector) for \(domain) (swallow dkim list shows the keys)")
        }
        try write(directory(domain) + "/\(selector).state", "\(key.algorithm.rawValue) \(state.rawValue) \(key.created)\n")
    }

    // MARK: Reading

    /// The domains with keys.
    public func domains() -> [String] {
        (try? names(in: root))?.filter { !$0.hasPrefix(".") }.sorted() ?? []
    }

    /// Every key of `domain`, oldest first.
    public func keys(of domain: String) throws -> [Key] {
        let dir = directory(domain)
        var out: [Key] = []
        for name in try names(in: dir) where name.hasSuffix(".state") {
            let selector = String(name.dropLast(6))
            let state = try read(dir + "/" + name).split(separator: " ")
            guard state.count == 3, let algorithm = DKIMAlgorithm(rawValue: String(state[0])),
                  let s = State(rawValue: String(state[1])), let created = Int64(state[2].trimmingSuffix()) else {
                throw Failure(description: "\(dir)/\(name): not '<algorithm> <state> <created>'")
            }
            let text = try read(dir + "/\(selector).key")
            let key: DKIMPrivateKey
            switch algorithm {
            case .ed25519SHA256:
                guard let seed = Data(base64Encoded: text.trimmingSuffix()),
                      let k = try? Curve25519.Signing.PrivateKey(rawRepresentation: seed) else {
                    throw Failure(description: "\(dir)/\(selector).key: not a base64 Ed25519 key")
                }
                key = .ed25519(k)
            case .rsaSHA256:
                guard let k = try? _RSA.Signing.PrivateKey(unsafePEMRepresentation: text) else {
                    throw Failure(description: "\(dir)/\(selector).key: not an RSA key in PEM")
                }
                key = .rsa(k)
            }
            out.append(Key(domain: domain.lowercased(), selector: selector, algorithm: algorithm, state: s, created: created, privateKey: key))
        }
        return out.sorted { ($0.created, $0.selector) < ($1.created, $1.selector) }
    }

    /// `DKIM-Signature` fields (storage form, LF) for a message Swallow writes itself — a DSN, whole,
    /// in wire form — whose `From:` is `MAILER-DAEMON@<host name>`: signed by the configured domain
    /// the From domain is or belongs to (`mx.example.org` → `d=example.org`, aligned for DMARC), when
    /// that domain has active keys. The server's queue runner and `swallow queue bounce` both use it.
    public func signaturesForGenerated(_ bytes: [UInt8], configuredDomains: [String], now: Int64) -> [UInt8] {
        let message = DKIMMessage(bytes)
        guard let from = Self.fromDomain(message) else { return [] }
        let candidates = [from] + configuredDomains.map { $0.lowercased() }.filter { from.hasSuffix("." + $0) }.sorted { $0.count > $1.count }
        guard let domain = candidates.first(where: { !signers(for: $0).isEmpty }) else { return [] }
        return signatures(message, bodyHash: message.bodyHash(.relaxed).hash, domain: domain, now: now)
    }

    /// `DKIM-Signature` fields (storage form, LF) of `message` by every active key of `domain`, in
    /// ``signers(for:)`` order; a key that cannot sign is handed to `failed` and left out.
    public func signatures(_ message: DKIMMessage, bodyHash: [UInt8], domain: String, now: Int64,
                           failed: (DKIMSigner, any Error) -> Void = { _, _ in }) -> [UInt8] {
        var out: [UInt8] = []
        for signer in signers(for: domain) {
            do {
                out += try signer.signatureField(fields: message.fields, bodyHash: bodyHash, time: now).filter { $0 != 0x0D }
            } catch {
                failed(signer, error)
            }
        }
        return out
    }

    /// The domain of the first `From:` address, lower case.
    static func fromDomain(_ message: DKIMMessage) -> String? {
        InboundAuthentication.fromDomains(message).first
    }

    /// Signers for the active keys of `domain` (Ed25519 first), re-read when the domain's directory
    /// changes (one `stat` per call otherwise).
    public func signers(for domain: String) -> [DKIMSigner] {
        let domain = domain.lowercased()
        guard let stamp = directoryStamp(directory(domain)) else { return [] }
        if let c = cache.withLockedValue({ $0[domain] }), c.stamp == stamp { return c.signers }
        let signers = ((try? keys(of: domain)) ?? []).filter { $0.state == .active }
            .sorted { $0.algorithm == .ed25519SHA256 && $1.algorithm != .ed25519SHA256 }
            .map { DKIMSigner(domain: domain, selector: $0.selector, key: $0.privateKey) }
        cache.withLockedValue { $0[domain] = (stamp, signers) }
        return signers
    }

    // MARK: Files

    private func exists(_ domain: String, _ selector: String) -> Bool {
        access(directory(domain) + "/\(selector).state", F_OK) == 0 || access(directory(domain) + "/\(selector).key", F_OK) == 0
    }

    static func isValidSelector(_ s: String) -> Bool {
        !s.isEmpty && s.count <= 63 && s.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D }
            && !s.hasPrefix("-") && !s.hasSuffix("-")
    }

    static func month(_ d: Date) -> String {
        var t = time_t(d.timeIntervalSince1970)
        var tm = tm()
        gmtime_r(&t, &tm)
        let m = Int(tm.tm_mon) + 1
        return "\(Int(tm.tm_year) + 1900)\(m < 10 ? "0" : "")\(m)"
    }

    private func makeDirectory(_ path: String) throws {
        if mkdir(path, 0o700) != 0 && errno != EEXIST {
            throw Failure(description: "cannot create \(path): \(String(cString: strerror(errno)))")
        }
    }

    private func write(_ path: String, _ text: String) throws {
        do { try SecretFile.write(path, text) } catch { throw Failure(description: "\(error)") }
    }

    private func read(_ path: String) throws -> String {
        do { return try SecretFile.read(path) } catch { throw Failure(description: "\(error)") }
    }

    private func names(in dir: String) throws -> [String] {
        guard let d = opendir(dir) else {
            if errno == ENOENT { return [] }
            throw Failure(description: "cannot read \(dir): \(String(cString: strerror(errno)))")
        }
        defer { closedir(d) }
        var out: [String] = []
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." && !name.hasSuffix(".tmp") { out.append(name) }
        }
        return out
    }
}

extension Substring {
    fileprivate func trimmingSuffix() -> String {
        var s = self
        while let l = s.last, l == "\n" || l == "\r" || l == " " { s = s.dropLast() }
        return String(s)
    }
}

extension String {
    fileprivate func trimmingSuffix() -> String { self[...].trimmingSuffix() }
}
