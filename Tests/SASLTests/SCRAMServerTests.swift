import Foundation
import MailCore
import SASL
import Testing

@Suite struct SCRAMServerTests {
    static let salt = Base64.decode("W22ZaJ0SNY7soEsUEjb6gQ==")!
    static let clientFirst = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
    static let serverNonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
    static let clientFinal = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="

    /// RFC 7677 §3, server side: the same server-first and server-final bytes as the RFC.
    @Test func serverMatchesRFC7677() throws {
        var s = SCRAMServer(serverNonce: Self.serverNonce)
        #expect(try s.receiveClientFirst(Array(Self.clientFirst.utf8)) == "user")
        let first = s.serverFirst(credentials: SCRAMCredentials(password: "pencil", iterations: 4096, salt: Self.salt))
        #expect(String(decoding: first, as: UTF8.self)
                == "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
        let final = try s.receiveClientFinal(Array(Self.clientFinal.utf8))
        #expect(String(decoding: final, as: UTF8.self) == "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
    }

    @Test func wrongPasswordWrongNonceAndTamperedBindingFail() throws {
        func start(_ password: String = "pencil") throws -> SCRAMServer {
            var s = SCRAMServer(serverNonce: Self.serverNonce)
            _ = try s.receiveClientFirst(Array(Self.clientFirst.utf8))
            _ = s.serverFirst(credentials: SCRAMCredentials(password: password, iterations: 4096, salt: Self.salt))
            return s
        }
        var s = try start("not-pencil")
        #expect(throws: SCRAMServerError.invalidProof) { _ = try s.receiveClientFinal(Array(Self.clientFinal.utf8)) }
        s = try start()
        let otherNonce = Self.clientFinal.replacingFirst("k0,p=", with: "k1,p=")
        #expect(throws: SCRAMServerError.nonceMismatch) { _ = try s.receiveClientFinal(Array(otherNonce.utf8)) }
        s = try start()
        let binding = Self.clientFinal.replacingFirst("c=biws", with: "c=eSws")  // "y,,"
        #expect(throws: SCRAMServerError.channelBindingsDontMatch) { _ = try s.receiveClientFinal(Array(binding.utf8)) }
        s = try start()
        #expect(throws: SCRAMServerError.invalidEncoding) { _ = try s.receiveClientFinal(Array("c=biws,r=x".utf8)) }
    }

    @Test func clientFirstGrammar() throws {
        func first(_ text: String) throws(SCRAMServerError) -> String {
            var s = SCRAMServer()
            return try s.receiveClientFirst(Array(text.utf8))
        }
        #expect(try first("y,,n=user,r=abc") == "user")
        #expect(try first("n,a=user,n=user,r=abc") == "user")
        #expect(try first("n,,n=a=3Db=2Cc,r=abc") == "a=b,c")
        #expect(throws: SCRAMServerError.channelBindingNotSupported) { try first("p=tls-exporter,,n=user,r=abc") }
        #expect(throws: SCRAMServerError.invalidAuthorizationIdentity) { try first("n,a=admin,n=user,r=abc") }
        #expect(throws: SCRAMServerError.extensionsNotSupported) { try first("n,,m=ext,n=user,r=abc") }
        #expect(throws: SCRAMServerError.invalidEncoding) { try first("n,,n=a=2Xb,r=abc") }
        #expect(throws: SCRAMServerError.invalidEncoding) { try first("n,,n=user,r=a,b") }
        #expect(throws: SCRAMServerError.invalidEncoding) { try first("n,,n=,r=abc") }
        #expect(throws: SCRAMServerError.invalidEncoding) { try first("x,,n=user,r=abc") }
        #expect(throws: SCRAMServerError.invalidEncoding) { try first("n,,n=user") }
        #expect(throws: SCRAMServerError.invalidEncoding) { try first("n,,n=us\0er,r=abc") }
    }

    /// Our client against our server, with stored credentials round-tripped through their text form.
    @Test func clientAndServerAgree() throws {
        let stored = SCRAMCredentials(password: "correct horse ✓").encoded
        #expect(stored.hasPrefix("{SCRAM-SHA-256}4096,"))
        let credentials = try #require(SCRAMCredentials(encoded: stored))
        var client = SASLSCRAMSHA256(user: "alice@example.test", password: "correct horse ✓")
        var server = SCRAMServer()
        #expect(try server.receiveClientFirst(client.initialResponse()!) == "alice@example.test")
        let final = try client.respond(to: server.serverFirst(credentials: credentials))
        try client.verifySuccess(try server.receiveClientFinal(final))
        #expect(SCRAMCredentials(encoded: "{SCRAM-SHA-256}4096,AA==,AA==,AA==") == nil)
        #expect(SCRAMCredentials(encoded: "$y$j9T$...") == nil)
    }

    /// Unknown users get stable decoy parameters: asking twice shows the same salt, and no password
    /// verifies.
    @Test func decoysAreStableAndUnusable() throws {
        let secret: [UInt8] = Array(repeating: 7, count: 32)
        let a = SCRAMServer.decoyCredentials(for: "nobody@example.test", secret: secret)
        #expect(a == SCRAMServer.decoyCredentials(for: "nobody@example.test", secret: secret))
        #expect(a.salt != SCRAMServer.decoyCredentials(for: "other@example.test", secret: secret).salt)
        #expect(a.salt.count == 16 && a.iterations == SCRAMCredentials.defaultIterations)
        var client = SASLSCRAMSHA256(user: "nobody@example.test", password: "guess")
        var server = SCRAMServer()
        _ = try server.receiveClientFirst(client.initialResponse()!)
        let final = try client.respond(to: server.serverFirst(credentials: a))
        #expect(throws: SCRAMServerError.invalidProof) { _ = try server.receiveClientFinal(final) }
    }
}

extension String {
    fileprivate func replacingFirst(_ a: String, with b: String) -> String {
        guard let r = range(of: a) else { return self }
        return replacingCharacters(in: r, with: b)
    }
}
