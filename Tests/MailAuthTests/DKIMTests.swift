import Crypto
import CryptoExtras
import Foundation
import MailAuth
import Testing

/// DKIM against published vectors: RFC 6376 Appendix A's message signed with RFC 8032 §7.1's Ed25519
/// key (selector brisbane) and with RFC 6376's 1024-bit RSA test key (selector test), simple/simple,
/// as distributed in dkimpy's test data; and the canonicalization examples of RFC 6376 §3.4.5.
@Suite struct DKIMTests {
    static let rfcMessage = """
        From: Joe SixPack <joe@football.example.com>\r
        To: Suzie Q <suzie@shopping.example.net>\r
        Subject: Is dinner ready?\r
        Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)\r
        Message-ID: <20030712040037.46341.5F8J@football.example.com>\r
        \r
        Hi.\r
        \r
        We lost the game.  Are you hungry yet?\r
        \r
        Joe.\r

        """
    static let signatures = """
        DKIM-Signature: v=1; a=ed25519-sha256; c=simple/simple; \r
         d=football.example.com; i=@football.example.com; \r
         q=dns/txt; s=brisbane; t=1518460054; h=from : to : \r
         subject : date : message-id : from : subject : date; \r
         bh=4bLNXImK9drULnmePzZNEBleUanJCX5PIsDIFoH4KTQ=; \r
         b=9/dsDChY0YMTtD5Eyw3wx7x22BlSJP7M5ECbJ7GWrR45nXlTCGb8l0YB\r
         o0wBLR++X5LqmsxXaOYLLJe46l10AQ==\r
        DKIM-Signature: v=1; a=rsa-sha256; c=simple/simple; \r
         d=football.example.com; i=@football.example.com; \r
         q=dns/txt; s=test; t=1527915362; h=from : to : subject : \r
         date : message-id : from : subject : date; \r
         bh=4bLNXImK9drULnmePzZNEBleUanJCX5PIsDIFoH4KTQ=; \r
         b=icKcLSEZYXJ95flvWE8FT6hl5iqd8MC/LEKYH0QjsqYy6MO/4pgVNCZH\r
         l/RAXAuADxE/40Fg7uTlxwwD1hjN2Ple6J//cJfslBdDOq6zTVbne1dqtl\r
         NOat7iamJ1AfRqyG+ja7a2AZsrpUuJ7VA6O+0zRYPqpwMEkEFIzI9i/Xk=\r

        """
    static let ed25519Seed = "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A="
    static let ed25519Record = "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
    static let rsaRecord = "v=DKIM1; g=*; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWRiGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutACDfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3Ip3G+2kryOTIKT+l/K4w3QIDAQAB"
    static let rsaPrivate = """
-----BEGIN RSA PRIVATE KEY-----
MIICXQIBAAKBgQDkHlOQoBTzWRiGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQi
Y/J16JYi0Qvx/byYzCNb3W91y3FutACDfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqM
KrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3Ip3G+2kryOTIKT+l/K4w3QIDAQAB
AoGAH0cxOhFZDgzXWhDhnAJDw5s4roOXN4OhjiXa8W7Y3rhX3FJqmJSPuC8N9vQm
6SVbaLAE4SG5mLMueHlh4KXffEpuLEiNp9Ss3O4YfLiQpbRqE7Tm5SxKjvvQoZZe
zHorimOaChRL2it47iuWxzxSiRMv4c+j70GiWdxXnxe4UoECQQDzJB/0U58W7RZy
6enGVj2kWF732CoWFZWzi1FicudrBFoy63QwcowpoCazKtvZGMNlPWnC7x/6o8Gc
uSe0ga2xAkEA8C7PipPm1/1fTRQvj1o/dDmZp243044ZNyxjg+/OPN0oWCbXIGxy
WvmZbXriOWoSALJTjExEgraHEgnXssuk7QJBALl5ICsYMu6hMxO73gnfNayNgPxd
WFV6Z7ULnKyV7HSVYF0hgYOHjeYe9gaMtiJYoo0zGN+L3AAtNP9huqkWlzECQE1a
licIeVlo1e+qJ6Mgqr0Q7Aa7falZ448ccbSFYEPD6oFxiOl9Y9se9iYHZKKfIcst
o7DUw1/hz2Ck4N5JrgUCQQCyKveNvjzkkd8HjYs0SwM0fPjK16//5qDZ2UiDGnOe
uEzxBDAr518Z8VFbR41in3W4Y3yCDgQlLlcETrS+zYcL
-----END RSA PRIVATE KEY-----
"""

