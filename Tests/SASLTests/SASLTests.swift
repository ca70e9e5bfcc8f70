import MailCore
import SASL
import Testing

@Suite struct SASLTests {
    /// RFC 7677 §3: the SCRAM-SHA-256 example exchange.
    @Test func scramSHA256MatchesRFC7677() throws {
        var m = SASLSCRAMSHA256(user: "user", password: "pencil", nonce: "rOprNGfwEbeRWgbNEkqO")
        #expect(m.initialResponse() == Array("n,,n=user,r=rOprNGfwEbeRWgbNEkqO".utf8))
        let serverFirst = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
        let final = try m.respond(to: Array(serverFirst.utf8))
        #expect(String(decoding: final, as: UTF8.self)
                == "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
        try m.verifySuccess(Array("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=".utf8))
    }

    @Test func scramRejectsAServerThatDoesNotKnowThePassword() throws {
        var m = SASLSCRAMSHA256(user: "user", password: "pencil", nonce: "rOprNGfwEbeRWgbNEkqO")
        _ = m.initialResponse()
        _ = try m.respond(to: Array("r=rOprNGfwEbeRWgbNEkqOXYZ,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096".utf8))
        #expect(throws: SASLError.serverProofMismatch) { try m.verifySuccess(Array("v=AAAA".utf8)) }
        var n = SASLSCRAMSHA256(user: "user", password: "pencil", nonce: "abc")
        _ = n.initialResponse()
        #expect(throws: SASLError.self) { _ = try n.respond(to: Array("r=zzz,s=AAAA,i=4096".utf8)) }  // nonce not ours
        #expect(SASLSCRAMSHA256.escape("a=b,c") == "a=3Db=2Cc")
    }

    @Test func plainLoginXOAuth2() throws {
        var p = SASLPlain(user: "alice", password: "pw")
        #expect(p.initialResponse() == [0] + Array("alice".utf8) + [0] + Array("pw".utf8))
        var l = SASLLogin(user: "alice", password: "pw")
        #expect(l.initialResponse() == nil)
        #expect(try l.respond(to: Array("Username:".utf8)) == Array("alice".utf8))
        #expect(try l.respond(to: Array("Password:".utf8)) == Array("pw".utf8))
        var x = SASLXOAuth2(user: "a@b", accessToken: "tok")
        #expect(x.initialResponse() == Array("user=a@b\u{1}auth=Bearer tok\u{1}\u{1}".utf8))
    }

    @Test func base64RoundTrip() {
        for n in 0..<40 {
            let bytes = (0..<n).map { UInt8(($0 * 37 + 11) & 0xFF) }
            #expect(Base64.decode(Base64.encode(bytes)) == bytes)
        }
        #expect(Base64.decode("AGFsaWNlAHB3") == [0] + Array("alice".utf8) + [0] + Array("pw".utf8))
        #expect(Base64.decode("abc") == nil)
        #expect(Base64.decode("ab=c") == nil)
        #expect(Base64.decode("a b=") == nil)
    }
}
