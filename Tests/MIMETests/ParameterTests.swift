import Testing
@testable import MIME

@Suite struct ParameterTests {
    @Test(arguments: [
        ("text/plain; charset=us-ascii", "charset", "us-ascii"),
        ("text/plain; charset=\"UTF-8\"", "charset", "UTF-8"),
        ("text/plain;charset=utf-8 (comment)", "charset", "utf-8"),
        ("application/x-stuff; title*=us-ascii'en-us'This%20is%20%2A%2A%2Afun%2A%2A%2A", "title", "This is ***fun***"),
        ("application/x-stuff; title*0*=us-ascii'en'This%20is%20even%20more%20; title*1*=%2A%2A%2Afun%2A%2A%2A%20; title*2=\"isn't it!\"",
         "title", "This is even more ***fun*** isn't it!"),
        ("attachment; filename*=UTF-8''%E4%B8%AD%E6%96%87.pdf", "filename", "中文.pdf"),
        ("attachment; filename*0*=UTF-8''%E4%B8; filename*1*=%AD.txt", "filename", "中.txt"),
        ("attachment; filename*=iso-8859-1''caf%E9.txt", "filename", "café.txt"),
        ("attachment; filename=\"plain.txt\"; filename*=UTF-8''better.txt", "filename", "better.txt"),
        ("attachment; filename=\"=?UTF-8?B?5Lit5paH?=.txt\"", "filename", "中文.txt"),
        ("attachment; filename=my file.pdf", "filename", "my file.pdf"),
        ("attachment; filename=\"quote\\\"d.txt\"", "filename", "quote\"d.txt"),
        ("attachment; filename=\"unterminated", "filename", "unterminated"),
        ("attachment;; ; filename=x.txt;", "filename", "x.txt"),
        ("attachment; FILENAME=upper.txt", "filename", "upper.txt"),
        ("attachment; filename*1=b; filename*0=a", "filename", "ab"),
        ("attachment; filename=first.txt; FileName=second.txt", "filename", "first.txt"),
        ("attachment; filename=\"Grüße aus Köln.txt\"", "filename", "Grüße aus Köln.txt"),
        ("attachment; filename=  Grüße.txt  ", "filename", "Grüße.txt"),
        ("text/plain (a comment; with a semicolon) ; charset = \"utf-8\" (trailing)", "charset", "utf-8"),
        ("attachment; name\t=\r\n value", "name", "value"),
    ])
    func parameter(header: String, name: String, expected: String) {
        #expect(ParameterizedValue.parse(header)[parameter: name] == expected)
    }

    @Test func contentType() {
        let ct = ContentType(headerValue: "Multipart/Mixed; boundary=\"----=_Part_0\"")
        #expect(ct?.mimeType == "multipart/mixed")
        #expect(ct?.boundary == "----=_Part_0")
        #expect(ContentType(headerValue: "garbage") == nil)
        #expect(ContentType(headerValue: "text/") == nil)
    }

    @Test(arguments: ["report.pdf", "中文文件名.docx", String(repeating: "很长的文件名", count: 20) + ".txt",
                      "a file; with \"quotes\" and = signs.txt", String(repeating: "long-ascii-name-", count: 10) + ".zip"])
    func rfc2231RoundTrip(filename: String) {
        let sections = MessageBuilder.rfc2231Parameter("filename", filename)
        for s in sections { #expect(s.utf8.count <= 76) ; #expect(s.isASCII) }
        let header = "attachment; " + sections.joined(separator: ";\r\n ")
        #expect(ContentDisposition(headerValue: header).filename == filename)
    }

    @Test(arguments: [("x.PDF", "application/pdf"), ("photo.jpeg", "image/jpeg"), ("noext", "application/octet-stream"),
                      ("archive.tar.gz", "application/gzip"), ("中文.png", "image/png")])
    func mediaTypes(name: String, expected: String) {
        #expect(MediaTypes.forFilename(name) == expected)
    }
}
