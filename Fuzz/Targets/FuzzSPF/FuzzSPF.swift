// SPF record parsing (RFC 7208 §4.5, §12): records, macro-strings in both contexts, and the address
// forms. Nothing may crash; a record that parses must have only valid CIDR lengths and directives
// whose text is what the record said. Also the other sender-side text of MailAuth: SRS addresses
// (what SRS forwarding makes reverses to what it was given) and `rua=` mailto: URIs, and report text
// escaping (no markup survives).
import FuzzSupport
import MailAuth

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSPF(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = FuzzInput(data, size, controlBytes: 0)
    let bytes = Array(input.payload)
    _ = SPFRecord.isSPF(bytes)
    var record = bytes
    if !SPFRecord.isSPF(record) { record = Array("v=spf1 ".utf8) + bytes }
    if let parsed = try? SPFRecord(parsing: record) {
        for d in parsed.directives {
            fuzzCheck(!d.text.isEmpty, "a directive without text")
            switch d.mechanism {
            case .a(_, let v4, let v6), .mx(_, let v4, let v6):
                fuzzCheck((0...32).contains(v4) && (0...128).contains(v6), "CIDR out of range: \(d.text)")
            case .ip4(let a, let p):
                fuzzCheck(a.count == 4 && (0...32).contains(p), "bad ip4: \(d.text)")
            case .ip6(let a, let p):
                fuzzCheck(a.count == 16 && (0...128).contains(p), "bad ip6: \(d.text)")
            default:
                break
            }
        }
    }
    _ = try? SPFMacroString(parsing: bytes, allowExplanationLetters: true)
    _ = try? SPFMacroString(parsing: bytes, allowExplanationLetters: false)

    let text = String(decoding: bytes, as: UTF8.self)
    let srs = SRSRewriter(secret: "fuzzing secret, not for real use")
    _ = srs.reverse(text, now: 1_796_472_000)
    if text.contains("@"), !text.hasPrefix("@"), !text.hasSuffix("@") {
        let forwarded = srs.forward(text, forwarderDomain: "fwd.example", now: 1_796_472_000)
        let host = text[text.index(after: text.lastIndex(of: "@")!)...]
        if forwarded != text, !SRSRewriter.looksLikeSRS(String(text.prefix(5))), !host.contains("=") {
            // SRS0 of an ordinary address leads back to it (the local part and domain as given; a
            // domain cannot hold "=", the separator).
            let back = srs.reverse(forwarded, now: 1_796_472_000)
            fuzzCheck(back == .success(text) || text.contains("\""), "SRS round trip: \(text) -> \(forwarded) -> \(back)")
        }
    }
    _ = DMARCAggregateReport.mailto(text)
    let escaped = DMARCAggregateReport.escape(text)
    fuzzCheck(!escaped.contains("<") && !escaped.contains(">") && !escaped.unicodeScalars.contains { $0.value < 0x20 },
              "markup or control characters left in report text")
    return 0
}
