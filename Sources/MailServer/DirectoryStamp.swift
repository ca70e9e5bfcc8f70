#if canImport(CoreFoundation)
import CoreFoundation
#endif
#if canImport(Glibc)
import Glibc
#endif

/// A directory's identity and modification time (inode, seconds, nanoseconds): a cheap test for
/// "something in it changed" (one `stat`); `nil` when it does not exist. (In a file of its own: with
/// Foundation imported, `stat`'s members resolve to CoreFoundation's.)
func directoryStamp(_ path: String) -> [Int]? {
    var st = stat()
    guard stat(path, &st) == 0 else { return nil }
    return [Int(st.st_ino), Int(st.st_mtim.tv_sec), Int(st.st_mtim.tv_nsec)]
}
