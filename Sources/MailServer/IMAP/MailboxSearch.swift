import IMAPCore
import MIME
import MailStore
import NIOCore

/// SEARCH, SORT and THREAD over one session's view of its folder: flags, sizes and dates come from
/// the index; a message is read only when the key needs its header or text.
struct MailboxSearch {
    let session: IMAPMailboxSession

    func run(_ request: SearchRequest) async throws -> (uids: [UInt32], highestModSeq: UInt64?) {
        let session = self.session
        // One job on the thread pool for the whole search: it reads files only for keys that need them.
        return try await session.blocking { try Self.search(request, in: session) }
    }

    static func search(_ request: SearchRequest, in session: IMAPMailboxSession) throws -> (uids: [UInt32], highestModSeq: UInt64?) {
        let evaluator = SearchEvaluator(request.key, largestSequenceNumber: UInt32(request.uids.count),
                                        largestUID: request.uids.last ?? 0)
        var out: [UInt32] = []
        var highest: UInt64 = 0
        var directories = MaildirFolder.Directories()
        for (i, uid) in request.uids.enumerated() {
            // The message first: its read gives the internal date too (one open per message).
            var message: MessageStructure?
            if evaluator.needsMessage {
                guard let bytes = try session.readContent(of: uid, directories: &directories) else { continue }  // expunged meanwhile
                message = MessageStructure(parsing: bytes)
            }
            guard let facts = session.facts(of: uid) else { continue }
            let search = SearchFacts(sequenceNumber: UInt32(i + 1), uid: uid, flags: Set(facts.flags), size: facts.size,
                                     internalDate: facts.internalDate, modSeq: facts.modSeq)
            if evaluator.matches(search, message: message) {
                out.append(uid)
                highest = max(highest, facts.modSeq)
            }
        }
        return (out, out.isEmpty ? nil : highest)
    }

    /// The matching messages with what SORT and THREAD look at (the header section only).
    private func sortable(_ request: SearchRequest) async throws -> [SortableMessage] {
        let session = self.session
        return try await session.blocking { () throws -> [SortableMessage] in
            let matching = Set(try Self.search(request, in: session).uids)
            var out: [SortableMessage] = []
            let parser = MIMEParser()
            var directories = MaildirFolder.Directories()
            for (i, uid) in request.uids.enumerated() where matching.contains(uid) {
                guard let content = try session.readContent(of: uid, directories: &directories), let facts = session.facts(of: uid) else {
                    continue
                }
                let headers = parser.parseHeaders(Self.headerBytes(content))
                out.append(SortableMessage(id: uid, sequenceNumber: UInt32(i + 1), size: facts.size,
                                           internalDate: facts.internalDate, headers: headers))
            }
            return out
        }
    }

    /// The header section (through the first empty line) of a CRLF message.
    static func headerBytes(_ message: ByteBuffer) -> [UInt8] {
        let bytes = message.readableBytesView
        var previousLF = true
        var end = bytes.endIndex
        var i = bytes.startIndex
        while i < bytes.endIndex {
            let b = bytes[i]
            if b == 0x0A {
                if previousLF { end = i + 1; break }
                previousLF = true
            } else if b != 0x0D {
                previousLF = false
            }
            i += 1
        }
        return Array(bytes[bytes.startIndex..<end])
    }

    func sort(_ request: SearchRequest, by criteria: [SortCriterion]) async throws -> [UInt32] {
        MessageSorter.sort(try await sortable(request), by: criteria)
    }

    func thread(_ request: SearchRequest, algorithm: String) async throws -> [ThreadNode] {
        let messages = try await sortable(request)
        return algorithm == "ORDEREDSUBJECT" ? MessageThreader.orderedSubject(messages) : MessageThreader.references(messages)
    }
}
