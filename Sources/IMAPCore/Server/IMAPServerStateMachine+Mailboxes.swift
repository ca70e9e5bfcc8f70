// Commands of the authenticated state (RFC 9051 §6.3) and their completion events.
extension IMAPServerStateMachine {
    mutating func dispatchAuthenticated(_ tag: String, _ command: IMAPCommand) -> Action {
        switch command {
        case .enable(let names):
            return enable(tag, names)
        case .select(let name, let parameters), .examine(let name, let parameters):
            var readOnly = false
            if case .examine = command { readOnly = true }
            return select(tag, name, parameters, readOnly: readOnly)
        case .create(let name, let specialUse):
            guard var mailbox = decode(name) else { return bad(tag, "Invalid mailbox name") }
            while mailbox.hasSuffix("/") { mailbox.removeLast() }
            guard Self.isValidName(mailbox) else { return bad(tag, "Invalid mailbox name") }
            if mailbox == "INBOX" { return finish(tag, [], .no, .alreadyExists, "INBOX always exists") }
            guard specialUse.count <= 1 else { return finish(tag, [], .no, .useAttr, "One special use per mailbox") }
            // Attribute names are case-insensitive (RFC 9051 §9 flag-extension, RFC 6154 §2).
            var use: String?
            if let asked = specialUse.first {
                guard let known = Self.specialUses.first(where: { $0.lowercased() == asked.lowercased() }) else {
                    return finish(tag, [], .no, .useAttr, "Unsupported special use \(asked)")
                }
                use = known
            }
            running = .mailboxOperation(tag: tag, name: "CREATE")
            return .create(mailbox: mailbox, specialUse: use)
        case .delete(let name):
            guard let mailbox = decode(name), Self.isValidName(mailbox) else { return bad(tag, "Invalid mailbox name") }
            if mailbox == "INBOX" { return finish(tag, [], .no, .cannot, "INBOX cannot be deleted") }
            running = .mailboxOperation(tag: tag, name: "DELETE")
            return .delete(mailbox: mailbox)
        case .rename(let from, let to):
            guard let source = decode(from), let target = decode(to), Self.isValidName(source), Self.isValidName(target) else {
                return bad(tag, "Invalid mailbox name")
            }
            if target == "INBOX" { return finish(tag, [], .no, .alreadyExists, "INBOX always exists") }
            running = .mailboxOperation(tag: tag, name: "RENAME")
            return .rename(from: source, to: target)
        case .subscribe(let name):
            guard let mailbox = decode(name), Self.isValidName(mailbox) else { return bad(tag, "Invalid mailbox name") }
            running = .mailboxOperation(tag: tag, name: "SUBSCRIBE")
            return .subscribe(mailbox: mailbox)
        case .unsubscribe(let name):
            guard let mailbox = decode(name), Self.isValidName(mailbox) else { return bad(tag, "Invalid mailbox name") }
            running = .mailboxOperation(tag: tag, name: "UNSUBSCRIBE")
            return .unsubscribe(mailbox: mailbox)
        case .list(let list):
            return startList(tag, list, lsub: false)
        case .lsub(let reference, let pattern):
            var list = ListCommand(reference: reference, patterns: [pattern])
            list.selectOptions.subscribed = true
            return startList(tag, list, lsub: true)
        case .namespace:
            return ok(tag, [.namespace(personalPrefix: "", delimiter: "/")], "NAMESPACE completed")
        case .status(let name, let attributes):
            guard let mailbox = decode(name) else { return bad(tag, "Invalid mailbox name") }
            if attributes.contains(.highestModSeq) { condStore = true }
            running = .status(tag: tag, name: mailbox, attributes: attributes)
            return .status(mailboxes: [mailbox])
        case .idle:
            running = .idle(tag: tag)
            var out: [IMAPResponse] = []
            if var s = selected {
                out = s.flush(expungesAllowed: true, vanished: qresync, condStore: condStore, imap4rev2: imap4rev2)
                selected = s
            }
            out.append(.continuation("idling"))
            return .send(out, then: .readIdle)
        case .getQuotaRoot(let name):
            guard let mailbox = decode(name) else { return bad(tag, "Invalid mailbox name") }
            running = .quota(tag: tag, mailbox: mailbox)
            return .quota
        case .getQuota(let root):
            guard root.isEmpty else { return finish(tag, [], .no, .nonexistent, "No such quota root") }
            running = .quota(tag: tag, mailbox: nil)
            return .quota
        case .setQuota:
            return finish(tag, [], .no, .noPerm, "Quotas are set by the administrator (swallow user quota)")
        case .compress(let mechanism):
            guard configuration.compressionAvailable else { return bad(tag, "COMPRESS is not available") }
            guard mechanism.uppercased() == "DEFLATE" else { return bad(tag, "Unknown compression mechanism") }
            guard !compressionActive else { return finish(tag, [], .no, .compressionActive, "Compression is already active") }
            compressionActive = true
            return finish(tag, [], .ok, nil, "DEFLATE active", then: .startCompression)
        case .startTLS, .login, .authenticate:
            return wrongState(tag, command)
        default:
            guard state == .selected else { return wrongState(tag, command) }
            return dispatchSelected(tag, command)
        }
    }

