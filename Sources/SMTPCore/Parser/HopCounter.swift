/// Counts the `Received:` fields of a message's header section while its content streams by
/// (RFC 5321 §6.3: a message that has passed too many hops is in a loop). Only the header section is
/// looked at; the work stops at the empty line that ends it.
public struct HopCounter: Hashable, Sendable {
    /// `Received:` fields seen so far.
    public private(set) var hops = 0
    private var inHeader = true
    /// Bytes of the current line seen so far (only the first few matter).
    private var lineLength = 0
    private var matched = 0
    private var firstByte: UInt8 = 0

    private static let name: [UInt8] = Array("received:".utf8)

    public init() {}

    /// Takes the next content bytes (CRLF or LF line ends).
    public mutating func feed(_ bytes: UnsafeRawBufferPointer) {
        guard inHeader else { return }
        for b in bytes {
            if b == 10 {  // LF ends a line; an empty line (or a lone CR) ends the header section
                if lineLength == 0 || (lineLength == 1 && firstByte == 13) {
                    inHeader = false
                    return
                }
                lineLength = 0
                matched = 0
                continue
            }
            if lineLength == 0 { firstByte = b }
            if matched == lineLength && matched < Self.name.count {
                let lower = b >= 65 && b <= 90 ? b | 0x20 : b
                if lower == Self.name[matched] {
                    matched += 1
                    if matched == Self.name.count { hops += 1 }
                }
            }
            lineLength += 1
        }
    }
}
