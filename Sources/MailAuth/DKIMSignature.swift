import Foundation

/// `a=`: the signing algorithm. - SeeAlso: RFC 6376 §3.3, RFC 8463 (ed25519-sha256), RFC 8301 (no sha1)
public enum DKIMAlgorithm: String, Sendable, Hashable {
    case rsaSHA256 = "rsa-sha256"
    case ed25519SHA256 = "ed25519-sha256"

    /// The key type (`k=`) the algorithm needs.
    public var keyType: String { self == .rsaSHA256 ? "rsa" : "ed25519" }
}

/// A parsed `DKIM-Signature` field.
/// - SeeAlso: RFC 6376 §3.5
public struct DKIMSignature: Sendable, Hashable {
    public var tags: DKIMTagList
    public var algorithm: DKIMAlgorithm
    /// `d=`, lower-cased.
    public var domain: String
    public var selector: String
    /// `h=`, as listed.
    public var signedFields: [String]
    public var headerCanonicalization: DKIMCanonicalization
    public var bodyCanonicalization: DKIMCanonicalization
    public var bodyHash: [UInt8]
    public var signature: [UInt8]
    /// `i=` (defaults to `@d`).
    public var identity: String
    /// `l=`.
    public var bodyLength: Int?
    /// `t=` and `x=`, seconds since 1970.
    public var timestamp: Int64?
    public var expiration: Int64?

    /// Parses the value of a `DKIM-Signature` field and checks what RFC 6376 §6.1.1 requires.
    /// - Throws: ``DKIMError/malformed(_:)`` (a `permerror`).
    public init(parsing value: String) throws(DKIMError) {
        let tags = try DKIMTagList(parsing: value)
        self.tags = tags
        for required in ["v", "a", "b", "bh", "d", "h", "s"] where tags[required] == nil {
            throw .malformed("missing \(required)=")
        }
        guard tags["v"] == "1" else { throw .malformed("v= is not 1") }
        guard let a = tags["a"].flatMap({ DKIMAlgorithm(rawValue: $0.lowercased()) }) else {
            // rsa-sha1 is no longer valid for signing or verifying (RFC 8301 §3.1).
            throw .malformed("unsupported algorithm a=\(tags["a"]!.prefix(40))")
        }
        algorithm = a
        domain = tags["d"]!.lowercased()
        selector = tags["s"]!
        guard !domain.isEmpty, !selector.isEmpty else { throw .malformed("empty d= or s=") }
        signedFields = tags["h"]!.split(separator: ":").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        guard signedFields.contains(where: { sameFieldName($0, "From") }) else { throw .malformed("h= does not include From") }
        // hdr-name = field-name: printable ASCII but ":" (RFC 5322 §3.6.8); FWS only around the colons.
        guard signedFields.allSatisfy({ !$0.isEmpty && $0.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: ":") } }) else {
            throw .malformed("invalid field name in h=")
        }
        let c = (tags["c"] ?? "simple/simple").lowercased().split(separator: "/", omittingEmptySubsequences: false)
        guard c.count <= 2, let hc = DKIMCanonicalization(rawValue: String(c[0])),
              let bc = DKIMCanonicalization(rawValue: c.count == 2 ? String(c[1]) : "simple") else {
            throw .malformed("unknown canonicalization c=\(tags["c"]!.prefix(40))")
        }
        headerCanonicalization = hc
        bodyCanonicalization = bc
        guard let bh = Base64.decode(DKIMTagList.compact(tags["bh"]!)), !bh.isEmpty else { throw .malformed("bh= is not base64") }
        guard let b = Base64.decode(DKIMTagList.compact(tags["b"]!)), !b.isEmpty else { throw .malformed("b= is not base64") }
        bodyHash = bh
        signature = b
        identity = tags["i"] ?? "@\(domain)"
        // i='s domain must be d= or a subdomain of it (RFC 6376 §3.5).
        let iDomain = identity.split(separator: "@", maxSplits: 1, omittingEmptySubsequences: false).last.map { $0.lowercased() } ?? ""
        guard identity.contains("@"), iDomain == domain || iDomain.hasSuffix("." + domain) else {
            throw .malformed("i= is not in d=\(domain)")
        }
        if let l = tags["l"] {
            guard let n = Int(l), n >= 0 else { throw .malformed("l= is not a number") }
            bodyLength = n
        }
        if let t = tags["t"] {
            guard let n = Int64(t) else { throw .malformed("t= is not a number") }
            timestamp = n
        }
        if let x = tags["x"] {
            guard let n = Int64(x) else { throw .malformed("x= is not a number") }
            expiration = n
            if let t = timestamp, n < t { throw .malformed("x= is before t=") }
        }
        if let q = tags["q"], !q.split(separator: ":").contains(where: { $0.lowercased().hasPrefix("dns/txt") }) {
            throw .malformed("unsupported query method q=\(q.prefix(40))")
        }
    }
}

/// A DKIM key record (the TXT record at `selector._domainkey.domain`).
/// - SeeAlso: RFC 6376 §3.6.1, RFC 8463 §4
public struct DKIMKeyRecord: Sendable, Hashable {
    public var tags: DKIMTagList
    /// `k=` (`rsa` when absent).
    public var keyType: String
    /// `p=` decoded; empty = the key was revoked.
    public var publicKey: [UInt8]
    /// `h=`: acceptable hash algorithms (`nil` = any).
    public var hashAlgorithms: [String]?
    /// `s=` includes `email` or `*`.
    public var allowsEmail: Bool
    /// `t=s`: the `i=` domain must be exactly `d=`.
    public var strictIdentity: Bool
    /// `t=y`: the domain is testing DKIM.
    public var testing: Bool

    public init(parsing text: String) throws(DKIMError) {
        let tags = try DKIMTagList(parsing: text)
        self.tags = tags
        if let v = tags["v"], v != "DKIM1" { throw .malformed("key record v= is not DKIM1") }
        if tags.tags.first?.name != "v", tags["v"] != nil { throw .malformed("key record v= is not first") }
        guard let p = tags["p"] else { throw .malformed("key record without p=") }
        let compact = DKIMTagList.compact(p)
        if compact.isEmpty {
            publicKey = []
        } else {
            guard let key = Base64.decode(compact) else { throw .malformed("key record p= is not base64") }
            publicKey = key
        }
        keyType = (tags["k"] ?? "rsa").lowercased()
        hashAlgorithms = tags["h"].map { $0.split(separator: ":").map { $0.trimmingCharacters(in: .whitespaces).lowercased() } }
        let services = (tags["s"] ?? "*").split(separator: ":").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        allowsEmail = services.contains("*") || services.contains("email")
        let flags = (tags["t"] ?? "").split(separator: ":").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        strictIdentity = flags.contains("s")
        testing = flags.contains("y")
    }
}

/// Base64 without line breaks (DKIM values are compacted first).
enum Base64 {
    static func decode(_ text: String) -> [UInt8]? {
        Data(base64Encoded: text).map { Array($0) }
    }

    static func encode(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString()
    }
}
