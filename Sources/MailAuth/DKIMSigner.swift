import Crypto
import CryptoExtras
import Foundation

/// A DKIM private key.
public enum DKIMPrivateKey: Sendable {
    case ed25519(Curve25519.Signing.PrivateKey)
    case rsa(_RSA.Signing.PrivateKey)

    public var algorithm: DKIMAlgorithm {
        switch self {
        case .ed25519: .ed25519SHA256
        case .rsa: .rsaSHA256
        }
    }

    /// The `p=` value of the key record that publishes this key: the raw 32-octet key for Ed25519
    /// (RFC 8463 §4.2), SubjectPublicKeyInfo DER for RSA (RFC 6376 §3.6.1).
    public var publicKeyRecordValue: String {
        switch self {
        case .ed25519(let k): Base64.encode(Array(k.publicKey.rawRepresentation))
        case .rsa(let k): Base64.encode(Array(k.publicKey.derRepresentation))
        }
    }

    /// The whole TXT record to publish at `selector._domainkey.domain`.
    public var keyRecord: String { "v=DKIM1; k=\(algorithm.keyType); p=\(publicKeyRecordValue)" }

    func sign(_ input: [UInt8]) throws -> [UInt8] {
        switch self {
        case .ed25519(let k):
            // RFC 8463 §3: Ed25519 (PureEdDSA) over the SHA-256 hash of the data.
            return Array(try k.signature(for: Data(SHA256.hash(data: input))))
        case .rsa(let k):
            return Array(try k.signature(for: SHA256.hash(data: input), padding: .insecurePKCS1v1_5).rawRepresentation)
        }
    }
}

/// Signs messages for one domain and selector (RFC 6376 §5): relaxed/relaxed by default, never `l=`,
/// `From` (and any field in ``overSigned``) signed once more than it occurs, so that a field added
/// later breaks the signature.
public struct DKIMSigner: Sendable {
    public var domain: String
    public var selector: String
    public var key: DKIMPrivateKey
    public var headerCanonicalization: DKIMCanonicalization = .relaxed
    public var bodyCanonicalization: DKIMCanonicalization = .relaxed
    /// Fields signed when present (RFC 6376 §5.4.1's list, RFC 8058's List-Unsubscribe-Post).
    public var fieldsToSign: [String] = Self.defaultFields
    /// Fields signed one more time than they occur.
    public var overSigned: [String] = ["From"]
    /// `i=`, when it should not be left to its default (`@d`).
    public var identity: String?
    /// `x=`: seconds after `t=` the signature expires.
    public var expiresAfter: Int64?

    public static let defaultFields = ["From", "Reply-To", "Subject", "Date", "To", "Cc", "Message-ID", "In-Reply-To",
                                       "References", "MIME-Version", "Content-Type", "Content-Transfer-Encoding",
                                       "List-Unsubscribe", "List-Unsubscribe-Post", "List-Id", "Sender", "Resent-Date",
                                       "Resent-From", "Resent-To", "Resent-Cc", "Resent-Message-ID"]

    public init(domain: String, selector: String, key: DKIMPrivateKey) {
        self.domain = domain
        self.selector = selector
        self.key = key
    }

    /// The `h=` list for a message with `fields`: each field to sign as often as it occurs, plus
    /// one more for the over-signed ones.
    public func fieldNames(for fields: [DKIMHeaderField]) -> [String] {
        var out: [String] = []
        for name in fieldsToSign {
            let n = fields.filter { sameFieldName($0.name, name) }.count
            let times = n + (overSigned.contains(where: { sameFieldName($0, name) }) ? 1 : 0)
            for _ in 0..<times { out.append(name.lowercased()) }
        }
        return out
    }

