// Address parsing: the SMTP envelope grammar (RFC 5321/6531) and header address lists (RFC 5322 with
// RFC 2047 words). A parsed envelope address must print to text that parses back to itself.
import FuzzSupport
import MailCore
import MIME

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzAddress(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = FuzzInput(data, size, controlBytes: 1)
    let text = String(decoding: input.payload, as: UTF8.self)
    let allowUTF8 = input.control[0] & 1 == 1
    if case .success(let address) = EmailAddress.parse(text, allowUTF8: allowUTF8) {
        fuzzCheck(!address.description.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F },
                  "control character in \(address.description.debugDescription)")
        let again = EmailAddress.parse(address.description, allowUTF8: allowUTF8)
        fuzzCheck(again == .success(address), "\(text.debugDescription) → \(address) → \(again)")
        _ = address.canonicalKey
        _ = IDNA.toASCII(address.domain)
    }
    _ = MailboxAddress(text)
    _ = AddressListParser.parse(text)
    return 0
}
