import Crypto
import CryptoExtras
import Foundation
import MailAuth
import Testing

/// What we sign verifies in dkimpy, and what dkimpy signs verifies in ours (RSA and Ed25519,
/// relaxed and simple); tampered copies fail in both. dkimpy runs as a separate Python process with
/// the key record served by its `dnsfunc` hook. In CI (`CI=true`) a missing dkimpy is a failure.
@Suite struct DKIMPeerTests {
    static let message = "From: Alice Example <alice@example.org>\r\nTo: bob@example.net\r\nSubject: Peer check\r\n"
        + "Date: Thu, 03 Dec 2026 10:00:00 +0000\r\nMessage-ID: <peer-1@example.org>\r\nMIME-Version: 1.0\r\n"
        + "Content-Type: text/plain; charset=utf-8\r\nList-Unsubscribe: <https://example.org/u/1>\r\n"
        + "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n\r\nHello Bob,  \r\n\r\nthe  numbers\tare in.\r\n\r\n\r\n"

    /// Runs python3 with `script` and `arguments`; `nil` when dkimpy is not there (outside CI).
    static func python(_ script: String, _ arguments: [String]) throws -> String? {
        try PythonPeer.run(script, arguments, interpreter: ["/usr/bin/env", "python3"], probe: "import dkim, nacl",
                           missing: "python3 with dkimpy and pynacl is missing (pip install dkimpy pynacl; .ci/run does)")
    }

    static let verifyScript = """
        import sys, dkim
        msg = open(sys.argv[1], 'rb').read()
        records = {sys.argv[2].encode(): sys.argv[3].encode()}
        def dns(name, timeout=5):
            return records.get(name)
        print('pass' if dkim.verify(msg, dnsfunc=dns) else 'fail')
        """

    static let signScript = """
        import sys, dkim, base64
        msg = open(sys.argv[1], 'rb').read()
        key = open(sys.argv[2], 'rb').read()
        algo = sys.argv[3].encode()
        c = sys.argv[4].encode().split(b'/')
        sig = dkim.sign(msg, b'peer', b'example.net', key, canonicalize=(c[0], c[1]), signature_algorithm=algo,
                        include_headers=[b'from', b'to', b'subject', b'date', b'message-id'])
        sys.stdout.buffer.write(base64.b64encode(sig + msg))
        """

    func temporary(_ bytes: [UInt8]) throws -> String {
        let path = NSTemporaryDirectory() + "dkim-peer-\(UUID().uuidString).eml"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test func whatWeSignVerifiesInDkimpy() throws {
        let keys: [DKIMPrivateKey] = [.ed25519(Curve25519.Signing.PrivateKey()), .rsa(try _RSA.Signing.PrivateKey(keySize: .bits2048))]
        for key in keys {
            for c in [DKIMCanonicalization.relaxed, .simple] {
                var signer = DKIMSigner(domain: "example.org", selector: "sel", key: key)
                signer.headerCanonicalization = c
                signer.bodyCanonicalization = c
                let m = DKIMMessage(Array(Self.message.utf8))
                let field = try signer.signatureField(fields: m.fields, bodyHash: m.bodyHash(c).hash, time: Int64(Date().timeIntervalSince1970))
                let good = try temporary(field + Array(Self.message.utf8))
                let bad = try temporary(field + Array(Self.message.replacingOccurrences(of: "numbers", with: "figures").utf8))
                defer { unlink(good); unlink(bad) }
                guard let ok = try Self.python(Self.verifyScript, [good, "sel._domainkey.example.org.", key.keyRecord]) else { return }
                #expect(ok == "pass", "\(key.algorithm) \(c)")
                #expect(try Self.python(Self.verifyScript, [bad, "sel._domainkey.example.org.", key.keyRecord]) == "fail")
            }
        }
    }

    @Test func whatDkimpySignsVerifiesInOurs() throws {
        let ed = Curve25519.Signing.PrivateKey()
        let rsa = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        let cases: [(String, [UInt8], String)] = [
            ("ed25519-sha256", Array(ed.rawRepresentation.base64EncodedString().utf8), DKIMPrivateKey.ed25519(ed).keyRecord),
            ("rsa-sha256", Array(rsa.pemRepresentation.utf8), DKIMPrivateKey.rsa(rsa).keyRecord),
        ]
        let messagePath = try temporary(Array(Self.message.utf8))
        defer { unlink(messagePath) }
        for (algorithm, keyBytes, record) in cases {
            let keyPath = try temporary(keyBytes)
            defer { unlink(keyPath) }
            for c in ["relaxed/relaxed", "simple/simple", "relaxed/simple"] {
                guard let out = try Self.python(Self.signScript, [messagePath, keyPath, algorithm, c]) else { return }
                guard let signed = Data(base64Encoded: out) else { Issue.record("dkimpy printed \(out.prefix(200))"); continue }
                let m = DKIMMessage(Array(signed))
                #expect(m.fields.first.map { sameName($0.name) } == true)
                #expect(DKIMVerifier.verify(m, signatureAt: 0, keyRecord: record, now: Int64(Date().timeIntervalSince1970)) == .pass,
                        "\(algorithm) \(c)")
                let tampered = DKIMMessage(Array(String(decoding: signed, as: UTF8.self).replacingOccurrences(of: "Peer check", with: "Peer checks").utf8))
                #expect(DKIMVerifier.verify(tampered, signatureAt: 0, keyRecord: record, now: 0).keyword == "fail", "\(algorithm) \(c)")
            }
        }
    }

    private func sameName(_ n: String) -> Bool { n.lowercased() == "dkim-signature" }
}
