/// Hex octets; spaces are ignored.
func h(_ hex: String) -> [UInt8] {
    let digits = Array(hex.filter { !$0.isWhitespace })
    return stride(from: 0, to: digits.count, by: 2).map { UInt8(String(digits[$0...$0 + 1]), radix: 16)! }
}

/// One label: a length octet and the text.
func l(_ text: String) -> [UInt8] { [UInt8(text.utf8.count)] + Array(text.utf8) }

/// An uncompressed name ending in the root label.
func n(_ name: String) -> [UInt8] { name.split(separator: ".").flatMap { l(String($0)) } + [0] }
