import Crypto
import CryptoExtras
import MailCore

/// A client-side SASL mechanism, driven step by step (RFC 4422): ``initialResponse()`` first, then
/// ``respond(to:)`` for each server challenge. Values are raw bytes; the protocol adapter does the
/// base64 of RFC 4954 / RFC 5034.
public protocol SASLClientMechanism: Sendable {
    /// The mechanism name (`PLAIN`, `LOGIN`, `XOAUTH2`, `SCRAM-SHA-256`).
    var name: String { get }
    /// The initial response sent with the AUTH command, if the mechanism has one.
    mutating func initialResponse() -> [UInt8]?
    /// The answer to a server challenge; throws when the challenge is invalid or the server's proof
    /// does not verify.
    mutating func respond(to challenge: [UInt8]) throws(SASLError) -> [UInt8]
    /// Called when the server reports success with optional final data (SCRAM's `v=`); throws if the
    /// server could not prove it knows the password.
    mutating func verifySuccess(_ data: [UInt8]?) throws(SASLError)
}

/// SASL failures.
public enum SASLError: Error, Hashable, Sendable, CustomStringConvertible {
    case unexpectedChallenge
    case malformedChallenge(String)
    case serverProofMismatch
    case serverError(String)

    public var description: String {
        switch self {
        case .unexpectedChallenge: "the server sent an unexpected challenge"
        case .malformedChallenge(let s): "malformed server challenge: \(s)"
        case .serverProofMismatch: "the server's SCRAM signature does not verify (it does not know the password)"
        case .serverError(let s): "the server reported: \(s)"
        }
    }
}

/// `PLAIN` (RFC 4616): `[authzid] NUL authcid NUL password` in the initial response.
public struct SASLPlain: SASLClientMechanism {
    let user: String
    let password: String
    public var name: String { "PLAIN" }
    public init(user: String, password: String) {
        self.user = user
        self.password = password
    }
    public mutating func initialResponse() -> [UInt8]? { [0] + Array(user.utf8) + [0] + Array(password.utf8) }
    public mutating func respond(to challenge: [UInt8]) throws(SASLError) -> [UInt8] {
        guard challenge.isEmpty else { throw .unexpectedChallenge }
        return initialResponse()!
    }
    public mutating func verifySuccess(_ data: [UInt8]?) throws(SASLError) {}
}

/// `LOGIN` (draft-murchison-sasl-login): the user name, then the password, each as a challenge answer.
public struct SASLLogin: SASLClientMechanism {
    let user: String
    let password: String
    var step = 0
    public var name: String { "LOGIN" }
    public init(user: String, password: String) {
        self.user = user
        self.password = password
    }
    public mutating func initialResponse() -> [UInt8]? { nil }
    public mutating func respond(to challenge: [UInt8]) throws(SASLError) -> [UInt8] {
        step += 1
        switch step {
        case 1: return Array(user.utf8)
        case 2: return Array(password.utf8)
        default: throw .unexpectedChallenge
        }
    }
    public mutating func verifySuccess(_ data: [UInt8]?) throws(SASLError) {}
}

/// `XOAUTH2` (Google/Microsoft): `user=… ^A auth=Bearer … ^A ^A`. An error challenge is answered with
/// an empty response, after which the server fails the exchange.
public struct SASLXOAuth2: SASLClientMechanism {
    let user: String
    let token: String
    public var name: String { "XOAUTH2" }
    public init(user: String, accessToken: String) {
        self.user = user
        self.token = accessToken
    }
    public mutating func initialResponse() -> [UInt8]? { Array("user=\(user)\u{1}auth=Bearer \(token)\u{1}\u{1}".utf8) }
    public mutating func respond(to challenge: [UInt8]) throws(SASLError) -> [UInt8] { [] }
    public mutating func verifySuccess(_ data: [UInt8]?) throws(SASLError) {}
}

/// `SCRAM-SHA-256` without channel binding (RFC 5802, RFC 7677).
public struct SASLSCRAMSHA256: SASLClientMechanism {
    let user: String
    let password: String
    let clientNonce: String
    var clientFirstBare = ""
    var expectedServerSignature: [UInt8]?
    public var name: String { "SCRAM-SHA-256" }

