import Foundation
import ListenerSupport
import Logging
import MailServer
import MailTesting
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SMTPCore
import SMTPServer
import Testing

/// Plays the golden transcripts of `Tests/SMTPCoreTests/Transcripts` — the same files the pure state
/// machine is tested with — against a real `SMTPListener` over TCP on 127.0.0.1, with a delegate that
/// follows each file's `!` directives. Files that need injected timers or shutdowns, implicit TLS or
/// held stores are covered by the in-memory runner only.
@Suite(.serialized) struct LiveTranscriptTests {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("SMTPCoreTests/Transcripts")

    static var liveFiles: [String] {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []).filter { $0.hasSuffix(".txt") }.sorted()
        return names.filter { name in
            guard let t = try? Transcript.load(contentsOf: directory.appendingPathComponent(name)) else { return true }
            return !t.usesInjectedEvents && !t.implicitTLS && !t.storeOutcomes.contains(where: \.held)
        }
    }

    static let tls: NIOSSLContextBox = {
        let dir = NSTemporaryDirectory() + "swallow-transcript-tls-\(UUID().uuidString)"
        try! FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let material = try! TLSMaterial.load(configuration: ServerConfiguration.embeddedDefault.tls, tlsDirectory: dir, hostname: "mx.example.test")
        return NIOSSLContextBox(material: material)
    }()

    @Test func atLeastMostTranscriptsRunLive() {
        #expect(Self.liveFiles.count >= 15)
    }

    @Test(arguments: liveFiles)
    func transcript(_ name: String) async throws {
        let t = try Transcript.load(contentsOf: Self.directory.appendingPathComponent(name))
        let delegate = ScriptedDelegate(transcript: t)
        var logger = Logger(label: "transcript")
        logger.logLevel = .critical
        let listener = SMTPListener(
            configuration: .init(name: "smtp", addresses: [("127.0.0.1", 0)], machine: t.configuration,
                                 tls: t.configuration.startTLSAvailable ? Self.tls.material.context : nil),
            delegate: delegate, registry: ConnectionRegistry(limits: .init()), group: MultiThreadedEventLoopGroup.singleton,
            logger: logger)
        let port = try await listener.bind()[0].port!
        let client = try await RawSMTPClient.connect(host: "127.0.0.1", port: port)
        var pending: [String] = []
        func nextLine() async throws -> String? {
            if pending.isEmpty {
                guard let reply = try? await client.readReply(timeout: .seconds(5)) else { return nil }
                pending = reply
            }
            return pending.removeFirst()
        }
        for step in t.steps {
            switch step {
            case .write(let bytes, _):
                try await client.send(bytes)
            case .expectReply(let expected, let line):
                let actual = try await nextLine()
                #expect(actual == expected, "\(name):\(line)")
            case .expectMessage(let expected, let line):
                let stored = delegate.stored.withLockedValue { $0.last }
                #expect(stored == expected, "\(name):\(line)")
            case .expectClosed(let line):
                let rest = try await client.readUntilClosed(timeout: .seconds(5))
                #expect(pending.isEmpty && rest.isEmpty, "\(name):\(line): unread \(pending) \(rest)")
            case .event(.tls, _):
                try await client.startTLS()
            case .event(.clientCloses, _):
                await client.close()
            case .event(let e, let line):
                Issue.record("\(name):\(line): event \(e) cannot be played live")
            }
        }
        await client.close()
        await listener.drain()
    }
}

struct NIOSSLContextBox: Sendable {
    let material: TLSMaterial
}

/// Recipient checks and stores as the transcript's directives say; content kept in memory.
final class ScriptedDelegate: SMTPServerDelegate {
    let transcript: Transcript
    let stored = NIOLockedValueBox<[[UInt8]]>([])
    let nextStore = NIOLockedValueBox(0)

    init(transcript: Transcript) { self.transcript = transcript }

    func verifyRecipient(_ recipient: ForwardPath, envelope: SMTPEnvelope, connection: SMTPConnectionInfo) async throws {
        if let r = transcript.rejection(for: recipient) { throw SMTPRejection(r) }
    }

    func makeMessageSink(connection: SMTPConnectionInfo) -> any SMTPMessageSink { Sink(owner: self) }

    func authenticate(user: String, password: String, connection: SMTPConnectionInfo) async throws -> String? {
        transcript.logins[user.lowercased()] == password ? user.lowercased() : nil
    }

    func verifySender(_ sender: ReversePath, envelope: SMTPEnvelope, connection: SMTPConnectionInfo) async throws {
        if let r = transcript.senderRejection(for: sender) { throw SMTPRejection(r) }
    }

    func makeSASLExchange(mechanism: String, connection: SMTPConnectionInfo) -> (any SMTPSASLExchange)? {
        mechanism == "SCRAM-SHA-256" ? Exchange(transcript) : nil
    }

    /// The transcript's SCRAM accounts behind the live adapter.
    final class Exchange: SMTPSASLExchange {
        let scram: NIOLockedValueBox<ScriptedSCRAM>
        init(_ t: Transcript) { scram = NIOLockedValueBox(ScriptedSCRAM(t)) }
        func respond(to response: [UInt8]) async throws -> SMTPSASLStep {
            switch scram.withLockedValue({ $0.respond(response) }) {
            case .challenge(let c): .challenge(c)
            case .success(let user, let data): .success(user: user, additionalData: data)
            case .failure: .failure
            }
        }
    }

    final class Sink: SMTPMessageSink {
        let owner: ScriptedDelegate
        let content = NIOLockedValueBox<[UInt8]>([])
        init(owner: ScriptedDelegate) { self.owner = owner }

        func write(_ bytes: ByteBuffer) async throws { content.withLockedValue { $0 += Array(bytes.readableBytesView) } }

        func commit(_ bytes: ByteBuffer, envelope: SMTPEnvelope, connection: SMTPConnectionInfo) async throws -> String {
            let all = content.withLockedValue { $0 + Array(bytes.readableBytesView) }
            let i = owner.nextStore.withLockedValue { n -> Int in
                defer { n += 1 }
                return n
            }
            let outcome = i < owner.transcript.storeOutcomes.count ? owner.transcript.storeOutcomes[i]
                : Transcript.StoreOutcome(result: .success(Transcript.defaultQueueID))
            switch outcome.result {
            case .success(let id):
                owner.stored.withLockedValue { $0.append(all) }
                return id
            case .failure(let r):
                throw SMTPRejection(r.reply)
            }
        }

        func abort() async {}
    }
}
