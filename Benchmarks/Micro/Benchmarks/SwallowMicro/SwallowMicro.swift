import Benchmark
import Foundation
import DNSCore
import MailAuth
import MailCore
import MIME
import NIOCore
import SMTPCore

// Allocation budgets (mallocs per operation, p90) are checked by `thresholds:`; see docs/BENCHMARKS.md.

/// A pipelined client group: EHLO, MAIL with parameters, 3 RCPTs, DATA.
let commandGroup = ByteBuffer(string: "EHLO client.example.net\r\nMAIL FROM:<alice@example.test> SIZE=12345 BODY=8BITMIME\r\n"
    + "RCPT TO:<bob@example.test>\r\nRCPT TO:<carol@example.test>\r\nRCPT TO:<dave@example.test>\r\nDATA\r\n")

/// 100 KiB of content with dot-stuffed lines every fifth line, then the terminator.
let dataStream: ByteBuffer = {
    var s = "Subject: benchmark\r\n\r\n"
    var i = 0
    while s.utf8.count < 100 * 1024 {
        s += i % 5 == 0 ? "..a line that starts with a dot after unstuffing\r\n" : "an ordinary line of text in the body of the message, 72 octets wide....\r\n"
        i += 1
    }
    return ByteBuffer(string: s + ".\r\n")
}()

/// A message like the seeds send: text + HTML alternative + a 32 KiB attachment, UTF-8 headers.
let builtMessage: [UInt8] = makeMessage()

func makeMessage() -> [UInt8] {
    var b = MessageBuilder()
    b.from = MailboxAddress(displayName: "发件人名称", address: "alice@example.test")
    b.to = [MailboxAddress(displayName: "Bob", address: "bob@example.test")]
    b.subject = "你好，世界 — a benchmark message"
    b.date = "Sat, 22 Nov 2025 10:00:00 +0000"
    b.messageID = "bench@example.test"
    b.textBody = String(repeating: "Grüße aus der Benchmark-Suite. ", count: 100)
    b.htmlBody = "<html><body>" + String(repeating: "<p>Grüße aus der Benchmark-Suite.</p>", count: 100) + "</body></html>"
    b.attachments = [.init(filename: "report.pdf", data: (0..<32768).map { UInt8(truncatingIfNeeded: $0 &* 7) })]
    return b.build().bytes
}

/// An MX answer with 5 exchanges and their A records (compressed names).
let dnsAnswer: [UInt8] = {
    let domain = try! DNSName("example.test")
    var answers: [DNSRecord] = []
    var additionals: [DNSRecord] = []
    for i in 1...5 {
        let mx = try! DNSName("mx\(i).example.test")
        answers.append(DNSRecord(name: domain, ttl: 300, data: .mx(preference: UInt16(i * 10), exchange: mx)))
        additionals.append(DNSRecord(name: mx, ttl: 300, data: .a(IPv4Address(bytes: [192, 0, 2, UInt8(i)])!)))
    }
    let message = DNSMessage(header: DNSHeader(id: 7, isResponse: true, recursionDesired: true, recursionAvailable: true),
                             questions: [DNSQuestion(name: domain, type: .mx)], answers: answers, additionals: additionals)
    return DNSMessageEncoder.encode(message)
}()

/// The corpus `Benchmarks/mime_compare.py` times with Python's `email` and `fast-mail-parser`.
let corpusDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("../../corpus").standardized.path
func corpus(_ name: String) -> [UInt8] {
    guard let d = FileManager.default.contents(atPath: corpusDirectory + "/" + name) else { fatalError("missing corpus file \(name)") }
    return [UInt8](d)
}

/// The same work as the Python side: structure, Subject and From decoded, every leaf part decoded.
func parseCompletely(_ bytes: [UInt8]) -> Int {
    let m = MIMEParser().parse(bytes)
    var n = (m.subject?.utf8.count ?? 0) + m.from.count
    for part in m.allParts where part.children.isEmpty {
        if part.contentType.type == "text" { n += part.text?.utf8.count ?? 0 } else { n += part.decodedBody.count }
    }
    return n
}

/// A 10 KiB message (plain text, the usual header fields) for DKIM signing and verification.
let dkimMessage: [UInt8] = {
    var s = "From: Alice <alice@example.test>\r\nTo: Bob <bob@example.net>\r\nSubject: numbers for the quarter\r\n"
        + "Date: Fri, 04 Dec 2026 10:00:00 +0000\r\nMessage-ID: <bench-1@example.test>\r\nMIME-Version: 1.0\r\n"
        + "Content-Type: text/plain; charset=utf-8\r\n\r\n"
    while s.utf8.count < 10 * 1024 { s += "A line of body text  with  some   runs of spaces, as mail has.\r\n" }
    return Array(s.utf8)
}()
let dkimEd25519 = DKIMPrivateKey.ed25519(.init())
let dkimRSA = DKIMPrivateKey.rsa(try! .init(keySize: .bits2048))

