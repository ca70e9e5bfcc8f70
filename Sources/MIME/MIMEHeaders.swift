/// One header field, unfolded.
///
/// - SeeAlso: RFC 5322 §2.2 (fields), §2.2.3 (unfolding)
public struct MIMEHeaderField: Hashable, Sendable {
    /// The field name as written (compare case-insensitively).
    public var name: String
    /// The unfolded value with leading and trailing whitespace removed, encoded words not decoded.
    /// Octets that are not UTF-8 were read as ISO-8859-1.
    public var value: String

    /// Creates a field.
    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }

    /// The value with RFC 2047 encoded words decoded (RFC 2047 §6). Use it for unstructured fields
    /// such as `Subject`; parse address fields with ``AddressListParser``.
    public var decodedValue: String { EncodedWord.decode(value) }
}

/// The header section of a message or body part: fields in order, names compared case-insensitively.
///
/// - SeeAlso: RFC 5322 §3.6, RFC 2045 §3
public struct MIMEHeaders: Hashable, Sendable, RandomAccessCollection {
    /// The fields in the order they appear.
    public var fields: [MIMEHeaderField]

    /// Creates a header section.
    public init(_ fields: [MIMEHeaderField] = []) { self.fields = fields }

    /// The position of the first field.
    public var startIndex: Int { fields.startIndex }
    /// The position past the last field.
    public var endIndex: Int { fields.endIndex }
    /// The field at `position`.
    public subscript(position: Int) -> MIMEHeaderField { fields[position] }

    /// The raw value of the first field called `name` (case-insensitive).
    public subscript(name: String) -> String? {
        fields.first { equalsIgnoringASCIICase($0.name, name) }?.value
    }

    /// The raw values of every field called `name`, in order.
    public func values(for name: String) -> [String] {
        fields.filter { equalsIgnoringASCIICase($0.name, name) }.map(\.value)
    }

    /// The first field called `name` with encoded words decoded (for unstructured fields).
    public func decoded(_ name: String) -> String? { self[name].map(EncodedWord.decode) }

    /// Every mailbox in every field called `name` (address lists, groups flattened).
    public func addresses(_ name: String) -> [MailboxAddress] {
        values(for: name).flatMap(AddressListParser.mailboxes)
    }
}
