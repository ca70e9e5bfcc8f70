// Commands of the selected state (RFC 9051 §6.4) and their completion events.
extension IMAPServerStateMachine {
    mutating func dispatchSelected(_ tag: String, _ command: IMAPCommand) -> Action {
        guard let view = selected else { preconditionFailure("selected state without a mailbox") }
        switch command {
        case .close:
            if view.readOnly {
                return closeMailbox(tag)
            }
            running = .expunge(tag: tag, close: true, uid: false)
            return .expunge(uids: nil)
        case .unselect:
            return closeMailbox(tag)
        case .expunge, .uidExpunge:
            guard !view.readOnly else { return finish(tag, [], .no, .cannot, "Mailbox is read-only") }
            var uids: [UInt32]?
            if case .uidExpunge(let set) = command {
                guard let messages = view.resolve(set, uid: true, saved: savedSearch) else { return bad(tag, "Invalid UID set") }
                uids = messages.map(\.uid)
                if uids!.isEmpty { return ok(tag, [], "EXPUNGE completed") }
            }
            running = .expunge(tag: tag, close: false, uid: uids != nil)
            return .expunge(uids: uids)
        case .search(let search, let uid):
            guard Self.charsetSupported(search.charset) else {
                // RFC 5182 §2.1: a failed SEARCH with SAVE leaves `$` empty.
                if search.returnOptions?.save == true { savedSearch = [] }
                return finish(tag, [], .no, .badCharset(["UTF-8", "US-ASCII"]), "Unsupported charset", expungesAllowed: uid)
            }
            if Self.mentionsModSeq(search.key) { condStore = true }
            running = .search(tag: tag, search, uid: uid)
            return .search(SearchRequest(key: resolveSaved(search.key), uids: view.uids, charset: search.charset))
        case .fetch(let set, var attributes, let modifiers, let uid):
            guard let messages = view.resolve(set, uid: uid, saved: savedSearch) else {
                return bad(tag, "Invalid message sequence number")
            }
            if modifiers.vanished, !(uid && qresync && modifiers.changedSince != nil) {
                return bad(tag, "VANISHED needs UID FETCH with CHANGEDSINCE and QRESYNC enabled")
            }
            if modifiers.changedSince != nil || attributes.contains(.modSeq) { condStore = true }
            if uid, !attributes.contains(.uid) { attributes.insert(.uid, at: 0) }
            // RFC 7162 §3.1.4.1: CHANGEDSINCE implies MODSEQ in the responses.
            if modifiers.changedSince != nil, !attributes.contains(.modSeq) { attributes.append(.modSeq) }
            var early: [IMAPResponse] = []
            if modifiers.vanished {
                // RFC 7162 §3.2.6: UIDs in the set that no longer exist. Swallow keeps no expunge
                // history, so every absent UID in the range counts (the RFC allows extra UIDs).
                let largest = max(view.uidNext &- 1, view.largestUID)
                let gone = SelectedMailbox.absent(from: set, largest: largest, present: view.uids)
                if !gone.isEmpty { early.append(.vanished(earlier: true, SequenceSet(closedRanges: gone))) }
            }
            if messages.isEmpty { return ok(tag, early, "FETCH completed", expungesAllowed: uid) }
            running = .fetch(tag: tag, uid: uid)
            return .fetch(FetchRequest(tag: tag, messages: messages, attributes: attributes, setsSeen: !view.readOnly,
                                       changedSince: modifiers.changedSince, preceding: early))
        case .store(let set, let modification, let uid):
            guard !view.readOnly else { return finish(tag, [], .no, .cannot, "Mailbox is read-only", expungesAllowed: uid) }
            guard let messages = view.resolve(set, uid: uid, saved: savedSearch) else {
                return bad(tag, "Invalid message sequence number")
            }
            if modification.unchangedSince != nil { condStore = true }
            if modification.flags.contains(.recent) { return bad(tag, "\\Recent cannot be stored") }
            if let f = modification.flags.first(where: \.isUnknownSystemFlag) { return bad(tag, "Invalid system flag \(f.name)") }
            if messages.isEmpty { return ok(tag, [], "STORE completed", expungesAllowed: uid) }
            running = .store(tag: tag, uid: uid, modification)
            return .store(StoreRequest(uids: messages.map(\.uid), modification: modification))
        case .copy(let set, let name, let uid), .move(let set, let name, let uid):
            var move = false
            if case .move = command { move = true }
            guard let mailbox = decode(name) else { return bad(tag, "Invalid mailbox name") }
            if move, view.readOnly { return finish(tag, [], .no, .cannot, "Mailbox is read-only") }
            guard let messages = view.resolve(set, uid: uid, saved: savedSearch) else {
                return bad(tag, "Invalid message sequence number")
            }
            if messages.isEmpty { return ok(tag, [], "\(move ? "MOVE" : "COPY") completed") }
            running = .copy(tag: tag, move: move, uid: uid)
            return .copy(uids: messages.map(\.uid), mailbox: mailbox, move: move)
        case .sort(let criteria, let charset, let key, let uid):
            guard Self.charsetSupported(charset) else {
                return finish(tag, [], .no, .badCharset(["UTF-8", "US-ASCII"]), "Unsupported charset", expungesAllowed: uid)
            }
            running = .sort(tag: tag, uid: uid)
            return .sort(SearchRequest(key: resolveSaved(key), uids: view.uids, charset: charset), criteria: criteria)
        case .thread(let algorithm, let charset, let key, let uid):
            guard ["REFERENCES", "ORDEREDSUBJECT"].contains(algorithm.uppercased()) else { return bad(tag, "Unsupported threading algorithm") }
            guard Self.charsetSupported(charset) else {
                return finish(tag, [], .no, .badCharset(["UTF-8", "US-ASCII"]), "Unsupported charset", expungesAllowed: uid)
            }
            running = .thread(tag: tag, uid: uid)
            return .thread(SearchRequest(key: resolveSaved(key), uids: view.uids, charset: charset), algorithm: algorithm.uppercased())
        default:
            return wrongState(tag, command)
        }
    }

