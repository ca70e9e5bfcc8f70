import NIOCore
import IMAPCore
import MailCore
import SASL
import Testing

// Support for the session machine scripts. IMAPResponse's `==` goes through the encoder, so the
// scripts never compare responses or actions that carry them with `==`: `render` writes each action
// as readable lines (close to the wire form) and the scripts compare those.

typealias Machine = IMAPServerStateMachine

let host = "imap.example.test"
let user = "alice@example.test"

/// Capabilities before login, by TLS state.
let baseCapabilities = ["IMAP4rev1", "IMAP4rev2", "SASL-IR", "LITERAL+", "ID", "ENABLE", "IDLE"]
let authenticatedCapabilities = baseCapabilities + [
    "NAMESPACE", "UNSELECT", "UIDPLUS", "MOVE", "CHILDREN", "LIST-EXTENDED", "LIST-STATUS", "SPECIAL-USE",
    "CREATE-SPECIAL-USE", "STATUS=SIZE", "ESEARCH", "SEARCHRES", "CONDSTORE", "QRESYNC", "BINARY", "UTF8=ACCEPT",
    "APPENDLIMIT=52428800", "QUOTA", "QUOTA=RES-STORAGE", "SORT", "THREAD=REFERENCES", "THREAD=ORDEREDSUBJECT",
]

func configuration(tls: Bool = true, plaintext: Bool = false, appendLimit: Int = 50 * 1_048_576,
                   compression: Bool = false, maxBadCommands: Int = 20) -> Machine.Configuration {
    .init(hostname: host, tlsAvailable: tls, allowPlaintextAuthentication: plaintext, appendLimit: appendLimit,
          compressionAvailable: compression, maxBadCommands: maxBadCommands)
}

// MARK: Rendering

func render(_ set: SequenceSet) -> String {
    if set.isLastSearchResult { return "$" }
    func bound(_ b: SequenceSet.Bound) -> String {
        switch b {
        case .number(let n): "\(n)"
        case .star: "*"
        }
    }
    return set.ranges.map { $0.first == $0.last ? bound($0.first) : "\(bound($0.first)):\(bound($0.last))" }.joined(separator: ",")
}

func render(_ code: ResponseCode) -> String {
    switch code {
    case .alert: "ALERT"
    case .badCharset(let c): "BADCHARSET (\(c.joined(separator: " ")))"
    case .capability(let c): "CAPABILITY \(c.joined(separator: " "))"
    case .parse: "PARSE"
    case .permanentFlags(let f, let new): "PERMANENTFLAGS (\((f.map(\.name) + (new ? ["\\*"] : [])).joined(separator: " ")))"
    case .readOnly: "READ-ONLY"
    case .readWrite: "READ-WRITE"
    case .tryCreate: "TRYCREATE"
    case .uidNext(let n): "UIDNEXT \(n)"
    case .uidValidity(let n): "UIDVALIDITY \(n)"
    case .unseen(let n): "UNSEEN \(n)"
    case .appendUID(let v, let u): "APPENDUID \(v) \(u)"
    case .copyUID(let v, let s, let d): "COPYUID \(v) \(render(s)) \(render(d))"
    case .uidNotSticky: "UIDNOTSTICKY"
    case .closed: "CLOSED"
    case .highestModSeq(let n): "HIGHESTMODSEQ \(n)"
    case .noModSeq: "NOMODSEQ"
    case .modified(let s): "MODIFIED \(render(s))"
    case .unavailable: "UNAVAILABLE"
    case .authenticationFailed: "AUTHENTICATIONFAILED"
    case .authorizationFailed: "AUTHORIZATIONFAILED"
    case .expired: "EXPIRED"
    case .privacyRequired: "PRIVACYREQUIRED"
    case .contactAdmin: "CONTACTADMIN"
    case .noPerm: "NOPERM"
    case .inUse: "INUSE"
    case .expungeIssued: "EXPUNGEISSUED"
    case .corruption: "CORRUPTION"
    case .serverBug: "SERVERBUG"
    case .clientBug: "CLIENTBUG"
    case .cannot: "CANNOT"
    case .limit: "LIMIT"
    case .overQuota: "OVERQUOTA"
    case .alreadyExists: "ALREADYEXISTS"
    case .nonexistent: "NONEXISTENT"
    case .notSaved: "NOTSAVED"
    case .hasChildren: "HASCHILDREN"
    case .unknownCTE: "UNKNOWN-CTE"
    case .tooBig: "TOOBIG"
    case .compressionActive: "COMPRESSIONACTIVE"
    case .useAttr: "USEATTR"
    }
}

