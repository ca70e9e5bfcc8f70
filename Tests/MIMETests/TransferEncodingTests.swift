import Testing
@testable import MIME

@Suite struct TransferEncodingTests {
    @Test(arguments: [
        ("aGVsbG8=", "hello", true),
        ("aGVs\r\nbG8=", "hello", true),
        ("a G V s b G 8 =", "hello", true),
        ("aGVsbG8", "hello", false),           // missing padding
        ("aGVs*bG8=", "hello", false),         // junk ignored
        ("aGVsbG8=trailing", "hello", true),   // data after padding ignored
        ("", "", true),
        ("YQ==", "a", true),
        ("Y", "", false),
    ])
    func base64(input: String, expected: String, clean: Bool) {
        let r = MIMEBase64.decode(Array(input.utf8))
        #expect(r.bytes == Array(expected.utf8))
        #expect(r.wellFormed == clean)
    }

    @Test func base64ValidationAgreesWithTheDecoder() {
        // Lines of every length and every kind of junk, padding and line break, in random places:
        // the check without output must say what the decoder says, and long runs must decode right.
        var rng = SystemRandomNumberGenerator()
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        let odd = Array("=\r\n \t*-.\u{0}".utf8) + [0xC3, 0xFF]
        for round in 0..<3000 {
            var text: [UInt8] = []
            for _ in 0..<Int.random(in: 0..<200, using: &rng) {
                text.append(Int.random(in: 0..<20, using: &rng) == 0 ? odd.randomElement(using: &rng)! : alphabet.randomElement(using: &rng)!)
            }
            if round % 3 == 0 { text = MIMEBase64.encode(text) }
            #expect(MIMEBase64.isWellFormed(text) == MIMEBase64.decode(text).wellFormed, "\(String(decoding: text, as: UTF8.self).debugDescription)")
        }
        for length in 0..<300 {
            let data = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ length) }
            let encoded = MIMEBase64.encode(data, lineLength: 4 + length % 80)
            let decoded = MIMEBase64.decode(encoded)
            #expect(decoded.bytes == data)
            #expect(decoded.wellFormed && MIMEBase64.isWellFormed(encoded))
        }
    }

    @Test func base64EncodeWraps() {
        let data = [UInt8](repeating: 0xAB, count: 1000)
        let enc = MIMEBase64.encode(data)
        let lines = String(decoding: enc, as: UTF8.self).split(separator: "\r\n")
        #expect(lines.allSatisfy { $0.count <= 76 })
        #expect(MIMEBase64.decode(enc).bytes == data)
    }

    @Test(arguments: [
        ("caf=C3=A9", "café", true),
        ("caf=c3=a9", "café", true),
        ("soft=\r\nbreak", "softbreak", true),
        ("soft=  \r\nbreak", "softbreak", true),
        ("soft=\nbreak", "softbreak", true),
        ("trailing   \r\nspace", "trailing\r\nspace", true),
        ("bad=ZZescape", "bad=ZZescape", false),
        ("end=", "end", true),
        ("a=3D=3Db", "a==b", true),
        ("line1\nline2", "line1\nline2", true),
    ])
    func quotedPrintable(input: String, expected: String, clean: Bool) {
        let r = QuotedPrintable.decode(Array(input.utf8))
        #expect(String(decoding: r.bytes, as: UTF8.self) == expected)
        #expect(r.wellFormed == clean)
    }

    @Test(arguments: [
        "short ascii",
        "tab\tand trailing space \r\nnext",
        String(repeating: "x", count: 300),
        String(repeating: "é", count: 100) + "\r\n" + String(repeating: "中", count: 50),
        "From the start\r\nFrom here too\r\n",
        "=== equals ===",
    ])
    func quotedPrintableRoundTrip(text: String) {
        let enc = QuotedPrintable.encode(Array(text.utf8))
        for line in String(decoding: enc, as: UTF8.self).split(separator: "\r\n", omittingEmptySubsequences: false) {
            #expect(line.utf8.count <= 76)
            #expect(!line.hasPrefix("From "))
            #expect(!(line.last == " " || line.last == "\t"))
        }
        #expect(enc.allSatisfy { $0 < 0x80 })
        #expect(QuotedPrintable.decode(enc).bytes == Array(text.utf8))
    }

    @Test(arguments: [("base64", ContentTransferEncoding.base64), ("Quoted-Printable", .quotedPrintable),
                      (" 7BIT ", .sevenBit), ("8bit", .eightBit), ("binary", .binary), ("x-uuencode", .other("x-uuencode"))])
    func transferEncodingNames(text: String, expected: ContentTransferEncoding) {
        #expect(ContentTransferEncoding(headerValue: text) == expected)
    }
}
