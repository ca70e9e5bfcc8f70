import Crypto
import CryptoExtras
import Foundation
@testable import MailAuth
import Testing

/// TXT records in memory (NXDOMAIN for other names).
private struct KeyZone: MailAuthResolver {
    var txt: [String: String]
    func txt(_ name: String) async throws(MailAuthDNSError) -> MailAuthLookup<[UInt8]> {
        txt[name].map { .records([Array($0.utf8)]) } ?? .nxdomain
    }
    func ipv4(_ name: String) async throws(MailAuthDNSError) -> MailAuthLookup<[UInt8]> { .nxdomain }
    func ipv6(_ name: String) async throws(MailAuthDNSError) -> MailAuthLookup<[UInt8]> { .nxdomain }
    func mx(_ name: String) async throws(MailAuthDNSError) -> MailAuthLookup<String> { .nxdomain }
    func ptr(_ name: String) async throws(MailAuthDNSError) -> MailAuthLookup<String> { .nxdomain }
}

/// ARC chains (RFC 8617) sealed by dkimpy (`dkim.arc_sign`, two hops) validate in ours; tampering
/// with the body, with an earlier hop's ARC-Authentication-Results, or removing a field breaks them.
/// In CI (`CI=true`) a missing dkimpy is a failure (``DKIMPeerTests/python(_:_:)``).
@Suite struct ARCTests {
    static let sealScript = """
        import sys, dkim, base64
        msg = open(sys.argv[1], 'rb').read()
        k1 = open(sys.argv[2], 'rb').read()
        k2 = open(sys.argv[3], 'rb').read()
        m0 = b"Authentication-Results: hop1.example; spf=pass smtp.mailfrom=alice@example.org\\r\\n" + msg
        m1 = b"".join(dkim.arc_sign(m0, b"s1", b"hop1.example", k1, b"hop1.example")) + m0
        m1 = b"Authentication-Results: hop2.example; arc=pass\\r\\n" + m1
        m2 = b"".join(dkim.arc_sign(m1, b"s2", b"hop2.example", k2, b"hop2.example")) + m1
        sys.stdout.buffer.write(base64.b64encode(m2))
        """

    fileprivate func validate(_ bytes: [UInt8], _ zone: KeyZone) async -> ARCResult {
        let message = DKIMMessage(bytes)
        let header = DKIMMessage(Array(bytes[..<message.bodyStart]))
        var hashes = DKIMBodyHashes(signatures: [], more: ARCVerifier.bodyHashRequirement(in: header).map { [$0] } ?? [])
        hashes.update(Array(bytes[message.bodyStart...]))
        return await ARCVerifier.validate(header, bodyHashes: hashes, resolver: zone)
    }

    @Test func aTwoHopChainSealedByDkimpyValidates() async throws {
        let k1 = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        let k2 = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        let dir = NSTemporaryDirectory() + "arc-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data(DKIMPeerTests.message.utf8).write(to: URL(fileURLWithPath: dir + "/m.eml"))
        try Data(k1.pemRepresentation.utf8).write(to: URL(fileURLWithPath: dir + "/k1.pem"))
        try Data(k2.pemRepresentation.utf8).write(to: URL(fileURLWithPath: dir + "/k2.pem"))
        guard let out = try DKIMPeerTests.python(Self.sealScript, [dir + "/m.eml", dir + "/k1.pem", dir + "/k2.pem"]) else { return }
        guard let sealed = Data(base64Encoded: out).map({ Array($0) }) else {
            Issue.record("dkimpy printed \(out.prefix(300))")
            return
        }
        let zone = KeyZone(txt: ["s1._domainkey.hop1.example": DKIMPrivateKey.rsa(k1).keyRecord,
                                 "s2._domainkey.hop2.example": DKIMPrivateKey.rsa(k2).keyRecord])
        let good = await validate(sealed, zone)
        #expect(good.code == .pass, "\(good.reason)")
        #expect(good.instance == 2)
        #expect(good.sealers == ["hop1.example", "hop2.example"])
        #expect(good.latestSealer == "hop2.example")

        let text = String(decoding: sealed, as: UTF8.self)
        let body = await validate(Array(text.replacingOccurrences(of: "numbers", with: "figures").utf8), zone)
        #expect(body.code == .fail)
        #expect(body.reason.contains("ARC-Message-Signature i=2"), "\(body.reason)")

        // An earlier hop's results rewritten: its seal, and every later one, no longer verify.
        // (The address is only in Authentication-Results fields, which no message signature covers.)
        let aar = text.replacingOccurrences(of: "smtp.mailfrom=alice@example.org", with: "smtp.mailfrom=mallory@example.org")
        #expect(aar != text)
        let rewritten = await validate(Array(aar.utf8), zone)
        #expect(rewritten.code == .fail)
        #expect(rewritten.reason.contains("ARC-Seal"), "\(rewritten.reason)")

        // A key nobody publishes.
        let unknown = await validate(sealed, KeyZone(txt: ["s2._domainkey.hop2.example": DKIMPrivateKey.rsa(k2).keyRecord]))
        #expect(unknown.code == .fail)
        #expect(unknown.reason.contains("no key record at s1._domainkey.hop1.example"), "\(unknown.reason)")
    }

