/// The MIME structure of a message (RFC 9051 §7.5.2 BODY / BODYSTRUCTURE).
///
/// ```
/// body            = "(" (body-type-1part / body-type-mpart) ")"
/// body-type-1part = (body-type-basic / body-type-msg / body-type-text) [SP body-ext-1part]
/// body-type-basic = media-basic SP body-fields
/// body-type-msg   = media-message SP body-fields SP envelope SP body SP body-fld-lines
/// body-type-text  = media-text SP body-fields SP body-fld-lines
/// body-fields     = body-fld-param SP body-fld-id SP body-fld-desc SP body-fld-enc SP body-fld-octets
/// body-ext-1part  = body-fld-md5 [SP body-fld-dsp [SP body-fld-lang [SP body-fld-loc *(SP body-extension)]]]
/// body-type-mpart = 1*body SP media-subtype [SP body-ext-mpart]
/// body-ext-mpart  = body-fld-param [SP body-fld-dsp [SP body-fld-lang [SP body-fld-loc *(SP body-extension)]]]
/// ```
public indirect enum BodyStructure: Hashable, Sendable {
    case singlepart(SinglePart)
    case multipart(Multipart)

    /// A parameter (`charset="utf-8"`), value decoded from RFC 2231 when it was split or encoded.
    public struct Parameter: Hashable, Sendable {
        public var name: String
        public var value: String
        public init(name: String, value: String) {
            self.name = name
            self.value = value
        }
    }

    /// `Content-Disposition` (`attachment` with its parameters).
    public struct Disposition: Hashable, Sendable {
        public var kind: String
        public var parameters: [Parameter]
        public init(kind: String, parameters: [Parameter] = []) {
            self.kind = kind
            self.parameters = parameters
        }
    }

    /// A leaf part (or a `message/rfc822` part with its own envelope and structure).
    public struct SinglePart: Hashable, Sendable {
        /// As written in the message; `text`/`plain` when absent (as Dovecot writes it).
        public var type: String
        public var subtype: String
        public var parameters: [Parameter]
        public var id: String?
        public var description: String?
        /// As written; `7bit` when absent.
        public var encoding: String
        /// Octets of the body as sent (encoded, CRLF line ends).
        public var size: Int
        /// Lines of the body, for `text/*` and `message/rfc822`.
        public var lines: Int?
        /// For `message/rfc822` (and `message/global`): the inner message.
        public var message: EncapsulatedMessage?
        // Extension data (BODYSTRUCTURE only).
        public var md5: String?
        public var disposition: Disposition?
        public var language: [String]?
        public var location: String?

        public init(type: String, subtype: String, parameters: [Parameter] = [], id: String? = nil,
                    description: String? = nil, encoding: String = "7bit", size: Int, lines: Int? = nil,
                    message: EncapsulatedMessage? = nil, md5: String? = nil, disposition: Disposition? = nil,
                    language: [String]? = nil, location: String? = nil) {
            self.type = type
            self.subtype = subtype
            self.parameters = parameters
            self.id = id
            self.description = description
            self.encoding = encoding
            self.size = size
            self.lines = lines
            self.message = message
            self.md5 = md5
            self.disposition = disposition
            self.language = language
            self.location = location
        }
    }

    /// The envelope and structure of an encapsulated message.
    public struct EncapsulatedMessage: Hashable, Sendable {
        public var envelope: Envelope
        public var body: BodyStructure
        public init(envelope: Envelope, body: BodyStructure) {
            self.envelope = envelope
            self.body = body
        }
    }

    /// A `multipart/*` part.
    public struct Multipart: Hashable, Sendable {
        public var parts: [BodyStructure]
        public var subtype: String
        // Extension data (BODYSTRUCTURE only).
        public var parameters: [Parameter]
        public var disposition: Disposition?
        public var language: [String]?
        public var location: String?

        public init(parts: [BodyStructure], subtype: String, parameters: [Parameter] = [],
                    disposition: Disposition? = nil, language: [String]? = nil, location: String? = nil) {
            self.parts = parts
            self.subtype = subtype
            self.parameters = parameters
            self.disposition = disposition
            self.language = language
            self.location = location
        }
    }
}
