import MailCore
import NIOCore
import POP3Core
import Testing

typealias Machine = POP3ServerStateMachine

extension POP3ServerStateMachine {
    /// Parses `line` and feeds it, like the adapter does.
    mutating func line(_ line: String) -> Action { commandReceived(POP3Command.parse(Array(line.utf8))) }
}

private let host = "pop.example.test"
private let plainTLS = Machine.Configuration(hostname: host, tlsAvailable: true)
private let messages = [
    Machine.MessageInfo(size: 100, uid: "u1"),
    Machine.MessageInfo(size: 200, uid: "u2"),
    Machine.MessageInfo(size: 300, uid: "u3"),
]

private func ok(_ text: String) -> Machine.Action { .send(.ok(text), then: .readCommands) }
private func err(_ text: String, code: String? = nil) -> Machine.Action { .send(.err(text, code: code), then: .readCommands) }
private let refused = err("Plaintext authentication disallowed on non-secure connections; use STLS", code: "AUTH")
private let noSuchMessage = err("No such message")
private let signOff = Machine.Action.send(.ok("\(host) POP3 server signing off"), then: .close)
private func plain(_ authzid: String, _ authcid: String, _ password: String) -> String {
    Base64.encode(Array(authzid.utf8) + [0] + Array(authcid.utf8) + [0] + Array(password.utf8))
}

private let baseCapabilities = ["TOP", "UIDL", "USER", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "EXPIRE NEVER", "IMPLEMENTATION Swallow"]
private let capabilitiesBeforeTLS = baseCapabilities + ["STLS"]
private let capabilitiesWithTLS = ["TOP", "UIDL", "USER", "SASL PLAIN", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "EXPIRE NEVER",
                                   "IMPLEMENTATION Swallow"]
private let capaResponse = POP3Response.ok("Capability list follows")

/// A machine in TRANSACTION with `messages`, logged in over implicit TLS.
private func loggedIn(_ list: [Machine.MessageInfo] = messages) -> Machine {
    var m = Machine(configuration: plainTLS, implicitTLS: true)
    _ = m.connectionEstablished()
    #expect(m.line("USER alice@example.test") == ok("Send your password"))
    #expect(m.line("PASS secret") == .authenticate(user: "alice@example.test", password: "secret"))
    #expect(m.authenticationSucceeded() == .openMaildrop(user: "alice@example.test"))
    let total = list.reduce(0) { $0 + $1.size }
    #expect(m.maildropOpened(list) == ok("Logged in: \(list.count) messages (\(total) octets)"))
    #expect(m.isInTransaction)
    return m
}

/// Session scripts for RFC 1939, 2449, 2595, 3206 and 5034.
@Suite struct POP3ServerStateMachineTests {
    // MARK: AUTHORIZATION

    @Test func greeting() {
        let m = Machine(configuration: plainTLS)
        #expect(m.connectionEstablished() == ok("\(host) POP3 server ready (Swallow)"))
        #expect(!m.isInTransaction)
    }

    @Test func capaBeforeAndAfterSTLS() {
        var m = Machine(configuration: plainTLS)
        #expect(m.line("CAPA") == .sendLines(capaResponse, capabilitiesBeforeTLS))
        #expect(m.line("STLS") == .send(.ok("Begin TLS negotiation"), then: .startTLS))
        #expect(m.tlsEstablished() == .none)
        #expect(m.line("capa") == .sendLines(capaResponse, capabilitiesWithTLS))
        // STLS is not offered again, and a second STLS is refused.
        #expect(m.line("STLS") == err("TLS already active"))
    }

    @Test func capaWithImplicitTLS() {
        var m = Machine(configuration: plainTLS, implicitTLS: true)
        #expect(m.line("CAPA") == .sendLines(capaResponse, capabilitiesWithTLS))
        #expect(m.line("STLS") == err("TLS already active"))
    }

    @Test func capaWithPlaintextAuthenticationAllowed() {
        var m = Machine(configuration: .init(hostname: host, tlsAvailable: true, allowPlaintextAuthentication: true))
        #expect(m.line("CAPA") == .sendLines(capaResponse, capabilitiesWithTLS + ["STLS"]))
        #expect(m.line("USER alice@example.test") == ok("Send your password"))
        #expect(m.line("PASS pw") == .authenticate(user: "alice@example.test", password: "pw"))
    }

