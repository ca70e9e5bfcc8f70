import struct NIOCore.ByteBuffer

/// Test messages. Each is written with LF line ends here and used with CRLF (``crlf``), as the store
/// hands messages to IMAPCore. `scripts/imap-dovecot-golden.py` reads this file, feeds each message to
/// Dovecot and prints its BODYSTRUCTURE, BODY and ENVELOPE; the expected values in the tests are those.
enum MessageFixtures {
    /// Every fixture by name (the names the golden script prints).
    static let all: [(String, String)] = [
        ("simple", simple), ("mixed", mixed), ("nested", nested), ("encodedWords", encodedWords),
        ("rfc2231", rfc2231), ("groups", groups), ("noSeparator", noSeparator), ("noBoundary", noBoundary),
        ("unclosed", unclosed), ("badAddresses", badAddresses), ("noContentType", noContentType),
        ("noMimeVersion", noMimeVersion), ("encodedMessage", encodedMessage), ("digest", digest),
        ("emptyMultipart", emptyMultipart), ("headerOnly", headerOnly), ("mixedCase", mixedCase),
    ]

    /// The message with CRLF line ends.
    static func crlf(_ s: String) -> ByteBuffer {
        var out: [UInt8] = []
        for b in s.utf8 {
            if b == 0x0A { out.append(0x0D) }
            out.append(b)
        }
        return ByteBuffer(bytes: out)
    }

