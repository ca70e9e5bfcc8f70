/// Adds an ARC set (RFC 8617 §5.1) to a message a forwarder passes on: the
/// ARC-Authentication-Results of its own checks, an ARC-Message-Signature over the header and body
/// (DKIM's algorithm with `i=` as the instance), and an ARC-Seal over every set so far with the
/// chain's validation state `cv=`.
///
/// RFC 8617 defines rsa-sha256 only, and that is what receivers (Gmail, Microsoft) verify: give an
/// RSA key. Relaxed canonicalization throughout; `t=` is the signing time.
public struct ARCSealer: Sendable {
    public var domain: String
    public var selector: String
    public var key: DKIMPrivateKey
    /// Fields the ARC-Message-Signature covers when present (never ARC-* fields, which it must not).
    public var fieldsToSign: [String] = DKIMSigner.defaultFields + ["DKIM-Signature"]

    public init(domain: String, selector: String, key: DKIMPrivateKey) {
        self.domain = domain
        self.selector = selector
        self.key = key
    }

    /// Why no set is added.
    public enum Refusal: Error, Hashable, Sendable, CustomStringConvertible {
        /// The newest seal already says `cv=fail`: the chain is over (§5.1.2).
        case chainEnded
        /// The next instance would pass the 50 RFC 8617 allows.
        case tooManyInstances

        public var description: String {
            switch self {
            case .chainEnded: "the ARC chain already ended with cv=fail"
            case .tooManyInstances: "the ARC chain has \(ARCVerifier.maximumInstances) sets already"
            }
        }
    }

    /// The new set's three fields, each with CRLF, in the order to put them on top of the header:
    /// ARC-Seal, ARC-Message-Signature, ARC-Authentication-Results.
    /// - Parameters:
    ///   - header: the message's header section as it will be passed on (ARC sets so far included).
    ///   - bodyHash: the relaxed SHA-256 body hash (``DKIMBodyHasher`` with `.relaxed`).
    ///   - results: this hop's checks, the `arc` statement (of `chain`) among them.
    ///   - chain: what validating the incoming chain gave (`none` when there was none).
    ///   - time: `t=`, seconds since 1970.
    public func seal(header: DKIMMessage, bodyHash: [UInt8], results: AuthenticationResults, chain: ARCResult.Code,
                     time: Int64) throws -> [UInt8] {
        // The sets so far, by instance; a broken structure counts as a failed chain.
        var previous: [ARCVerifier.Instance] = []
        var highest = 0
        var cv = chain
        switch ARCVerifier.instances(header) {
        case nil:
            cv = .none
        case .success(let sets)?:
            previous = sets
            highest = sets.count
            if let last = sets.last, let tags = try? DKIMTagList(parsing: header.fields[last.seal!].value),
               tags["cv"]?.lowercased() == "fail" {
                throw Refusal.chainEnded
            }
            if cv == .none { cv = .fail }  // sets present but not validated as passing
        case .failure?:
            cv = .fail
            highest = header.fields.compactMap { f -> Int? in
                sameFieldName(f.name, "ARC-Seal") ? ARCVerifier.instanceNumber(f.value) : nil
            }.max() ?? 0
        }
        let instance = highest + 1
        guard instance <= ARCVerifier.maximumInstances else { throw Refusal.tooManyInstances }

        let aar = Array(results.arcField(instance: instance).utf8)

        // ARC-Message-Signature: DKIM over the header and body, i= instead of v=.
        let names = fieldNames(for: header.fields)
        let amsTags: [(String, String)] = [
            ("i", String(instance)), ("a", key.algorithm.rawValue), ("c", "relaxed/relaxed"), ("d", domain), ("s", selector),
            ("t", String(time)), ("h", names.joined(separator: ":")), ("bh", Base64.encode(bodyHash)),
        ]
        let amsName = "ARC-Message-Signature"
        let amsTemplate = Array(DKIMSigner.fold(amsTags + [("b", "")], name: amsName).utf8)
        let amsB = try DKIMSigner.signature(template: amsTemplate, name: amsName, signedFields: names, fields: header.fields,
                                            canonicalization: .relaxed, key: key)
        let ams = Array(DKIMSigner.fold(amsTags + [("b", Base64.encode(amsB))], name: amsName).utf8)

        // ARC-Seal: the sets 1…instance in order (only the new one when the chain failed), own b= empty.
        let asTags: [(String, String)] = [
            ("i", String(instance)), ("a", key.algorithm.rawValue), ("t", String(time)), ("cv", cv.rawValue),
            ("d", domain), ("s", selector),
        ]
        var input: [UInt8] = []
        if cv != .fail {
            for set in previous {
                input += header.fields[set.results!].canonicalized(.relaxed)
                input += header.fields[set.messageSignature!].canonicalized(.relaxed)
                input += header.fields[set.seal!].canonicalized(.relaxed)
            }
        }
        input += DKIMHeaderField(name: "ARC-Authentication-Results", raw: aar).canonicalized(.relaxed)
        input += DKIMHeaderField(name: amsName, raw: ams).canonicalized(.relaxed)
        let asTemplate = Array(DKIMSigner.fold(asTags + [("b", "")], name: "ARC-Seal").utf8)
        var own = DKIMHeaderField(name: "ARC-Seal", raw: asTemplate).canonicalized(.relaxed)
        if own.suffix(2) == [0x0D, 0x0A] { own.removeLast(2) }
        let asB = try key.sign(input + own)
        let seal = Array(DKIMSigner.fold(asTags + [("b", Base64.encode(asB))], name: "ARC-Seal").utf8)
        return seal + ams + aar
    }

    /// The `h=` list: each field of ``fieldsToSign`` as often as it occurs (no over-signing: a
    /// forwarder's signature is not the author's).
    func fieldNames(for fields: [DKIMHeaderField]) -> [String] {
        var out: [String] = []
        for name in fieldsToSign {
            for f in fields where sameFieldName(f.name, name) { out.append(name.lowercased()) }
        }
        return out
    }
}
