#if canImport(Glibc)
import Glibc
#endif
import NIOCore

/// Message content on its way into the store: CRLF wire form in, LF storage form on disk.
///
/// Content that does not fit in memory is written here as it arrives (no fsync: it is not yet
/// acknowledged); ``MaildirStore/deliver(headers:spool:tail:to:)`` then copies it into the durable file.
/// Callers guarantee there is no bare CR (SMTPCore refuses such messages), so dropping every CR is an
/// exact CRLF → LF conversion.
public final class SpoolFile: @unchecked Sendable {
    let path: String
    private var fd: Int32
    /// Octets written in storage form (LF line ends).
    public private(set) var storedSize = 0
    /// Line feeds written (storage size + this = size with CRLF, Dovecot's `W=`).
    public private(set) var lineCount = 0
    /// The last byte written, to know whether the content ends with a line feed.
    public private(set) var lastByte: UInt8?

    /// Creates an exclusive temporary file in `directory`.
    public init(directory: String, name: String) throws {
        path = directory + "/" + name
        fd = try POSIX.open(path, O_WRONLY | O_CREAT | O_EXCL)
    }

    /// Appends content, converting CRLF to LF.
    public func write(_ bytes: ByteBuffer) throws {
        try bytes.withUnsafeReadableBytes { raw in
            try MaildirStore.writeConverted(raw, fd: fd, path: path, stored: &storedSize, lines: &lineCount, last: &lastByte)
        }
    }

    /// Reopens the content for reading from the start.
    func openForReading() throws -> Int32 {
        try POSIX.open(path, O_RDONLY)
    }

    /// Closes and deletes the file.
    public func remove() {
        if fd >= 0 { POSIX.close(fd); fd = -1 }
        POSIX.unlink(path)
    }

    deinit { if fd >= 0 { POSIX.close(fd) } }
}
