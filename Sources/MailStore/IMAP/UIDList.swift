/// Dovecot's `dovecot-uidlist`, version 3: the UIDs of a Maildir folder.
///
/// ```
/// 3 V<uidvalidity> N<nextuid> G<mailbox guid, 32 hex digits>[ <other header fields>]
/// <uid>[ <key><value>]… :<file name without the ":2,…" info>
/// ```
/// Header fields are a key letter and a value, separated by spaces; Dovecot keeps fields it does not
/// know, and so does this type (Swallow adds none there). Record fields are keys `A`–`Z`
/// (`S` physical size, `W` virtual size when the name lacks them, `G` GUID, `P` POP3 UIDL, `O` POP3
/// order); they are kept as they are. Version 1 (`1 <uidvalidity> <nextuid>`, then `<uid> <name>`) is read.
public struct UIDList: Hashable, Sendable {
    /// One message: its UID, extension fields (e.g. `W1234`) and the file's base name.
    public struct Record: Hashable, Sendable {
        /// The UID.
        public var uid: UInt32
        /// Extension fields as written, each a key letter `A`–`Z` followed by its value.
        public var extensions: [String]
        /// The file name up to (not including) the `:` of the info part.
        public var baseName: String

        /// Creates a record.
        public init(uid: UInt32, extensions: [String] = [], baseName: String) {
            self.uid = uid
            self.extensions = extensions
            self.baseName = baseName
        }

        /// The value of extension `key` (e.g. `W`), if present.
        public func extensionValue(_ key: Character) -> String? {
            for e in extensions where e.first == key { return String(e.dropFirst()) }
            return nil
        }
    }

    /// UIDVALIDITY (`V`); never 0 in a valid file.
    public var uidValidity: UInt32
    /// The next UID to assign (`N`).
    public var nextUID: UInt32
    /// The mailbox GUID (`G`), 32 lower-case hex digits.
    public var guid: String
    /// Header fields other than `V`, `N` and `G`, kept as written.
    public var headerExtensions: [String]
    /// Records in ascending UID order.
    public var records: [Record]

    /// Creates a uidlist.
    public init(uidValidity: UInt32, nextUID: UInt32 = 1, guid: String, headerExtensions: [String] = [], records: [Record] = []) {
        self.uidValidity = uidValidity
        self.nextUID = nextUID
        self.guid = guid
        self.headerExtensions = headerExtensions
        self.records = records
    }

    /// Parses a uidlist file; `nil` when the header is broken (the folder then gets a new UIDVALIDITY,
    /// as with Dovecot). Records that are broken, out of order or name a path are skipped; a record
    /// whose base name repeats replaces the earlier one (as Dovecot does: the file was moved back).
    public static func parse(_ bytes: [UInt8]) -> UIDList? {
        var lines = bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        if lines.last?.isEmpty == true { lines.removeLast() }
        guard let header = lines.first, header.count >= 2, header[header.startIndex + 1] == UInt8(ascii: " ") else { return nil }
        let version = header[header.startIndex]
        let fields = header.dropFirst(2).split(separator: UInt8(ascii: " ")).map { String(decoding: $0, as: UTF8.self) }
        var list = UIDList(uidValidity: 0, nextUID: 0, guid: "")
        switch version {
        case UInt8(ascii: "1"):
            guard fields.count >= 2, let v = UInt32(fields[0]), let n = UInt32(fields[1]) else { return nil }
            list.uidValidity = v
            list.nextUID = n
        case UInt8(ascii: "3"):
            for f in fields {
                let value = String(f.dropFirst())
                switch f.first {
                case "V": guard let v = UInt32(value) else { return nil }; list.uidValidity = v
                case "N": guard let n = UInt32(value) else { return nil }; list.nextUID = n
                case "G":
                    guard value.utf8.count == 32, value.utf8.allSatisfy(\.isHexDigit) else { return nil }
                    list.guid = value.lowercased()
                default: list.headerExtensions.append(f)
                }
            }
        default:
            return nil
        }
        guard list.uidValidity != 0, list.nextUID != 0 else { return nil }
        var index: [String: Int] = [:]
        var previous: UInt32 = 0
        for line in lines.dropFirst() {
            guard let record = parseRecord(line, version: version), record.uid > previous, record.uid != UInt32.max else { continue }
            previous = record.uid
            if let old = index[record.baseName] { list.records[old].uid = 0 }  // replaced below
            index[record.baseName] = list.records.count
            list.records.append(record)
        }
        list.records.removeAll { $0.uid == 0 }
        if let last = list.records.last, last.uid >= list.nextUID { list.nextUID = last.uid + 1 }
        return list
    }

    private static func parseRecord(_ line: ArraySlice<UInt8>, version: UInt8) -> Record? {
        var i = line.startIndex
        var uid: UInt64 = 0
        while i < line.endIndex, line[i].isDigit, uid <= UInt64(UInt32.max) {
            uid = uid * 10 + UInt64(line[i] - 0x30)
            i += 1
        }
        guard uid > 0, uid < UInt64(UInt32.max), i < line.endIndex, line[i] == UInt8(ascii: " ") else { return nil }
        while i < line.endIndex, line[i] == UInt8(ascii: " ") { i += 1 }
        var extensions: [String] = []
        if version == UInt8(ascii: "3") {
            while i < line.endIndex, line[i] != UInt8(ascii: ":") {
                let start = i
                while i < line.endIndex, line[i] != UInt8(ascii: " ") { i += 1 }
                let field = line[start..<i]
                if let key = field.first, key >= UInt8(ascii: "A"), key <= UInt8(ascii: "Z") {
                    extensions.append(String(decoding: field, as: UTF8.self))
                }  // else: invalid, dropped (Dovecot drops it too)
                while i < line.endIndex, line[i] == UInt8(ascii: " ") { i += 1 }
            }
            guard i < line.endIndex else { return nil }
            i += 1  // ":"
        }
        let name = line[i...]
        guard !name.isEmpty, !name.contains(UInt8(ascii: "/")) else { return nil }
        var base = String(decoding: name, as: UTF8.self)
        if let colon = base.firstIndex(of: ":") { base = String(base[..<colon]) }
        return Record(uid: UInt32(uid), extensions: extensions, baseName: base)
    }

    /// The file as Dovecot 2.3 writes it (version 3).
    public func encoded() -> [UInt8] {
        var out = "3 V\(uidValidity) N\(nextUID) G\(guid)"
        for e in headerExtensions { out += " " + e }
        out += "\n"
        for r in records {
            out += String(r.uid)
            for e in r.extensions { out += " " + e }
            out += " :" + r.baseName + "\n"
        }
        return Array(out.utf8)
    }
}

extension UInt8 {
    var isDigit: Bool { self >= 0x30 && self <= 0x39 }
    var isHexDigit: Bool { isDigit || (self >= 0x61 && self <= 0x66) || (self >= 0x41 && self <= 0x46) }
}