    /// Like RFC 9051's examples: one text/plain part and the usual header fields.
    static let simple = #"""
    Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)
    From: Terry Gray <gray@cac.washington.edu>
    Subject: IMAP4rev2 WG mtg summary and minutes
    To: imap@cac.washington.edu
    cc: minutes@CNRI.Reston.VA.US,
     John Klensin <KLENSIN@MIT.EDU>
    Message-Id: <B27397-0100000@cac.washington.edu>
    In-Reply-To: <A1234@cac.washington.edu>
    MIME-Version: 1.0
    Content-Type: TEXT/PLAIN; CHARSET=US-ASCII

    Hello Joe, do you think we can meet at 3:30 tomorrow?
    Second line.

    """#

    /// multipart/mixed: an alternative (plain in quoted-printable, HTML) and a PDF attachment with every
    /// extension field.
    static let mixed = #"""
    From: Alice <alice@example.org>
    To: bob@example.net
    Subject: Report
    Date: Mon, 3 Feb 2025 10:00:00 +0100
    Message-ID: <mixed@example.org>
    MIME-Version: 1.0
    Content-Type: multipart/mixed; boundary="outer-b"
    Content-Language: en

    This is a multi-part message in MIME format.
    --outer-b
    Content-Type: multipart/alternative; boundary=alt-b

    --alt-b
    Content-Type: text/plain; charset=utf-8
    Content-Transfer-Encoding: quoted-printable

    Caf=C3=A9 au lait, see the report=
     attached.
    --alt-b
    Content-Type: text/html; charset=utf-8

    <p>Caf&eacute; au <b>lait</b></p>
    --alt-b--

    --outer-b
    Content-Type: application/pdf; name="report.pdf"
    Content-Transfer-Encoding: base64
    Content-Disposition: attachment; filename="report.pdf"; size=12
    Content-ID: <part3@example.org>
    Content-Description: The report
    Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==
    Content-Language: en, de
    Content-Location: http://example.org/report.pdf

    JVBERi0xLjQKJcOkw7zDtsOfCg==
    --outer-b--
    epilogue

    """#

    /// A message/rfc822 part holding a multipart/alternative message.
    static let nested = #"""
    From: fwd@example.org
    To: someone@example.net
    Subject: Fwd: inner
    MIME-Version: 1.0
    Content-Type: multipart/mixed; boundary=b1

    --b1
    Content-Type: text/plain

    See below.
    --b1
    Content-Type: message/rfc822

    From: Inner Sender <inner@example.com>
    To: fwd@example.org
    Subject: inner
    Date: Tue, 4 Feb 2025 08:30:00 +0000
    Message-ID: <inner@example.com>
    MIME-Version: 1.0
    Content-Type: multipart/alternative; boundary=b2

    --b2
    Content-Type: text/plain; charset=us-ascii

    inner text
    --b2
    Content-Type: text/html

    <i>inner</i>
    --b2--

    --b1--

    """#

    /// Encoded words in Subject and display names (UTF-8 B, ISO-8859-1 Q).
    static let encodedWords = #"""
    From: =?UTF-8?B?SsO8cmdlbiBNw7xsbGVy?= <juergen@example.de>
    To: =?ISO-8859-1?Q?Andr=E9?= Pirard <PIRARD@vm1.ulg.ac.be>
    Subject: =?ISO-8859-1?B?SWYgeW91IGNhbiByZWFkIHRoaXMgeW8=?=
     =?ISO-8859-2?B?dSB1bmRlcnN0YW5kIHRoZSBleGFtcGxlLg==?=
    Date: Fri, 7 Feb 2025 23:59:59 -0500
    MIME-Version: 1.0
    Content-Type: text/plain; charset=iso-8859-1
    Content-Transfer-Encoding: quoted-printable

    Gr=FC=DFe aus K=F6ln

    """#

    /// RFC 2231 parameters: continuations, a charset and language, and a plain continuation.
    static let rfc2231 = #"""
    From: a@example.org
    Subject: params
    MIME-Version: 1.0
    Content-Type: application/x-stuff;
     title*0*=us-ascii'en'This%20is%20even%20more%20;
     title*1*=%2A%2A%2Afun%2A%2A%2A%20;
     title*2="isn't it!"
    Content-Disposition: attachment;
     filename*=UTF-8''na%C3%AFve%20file.txt
    Content-Transfer-Encoding: base64

    aGVsbG8=

    """#

    /// Groups in To and Cc, including an empty group.
    static let groups = #"""
    From: "Doe, John" <john@example.com>
    Sender: Secretary <sec@example.com>
    Reply-To: replies@example.com
    To: A Group:Ed Jones <c@a.test>,joe@where.test,John <jdoe@one.test>;, Mary Smith <mary@x.test>
    Cc: Undisclosed recipients:;
    Bcc: (comment only) hidden@example.com
    Subject: groups
    Date: Thu, 13 Feb 1969 23:32:54 -0330

    body

    """#

    /// A header line without a colon where the empty line should be.
    static let noSeparator = #"""
    From: a@example.org
    Subject: no separator
    this line is not a header field
    and this is the body

    """#

    /// multipart/mixed without a boundary parameter.
    static let noBoundary = #"""
    From: a@example.org
    MIME-Version: 1.0
    Content-Type: multipart/mixed

    --x
    Content-Type: text/plain

    one
    --x--

    """#

    /// A multipart whose close delimiter never comes.
    static let unclosed = #"""
    From: a@example.org
    MIME-Version: 1.0
    Content-Type: multipart/mixed; boundary=zz

    --zz
    Content-Type: text/plain

    first
    --zz
    Content-Type: text/plain

    second, unterminated

    """#

    /// Malformed addresses.
    static let badAddresses = #"""
    From: foo
    Sender: <@route1,@route2:user@host.test>
    Reply-To: user@
    To: "unterminated <x@y.test>
    Cc: ,,, @bad, <>, plain@ok.test
    Bcc: Name Only <>
    Subject: bad addresses

    body

    """#

    /// MIME-Version and a transfer encoding but no Content-Type.
    static let noContentType = #"""
    From: a@example.org
    MIME-Version: 1.0
    Content-Transfer-Encoding: base64

    aGVsbG8gd29ybGQ=

    """#

    /// Content-Type without MIME-Version.
    static let noMimeVersion = #"""
    From: a@example.org
    Content-Type: text/html; charset=utf-8

    <p>x</p>

    """#

    /// A message/rfc822 part in base64 (not allowed by RFC 2046 §5.2.1, but seen).
    static let encodedMessage = #"""
    From: a@example.org
    MIME-Version: 1.0
    Content-Type: multipart/mixed; boundary=e

    --e
    Content-Type: message/rfc822
    Content-Transfer-Encoding: base64

    U3ViamVjdDogaW5uZXIKCmlubmVyIGJvZHkK
    --e--

    """#

    /// multipart/digest: parts default to message/rfc822.
    static let digest = #"""
    From: digest@example.org
    MIME-Version: 1.0
    Content-Type: multipart/digest; boundary=d

    --d

    Subject: one
    From: x@example.org

    first
    --d
    Content-Type: text/plain

    not a message
    --d--

    """#

    /// A multipart with a boundary but no parts.
    static let emptyMultipart = #"""
    From: a@example.org
    MIME-Version: 1.0
    Content-Type: multipart/mixed; boundary=q

    nothing here
    --q--

    """#

    /// Only a header, no empty line and no body.
    static let headerOnly = #"""
    From: a@example.org
    Subject: header only
    """#

    /// Mixed case in type, subtype, parameters and encoding; description and id folded.
    static let mixedCase = #"""
    From: a@example.org
    MIME-Version: 1.0
    Content-Type: Text/HTML; Charset="UTF-8"; Format=Flowed
    Content-Transfer-Encoding: 8BIT
    Content-Description: a
     folded description
    Content-ID: <x@y>

    <b>h\u{e9}</b>

    """#
}