func render(_ flags: [IMAPFlag]) -> String { "(" + flags.map(\.name).joined(separator: " ") + ")" }

func render(_ item: FetchItem) -> String {
    switch item {
    case .uid(let u): "UID \(u)"
    case .flags(let f): "FLAGS \(render(f))"
    case .internalDate(let d): "INTERNALDATE \(d)"
    case .rfc822Size(let n): "RFC822.SIZE \(n)"
    case .modSeq(let m): "MODSEQ (\(m))"
    case .envelope: "ENVELOPE (…)"
    case .bodyStructure(_, let ext): ext ? "BODYSTRUCTURE (…)" : "BODY (…)"
    case .section(let name, let data): "\(name) \(data == nil ? "NIL" : "{…}")"
    case .binarySize(let part, let size): "BINARY.SIZE[\(part.map(String.init).joined(separator: "."))] \(size)"
    case .encoded(let bytes): String(decoding: bytes.readableBytesView, as: UTF8.self)
    }
}

func render(_ node: ThreadNode) -> String {
    let me = node.message.map(String.init) ?? ""
    let kids = node.children.map(render).joined()
    return "(\(me)\(me.isEmpty || kids.isEmpty ? "" : " ")\(kids))"
}

func render(_ item: ListItem, _ verb: String) -> String {
    var s = "* \(verb) (\(item.attributes.joined(separator: " "))) \(item.delimiter.map { "\"\($0)\"" } ?? "NIL") \"\(item.name)\""
    if item.childInfoSubscribed { s += " (\"CHILDINFO\" (\"SUBSCRIBED\"))" }
    if let old = item.oldName { s += " (\"OLDNAME\" (\"\(old)\"))" }
    return s
}

func render(_ response: IMAPResponse) -> String {
    func withCode(_ code: ResponseCode?, _ text: String) -> String {
        (code.map { "[\(render($0))] " } ?? "") + text
    }
    switch response {
    case .tagged(let tag, let status, let code, let text): return "\(tag) \(status.rawValue) \(withCode(code, text))"
    case .untagged(let status, let code, let text): return "* \(status.rawValue) \(withCode(code, text))"
    case .continuation(let text): return "+ \(text)"
    case .capability(let c): return "* CAPABILITY \(c.joined(separator: " "))"
    case .enabled(let e): return (["* ENABLED"] + e).joined(separator: " ")
    case .list(let item): return render(item, "LIST")
    case .lsub(let item): return render(item, "LSUB")
    case .status(let name, let values):
        return "* STATUS \"\(name)\" (\(values.map { "\($0.0.rawValue) \($0.1)" }.joined(separator: " ")))"
    case .flags(let f): return "* FLAGS \(render(f))"
    case .exists(let n): return "* \(n) EXISTS"
    case .recent(let n): return "* \(n) RECENT"
    case .expunge(let n): return "* \(n) EXPUNGE"
    case .vanished(let earlier, let set): return "* VANISHED \(earlier ? "(EARLIER) " : "")\(render(set))"
    case .fetch(let n, let items): return "* \(n) FETCH (\(items.map(render).joined(separator: " ")))"
    case .search(let numbers, let modSeq):
        return (["* SEARCH"] + numbers.map(String.init) + (modSeq.map { ["(MODSEQ \($0))"] } ?? [])).joined(separator: " ")
    case .extendedSearch(let r):
        var parts = ["* ESEARCH (TAG \"\(r.tag)\")"]
        if r.uid { parts.append("UID") }
        if let v = r.min { parts.append("MIN \(v)") }
        if let v = r.max { parts.append("MAX \(v)") }
        if let v = r.count { parts.append("COUNT \(v)") }
        if let v = r.all { parts.append("ALL \(render(v))") }
        if let v = r.modSeq { parts.append("MODSEQ \(v)") }
        return parts.joined(separator: " ")
    case .sort(let numbers): return (["* SORT"] + numbers.map(String.init)).joined(separator: " ")
    case .thread(let trees): return "* THREAD " + trees.map(render).joined()
    case .namespace(let prefix, let delimiter): return "* NAMESPACE ((\"\(prefix)\" \"\(delimiter)\")) NIL NIL"
    case .id(let fields):
        guard let fields else { return "* ID NIL" }
        return "* ID (" + fields.map { "\"\($0.name)\" \($0.value.map { "\"\($0)\"" } ?? "NIL")" }.joined(separator: " ") + ")"
    case .quota(let root, let resources):
        return "* QUOTA \"\(root)\" (\(resources.map { "\($0.resource) \($0.usage) \($0.limit)" }.joined(separator: " ")))"
    case .quotaRoot(let mailbox, let roots):
        return (["* QUOTAROOT \"\(mailbox)\""] + roots.map { "\"\($0)\"" }).joined(separator: " ")
    }
}

