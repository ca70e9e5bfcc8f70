import Directory
import Logging
import MailCore
import MailDelivery
import MailQueue
import MailStore
import NIOCore
import NIOPosix
#if canImport(Glibc)
import Glibc
#endif

/// The queue's delivery agent: local recipients go into their Maildirs, remote ones to
/// `SMTPDeliveryAgent` grouped by domain (one transaction per destination). A local recipient
/// whose alias forwards elsewhere (or an SRS address of ours that leads back to a sender) is
/// queued anew for those addresses, with the SRS sender, like local(8) handing a `.forward` back
/// to cleanup.
final class RoutingAgent: DeliveryAgent {
    /// Queues a copy of `content` from `sender` to `recipients`.
    typealias Requeue = @Sendable (_ sender: String, _ recipients: [String], _ content: ByteBuffer) throws -> Void

    let directory: any UserDirectory
    let store: MaildirStore
    let remote: SMTPDeliveryAgent
    let forwarding: Forwarding
    let requeue: Requeue
    let threadPool: NIOThreadPool
    let logger: Logger

    init(directory: any UserDirectory, store: MaildirStore, remote: SMTPDeliveryAgent, forwarding: Forwarding,
         requeue: @escaping Requeue, threadPool: NIOThreadPool, logger: Logger) {
        self.directory = directory
        self.store = store
        self.remote = remote
        self.forwarding = forwarding
        self.requeue = requeue
        self.threadPool = threadPool
        self.logger = logger
    }

    func deliver(_ message: QueuedMessage) async -> [String: DeliveryOutcome] {
        let content: ByteBuffer
        do {
            content = try await threadPool.runIfActive { try Self.readFile(message.messagePath) }
        } catch {
            return Dictionary(uniqueKeysWithValues: message.recipients.map {
                ($0, DeliveryOutcome.deferred(status: "4.3.0", diagnostic: "cannot read the queued message: \(error)"))
            })
        }
        var outcomes: [String: DeliveryOutcome] = [:]
        var local: [(String, [String])] = []
        var remoteByDomain: [String: [String]] = [:]
        var forwards: [(rcpt: String, sender: String, targets: [String])] = []
        let now = Int64(time(nil))
        for rcpt in message.recipients {
            guard case .success(let address) = EmailAddress.parse(rcpt, allowUTF8: true) else {
                outcomes[rcpt] = .failed(status: "5.1.3", diagnostic: "invalid recipient address", remoteMTA: nil)
                continue
            }
            switch (try? await directory.resolve(address)) ?? .unknown {
            case .mailboxes(let boxes): local.append((rcpt, boxes))
            case .forward(let boxes, let targets):
                if !boxes.isEmpty { local.append((rcpt, boxes)) }
                let sender = forwarding.sender(message.sender, forwarderDomain: address.normalizedDomain, now: now)
                forwards.append((rcpt, sender, targets))
            case .unknown:
                switch forwarding.reverse(address, now: now) {
                case .success(let back)?: forwards.append((rcpt, message.sender, [back]))
                case .failure(let why)?: outcomes[rcpt] = .failed(status: "5.1.1", diagnostic: "550 5.1.1 \(why)", remoteMTA: nil)
                case nil: outcomes[rcpt] = .failed(status: "5.1.1", diagnostic: "550 5.1.1 user unknown", remoteMTA: nil)
                }
            case .notLocal: remoteByDomain[address.normalizedDomain, default: []].append(rcpt)
            }
        }
        for f in forwards {
            do {
                try await threadPool.runIfActive { [requeue] in try requeue(f.sender, f.targets, content) }
                if outcomes[f.rcpt] == nil { outcomes[f.rcpt] = .delivered("forwarded to \(f.targets.joined(separator: ", "))") }
            } catch {
                outcomes[f.rcpt] = .deferred(status: "4.3.0", diagnostic: "cannot queue the forwarded copy: \(error)")
            }
        }
        if !local.isEmpty {
            let boxes = Array(Set(local.flatMap(\.1))).sorted().map { MaildirStore.Mailbox(address: $0)! }
            let store = self.store
            do {
                // Like local(8): the envelope sender becomes Return-Path at final delivery.
                let headers = Array("Return-Path: <\(message.sender)>\n".utf8)
                _ = try await threadPool.runIfActive { try store.deliver(headers: headers, spool: nil, tail: content, to: boxes) }
                for (rcpt, _) in local where outcomes[rcpt] == nil { outcomes[rcpt] = .delivered("delivered to a local mailbox") }
            } catch {
                for (rcpt, _) in local { outcomes[rcpt] = .deferred(status: "4.3.0", diagnostic: "local delivery failed: \(error)") }
            }
        }
        for (domain, rcpts) in remoteByDomain {
            let results = await remote.deliver(content, from: message.sender, to: rcpts, domain: domain, queueID: message.id)
            for (rcpt, r) in results {
                switch r {
                case .delivered(let s): outcomes[rcpt] = .delivered(s)
                case .failed(let status, let diagnostic, let mta): outcomes[rcpt] = .failed(status: status, diagnostic: diagnostic, remoteMTA: mta)
                case .deferred(let status, let diagnostic): outcomes[rcpt] = .deferred(status: status, diagnostic: diagnostic)
                }
            }
        }
        return outcomes
    }

    static func readFile(_ path: String) throws -> ByteBuffer {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw StoreError("open", path) }
        defer { close(fd) }
        var out = ByteBuffer()
        while true {
            let n = try out.writeWithUnsafeMutableBytes(minimumWritableBytes: 1 << 16) { raw -> Int in
                while true {
                    let r = read(fd, raw.baseAddress!, raw.count)
                    if r >= 0 { return r }
                    if errno != EINTR { throw StoreError("read", path) }
                }
            }
            if n == 0 { return out }
        }
    }
}
