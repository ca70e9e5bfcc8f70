import MailTesting
import NIOCore
import SMTPCore
import Testing

/// What the parser produced, normalised so that results do not depend on how bytes were split:
/// adjacent content pieces are merged.
enum ParserEvent: Hashable, CustomStringConvertible {
    case command(SMTPCommand)
    case invalid(SMTPCommandError)
    case data([UInt8])
    case end(ContentFlags)
    case chunk([UInt8])
    case endOfChunk
    case sasl([UInt8])

    var description: String {
        switch self {
        case .command(let c): "command(\(c))"
        case .invalid(let e): "invalid(\(e))"
        case .data(let b): "data(\(show(b)))"
        case .end(let f): "end(bare: \(f.bareLineEnding), long: \(f.overlongLine), octets: \(f.octets))"
        case .chunk(let b): "chunk(\(show(b)))"
        case .endOfChunk: "endOfChunk"
        case .sasl(let l): "sasl(\(show(l)))"
        }
    }
}

func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

func show(_ bytes: [UInt8]) -> String {
    var s = ""
    for b in bytes {
        switch b {
        case 0x0D: s += "\\r"
        case 0x0A: s += "\\n"
        case 0x20..<0x7F: s.append(Character(Unicode.Scalar(b)))
        default: s += "\\x" + String(b, radix: 16)
        }
    }
    return s.count > 120 ? "\(s.prefix(60))…\(s.suffix(40)) (\(bytes.count) octets)" : s
}

/// Drives an ``SMTPCommandParser`` the way the adapter does: after `DATA` it calls `beginData()`,
/// after `BDAT n` it calls `beginChunk(size: n)` (when `followModes` is set).
struct ParserDriver {
    var parser: SMTPCommandParser
    var events: [ParserEvent] = []
    var followModes: Bool

    init(parser: SMTPCommandParser = SMTPCommandParser(), followModes: Bool = true) {
        self.parser = parser
        self.followModes = followModes
    }

    /// Appends `piece` and pulls every item it completes.
    mutating func feed(_ piece: [UInt8]) {
        parser.append(ByteBuffer(bytes: piece))
        drain()
    }

    mutating func drain() {
        while let item = parser.next() {
            switch item {
            case .command(let c):
                events.append(.command(c))
                if followModes {
                    if c == .data { parser.beginData() }
                    if case .bdat(let size, _) = c { parser.beginChunk(size: size) }
                }
            case .invalidCommand(let e): events.append(.invalid(e))
            case .messageData(let b):
                let new = Array(b.readableBytesView)
                #expect(!new.isEmpty, "the parser returned an empty data piece")
                if case .data(let old) = events.last { events[events.count - 1] = .data(old + new) } else { events.append(.data(new)) }
            case .endOfMessage(let f): events.append(.end(f))
            case .chunkData(let b):
                let new = Array(b.readableBytesView)
                if case .chunk(let old) = events.last { events[events.count - 1] = .chunk(old + new) } else { events.append(.chunk(new)) }
            case .endOfChunk: events.append(.endOfChunk)
            case .saslLine(let l): events.append(.sasl(l))
            }
        }
    }

    /// Feeds `input` cut as `splitting` says and returns the normalised events.
    static func run(_ input: [UInt8], _ splitting: WriteSplitting, parser: SMTPCommandParser = SMTPCommandParser()) -> [ParserEvent] {
        var d = ParserDriver(parser: parser)
        for piece in splitting.pieces(of: [input]) { d.feed(piece) }
        return d.events
    }

    /// Feeds `input` in two appends cut at `index`.
    static func run(_ input: [UInt8], splitAt index: Int) -> [ParserEvent] {
        var d = ParserDriver()
        d.feed(Array(input[..<index]))
        d.feed(Array(input[index...]))
        return d.events
    }
}

/// Content flags with the given values (ContentFlags has only a no-argument initialiser).
func flags(octets: Int, bare: Bool = false, long: Bool = false, missingFinalCRLF: Bool = false) -> ContentFlags {
    var f = ContentFlags()
    f.octets = octets
    f.bareLineEnding = bare
    f.overlongLine = long
    f.missingFinalCRLF = missingFinalCRLF
    return f
}

/// Every way of cutting the input used by the drip-feed tests.
let allSplittings = WriteSplitting.all(randomSeeds: 1...12)
