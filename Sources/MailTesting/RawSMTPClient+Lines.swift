import NIOConcurrencyHelpers

/// Line-oriented reading for protocols whose replies are not SMTP's (IMAP transcripts).
extension RawSMTPClient {
    /// Reads one CRLF-terminated line (without CRLF); throws on timeout, or on close with no line left.
    public func readLine(timeout: Duration = .seconds(10)) async throws -> String {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while true {
            if let line = inbox.bytes.withLockedValue({ Self.takeLine(&$0) }) { return line }
            if inbox.closed.withLockedValue({ $0 }) { throw ClientError.closed }
            if clock.now > deadline { throw ClientError.timeout }
            try await Task.sleep(for: .milliseconds(2))
        }
    }

    /// Reads lines until the server closes the connection; returns them.
    public func readLinesUntilClosed(timeout: Duration = .seconds(10)) async throws -> [String] {
        var out: [String] = []
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while true {
            if let line = inbox.bytes.withLockedValue({ Self.takeLine(&$0) }) { out.append(line); continue }
            if inbox.closed.withLockedValue({ $0 }) {
                let rest = inbox.bytes.withLockedValue { b -> [UInt8] in defer { b = [] }; return b }
                if !rest.isEmpty { out.append(String(decoding: rest, as: UTF8.self)) }
                return out
            }
            if clock.now > deadline { throw ClientError.timeout }
            try await Task.sleep(for: .milliseconds(2))
        }
    }

    /// What has arrived and not been read, without waiting.
    public func unreadBytes() -> [UInt8] { inbox.bytes.withLockedValue { $0 } }

    static func takeLine(_ bytes: inout [UInt8]) -> String? {
        var i = 0
        while i + 1 < bytes.count {
            if bytes[i] == 0x0D && bytes[i + 1] == 0x0A {
                let line = String(decoding: bytes[..<i], as: UTF8.self)
                bytes.removeFirst(i + 2)
                return line
            }
            i += 1
        }
        return nil
    }
}
