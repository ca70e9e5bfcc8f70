import Testing
@testable import MIME

/// Checks every line of a rendered message: CRLF only, ≤ 998 octets, ≤ 78 unless unavoidable, ASCII.
func checkCanonical(_ bytes: [UInt8], maxLine: Int = 78) {
    var i = 0
    var lineStart = 0
    while i < bytes.count {
        if bytes[i] == 0x0A {
            #expect(i > 0 && bytes[i - 1] == 0x0D, "bare LF at \(i)")
            let len = i - 1 - lineStart
            #expect(len <= maxLine, "line of \(len) octets: \(String(decoding: bytes[lineStart..<(i - 1)], as: UTF8.self))")
            lineStart = i + 1
        } else if bytes[i] == 0x0D {
            #expect(i + 1 < bytes.count && bytes[i + 1] == 0x0A, "bare CR at \(i)")
        }
        #expect(bytes[i] < 0x80, "8-bit octet at \(i)")
        i += 1
    }
    #expect(lineStart == bytes.count, "no final CRLF")
}

@Suite struct MessageBuilderTests {
    func sample() -> MessageBuilder {
        var m = MessageBuilder()
        m.from = MailboxAddress("发件人名称 <alice@example.test>")
        m.to = [MailboxAddress(displayName: "Bob", address: "bob@example.test"), MailboxAddress(displayName: "山田 太郎", address: "taro@example.test")]
        m.cc = [MailboxAddress(displayName: "Doe, Jane", address: "jane@example.test")]
        m.bcc = [MailboxAddress(address: "secret@example.test"), MailboxAddress(address: "BOB@example.test")]
        m.subject = "会议纪要 — Meeting notes 🎉 with a long tail of ASCII words to make it fold somewhere"
        m.date = "Sun, 22 Nov 2026 01:25:42 +0000"
        m.hostname = "mx.example.test"
        m.textBody = "Hello,\n中文正文。\n"
        m.htmlBody = "<p>Hello <img src=\"cid:logo\"></p>"
        m.inlineImages = [.init(filename: "logo.png", data: [0x89, 0x50, 0x4E, 0x47], contentID: "logo")]
        m.attachments = [.init(filename: "报告 " + String(repeating: "很长的名字", count: 12) + ".pdf", data: Array(0...255))]
        return m
    }

    @Test func roundTripThroughOurParser() {
        let built = sample().build()
        checkCanonical(built.bytes)
        let msg = MIMEParser().parse(built.bytes)
        #expect(msg.diagnostics.isEmpty)
        #expect(msg.subject == sample().subject)
        #expect(msg.from == [MailboxAddress(displayName: "发件人名称", address: "alice@example.test")])
        #expect(msg.to == sample().to)
        #expect(msg.cc == sample().cc)
        #expect(msg.bcc.isEmpty)
        #expect(msg.messageID == built.messageID)
        #expect(built.messageID.hasSuffix("@mx.example.test>"))
        #expect(msg.root.contentType.mimeType == "multipart/mixed")
        #expect(msg.allParts.map(\.contentType.mimeType) == [
            "multipart/mixed", "multipart/alternative", "text/plain", "multipart/related", "text/html", "image/png", "application/pdf",
        ])
        #expect(msg.textBody == "Hello,\r\n中文正文。\r\n")
        #expect(msg.htmlBody?.hasPrefix("<p>Hello") == true)
        let pdf = msg.attachments.first { $0.contentType.mimeType == "application/pdf" }
        #expect(pdf?.filename == sample().attachments[0].filename)
        #expect(pdf?.decodedBody == Array(0...255))
        let logo = msg.allParts.first { $0.contentID == "logo" }
        #expect(logo?.decodedBody == [0x89, 0x50, 0x4E, 0x47])
    }

    @Test func envelope() {
        let m = sample()
        #expect(m.envelopeSender == "alice@example.test")
        #expect(m.envelopeRecipients == ["bob@example.test", "taro@example.test", "jane@example.test", "secret@example.test"])
        var withBcc = m
        withBcc.includeBccHeader = true
        #expect(MIMEParser().parse(withBcc.render()).bcc.count == 2)
    }

    @Test func plainASCIIIsSevenBit() {
        var m = MessageBuilder()
        m.from = MailboxAddress(address: "a@example.test")
        m.to = [MailboxAddress(address: "b@example.test")]
        m.subject = "Plain"
        m.textBody = "short line\n"
        let text = String(decoding: m.render(), as: UTF8.self)
        #expect(text.contains("Content-Transfer-Encoding: 7bit\r\n"))
        #expect(text.contains("Subject: Plain\r\n"))
        #expect(text.hasSuffix("\r\n\r\nshort line\r\n"))
    }

    @Test(arguments: [
        ("Mostly ASCII with one é", "quoted-printable"),
        ("全部都是中文的正文内容，没有任何英文字母。", "base64"),
        (String(repeating: "long ascii line ", count: 20), "quoted-printable"),
    ])
    func encodingChosenByContent(body: String, expected: String) {
        var m = MessageBuilder()
        m.textBody = body
        let msg = MIMEParser().parse(m.render())
        #expect(msg.root.transferEncoding.description == expected)
        #expect(msg.textBody == body + (expected == "base64" ? "" : "\r\n"))
    }

    @Test(arguments: [
        "Hello", "中", String(repeating: "中文", count: 100), String(repeating: "🎉", count: 60),
        String(repeating: "a", count: 2000), "mixed ASCII and 中文 and more ASCII " + String(repeating: "word ", count: 40),
        "=?utf-8?q?looks_encoded?=", "tab\tand\r\nnewline", "👨‍👩‍👧‍👦 family " + String(repeating: "👨‍👩‍👧‍👦", count: 30),
        "Ünïcödé " + String(repeating: "x", count: 90),
    ])
    func subjectFolding(subject: String) {
        var m = MessageBuilder()
        m.subject = subject
        let bytes = m.render()
        checkCanonical(bytes)
        let expected = subject.replacingOccurrences(of: "\t", with: " ").replacingOccurrences(of: "\r\n", with: "  ").trimmingSpaces()
        #expect(MIMEParser().parse(bytes).subject == expected)
        // Each encoded word decodes on its own to whole characters.
        let text = String(decoding: bytes, as: UTF8.self)
        for piece in text.split(whereSeparator: { $0 == " " || $0 == "\r\n" }) where piece.hasPrefix("=?") {
            #expect(piece.utf8.count <= 75)
            #expect(!EncodedWord.decode(String(piece)).contains("\u{FFFD}"))
        }
    }

    @Test func headerInjectionIsNeutralised() {
        var m = MessageBuilder()
        m.subject = "hi\r\nBcc: victim@example.test"
        m.to = [MailboxAddress(displayName: "x\r\nX-Evil: 1", address: "b@example.test")]
        let msg = MIMEParser().parse(m.render())
        #expect(msg.headers["Bcc"] == nil)
        #expect(msg.headers["X-Evil"] == nil)
    }

    @Test func boundaryNeverInContent() {
        var m = MessageBuilder()
        m.textBody = "--=_swallow_ looks like a boundary prefix\n"
        m.attachments = [.init(filename: "a.txt", data: Array("--=_swallow_0000\r\n".utf8))]
        let msg = MIMEParser().parse(m.render())
        #expect(msg.allParts.count == 3)
        #expect(msg.attachments.first?.decodedBody == Array("--=_swallow_0000\r\n".utf8))
    }
}

extension String {
    func replacingOccurrences(of a: String, with b: String) -> String {
        split(separator: a, omittingEmptySubsequences: false).joined(separator: b)
    }
}
