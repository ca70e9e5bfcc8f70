import IMAPCore
import Testing

/// BODYSTRUCTURE reads the `Content-*` fields in one pass: names in any case, the first of a
/// repeated field, the type as written; an invalid type is text/plain.
@Suite struct BodyStructureFieldTests {
    private func structure(_ message: String) -> BodyStructure {
        MessageStructure(parsing: Array(message.split(separator: "\n", omittingEmptySubsequences: false).joined(separator: "\r\n").utf8)).bodyStructure
    }

    @Test func fieldNamesInAnyCaseAndTheFirstOfARepeatedField() {
        let s = structure("""
            CONTENT-TYPE: Text/HTML ; charset=utf-8
            content-type: text/plain
            Content-transfer-ENCODING: Quoted-Printable
            CONTENT-ID: <a@b>
            content-description: first
            Content-Description: second
            content-md5: abc=
            CONTENT-LANGUAGE: en, de
            Content-Location: http://x.test/a
            Content-X-Other: ignored
            Content-: ignored

            body
            """)
        guard case .singlepart(let p) = s else { Issue.record("not a single part: \(s)"); return }
        #expect(p.type == "Text" && p.subtype == "HTML")
        #expect(p.parameters == [.init(name: "charset", value: "utf-8")])
        #expect(p.encoding == "Quoted-Printable")
        #expect(p.id == "<a@b>" && p.description == "first" && p.md5 == "abc=")
        #expect(p.language == ["en", "de"] && p.location == "http://x.test/a")
        #expect(p.lines == 0)  // "body" without a line end
    }

    @Test func anInvalidTypeIsPlainText() {
        for value in ["text", "text/", "/plain", "te xt/plain", "text/pl@in", ""] {
            let s = structure("Content-Type: \(value)\n\nbody\n")
            guard case .singlepart(let p) = s else { Issue.record("not a single part"); continue }
            #expect(p.type == "text" && p.subtype == "plain", "\(value)")
            #expect(p.parameters == [.init(name: "charset", value: "us-ascii")], "\(value)")
        }
    }

    @Test func linesAreCountedWithoutALastLineEnd() {
        let s = structure("Subject: x\n\none\ntwo\nthree")
        guard case .singlepart(let p) = s else { Issue.record("not a single part"); return }
        #expect(p.lines == 2)
        #expect(p.size == "one\r\ntwo\r\nthree".utf8.count)
    }
}
