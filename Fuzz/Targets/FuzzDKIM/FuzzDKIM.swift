// DKIM parsing (RFC 6376): tag lists, DKIM-Signature values and key records, and verification of an
// arbitrary message against an arbitrary key record. Nothing may crash; a parsed signature's fields
// must be usable; the body hash must not depend on how the body is split, nor on which update path fed it.
import FuzzSupport
import MailAuth

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDKIM(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = FuzzInput(data, size, controlBytes: 1)
    let bytes = Array(input.payload)
    let text = String(decoding: bytes, as: UTF8.self)
    _ = try? DKIMTagList(parsing: text)
    if let s = try? DKIMSignature(parsing: text) {
        fuzzCheck(!s.domain.isEmpty && !s.selector.isEmpty && !s.signedFields.isEmpty, "parsed signature without d=, s= or h=")
    }
    _ = try? DKIMKeyRecord(parsing: text)
    // The input as a message (its first line ending, if any, splits off a key record).
    let message = DKIMMessage(bytes)
    let record = String(text.prefix { $0 != "\n" })
    for (i, f) in message.fields.enumerated() where f.name.lowercased() == "dkim-signature" {
        _ = DKIMVerifier.verify(message, signatureAt: i, keyRecord: record, now: 1_800_000_000)
    }
    let canonicalization: DKIMCanonicalization = input.control[0] & 1 == 0 ? .simple : .relaxed
    var whole = DKIMBodyHasher(canonicalization)
    whole.update(bytes)
    var split = DKIMBodyHasher(canonicalization)
    let cut = Int(input.control[0] >> 1) % (bytes.count + 1)
    split.update(bytes[..<cut])
    split.update(bytes[cut...])
    fuzzCheck(whole.finalize() == split.finalize(), "body hash depends on the split at \(cut)")
    // The buffer path (runs of ordinary octets copied in one piece) must hash as the octet path does.
    var buffered = DKIMBodyHasher(canonicalization)
    bytes.withUnsafeBytes { raw in
        buffered.update(bufferPointer: UnsafeRawBufferPointer(rebasing: raw[..<cut]))
        buffered.update(bufferPointer: UnsafeRawBufferPointer(rebasing: raw[cut...]))
    }
    fuzzCheck(whole.finalize() == buffered.finalize(), "the buffer path hashes differently (split at \(cut))")
    fuzzCheck(whole.finalizedLength() == buffered.finalizedLength(), "the buffer path counts differently")
    return 0
}
