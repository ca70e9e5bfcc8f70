import CCrypt
#if canImport(Glibc)
import Glibc
#endif

/// Salted, slow password hashes through the system's libxcrypt: yescrypt (`$y$`) by default, the
/// same format as `/etc/shadow`, `mkpasswd -m yescrypt` and Dovecot's `{CRYPT}` scheme, so hashes can
/// move in and out. Verification also accepts bcrypt (`$2b$`/`$2y$`) and sha512crypt (`$6$`).
public enum PasswordHasher {
    /// Hashes `password` with a fresh random salt.
    public static func hash(_ password: String, prefix: String = "$y$") throws -> String {
        var setting = [CChar](repeating: 0, count: Int(CRYPT_GENSALT_OUTPUT_SIZE))
        guard crypt_gensalt_rn(prefix, 0, nil, 0, &setting, Int32(setting.count)) != nil else {
            throw PasswordHashError.saltGenerationFailed
        }
        let settingString = String(decoding: setting.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        guard let h = cryptRA(password, settingString) else { throw PasswordHashError.hashingFailed }
        return h
    }

    /// `true` when `password` matches `stored`. Compares in constant time.
    public static func verify(_ password: String, against stored: String) -> Bool {
        guard stored.hasPrefix("$"), let computed = cryptRA(password, stored) else { return false }
        let a = Array(computed.utf8)
        let b = Array(stored.utf8)
        guard a.count == b.count else { return false }
        var diff: UInt8 = 0
        for i in 0..<a.count { diff |= a[i] ^ b[i] }
        return diff == 0
    }

    private static func cryptRA(_ password: String, _ setting: String) -> String? {
        var data: UnsafeMutableRawPointer? = nil
        var size: Int32 = 0
        defer { free(data) }
        guard let out = crypt_ra(password, setting, &data, &size) else { return nil }
        let s = String(cString: out)
        return s.hasPrefix("*") ? nil : s
    }
}

/// Why hashing failed.
public enum PasswordHashError: Error, Sendable {
    /// libcrypt could not make a salt (no random source, unknown prefix).
    case saltGenerationFailed
    /// libcrypt refused the setting.
    case hashingFailed
}
