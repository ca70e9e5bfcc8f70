import Crypto
import CryptoExtras
import MailCore

/// What a server stores for SCRAM-SHA-256 (RFC 5802 §3, RFC 7677): salt, iteration count, `StoredKey`
/// and `ServerKey` — enough to verify a client and prove itself, never the password.
public struct SCRAMCredentials: Hashable, Sendable {
    /// PBKDF2 iteration count (RFC 7677 asks for at least 4096).
    public var iterations: Int
    /// The salt.
    public var salt: [UInt8]
    /// `H(ClientKey)`.
    public var storedKey: [UInt8]
    /// `HMAC(SaltedPassword, "Server Key")`.
    public var serverKey: [UInt8]

    /// The default iteration count (RFC 7677 §4's minimum, Dovecot's default).
    public static let defaultIterations = 4096

    /// Creates credentials from their parts.
    public init(iterations: Int, salt: [UInt8], storedKey: [UInt8], serverKey: [UInt8]) {
        self.iterations = iterations
        self.salt = salt
        self.storedKey = storedKey
        self.serverKey = serverKey
    }

    /// Derives credentials from a password with a fresh 16-byte random salt (or `salt`, for tests).
    public init(password: String, iterations: Int = SCRAMCredentials.defaultIterations, salt: [UInt8]? = nil) {
        let s = salt ?? (0..<16).map { _ in UInt8.random(in: 0...255) }
        let keys = SCRAMKeys(password: password, salt: s, iterations: iterations)
        self.init(iterations: iterations, salt: s, storedKey: keys.storedKey, serverKey: keys.serverKey)
    }

    /// Dovecot's stored form: `{SCRAM-SHA-256}<iterations>,<salt>,<StoredKey>,<ServerKey>` (base64).
    public var encoded: String {
        "{SCRAM-SHA-256}\(iterations),\(Base64.encode(salt)),\(Base64.encode(storedKey)),\(Base64.encode(serverKey))"
    }

    /// Parses ``encoded``; `nil` when malformed.
    public init?(encoded: String) {
        let prefix = "{SCRAM-SHA-256}"
        guard encoded.hasPrefix(prefix) else { return nil }
        let parts = encoded.dropFirst(prefix.count).split(separator: ",", omittingEmptySubsequences: false)
        guard parts.count == 4, let i = Int(parts[0]), (1...10_000_000).contains(i),
              let salt = Base64.decode(parts[1]), !salt.isEmpty,
              let stored = Base64.decode(parts[2]), stored.count == 32,
              let server = Base64.decode(parts[3]), server.count == 32 else { return nil }
        self.init(iterations: i, salt: salt, storedKey: stored, serverKey: server)
    }
}

/// Why a SCRAM exchange failed on the server side (RFC 5802 §7 `server-error-value` names).
public enum SCRAMServerError: Error, Hashable, Sendable {
    /// The client message does not follow the grammar.
    case invalidEncoding
    /// `p=` channel binding requested; this server offers no `-PLUS` mechanism.
    case channelBindingNotSupported
    /// The `c=` attribute does not repeat the GS2 header.
    case channelBindingsDontMatch
    /// An authorization identity other than the user.
    case invalidAuthorizationIdentity
    /// A mandatory extension (`m=`) we do not know.
    case extensionsNotSupported
    /// The final nonce is not the one the server sent.
    case nonceMismatch
    /// The proof does not verify: wrong password (or unknown user).
    case invalidProof
}

/// The server side of SCRAM-SHA-256 (RFC 5802, RFC 7677) without channel binding, as a pure step
/// machine: ``receiveClientFirst(_:)`` names the user, the caller looks up that user's
/// ``SCRAMCredentials`` (or made-up ones for an unknown user, so the exchange looks the same), then
/// ``serverFirst(credentials:)`` and ``receiveClientFinal(_:)`` finish it.
public struct SCRAMServer: Sendable {
    private let serverNonce: String
    private var gs2Header = ""
    private var clientFirstBare = ""
    private var clientNonce = ""
    private var serverFirstMessage = ""
    private var credentials: SCRAMCredentials?
    /// The user name from the client-first message (unescaped), once received.
    public private(set) var user = ""

    /// `serverNonce` is for tests (RFC 7677 vectors); by default 18 random bytes, base64.
    public init(serverNonce: String? = nil) {
        self.serverNonce = serverNonce ?? Base64.encode((0..<18).map { _ in UInt8.random(in: 0...255) })
    }

    /// Parses `gs2-header client-first-message-bare`; returns the user name to look up.
    public mutating func receiveClientFirst(_ message: [UInt8]) throws(SCRAMServerError) -> String {
        guard let text = String(validating: message, as: UTF8.self), !text.contains("\0") else { throw .invalidEncoding }
        // gs2-cbind-flag "," [authzid] ","
        let fields = text.split(separator: ",", maxSplits: 2, omittingEmptySubsequences: false)
        guard fields.count == 3 else { throw .invalidEncoding }
        switch fields[0] {
        case "n", "y": break  // "y": the client could bind but believes we cannot — true, we offer no -PLUS
        default:
            if fields[0].hasPrefix("p=") { throw .channelBindingNotSupported }
            throw .invalidEncoding
        }
        var authzid: String?
        if !fields[1].isEmpty {
            guard fields[1].hasPrefix("a="), let a = Self.unescape(fields[1].dropFirst(2)) else { throw .invalidEncoding }
            authzid = a
        }
        gs2Header = "\(fields[0]),\(fields[1]),"
        clientFirstBare = String(fields[2])
        let attributes = clientFirstBare.split(separator: ",", omittingEmptySubsequences: false)
        guard attributes.count >= 2 else { throw .invalidEncoding }
        if attributes[0].hasPrefix("m=") { throw .extensionsNotSupported }
        guard attributes[0].hasPrefix("n="), let name = Self.unescape(attributes[0].dropFirst(2)), !name.isEmpty else {
            throw .invalidEncoding
        }
        guard attributes[1].hasPrefix("r="), Self.isValidNonce(attributes[1].dropFirst(2)) else { throw .invalidEncoding }
        for ext in attributes.dropFirst(2) {  // extensions: ALPHA "=" value
            guard ext.count >= 2, let f = ext.utf8.first, (0x41...0x5A).contains(f) || (0x61...0x7A).contains(f),
                  ext.utf8.dropFirst().first == 0x3D else { throw .invalidEncoding }
        }
        if let authzid, authzid != name { throw .invalidAuthorizationIdentity }
        user = name
        clientNonce = String(attributes[1].dropFirst(2))
        return name
    }