    @Test func capaWithoutTLS() {
        var m = Machine(configuration: .init(hostname: host, tlsAvailable: false))
        #expect(m.line("CAPA") == .sendLines(capaResponse, baseCapabilities))
        #expect(m.line("STLS") == err("TLS not available"))
        #expect(m.line("USER a@b") == refused)
    }

    @Test func stlsResetsTheSession() {
        // With plaintext allowed, a USER before STLS must be forgotten after the handshake (RFC 2595 §4).
        var m = Machine(configuration: .init(hostname: host, tlsAvailable: true, allowPlaintextAuthentication: true))
        #expect(m.line("USER mallory@example.test") == ok("Send your password"))
        #expect(m.line("STLS") == .send(.ok("Begin TLS negotiation"), then: .startTLS))
        #expect(m.tlsEstablished() == .none)
        #expect(m.line("PASS pw") == err("USER first"))
        #expect(m.line("STLS") == err("TLS already active"))
    }

    @Test func userAndPassRefusedBeforeTLS() {
        var m = Machine(configuration: plainTLS)
        #expect(m.line("USER alice@example.test") == refused)
        #expect(m.line("PASS secret") == refused)
        #expect(m.line("AUTH PLAIN \(plain("", "alice@example.test", "secret"))") == refused)
        #expect(m.line("AUTH PLAIN") == refused)
        #expect(m.line("AUTH") == .sendLines(.ok("Supported mechanisms"), []))
        // After STLS the same commands work.
        _ = m.line("STLS")
        _ = m.tlsEstablished()
        #expect(m.line("AUTH") == .sendLines(.ok("Supported mechanisms"), ["PLAIN"]))
        #expect(m.line("USER alice@example.test") == ok("Send your password"))
        #expect(m.line("PASS secret") == .authenticate(user: "alice@example.test", password: "secret"))
    }

    @Test func transactionCommandsNeedALogin() {
        var m = Machine(configuration: plainTLS, implicitTLS: true)
        for line in ["STAT", "LIST", "LIST 1", "UIDL", "RETR 1", "TOP 1 0", "DELE 1", "RSET", "NOOP"] {
            #expect(m.line(line) == err("Not authenticated"), "\(line)")
        }
        #expect(m.line("PASS secret") == err("USER first"))
        #expect(m.line("APOP alice 0123456789abcdef") == err("APOP not supported"))
        #expect(m.line("XTND") == err("Unknown command"))
        #expect(m.line("RETR x") == err("Syntax error in RETR arguments"))
        #expect(m.commandReceived(.failure(.invalidCharacters)) == err("Invalid characters in command"))
        #expect(m.commandReceived(.failure(.lineTooLong)) == err("Line too long"))
        #expect(m.lineTooLong() == err("Line too long"))
        #expect(!m.isInTransaction)
    }

    @Test func quitInAuthorizationClosesWithoutUpdate() {
        var m = Machine(configuration: plainTLS)
        #expect(m.line("QUIT") == signOff)
        #expect(m.line("CAPA") == .none)
        #expect(m.timeoutFired() == .none)
        #expect(m.shutdownRequested() == .none)
    }

    @Test func authenticationFailedGivesAuthCode() {
        var m = Machine(configuration: plainTLS, implicitTLS: true)
        _ = m.line("USER alice@example.test")
        #expect(m.line("PASS wrong") == .authenticate(user: "alice@example.test", password: "wrong"))
        // Commands that arrive meanwhile are not processed (the adapter holds them).
        #expect(m.line("STAT") == .none)
        #expect(m.authenticationFailed() == err("Authentication failed", code: "AUTH"))
        // USER must be repeated.
        #expect(m.line("PASS secret") == err("USER first"))
        _ = m.line("USER alice@example.test")
        #expect(m.line("PASS secret") == .authenticate(user: "alice@example.test", password: "secret"))
    }

    @Test func userCanBeRepeated() {
        var m = Machine(configuration: plainTLS, implicitTLS: true)
        _ = m.line("USER first@example.test")
        _ = m.line("USER second@example.test")
        #expect(m.line("PASS pw") == .authenticate(user: "second@example.test", password: "pw"))
    }

