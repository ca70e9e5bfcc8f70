import NIOCore
import Testing
@testable import MailServer

/// The LF → CRLF conversion IMAP applies to Maildir files.
@Suite struct IMAPContentTests {
    private func crlf(_ s: String) -> String {
        String(buffer: IMAPMailboxSession.crlf(Array(s.utf8)))
    }

    @Test func bareLineFeedsBecomeCRLF() {
        #expect(crlf("") == "")
        #expect(crlf("a") == "a")
        #expect(crlf("\n") == "\r\n")
        #expect(crlf("\n\n") == "\r\n\r\n")
        #expect(crlf("a\nb\n") == "a\r\nb\r\n")
        #expect(crlf("a\nb") == "a\r\nb")
        #expect(crlf("\na") == "\r\na")
    }

    @Test func existingCRLFAndBareCRStay() {
        #expect(crlf("a\r\nb\r\n") == "a\r\nb\r\n")
        #expect(crlf("a\r\nb\nc\r\n\n") == "a\r\nb\r\nc\r\n\r\n")
        #expect(crlf("a\rb\n") == "a\rb\r\n")
        #expect(crlf("\r\n") == "\r\n")
        #expect(crlf("\r") == "\r")
    }

    @Test func largeMixedInputMatchesALineByLineConversion() {
        var input: [UInt8] = []
        var expected: [UInt8] = []
        var g = SystemRandomNumberGenerator()
        for i in 0..<5000 {
            let line = Array(String(repeating: "x", count: Int.random(in: 0...90, using: &g)).utf8)
            input += line
            expected += line
            if i % 3 == 0 { input += [13, 10] } else { input += [10] }
            expected += [13, 10]
        }
        #expect(Array(IMAPMailboxSession.crlf(input).readableBytesView) == expected)
    }
}