    var signed: DKIMMessage { DKIMMessage(Array((Self.signatures + Self.rfcMessage).utf8)) }

    @Test func publishedSignaturesVerify() {
        let m = signed
        #expect(m.fields.count == 7)
        #expect(DKIMVerifier.verify(m, signatureAt: 0, keyRecord: Self.ed25519Record, now: 1_700_000_000) == .pass)
        #expect(DKIMVerifier.verify(m, signatureAt: 1, keyRecord: Self.rsaRecord, now: 1_700_000_000) == .pass)
        // Keys swapped: the key type does not fit the algorithm.
        #expect(DKIMVerifier.verify(m, signatureAt: 0, keyRecord: Self.rsaRecord, now: 0).keyword == "permerror")
    }

    @Test func tamperedCopiesFail() {
        for (from, to) in [("We lost the game.", "We won the game."), ("Subject: Is dinner ready?", "Subject: Is dinner ready!"),
                           ("Joe.\r\n", "Joe.\r\n\r\nP.S.\r\n")] {
            let text = (Self.signatures + Self.rfcMessage).replacingOccurrences(of: from, with: to)
            let m = DKIMMessage(Array(text.utf8))
            #expect(DKIMVerifier.verify(m, signatureAt: 0, keyRecord: Self.ed25519Record, now: 0).keyword == "fail", "\(to)")
            #expect(DKIMVerifier.verify(m, signatureAt: 1, keyRecord: Self.rsaRecord, now: 0).keyword == "fail", "\(to)")
        }
        // A From field added on top: From is over-signed (listed twice for one field), so it fails.
        let added = DKIMMessage(Array((Self.signatures + "From: mallory@evil.example\r\n" + Self.rfcMessage).utf8))
        #expect(DKIMVerifier.verify(added, signatureAt: 0, keyRecord: Self.ed25519Record, now: 0).keyword == "fail")
        // Trailing empty lines are not part of a simple body: still valid.
        let padded = DKIMMessage(Array((Self.signatures + Self.rfcMessage + "\r\n\r\n").utf8))
        #expect(DKIMVerifier.verify(padded, signatureAt: 0, keyRecord: Self.ed25519Record, now: 0) == .pass)
    }

    @Test func ourSignerReproducesThePublishedSignatures() throws {
        let m = signed
        let names = ["from", "to", "subject", "date", "message-id", "from", "subject", "date"]
        let ed = DKIMPrivateKey.ed25519(try Curve25519.Signing.PrivateKey(rawRepresentation: Data(base64Encoded: Self.ed25519Seed)!))
        #expect(ed.publicKeyRecordValue == "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=")
        var signer = DKIMSigner(domain: "football.example.com", selector: "brisbane", key: ed)
        signer.headerCanonicalization = .simple
        signer.bodyCanonicalization = .simple
        let body = Array(m.fields.dropFirst(2))
        #expect(m.bodyHash(.simple).hash == Array(Data(base64Encoded: "4bLNXImK9drULnmePzZNEBleUanJCX5PIsDIFoH4KTQ=")!))
        let b = try signer.signature(template: m.fields[0].raw, signedFields: names, fields: body)
        #expect(Data(b).base64EncodedString() == "9/dsDChY0YMTtD5Eyw3wx7x22BlSJP7M5ECbJ7GWrR45nXlTCGb8l0YBo0wBLR++X5LqmsxXaOYLLJe46l10AQ==")
        let rsa = DKIMPrivateKey.rsa(try _RSA.Signing.PrivateKey(unsafePEMRepresentation: Self.rsaPrivate))
        var rsaSigner = DKIMSigner(domain: "football.example.com", selector: "test", key: rsa)
        rsaSigner.headerCanonicalization = .simple
        rsaSigner.bodyCanonicalization = .simple
        let rb = try rsaSigner.signature(template: m.fields[1].raw, signedFields: names, fields: body)
        #expect(Data(rb).base64EncodedString() == "icKcLSEZYXJ95flvWE8FT6hl5iqd8MC/LEKYH0QjsqYy6MO/4pgVNCZHl/RAXAuADxE/40Fg7uTlxwwD1hjN2Ple6J//cJfslBdDOq6zTVbne1dqtlNOat7iamJ1AfRqyG+ja7a2AZsrpUuJ7VA6O+0zRYPqpwMEkEFIzI9i/Xk=")
    }

