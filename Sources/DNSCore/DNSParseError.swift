/// Why a DNS message could not be parsed. Every malformed input ends in one of these, never in a
/// crash or a loop.
public enum DNSParseError: Error, Hashable, Sendable {
    /// The message ends before the header, a name, a fixed field or an RDATA the counts announce.
    case truncated
    /// A compression pointer points at or after the start of the labels it interrupts
    /// (forward pointers and loops; RFC 1035 §4.1.4 only allows pointers to prior occurrences).
    case badPointer
    /// A label type other than 00 (label) or 11 (pointer), e.g. the obsolete RFC 2673 bit labels.
    case badLabelType
    /// A name over 255 octets or 128 labels (RFC 1035 §2.3.4).
    case nameTooLong
    /// RDLENGTH runs past the end of the message.
    case rdataOverrun
    /// The RDATA of a known type does not have the shape its RFC gives (wrong length, a name that
    /// crosses the RDLENGTH boundary, a character-string that overruns it).
    case badRData(DNSRecordType)
    /// More than one OPT record, or one with a non-root owner (RFC 6891 §6.1.1).
    case badOPT
    /// Octets left over after the last section.
    case trailingBytes
}