    @Test func brokenStructuresFailAndNoARCIsNone() async {
        let none = await validate(Array(DKIMPeerTests.message.utf8), KeyZone(txt: [:]))
        #expect(none.code == .none)
        let base = "ARC-Seal: i=1; a=rsa-sha256; cv=none; d=x.example; s=s; b=AAAA\r\n"
            + "ARC-Message-Signature: i=1; a=rsa-sha256; c=relaxed/relaxed; d=x.example; s=s; h=from; bh=AAAA; b=AAAA\r\n"
            + "ARC-Authentication-Results: i=1; x.example; spf=pass\r\n"
        for (broken, why) in [
            (base.replacingOccurrences(of: "ARC-Authentication-Results: i=1; x.example; spf=pass\r\n", with: ""), "incomplete"),
            (base + "ARC-Seal: i=1; a=rsa-sha256; cv=none; d=x.example; s=s; b=AAAA\r\n", "two ARC-Seal"),
            (base.replacingOccurrences(of: "ARC-Seal: i=1", with: "ARC-Seal: i=51"), "valid i="),
            (base.replacingOccurrences(of: "cv=none", with: "cv=pass"), "cv=pass"),
            (base.replacingOccurrences(of: "i=1", with: "i=2"), "set 1 of 2 is incomplete"),
        ] {
            let r = await validate(Array((broken + DKIMPeerTests.message).utf8), KeyZone(txt: [:]))
            #expect(r.code == .fail, "\(why)")
            #expect(r.reason.contains(why), "\(r.reason) should say \(why)")
        }
    }

    static let verifyScript = """
        import sys, dkim
        msg = open(sys.argv[1], 'rb').read()
        records = {sys.argv[i].encode(): sys.argv[i + 1].encode() for i in range(2, len(sys.argv), 2)}
        def dns(name, timeout=5):
            return records.get(name)
        cv, results, comment = dkim.arc_verify(msg, dnsfunc=dns)
        print(cv.decode(), comment)
        """

    /// What a forwarder's checks found, as the sealer records them.
    static func results(_ host: String, arc: String?) -> AuthenticationResults {
        var list: [AuthenticationResults.Result] = [
            .init(method: "dkim", result: "pass", properties: [.init(ptype: "header", property: "d", value: "example.org")]),
            .init(method: "spf", result: "pass", properties: [.init(ptype: "smtp", property: "mailfrom", value: "alice@example.org")]),
        ]
        if let arc { list.append(.init(method: "arc", result: arc)) }
        return AuthenticationResults(authservID: host, results: list)
    }

    /// `bytes` with an ARC set of `sealer` on top.
    static func sealed(_ bytes: [UInt8], _ sealer: ARCSealer, chain: ARCResult.Code) throws -> [UInt8] {
        let message = DKIMMessage(bytes)
        let header = DKIMMessage(Array(bytes[..<message.bodyStart]))
        let set = try sealer.seal(header: header, bodyHash: message.bodyHash(.relaxed).hash,
                                  results: results(sealer.domain, arc: chain == .none ? nil : chain.rawValue), chain: chain,
                                  time: 1_796_472_000)
        return set + bytes
    }

