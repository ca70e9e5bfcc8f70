// The SMTP client's input path: replies from a remote server (possibly hostile: CVE-2020-8794 shapes),
// cut into reads, and the EHLO capabilities built from them.
import FuzzSupport
import NIOCore
import SMTPCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSMTPReply(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = FuzzInput(data, size)
    var parser = SMTPReplyParser()
    reading: for read in input.reads {
        parser.append(ByteBuffer(bytes: read))
        while let result = parser.next() {
            switch result {
            case .success(let reply):
                fuzzCheck((100...599).contains(reply.code), "reply code \(reply.code) accepted")
                fuzzCheck(reply.lines.count <= parser.maximumLines, "\(reply.lines.count) lines accepted")
                fuzzCheck(reply.lines.allSatisfy { !$0.utf8.contains(13) && !$0.utf8.contains(10) }, "line end inside a reply line")
                _ = SMTPCapabilities(ehloReply: reply)
            case .failure:
                break reading  // the client closes the connection
            }
        }
        // What is held while waiting for more must stay bounded, whatever the peer sends.
        fuzzCheck(parser.bufferedByteCount <= (parser.maximumLines + 1) * (parser.maximumLineLength + 2),
                  "\(parser.bufferedByteCount) bytes held")
    }
    return 0
}
