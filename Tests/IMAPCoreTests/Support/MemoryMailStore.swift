import IMAPCore
import MIME
import NIOCore

/// The mail of the transcript accounts, in memory, with the semantics of MailServer's IMAP delegate
/// over `MailStore` (IMAPService, IMAPMailboxSession, MaildirFolder, MaildirAccount):
/// - every folder has its own UIDVALIDITY; UIDs start at 1; MODSEQ starts at 1 when the folder is
///   first used, each appended or copied message and each message whose flags really change gets the
///   next MODSEQ, one EXPUNGE batch takes one MODSEQ;
/// - flags are listed `\Draft \Flagged \Answered \Seen \Deleted`, then keywords in the order the folder
///   defined them (Maildir info letters, dovecot-keywords); `\Recent` is never stored;
/// - a session sees other sessions' changes only through ``Session/takeUpdate()`` (the shared index
///   diffed with what the session was shown); its own changes are learned at once and never reported
///   back to it;
/// - STORE reports every message of the set with its flags now, changed or not (RFC 9051 §6.4.6);
/// - the default folders Sent Drafts Trash Junk Archive (with their special use) and INBOX are
///   subscribed at the first login;
/// - LIST shows INBOX, every folder and implied parents; a subscription to a name that no longer
///   exists is not listed.
/// Single-threaded: the runner calls it synchronously.
final class MemoryMailStore {
    struct Message {
        var uid: UInt32
        /// Lower-cased flag names.
        var flags: Set<String>
        var modSeq: UInt64
        /// CRLF line ends.
        var content: [UInt8]
        var internalDate: Int64
    }

    final class Folder {
        let uidValidity: UInt32
        var nextUID: UInt32 = 1
        var highestModSeq: UInt64 = 1
        var messages: [Message] = []
        /// Keyword names in definition order (as first written).
        var keywords: [String] = []
        var specialUse: String?
        /// Sessions watching this folder, by id.
        var watchers: [Int: () -> Void] = [:]

        init(uidValidity: UInt32) { self.uidValidity = uidValidity }

        func index(of uid: UInt32) -> Int? { messages.firstIndex { $0.uid == uid } }

        static let systemOrder = ["\\Draft", "\\Flagged", "\\Answered", "\\Seen", "\\Deleted"]

        /// Flags in MaildirInfo order.
        func flags(_ m: Message) -> [IMAPFlag] {
            Self.systemOrder.filter { m.flags.contains($0.lowercased()) }.map(IMAPFlag.init)
                + keywords.filter { m.flags.contains($0.lowercased()) }.map(IMAPFlag.init)
        }

        func messageFlags(_ m: Message) -> MessageFlags { MessageFlags(uid: m.uid, flags: flags(m), modSeq: m.modSeq) }

        func nextModSeq() -> UInt64 {
            highestModSeq += 1
            return highestModSeq
        }

        /// Names as stored: system flags known to Maildir, keywords defined in the folder; `\Recent` and
        /// unknown system flags dropped.
        func normalise(_ names: [String], define: Bool) -> Set<String> {
            var out = Set<String>()
            for n in names {
                if n.hasPrefix("\\") {
                    if Self.systemOrder.contains(where: { $0.lowercased() == n.lowercased() }) { out.insert(n.lowercased()) }
                    continue
                }
                if define, !keywords.contains(where: { $0.lowercased() == n.lowercased() }) { keywords.append(n) }
                out.insert(n.lowercased())
            }
            return out
        }

        func post() {
            for w in watchers.values.map({ $0 }) { w() }
        }

        @discardableResult
        func append(_ content: [UInt8], flags: [String], internalDate: Int64) -> UInt32 {
            let uid = nextUID
            nextUID += 1
            let stored = normalise(flags, define: true)
            messages.append(Message(uid: uid, flags: stored, modSeq: nextModSeq(), content: content, internalDate: internalDate))
            return uid
        }