    private mutating func closeMailbox(_ tag: String) -> Action {
        selected = nil
        savedSearch = []
        state = .authenticated
        running = nil
        return .unselect(then: [.tagged(tag: tag, status: .ok, code: nil, text: "Mailbox closed")])
    }

    static func charsetSupported(_ charset: String?) -> Bool {
        guard let c = charset?.uppercased() else { return true }
        return c == "UTF-8" || c == "US-ASCII" || c == "UTF8"
    }

    static func mentionsModSeq(_ key: SearchKey) -> Bool {
        switch key {
        case .modSeq: true
        case .not(let k): mentionsModSeq(k)
        case .or(let a, let b): mentionsModSeq(a) || mentionsModSeq(b)
        case .and(let keys): keys.contains(where: mentionsModSeq)
        default: false
        }
    }

    /// Replaces `$` (RFC 5182) with the saved UIDs.
    func resolveSaved(_ key: SearchKey) -> SearchKey {
        switch key {
        case .sequenceNumbers(let set) where set.isLastSearchResult, .uid(let set) where set.isLastSearchResult:
            return .uid(SequenceSet(values: savedSearch))
        case .not(let k): return .not(resolveSaved(k))
        case .or(let a, let b): return .or(resolveSaved(a), resolveSaved(b))
        case .and(let keys): return .and(keys.map(resolveSaved))
        default: return key
        }
    }

    // MARK: Completion events

