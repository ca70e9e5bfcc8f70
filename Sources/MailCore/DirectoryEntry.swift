#if canImport(Glibc)
import Glibc
#endif

/// The name in a `dirent` returned by `readdir`, read in place.
///
/// `readdir` returns records only `d_reclen` octets long: copying `pointee.d_name` (a 256-octet tuple)
/// reads past the record and can fault at the end of the directory buffer's page.
public func directoryEntryName(_ entry: UnsafeMutablePointer<dirent>) -> String {
    let offset = MemoryLayout<dirent>.offset(of: \dirent.d_name)!
    return String(cString: (UnsafeRawPointer(entry) + offset).assumingMemoryBound(to: CChar.self))
}