        func expunge(_ uids: [UInt32]) -> [UInt32] {
            let present = Set(messages.map(\.uid))
            let removed = uids.sorted().filter { present.contains($0) }
            guard !removed.isEmpty else { return [] }
            _ = nextModSeq()
            let gone = Set(removed)
            messages.removeAll { gone.contains($0.uid) }
            return removed
        }
    }

    final class Account {
        var folders: [String: Folder] = [:]
        var subscriptions: [String] = []
    }

    private(set) var accounts: [String: Account] = [:]
    private var nextUIDValidity: UInt32 = 1_750_000_001
    private var nextWatcher = 0

    func makeFolder() -> Folder {
        defer { nextUIDValidity += 1 }
        return Folder(uidValidity: nextUIDValidity)
    }

    /// The account of `user` with its default folders (IMAPService.openAccount → ensureDefaultFolders).
    func account(_ user: String) -> Account {
        let key = user.lowercased()
        if let a = accounts[key] { return a }
        let a = Account()
        a.folders["INBOX"] = makeFolder()
        for (name, use) in [("Sent", "\\Sent"), ("Drafts", "\\Drafts"), ("Trash", "\\Trash"), ("Junk", "\\Junk"), ("Archive", "\\Archive")] {
            let f = makeFolder()
            f.specialUse = use
            a.folders[name] = f
            a.subscriptions.append(name)
        }
        a.subscriptions.append("INBOX")
        accounts[key] = a
        return a
    }

    func watch(_ folder: Folder, _ callback: @escaping () -> Void) -> Int {
        nextWatcher += 1
        folder.watchers[nextWatcher] = callback
        return nextWatcher
    }