    /// The FETCH responses were streamed; `missing` are UIDs whose message was gone when read.
    public mutating func fetchCompleted(missing: [UInt32]) -> Action {
        guard case .fetch(let tag, let uid) = running else { preconditionFailure("fetchCompleted without FETCH") }
        // A UID FETCH may announce expunges (RFC 9051 §7.5.1), and a UID that no longer exists is
        // ignored without an error (§6.4.9): a message expunged elsewhere is announced with this
        // completion, so it is not missing.
        let announced = uid && missing.allSatisfy { selected?.pendingExpunged.contains($0) == true }
        if !missing.isEmpty, !announced {
            // RFC 9051 §7.5.1 leaves the choice; Dovecot answers NO [EXPUNGEISSUED] too.
            return finish(tag, [], .no, .expungeIssued, "Some messages were expunged meanwhile", expungesAllowed: uid)
        }
        return ok(tag, [], "FETCH completed", expungesAllowed: uid)
    }

    /// The search result: matching UIDs ascending, and the highest MODSEQ among them (CONDSTORE).
    public mutating func searchCompleted(_ result: Result<(uids: [UInt32], highestModSeq: UInt64?), MailboxError>) -> Action {
        guard case .search(let tag, let search, let uid) = running, let view = selected else { preconditionFailure("searchCompleted without SEARCH") }
        guard case .success(let found) = result else {
            if search.returnOptions?.save == true { savedSearch = [] }
            if case .failure(let error) = result { return finish(tag, [], .no, Self.code(error), Self.text(error), expungesAllowed: uid) }
            preconditionFailure()
        }
        let modSeq = Self.mentionsModSeq(search.key) && !found.uids.isEmpty ? found.highestModSeq : nil
        let numbers: [UInt32] = uid ? found.uids : found.uids.compactMap { view.sequenceNumber(of: $0).map(UInt32.init) }
        var out: [IMAPResponse] = []
        if search.returnOptions != nil || imap4rev2 {
            var options = search.returnOptions ?? SearchReturnOptions()
            if !options.min, !options.max, !options.count, !options.all, !options.save { options.all = true }
            if options.save {
                if options.all || options.count || (!options.min && !options.max) {
                    savedSearch = found.uids
                } else {
                    var s: [UInt32] = []
                    if options.min, let f = found.uids.first { s.append(f) }
                    if options.max, let l = found.uids.last, !s.contains(l) { s.append(l) }
                    savedSearch = s
                }
            }
            let onlySave = options.save && !options.min && !options.max && !options.count && !options.all
            if !onlySave {
                var r = ExtendedSearchResult(tag: tag, uid: uid)
                if options.min { r.min = numbers.min() }
                if options.max { r.max = numbers.max() }
                if options.count { r.count = numbers.count }
                if options.all, !numbers.isEmpty { r.all = SequenceSet(values: numbers.sorted()) }
                r.modSeq = modSeq
                out.append(.extendedSearch(r))
            }
        } else {
            out.append(.search(numbers, modSeq: modSeq))
        }
        return ok(tag, out, "SEARCH completed", expungesAllowed: uid)
    }

    /// SORT's result: matching UIDs in sort order.
    public mutating func sortCompleted(_ result: Result<[UInt32], MailboxError>) -> Action {
        guard case .sort(let tag, let uid) = running, let view = selected else { preconditionFailure("sortCompleted without SORT") }
        switch result {
        case .failure(let error): return finish(tag, [], .no, Self.code(error), Self.text(error), expungesAllowed: uid)
        case .success(let uids):
            let numbers = uid ? uids : uids.compactMap { view.sequenceNumber(of: $0).map(UInt32.init) }
            return ok(tag, [.sort(numbers)], "SORT completed", expungesAllowed: uid)
        }
    }

    /// THREAD's result: trees of UIDs.
    public mutating func threadCompleted(_ result: Result<[ThreadNode], MailboxError>) -> Action {
        guard case .thread(let tag, let uid) = running, let view = selected else { preconditionFailure("threadCompleted without THREAD") }
        switch result {
        case .failure(let error): return finish(tag, [], .no, Self.code(error), Self.text(error), expungesAllowed: uid)
        case .success(let trees):
            func renumber(_ n: ThreadNode) -> ThreadNode {
                ThreadNode(message: n.message.flatMap { u in uid ? u : view.sequenceNumber(of: u).map(UInt32.init) },
                           children: n.children.map(renumber))
            }
            return ok(tag, [.thread(trees.map(renumber))], "THREAD completed", expungesAllowed: uid)
        }
    }

