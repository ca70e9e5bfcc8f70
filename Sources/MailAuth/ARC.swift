import Foundation

/// The outcome of validating a message's ARC chain (RFC 8617 §5.2), with RFC 8601's `arc` keywords.
public struct ARCResult: Sendable, Hashable {
    public enum Code: String, Sendable, Hashable { case none, pass, fail }

    public var code: Code
    /// The highest instance (`i=`) of the chain; 0 when there is none.
    public var instance: Int
    /// The `d=` of each ARC-Seal, index 0 = instance 1: who handled the message, oldest first.
    public var sealers: [String]
    /// Why it failed, or what passed.
    public var reason: String

    /// The domain that sealed last (the most recent forwarder), when the chain passed.
    public var latestSealer: String? { code == .pass ? sealers.last : nil }
}

/// Validates ARC chains (RFC 8617): the three fields of every instance present once, the seals'
/// `cv=` values consistent, the newest ARC-Message-Signature verifies like a DKIM signature over the
/// header and body, and every ARC-Seal verifies over the ARC sets up to its own. Keys are looked up
/// at `s._domainkey.d` like DKIM keys. A DNS failure makes the result `fail` here (RFC 8617 has no
/// temperror), with the reason saying so.
public enum ARCVerifier {
    /// Instances above this are invalid (RFC 8617 §4.2.1).
    public static let maximumInstances = 50

    struct Instance {
        var seal: Int?
        var messageSignature: Int?
        var results: Int?
    }

    /// The ARC fields of `header` by instance; nil when there are none; a failure reason when the
    /// structure is broken (§5.1.1, §5.2 steps 1–3).
    static func instances(_ header: DKIMMessage) -> Result<[Instance], ARCFailure>? {
        var byInstance: [Int: Instance] = [:]
        var any = false
        for (index, f) in header.fields.enumerated() {
            let name = f.name.lowercased()
            guard name == "arc-seal" || name == "arc-message-signature" || name == "arc-authentication-results" else { continue }
            any = true
            guard let i = instanceNumber(f.value), (1...maximumInstances).contains(i) else {
                return .failure(ARCFailure("\(f.name) without a valid i= (1–\(maximumInstances))"))
            }
            var entry = byInstance[i] ?? Instance()
            switch name {
            case "arc-seal":
                guard entry.seal == nil else { return .failure(ARCFailure("two ARC-Seal fields with i=\(i)")) }
                entry.seal = index
            case "arc-message-signature":
                guard entry.messageSignature == nil else { return .failure(ARCFailure("two ARC-Message-Signature fields with i=\(i)")) }
                entry.messageSignature = index
            default:
                guard entry.results == nil else { return .failure(ARCFailure("two ARC-Authentication-Results fields with i=\(i)")) }
                entry.results = index
            }
            byInstance[i] = entry
        }
        guard any else { return nil }
        let top = byInstance.keys.max() ?? 0
        var out: [Instance] = []
        for i in 1...top {
            guard let e = byInstance[i], e.seal != nil, e.messageSignature != nil, e.results != nil else {
                return .failure(ARCFailure("ARC set \(i) of \(top) is incomplete"))
            }
            out.append(e)
        }
        return .success(out)
    }

    struct ARCFailure: Error { var reason: String; init(_ r: String) { reason = r } }

    /// A value, or the result that ends the check.
    enum Outcome<Value> {
        case ok(Value)
        case stop(DKIMResult)
    }