    @Test func maildropInUse() {
        var m = Machine(configuration: plainTLS, implicitTLS: true)
        _ = m.line("USER alice@example.test")
        _ = m.line("PASS secret")
        #expect(m.authenticationSucceeded() == .openMaildrop(user: "alice@example.test"))
        #expect(m.line("STAT") == .none)
        #expect(m.maildropUnavailable(inUse: true) == err("Mailbox is locked by another session", code: "IN-USE"))
        #expect(!m.isInTransaction)
        #expect(m.line("STAT") == err("Not authenticated"))
    }

    @Test func maildropTemporarilyUnavailable() {
        var m = Machine(configuration: plainTLS, implicitTLS: true)
        _ = m.line("USER alice@example.test")
        _ = m.line("PASS secret")
        _ = m.authenticationSucceeded()
        #expect(m.maildropUnavailable(inUse: false) == err("Mailbox temporarily unavailable", code: "SYS/TEMP"))
        #expect(m.line("STAT") == err("Not authenticated"))
    }

    // MARK: AUTH PLAIN (RFC 5034, RFC 4616)

    @Test func authPlainWithInitialResponse() {
        var m = Machine(configuration: plainTLS, implicitTLS: true)
        #expect(m.line("AUTH PLAIN \(plain("", "alice@example.test", "pass word"))")
                == .authenticate(user: "alice@example.test", password: "pass word"))
        #expect(m.authenticationSucceeded() == .openMaildrop(user: "alice@example.test"))
        #expect(m.maildropOpened([]) == ok("Logged in: 0 messages (0 octets)"))
        #expect(m.line("STAT") == ok("0 0"))
    }

    @Test func authPlainLowercaseMechanism() {
        var m = Machine(configuration: plainTLS, implicitTLS: true)
        #expect(m.line("auth plain \(plain("", "a@b", "p"))") == .authenticate(user: "a@b", password: "p"))
    }

    @Test func authPlainWithMatchingAuthzid() {
        var m = Machine(configuration: plainTLS, implicitTLS: true)
        #expect(m.line("AUTH PLAIN \(plain("Alice@Example.test", "alice@example.test", "pw"))")
                == .authenticate(user: "alice@example.test", password: "pw"))
    }

    @Test func authPlainWithOtherAuthzidFails() {
        var m = Machine(configuration: plainTLS, implicitTLS: true)
        #expect(m.line("AUTH PLAIN \(plain("bob@example.test", "alice@example.test", "pw"))") == err("Authentication failed", code: "AUTH"))
        #expect(!m.isInTransaction)
        #expect(m.line("CAPA") == .sendLines(capaResponse, capabilitiesWithTLS))
    }

    @Test func authPlainWithContinuation() {
        var m = Machine(configuration: plainTLS, implicitTLS: true)
        #expect(m.line("AUTH PLAIN") == .send(.continuation(), then: .readSASLResponse))
        #expect(m.line("CAPA") == .none, "while the adapter reads the SASL line, commands are not interpreted")
        #expect(m.saslResponseReceived(Array(plain("", "alice@example.test", "pw").utf8)) == .authenticate(user: "alice@example.test", password: "pw"))
        #expect(m.authenticationSucceeded() == .openMaildrop(user: "alice@example.test"))
    }

    @Test func continuationIsPlusSpaceOnTheWire() {
        var m = Machine(configuration: plainTLS, implicitTLS: true)
        guard case .send(let response, .readSASLResponse) = m.line("AUTH PLAIN") else {
            Issue.record("no continuation")
            return
        }
        #expect(response.description == "+ ")
    }

    @Test func authPlainCancelled() {
        var m = Machine(configuration: plainTLS, implicitTLS: true)
        _ = m.line("AUTH PLAIN")
        #expect(m.saslResponseReceived(Array("*".utf8)) == err("Authentication cancelled"))
        #expect(m.line("NOOP") == err("Not authenticated"))
    }

    @Test(arguments: ["!!!!", "YWJj=", "YQ", "====", "YW=j", "a b c d"])
    func authPlainBadBase64(_ response: String) {
        var m = Machine(configuration: plainTLS, implicitTLS: true)
        if !response.contains(" ") {
            #expect(m.line("AUTH PLAIN \(response)") == err("Invalid base64 in AUTH PLAIN response"))
        }
        #expect(m.line("AUTH PLAIN") == .send(.continuation(), then: .readSASLResponse))
        #expect(m.saslResponseReceived(Array(response.utf8)) == err("Invalid base64 in AUTH PLAIN response"))
        #expect(m.line("STAT") == err("Not authenticated"))
    }

    @Test func authPlainMalformed() {
        var m = Machine(configuration: plainTLS, implicitTLS: true)
        let malformed = [
            Base64.encode(Array("alicesecret".utf8)),  // no NULs
            Base64.encode(Array("\0alice".utf8)),  // one NUL
            plain("", "", "pw"),  // empty authcid
            plain("", "alice", ""),  // empty password
            Base64.encode([0, 0x61, 0, 0xFF]),  // password not UTF-8
        ]
        for r in malformed {
            #expect(m.line("AUTH PLAIN \(r)") == err("Malformed AUTH PLAIN response"), "\(r)")
        }
        #expect(m.line("AUTH PLAIN =") == err("Malformed AUTH PLAIN response"))
        #expect(m.line("AUTH CRAM-MD5") == err("Unsupported authentication mechanism"))
    }

    @Test func overlongSASLLineEndsTheExchange() {
        var m = Machine(configuration: plainTLS, implicitTLS: true)
        _ = m.line("AUTH PLAIN")
        #expect(m.lineTooLong() == err("Line too long"))
        #expect(m.line("CAPA") == .sendLines(capaResponse, capabilitiesWithTLS))
    }

    // MARK: TRANSACTION

    @Test func transactionListings() {
        var m = loggedIn()
        #expect(m.line("STAT") == ok("3 600"))
        #expect(m.line("LIST") == .sendLines(.ok("3 messages"), ["1 100", "2 200", "3 300"]))
        #expect(m.line("LIST 2") == ok("2 200"))
        #expect(m.line("UIDL") == .sendLines(.ok("Unique-ID listing follows"), ["1 u1", "2 u2", "3 u3"]))
        #expect(m.line("UIDL 3") == ok("3 u3"))
        #expect(m.line("RETR 1") == .sendMessage(index: 0, topLines: nil))
        #expect(m.line("TOP 2 5") == .sendMessage(index: 1, topLines: 5))
        #expect(m.line("TOP 3 0") == .sendMessage(index: 2, topLines: 0))
        #expect(m.line("NOOP") == ok(""))
        #expect(m.line("CAPA") == .sendLines(capaResponse, capabilitiesWithTLS))
    }

    @Test(arguments: ["LIST 0", "LIST 4", "UIDL 0", "UIDL 4", "RETR 0", "RETR 4", "TOP 4 1", "TOP 0 1", "DELE 0", "DELE 4",
                      "RETR 999999999"])
    func outOfRange(_ line: String) {
        var m = loggedIn()
        #expect(m.line(line) == noSuchMessage)
        #expect(m.line("STAT") == ok("3 600"))
    }

    @Test func deleteMarksAndRsetUnmarks() {
        var m = loggedIn()
        #expect(m.line("DELE 1") == ok("Message 1 deleted"))
        #expect(m.line("STAT") == ok("2 500"))
        #expect(m.line("LIST") == .sendLines(.ok("2 messages"), ["2 200", "3 300"]))
        #expect(m.line("UIDL") == .sendLines(.ok("Unique-ID listing follows"), ["2 u2", "3 u3"]))
        for line in ["LIST 1", "UIDL 1", "RETR 1", "TOP 1 0", "DELE 1"] {
            #expect(m.line(line) == noSuchMessage, "\(line) on a deleted message")
        }
        #expect(m.line("LIST 2") == ok("2 200"))
        #expect(m.line("RSET") == ok("3 messages"))
        #expect(m.line("STAT") == ok("3 600"))
        #expect(m.line("RETR 1") == .sendMessage(index: 0, topLines: nil))
    }

    @Test func quitInTransactionUpdates() {
        var m = loggedIn()
        _ = m.line("DELE 3")
        _ = m.line("DELE 1")
        #expect(m.line("QUIT") == .update(deleted: [0, 2]))
        #expect(!m.isInTransaction)
        // Nothing is interpreted while UPDATE runs; timers and shutdown wait for it.
        #expect(m.line("STAT") == .none)
        #expect(m.timeoutFired() == .none)
        #expect(m.shutdownRequested() == .none)
        #expect(m.updateFinished(success: true) == signOff)
        #expect(m.line("NOOP") == .none)
    }

    @Test func quitWithoutDeletions() {
        var m = loggedIn()
        #expect(m.line("QUIT") == .update(deleted: []))
        #expect(m.updateFinished(success: true) == signOff)
    }

    @Test func failedUpdateReportsSysTemp() {
        var m = loggedIn()
        _ = m.line("DELE 2")
        #expect(m.line("QUIT") == .update(deleted: [1]))
        #expect(m.updateFinished(success: false) == .send(.err("Some deleted messages were not removed", code: "SYS/TEMP"), then: .close))
    }

    @Test func rsetThenQuitDeletesNothing() {
        var m = loggedIn()
        _ = m.line("DELE 1")
        _ = m.line("RSET")
        #expect(m.line("QUIT") == .update(deleted: []))
    }

    @Test func authorizationCommandsRefusedInTransaction() {
        var m = loggedIn()
        for line in ["USER bob@example.test", "PASS x", "AUTH PLAIN", "APOP a b", "STLS"] {
            #expect(m.line(line) == err("Already authenticated"), "\(line)")
        }
        #expect(m.isInTransaction)
    }

    @Test func emptyMaildrop() {
        var m = loggedIn([])
        #expect(m.line("STAT") == ok("0 0"))
        #expect(m.line("LIST") == .sendLines(.ok("0 messages"), []))
        #expect(m.line("UIDL") == .sendLines(.ok("Unique-ID listing follows"), []))
        #expect(m.line("RETR 1") == noSuchMessage)
    }

    @Test func messageUnavailable() {
        let m = loggedIn()
        #expect(m.messageUnavailable() == err("Message could not be read", code: "SYS/TEMP"))
    }

    @Test func retrievalResponsesAndTheRetrievedSet() {
        var m = loggedIn()
        #expect(m.line("RETR 2") == .sendMessage(index: 1, topLines: nil))
        #expect(m.messageResponse(index: 1, topLines: nil) == .ok("200 octets"))
        #expect(m.messageResponse(index: 1, topLines: 5) == .ok("Top of message follows"))
        m.messageSent(index: 1, topLines: 5)
        #expect(m.retrievedMessages.isEmpty, "TOP does not mark a message seen")
        m.messageSent(index: 1, topLines: nil)
        m.messageSent(index: 1, topLines: nil)
        m.messageSent(index: 2, topLines: nil)
        #expect(m.retrievedMessages == [1, 2])
        #expect(m.retrievals == 3)
        #expect(m.line("QUIT") == .update(deleted: []))
        #expect(m.retrievedMessages == [1, 2], "UPDATE reads them")
    }

    @Test func lineReceivedIsACommandOrTheSASLResponse() {
        var m = Machine(configuration: plainTLS, implicitTLS: true)
        #expect(m.lineReceived(Array("AUTH PLAIN".utf8)) == .send(.continuation(), then: .readSASLResponse))
        #expect(m.lineReceived(Array("*".utf8)) == err("Authentication cancelled"), "the line after '+ ' is the response")
        #expect(m.lineReceived(Array("NOOP".utf8)) == err("Not authenticated"), "then lines are commands again")
        _ = m.lineReceived(Array("AUTH PLAIN".utf8))
        #expect(m.lineTooLong() == err("Line too long"))
        #expect(m.lineReceived(Array("STAT".utf8)) == err("Not authenticated"), "a too-long response ends the exchange")
    }

    @Test func updatingAndTheDrainDeadline() {
        var m = loggedIn()
        #expect(!m.isUpdating)
        #expect(m.line("QUIT") == .update(deleted: []))
        #expect(m.isUpdating)
        #expect(m.shutdownDeadlinePassed() == .close)
        #expect(m.isUpdating, "the UPDATE in flight still completes and releases the maildrop")
        #expect(m.updateFinished(success: true) == signOff)
        #expect(!m.isUpdating)

        var t = loggedIn()
        #expect(t.shutdownDeadlinePassed() == .close)
        #expect(t.line("QUIT") == .none, "no UPDATE after the deadline")
    }

    // MARK: Timers and shutdown

    @Test func timeoutInTransactionClosesWithoutUpdate() {
        var m = loggedIn()
        _ = m.line("DELE 1")
        #expect(m.timeoutFired() == .close)
        #expect(m.line("QUIT") == .none)
        #expect(m.timeoutFired() == .none)
    }

    @Test func timeoutInAuthorization() {
        var m = Machine(configuration: plainTLS)
        #expect(m.timeoutFired() == .close)
        #expect(m.line("CAPA") == .none)
    }

    @Test func shutdownInAuthorizationAndTransaction() {
        var a = Machine(configuration: plainTLS)
        #expect(a.shutdownRequested() == .send(.err("Server shutting down", code: "SYS/TEMP"), then: .close))
        #expect(a.line("CAPA") == .none)
        var t = loggedIn()
        _ = t.line("DELE 1")
        #expect(t.shutdownRequested() == .send(.err("Server shutting down", code: "SYS/TEMP"), then: .close))
        #expect(t.line("QUIT") == .none, "no UPDATE after a shutdown")
    }

    // MARK: Pipelining (RFC 2449 PIPELINING): one segment, several commands

    @Test func pipelinedSessionThroughTheParser() {
        var parser = POP3LineParser()
        var m = Machine(configuration: plainTLS, implicitTLS: true)
        parser.append(.init(string: "USER alice@example.test\r\nPASS pw\r\nSTAT\r\n"))
        var actions: [Machine.Action] = []
        func drain() {
            while case .line(let l)? = parser.next() {
                let a = m.commandReceived(POP3Command.parse(l))
                actions.append(a)
                if case .authenticate = a { break }  // the adapter stops reading until the delegate answers
            }
        }
        drain()
        #expect(actions == [ok("Send your password"), .authenticate(user: "alice@example.test", password: "pw")])
        #expect(m.authenticationSucceeded() == .openMaildrop(user: "alice@example.test"))
        _ = m.maildropOpened(messages)
        actions = []
        drain()
        #expect(actions == [ok("3 600")])
    }
}

