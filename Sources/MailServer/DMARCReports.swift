#if canImport(Glibc)
import Glibc
#endif
import class Foundation.JSONDecoder
import class Foundation.JSONEncoder
import struct Foundation.Data
import CompressNIO
import Logging
import MailAuth
import MailCore
import NIOConcurrencyHelpers
import NIOCore
import ServiceLifecycle

/// DMARC aggregate reporting (RFC 9990; `[dmarc] reports`): every DMARC evaluation on port 25 whose
/// policy record asks for reports (`rua=`) is counted per DMARC Policy Domain, period and row; after a
/// period ends, ``DMARCReporter`` mails one gzipped XML report per domain to its `mailto:`
/// destinations — to one outside the policy domain's Organizational Domain only when that
/// destination publishes the RFC 9990 §4 authorisation record.
///
/// The counts live in memory and in `<data_dir>/dmarc/<begin>.json` (written every minute and at
/// shutdown): a crash loses at most the last minute's counts, never mail. Memory is bounded: at most
/// ``maximumDomains`` policy domains per period and ``maximumRows`` rows per domain (what is beyond
/// is not counted, and the log says so once per period).
final class DMARCReports: Sendable {
    static let maximumDomains = 5_000
    static let maximumRows = 2_000

    struct Settings: Sendable {
        /// Seconds per period (86,400: daily, aligned on UTC midnight).
        var interval: Int64
        var maximumReportsPerDay: Int
        /// `From:` and envelope sender of the reports.
        var sender: String
        /// The Reporting Organization: our host name.
        var organization: String
        /// `<data_dir>/dmarc`.
        var directory: String
    }

    /// A policy domain's counts in one period.
    struct Domain: Sendable, Codable {
        var policy: DMARCAggregateReport.PublishedPolicy
        /// The record's `rua=` URIs (the last record seen).
        var destinations: [String]
        var rows: [DMARCAggregateReport.Row] = []
        var counts: [Int] = []
        /// Where each row is in `rows`; not stored.
        var index: [DMARCAggregateReport.Row: Int] = [:]

        enum CodingKeys: String, CodingKey { case policy, destinations, rows, counts }
    }

    struct State: Sendable {
        var periods: [Int64: [String: Domain]] = [:]
        var dirty: Set<Int64> = []
        var warned: Set<Int64> = []
        /// Reports queued per UTC day (the cap).
        var sentDay: Int64 = 0
        var sentToday = 0
    }

    let settings: Settings
    let logger: Logger
    private let state = NIOLockedValueBox(State())

    init(settings: Settings, logger: Logger) {
        self.settings = settings
        self.logger = logger
    }

    /// The period `now` falls in: its first second.
    func period(of now: Int64) -> Int64 { now - now % settings.interval }

    /// Counts one message's DMARC result for `result`'s policy domain (nothing when the record asks
    /// for no reports).
    func record(_ result: DMARCResult, row: DMARCAggregateReport.Row, now: Int64) {
        guard let record = result.record, !record.aggregateReportURIs.isEmpty, let domain = result.recordDomain else { return }
        let begin = period(of: now)
        let overflow = state.withLockedValue { s -> Bool in
            var domains = s.periods[begin] ?? [:]
            if domains[domain] == nil && domains.count >= Self.maximumDomains {
                return s.warned.insert(begin).inserted
            }
            var d = domains[domain] ?? Domain(policy: .init(record), destinations: record.aggregateReportURIs)
            d.policy = .init(record)
            d.destinations = record.aggregateReportURIs
            if let i = d.index[row] {
                d.counts[i] += 1
            } else if d.rows.count < Self.maximumRows {
                d.index[row] = d.rows.count
                d.rows.append(row)
                d.counts.append(1)
            } else if !s.warned.contains(begin) {
                s.warned.insert(begin)
                domains[domain] = d
                s.periods[begin] = domains
                s.dirty.insert(begin)
                return true
            }
            domains[domain] = d
            s.periods[begin] = domains
            s.dirty.insert(begin)
            return false
        }
        if overflow {
            logger.warning("DMARC report data full for this period; further rows are not counted",
                           metadata: ["period": "\(begin)", "domains": "\(Self.maximumDomains)", "rows": "\(Self.maximumRows)"])
        }
    }