    /// The `DKIM-Signature` field (with its CRLF, folded at 78 columns) for a message with header
    /// `fields` and body hash `bodyHash` (from ``DKIMBodyHasher`` with ``bodyCanonicalization``).
    /// - Parameter time: `t=` (seconds since 1970).
    public func signatureField(fields: [DKIMHeaderField], bodyHash: [UInt8], time: Int64) throws -> [UInt8] {
        let names = fieldNames(for: fields)
        var tags: [(String, String)] = [
            ("v", "1"), ("a", key.algorithm.rawValue),
            ("c", "\(headerCanonicalization.rawValue)/\(bodyCanonicalization.rawValue)"),
            ("d", domain), ("s", selector),
        ]
        if let identity { tags.append(("i", identity)) }
        tags.append(("t", String(time)))
        if let expiresAfter { tags.append(("x", String(time + expiresAfter))) }
        tags.append(("h", names.joined(separator: ":")))
        tags.append(("bh", Base64.encode(bodyHash)))
        let unsigned = Array(Self.fold(tags + [("b", "")]).utf8)
        let signature = try self.signature(template: unsigned, signedFields: names, fields: fields)
        return Array(Self.fold(tags + [("b", Base64.encode(signature))]).utf8)
    }

    /// The `b=` value for a given signature field: `template` is the whole field (name, tags with
    /// `b=` empty, CRLF) as it will be sent apart from `b=`'s value; `fields` are the message's. For
    /// callers that lay out their own tags (and for reproducing published examples).
    public func signature(template: [UInt8], signedFields names: [String], fields: [DKIMHeaderField]) throws -> [UInt8] {
        try Self.signature(template: template, name: "DKIM-Signature", signedFields: names, fields: fields,
                           canonicalization: headerCanonicalization, key: key)
    }

    /// DKIM's header hash and signature (RFC 6376 §3.7) for a field named `name` — a
    /// `DKIM-Signature` or an ARC-Message-Signature, which is computed alike.
    static func signature(template: [UInt8], name: String, signedFields names: [String], fields: [DKIMHeaderField],
                          canonicalization: DKIMCanonicalization, key: DKIMPrivateKey) throws -> [UInt8] {
        var input: [UInt8] = []
        for f in selectFields(names, from: fields) { input += f.canonicalized(canonicalization) }
        var own = DKIMHeaderField(name: name, raw: DKIMVerifier.emptyingB(template)).canonicalized(canonicalization)
        if own.suffix(2) == [0x0D, 0x0A] { own.removeLast(2) }
        return try key.sign(input + own)
    }

    /// `DKIM-Signature: t1=v1; t2=v2; …` folded before a tag that would pass 78 columns; a long
    /// value (`b=`, `bh=`, `h=`) is broken where needed (FWS inside a value is ignored).
    static func fold(_ tags: [(String, String)], name: String = "DKIM-Signature") -> String {
        var out = "\(name):"
        var column = out.count
        for (i, (name, value)) in tags.enumerated() {
            let piece = "\(name)=\(value)" + (i == tags.count - 1 ? "" : ";")
            // b= always starts a line: the field signed (b= empty) and the field sent then differ
            // only in b='s value, which is what simple canonicalization needs.
            if name == "b" || column + 1 + piece.count > 78 {
                out += "\r\n\t"
                column = 8
            } else {
                out += " "
                column += 1
            }
            var rest = Substring(piece)
            if name == "h" {
                // FWS may only come around the colons of h= (RFC 6376 §3.5 sig-h-tag): break after one.
                while column + rest.count > 78, let cut = rest.prefix(max(78 - column, 1)).lastIndex(of: ":") {
                    out += rest[...cut] + "\r\n\t"
                    rest = rest[rest.index(after: cut)...]
                    column = 8
                }
            } else if name == "b" || name == "bh" {
                // base64 may be folded anywhere.
                while column + rest.count > 78 {
                    let room = max(78 - column, 16)
                    out += rest.prefix(room) + "\r\n\t"
                    rest = rest.dropFirst(room)
                    column = 8
                }
            }
            out += rest
            column += rest.count
        }
        return out + "\r\n"
    }
}
