import Crypto
import CryptoExtras
import Foundation

/// The result of checking one DKIM signature (RFC 8601 §2.7.1 names).
public enum DKIMResult: Sendable, Hashable {
    case pass
    /// The signature or body hash does not match, or the key cannot be used with it.
    case fail(String)
    /// The signature or key record is malformed, or the key was revoked.
    case permerror(String)
    /// The key could not be looked up now (DNS trouble).
    case temperror(String)
    /// The signature verified but does not cover the message as a whole (`l=` shorter than the body).
    case neutral(String)

    /// The reason text of a result other than `pass`.
    public var reason: String? {
        switch self {
        case .pass: nil
        case .fail(let s), .permerror(let s), .temperror(let s), .neutral(let s): s
        }
    }

    /// The RFC 8601 result keyword.
    public var keyword: String {
        switch self {
        case .pass: "pass"
        case .fail: "fail"
        case .permerror: "permerror"
        case .temperror: "temperror"
        case .neutral: "neutral"
        }
    }
}

/// Checks DKIM signatures against key records (the caller looks the records up).
/// - SeeAlso: RFC 6376 §6, RFC 8301, RFC 8463
public enum DKIMVerifier {
    /// RSA keys must have at least this many bits (RFC 8301 §3.2), and at most 4096 here.
    public static let minimumRSABits = 1024
    public static let maximumRSABits = 4096

    /// Checks the signature in field `index` of `message` with `keyRecord` (the TXT record's text).
    /// - Parameter now: seconds since 1970, for `x=`.
    public static func verify(_ message: DKIMMessage, signatureAt index: Int, keyRecord: String, now: Int64) -> DKIMResult {
        verify(message, signatureAt: index, keyRecord: keyRecord, now: now) { c, limit in
            message.bodyHash(c, limit: limit)
        }
    }

    /// Checks the signature in field `index` of `header` (a header section; its body is not read)
    /// against `keyRecord`, with the body hashes computed as the body streamed by.
    public static func verify(_ header: DKIMMessage, signatureAt index: Int, keyRecord: String, now: Int64,
                              bodyHashes: DKIMBodyHashes) -> DKIMResult {
        verify(header, signatureAt: index, keyRecord: keyRecord, now: now) { c, limit in
            bodyHashes.hash(c, limit: limit) ?? ([], 0)
        }
    }

    static func verify(_ message: DKIMMessage, signatureAt index: Int, keyRecord: String, now: Int64,
                       bodyHash hashOfBody: (DKIMCanonicalization, Int?) -> (hash: [UInt8], length: Int)) -> DKIMResult {
        let field = message.fields[index]
        let signature: DKIMSignature
        do { signature = try DKIMSignature(parsing: field.value) } catch { return .permerror(reason(error)) }
        if let x = signature.expiration, x < now { return .permerror("signature expired") }
        let key: DKIMKeyRecord
        do { key = try DKIMKeyRecord(parsing: keyRecord) } catch { return .permerror(reason(error)) }
        guard !key.publicKey.isEmpty else { return .permerror("key revoked") }
        guard key.keyType == signature.algorithm.keyType else { return .permerror("key type k=\(key.keyType) does not fit a=\(signature.algorithm.rawValue)") }
        if let h = key.hashAlgorithms, !h.contains("sha256") { return .permerror("key record h= excludes sha256") }
        guard key.allowsEmail else { return .permerror("key record s= excludes email") }
        if key.strictIdentity {
            let iDomain = signature.identity.split(separator: "@").last.map { $0.lowercased() } ?? ""
            guard iDomain == signature.domain else { return .permerror("t=s: i= must be in d= exactly") }
        }
        // The body.
        let (bodyHash, length) = hashOfBody(signature.bodyCanonicalization, signature.bodyLength)
        if let l = signature.bodyLength, l > length { return .permerror("l= is longer than the body") }
        guard bodyHash == signature.bodyHash else { return .fail("body hash did not verify") }
        // The header: the fields h= names, then this signature field with b= emptied.
        var input: [UInt8] = []
        for f in selectFields(signature.signedFields, from: message.fields, excluding: index) {
            input += f.canonicalized(signature.headerCanonicalization)
        }
        var own = DKIMHeaderField(name: field.name, raw: emptyingB(field.raw)).canonicalized(signature.headerCanonicalization)
        if own.suffix(2) == [0x0D, 0x0A] { own.removeLast(2) }
        input += own
        let checked = check(signature.signature, of: input, algorithm: signature.algorithm, key: key)
        guard checked == .pass else { return checked }
        if let l = signature.bodyLength, l < length { return .neutral("l=\(l) covers only part of the body") }
        return .pass
    }

    /// Whether `signature` signs the SHA-256 hash of `input` with `key` (RSA 1024–4096 bits, PKCS#1
    /// v1.5; or Ed25519 over the hash, RFC 8463 §3): `.pass`, `.fail`, or `.permerror` for an unusable key.
    static func check(_ signature: [UInt8], of input: [UInt8], algorithm: DKIMAlgorithm, key: DKIMKeyRecord) -> DKIMResult {
        let valid: Bool
        switch algorithm {
        case .ed25519SHA256:
            guard let k = try? Curve25519.Signing.PublicKey(rawRepresentation: key.publicKey) else { return .permerror("bad Ed25519 key") }
            valid = k.isValidSignature(Data(signature), for: Data(SHA256.hash(data: input)))
        case .rsaSHA256:
            guard let k = try? _RSA.Signing.PublicKey(unsafeDERRepresentation: key.publicKey) else { return .permerror("bad RSA key") }
            guard k.keySizeInBits >= minimumRSABits, k.keySizeInBits <= maximumRSABits else {
                return .permerror("RSA key of \(k.keySizeInBits) bits")
            }
            valid = k.isValidSignature(_RSA.Signing.RSASignature(rawRepresentation: signature),
                                       for: SHA256.hash(data: input), padding: .insecurePKCS1v1_5)
        }
        return valid ? .pass : .fail("signature did not verify")
    }

    static func reason(_ e: DKIMError) -> String {
        switch e {
        case .malformed(let why): why
        }
    }

    /// The field with the value of its `b=` tag removed (everything else, folding included, kept).
    /// - SeeAlso: RFC 6376 §3.7
    static func emptyingB(_ raw: [UInt8]) -> [UInt8] {
        guard let colon = raw.firstIndex(of: UInt8(ascii: ":")) else { return raw }
        var i = colon + 1
        var atTagStart = true
        while i < raw.count {
            let c = raw[i]
            if c == UInt8(ascii: ";") { atTagStart = true; i += 1; continue }
            if atTagStart, c == UInt8(ascii: "b") {
                // Whitespace may sit between the name and "=".
                var j = i + 1
                while j < raw.count, DKIMTagList.isWhitespace(raw[j]) { j += 1 }
                if j < raw.count, raw[j] == UInt8(ascii: "=") {
                    var end = j + 1
                    while end < raw.count, raw[end] != UInt8(ascii: ";") { end += 1 }
                    // Keep the trailing CRLF of the field if b= is last.
                    var keep = end
                    if end == raw.count { while keep > j + 1, raw[keep - 1] == 0x0A || raw[keep - 1] == 0x0D { keep -= 1 } }
                    return Array(raw[...j]) + Array(raw[keep...])
                }
            }
            if !DKIMTagList.isWhitespace(c) { atTagStart = false }
            i += 1
        }
        return raw
    }
}
