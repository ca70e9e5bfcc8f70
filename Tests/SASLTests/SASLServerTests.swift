import Foundation
import MailCore
import SASL
import Testing

/// One event for ``SASLServer``.
enum SASLServerEvent: Sendable, CustomStringConvertible {
    case start(String, [UInt8]?)
    case response([UInt8])
    case cancel
    case passwordAccepted
    case passwordRejected
    case scramCredentials(SCRAMCredentials, userExists: Bool)

    var description: String {
        switch self {
        case .start(let m, let r): "start(\(m), \(r.map { "\($0.count) octets" } ?? "nil"))"
        case .response(let r): "response(\(r.count) octets)"
        case .cancel: "cancel"
        case .passwordAccepted: "passwordAccepted"
        case .passwordRejected: "passwordRejected"
        case .scramCredentials(_, let exists): "scramCredentials(userExists: \(exists))"
        }
    }

    func apply(to machine: inout SASLServer) -> SASLServer.Action {
        switch self {
        case .start(let mechanism, let initial): machine.start(mechanism: mechanism, initialResponse: initial)
        case .response(let bytes): machine.responseReceived(bytes)
        case .cancel: machine.cancelReceived()
        case .passwordAccepted: machine.passwordAccepted()
        case .passwordRejected: machine.passwordRejected()
        case .scramCredentials(let c, let exists): machine.scramCredentialsFound(c, userExists: exists)
        }
    }
}

/// A named script: events in, the actions expected out, in order.
struct SASLServerScript: Sendable, CustomTestStringConvertible {
    var name: String
    var configuration = SASLServer.Configuration()
    var steps: [(SASLServerEvent, SASLServer.Action)]

    var testDescription: String { name }
}

private func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

/// `authzid NUL authcid NUL passwd` (RFC 4616 §2).
private func plain(_ authzid: String, _ user: String, _ password: String) -> [UInt8] {
    bytes(authzid) + [0] + bytes(user) + [0] + bytes(password)
}