/// `message` with a signature by `key` in front, and the key's record.
func signedForBenchmark(_ key: DKIMPrivateKey) -> (DKIMMessage, String) {
    let m = DKIMMessage(dkimMessage)
    let field = try! DKIMSigner(domain: "example.test", selector: "s", key: key)
        .signatureField(fields: m.fields, bodyHash: m.bodyHash(.relaxed).hash, time: 1_800_000_000)
    return (DKIMMessage(field + dkimMessage), key.keyRecord)
}

let metrics: [BenchmarkMetric] = [.wallClock, .throughput, .mallocCountTotal, .instructions]

/// What the harness itself allocates per measured operation (each iteration is one measurement): the
/// "Harness: empty operation" benchmark shows it; `--allocation-stacks` runs see only the code under test.
let harnessMallocs = 16

/// `mallocs`: what one operation of our code may allocate. The threshold the framework checks is that
/// plus the harness's own allocations; the table in docs/BENCHMARKS.md shows both.
func budget(_ mallocs: Int) -> Benchmark.Configuration {
    .init(metrics: metrics, maxDuration: .seconds(2),
          thresholds: [.mallocCountTotal: .init(absolute: [.p90: mallocs + harnessMallocs])])
}

let benchmarks: @Sendable () -> Void = {
    Benchmark("Harness: empty operation", configuration: .init(metrics: metrics, maxDuration: .seconds(1))) { b in
        for i in b.scaledIterations { blackHole(i) }
    }
    Benchmark("SMTP command line: MAIL FROM with parameters", configuration: budget(8)) { b in
        let line = Array("MAIL FROM:<alice@example.test> SIZE=12345 BODY=8BITMIME".utf8)
        for _ in b.scaledIterations { blackHole(SMTPCommandLineParser.parse(line)) }
    }
    Benchmark("SMTP parser: pipelined group of 6 commands", configuration: budget(40)) { b in
        for _ in b.scaledIterations {
            var p = SMTPCommandParser()
            p.append(commandGroup)
            while let item = p.next() { blackHole(item) }
        }
    }
    Benchmark("DATA: dot-unstuffing 100 KiB", configuration: budget(64)) { b in
        for _ in b.scaledIterations {
            var p = SMTPCommandParser()
            p.beginData()
            p.append(dataStream)
            while let item = p.next() { blackHole(item) }
        }
    }
    Benchmark("MIME: parse text+HTML+32 KiB attachment", configuration: budget(400)) { b in
        let parser = MIMEParser()
        for _ in b.scaledIterations { blackHole(parser.parse(builtMessage)) }
    }
    Benchmark("MIME: build text+HTML+32 KiB attachment", configuration: budget(400)) { b in
        for _ in b.scaledIterations { blackHole(makeMessage()) }
    }
    let multipart = corpus("multipart.eml")
    let plain = corpus("plain.eml")
    Benchmark("MIME corpus: multipart.eml, parse and decode every part", configuration: budget(600)) { b in
        for _ in b.scaledIterations { blackHole(parseCompletely(multipart)) }
    }
    Benchmark("MIME corpus: plain.eml, parse and decode", configuration: budget(100)) { b in
        for _ in b.scaledIterations { blackHole(parseCompletely(plain)) }
    }
    Benchmark("DNS: parse MX answer with 5 exchanges + glue", configuration: budget(60)) { b in
        for _ in b.scaledIterations { blackHole(try? DNSMessageParser.parse(dnsAnswer)) }
    }
    // DKIM (issue 18): what one message costs to sign (body hash + header + signature) and to verify.
    Benchmark("DKIM: relaxed body hash of 10 KiB", configuration: budget(24)) { b in
        let m = DKIMMessage(dkimMessage)
        for _ in b.scaledIterations { blackHole(m.bodyHash(.relaxed)) }
    }
    for (label, key) in [("Ed25519", dkimEd25519), ("RSA-2048", dkimRSA)] {
        Benchmark("DKIM: sign 10 KiB, \(label)", configuration: budget(label == "Ed25519" ? 120 : 130)) { b in
            let signer = DKIMSigner(domain: "example.test", selector: "s", key: key)
            for _ in b.scaledIterations {
                let m = DKIMMessage(dkimMessage)
                blackHole(try? signer.signatureField(fields: m.fields, bodyHash: m.bodyHash(.relaxed).hash, time: 1_800_000_000))
            }
        }
        let (signed, record) = signedForBenchmark(key)
        Benchmark("DKIM: verify 10 KiB, \(label)", configuration: budget(label == "Ed25519" ? 150 : 166)) { b in
            for _ in b.scaledIterations { blackHole(DKIMVerifier.verify(signed, signatureAt: 0, keyRecord: record, now: 1_800_000_001)) }
        }
    }
    Benchmark("SPF: parse a record with 8 terms", configuration: budget(64)) { b in
        let record = Array("v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 a mx/24 include:_spf.example.net exists:%{i}._spf.%{d} ~all exp=why.%{d}".utf8)
        for _ in b.scaledIterations { blackHole(try? SPFRecord(parsing: record)) }
    }
}
