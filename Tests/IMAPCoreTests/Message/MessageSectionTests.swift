import IMAPCore
import Testing
import struct NIOCore.ByteBuffer

/// BODY[…], BINARY[…] and partials. Expected octets are Dovecot's answers for the same fixtures
/// (`scripts/imap-dovecot-golden.py --sections`), unless a comment says otherwise.
@Suite struct MessageSectionTests {
    func text(_ b: ByteBuffer) -> String { String(decoding: b.readableBytesView, as: UTF8.self) }
    func section(_ m: MessageStructure, _ part: [Int], _ kind: SectionSpecifier.Kind = .complete, _ partial: Partial? = nil) -> String {
        text(m.section(SectionSpecifier(part: part, kind: kind), partial: partial))
    }

    let nested = MessageStructure(parsing: MessageFixtures.crlf(MessageFixtures.nested))
    let simple = MessageStructure(parsing: MessageFixtures.crlf(MessageFixtures.simple))

    @Test func nestedMessageSections() {
        let m = nested
        #expect(section(m, [], .header) == "From: fwd@example.org\r\nTo: someone@example.net\r\nSubject: Fwd: inner\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b1\r\n\r\n")
        #expect(section(m, [1]) == "See below.")
        #expect(section(m, [1], .mime) == "Content-Type: text/plain\r\n\r\n")
        #expect(section(m, [2], .mime) == "Content-Type: message/rfc822\r\n\r\n")
        let inner = section(m, [2])
        #expect(inner.hasPrefix("From: Inner Sender <inner@example.com>\r\n"))
        #expect(inner.hasSuffix("<i>inner</i>\r\n--b2--\r\n"))
        #expect(section(m, [2], .header) == "From: Inner Sender <inner@example.com>\r\nTo: fwd@example.org\r\nSubject: inner\r\nDate: Tue, 4 Feb 2025 08:30:00 +0000\r\nMessage-ID: <inner@example.com>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=b2\r\n\r\n")
        #expect(section(m, [2], .text) == "--b2\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\ninner text\r\n--b2\r\nContent-Type: text/html\r\n\r\n<i>inner</i>\r\n--b2--\r\n")
        #expect(section(m, [2, 1]) == "inner text")
        #expect(section(m, [2, 1], .mime) == "Content-Type: text/plain; charset=us-ascii\r\n\r\n")
        #expect(section(m, [2, 2]) == "<i>inner</i>")
        #expect(section(m, [1, 1]) == "See below.")
        #expect(section(m, [1, 2]) == "")
        #expect(section(m, [3]) == "")
        #expect(section(m, [1], .header) == "")  // part 1 is not message/rfc822
        #expect(section(m, [2], .headerFields(["subject", "FROM"])) == "From: Inner Sender <inner@example.com>\r\nSubject: inner\r\n\r\n")
    }

    @Test func singlePartMessage() {
        let m = simple
        #expect(section(m, [1]) == section(m, [], .text))
        #expect(section(m, [1], .mime) == section(m, [], .header))
        #expect(section(m, [2]) == "")
        #expect(section(m, [1], .header) == "")
        #expect(section(m, []) == String(decoding: MessageFixtures.crlf(MessageFixtures.simple).readableBytesView, as: UTF8.self))
        #expect(text(m.rfc822Header) == section(m, [], .header))
        #expect(text(m.rfc822Text) == "Hello Joe, do you think we can meet at 3:30 tomorrow?\r\nSecond line.\r\n")
        #expect(m.size == 454)
    }

    @Test func headerFieldsKeepFoldingAndOrder() {
        let m = simple
        #expect(section(m, [], .headerFields(["Cc", "to"])) == "To: imap@cac.washington.edu\r\ncc: minutes@CNRI.Reston.VA.US,\r\n John Klensin <KLENSIN@MIT.EDU>\r\n\r\n")
        #expect(section(m, [], .headerFields(["X-None"])) == "\r\n")
        let not = section(m, [], .headerFieldsNot(["Date", "From", "Subject", "To", "Cc", "Message-Id", "In-Reply-To"]))
        #expect(not == "MIME-Version: 1.0\r\nContent-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n\r\n")
        let headerOnly = MessageStructure(parsing: MessageFixtures.crlf(MessageFixtures.headerOnly))
        #expect(section(headerOnly, [], .header) == "From: a@example.org\r\nSubject: header only")
        #expect(section(headerOnly, [], .headerFields(["subject"])) == "Subject: header only\r\n\r\n")
        #expect(section(headerOnly, [], .text) == "")
    }

    @Test func partials() {
        let m = simple
        #expect(section(m, [1], .complete, Partial(offset: 0, length: 5)) == "Hello")
        #expect(section(m, [1], .complete, Partial(offset: 6, length: 3)) == "Joe")
        #expect(section(m, [1], .complete, Partial(offset: 62, length: 1000)) == "line.\r\n")
        #expect(section(m, [1], .complete, Partial(offset: 69, length: 10)) == "")
        #expect(section(m, [1], .complete, Partial(offset: .max, length: .max)) == "")
    }