    /// STORE changed flags.
    public mutating func storeCompleted(_ result: Result<StoreOutcome, MailboxError>) -> Action {
        guard case .store(let tag, let uid, let modification) = running, let view = selected else { preconditionFailure("storeCompleted without STORE") }
        switch result {
        case .failure(let error): return finish(tag, [], .no, Self.code(error), Self.text(error), expungesAllowed: uid)
        case .success(let outcome):
            var out: [IMAPResponse] = []
            selected?.supersedePendingFlags(outcome.updated)
            for f in outcome.updated.sorted(by: { $0.uid < $1.uid }) {
                guard let n = view.sequenceNumber(of: f.uid) else { continue }
                var items: [FetchItem] = []
                // RFC 7162 §3.1.4.1: with CONDSTORE on, every untagged FETCH carries UID and MODSEQ.
                if uid || condStore { items.append(.uid(f.uid)) }
                if !modification.silent { items.append(.flags(f.flags)) }
                if condStore { items.append(.modSeq(f.modSeq)) }
                if !modification.silent || condStore { out.append(.fetch(sequenceNumber: n, items)) }
                if var s = selected {
                    s.highestModSeq = max(s.highestModSeq, f.modSeq)
                    // The client saw this MODSEQ in the FETCH just built: no HIGHESTMODSEQ for it.
                    if condStore { s.announcedModSeq = max(s.announcedModSeq, f.modSeq) }
                    selected = s
                }
            }
            if !outcome.modified.isEmpty {
                let numbers = uid ? outcome.modified : outcome.modified.compactMap { view.sequenceNumber(of: $0).map(UInt32.init) }
                return ok(tag, out, "Conditional STORE failed for some messages", code: .modified(SequenceSet(values: numbers.sorted())),
                          expungesAllowed: uid)
            }
            return ok(tag, out, "STORE completed", expungesAllowed: uid)
        }
    }

    /// COPY or MOVE finished.
    public mutating func copyCompleted(_ result: Result<CopyOutcome, MailboxError>) -> Action {
        guard case .copy(let tag, let move, _) = running else { preconditionFailure("copyCompleted without COPY") }
        switch result {
        case .failure(.nonexistent):
            return finish(tag, [], .no, .tryCreate, "Mailbox does not exist")
        case .failure(let error):
            return no(tag, error)
        case .success(let outcome):
            let code = ResponseCode.copyUID(uidValidity: outcome.uidValidity, source: SequenceSet(values: outcome.source.sorted()),
                                            destination: SequenceSet(values: outcome.destination))
            guard move else { return ok(tag, [], "COPY completed", code: code) }
            var out: [IMAPResponse] = [.untagged(status: .ok, code: code, text: "Moved")]
            out += expungeResponses(outcome.source)
            return ok(tag, out, "MOVE completed")
        }
    }

    /// EXPUNGE (or CLOSE's silent expunge) removed these UIDs.
    public mutating func expungeCompleted(_ result: Result<[UInt32], MailboxError>) -> Action {
        guard case .expunge(let tag, let close, _) = running else { preconditionFailure("expungeCompleted without EXPUNGE") }
        switch result {
        case .failure(let error):
            // RFC 9051 §6.4.1: CLOSE answers OK or BAD only; the mailbox is closed either way.
            if close { return closeMailbox(tag) }
            return no(tag, error)
        case .success(let uids):
            if close { return closeMailbox(tag) }
            return ok(tag, expungeResponses(uids), "EXPUNGE completed")
        }
    }

    private mutating func expungeResponses(_ uids: [UInt32]) -> [IMAPResponse] {
        guard var s = selected else { return [] }
        let numbers = s.removeOwn(uids)
        selected = s
        if qresync {
            return uids.isEmpty ? [] : [.vanished(earlier: false, SequenceSet(values: uids.sorted()))]
        }
        return numbers.map { .expunge($0) }
    }
}
