#if canImport(Glibc)
import Glibc
#endif

/// Swallow's per-folder MODSEQ store (Dovecot keeps MODSEQs only in its rebuildable index).
///
/// `swallow-modseq` is an append-only journal:
/// ```
/// swallow-modseq 1 V<uidvalidity>
/// <uid> <modseq> :<info letters>      the message's flags got this MODSEQ
/// <uid> <modseq> X                    the message was expunged at this MODSEQ
/// ```
/// The last line for a UID wins. A STORE appends one line per changed message and `fdatasync`s once;
/// the journal is rewritten (temporary file + rename) when it holds more than twice as many lines as
/// live messages. The info letters let a restarted server notice flags changed by other programs
/// while it was not running.
///
/// `swallow-highestmodseq` holds a ceiling: no MODSEQ above it is ever handed out; it is raised
/// durably 1024 at a time. If the journal is missing, torn, corrupt or for another UIDVALIDITY, every
/// message gets one new MODSEQ above the ceiling, so a client that saw any earlier HIGHESTMODSEQ
/// resynchronises all flags (which live in the file names and are never lost).
struct ModSeqJournal {
    struct Entry: Hashable {
        var modSeq: UInt64
        var letters: [UInt8]
    }

    let path: String
    let ceilingPath: String
    let uidValidity: UInt32
    private(set) var entries: [UInt32: Entry] = [:]
    private(set) var highest: UInt64 = 0
    private var ceiling: UInt64 = 0
    private var lines = 0
    /// The journal could not be trusted at load: every message needs a new MODSEQ.
    private(set) var damaged = false

    static let reserve: UInt64 = 1024

    init(folder: String, uidValidity: UInt32) {
        path = folder + "/swallow-modseq"
        ceilingPath = folder + "/swallow-highestmodseq"
        self.uidValidity = uidValidity
        if let bytes = try? readFile(ceilingPath), let text = String(validating: bytes, as: UTF8.self),
           let value = UInt64(text.trimmingSpaces) {
            ceiling = value
        }
        guard let bytes = (try? readFile(path)) ?? nil else {
            damaged = true
            highest = ceiling
            return
        }
        if !bytes.isEmpty && bytes.last != UInt8(ascii: "\n") { damaged = true }  // torn append
        let split = bytes.split(separator: UInt8(ascii: "\n"))
        if split.first.map({ String(decoding: $0, as: UTF8.self) }) != "swallow-modseq 1 V\(uidValidity)" { damaged = true }
        if !damaged {
            for line in split.dropFirst() {
                let parts = line.split(separator: UInt8(ascii: " "), maxSplits: 2, omittingEmptySubsequences: false)
                guard parts.count == 3, let uid = UInt32(String(decoding: parts[0], as: UTF8.self)),
                      let modSeq = UInt64(String(decoding: parts[1], as: UTF8.self)) else { damaged = true; break }
                highest = max(highest, modSeq)
                if parts[2].first == UInt8(ascii: ":") {
                    entries[uid] = Entry(modSeq: modSeq, letters: Array(parts[2].dropFirst()))
                } else if parts[2].elementsEqual("X".utf8) {
                    entries[uid] = nil
                } else {
                    damaged = true
                    break
                }
                lines += 1
            }
        }
        if damaged {
            entries = [:]
            lines = 0
        }
        // An intact journal knows the highest MODSEQ; otherwise the ceiling bounds what was announced.
        if damaged { highest = max(highest, ceiling) }
    }

    /// A new MODSEQ, greater than any handed out before (the ceiling is raised durably when needed).
    mutating func next() throws -> UInt64 {
        highest += 1
        if highest > ceiling {
            ceiling = highest + Self.reserve
            try writeFileAtomically(ceilingPath, Array("\(ceiling)\n".utf8))
        }
        return highest
    }

    /// Durably records new MODSEQs (`changes`) and expunges; one `fdatasync`.
    mutating func record(_ changes: [(uid: UInt32, entry: Entry)], expunged: [(uid: UInt32, modSeq: UInt64)]) throws {
        guard !changes.isEmpty || !expunged.isEmpty else { return }
        for c in changes { entries[c.uid] = c.entry }
        for e in expunged { entries[e.uid] = nil }
        if damaged || lines + changes.count + expunged.count > 2 * entries.count + 1024 {
            try rewrite()
            return
        }
        var text = ""
        for c in changes { text += "\(c.uid) \(c.entry.modSeq) :\(String(decoding: c.entry.letters, as: UTF8.self))\n" }
        for e in expunged { text += "\(e.uid) \(e.modSeq) X\n" }
        let fd = try POSIX.open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW)
        defer { POSIX.close(fd) }
        try Array(text.utf8).withUnsafeBytes { try POSIX.writeAll(fd, $0, path: path) }
        while fdatasync(fd) != 0 { if errno != EINTR { throw StoreError("fdatasync", path) } }
        lines += changes.count + expunged.count
    }

    /// Replaces the journal with one line per live message.
    mutating func rewrite() throws {
        var text = "swallow-modseq 1 V\(uidValidity)\n"
        // The highest MODSEQ survives compaction even when its message was expunged.
        text += "0 \(highest) X\n"
        for (uid, e) in entries.sorted(by: { $0.key < $1.key }) {
            text += "\(uid) \(e.modSeq) :\(String(decoding: e.letters, as: UTF8.self))\n"
        }
        try writeFileAtomically(path, Array(text.utf8))
        lines = entries.count + 1
        damaged = false
    }
}

extension String {
    var trimmingSpaces: Substring {
        var s = self[...]
        while let f = s.first, f == " " || f == "\n" || f == "\t" || f == "\r" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\n" || l == "\t" || l == "\r" { s.removeLast() }
        return s
    }
}
