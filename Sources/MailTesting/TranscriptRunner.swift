import MailCore
import SMTPCore
import struct NIOCore.ByteBuffer

/// Plays a ``Transcript`` against ``SMTPCommandParser`` + ``SMTPServerStateMachine`` with no sockets,
/// performing the machine's actions the way the NIO adapter does (one `run` switch), and compares every
/// server line with the transcript's `S:` lines exactly.
///
/// The delegate and the store are scripted by the transcript's `!` directives; recipient checks complete
/// at once, stores at once unless `held`.
public struct TranscriptRunner {
    /// A message the scripted store accepted.
    public struct StoredMessage: Hashable, Sendable {
        /// The queue ID it was given.
        public var queueID: String
        /// Its envelope.
        public var envelope: SMTPEnvelope
        /// Its content as handed to the sink (unstuffed, CRLF line ends as received).
        public var content: [UInt8]
    }

    /// A difference between the transcript and what happened.
    public struct Failure: Hashable, Sendable, CustomStringConvertible {
        /// The transcript line the difference was found at (0: at the end).
        public var line: Int
        /// What differed.
        public var message: String
        public var description: String { "line \(line): \(message)" }
    }

    /// The result of playing one transcript.
    public struct Outcome: Sendable {
        /// Every difference; empty when the transcript passed.
        public var failures: [Failure] = []
        /// Every line the server wrote, in order.
        public var serverLines: [String] = []
        /// Messages stored, in order.
        public var storedMessages: [StoredMessage] = []
        /// Plaintext bytes dropped because they arrived after STARTTLS's 220 and before the handshake.
        public var discardedPlaintextBytes = 0
        /// The server closed the connection.
        public var closed = false
    }

    /// Plays `transcript`, cutting every client write as `splitting` says.
    public static func run(_ transcript: Transcript, splitting: WriteSplitting = .asWritten) -> Outcome {
        var harness = Harness(transcript: transcript)
        harness.play(splitting: splitting)
        return harness.outcome
    }

    /// The in-memory "connection": what the adapter would hold.
    private struct Harness {
        let transcript: Transcript
        var machine: SMTPServerStateMachine
        var parser = SMTPCommandParser()
        var outcome = Outcome()
        var unread: [String] = []  // server lines not yet matched by S:
        var currentLine = 0
        var tlsPending = false
        var scram: ScriptedSCRAM?
        var heldStore: (Transcript.StoreOutcome, SMTPEnvelope, [UInt8])?
        var content: [UInt8] = []
        var nextStore = 0

        init(transcript: Transcript) {
            self.transcript = transcript
            machine = SMTPServerStateMachine(configuration: transcript.configuration, implicitTLS: transcript.implicitTLS)
        }

        var busy: Bool { heldStore != nil }

        mutating func fail(_ message: String) {
            outcome.failures.append(Failure(line: currentLine, message: message))
        }

        mutating func play(splitting: WriteSplitting) {
            if transcript.implicitTLS { run(machine.tlsEstablished(TLSFacts(version: "TLSv1.3"))) }
            run(machine.connectionEstablished())
            for step in transcript.steps {
                switch step {
                case .write(let bytes, let line):
                    currentLine = line
                    guard !outcome.closed else {
                        fail("the client writes, but the server has closed the connection")
                        continue
                    }
                    for piece in splitting.pieces(of: [bytes]) { receive(piece) }
                case .expectReply(let expected, let line):
                    currentLine = line
                    if unread.isEmpty {
                        fail("expected '\(expected)', but the server wrote nothing more")
                    } else {
                        let actual = unread.removeFirst()
                        if actual != expected { fail("expected '\(expected)', got '\(actual)'") }
                    }
                case .expectMessage(let expected, let line):
                    currentLine = line
                    if let last = outcome.storedMessages.last {
                        if last.content != expected {
                            fail("stored message differs: expected \(Self.show(expected)), got \(Self.show(last.content))")
                        }
                    } else {
                        fail("expected a stored message, but none was stored")
                    }
                case .expectClosed(let line):
                    currentLine = line
                    if !unread.isEmpty { fail("unexpected server lines before close: \(unread)") }
                    unread.removeAll()
                    if !outcome.closed { fail("expected the server to have closed the connection") }
                case .event(let event, let line):
                    currentLine = line
                    handle(event)
                }
            }
            currentLine = 0
            if !unread.isEmpty { fail("unexpected server lines at the end: \(unread)") }
        }

        mutating func handle(_ event: Transcript.Event) {
            switch event {
            case .tls:
                guard tlsPending else { return fail("@ tls, but no STARTTLS was accepted") }
                tlsPending = false
                run(machine.tlsEstablished(TLSFacts(version: "TLSv1.3")))
                process()
            case .timeout:
                run(machine.timeoutFired())
            case .shutdown:
                run(machine.shutdownRequestedEvent())
            case .shutdownDeadline:
                run(machine.shutdownDeadlinePassed())
            case .storeCompletes:
                guard let (store, envelope, bytes) = heldStore else { return fail("@ store-completes, but no store is held") }
                heldStore = nil
                complete(store, envelope: envelope, content: bytes)
                process()
            case .clientCloses:
                if case .discardMessage = machine.connectionClosed() { content.removeAll() }
                outcome.closed = true
            }
        }