    /// The special uses CREATE accepts: those the store can record (MailStore's SpecialUse). Anything
    /// else is refused here with [USEATTR] (RFC 6154 §3), not later by the store with [CANNOT].
    static let specialUses: [String] = ["\\Archive", "\\Drafts", "\\Junk", "\\Sent", "\\Trash"]

    /// A Unicode mailbox name the store can hold: not empty, no empty hierarchy levels, no control
    /// characters.
    static func isValidName(_ name: String) -> Bool {
        guard !name.isEmpty, name.utf8.count <= 512, !name.hasPrefix("/"), !name.contains("//") else { return false }
        return !name.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F }
    }

    // MARK: ENABLE

    private mutating func enable(_ tag: String, _ names: [String]) -> Action {
        guard state == .authenticated else {
            return bad(tag, "ENABLE is only valid before SELECT")
        }
        var enabled: [String] = []
        for name in names {
            switch name.uppercased() {
            case "CONDSTORE":
                if !condStore { condStore = true; enabled.append("CONDSTORE") }
            case "QRESYNC":
                if !qresync {
                    qresync = true
                    condStore = true
                    enabled.append("QRESYNC")
                }
            case "IMAP4REV2":
                if !imap4rev2 { imap4rev2 = true; enabled.append("IMAP4rev2") }
            case "UTF8=ACCEPT":
                if !utf8 { utf8 = true; enabled.append("UTF8=ACCEPT") }
            default:
                break  // RFC 5161 §3.1: unknown extensions are ignored
            }
        }
        return ok(tag, [.enabled(enabled)], "ENABLE completed")
    }

    // MARK: SELECT / EXAMINE

    private mutating func select(_ tag: String, _ name: MailboxName, _ parameters: SelectParameters, readOnly: Bool) -> Action {
        guard let mailbox = decode(name) else { return bad(tag, "Invalid mailbox name") }
        if parameters.qresync != nil, !qresync { return bad(tag, "QRESYNC must be enabled first") }
        if parameters.condStore { condStore = true }
        let wasSelected = selected != nil
        selected = nil
        savedSearch = []
        state = .authenticated
        running = .select(tag: tag, readOnly: readOnly, qresync: parameters.qresync, closedPrevious: wasSelected)
        return .select(mailbox: mailbox, readOnly: readOnly, qresync: parameters.qresync)
    }

    /// SELECT/EXAMINE opened the mailbox (or could not).
    public mutating func mailboxSelected(_ result: Result<SelectedMailboxInfo, MailboxError>) -> Action {
        guard case .select(let tag, let readOnly, let parameters, let closedPrevious) = running else { preconditionFailure("mailboxSelected without SELECT") }
        running = nil
        var out: [IMAPResponse] = []
        if closedPrevious, qresync || imap4rev2 { out.append(.untagged(status: .ok, code: .closed, text: "Previous mailbox closed")) }
        switch result {
        case .failure(let error):
            out.append(.tagged(tag: tag, status: .no, code: Self.code(error), text: Self.text(error)))
            return .unselect(then: out)
        case .success(let info):
            let view = SelectedMailbox(info, readOnly: readOnly)
            let flags = IMAPFlag.systemFlags + info.keywords
            out.append(.flags(flags))
            out.append(.exists(info.uids.count))
            if !imap4rev2 {
                out.append(.recent(0))
                if let unseen = info.firstUnseen {
                    out.append(.untagged(status: .ok, code: .unseen(UInt32(unseen)), text: "First unseen"))
                }
            }
            out.append(.untagged(status: .ok, code: .uidValidity(info.uidValidity), text: "UIDs valid"))
            out.append(.untagged(status: .ok, code: .uidNext(info.uidNext), text: "Predicted next UID"))
            if view.readOnly {
                out.append(.untagged(status: .ok, code: .permanentFlags([], allowsNew: false), text: "Read-only mailbox"))
            } else {
                out.append(.untagged(status: .ok, code: .permanentFlags(flags, allowsNew: true), text: "Flags permitted"))
            }
            // RFC 9051 §6.3.2: an IMAP4rev2 SELECT also returns the mailbox's LIST response.
            if imap4rev2 { out.append(.list(ListItem(attributes: [], delimiter: "/", name: encode(info.name)))) }
            out.append(.untagged(status: .ok, code: .highestModSeq(info.highestModSeq), text: "Highest"))
            if let q = parameters, q.uidValidity == info.uidValidity {
                // RFC 7162 §3.2.5.2: what vanished among the UIDs the client knows, then what changed.
                let known = q.knownUIDs ?? SequenceSet.all
                let largest = max(info.uidNext &- 1, info.uids.last ?? 0)
                var gone = SelectedMailbox.absent(from: known, largest: largest, present: info.uids)
                let knownRanges = known.resolve(largest: largest)
                let present = Set(info.uids)
                for u in info.vanished where !present.contains(u) && knownRanges.contains(where: { $0.contains(u) }) {
                    gone.append(u...u)
                }
                let vanished = SequenceSet(closedRanges: gone).resolve(largest: .max)
                if !vanished.isEmpty { out.append(.vanished(earlier: true, SequenceSet(closedRanges: vanished))) }
                for change in info.changed.sorted(by: { $0.uid < $1.uid }) where change.modSeq > q.modSeq {
                    if let n = view.sequenceNumber(of: change.uid) {
                        out.append(.fetch(sequenceNumber: n, [.uid(change.uid), .flags(change.flags), .modSeq(change.modSeq)]))
                    }
                }
            }
            selected = view
            state = .selected
            out.append(.tagged(tag: tag, status: .ok, code: view.readOnly ? .readOnly : .readWrite,
                               text: readOnly ? "EXAMINE completed" : "SELECT completed"))
            return .send(out, then: .readCommands)
        }
    }

    // MARK: CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE

    /// A mailbox operation finished.
    public mutating func mailboxOperationCompleted(_ result: Result<Void, MailboxError>) -> Action {
        guard case .mailboxOperation(let tag, let name) = running else { preconditionFailure("mailbox operation result without one") }
        switch result {
        case .success: return ok(tag, [], "\(name) completed")
        case .failure(let error): return no(tag, error)
        }
    }

    // MARK: LIST / LSUB

    private mutating func startList(_ tag: String, _ list: ListCommand, lsub: Bool) -> Action {
        guard let reference = decode(MailboxName(list.reference)) ?? (list.reference.isEmpty ? "" : nil) else {
            return bad(tag, "Invalid reference name")
        }
        var patterns: [MailboxPattern] = []
        var empty = false
        for p in list.patterns {
            if p.isEmpty, !lsub {
                empty = true
                continue
            }
            // Wildcards survive decoding: modified UTF-7 leaves ASCII alone.
            guard let decoded = decode(MailboxName(p)) ?? (utf8 ? p : nil) else { return bad(tag, "Invalid mailbox pattern") }
            patterns.append(MailboxPattern(reference: reference, pattern: decoded))
        }
        if patterns.isEmpty {
            // RFC 9051 §6.3.9: an empty pattern asks for the delimiter and the root.
            var out: [IMAPResponse] = []
            if empty { out.append(.list(ListItem(attributes: ["\\Noselect"], delimiter: "/", name: ""))) }
            return ok(tag, out, "\(lsub ? "LSUB" : "LIST") completed")
        }
        if list.returnOptions.status?.contains(.highestModSeq) == true { condStore = true }
        running = .list(tag: tag, list, patterns: patterns, lsub: lsub)
        return .listMailboxes
    }

    /// The account's mailboxes, for the LIST/LSUB in progress.
    public mutating func mailboxesListed(_ result: Result<[MailboxInfo], MailboxError>) -> Action {
        guard case .list(let tag, let list, let patterns, let lsub) = running else { preconditionFailure("mailboxesListed without LIST") }
        guard case .success(let mailboxes) = result else {
            if case .failure(let error) = result { return no(tag, error) }
            preconditionFailure()
        }
        // Implied parents (a Maildir++ folder ".A.B" without ".A") are listed as not existing. Only
        // existing mailboxes give a parent children (RFC 5258 §4: a name that is merely subscribed
        // is no child); a subscribed name still creates its parents' entries for CHILDINFO and LSUB.
        var byName: [String: MailboxInfo] = [:]
        for m in mailboxes { byName[m.name] = m }
        for m in mailboxes {
            var parts = m.name.split(separator: "/", omittingEmptySubsequences: false)
            while parts.count > 1 {
                parts.removeLast()
                let parent = parts.joined(separator: "/")
                if var p = byName[parent] {
                    if m.exists, !p.hasChildren { p.hasChildren = true; byName[parent] = p }
                } else {
                    byName[parent] = MailboxInfo(name: parent, subscribed: false, hasChildren: m.exists, exists: false)
                }
            }
        }
        let subscribedDescendants: [String: [String]] = {
            var s: [String: [String]] = [:]
            for m in byName.values where m.subscribed {
                var parts = m.name.split(separator: "/", omittingEmptySubsequences: false)
                while parts.count > 1 {
                    parts.removeLast()
                    s[parts.joined(separator: "/"), default: []].append(m.name)
                }
            }
            return s
        }()
        let sel = list.selectOptions
        let ret = list.returnOptions
        var items: [IMAPResponse] = []
        var statusNames: [String] = []
        for name in byName.keys.sorted(by: Self.mailboxOrder) {
            let m = byName[name]!
            guard patterns.contains(where: { $0.matches(name) }) else { continue }
            let descendants = subscribedDescendants[name] ?? []
            let childInfo = sel.recursiveMatch && !descendants.isEmpty
            // RFC 3501 §6.3.9: LSUB "%" returns the parent of a subscribed child the pattern does not
            // reach, flagged \Noselect.
            let lsubParent = lsub && !m.subscribed && descendants.contains { d in !patterns.contains { $0.matches(d) } }
            if sel.subscribed, !m.subscribed, !childInfo, !lsubParent { continue }
            if sel.specialUse, m.specialUse == nil { continue }
            // A name that does not exist is listed as a parent of existing mailboxes, as a
            // subscription when SUBSCRIBED selects, or for CHILDINFO (RFC 5258 §3, RFC 9051 §6.3.9).
            if !m.exists, !m.hasChildren, !(sel.subscribed && m.subscribed), !childInfo, !lsubParent { continue }
            var attributes: [String] = []
            if lsubParent || !m.exists {
                attributes.append(lsub || !imap4rev2 && !list.isExtended ? "\\Noselect" : "\\NonExistent")
            }
            if !lsub {
                attributes.append(m.hasChildren ? "\\HasChildren" : "\\HasNoChildren")
                if (sel.subscribed || ret.subscribed), m.subscribed { attributes.append("\\Subscribed") }
                if let use = m.specialUse { attributes.append(use) }
            }
            let item = ListItem(attributes: attributes, delimiter: "/", name: encode(name),
                                childInfoSubscribed: childInfo && list.isExtended)
            items.append(lsub ? .lsub(item) : .list(item))
            if ret.status != nil, m.exists { statusNames.append(name) }
        }
        if let attributes = ret.status, !statusNames.isEmpty {
            running = .listStatus(tag: tag, items: items, attributes: attributes)
            return .status(mailboxes: statusNames)
        }
        return ok(tag, items, "\(lsub ? "LSUB" : "LIST") completed")
    }

    /// `INBOX` first, then by name.
    static func mailboxOrder(_ a: String, _ b: String) -> Bool {
        if a == "INBOX" { return b != "INBOX" }
        if b == "INBOX" { return false }
        return a < b
    }

    // MARK: STATUS

    /// STATUS values of the mailboxes asked for (a missing name: it does not exist).
    public mutating func statusesFetched(_ result: Result<[String: MailboxStatus], MailboxError>) -> Action {
        switch running {
        case .status(let tag, let name, let attributes):
            switch result {
            case .failure(let error): return no(tag, error)
            case .success(let statuses):
                guard let status = statuses[name] else { return no(tag, .nonexistent) }
                return ok(tag, [.status(name: encode(name), status.values(attributes))], "STATUS completed")
            }
        case .listStatus(let tag, let items, let attributes):
            guard case .success(let statuses) = result else {
                if case .failure(let error) = result { return no(tag, error) }
                preconditionFailure()
            }
            var out: [IMAPResponse] = []
            for item in items {
                out.append(item)
                if case .list(let l) = item, let name = decode(MailboxName(l.name)), let status = statuses[name] {
                    out.append(.status(name: l.name, status.values(attributes)))
                }
            }
            return ok(tag, out, "LIST completed")
        default:
            preconditionFailure("statusesFetched without STATUS")
        }
    }

    // MARK: QUOTA

    /// The account's storage use (RFC 9208).
    public mutating func quotaFetched(_ result: Result<QuotaUsage, MailboxError>) -> Action {
        guard case .quota(let tag, let mailbox) = running else { preconditionFailure("quotaFetched without GETQUOTA") }
        guard case .success(let usage) = result else {
            if case .failure(let error) = result { return no(tag, error) }
            preconditionFailure()
        }
        var out: [IMAPResponse] = []
        if let mailbox {
            out.append(.quotaRoot(mailbox: encode(mailbox), roots: usage.limitBytes == nil ? [] : [""]))
        } else if usage.limitBytes == nil {
            return finish(tag, [], .no, .nonexistent, "No quota is set")
        }
        if let limit = usage.limitBytes {
            out.append(.quota(root: "", [(resource: "STORAGE", usage: (usage.usedBytes + 1023) / 1024, limit: limit / 1024)]))
        }
        return ok(tag, out, mailbox == nil ? "GETQUOTA completed" : "GETQUOTAROOT completed")
    }

    // MARK: IDLE and updates

    /// `DONE` ended IDLE.
    public mutating func idleDone() -> Action {
        guard case .idle(let tag) = running else { return .none }
        return ok(tag, [], "IDLE terminated")
    }

    /// Changes to the selected mailbox by others. During IDLE they go out at once; otherwise they
    /// wait for the next command's completion.
    public mutating func mailboxUpdated(_ update: MailboxUpdate) -> Action {
        guard var s = selected, !update.isEmpty || update.highestModSeq != nil else { return .none }
        s.record(update)
        guard isIdling else {
            selected = s
            return .none
        }
        let out = s.flush(expungesAllowed: true, vanished: qresync, condStore: condStore, imap4rev2: imap4rev2)
        selected = s
        return out.isEmpty ? .none : .send(out, then: .readIdle)
    }

    // MARK: APPEND

    /// APPEND's options were read; its message follows.
    public mutating func appendStarted(tag: String, mailbox name: MailboxName, message: AppendMessage, synchronizing: Bool) -> Action {
        func refuse(_ response: IMAPResponse) -> Action {
            if synchronizing { return .send([response], then: .rejectLiteral) }
            running = .appendDiscarding(tag: tag)
            return .send([response], then: .readCommands)
        }
        if case .appendReceiving = running {
            // A second message of the same APPEND (RFC 3502 MULTIAPPEND), which is not offered.
            return refuse(.tagged(tag: tag, status: .bad, code: nil, text: "MULTIAPPEND is not supported"))
        }
        guard isAuthenticated else { return refuse(.tagged(tag: tag, status: .bad, code: nil, text: "APPEND needs a login first")) }
        guard message.size <= configuration.appendLimit else {
            return refuse(.tagged(tag: tag, status: .no, code: .tooBig, text: "Message is larger than APPENDLIMIT \(configuration.appendLimit)"))
        }
        guard let mailbox = decode(name), Self.isValidName(mailbox) else {
            return refuse(.tagged(tag: tag, status: .bad, code: nil, text: "Invalid mailbox name"))
        }
        if let f = message.flags.first(where: { $0.isUnknownSystemFlag || $0 == .recent }) {
            return refuse(.tagged(tag: tag, status: .bad, code: nil, text: "Invalid system flag \(f.name)"))
        }
        running = .appendReceiving(tag: tag)
        return .beginAppend(mailbox: mailbox, message: message,
                            continuation: synchronizing ? [.continuation("Ready for literal data")] : [],
                            then: synchronizing ? .acceptLiteral : .readCommands)
    }

    /// The APPEND message and the command's CRLF were read.
    public mutating func appendDataFinished() -> Action {
        switch running {
        case .appendDiscarding:
            running = nil
            return .none
        case .appendReceiving(let tag):
            running = .appendCommitting(tag: tag, mailbox: "")
            return .commitAppend
        default:
            return .none
        }
    }

    /// The APPEND was stored (or refused).
    public mutating func appendCompleted(_ result: Result<(uidValidity: UInt32, uid: UInt32), MailboxError>) -> Action {
        guard case .appendCommitting(let tag, _) = running else { preconditionFailure("appendCompleted without APPEND") }
        switch result {
        case .success(let r):
            return ok(tag, [], "APPEND completed", code: .appendUID(uidValidity: r.uidValidity, uid: r.uid))
        case .failure(.nonexistent):
            return finish(tag, [], .no, .tryCreate, "Mailbox does not exist")
        case .failure(let error):
            return no(tag, error)
        }
    }
}