    /// `nonce` is for tests (RFC 7677 vectors); by default 24 random bytes, base64.
    public init(user: String, password: String, nonce: String? = nil) {
        self.user = user
        self.password = password
        self.clientNonce = nonce ?? Base64.encode((0..<24).map { _ in UInt8.random(in: 0...255) })
    }

    /// RFC 5802 §5.1: `=` → `=3D`, `,` → `=2C` in the user name.
    public static func escape(_ s: String) -> String {
        var out = ""
        for c in s {
            switch c {
            case "=": out += "=3D"
            case ",": out += "=2C"
            default: out.append(c)
            }
        }
        return out
    }

    public mutating func initialResponse() -> [UInt8]? {
        clientFirstBare = "n=\(Self.escape(user)),r=\(clientNonce)"
        return Array(("n,," + clientFirstBare).utf8)
    }

    public mutating func respond(to challenge: [UInt8]) throws(SASLError) -> [UInt8] {
        guard expectedServerSignature == nil else { throw .unexpectedChallenge }
        guard let serverFirst = String(validating: challenge, as: UTF8.self) else { throw .malformedChallenge("not UTF-8") }
        var fields: [Character: String] = [:]
        for part in serverFirst.split(separator: ",") {
            guard part.count >= 2, part.dropFirst().first == "=" else { continue }
            fields[part.first!] = String(part.dropFirst(2))
        }
        if let e = fields["e"] { throw .serverError(e) }
        guard let nonce = fields["r"], nonce.hasPrefix(clientNonce), nonce.count > clientNonce.count else {
            throw .malformedChallenge("nonce does not extend ours")
        }
        guard let saltText = fields["s"], let salt = Base64.decode(saltText) else { throw .malformedChallenge("bad salt") }
        guard let iterText = fields["i"], let iterations = Int(iterText), (1...10_000_000).contains(iterations) else {
            throw .malformedChallenge("bad iteration count")
        }
        let keys = SCRAMKeys(password: password, salt: salt, iterations: iterations)
        let finalWithoutProof = "c=biws,r=\(nonce)"
        let authMessage = Array("\(clientFirstBare),\(serverFirst),\(finalWithoutProof)".utf8)
        let signature = Array(HMAC<SHA256>.authenticationCode(for: authMessage, using: SymmetricKey(data: keys.storedKey)))
        let proof = zip(keys.clientKey, signature).map { $0 ^ $1 }
        expectedServerSignature = Array(HMAC<SHA256>.authenticationCode(for: authMessage, using: SymmetricKey(data: keys.serverKey)))
        return Array("\(finalWithoutProof),p=\(Base64.encode(proof))".utf8)
    }

    public mutating func verifySuccess(_ data: [UInt8]?) throws(SASLError) {
        guard let expected = expectedServerSignature else { throw .serverProofMismatch }
        guard let data, let text = String(validating: data, as: UTF8.self) else { throw .serverProofMismatch }
        if text.hasPrefix("e=") { throw .serverError(String(text.dropFirst(2))) }
        guard text.hasPrefix("v="), let v = Base64.decode(text.dropFirst(2)), v == expected else { throw .serverProofMismatch }
    }
}

/// The keys derived from a password for SCRAM-SHA-256 (RFC 5802 §3). Servers store `storedKey` and
/// `serverKey` with the salt and iteration count, never the password.
public struct SCRAMKeys: Hashable, Sendable {
    /// `HMAC(SaltedPassword, "Client Key")`.
    public let clientKey: [UInt8]
    /// `H(ClientKey)`.
    public let storedKey: [UInt8]
    /// `HMAC(SaltedPassword, "Server Key")`.
    public let serverKey: [UInt8]

    /// Derives the keys (PBKDF2-HMAC-SHA-256).
    public init(password: String, salt: [UInt8], iterations: Int) {
        let salted = (try? KDF.Insecure.PBKDF2.deriveKey(from: Array(password.utf8), salt: salt, using: .sha256,
                                                         outputByteCount: 32, unsafeUncheckedRounds: iterations))
            ?? SymmetricKey(data: [UInt8](repeating: 0, count: 32))
        let client = Array(HMAC<SHA256>.authenticationCode(for: Array("Client Key".utf8), using: salted))
        clientKey = client
        storedKey = Array(SHA256.hash(data: client))
        serverKey = Array(HMAC<SHA256>.authenticationCode(for: Array("Server Key".utf8), using: salted))
    }
}
