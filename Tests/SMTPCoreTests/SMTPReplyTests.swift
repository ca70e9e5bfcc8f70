import MailCore
import NIOCore
import SMTPCore
import Testing

@Suite("SMTPReply encoding")
struct SMTPReplyTests {
    @Test("wire lines", arguments: [
        (SMTPReply(code: 250, .init(2, 0, 0), "Ok"), ["250 2.0.0 Ok"]),
        (SMTPReply(code: 354, nil, "End data with <CR><LF>.<CR><LF>"), ["354 End data with <CR><LF>.<CR><LF>"]),
        (SMTPReply(code: 250, nil, ["mx.example.test", "PIPELINING", "SIZE 10"]), ["250-mx.example.test", "250-PIPELINING", "250 SIZE 10"]),
        (SMTPReply(code: 550, .init(5, 1, 1), ["first", "second"]), ["550-5.1.1 first", "550 5.1.1 second"]),
        (SMTPReply(code: 250, .init(2, 0, 0), ""), ["250 2.0.0"]),
        (SMTPReply(code: 250, nil, [String]()), ["250 "]),
        (SMTPReply(code: 550, .init(5, 7, 1), "inject\r\n250 ok\rx\ny"), ["550 5.7.1 inject250 okxy"]),
    ])
    func lines(_ reply: SMTPReply, _ expected: [String]) {
        #expect(reply.encodedLines() == expected)
        #expect(reply.description == expected.joined(separator: "\n"))
        var buffer = ByteBuffer()
        let n = buffer.writeSMTPReply(reply)
        let wire = expected.map { $0 + "\r\n" }.joined()
        #expect(buffer.readString(length: buffer.readableBytes) == wire)
        #expect(n == wire.utf8.count)
    }

    @Test("classes", arguments: [(220, true, false, false), (354, false, false, false), (421, false, true, false), (554, false, false, true)])
    func classes(_ code: Int, _ positive: Bool, _ transient: Bool, _ permanent: Bool) {
        let r = SMTPReply(code: code, nil, "x")
        #expect(r.isPositive == positive)
        #expect(r.isTransient == transient)
        #expect(r.isPermanent == permanent)
    }

    @Test("canned replies")
    func canned() {
        #expect(SMTPReply.tooManyConnections("mx.example.test").encodedLines() == ["421 4.7.0 mx.example.test Error: too many connections, try again later"])
        #expect(SMTPReply.relayDenied.encodedLines() == ["554 5.7.1 Relay access denied"])
        #expect(SMTPReply.unknownUser.encodedLines() == ["550 5.1.1 Recipient address rejected: User unknown"])
        #expect(SMTPReply.localError.encodedLines() == ["451 4.3.0 Local error in processing, try again later"])
        #expect(SMTPReply.insufficientStorage.encodedLines() == ["452 4.3.1 Insufficient system storage"])
    }
}

@Suite("SMTPSessionFacts")
struct SMTPSessionFactsTests {
    static let tls = TLSFacts(version: "TLSv1.3", cipher: "TLS_AES_256_GCM_SHA384")

    @Test("Received: with-protocol keyword (RFC 3848, RFC 6531 §3.7.3)", arguments: [
        (SMTPSessionFacts(heloName: "c", isExtended: false), false, "SMTP"),
        (SMTPSessionFacts(heloName: "c", isExtended: false, tls: tls, authenticatedAs: "u"), true, "SMTP"),
        (SMTPSessionFacts(heloName: "c", isExtended: true), false, "ESMTP"),
        (SMTPSessionFacts(heloName: "c", isExtended: true, tls: tls), false, "ESMTPS"),
        (SMTPSessionFacts(heloName: "c", isExtended: true, authenticatedAs: "u"), false, "ESMTPA"),
        (SMTPSessionFacts(heloName: "c", isExtended: true, tls: tls, authenticatedAs: "u"), false, "ESMTPSA"),
        (SMTPSessionFacts(heloName: "c", isExtended: true), true, "UTF8SMTP"),
        (SMTPSessionFacts(heloName: "c", isExtended: true, tls: tls), true, "UTF8SMTPS"),
        (SMTPSessionFacts(heloName: "c", isExtended: true, authenticatedAs: "u"), true, "UTF8SMTPA"),
        (SMTPSessionFacts(heloName: "c", isExtended: true, tls: tls, authenticatedAs: "u"), true, "UTF8SMTPSA"),
    ])
    func receivedProtocol(_ facts: SMTPSessionFacts, _ utf8: Bool, _ expected: String) {
        #expect(facts.receivedProtocol(smtpUTF8: utf8) == expected)
    }
}
