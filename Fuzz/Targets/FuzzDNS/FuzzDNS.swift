// The resolver's input path: a DNS message from the network (possibly hostile: pointer loops, overruns).
// Whatever parses must encode and parse back to the same message.
import DNSCore
import FuzzSupport

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDNS(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let message = try? DNSMessageParser.parse(bytes) else { return 0 }
    var encoder = DNSMessageEncoder()
    let encoded = encoder.encode(message)
    do {
        let again = try DNSMessageParser.parse(encoded)
        fuzzCheck(again == message, "encode → parse changed the message:\n\(message)\n\(again)")
    } catch {
        fuzzCheck(false, "our own encoding does not parse: \(error)")
    }
    return 0
}