    // MARK: Files

    private func path(_ begin: Int64) -> String { settings.directory + "/\(begin).json" }

    /// Writes the periods changed since the last flush.
    func flush() {
        let changed = state.withLockedValue { s -> [(Int64, [String: Domain])] in
            defer { s.dirty.removeAll() }
            return s.dirty.compactMap { b in s.periods[b].map { (b, $0) } }
        }
        guard !changed.isEmpty else { return }
        if mkdir(settings.directory, 0o700) != 0 && errno != EEXIST {
            logger.error("cannot create \(settings.directory): \(String(cString: strerror(errno)))")
            return
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        for (begin, domains) in changed {
            do {
                let data = try encoder.encode(domains)
                try SecretFile.write(path(begin), String(decoding: data, as: UTF8.self))
            } catch {
                logger.error("cannot save DMARC report data: \(error)", metadata: ["period": "\(begin)"])
            }
        }
    }

    /// Reads the periods saved by an earlier run (merged into what is counted now).
    func load() {
        guard let dir = opendir(settings.directory) else { return }
        defer { closedir(dir) }
        var names: [String] = []
        while let e = readdir(dir) {
            let name = withUnsafePointer(to: e.pointee.d_name) { String(cString: UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self)) }
            if name.hasSuffix(".json"), let b = Int64(name.dropLast(5)) { names.append(String(b)) }
        }
        for name in names {
            guard let begin = Int64(name), let text = try? SecretFile.read(path(begin)),
                  var domains = try? JSONDecoder().decode([String: Domain].self, from: Data(text.utf8)) else {
                logger.warning("unreadable DMARC report data", metadata: ["file": "\(settings.directory)/\(name).json"])
                continue
            }
            for key in domains.keys {
                var d = domains[key]!
                guard d.rows.count == d.counts.count else { domains[key] = nil; continue }
                d.index = Dictionary(d.rows.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
                domains[key] = d
            }
            state.withLockedValue { s in
                var merged = s.periods[begin] ?? [:]
                for (k, d) in domains where merged[k] == nil { merged[k] = d }
                s.periods[begin] = merged
            }
        }
    }

    /// The periods that have ended by `now`, oldest first.
    func due(now: Int64) -> [(begin: Int64, domains: [String: Domain])] {
        state.withLockedValue { s in
            s.periods.keys.filter { $0 + settings.interval <= now }.sorted().map { ($0, s.periods[$0]!) }
        }
    }

    /// Drops a reported period (memory and file).
    func finished(_ begin: Int64) {
        state.withLockedValue { s in
            s.periods[begin] = nil
            s.dirty.remove(begin)
            s.warned.remove(begin)
        }
        unlink(path(begin))
    }

    /// Takes one report from today's allowance; false once the day's cap is reached.
    func mayQueue(now: Int64) -> Bool {
        state.withLockedValue { s in
            let day = now / 86_400
            if s.sentDay != day { s.sentDay = day; s.sentToday = 0 }
            guard s.sentToday < settings.maximumReportsPerDay else { return false }
            s.sentToday += 1
            return true
        }
    }

    // MARK: Reports

    /// The report for one domain of a period.
    func report(begin: Int64, domain: String, data: Domain) -> DMARCAggregateReport {
        // Rows with more messages first; the report lists every row.
        let rows = zip(data.rows, data.counts).sorted { $0.1 > $1.1 }.map { (row: $0.0, count: $0.1) }
        return DMARCAggregateReport(organization: settings.organization, contact: settings.sender,
                                    reportID: "\(begin).\(domain)@\(settings.organization)", begin: begin,
                                    end: begin + settings.interval, policyDomain: domain, policy: data.policy, rows: rows,
                                    generator: "Swallow")
    }

    /// The whole report message (wire form): a text part and the gzipped XML.
    func message(_ report: DMARCAggregateReport, to destinations: [String], gzipped: [UInt8], now: Int64) -> [UInt8] {
        let boundary = "=_dmarc_\(report.begin)_\(report.rows.count)"
        var s = "From: \(settings.sender)\r\n"
        s += "To: \(destinations.joined(separator: ",\r\n "))\r\n"
        s += "Subject: Report Domain: \(report.policyDomain)\r\n Submitter: \(report.organization)\r\n Report-ID: <\(report.reportID)>\r\n"
        s += "Date: \(MessageDate.format(secondsSinceEpoch: Int(now)))\r\n"
        s += "Message-ID: <\(report.reportID)>\r\n"
        s += "Auto-Submitted: auto-generated\r\n"
        s += "MIME-Version: 1.0\r\n"
        s += "Content-Type: multipart/mixed; boundary=\"\(boundary)\"\r\n\r\n"
        s += "This is a MIME-encapsulated message.\r\n\r\n--\(boundary)\r\n"
        s += "Content-Type: text/plain; charset=us-ascii\r\n\r\n"
        s += "This is a DMARC aggregate report (RFC 9990) from \(report.organization) for \(report.policyDomain):\r\n"
        s += "\(report.rows.reduce(0) { $0 + $1.count }) message(s) in \(report.rows.count) row(s), "
        s += "\(MessageDate.format(secondsSinceEpoch: Int(report.begin))) to \(MessageDate.format(secondsSinceEpoch: Int(report.end))).\r\n"
        s += "\r\n--\(boundary)\r\n"
        s += "Content-Type: application/gzip; name=\"\(report.fileName)\"\r\n"
        s += "Content-Transfer-Encoding: base64\r\n"
        s += "Content-Disposition: attachment; filename=\"\(report.fileName)\"\r\n\r\n"
        let b64 = Array(Base64.encode(gzipped).utf8)
        var out = Array(s.utf8)
        var i = 0
        while i < b64.count {
            out += b64[i..<min(i + 76, b64.count)]
            out += [0x0D, 0x0A]
            i += 76
        }
        out += Array("\r\n--\(boundary)--\r\n".utf8)
        return out
    }

    static func gzip(_ text: String) throws -> [UInt8] {
        var input = ByteBuffer(string: text)
        let out = try input.compress(with: .gzip())
        return Array(out.readableBytesView)
    }
}

/// Sends the reports of finished periods (a service; also saves the counts every minute and at
/// shutdown).
struct DMARCReporter: Service {
    /// Queues a message (wire form) from `sender` to `recipients`, DKIM-signed.
    typealias Queue = @Sendable (_ sender: String, _ recipients: [String], _ message: [UInt8]) throws -> Void

