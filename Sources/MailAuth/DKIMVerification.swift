/// The body hashes a message's DKIM signatures ask for — one per distinct body canonicalization and
/// `l=` — computed in one pass as the body streams by (RFC 6376 §3.7), so a verifier keeps no copy
/// of the body and a 100 MB message costs one pass per distinct pair (at most ``maximumHashers``).
public struct DKIMBodyHashes: Sendable {
    /// At most this many distinct (canonicalization, `l=`) pairs are hashed; signatures asking for
    /// more are checked against no hash (and fail).
    public static let maximumHashers = 4

    private var hashers: [DKIMBodyHasher] = []

    /// Hashers for these signatures, and for `more` (canonicalization, `l=`) pairs (an ARC message
    /// signature's, ``ARCVerifier/bodyHashRequirement(in:)``).
    public init(signatures: [DKIMSignature], more: [(DKIMCanonicalization, Int?)] = []) {
        for (c, l) in signatures.map({ ($0.bodyCanonicalization, $0.bodyLength) }) + more
        where !hashers.contains(where: { $0.canonicalization == c && $0.limit == l }) {
            guard hashers.count < Self.maximumHashers else { break }
            hashers.append(DKIMBodyHasher(c, limit: l))
        }
    }

    /// Whether any signature needs a body hash.
    public var isEmpty: Bool { hashers.isEmpty }

    /// Adds body octets (after the header's empty line).
    public mutating func update(bufferPointer: UnsafeRawBufferPointer) {
        for i in hashers.indices { hashers[i].update(bufferPointer: bufferPointer) }
    }

    /// Adds body octets.
    public mutating func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update(bufferPointer: $0) }
    }

    /// The hash and canonical length for `c` and `limit`, once the body is complete.
    public func hash(_ c: DKIMCanonicalization, limit: Int?) -> (hash: [UInt8], length: Int)? {
        guard let h = hashers.first(where: { $0.canonicalization == c && $0.limit == limit }) else { return nil }
        return (h.finalize(), h.finalizedLength())
    }
}

/// One signature's check, with what Authentication-Results reports about it (RFC 8601 §2.7.1,
/// RFC 6008 for `header.b`).
public struct DKIMCheck: Sendable, Hashable {
    public var result: DKIMResult
    /// `d=`, `s=`, `a=` and `i=`; nil when the signature did not parse that far.
    public var domain: String?
    public var selector: String?
    public var algorithm: String?
    public var identity: String?
    /// The signature (`b=`) in base64; Authentication-Results reports a prefix of it as `header.b`
    /// (RFC 6008, ``AuthenticationResults/signatureReferences(_:)``).
    public var signature: String?
}

extension DKIMVerifier {
    /// At most this many `DKIM-Signature` fields of a message are checked (each costs a DNS lookup
    /// and a public-key operation); later ones are ignored.
    public static let maximumSignatures = 8

    /// The `DKIM-Signature` fields of `header`, top first: their index in `header.fields` and the
    /// parsed signature (or why it did not parse), at most ``maximumSignatures``.
    public static func signatures(in header: DKIMMessage) -> [(index: Int, signature: Result<DKIMSignature, DKIMError>)] {
        var out: [(Int, Result<DKIMSignature, DKIMError>)] = []
        for (i, f) in header.fields.enumerated() where sameFieldName(f.name, "DKIM-Signature") {
            guard out.count < maximumSignatures else { break }
            do { out.append((i, .success(try DKIMSignature(parsing: f.value)))) } catch { out.append((i, .failure(error))) }
        }
        return out
    }

    /// Checks every signature of `header` with its key looked up at `selector._domainkey.domain`
    /// (RFC 6376 §3.6.2.1): no key record is `permerror`, a DNS failure `temperror` (§6.1.2).
    /// `bodyHashes` must have been made for ``signatures(in:)`` and fed the whole body.
    public static func verifyAll(_ header: DKIMMessage, bodyHashes: DKIMBodyHashes, resolver: any MailAuthResolver,
                                 now: Int64) async -> [DKIMCheck] {
        var checks: [DKIMCheck] = []
        for (index, parsed) in signatures(in: header) {
            guard case .success(let s) = parsed else {
                if case .failure(let e) = parsed { checks.append(DKIMCheck(result: .permerror(reason(e)))) }
                continue
            }
            var check = DKIMCheck(result: .pass, domain: s.domain, selector: s.selector, algorithm: s.algorithm.rawValue,
                                  identity: s.identity, signature: Base64.encode(s.signature))
            let name = "\(s.selector)._domainkey.\(s.domain)"
            do {
                let records = try await resolver.txt(name).records.map { String(decoding: $0, as: UTF8.self) }
                if let record = records.first(where: { (try? DKIMKeyRecord(parsing: $0)) != nil }) ?? records.first {
                    check.result = verify(header, signatureAt: index, keyRecord: record, now: now, bodyHashes: bodyHashes)
                } else {
                    check.result = .permerror("no key record at \(name)")
                }
            } catch {
                check.result = .temperror("key lookup for \(name): \(error.reason)")
            }
            checks.append(check)
        }
        return checks
    }
}

extension DKIMCheck {
    init(result: DKIMResult) {
        self.result = result
    }
}
