// The MIME parser on any bytes (a stored message, `swallow mime show`, a library user's input), and
// everything a reader of the result touches: decoded headers, addresses, bodies, texts, file names.
import FuzzSupport
import MIME

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzMIME(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let parser = MIMEParser()
    let message = parser.parse(bytes)
    _ = (message.subject, message.from, message.to, message.cc, message.replyTo, message.sender)
    _ = (message.textBody, message.htmlBody)
    let parts = message.allParts
    fuzzCheck(parts.count <= parser.configuration.maximumParts + 1, "\(parts.count) parts")
    for part in parts {
        _ = part.decodedBody
        _ = part.text
        _ = part.filename
        _ = part.contentType.parameters
    }
    return 0
}