    /// Two hops sealed by us validate in ours and in dkimpy (`arc_verify`); dkimpy sealing on top of
    /// ours validates too; a broken chain is sealed with cv=fail and then not extended.
    @Test func whatWeSealValidatesHereAndInDkimpy() async throws {
        let k1 = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        let k2 = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        let zone = KeyZone(txt: ["arc._domainkey.fwd.example": DKIMPrivateKey.rsa(k1).keyRecord,
                                 "arc._domainkey.list.example": DKIMPrivateKey.rsa(k2).keyRecord])
        let s1 = ARCSealer(domain: "fwd.example", selector: "arc", key: .rsa(k1))
        let s2 = ARCSealer(domain: "list.example", selector: "arc", key: .rsa(k2))
        let original = Array(("DKIM-Signature: v=1; a=rsa-sha256; d=example.org; s=x; h=from; bh=AAAA; b=AAAA\r\n" + DKIMPeerTests.message).utf8)

        let one = try Self.sealed(original, s1, chain: .none)
        let first = await validate(one, zone)
        #expect(first.code == .pass, "\(first.reason)")
        #expect(first.sealers == ["fwd.example"])
        let text = String(decoding: one, as: UTF8.self)
        #expect(text.hasPrefix("ARC-Seal: i=1; a=rsa-sha256; t=1796472000; cv=none; d=fwd.example; s=arc;"), "\(text.prefix(200))")
        #expect(text.contains("ARC-Authentication-Results: i=1; fwd.example;"))
        let ams = try #require(DKIMMessage(one).fields.first { $0.name == "ARC-Message-Signature" })
        #expect(try DKIMTagList(parsing: ams.value)["h"]?.filter { !$0.isWhitespace }
                == "from:subject:date:to:message-id:mime-version:content-type:list-unsubscribe:list-unsubscribe-post:dkim-signature")

        let two = try Self.sealed(one, s2, chain: first.code)
        let second = await validate(two, zone)
        #expect(second.code == .pass, "\(second.reason)")
        #expect(second.sealers == ["fwd.example", "list.example"])

        let dir = NSTemporaryDirectory() + "arc-seal-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let keys = ["arc._domainkey.fwd.example.", DKIMPrivateKey.rsa(k1).keyRecord, "arc._domainkey.list.example.", DKIMPrivateKey.rsa(k2).keyRecord]
        for (name, bytes) in [("one", one), ("two", two)] {
            try Data(bytes).write(to: URL(fileURLWithPath: "\(dir)/\(name).eml"))
            guard let verdict = try DKIMPeerTests.python(Self.verifyScript, ["\(dir)/\(name).eml"] + keys) else { return }
            #expect(verdict.hasPrefix("pass"), "dkimpy on \(name): \(verdict)")
        }

        // dkimpy as the next hop after ours: it seals with cv=pass, and we validate its chain.
        try Data(k2.pemRepresentation.utf8).write(to: URL(fileURLWithPath: dir + "/k2.pem"))
        let next = """
            import sys, dkim
            m = open(sys.argv[1], 'rb').read()
            m = b"Authentication-Results: list.example; arc=pass\\r\\n" + m
            sys.stdout.buffer.write(b"".join(dkim.arc_sign(m, b"arc", b"list.example", open(sys.argv[2], 'rb').read(), b"list.example")) + m)
            """
        if let out = try DKIMPeerTests.python(next, [dir + "/one.eml", dir + "/k2.pem"]) {
            let theirs = await validate(Array((out + "\r\n").utf8), zone)
            #expect(theirs.code == .pass, "\(theirs.reason)")
            #expect(theirs.sealers == ["fwd.example", "list.example"])
        }

        // The body changed after our seal: the next hop finds the chain failed, seals cv=fail over
        // its own set only; nobody may extend it after that.
        let tampered = Array(String(decoding: one, as: UTF8.self).replacingOccurrences(of: "numbers", with: "figures").utf8)
        let broken = await validate(tampered, zone)
        #expect(broken.code == .fail)
        let failed = try Self.sealed(tampered, s2, chain: broken.code)
        #expect(String(decoding: failed, as: UTF8.self).contains("cv=fail"))
        #expect(throws: ARCSealer.Refusal.chainEnded) { try Self.sealed(failed, s1, chain: .fail) }
    }
}