/// RFC 7677 §3's example exchange (user "user", password "pencil").
enum RFC7677 {
    static let salt = Base64.decode("W22ZaJ0SNY7soEsUEjb6gQ==")!
    static let serverNonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
    static let clientFirst = bytes("n,,n=user,r=rOprNGfwEbeRWgbNEkqO")
    static let serverFirst = bytes("r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
    static let clientFinal = bytes("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
    static let serverFinal = bytes("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
    static let credentials = SCRAMCredentials(password: "pencil", iterations: 4096, salt: salt)
    static let wrongCredentials = SCRAMCredentials(password: "not pencil", iterations: 4096, salt: salt)
    static let configuration = SASLServer.Configuration(scramServerNonce: serverNonce)
}

private let long = String(repeating: "x", count: 300)

@Suite("SASL server: PLAIN, LOGIN and SCRAM-SHA-256 as event → action tables")
struct SASLServerTests {
    static let plainScripts: [SASLServerScript] = [
        .init(name: "PLAIN with an initial response", steps: [
            (.start("PLAIN", plain("", "alice@example.test", "secret")),
             .verifyPassword(authzid: "", user: "alice@example.test", password: "secret")),
            (.passwordAccepted, .succeed(additionalData: nil)),
        ]),
        .init(name: "PLAIN without an initial response: empty challenge first", steps: [
            (.start("PLAIN", nil), .challenge([])),
            (.response(plain("", "alice", "pass word")), .verifyPassword(authzid: "", user: "alice", password: "pass word")),
            (.passwordAccepted, .succeed(additionalData: nil)),
        ]),
        .init(name: "PLAIN mechanism names are case-insensitive", steps: [
            (.start("plain", plain("", "a@b", "p")), .verifyPassword(authzid: "", user: "a@b", password: "p")),
        ]),
        .init(name: "PLAIN with an authzid naming the user (case-insensitive)", steps: [
            (.start("PLAIN", plain("Alice@Example.test", "alice@example.test", "pw")),
             .verifyPassword(authzid: "Alice@Example.test", user: "alice@example.test", password: "pw")),
        ]),
        .init(name: "PLAIN with another user's authzid", steps: [
            (.start("PLAIN", plain("bob@example.test", "alice@example.test", "pw")), .fail(.authorizationIdentityMismatch)),
        ]),
        .init(name: "PLAIN wrong password", steps: [
            (.start("PLAIN", plain("", "alice", "wrong")), .verifyPassword(authzid: "", user: "alice", password: "wrong")),
            (.passwordRejected, .fail(.invalidCredentials)),
        ]),
        .init(name: "PLAIN without NULs", steps: [(.start("PLAIN", bytes("alice secret")), .fail(.malformed))]),
        .init(name: "PLAIN with one NUL", steps: [(.start("PLAIN", bytes("alice") + [0] + bytes("secret")), .fail(.malformed))]),
        .init(name: "PLAIN empty response", steps: [(.start("PLAIN", []), .fail(.malformed))]),
        .init(name: "PLAIN empty user", steps: [(.start("PLAIN", plain("", "", "pw")), .fail(.malformed))]),
        .init(name: "PLAIN empty password (RFC 4616 passwd = 1*SAFE)", steps: [(.start("PLAIN", plain("", "alice", "")), .fail(.malformed))]),
        .init(name: "PLAIN empty password reaches the verifier when allowed (SMTP)",
              configuration: .init(plainRequiresPassword: false), steps: [
            (.start("PLAIN", plain("", "alice", "")), .verifyPassword(authzid: "", user: "alice", password: "")),
        ]),
        .init(name: "PLAIN a NUL after the second one belongs to the password", steps: [
            (.start("PLAIN", plain("", "alice", "p") + [0] + bytes("q")), .verifyPassword(authzid: "", user: "alice", password: "p\0q")),
        ]),
        .init(name: "PLAIN fields that are not UTF-8", steps: [
            (.start("PLAIN", [0] + [0xFF, 0xFE] + [0] + bytes("pw")), .fail(.malformed)),
        ]),
        .init(name: "PLAIN fields longer than 255 octets are accepted (the line limit is the protocol's)", steps: [
            (.start("PLAIN", plain(long, long, long)), .verifyPassword(authzid: long, user: long, password: long)),
        ]),
        .init(name: "PLAIN sees octets: base64 is the caller's to decode", steps: [
            (.start("PLAIN", bytes(Base64.encode(plain("", "alice", "secret")))), .fail(.malformed)),
        ]),
    ]

    static let loginScripts: [SASLServerScript] = [
        .init(name: "LOGIN in two steps", steps: [
            (.start("LOGIN", nil), .challenge(bytes("Username:"))),
            (.response(bytes("alice@example.test")), .challenge(bytes("Password:"))),
            (.response(bytes("secret")), .verifyPassword(authzid: "", user: "alice@example.test", password: "secret")),
            (.passwordAccepted, .succeed(additionalData: nil)),
        ]),
        .init(name: "LOGIN with the user name as initial response", steps: [
            (.start("login", bytes("alice")), .challenge(bytes("Password:"))),
            (.response(bytes("pw")), .verifyPassword(authzid: "", user: "alice", password: "pw")),
            (.passwordRejected, .fail(.invalidCredentials)),
        ]),
        .init(name: "LOGIN empty user name", steps: [
            (.start("LOGIN", nil), .challenge(bytes("Username:"))),
            (.response([]), .fail(.malformed)),
        ]),
        .init(name: "LOGIN password that is not UTF-8", steps: [
            (.start("LOGIN", bytes("alice")), .challenge(bytes("Password:"))),
            (.response([0xC3]), .fail(.malformed)),
        ]),
        .init(name: "LOGIN empty password goes to the verifier", steps: [
            (.start("LOGIN", bytes("alice")), .challenge(bytes("Password:"))),
            (.response([]), .verifyPassword(authzid: "", user: "alice", password: "")),
        ]),
    ]

    static let cancelAndUnknownScripts: [SASLServerScript] = [
        .init(name: "cancel '*' while PLAIN waits", steps: [(.start("PLAIN", nil), .challenge([])), (.cancel, .fail(.cancelled))]),
        .init(name: "cancel '*' after LOGIN's user name", steps: [
            (.start("LOGIN", nil), .challenge(bytes("Username:"))),
            (.response(bytes("alice")), .challenge(bytes("Password:"))),
            (.cancel, .fail(.cancelled)),
        ]),
        .init(name: "cancel '*' instead of SCRAM's client-final", configuration: RFC7677.configuration, steps: [
            (.start("SCRAM-SHA-256", RFC7677.clientFirst), .lookUpSCRAMCredentials(user: "user")),
            (.scramCredentials(RFC7677.credentials, userExists: true), .challenge(RFC7677.serverFirst)),
            (.cancel, .fail(.cancelled)),
        ]),
        .init(name: "unknown mechanism", steps: [(.start("CRAM-MD5", nil), .fail(.unsupportedMechanism))]),
        .init(name: "client-only mechanism", steps: [(.start("XOAUTH2", bytes("x")), .fail(.unsupportedMechanism))]),
        .init(name: "channel binding is not offered", steps: [(.start("SCRAM-SHA-256-PLUS", nil), .fail(.unsupportedMechanism))]),
    ]

    static let scramScripts: [SASLServerScript] = [
        .init(name: "SCRAM-SHA-256: RFC 7677 §3 byte for byte", configuration: RFC7677.configuration, steps: [
            (.start("SCRAM-SHA-256", RFC7677.clientFirst), .lookUpSCRAMCredentials(user: "user")),
            (.scramCredentials(RFC7677.credentials, userExists: true), .challenge(RFC7677.serverFirst)),
            (.response(RFC7677.clientFinal), .succeed(additionalData: RFC7677.serverFinal)),
        ]),
        .init(name: "SCRAM-SHA-256 without an initial response", configuration: RFC7677.configuration, steps: [
            (.start("scram-sha-256", nil), .challenge([])),
            (.response(RFC7677.clientFirst), .lookUpSCRAMCredentials(user: "user")),
            (.scramCredentials(RFC7677.credentials, userExists: true), .challenge(RFC7677.serverFirst)),
            (.response(RFC7677.clientFinal), .succeed(additionalData: RFC7677.serverFinal)),
        ]),
        .init(name: "SCRAM-SHA-256 wrong password", configuration: RFC7677.configuration, steps: [
            (.start("SCRAM-SHA-256", RFC7677.clientFirst), .lookUpSCRAMCredentials(user: "user")),
            (.scramCredentials(RFC7677.wrongCredentials, userExists: true), .challenge(RFC7677.serverFirst)),
            (.response(RFC7677.clientFinal), .fail(.invalidCredentials)),
        ]),
        .init(name: "SCRAM-SHA-256 unknown user fails even with a proof that verifies", configuration: RFC7677.configuration, steps: [
            (.start("SCRAM-SHA-256", RFC7677.clientFirst), .lookUpSCRAMCredentials(user: "user")),
            (.scramCredentials(RFC7677.credentials, userExists: false), .challenge(RFC7677.serverFirst)),
            (.response(RFC7677.clientFinal), .fail(.invalidCredentials)),
        ]),
        .init(name: "SCRAM-SHA-256 malformed client-first", steps: [
            (.start("SCRAM-SHA-256", bytes("x,,n=user")), .fail(.scram(.invalidEncoding))),
        ]),
        .init(name: "SCRAM-SHA-256 empty initial response", steps: [(.start("SCRAM-SHA-256", []), .fail(.scram(.invalidEncoding)))]),
        .init(name: "SCRAM-SHA-256 channel binding asked for", steps: [
            (.start("SCRAM-SHA-256", bytes("p=tls-exporter,,n=user,r=abc")), .fail(.scram(.channelBindingNotSupported))),
        ]),
        .init(name: "SCRAM-SHA-256 client-final with another nonce", configuration: RFC7677.configuration, steps: [
            (.start("SCRAM-SHA-256", RFC7677.clientFirst), .lookUpSCRAMCredentials(user: "user")),
            (.scramCredentials(RFC7677.credentials, userExists: true), .challenge(RFC7677.serverFirst)),
            (.response(bytes(String(decoding: RFC7677.clientFinal, as: UTF8.self).replacingOccurrences("k0,p=", "k1,p="))),
             .fail(.scram(.nonceMismatch))),
        ]),
    ]

    private func run(_ script: SASLServerScript) {
        var machine = SASLServer(configuration: script.configuration)
        for (i, (event, expected)) in script.steps.enumerated() {
            let action = event.apply(to: &machine)
            #expect(action == expected, "step \(i + 1): \(event)")
        }
    }

    @Test(arguments: plainScripts) func plainExchange(_ script: SASLServerScript) { run(script) }
    @Test(arguments: loginScripts) func loginExchange(_ script: SASLServerScript) { run(script) }
    @Test(arguments: cancelAndUnknownScripts) func cancelAndUnknownExchange(_ script: SASLServerScript) { run(script) }
    @Test(arguments: scramScripts) func scramExchange(_ script: SASLServerScript) { run(script) }

    @Test func mechanismIsKnownOnceStarted() {
        var m = SASLServer()
        #expect(m.mechanism == nil)
        _ = m.start(mechanism: "login", initialResponse: nil)
        #expect(m.mechanism == .login)
        #expect(SASLServer.Mechanism(name: "Scram-Sha-256") == .scramSHA256)
        #expect(SASLServer.Mechanism(name: "CRAM-MD5") == nil)
    }

    /// Our SCRAM client against the machine, with random nonces and salt.
    @Test func scramClientAgainstTheMachine() throws {
        let credentials = SCRAMCredentials(password: "correct horse ✓")
        var client = SASLSCRAMSHA256(user: "alice@example.test", password: "correct horse ✓")
        var server = SASLServer()
        #expect(server.start(mechanism: "SCRAM-SHA-256", initialResponse: client.initialResponse()) == .lookUpSCRAMCredentials(user: "alice@example.test"))
        guard case .challenge(let serverFirst) = server.scramCredentialsFound(credentials, userExists: true) else {
            Issue.record("no server-first")
            return
        }
        guard case .succeed(let serverFinal?) = server.responseReceived(try client.respond(to: serverFirst)) else {
            Issue.record("no success")
            return
        }
        try client.verifySuccess(serverFinal)
    }
}

extension String {
    fileprivate func replacingOccurrences(_ a: String, _ b: String) -> String {
        guard let r = range(of: a) else { return self }
        return replacingCharacters(in: r, with: b)
    }
}