    @Test func signAndVerifyEveryCanonicalization() throws {
        let keys: [DKIMPrivateKey] = [.ed25519(Curve25519.Signing.PrivateKey()), .rsa(try _RSA.Signing.PrivateKey(keySize: .bits2048))]
        let text = "From: A <a@example.org>\r\nTo: b@example.net\r\nSubject:  folded\r\n\tsubject  \r\nList-Unsubscribe: <https://example.org/u>\r\n\r\nbody  with   spaces \r\n\r\n\r\n"
        for key in keys {
            for hc in [DKIMCanonicalization.simple, .relaxed] {
                for bc in [DKIMCanonicalization.simple, .relaxed] {
                    var signer = DKIMSigner(domain: "example.org", selector: "s1", key: key)
                    signer.headerCanonicalization = hc
                    signer.bodyCanonicalization = bc
                    let m = DKIMMessage(Array(text.utf8))
                    let field = try signer.signatureField(fields: m.fields, bodyHash: m.bodyHash(bc).hash, time: 1_800_000_000)
                    let header = String(decoding: field, as: UTF8.self)
                    let parsed = try DKIMSignature(parsing: DKIMMessage(field + [0x0D, 0x0A]).fields[0].value)
                    #expect(parsed.signedFields == ["from", "from", "subject", "to", "list-unsubscribe"], "\(header)")
                    #expect(!header.contains("l="))
                    #expect(header.split(separator: "\r\n").allSatisfy { $0.count <= 78 }, "\(header)")
                    let signed = DKIMMessage(field + Array(text.utf8))
                    #expect(DKIMVerifier.verify(signed, signatureAt: 0, keyRecord: key.keyRecord, now: 1_800_000_000) == .pass, "\(hc)/\(bc)")
                }
            }
        }
    }

    @Test func relaxedCanonicalizationExample() {
        // RFC 6376 §3.4.5.
        let a = DKIMHeaderField(name: "A", raw: Array("A: X\r\n".utf8))
        let b = DKIMHeaderField(name: "B", raw: Array("B : Y\t\r\n\tZ  \r\n".utf8))
        #expect(a.canonicalized(.relaxed) + b.canonicalized(.relaxed) == Array("a:X\r\nb:Y Z\r\n".utf8))
        #expect(b.canonicalized(.simple) == b.raw)
        let body = Array(" C \r\nD \t E\r\n\r\n\r\n".utf8)
        var relaxed = DKIMBodyHasher(.relaxed)
        relaxed.update(body)
        #expect(relaxed.finalize() == Array(SHA256.hash(data: Array(" C\r\nD E\r\n".utf8))))
        var simple = DKIMBodyHasher(.simple)
        simple.update(body)
        #expect(simple.finalize() == Array(SHA256.hash(data: Array(" C \r\nD \t E\r\n".utf8))))
        // Empty bodies: CRLF (simple), nothing (relaxed).
        #expect(DKIMBodyHasher(.simple).finalize() == Array(SHA256.hash(data: [0x0D, 0x0A])))
        #expect(DKIMBodyHasher(.relaxed).finalize() == Array(SHA256.hash(data: [UInt8]())))
        // A last line without CRLF gets one; bare LF counts as a line end.
        var noEnd = DKIMBodyHasher(.relaxed)
        noEnd.update(Array("a  b\nc ".utf8))
        #expect(noEnd.finalize() == Array(SHA256.hash(data: Array("a b\r\nc\r\n".utf8))))
    }

    @Test func bodyHashIsTheSameInAnyPieces() {
        var text = ""
        for i in 0..<300 { text += String(repeating: i % 7 == 0 ? " \t" : "x", count: i % 50) + (i % 11 == 0 ? "\r\n\r\n" : "\r\n") }
        text += String(repeating: "y", count: 9000) + "  \r\n\r\n"
        let bytes = Array(text.utf8)
        for c in [DKIMCanonicalization.simple, .relaxed] {
            var whole = DKIMBodyHasher(c)
            whole.update(bytes)
            for step in [1, 2, 3, 7, 64, 4095, 4097] {
                var pieces = DKIMBodyHasher(c)
                var i = 0
                while i < bytes.count {
                    pieces.update(bytes[i..<min(i + step, bytes.count)])
                    i += step
                }
                #expect(pieces.finalize() == whole.finalize(), "\(c) in pieces of \(step)")
            }
        }
    }

