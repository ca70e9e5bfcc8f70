import Testing
import struct NIOCore.ByteBuffer
@testable import MIME

func parse(_ s: String) -> MIMEMessage { MIMEParser().parse(Array(s.utf8)) }

@Suite struct MIMEParserTests {
    @Test func unfoldingAndLFInput() {
        let m = parse("Subject: a\n  folded\n\tsubject\nFrom: A <a@x.test>\n\nbody\n")
        #expect(m.subject == "a  folded\tsubject")
        #expect(m.from.first?.address == "a@x.test")
        #expect(m.root.body == Array("body\n".utf8))
        #expect(m.diagnostics.isEmpty)
    }

    @Test func fieldValuesAreTrimmedUnfoldedAndLatin1WhenNotUTF8() {
        let m = parse("Subject:\n  only continuation \nX-Empty:\nX-Spaces:   \t \nTo:  b@y.test  \n\nbody\n")
        #expect(m.root.headers["Subject"] == "only continuation")
        #expect(m.root.headers["X-Empty"] == "")
        #expect(m.root.headers["X-Spaces"] == "")
        #expect(m.root.headers["To"] == "b@y.test")
        let latin1 = MIMEParser().parse(Array("Subject: caf".utf8) + [0xE9] + Array("\n\nbody\n".utf8))
        #expect(latin1.root.headers["Subject"] == "café")
        #expect(m.root.headers.fields.map(\.name) == ["Subject", "X-Empty", "X-Spaces", "To"])
    }

    @Test func multipartWithPreambleEpilogueAndNesting() {
        let raw = """
        Content-Type: multipart/mixed; boundary="outer"\r
        \r
        preamble\r
        --outer\r
        Content-Type: multipart/alternative; boundary=inner\r
        \r
        --inner\r
        \r
        plain\r
        --inner\r
        Content-Type: text/html\r
        \r
        <b>html</b>\r
        --inner--\r
        --outer  \r
        Content-Type: application/octet-stream; name="x.bin"\r
        Content-Transfer-Encoding: base64\r
        \r
        AAEC\r
        --outer--\r
        epilogue\r

        """
        let m = parse(raw)
        #expect(m.diagnostics.isEmpty)
        #expect(m.allParts.map(\.contentType.mimeType) == ["multipart/mixed", "multipart/alternative", "text/plain", "text/html", "application/octet-stream"])
        #expect(m.textBody == "plain")
        #expect(m.attachments.first?.decodedBody == [0, 1, 2])
        #expect(m.attachments.first?.filename == "x.bin")
    }

