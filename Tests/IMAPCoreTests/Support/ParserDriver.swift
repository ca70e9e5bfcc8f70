import IMAPCore
import MailTesting
import NIOCore

/// Feeds writes through an ``IMAPCommandParser`` cut as `splitting` says, answers every literal
/// request with `accept`, and returns the items with adjacent `appendData` chunks merged.
func parseItems(_ writes: [[UInt8]], splitting: WriteSplitting = .asWritten,
                configuration: IMAPCommandParser.Configuration = .init(),
                accept: Bool = true, maxBuffered: Int? = nil) -> [IMAPCommandParser.Item] {
    var parser = IMAPCommandParser(configuration: configuration)
    var out: [IMAPCommandParser.Item] = []
    for piece in splitting.pieces(of: writes) {
        parser.append(ByteBuffer(bytes: piece))
        drain(&parser, into: &out, accept: accept)
        if let maxBuffered { precondition(parser.bufferedByteCount <= maxBuffered, "\(parser.bufferedByteCount) octets buffered") }
    }
    return out
}

/// Returns every item `parser` has now, answering literal requests.
func drain(_ parser: inout IMAPCommandParser, into out: inout [IMAPCommandParser.Item], accept: Bool = true) {
    while let item = parser.next() {
        switch item {
        case .continuationRequested, .appendStarted(_, _, _, synchronizing: true):
            if accept { parser.literalAccepted() } else { parser.literalRejected() }
        case .command(let c) where c.command == .idle:
            parser.setMode(.idle)
        default:
            break
        }
        if case .appendData(var chunk) = item, case .appendData(var previous)? = out.last {
            previous.writeBuffer(&chunk)
            out[out.count - 1] = .appendData(previous)
        } else {
            out.append(item)
        }
    }
}

func parseItems(_ text: String, splitting: WriteSplitting = .asWritten,
                configuration: IMAPCommandParser.Configuration = .init(), accept: Bool = true) -> [IMAPCommandParser.Item] {
    parseItems([Array(text.utf8)], splitting: splitting, configuration: configuration, accept: accept)
}

/// A sequence set from text such as `1:3,5,7:*` (test-side; independent of the parser).
func S(_ text: String) -> SequenceSet {
    if text == "$" { return .lastSearchResult }
    func bound(_ s: Substring) -> SequenceSet.Bound { s == "*" ? .star : .number(UInt32(s)!) }
    return SequenceSet(text.split(separator: ",").map { part in
        let ends = part.split(separator: ":")
        return ends.count == 1 ? SequenceSet.Range(bound(ends[0]), bound(ends[0])) : SequenceSet.Range(bound(ends[0]), bound(ends[1]))
    })
}

func date(_ day: Int, _ month: Int, _ year: Int) -> IMAPDate { IMAPDate(year: year, month: month, day: day) }