    @Test func sectionsShareTheMessageStorage() {
        let m = nested
        let part = m.section(SectionSpecifier(part: [2, 1]))
        // A slice: same storage, so the bytes are not copied.
        m.message.withUnsafeReadableBytes { whole in
            part.withUnsafeReadableBytes { slice in
                let base = UInt(bitPattern: whole.baseAddress!)
                let at = UInt(bitPattern: slice.baseAddress!)
                #expect(at >= base && at + UInt(slice.count) <= base + UInt(whole.count))
            }
        }
    }

    @Test func binaryDecodesTransferEncodings() throws {
        let mixed = MessageStructure(parsing: MessageFixtures.crlf(MessageFixtures.mixed))
        #expect(text(try mixed.binary(part: [1, 1])) == "Café au lait, see the report attached.")
        #expect(try mixed.binarySize(part: [1, 1]) == "Café au lait, see the report attached.".utf8.count)
        #expect(Array(try mixed.binary(part: [2]).readableBytesView) == Array("%PDF-1.4\n%äüöß\n".utf8))
        #expect(try mixed.binarySize(part: [2]) == 19)
        #expect(try mixed.binary(part: [2], partial: Partial(offset: 1, length: 3)).readableBytesView.elementsEqual("PDF".utf8))
        #expect(text(try mixed.binary(part: [1, 2])) == "<p>Caf&eacute; au <b>lait</b></p>")
        #expect(try mixed.binary(part: [9]).readableBytes == 0)
        let noType = MessageStructure(parsing: MessageFixtures.crlf(MessageFixtures.noContentType))
        #expect(text(try noType.binary(part: [1])) == "hello world")
        #expect(try noType.binarySize(part: [1]) == 11)

        let unknown = MessageStructure(parsing: MessageFixtures.crlf("Content-Transfer-Encoding: x-uuencode\n\nbegin 644 x\n"))
        #expect(throws: BinarySectionError.unknownTransferEncoding("x-uuencode")) { try unknown.binary(part: [1]) }
        #expect(throws: BinarySectionError.unknownTransferEncoding("x-uuencode")) { try unknown.binarySize(part: [1]) }
        // BODY[] is still given as it is.
        #expect(section(unknown, [1]) == "begin 644 x\r\n")
    }

    @Test func lfOnlyInputCountsOctetsAsGiven() {
        let raw = "Subject: lf\nContent-Type: multipart/mixed; boundary=b\n\n--b\n\none\n--b\nContent-Type: text/plain\n\ntwo\nlines\n--b--\n"
        let m = MessageStructure(parsing: Array(raw.utf8))
        #expect(section(m, [], .header) == "Subject: lf\nContent-Type: multipart/mixed; boundary=b\n\n")
        #expect(section(m, [1]) == "one")
        #expect(section(m, [2]) == "two\nlines")
        #expect(section(m, [2], .mime) == "Content-Type: text/plain\n\n")
        guard case .multipart(let mp) = m.bodyStructure, case .singlepart(let two) = mp.parts[1] else {
            Issue.record("not a multipart")
            return
        }
        #expect(two.size == 9)
        #expect(two.lines == 1)
        #expect(m.size == raw.utf8.count)
    }

    @Test func garbageNeverCrashes() {
        var seed: UInt64 = 0x1234_5678
        for round in 0..<200 {
            var bytes: [UInt8] = []
            let n = Int(seed % 400)
            for _ in 0..<n {
                seed = seed &* 6364136223846793005 &+ 1442695040888963407
                let pick = Int(seed >> 59)
                let pieces: [[UInt8]] = [Array("\r\n".utf8), Array("--b".utf8), Array(":".utf8), Array("Content-Type: multipart/mixed; boundary=b\r\n".utf8),
                                         Array("Content-Type: message/rfc822\r\n".utf8), Array("\n".utf8), [UInt8(truncatingIfNeeded: seed >> 32)],
                                         Array("From: \"a <".utf8), Array("=?utf-8?b?".utf8), Array(" ".utf8)]
                bytes += pieces[pick % pieces.count]
            }
            let m = MessageStructure(parsing: bytes)
            _ = m.bodyStructure
            _ = m.envelope
            for part in [[], [1], [1, 1], [2, 1, 1], [3]] {
                for kind: SectionSpecifier.Kind in [.complete, .header, .text, .mime, .headerFields(["from"])] {
                    _ = m.section(SectionSpecifier(part: part, kind: kind), partial: Partial(offset: UInt64(round), length: 7))
                }
                _ = try? m.binary(part: part)
            }
        }
    }
}
