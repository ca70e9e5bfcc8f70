import MailCore

/// What a client asked for in one mail transaction: sender, recipients and the MAIL parameters.
public struct SMTPEnvelope: Hashable, Sendable {
    /// `MAIL FROM`.
    public var reversePath: ReversePath
    /// Accepted recipients, in order, without duplicates.
    public var recipients: [ForwardPath]
    /// `BODY=8BITMIME` was given (RFC 6152).
    public var eightBitMIME: Bool
    /// `SMTPUTF8` was given (RFC 6531).
    public var smtpUTF8: Bool
    /// `SIZE=` as declared, if any (RFC 1870).
    public var declaredSize: Int?

    /// Creates an envelope.
    public init(reversePath: ReversePath, recipients: [ForwardPath] = [], eightBitMIME: Bool = false,
                smtpUTF8: Bool = false, declaredSize: Int? = nil) {
        self.reversePath = reversePath
        self.recipients = recipients
        self.eightBitMIME = eightBitMIME
        self.smtpUTF8 = smtpUTF8
        self.declaredSize = declaredSize
    }
}

/// Facts about the SMTP session that intake needs for the `Received:` header and policy.
public struct SMTPSessionFacts: Hashable, Sendable {
    /// The EHLO/HELO argument.
    public var heloName: String
    /// `true` after EHLO (ESMTP), `false` after HELO.
    public var isExtended: Bool
    /// The negotiated TLS protocol and cipher, when TLS is active.
    public var tls: TLSFacts?
    /// The authenticated identity, when the client authenticated (RFC 4954).
    public var authenticatedAs: String?

    /// Creates session facts.
    public init(heloName: String, isExtended: Bool, tls: TLSFacts? = nil, authenticatedAs: String? = nil) {
        self.heloName = heloName
        self.isExtended = isExtended
        self.tls = tls
        self.authenticatedAs = authenticatedAs
    }

    /// The `with` protocol keyword for `Received:` (RFC 3848, RFC 6531 §3.7.3): SMTP, ESMTP, ESMTPS,
    /// ESMTPA, ESMTPSA, UTF8SMTP, UTF8SMTPS, UTF8SMTPA, UTF8SMTPSA.
    public func receivedProtocol(smtpUTF8: Bool) -> String {
        guard isExtended else { return "SMTP" }
        var p = smtpUTF8 ? "UTF8SMTP" : "ESMTP"
        if tls != nil && authenticatedAs != nil { p += "SA" } else if tls != nil { p += "S" } else if authenticatedAs != nil { p += "A" }
        return p
    }
}

/// The negotiated TLS parameters of a connection.
public struct TLSFacts: Hashable, Sendable {
    /// e.g. `TLSv1.3`.
    public var version: String
    /// e.g. `TLS_AES_256_GCM_SHA384`, when the TLS library reports it.
    public var cipher: String?

    /// Creates TLS facts.
    public init(version: String, cipher: String? = nil) {
        self.version = version
        self.cipher = cipher
    }
}
