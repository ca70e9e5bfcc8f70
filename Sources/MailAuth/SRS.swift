import Crypto
import Foundation

/// The Sender Rewriting Scheme (Shevek's "guarded" scheme, as `libsrs2`, `Mail::SRS` and Python's
/// `SRS` package implement it): a forwarder rewrites the envelope sender of mail it passes on into
/// an address of its own domain, so the next hop's SPF check sees the forwarder, and a bounce to that
/// address can be led back — but only for addresses the forwarder really made (an HMAC) and not
/// forever (a day stamp).
///
/// - `user@origin.example` forwarded by `fwd.example` → `SRS0=HHHH=TT=origin.example=user@fwd.example`
///   (`HHHH` the first 4 base64 characters of HMAC-SHA1(secret, lowercased `TT`, host, user); `TT` the
///   day number in two base-32 characters).
/// - an SRS0 address forwarded again → `SRS1=HHHH=first.example==HHHH=TT=origin.example=user@fwd.example`
///   (the original SRS0 kept, the first forwarder's host in front, a hash over both).
/// - ``reverse(_:)`` checks the hash (a case-smashed copy still matches, as the other implementations
///   allow) and, for SRS0, that the stamp is at most ``maximumAgeDays`` old.
///
/// Addresses come and go as `local@domain` strings in their SMTP form; a quoted local part keeps
/// its quotes around the rewritten one. The rewriter holds no state but its secrets.
public struct SRSRewriter: Sendable {
    /// The secret new addresses are made with, and older ones still accepted when reversing.
    public var secrets: [[UInt8]]
    /// Days an SRS0 address stays valid (21 in the other implementations).
    public var maximumAgeDays: Int
    /// Characters of the hash (4, as elsewhere).
    public var hashLength: Int

    /// Seconds per stamp (one day) and the stamp's alphabet (base 32, so case smashing cannot hurt).
    static let precision: Int64 = 86_400
    static let base32 = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567".utf8)

    /// A rewriter signing with `secret` (its UTF-8 octets are the HMAC key) and accepting `older` too.
    public init(secret: String, older: [String] = [], maximumAgeDays: Int = 21, hashLength: Int = 4) {
        self.secrets = ([secret] + older).map { Array($0.utf8) }
        self.maximumAgeDays = maximumAgeDays
        self.hashLength = hashLength
    }

    /// Why an address could not be reversed.
    public enum ReverseError: Error, Hashable, Sendable, CustomStringConvertible {
        /// Not an `SRS0`/`SRS1` address, or its parts are missing.
        case notSRS
        /// The hash does not match: the address was not made here (or was altered).
        case badHash
        /// The day stamp is older than the maximum age (or from the future).
        case expired

        public var description: String {
            switch self {
            case .notSRS: "not an SRS address"
            case .badHash: "the SRS hash does not match (not an address this server made)"
            case .expired: "the SRS address has expired"
            }
        }
    }

    /// `true` when `local` (a local part) starts like an SRS address (`SRS0` or `SRS1` and a separator,
    /// any case).
    public static func looksLikeSRS(_ local: String) -> Bool {
        tag(local) != nil
    }

    /// The sender to use when mail from `sender` (`local@domain`) is forwarded by `forwarderDomain`.
    /// - Parameter now: seconds since 1970 (the day stamp).
    public func forward(_ sender: String, forwarderDomain: String, now: Int64) -> String {
        guard let (quotes, user, host) = Self.split(sender) else { return sender }
        return "\(quotes)\(compile(host: host, user: user, now: now))\(quotes)@\(forwarderDomain)"
    }

    /// The address an SRS address (`local@domain`) leads back to: the original sender for SRS0, the
    /// first forwarder's SRS0 address for SRS1.
    public func reverse(_ address: String, now: Int64) -> Result<String, ReverseError> {
        guard let (quotes, user, _) = Self.split(address) else { return .failure(.notSRS) }
        return parse(user, now: now).map { host, local in "\(quotes)\(local)\(quotes)@\(host)" }
    }

    // MARK: The scheme

    // Everything below works on UTF-8 octets: a separator followed by a combining mark is one
    // Character, which Character-wise splitting would not cut.

    func compile(host: String, user: String, now: Int64) -> String {
        switch Self.tag(user) {
        case .srs1?:
            // SRS1=<hash>=<first host>=<rest>: keep the first host and the rest, hash them anew.
            let parts = Self.fields(user, after: 5, count: 3)
            if parts.count == 3 {
                let first = parts[1], rest = parts[2]
                return "SRS1=\(hash(first, rest))=\(first)=\(rest)"
            }
        case .srs0?:
            // SRS0<sep>…: the whole of it after the tag (its separator included) behind our SRS1.
            let rest = Self.fields(user, after: 4, count: 1)[0]
            return "SRS1=\(hash(host, rest))=\(host)=\(rest)"
        case nil:
            break
        }
        let stamp = Self.stamp(now)
        return "SRS0=\(hash(stamp, host, user))=\(stamp)=\(host)=\(user)"
    }

