import MailCore
import Testing

/// RFC 3501 §5.1.3 modified UTF-7: examples, `&-`, random round trips, strict rejection.
@Suite struct ModifiedUTF7Tests {
    @Test(arguments: [
        ("INBOX", "INBOX"),
        ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),  // RFC 3501 §5.1.3
        ("Entwürfe", "Entw&APw-rfe"),  // what Dovecot writes on disk
        ("A&B", "A&-B"),
        ("&", "&-"),
        ("&&", "&-&-"),
        ("", ""),
        ("Ünïcödé", "&ANw-n&AO8-c&APY-d&AOk-"),
        ("😀", "&2D3eAA-"),  // astral plane: a surrogate pair
        ("tab\there", "tab&AAk-here"),
    ])
    func encodesAndDecodes(_ plain: String, _ encoded: String) {
        #expect(ModifiedUTF7.encode(plain) == encoded)
        #expect(ModifiedUTF7.decode(encoded) == plain)
    }

    @Test func randomUnicodeRoundTrips() {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        for _ in 0..<2000 {
            var s = String.UnicodeScalarView()
            for _ in 0..<Int(next() % 12) {
                let pick = next() % 4
                let value: UInt32
                switch pick {
                case 0: value = UInt32(0x20 + next() % 0x5F)  // printable ASCII, incl. &
                case 1: value = UInt32(next() % 0x800)
                case 2: value = UInt32(0xE000 + next() % 0x2000)
                default: value = UInt32(0x10000 + next() % 0x100000)  // astral
                }
                if let scalar = Unicode.Scalar(value) { s.append(scalar) }
            }
            let plain = String(s)
            let encoded = ModifiedUTF7.encode(plain)
            #expect(encoded.utf8.allSatisfy { $0 >= 0x20 && $0 <= 0x7E })
            #expect(ModifiedUTF7.decode(encoded) == plain, "\(encoded)")
        }
    }

    @Test(arguments: [
        "&",  // bare ampersand at the end
        "A&B",  // & not escaped: "B" is no valid shift (unterminated)
        "&U,BTFw",  // unterminated shift
        "&U,BTFw-&ZeVnLIqe-",  // two shifts in a row: not minimal
        "&AGE-",  // "a" encoded: printable ASCII must be direct
        "&ACY-",  // "&" encoded instead of "&-"
        "&APw",  // unterminated
        "&A-",  // one character: no whole octet
        "&APx-",  // non-zero padding bits
        "&APwA-",  // a half UTF-16 unit (3 octets)
        "&APw/-",  // "/" is not in the modified alphabet
        "&APw=-",  // padding is not allowed
        "&2D0-",  // a lone high surrogate
        "&3gA-",  // a lone low surrogate
        "tab\there",  // a control character outside a shift
        "caf\u{E9}",  // 8-bit
        "&2D3eAAA-",  // a whole unused base64 character (non-minimal)
    ])
    func rejectsBrokenInput(_ broken: String) {
        #expect(ModifiedUTF7.decode(broken) == nil)
    }
}
