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
}
