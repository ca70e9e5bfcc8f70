#if canImport(Glibc)
import Glibc
#endif
import MailCore
import Synchronization

/// New UIDVALIDITY values for the folders of one account, shared with Dovecot.
///
/// As Dovecot does, the account root holds `dovecot-uidvalidity` (the last value, 8 hex digits) and an
/// empty marker `dovecot-uidvalidity.<8 hex digits>` renamed to the next value each time (the rename
/// is the cross-process claim). A new value is the current time, or the last value + 1 when that is
/// not larger, so a folder deleted and created again never gets its old UIDVALIDITY back.
enum UIDValidityAllocator {
    private static let lock = Mutex<Void>(())

    static func next(root: String) throws -> UInt32 {
        try lock.withLock { _ in
            let file = root + "/dovecot-uidvalidity"
            for _ in 0..<10 {
                var last: UInt32 = 0
                if let bytes = try readFile(file), let v = UInt32(String(decoding: bytes, as: UTF8.self).trimmingSpaces, radix: 16) {
                    last = v
                }
                var marker: UInt32?
                if let d = opendir(root) {
                    while let e = readdir(d) {
                        let name = directoryEntryName(e)
                        if name.hasPrefix("dovecot-uidvalidity."), let v = UInt32(name.dropFirst(20), radix: 16) {
                            marker = max(marker ?? 0, v)
                        }
                    }
                    closedir(d)
                }
                let base = max(last, marker ?? 0)
                var value = UInt32(truncatingIfNeeded: time(nil))
                if value <= base { value = base &+ 1 }
                if value == 0 { value = 1 }
                let target = root + "/dovecot-uidvalidity." + hex8(value)
                if let marker {
                    if Glibc.rename(root + "/dovecot-uidvalidity." + hex8(marker), target) != 0 {
                        if errno == ENOENT { continue }  // another process claimed it: read again
                        throw StoreError("rename", target)
                    }
                } else {
                    let fd = Glibc.open(target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
                    if fd < 0 {
                        if errno == EEXIST { continue }
                        throw StoreError("open", target)
                    }
                    Glibc.close(fd)
                }
                try writeFileAtomically(file, Array(hex8(value).utf8))
                return value
            }
            return max(UInt32(truncatingIfNeeded: time(nil)), 1)
        }
    }

    static func hex8(_ v: UInt32) -> String {
        let h = String(v, radix: 16)
        return String(repeating: "0", count: 8 - h.count) + h
    }
}