    /// `i=N` at the start of an ARC-Authentication-Results value, or the `i=` tag of a seal or signature.
    static func instanceNumber(_ value: String) -> Int? {
        if let tags = try? DKIMTagList(parsing: value), let i = tags["i"], let n = Int(i) { return n }
        // ARC-Authentication-Results: "i=N; authserv-id; …" is not a tag list as a whole.
        let head = value.split(separator: ";", maxSplits: 1).first.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) } ?? ""
        guard head.lowercased().hasPrefix("i=") else { return nil }
        return Int(head.dropFirst(2).trimmingCharacters(in: .whitespaces))
    }

    /// The body canonicalization and `l=` of the newest ARC-Message-Signature, to be hashed while the
    /// body streams (``DKIMBodyHashes/init(signatures:more:)``).
    public static func bodyHashRequirement(in header: DKIMMessage) -> (DKIMCanonicalization, Int?)? {
        guard case .success(let sets)? = instances(header), let ams = sets.last?.messageSignature,
              let tags = try? DKIMTagList(parsing: header.fields[ams].value) else { return nil }
        let c = (tags["c"] ?? "simple/simple").lowercased().split(separator: "/", omittingEmptySubsequences: false)
        guard let body = DKIMCanonicalization(rawValue: c.count == 2 ? String(c[1]) : "simple") else { return nil }
        return (body, tags["l"].flatMap { Int($0) })
    }

    /// Validates the chain of `header` (RFC 8617 §5.2).
    public static func validate(_ header: DKIMMessage, bodyHashes: DKIMBodyHashes, resolver: any MailAuthResolver) async -> ARCResult {
        guard let found = instances(header) else { return ARCResult(code: .none, instance: 0, sealers: [], reason: "no ARC sets") }
        let sets: [Instance]
        switch found {
        case .failure(let f): return ARCResult(code: .fail, instance: 0, sealers: [], reason: f.reason)
        case .success(let s): sets = s
        }
        var seals: [DKIMTagList] = []
        for set in sets {
            guard let t = try? DKIMTagList(parsing: header.fields[set.seal!].value) else {
                return ARCResult(code: .fail, instance: sets.count, sealers: [], reason: "malformed ARC-Seal")
            }
            seals.append(t)
        }
        let sealers = seals.map { ($0["d"] ?? "").lowercased() }
        func failed(_ why: String) -> ARCResult { ARCResult(code: .fail, instance: sets.count, sealers: sealers, reason: why) }
        // §5.2 step 2–3: cv=none at instance 1, cv=pass at every later one; a cv=fail anywhere ends it.
        for (n, seal) in seals.enumerated() {
            let cv = seal["cv"]?.lowercased()
            if cv == "fail" { return failed("ARC-Seal i=\(n + 1) says cv=fail") }
            if n == 0 ? cv != "none" : cv != "pass" { return failed("ARC-Seal i=\(n + 1) has cv=\(cv ?? "(none)")") }
        }
        // Step 4: the newest ARC-Message-Signature.
        let amsIndex = sets.last!.messageSignature!
        switch await verifyMessageSignature(header, at: amsIndex, bodyHashes: bodyHashes, resolver: resolver) {
        case .pass: break
        case let other: return failed("ARC-Message-Signature i=\(sets.count): \(other.reason ?? other.keyword)")
        }
        // Step 5–6: every seal, newest first, over the sets up to its own.
        for k in stride(from: sets.count, through: 1, by: -1) {
            let result = await verifySeal(header, sets: sets, instance: k, tags: seals[k - 1], resolver: resolver)
            guard result == .pass else { return failed("ARC-Seal i=\(k): \(result.reason ?? result.keyword)") }
        }
        return ARCResult(code: .pass, instance: sets.count, sealers: sealers,
                         reason: "\(sets.count) ARC set\(sets.count == 1 ? "" : "s") verified, last sealed by \(sealers.last ?? "?")")
    }

    static func key(_ tags: DKIMTagList, resolver: any MailAuthResolver) async -> Outcome<DKIMKeyRecord> {
        guard let d = tags["d"], let s = tags["s"], !d.isEmpty, !s.isEmpty else { return .stop(.permerror("missing d= or s=")) }
        let name = "\(s)._domainkey.\(d.lowercased())"
        do {
            let records = try await resolver.txt(name).records.map { String(decoding: $0, as: UTF8.self) }
            guard let key = records.lazy.compactMap({ try? DKIMKeyRecord(parsing: $0) }).first else {
                return .stop(.permerror("no key record at \(name)"))
            }
            guard !key.publicKey.isEmpty else { return .stop(.permerror("key at \(name) revoked")) }
            return .ok(key)
        } catch {
            return .stop(.temperror("key lookup for \(name): \(error.reason)"))
        }
    }

    /// The key at `s._domainkey.d` and the `a=` algorithm, which must fit its type.
    static func keyAndAlgorithm(_ tags: DKIMTagList, resolver: any MailAuthResolver) async -> Outcome<(DKIMKeyRecord, DKIMAlgorithm)> {
        switch await key(tags, resolver: resolver) {
        case .stop(let r): return .stop(r)
        case .ok(let k):
            switch algorithm(tags, key: k) {
            case .stop(let r): return .stop(r)
            case .ok(let a): return .ok((k, a))
            }
        }
    }

    static func algorithm(_ tags: DKIMTagList, key: DKIMKeyRecord) -> Outcome<DKIMAlgorithm> {
        guard let a = tags["a"].flatMap({ DKIMAlgorithm(rawValue: $0.lowercased()) }) else {
            return .stop(.permerror("unsupported a=\(tags["a"]?.prefix(40) ?? "")"))
        }
        guard key.keyType == a.keyType else { return .stop(.permerror("key type k=\(key.keyType) does not fit a=\(a.rawValue)")) }
        return .ok(a)
    }

    /// The ARC-Message-Signature at `index`: DKIM's algorithm (RFC 8617 §4.1.2) with `i=` an instance.
    static func verifyMessageSignature(_ header: DKIMMessage, at index: Int, bodyHashes: DKIMBodyHashes,
                                       resolver: any MailAuthResolver) async -> DKIMResult {
        let field = header.fields[index]
        guard let tags = try? DKIMTagList(parsing: field.value), let h = tags["h"], let bhText = tags["bh"], let bText = tags["b"],
              let bh = Base64.decode(DKIMTagList.compact(bhText)), let b = Base64.decode(DKIMTagList.compact(bText)) else {
            return .permerror("malformed")
        }
        let names = h.split(separator: ":").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        guard !names.contains(where: { sameFieldName($0, "ARC-Seal") }) else { return .permerror("h= includes ARC-Seal") }
        let c = (tags["c"] ?? "simple/simple").lowercased().split(separator: "/", omittingEmptySubsequences: false)
        guard c.count <= 2, let hc = DKIMCanonicalization(rawValue: String(c[0])),
              let bc = DKIMCanonicalization(rawValue: c.count == 2 ? String(c[1]) : "simple") else { return .permerror("bad c=") }
        let (keyRecord, a): (DKIMKeyRecord, DKIMAlgorithm)
        switch await keyAndAlgorithm(tags, resolver: resolver) {
        case .stop(let r): return r
        case .ok(let found): (keyRecord, a) = found
        }
        guard let (hash, _) = bodyHashes.hash(bc, limit: tags["l"].flatMap { Int($0) }), hash == bh else {
            return .fail("body hash did not verify")
        }
        var input: [UInt8] = []
        for f in selectFields(names, from: header.fields, excluding: index) { input += f.canonicalized(hc) }
        var own = DKIMHeaderField(name: field.name, raw: DKIMVerifier.emptyingB(field.raw)).canonicalized(hc)
        if own.suffix(2) == [0x0D, 0x0A] { own.removeLast(2) }
        input += own
        return DKIMVerifier.check(b, of: input, algorithm: a, key: keyRecord)
    }

    /// ARC-Seal `instance` (RFC 8617 §5.1.2): relaxed canonicalization of AAR, AMS, AS for each set
    /// 1…instance, the seal's own `b=` emptied and its CRLF left off.
    static func verifySeal(_ header: DKIMMessage, sets: [Instance], instance: Int, tags: DKIMTagList,
                           resolver: any MailAuthResolver) async -> DKIMResult {
        guard let bText = tags["b"], let b = Base64.decode(DKIMTagList.compact(bText)) else { return .permerror("malformed") }
        if tags["h"] != nil { return .permerror("an ARC-Seal must not have h=") }
        let (keyRecord, a): (DKIMKeyRecord, DKIMAlgorithm)
        switch await keyAndAlgorithm(tags, resolver: resolver) {
        case .stop(let r): return r
        case .ok(let found): (keyRecord, a) = found
        }
        var input: [UInt8] = []
        for n in 0..<instance {
            let set = sets[n]
            input += header.fields[set.results!].canonicalized(.relaxed)
            input += header.fields[set.messageSignature!].canonicalized(.relaxed)
            let seal = header.fields[set.seal!]
            if n == instance - 1 {
                var own = DKIMHeaderField(name: seal.name, raw: DKIMVerifier.emptyingB(seal.raw)).canonicalized(.relaxed)
                if own.suffix(2) == [0x0D, 0x0A] { own.removeLast(2) }
                input += own
            } else {
                input += seal.canonicalized(.relaxed)
            }
        }
        return DKIMVerifier.check(b, of: input, algorithm: a, key: keyRecord)
    }
}