        /// Bytes read from the connection.
        mutating func receive(_ bytes: [UInt8]) {
            if outcome.closed { return }
            if tlsPending {
                // They would go to the TLS handshake, never to the SMTP parser (RFC 3207 §4.2).
                outcome.discardedPlaintextBytes += bytes.count
                return
            }
            parser.append(ByteBuffer(bytes: bytes))
            process()
        }

        /// The adapter's loop: parser item → machine event → run(action), until more bytes are needed.
        mutating func process() {
            while !busy && !outcome.closed && !tlsPending {
                guard let item = parser.next() else { return }
                let action: SMTPServerStateMachine.Action
                switch item {
                case .command(let c): action = machine.commandReceived(c, pipelinedBytes: parser.bufferedByteCount)
                case .invalidCommand(let e): action = machine.invalidCommandReceived(e)
                case .messageData(let b): action = machine.messageDataReceived(b)
                case .endOfMessage(let flags): action = machine.endOfMessageReceived(flags)
                case .chunkData(let b): action = machine.chunkDataReceived(b)
                case .endOfChunk: action = machine.endOfChunkReceived()
                case .saslLine(let line): action = machine.saslResponseReceived(line)
                }
                run(action)
            }
        }

        /// The single place that performs actions.
        mutating func run(_ action: SMTPServerStateMachine.Action) {
            switch action {
            case .none:
                break
            case .send(let replies, let then):
                for r in replies {
                    let lines = r.encodedLines()
                    unread.append(contentsOf: lines)
                    outcome.serverLines.append(contentsOf: lines)
                }
                switch then {
                case .readCommands: break
                case .close: outcome.closed = true
                case .startTLS:
                    tlsPending = true
                    outcome.discardedPlaintextBytes += parser.bufferedByteCount
                    parser.discardBufferedBytes()
                case .readData:
                    parser.beginData()
                    content.removeAll()
                case .readChunk(let size):
                    parser.beginChunk(size: size)
                case .readSASLResponse:
                    parser.beginSASLLine()
                }
            case .verifyRecipient(let path, _, _):
                if let refusal = transcript.rejection(for: path) {
                    run(machine.recipientRejected(refusal))
                } else {
                    run(machine.recipientAccepted())
                }
            case .appendMessageData(let bytes):
                content.append(contentsOf: bytes.readableBytesView)
            case .storeMessage(let envelope, _):
                let store = nextStore < transcript.storeOutcomes.count
                    ? transcript.storeOutcomes[nextStore]
                    : Transcript.StoreOutcome(result: .success(Transcript.defaultQueueID))
                nextStore += 1
                let bytes = content
                content.removeAll()
                if store.held {
                    heldStore = (store, envelope, bytes)
                } else {
                    complete(store, envelope: envelope, content: bytes)
                }
            case .discardMessage(let reply, let then):
                content.removeAll()
                run(.send([reply], then: then))
            case .verifySender(let path, _, _):
                if let refusal = transcript.senderRejection(for: path) {
                    run(machine.senderRejected(refusal))
                } else {
                    run(machine.senderAccepted())
                }
            case .saslResponse(_, let response, let first):
                if first || scram == nil { scram = ScriptedSCRAM(transcript) }
                switch scram!.respond(response) {
                case .challenge(let c): run(machine.saslChallenge(c))
                case .success(let user, let data):
                    scram = nil
                    run(machine.authenticationSucceeded(user: user, additionalData: data))
                case .failure:
                    scram = nil
                    run(machine.authenticationFailed())
                }
            case .authenticate(_, let user, let password):
                if transcript.logins[user.lowercased()] == password {
                    run(machine.authenticationSucceeded(user: user.lowercased()))
                } else {
                    run(machine.authenticationFailed())
                }
            }
        }

        mutating func complete(_ store: Transcript.StoreOutcome, envelope: SMTPEnvelope, content bytes: [UInt8]) {
            switch store.result {
            case .success(let id):
                outcome.storedMessages.append(StoredMessage(queueID: id, envelope: envelope, content: bytes))
                run(machine.messageStored(queueID: id))
            case .failure(let refusal):
                run(machine.messageStoreFailed(refusal.reply))
            }
        }

        static func show(_ bytes: [UInt8]) -> String {
            var s = "\""
            for b in bytes {
                switch b {
                case 0x0D: s += "\\r"
                case 0x0A: s += "\\n"
                case 0x09: s += "\\t"
                case 0x5C: s += "\\\\"
                case 0x20..<0x7F: s.append(Character(Unicode.Scalar(b)))
                default: s += "\\x" + (b < 16 ? "0" : "") + String(b, radix: 16, uppercase: true)
                }
            }
            return s + "\""
        }
    }
}
