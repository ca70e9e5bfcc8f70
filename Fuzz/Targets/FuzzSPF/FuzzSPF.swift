// SPF record parsing (RFC 7208 §4.5, §12): records, macro-strings in both contexts, and the address
// forms. Nothing may crash; a record that parses must have only valid CIDR lengths and directives
// whose text is what the record said.
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
    return 0
}