@Suite("POP3 server: AUTH PLAIN framing around the SASL server machine")
struct POP3AuthPlainFramingTests {
    @Test func malformedInitialResponseKeepsAnEarlierUser() {
        var m = Machine(configuration: plainTLS, implicitTLS: true)
        #expect(m.line("USER alice@example.test") == ok("Send your password"))
        #expect(m.line("AUTH PLAIN \(Base64.encode(Array("alicesecret".utf8)))") == err("Malformed AUTH PLAIN response"))
        #expect(m.line("AUTH PLAIN !!!!") == err("Invalid base64 in AUTH PLAIN response"))
        #expect(m.line("PASS secret") == .authenticate(user: "alice@example.test", password: "secret"))
    }

    @Test func otherAuthzidForgetsAnEarlierUser() {
        var m = Machine(configuration: plainTLS, implicitTLS: true)
        _ = m.line("USER alice@example.test")
        #expect(m.line("AUTH PLAIN \(plain("bob@example.test", "alice@example.test", "pw"))") == err("Authentication failed", code: "AUTH"))
        #expect(m.line("PASS secret") == err("USER first"))
    }

    @Test func continuationEdgeCases() {
        var m = Machine(configuration: plainTLS, implicitTLS: true)
        _ = m.line("USER alice@example.test")
        #expect(m.line("AUTH PLAIN") == .send(.continuation(), then: .readSASLResponse))
        #expect(m.saslResponseReceived(Array("=".utf8)) == err("Invalid base64 in AUTH PLAIN response"), "'=' is only an initial response")
        #expect(m.line("PASS secret") == err("USER first"), "a continuation forgets the user whatever happens")
        _ = m.line("AUTH PLAIN")
        #expect(m.saslResponseReceived(Array(plain("", "alice", "").utf8)) == err("Malformed AUTH PLAIN response"))
        _ = m.line("AUTH PLAIN")
        #expect(m.saslResponseReceived(Array(plain("", "alice", "pw").utf8)) == .authenticate(user: "alice", password: "pw"))
        #expect(m.authenticationFailed() == err("Authentication failed", code: "AUTH"))
        #expect(m.line("AUTH PLAIN \(plain("", "alice", "pw"))") == .authenticate(user: "alice", password: "pw"))
        #expect(m.authenticationSucceeded() == .openMaildrop(user: "alice"))
    }
}