    func parse(_ user: String, now: Int64) -> Result<(host: String, local: String), ReverseError> {
        switch Self.tag(user) {
        case .srs1?:
            let parts = Self.fields(user, after: 5, count: 3)
            guard parts.count == 3, !parts[1].isEmpty, !parts[2].isEmpty else { return .failure(.notSRS) }
            let (h, first, rest) = (parts[0], parts[1], parts[2])
            guard verify(h, first, rest) else { return .failure(.badHash) }
            return .success((first, "SRS0" + rest))
        case .srs0?:
            let parts = Self.fields(user, after: 5, count: 4)
            guard parts.count == 4, !parts[2].isEmpty, !parts[3].isEmpty else { return .failure(.notSRS) }
            let (h, stamp, host, local) = (parts[0], parts[1], parts[2], parts[3])
            guard verify(h, stamp, host, local) else { return .failure(.badHash) }
            guard stampValid(stamp, now: now) else { return .failure(.expired) }
            return .success((host, local))
        case nil:
            return .failure(.notSRS)
        }
    }

    /// `text` past its first `skip` octets, split at `=` into at most `count` fields (the last one
    /// keeps any further `=`).
    static func fields(_ text: String, after skip: Int, count: Int) -> [String] {
        text.utf8.dropFirst(skip).split(separator: UInt8(ascii: "="), maxSplits: count - 1, omittingEmptySubsequences: false)
            .map { String(decoding: $0, as: UTF8.self) }
    }

    enum Tag { case srs0, srs1 }

    /// `SRS0`/`SRS1` (any case) followed by `=`, `+` or `-`.
    static func tag(_ local: String) -> Tag? {
        let u = Array(local.utf8.prefix(5))
        guard u.count == 5, u[0] | 0x20 == 0x73, u[1] | 0x20 == 0x72, u[2] | 0x20 == 0x73,
              [0x3D, 0x2B, 0x2D].contains(u[4]) else { return nil }
        switch u[3] {
        case 0x30: return .srs0
        case 0x31: return .srs1
        default: return nil
        }
    }

    /// The day stamp of `now`: two base-32 characters of the day number modulo 1024.
    static func stamp(_ now: Int64) -> String {
        let day = Int(now / precision)
        return String(decoding: [base32[(day >> 5) & 31], base32[day & 31]], as: UTF8.self)
    }

    func stampValid(_ stamp: String, now: Int64) -> Bool {
        var value = 0
        for c in stamp.uppercased().utf8 {
            guard let digit = Self.base32.firstIndex(of: c) else { return false }
            value = value * 32 + digit
        }
        let slots = 32 * 32
        var today = Int(now / Self.precision) % slots
        while today < value { today += slots }
        return today <= value + maximumAgeDays
    }

    /// The first ``hashLength`` base64 characters of HMAC-SHA1 over the lowercased parts.
    func hash(_ parts: String...) -> String {
        String(Self.mac(secrets[0], parts).prefix(hashLength))
    }

    func verify(_ given: String, _ parts: String...) -> Bool {
        guard given.utf8.count >= hashLength else { return false }
        return secrets.contains { secret in
            let valid = String(Self.mac(secret, parts).prefix(given.utf8.count))
            // A relay that smashed the case of the local part still gets its bounce back.
            return valid == given || valid.lowercased() == given.lowercased()
        }
    }

    /// base64 of HMAC-SHA1(`key`, the parts one after the other, ASCII letters lowercased).
    static func mac(_ key: [UInt8], _ parts: [String]) -> String {
        var mac = HMAC<Insecure.SHA1>(key: SymmetricKey(data: key))
        for p in parts { mac.update(data: p.utf8.map { (0x41...0x5A).contains($0) ? $0 | 0x20 : $0 }) }
        return Base64.encode(Array(mac.finalize()))
    }

    /// (quotes, local part without them, domain) of `local@domain`; the domain as given.
    static func split(_ address: String) -> (String, String, String)? {
        let octets = Array(address.utf8)
        guard let at = octets.lastIndex(of: UInt8(ascii: "@")) else { return nil }
        var user = octets[..<at]
        let host = octets[(at + 1)...]
        var quotes = ""
        if user.count >= 2, user.first == UInt8(ascii: "\""), user.last == UInt8(ascii: "\"") {
            user = user.dropFirst().dropLast()
            quotes = "\""
        }
        guard !user.isEmpty, !host.isEmpty else { return nil }
        return (quotes, String(decoding: user, as: UTF8.self), String(decoding: host, as: UTF8.self))
    }
}