    @Test func bodyLengthLimitedSignaturesAreNotCountedAsCoveringTheMessage() throws {
        let key = DKIMPrivateKey.ed25519(Curve25519.Signing.PrivateKey())
        let original = "From: a@example.org\r\n\r\nhello\r\n"
        let m = DKIMMessage(Array(original.utf8))
        var h = DKIMBodyHasher(.relaxed, limit: 7)
        h.update(Array("hello\r\n".utf8))
        // A signature made by someone else with l=7, then text appended.
        let signer = DKIMSigner(domain: "example.org", selector: "s", key: key)
        let bh = Data(h.finalize()).base64EncodedString()
        let template = "DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed; d=example.org; s=s; t=1; l=7; h=from:from; bh=\(bh); b=\r\n"
        let b = try signer.signature(template: Array(template.utf8), signedFields: ["from", "from"], fields: m.fields)
        let withB = template.replacingOccurrences(of: "b=\r\n", with: "b=" + Data(b).base64EncodedString() + "\r\n")
        let exact = DKIMMessage(Array((withB + original).utf8))
        #expect(DKIMVerifier.verify(exact, signatureAt: 0, keyRecord: key.keyRecord, now: 2) == .pass, "\(withB)")
        let appended = DKIMMessage(Array((withB + original + "click here\r\n").utf8))
        #expect(DKIMVerifier.verify(appended, signatureAt: 0, keyRecord: key.keyRecord, now: 2).keyword == "neutral")
    }

    @Test func malformedSignaturesAndKeysArePermErrors() {
        let base = "v=1; a=ed25519-sha256; d=example.org; s=s; h=from; bh=AAAA; b=AAAA"
        #expect((try? DKIMSignature(parsing: base)) != nil)
        let bad: [String] = [
            base.replacingOccurrences(of: "v=1", with: "v=2"),
            base.replacingOccurrences(of: "ed25519-sha256", with: "rsa-sha1"),
            base.replacingOccurrences(of: "h=from", with: "h=to"),
            base.replacingOccurrences(of: "d=example.org", with: "d=example.org; d=example.net"),
            base + "; i=joe@other.example",
            base + "; l=-1",
            base + "; c=fancy/simple",
            base.replacingOccurrences(of: "bh=AAAA", with: "bh=!!!"),
            base + "; 1x=y",
            base + "; noequals",
            base.replacingOccurrences(of: "h=from", with: "h=from:list-\r\n\tunsubscribe"),
            "v=1; a=ed25519-sha256; d=example.org; s=s; h=from; b=AAAA",
        ]
        for s in bad { #expect(throws: DKIMError.self, "\(s)") { try DKIMSignature(parsing: s) } }
        #expect(throws: DKIMError.self) { try DKIMKeyRecord(parsing: "v=DKIM2; p=AAAA") }
        #expect(throws: DKIMError.self) { try DKIMKeyRecord(parsing: "k=rsa; v=DKIM1; p=AAAA") }
        #expect(throws: DKIMError.self) { try DKIMKeyRecord(parsing: "v=DKIM1; k=rsa") }
        #expect((try? DKIMKeyRecord(parsing: "v=DKIM1; p="))?.publicKey == [])
        // Revoked key, key restricted to other services, t=s with a subdomain i=.
        let key = DKIMPrivateKey.ed25519(Curve25519.Signing.PrivateKey())
        let signer = DKIMSigner(domain: "example.org", selector: "s", key: key)
        let text = "From: a@example.org\r\n\r\nx\r\n"
        let m = DKIMMessage(Array(text.utf8))
        let field = try! signer.signatureField(fields: m.fields, bodyHash: m.bodyHash(.relaxed).hash, time: 1)
        let signed = DKIMMessage(field + Array(text.utf8))
        #expect(DKIMVerifier.verify(signed, signatureAt: 0, keyRecord: "v=DKIM1; k=ed25519; p=", now: 2) == .permerror("key revoked"))
        #expect(DKIMVerifier.verify(signed, signatureAt: 0, keyRecord: key.keyRecord + "; s=other", now: 2).keyword == "permerror")
        #expect(DKIMVerifier.verify(signed, signatureAt: 0, keyRecord: key.keyRecord + "; h=sha1", now: 2).keyword == "permerror")
        #expect(DKIMVerifier.verify(signed, signatureAt: 0, keyRecord: key.keyRecord, now: 2) == .pass)
    }
}