    @Test func delimitersCountOnlyAtTheStartOfALine() {
        let raw = "Content-Type: multipart/mixed; boundary=b\n\n--b\n\nsee --b in the middle\n --b indented\n--bx longer\n"
            + "--b  \t\n\nsecond\n--b--\nepilogue --b--\n"
        let m = parse(raw)
        #expect(m.diagnostics.isEmpty)
        #expect(m.root.children.map { String(decoding: $0.body, as: UTF8.self) }
            == ["see --b in the middle\n --b indented\n--bx longer", "second"])
        // A delimiter on the first line of the body has no line break before it; CRLF bodies end a
        // part before the CRLF.
        let crlf = parse("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\none\r\n--b\r\n\r\ntwo\r\n--b--")
        #expect(crlf.root.children.map { String(decoding: $0.body, as: UTF8.self) } == ["one", "two"])
        let unclosed = parse("Content-Type: multipart/mixed; boundary=b\n\n--b\n\nlast part")
        #expect(unclosed.root.children.map { String(decoding: $0.body, as: UTF8.self) } == ["last part"])
        #expect(unclosed.diagnostics.map(\.code) == [.missingCloseDelimiter])
    }

    @Test func embeddedMessageAndDigest() {
        let raw = "Content-Type: multipart/digest; boundary=b\n\n--b\n\nSubject: inner\n\nhello\n--b--\n"
        let m = parse(raw)
        #expect(m.allParts.map(\.contentType.mimeType) == ["multipart/digest", "message/rfc822", "text/plain"])
        #expect(m.root.children[0].children[0].headers.decoded("Subject") == "inner")
    }

    @Test func deliveryStatusBlocks() {
        let raw = "Content-Type: message/delivery-status\n\nReporting-MTA: dns; a.test\n\nFinal-Recipient: rfc822; b@x.test\nAction: failed\n"
        let m = parse(raw)
        #expect(m.root.children.count == 2)
        #expect(m.root.children[1].headers["Action"] == "failed")
    }

    @Test func charsets() {
        let raw: [UInt8] = Array("Content-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: 8bit\n\ncaf".utf8) + [0xE9]
        #expect(MIMEParser().parse(raw).textBody == "café")
        let gb: [UInt8] = Array("Content-Type: text/plain; charset=gb2312\n\n".utf8) + [0xC4, 0xE3, 0xBA, 0xC3]
        #expect(MIMEParser().parse(gb).textBody == "你好")
        var buffer = ByteBuffer()
        buffer.writeBytes(gb)
        #expect(MIMEParser().parse(buffer).textBody == "你好")
    }

    @Test(arguments: [
        ("Content-Type: multipart/mixed\n\nbody", MIMEDiagnostic.Code.missingBoundary),
        ("Content-Type: multipart/mixed; boundary=x\n\nno delimiters here", .boundaryNotFound),
        ("Content-Type: multipart/mixed; boundary=x\n\n--x\n\nunclosed", .missingCloseDelimiter),
        ("Content-Type: nonsense\n\nbody", .invalidContentType),
        ("Subject: x\nthis is not a header\n\nbody", .malformedHeaderLine),
        (" leading continuation\nSubject: x\n\nbody", .continuationWithoutField),
        ("Content-Transfer-Encoding: base64\n\n!!!!aGk=", .invalidBase64),
        ("Content-Transfer-Encoding: quoted-printable\n\nbad=ZZ", .invalidQuotedPrintable),
        ("Content-Transfer-Encoding: x-weird\n\nbody", .unknownTransferEncoding),
        ("Content-Type: text/plain; charset=x-no-such-charset\n\nbody", .unknownCharset),
    ])
    func diagnostics(raw: String, code: MIMEDiagnostic.Code) {
        let m = parse(raw)
        #expect(m.diagnostics.map(\.code).contains(code), "\(m.diagnostics)")
    }

    @Test func depthLimit() {
        var raw = ""
        for i in 0..<200 { raw += "Content-Type: multipart/mixed; boundary=b\(i)\n\n--b\(i)\n" }
        raw += "\nleaf\n"
        let m = parse(raw)
        #expect(m.diagnostics.contains { $0.code == .depthLimitExceeded })
        var depth = 0
        var p = m.root
        while let c = p.children.first { p = c; depth += 1 }
        #expect(depth <= 50)
    }

    @Test func partLimit() {
        var raw = "Content-Type: multipart/mixed; boundary=b\n\n"
        for _ in 0..<200 { raw += "--b\n\nx\n" }
        raw += "--b--\n"
        var config = MIMEParser.Configuration()
        config.maximumParts = 50
        let m = MIMEParser(configuration: config).parse(Array(raw.utf8))
        #expect(m.allParts.count <= 50)
        #expect(m.diagnostics.contains { $0.code == .partLimitExceeded })
    }

    @Test func headerLimit() {
        var raw = ""
        for i in 0..<100 { raw += "X-H\(i): v\n" }
        raw += "\nbody"
        var config = MIMEParser.Configuration()
        config.maximumHeaderFields = 10
        let m = MIMEParser(configuration: config).parse(Array(raw.utf8))
        #expect(m.headers.count <= 10)
        #expect(m.root.body == Array("body".utf8))
    }

    @Test func emptyAndDegenerateInputs() {
        for raw in ["", "\n", "\r\n\r\n", "Subject", ":", "From mbox line\nSubject: s\n\n", "--\n--\n"] {
            _ = parse(raw)
        }
        #expect(parse("From someone Sat Jan  3 01:05:34 1996\nSubject: s\n\nb").subject == "s")
    }

    /// Random mutations of fixtures: the parser must terminate without crashing.
    @Test func fuzzMutations() {
        var built = MessageBuilderTests().sample()
        built.attachments.append(.init(filename: "b.bin", data: Array(repeating: 7, count: 300)))
        let fixtures: [[UInt8]] = [
            built.render(),
            Array("Content-Type: multipart/mixed; boundary=\"b\"\n\n--b\nContent-Type: message/rfc822\n\nSubject: =?utf-8?b?5Lit?=\nContent-Type: multipart/alternative; boundary=c\n\n--c\nContent-Transfer-Encoding: quoted-printable\n\na=3Db=\n--c--\n--b--\n".utf8),
            Array("To: \"a\" <b@c>, (x) d@e, g: h@i;\nContent-Disposition: attachment; filename*0*=utf-8''%E4; filename*1*=%B8%AD\n\nx".utf8),
        ]
        var rng = SplitMix(seed: 0x5EED)
        let interesting: [UInt8] = Array("-=?\r\n:;\"\\<>()*%'B".utf8) + [0x00, 0xFF, 0xE4]
        var iterations = 0
        for fixture in fixtures {
            for _ in 0..<300 {
                var bytes = fixture
                for _ in 0..<(1 + Int(rng.next() % 8)) {
                    guard !bytes.isEmpty else { break }
                    let pos = Int(rng.next() % UInt64(bytes.count))
                    switch rng.next() % 5 {
                    case 0: bytes[pos] = UInt8(truncatingIfNeeded: rng.next())
                    case 1: bytes[pos] = interesting[Int(rng.next() % UInt64(interesting.count))]
                    case 2: bytes.remove(at: pos)
                    case 3: bytes.insert(interesting[Int(rng.next() % UInt64(interesting.count))], at: pos)
                    default:
                        let len = min(bytes.count - pos, Int(rng.next() % 64))
                        bytes.insert(contentsOf: Array(bytes[pos..<(pos + len)]), at: pos)
                    }
                }
                let m = MIMEParser().parse(bytes)
                for p in m.allParts {
                    _ = p.text
                    _ = p.filename
                    _ = p.decodedBody
                }
                _ = (m.subject, m.from, m.to, m.cc, m.attachments.count)
                iterations += 1
            }
        }
        #expect(iterations == 900)
    }
}

struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite struct MIMEPartRangeTests {
    @Test func rangesLocateHeadersAndBodiesInTheInput() {
        let raw = Array("From ignored\nSubject: r\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: in\r\n\r\nbody\r\n--b--\r\n".utf8)
        var configuration = MIMEParser.Configuration()
        configuration.retainsBodies = false
        let m = MIMEParser(configuration: configuration).parse(raw)
        func text(_ r: Range<Int>?) -> String { r.map { String(decoding: raw[$0], as: UTF8.self) } ?? "nil" }
        #expect(text(m.root.ranges?.header) == "Subject: r\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n")
        let part = m.root.children[0]
        #expect(text(part.ranges?.header) == "Content-Type: message/rfc822\r\n\r\n")
        #expect(text(part.ranges?.body) == "Subject: in\r\n\r\nbody")
        #expect(text(part.children[0].ranges?.header) == "Subject: in\r\n\r\n")
        #expect(text(part.children[0].ranges?.body) == "body")
        #expect(part.children[0].body.isEmpty)
        // With the default configuration leaves keep their bodies, and the ranges are the same.
        let kept = MIMEParser().parse(raw)
        #expect(kept.root.children[0].children[0].body == Array("body".utf8))
        #expect(kept.root.children[0].children[0].ranges == part.children[0].ranges)
    }

    @Test func transferDecodedMessagesHaveNoRanges() {
        let raw = Array("Content-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\nU3ViamVjdDogaW4KCmJvZHkK\n".utf8)
        let m = MIMEParser().parse(raw)
        #expect(m.root.ranges != nil)
        #expect(m.root.children[0].ranges == nil)
        #expect(m.root.children[0].body == Array("body\n".utf8))
        #expect(m.root.children[0].headers["Subject"] == "in")
    }
}