func render(_ then: Machine.Continuation) -> String {
    switch then {
    case .readCommands: "→ read"
    case .readSASLResponse: "→ sasl"
    case .readIdle: "→ idle"
    case .acceptLiteral: "→ accept literal"
    case .rejectLiteral: "→ reject literal"
    case .startTLS: "→ starttls"
    case .startCompression: "→ compress"
    case .close: "→ close"
    }
}

/// The action as lines: responses, then the continuation; store requests as one line each.
func render(_ action: Machine.Action) -> [String] {
    switch action {
    case .send(let responses, let then): return responses.map(render) + [render(then)]
    case .verifyPassword(let u, let p): return ["verifyPassword \(u) \(p)"]
    case .lookUpSCRAMCredentials(let u): return ["lookUpSCRAMCredentials \(u)"]
    case .openSession(let u): return ["openSession \(u)"]
    case .select(let mailbox, let readOnly, let q):
        var s = "select \(mailbox)\(readOnly ? " read-only" : "")"
        if let q { s += " qresync \(q.uidValidity) \(q.modSeq)\(q.knownUIDs.map { " " + render($0) } ?? "")" }
        return [s]
    case .unselect(let then): return ["unselect"] + then.map(render)
    case .listMailboxes: return ["listMailboxes"]
    case .status(let names): return ["status " + names.joined(separator: ", ")]
    case .create(let m, let use): return ["create \(m)\(use.map { " " + $0 } ?? "")"]
    case .delete(let m): return ["delete \(m)"]
    case .rename(let a, let b): return ["rename \(a) → \(b)"]
    case .subscribe(let m): return ["subscribe \(m)"]
    case .unsubscribe(let m): return ["unsubscribe \(m)"]
    case .fetch(let r):
        var s = r.preceding.map(render).map { $0 + " | " }.joined() + "fetch " + r.messages.map { "\($0.sequenceNumber)=\($0.uid)" }.joined(separator: " ")
        s += " [" + r.attributes.map(render).joined(separator: " ") + "]"
        if !r.setsSeen { s += " peek" }
        if let c = r.changedSince { s += " changedSince \(c)" }
        return [s]
    case .search(let r): return ["search \(r.key) over \(r.uids)\(r.charset.map { " charset " + $0 } ?? "")"]
    case .sort(let r, let criteria): return ["sort \(r.key) by \(criteria.map(\.key.rawValue))"]
    case .thread(let r, let algorithm): return ["thread \(r.key) \(algorithm)"]
    case .store(let r):
        return ["store \(r.uids) \(r.modification.operation) \(render(r.modification.flags))\(r.modification.silent ? " silent" : "")"
                + (r.modification.unchangedSince.map { " unchangedSince \($0)" } ?? "")]
    case .copy(let uids, let mailbox, let move): return ["\(move ? "move" : "copy") \(uids) → \(mailbox)"]
    case .expunge(let uids): return ["expunge" + (uids.map { " \($0)" } ?? "")]
    case .beginAppend(let mailbox, let message, let continuation, let then):
        return ["beginAppend \(mailbox) \(message.size) \(render(message.flags))"] + continuation.map(render) + [render(then)]
    case .commitAppend: return ["commitAppend"]
    case .quota: return ["quota"]
    case .close: return ["close"]
    case .none: return ["none"]
    }
}