    /// The server-first message for these credentials.
    public mutating func serverFirst(credentials c: SCRAMCredentials) -> [UInt8] {
        credentials = c
        serverFirstMessage = "r=\(clientNonce)\(serverNonce),s=\(Base64.encode(c.salt)),i=\(c.iterations)"
        return Array(serverFirstMessage.utf8)
    }

    /// Verifies the client-final message; returns the server-final message (`v=<ServerSignature>`).
    public mutating func receiveClientFinal(_ message: [UInt8]) throws(SCRAMServerError) -> [UInt8] {
        guard let c = credentials else { throw .invalidEncoding }
        guard let text = String(validating: message, as: UTF8.self) else { throw .invalidEncoding }
        // The proof is the last attribute: `... ,p=<base64>`.
        let bytes = Array(text.utf8)
        guard let cut = (0..<max(0, bytes.count - 2)).reversed().first(where: { bytes[$0] == 0x2C && bytes[$0 + 1] == 0x70 && bytes[$0 + 2] == 0x3D }) else {
            throw .invalidEncoding
        }
        let withoutProof = String(decoding: bytes[..<cut], as: UTF8.self)
        guard let proof = Base64.decode(String(decoding: bytes[(cut + 3)...], as: UTF8.self)), proof.count == 32 else {
            throw .invalidEncoding
        }
        let attributes = withoutProof.split(separator: ",", omittingEmptySubsequences: false)
        guard attributes.count >= 2, attributes[0].hasPrefix("c="), attributes[1].hasPrefix("r=") else { throw .invalidEncoding }
        guard let binding = Base64.decode(attributes[0].dropFirst(2)) else { throw .invalidEncoding }
        guard binding == Array(gs2Header.utf8) else { throw .channelBindingsDontMatch }
        guard attributes[1].dropFirst(2) == "\(clientNonce)\(serverNonce)" else { throw .nonceMismatch }
        let authMessage = Array("\(clientFirstBare),\(serverFirstMessage),\(withoutProof)".utf8)
        let clientSignature = Array(HMAC<SHA256>.authenticationCode(for: authMessage, using: SymmetricKey(data: c.storedKey)))
        let clientKey = zip(proof, clientSignature).map { $0 ^ $1 }
        let computed = Array(SHA256.hash(data: clientKey))
        var diff: UInt8 = 0
        for (a, b) in zip(computed, c.storedKey) { diff |= a ^ b }
        guard diff == 0, computed.count == c.storedKey.count else { throw .invalidProof }
        let serverSignature = HMAC<SHA256>.authenticationCode(for: authMessage, using: SymmetricKey(data: c.serverKey))
        return Array("v=\(Base64.encode(Array(serverSignature)))".utf8)
    }

    /// RFC 5802 §5.1 `saslname`: `=2C` → `,`, `=3D` → `=`; any other `=` is invalid.
    static func unescape(_ s: Substring) -> String? {
        var out = ""
        var i = s.startIndex
        while i < s.endIndex {
            if s[i] == "=" {
                let code = s[s.index(after: i)...].prefix(2)
                switch code {
                case "2C": out.append(",")
                case "3D": out.append("=")
                default: return nil
                }
                i = s.index(i, offsetBy: 3)
            } else {
                out.append(s[i])
                i = s.index(after: i)
            }
        }
        return out
    }

    /// `printable` (RFC 5802 §7): `%x21-2B / %x2D-7E`.
    static func isValidNonce(_ s: Substring) -> Bool {
        !s.isEmpty && s.utf8.allSatisfy { (0x21...0x7E).contains($0) && $0 != 0x2C }
    }

    /// Credentials for a user that does not exist: derived from `secret` and the name, so the same
    /// unknown name always gets the same salt (an attacker cannot tell it from a real user by asking
    /// twice) while no password can match.
    public static func decoyCredentials(for user: String, secret: [UInt8]) -> SCRAMCredentials {
        let key = SymmetricKey(data: secret)
        let salt = Array(HMAC<SHA256>.authenticationCode(for: Array("salt:\(user)".utf8), using: key)).prefix(16)
        let stored = Array(HMAC<SHA256>.authenticationCode(for: Array("stored:\(user)".utf8), using: key))
        let server = Array(HMAC<SHA256>.authenticationCode(for: Array("server:\(user)".utf8), using: key))
        return SCRAMCredentials(iterations: SCRAMCredentials.defaultIterations, salt: Array(salt), storedKey: stored, serverKey: server)
    }
}