    let reports: DMARCReports
    let resolver: any MailAuthResolver
    let queue: Queue
    let logger: Logger

    func run() async throws {
        reports.load()
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await tick(now: Int64(time(nil)))
                try await Task.sleep(for: .seconds(min(60, reports.settings.interval)))
            }
        }
        reports.flush()
    }

    /// Saves the counts, then mails every finished period's reports.
    func tick(now: Int64) async {
        reports.flush()
        for (begin, domains) in reports.due(now: now) {
            for (domain, data) in domains.sorted(by: { $0.key < $1.key }) {
                await send(reports.report(begin: begin, domain: domain, data: data), destinations: data.destinations, now: now)
            }
            reports.finished(begin)
        }
    }

    func send(_ report: DMARCAggregateReport, destinations uris: [String], now: Int64) async {
        let gzipped: [UInt8]
        do { gzipped = try DMARCReports.gzip(report.xml) } catch {
            logger.error("cannot compress a DMARC report: \(error)", metadata: ["domain": "\(report.policyDomain)"])
            return
        }
        var recipients: [String] = []
        for uri in uris.prefix(4) {  // the first few destinations (RFC 9990 lets receivers limit them)
            guard let (address, limit) = DMARCAggregateReport.mailto(uri) else {
                logger.notice("DMARC report destination ignored: not a mailto: URI", metadata: ["domain": "\(report.policyDomain)", "uri": "\(uri.logEscaped(limit: 200))"])
                continue
            }
            if let limit, gzipped.count * 4 / 3 + 2_048 > limit {
                logger.notice("DMARC report larger than the destination accepts", metadata: ["domain": "\(report.policyDomain)", "to": "\(address.logEscaped())"])
                continue
            }
            guard let target = await authorised(address, for: report.policyDomain) else { continue }
            if !recipients.contains(target) { recipients.append(target) }
        }
        guard !recipients.isEmpty else { return }
        guard reports.mayQueue(now: now) else {
            logger.warning("DMARC report not sent: the daily limit is reached", metadata: [
                "domain": "\(report.policyDomain)", "limit": "\(reports.settings.maximumReportsPerDay)"])
            return
        }
        let message = reports.message(report, to: recipients, gzipped: gzipped, now: now)
        do {
            try queue(reports.settings.sender, recipients, message)
            logger.info("DMARC report queued", metadata: [
                "domain": "\(report.policyDomain)", "to": "\(recipients.joined(separator: ",").logEscaped())",
                "rows": "\(report.rows.count)", "messages": "\(report.rows.reduce(0) { $0 + $1.count })", "file": "\(report.fileName)"])
        } catch {
            logger.error("cannot queue a DMARC report: \(error)", metadata: ["domain": "\(report.policyDomain)"])
        }
    }

    /// `address` when reports for `policyDomain` may go there (RFC 9990 §4): in the same
    /// Organizational Domain, or authorised by `<policyDomain>._report._dmarc.<host>` (whose own
    /// `rua=` may name another address at that host); nil otherwise.
    func authorised(_ address: String, for policyDomain: String) async -> String? {
        let host = String(address[address.index(after: address.lastIndex(of: "@")!)...]).lowercased()
        let dmarc = DMARCEvaluator(resolver: resolver)
        do {
            let ours = try await dmarc.organizationalDomain(of: policyDomain)
            let theirs = try await dmarc.organizationalDomain(of: host)
            if ours == theirs { return address }
        } catch {
            logger.notice("DMARC report destination not checked (DNS): \(error)", metadata: ["domain": "\(policyDomain)", "to": "\(address.logEscaped())"])
            return nil
        }
        let name = "\(policyDomain)._report._dmarc.\(host)"
        guard name.utf8.count <= 253 else { return nil }
        let records: [String]
        do {
            records = try await resolver.txt(name).records.map { String(decoding: $0, as: UTF8.self) }
        } catch {
            logger.notice("DMARC report destination not checked (DNS): \(error)", metadata: ["domain": "\(policyDomain)", "to": "\(address.logEscaped())"])
            return nil
        }
        let authorising = records.filter { r in
            let first = r.split(separator: ";", maxSplits: 1).first.map { $0.filter { !$0.isWhitespace } } ?? ""
            return first.lowercased() == "v=dmarc1"
        }
        guard let record = authorising.first else {
            logger.notice("DMARC report destination outside the domain has not authorised it", metadata: [
                "domain": "\(policyDomain)", "to": "\(address.logEscaped())", "record": "\(name)"])
            return nil
        }
        // An override rua= must stay at the same host.
        if let rua = record.split(separator: ";").map({ $0.drop(while: { $0 == " " || $0 == "\t" }) })
            .first(where: { $0.lowercased().hasPrefix("rua=") }) {
            let overrides = rua.dropFirst(4).split(separator: ",").compactMap { DMARCAggregateReport.mailto(String($0)) }
            guard let first = overrides.first else { return address }
            let overrideHost = first.address[first.address.index(after: first.address.lastIndex(of: "@")!)...].lowercased()
            guard overrideHost == host else {
                logger.notice("DMARC report destination override points elsewhere; no report", metadata: ["domain": "\(policyDomain)", "record": "\(name)"])
                return nil
            }
            return first.address
        }
        return address
    }
}