    /// LF line ends become CRLF (IMAPMailboxSession.crlf over Maildir's LF files).
    static func crlf(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + bytes.count / 30)
        for (i, b) in bytes.enumerated() {
            if b == 0x0A, i == 0 || bytes[i - 1] != 0x0D { out.append(0x0D) }
            out.append(b)
        }
        return out
    }

    // MARK: Names (MaildirAccount.levels)

    static func validate(_ name: String) throws(MailboxError) -> String {
        let levels = name.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        if name.isEmpty || levels.contains("") {
            throw .cannot(name.isEmpty ? "The name is empty." : "A hierarchy level is empty (leading, trailing or double '/').")
        }
        for l in levels {
            if l.contains(".") { throw .cannot("Character not allowed in mailbox name: '.'") }
            if l.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F || ($0.value >= 0x80 && $0.value < 0xA0) }) {
                throw .cannot("Control characters are not allowed in mailbox names.")
            }
            if l.contains("*") || l.contains("%") { throw .cannot("'*' and '%' are not allowed in mailbox names.") }
            if l.hasPrefix("~"), levels.first == l { throw .cannot("A name may not start with '~'.") }
        }
        var out = levels
        if out[0].uppercased() == "INBOX" { out[0] = "INBOX" }
        return out.joined(separator: "/")
    }

    // MARK: Account operations (IMAPAccountSession)

    func mailboxes(_ user: String) -> [MailboxInfo] {
        let a = account(user)
        let names = Set(a.folders.keys)
        var implied = Set<String>()
        for n in names {
            var parts = n.split(separator: "/").map(String.init)
            while parts.count > 1 {
                parts.removeLast()
                let p = parts.joined(separator: "/")
                if !names.contains(p) { implied.insert(p) }
            }
        }
        let every = names.union(implied)
        return every.sorted().map { n in
            MailboxInfo(name: n, specialUse: a.folders[n]?.specialUse, subscribed: a.subscriptions.contains(n),
                        hasChildren: every.contains { $0.hasPrefix(n + "/") }, exists: names.contains(n))
        }
    }

    func status(_ user: String, _ names: [String]) -> [String: MailboxStatus] {
        let a = account(user)
        var out: [String: MailboxStatus] = [:]
        for n in names {
            guard let f = a.folders[n] else { continue }
            out[n] = MailboxStatus(messages: f.messages.count, uidNext: f.nextUID, uidValidity: f.uidValidity,
                                   unseen: f.messages.filter { !$0.flags.contains("\\seen") }.count,
                                   deleted: f.messages.filter { $0.flags.contains("\\deleted") }.count,
                                   size: f.messages.reduce(0) { $0 + UInt64($1.content.count) }, highestModSeq: f.highestModSeq)
        }
        return out
    }

    func create(_ user: String, _ name: String, specialUse: String?) throws(MailboxError) {
        let a = account(user)
        let n = try Self.validate(name)
        if n == "INBOX" || a.folders[n] != nil { throw .alreadyExists }
        let f = makeFolder()
        if let specialUse {
            for other in a.folders.values where other.specialUse == specialUse { other.specialUse = nil }
            f.specialUse = specialUse
        }
        a.folders[n] = f
    }

    func delete(_ user: String, _ name: String) throws(MailboxError) {
        let a = account(user)
        let n = try Self.validate(name)
        if n == "INBOX" { throw .cannot("INBOX can't be deleted.") }
        guard a.folders[n] != nil else { throw .nonexistent }
        if a.folders.keys.contains(where: { $0.hasPrefix(n + "/") }) { throw .hasChildren }
        a.folders[n] = nil
    }

    func rename(_ user: String, _ from: String, _ to: String) throws(MailboxError) {
        let a = account(user)
        let s = try Self.validate(from), t = try Self.validate(to)
        if t == "INBOX" { throw .alreadyExists }
        if s == "INBOX" {
            try create(user, t, specialUse: nil)
            let inbox = a.folders["INBOX"]!, target = a.folders[t]!
            for m in inbox.messages {
                target.append(m.content, flags: inbox.flags(m).map(\.name), internalDate: m.internalDate)
            }
            _ = inbox.expunge(inbox.messages.map(\.uid))
            inbox.post()
            return
        }
        guard a.folders[s] != nil else { throw .nonexistent }
        if t.hasPrefix(s + "/") { throw .cannot("A mailbox can't be renamed into itself.") }
        let moving = a.folders.keys.filter { $0 == s || $0.hasPrefix(s + "/") }
        let renames = moving.map { ($0, t + $0.dropFirst(s.count)) }
        for (_, new) in renames where a.folders[new] != nil { throw .alreadyExists }
        var moved: [String: Folder] = [:]
        for (old, new) in renames { moved[new] = a.folders.removeValue(forKey: old) }
        for (n, f) in moved { a.folders[n] = f }
        a.subscriptions = a.subscriptions.map { n in n == s ? t : (n.hasPrefix(s + "/") ? t + n.dropFirst(s.count) : n) }
    }

    func subscribe(_ user: String, _ name: String) throws(MailboxError) {
        let a = account(user)
        let n = try Self.validate(name)
        if !a.subscriptions.contains(n) { a.subscriptions.append(n) }
    }

    func unsubscribe(_ user: String, _ name: String) {
        let a = account(user)
        let n = (try? Self.validate(name)) ?? name
        a.subscriptions.removeAll { $0 == n }
    }

    func quota(_ user: String) -> QuotaUsage {
        let used = account(user).folders.values.reduce(0) { $0 + $1.messages.reduce(0) { $0 + UInt64($1.content.count) } }
        return QuotaUsage(usedBytes: used, limitBytes: nil)
    }

    // MARK: Selected mailbox (IMAPMailboxSession)

    /// One session's view of its selected folder.
    final class Session {
        let folder: Folder
        let store: MemoryMailStore
        let user: String
        /// What the session was shown: messages (uid, flags, modseq) and keywords.
        private(set) var known: [Message]
        private var knownKeywords: [String]
        private var dirty = false
        private var token: Int?

        init(store: MemoryMailStore, user: String, folder: Folder, changed: @escaping () -> Void) {
            self.store = store
            self.user = user
            self.folder = folder
            known = folder.messages
            knownKeywords = folder.keywords
            token = nil
            token = store.watch(folder) { [unowned self] in
                self.dirty = true
                changed()
            }
        }

        func close() {
            if let token { folder.watchers[token] = nil }
            token = nil
        }

        func takeUpdate() -> MailboxUpdate {
            guard dirty else { return MailboxUpdate() }
            dirty = false
            let now = folder.messages
            let old = Dictionary(uniqueKeysWithValues: known.map { ($0.uid, $0) })
            let present = Set(now.map(\.uid))
            let expunged = known.map(\.uid).filter { !present.contains($0) }
            let added = now.filter { old[$0.uid] == nil }.map(\.uid)
            let changed = now.filter { m in old[m.uid].map { $0.modSeq != m.modSeq || $0.flags != m.flags } ?? false }
            let keywordsChanged = folder.keywords != knownKeywords
            known = now
            knownKeywords = folder.keywords
            return MailboxUpdate(expunged: expunged, appended: added, flags: changed.map(folder.messageFlags),
                                 keywords: keywordsChanged ? folder.keywords.map(IMAPFlag.init) : nil,
                                 highestModSeq: folder.highestModSeq)
        }

        private func learn(changed: [Message], removed: [UInt32] = []) {
            let gone = Set(removed)
            known.removeAll { gone.contains($0.uid) }
            for c in changed {
                if let i = known.firstIndex(where: { $0.uid == c.uid }) { known[i] = c }
            }
        }

        func knownMessage(_ uid: UInt32) -> Message? { known.first { $0.uid == uid } }

        func facts(of uid: UInt32) -> MessageFacts? {
            guard let m = knownMessage(uid) else { return nil }
            let date = folder.index(of: uid).map { folder.messages[$0].internalDate } ?? 0
            return MessageFacts(uid: uid, flags: folder.flags(m), size: m.content.count,
                                internalDate: IMAPDateTime(secondsSinceEpoch: date), modSeq: m.modSeq)
        }

        func content(of uid: UInt32) throws(MailboxError) -> ByteBuffer {
            guard let i = folder.index(of: uid) else { throw .expungeIssued }
            return ByteBuffer(bytes: folder.messages[i].content)
        }

        func markSeen(_ uids: [UInt32]) -> [MessageFlags] {
            let changed = flagStore(["\\Seen"], .add, uids: uids, unchangedSince: nil).changed
            learn(changed: changed)
            if !changed.isEmpty { folder.post() }
            return uids.compactMap { u in knownMessage(u).map(folder.messageFlags) }
        }

        /// MaildirFolder.store.
        private func flagStore(_ names: [String], _ op: StoreModification.Operation, uids: [UInt32],
                               unchangedSince: UInt64?) -> (changed: [Message], failed: [UInt32], gone: [UInt32]) {
            var changed: [Message] = [], failed: [UInt32] = [], gone: [UInt32] = []
            let given = folder.normalise(names, define: op != .remove)
            for uid in uids {
                guard let i = folder.index(of: uid) else { gone.append(uid); continue }
                var m = folder.messages[i]
                if let limit = unchangedSince, m.modSeq > limit { failed.append(uid); continue }
                let target: Set<String> = switch op {
                case .replace: given
                case .add: m.flags.union(given)
                case .remove: m.flags.subtracting(given)
                }
                guard target != m.flags else { continue }
                m.flags = target
                changed.append(m)
                folder.messages[i] = m
            }
            for c in changed {
                let i = folder.index(of: c.uid)!
                folder.messages[i].modSeq = folder.nextModSeq()
            }
            return (changed.map { folder.messages[folder.index(of: $0.uid)!] }, failed, gone)
        }

        func store(_ request: StoreRequest) -> StoreOutcome {
            let m = request.modification
            let r = flagStore(m.flags.map(\.name), m.operation, uids: request.uids, unchangedSince: m.unchangedSince)
            learn(changed: r.changed)
            if !r.changed.isEmpty { folder.post() }
            let failed = Set(r.failed), gone = Set(r.gone)
            let updated = request.uids.filter { !failed.contains($0) && !gone.contains($0) }
                .compactMap { u in knownMessage(u).map(folder.messageFlags) }
            return StoreOutcome(updated: updated, modified: r.failed)
        }

        func copy(_ uids: [UInt32], to mailbox: String, move: Bool) throws(MailboxError) -> CopyOutcome {
            guard let target = store.account(user).folders[mailbox] else { throw .nonexistent }
            var sources: [Message] = []
            for u in uids.sorted() {
                guard let i = folder.index(of: u) else { throw .expungeIssued }
                sources.append(folder.messages[i])
            }
            let flagNames = sources.map { folder.flags($0).map(\.name) }
            var destination: [UInt32] = []
            for (m, flags) in zip(sources, flagNames) {
                destination.append(target.append(m.content, flags: flags, internalDate: m.internalDate))
            }
            if move {
                _ = folder.expunge(sources.map(\.uid))
                learn(changed: [], removed: sources.map(\.uid))
            }
            target.post()
            if move, target !== folder { folder.post() }
            return CopyOutcome(uidValidity: target.uidValidity, source: sources.map(\.uid), destination: destination)
        }

        func expunge(_ uids: [UInt32]?) -> [UInt32] {
            let candidates = known.filter { $0.flags.contains("\\deleted") }.map(\.uid)
            let targets = uids.map { only in candidates.filter { Set(only).contains($0) } } ?? candidates
            guard !targets.isEmpty else { return [] }
            let removed = folder.expunge(targets)
            learn(changed: [], removed: removed)
            if !removed.isEmpty { folder.post() }
            return removed
        }

        /// MailboxSearch.run.
        func search(_ request: SearchRequest) -> (uids: [UInt32], highestModSeq: UInt64?) {
            let evaluator = SearchEvaluator(request.key, largestSequenceNumber: UInt32(request.uids.count),
                                            largestUID: request.uids.last ?? 0)
            var out: [UInt32] = []
            var highest: UInt64 = 0
            for (i, uid) in request.uids.enumerated() {
                guard let facts = facts(of: uid) else { continue }
                let search = SearchFacts(sequenceNumber: UInt32(i + 1), uid: uid, flags: Set(facts.flags), size: facts.size,
                                         internalDate: facts.internalDate, modSeq: facts.modSeq)
                var message: MessageStructure?
                if evaluator.needsMessage {
                    guard let c = try? content(of: uid) else { continue }
                    message = MessageStructure(parsing: c)
                }
                if evaluator.matches(search, message: message) {
                    out.append(uid)
                    highest = max(highest, facts.modSeq)
                }
            }
            return (out, out.isEmpty ? nil : highest)
        }

        func sortable(_ request: SearchRequest) -> [SortableMessage] {
            let matching = Set(search(request).uids)
            let parser = MIMEParser()
            var out: [SortableMessage] = []
            for (i, uid) in request.uids.enumerated() where matching.contains(uid) {
                guard let facts = facts(of: uid), let c = try? content(of: uid) else { continue }
                let bytes = Array(c.readableBytesView)
                var end = bytes.count
                if let r = (0..<max(0, bytes.count - 3)).first(where: { bytes[$0..<$0 + 4] == [13, 10, 13, 10] }) { end = r + 4 }
                out.append(SortableMessage(id: uid, sequenceNumber: UInt32(i + 1), size: facts.size, internalDate: facts.internalDate,
                                           headers: parser.parseHeaders(Array(bytes[..<end]))))
            }
            return out
        }
    }
}