func render(_ attribute: FetchAttribute) -> String {
    switch attribute {
    case .envelope: "ENVELOPE"
    case .flags: "FLAGS"
    case .internalDate: "INTERNALDATE"
    case .rfc822Size: "RFC822.SIZE"
    case .bodyStructure(let ext): ext ? "BODYSTRUCTURE" : "BODY"
    case .uid: "UID"
    case .modSeq: "MODSEQ"
    case .rfc822: "RFC822"
    case .rfc822Header: "RFC822.HEADER"
    case .rfc822Text: "RFC822.TEXT"
    case .bodySection(_, _, let peek): peek ? "BODY.PEEK[…]" : "BODY[…]"
    case .binary(_, _, let peek): peek ? "BINARY.PEEK[…]" : "BINARY[…]"
    case .binarySize: "BINARY.SIZE[…]"
    }
}

// MARK: Driving

extension IMAPServerStateMachine {
    /// Feeds one tagged command and renders the action.
    mutating func run(_ tag: String, _ command: IMAPCommand) -> [String] {
        render(commandReceived(TaggedCommand(tag: tag, command: command)))
    }
}

func mailbox(_ name: String) -> MailboxName { MailboxName(name) }

/// `1:*`-style sets: `set("2:4,7")`, `set("5:*")`, `set("$")`.
func set(_ text: String) -> SequenceSet {
    if text == "$" { return .lastSearchResult }
    return SequenceSet(text.split(separator: ",").map { part in
        let ends = part.split(separator: ":").map { $0 == "*" ? SequenceSet.Bound.star : .number(UInt32($0)!) }
        return SequenceSet.Range(ends[0], ends.count > 1 ? ends[1] : ends[0])
    })
}

/// A machine logged in as `user` over implicit TLS (greeting, LOGIN, session opened).
func authenticated(_ config: Machine.Configuration = configuration(), enable: [String] = []) -> Machine {
    var m = Machine(configuration: config, implicitTLS: true)
    _ = m.connectionEstablished()
    #expect(m.run("l", .login(user: user, password: "pw")) == ["verifyPassword \(user) pw"])
    #expect(render(m.passwordVerified(true, user: user)) == ["openSession \(user)"])
    #expect(render(m.sessionOpened(.success(()))).first?.hasPrefix("l OK [CAPABILITY") == true)
    if !enable.isEmpty { _ = m.run("e", .enable(enable)) }
    return m
}

/// A selection result for INBOX (`uids` default 1…6, UIDVALIDITY 7, HIGHESTMODSEQ 100).
func inboxInfo(_ uids: [UInt32] = [1, 2, 3, 4, 5, 6], name: String = "INBOX", uidNext: UInt32? = nil, readOnly: Bool = false,
               vanished: [UInt32] = [], changed: [MessageFlags] = []) -> SelectedMailboxInfo {
    SelectedMailboxInfo(name: name, uidValidity: 7, uidNext: uidNext ?? (uids.last ?? 0) + 1, highestModSeq: 100, uids: uids,
                        keywords: [IMAPFlag("$Forwarded")], firstUnseen: uids.isEmpty ? nil : 1, readOnly: readOnly,
                        vanished: vanished, changed: changed)
}

/// A machine with INBOX selected (or examined).
func selected(_ info: SelectedMailboxInfo = inboxInfo(), examine: Bool = false, enable: [String] = [],
              config: Machine.Configuration = configuration()) -> Machine {
    var m = authenticated(config, enable: enable)
    let command: IMAPCommand = examine ? .examine(mailbox(info.name), SelectParameters()) : .select(mailbox(info.name), SelectParameters())
    _ = m.run("s", command)
    let out = render(m.mailboxSelected(.success(info)))
    #expect(out.dropLast().last?.hasPrefix("s OK") == true)
    return m
}

/// `uid FLAGS (flags) modseq` as the store reports it.
func flags(_ uid: UInt32, _ names: [String], _ modSeq: UInt64) -> MessageFlags {
    MessageFlags(uid: uid, flags: names.map(IMAPFlag.init), modSeq: modSeq)
}
