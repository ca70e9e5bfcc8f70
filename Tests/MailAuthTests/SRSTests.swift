import Foundation
@testable import MailAuth
import Testing

/// The Sender Rewriting Scheme against Debian's `python3-srs` (the `SRS` package, Shevek's guarded
/// scheme as in libsrs2 and Mail::SRS): byte-identical addresses for the same secret and day, in
/// both directions; and reversal refusing altered, foreign and expired addresses.
/// In CI (`CI=true`) a missing python3-srs is a failure.
@Suite struct SRSTests {
    static let secret = "a shared test secret, 32 chars!"
    /// 2026-12-05 12:00 UTC.
    static let now: Int64 = 1_796_472_000

    /// `SRS.new(secret).forward(sender, forwarder)` for each pair, then `reverse(address)` for each of
    /// `reverse` (`"error"` when it refuses), at `now`, from Debian's python3.
    static func python(_ pairs: [(String, String)], reverse: [String] = []) throws -> [String]? {
        let python = "/usr/bin/python3"
        let script = """
            import sys, json, time
            import SRS
            now = float(sys.argv[1])
            time.time = lambda: now
            srs = SRS.new(sys.argv[2])
            args = json.loads(sys.argv[3])
            out = [srs.forward(s, f) for s, f in args["forward"]]
            for a in args["reverse"]:
                try:
                    out.append(srs.reverse(a))
                except Exception:
                    out.append("error")
            print(json.dumps(out))
            """
        let json = try JSONSerialization.data(withJSONObject: ["forward": pairs.map { [$0.0, $0.1] }, "reverse": reverse] as [String: Any])
        guard let out = try PythonPeer.run(script, [String(now), secret, String(decoding: json, as: UTF8.self)], interpreter: [python],
                                           probe: "import SRS", missing: "Debian's python3-srs is missing (apt-get install python3-srs; .ci/run does)")
        else { return nil }
        return try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String]
    }

    static let senders: [(String, String)] = [
        ("alice@origin.example", "fwd.example"),
        ("Mixed.Case+tag@Origin.Example", "fwd.example"),
        ("bounce-123=list@lists.example", "fwd.example"),
        ("\"quoted local\"@origin.example", "fwd.example"),
        ("a@b.c", "x.y"),
        // Already rewritten by someone else: SRS0 → SRS1; SRS1 → a new hash over the same parts.
        ("SRS0=HHHH=TT=origin.example=alice@first.example", "fwd.example"),
        ("srs0+HHHH=TT=origin.example=alice@first.example", "fwd.example"),
        ("SRS1=XXXX=first.example==HHHH=TT=origin.example=alice@second.example", "fwd.example"),
    ]

    @Test func addressesAreByteIdenticalWithPythonSRS() throws {
        let srs = SRSRewriter(secret: Self.secret)
        let ours = Self.senders.map { srs.forward($0.0, forwarderDomain: $0.1, now: Self.now) }
        // What ours made, reversed by python; and two that python refuses.
        let reversals = ours + ["SRS0=AAAA=TT=origin.example=alice@fwd.example"]
        guard let theirs = try Self.python(Self.senders, reverse: reversals) else { return }
        #expect(Array(theirs.prefix(ours.count)) == ours)
        let theirReversals = Array(theirs.dropFirst(ours.count))
        for (made, back) in zip(reversals, theirReversals) {
            let mine: String
            switch srs.reverse(made, now: Self.now) {
            case .success(let a): mine = a
            case .failure: mine = "error"
            }
            #expect(mine == back, "\(made)")
        }
        #expect(theirReversals.last == "error")
        #expect(ours[0].hasPrefix("SRS0=") && ours[0].hasSuffix("=origin.example=alice@fwd.example"), "\(ours[0])")
        #expect(ours[5].hasPrefix("SRS1=") && ours[5].hasSuffix("=first.example==HHHH=TT=origin.example=alice@fwd.example"), "\(ours[5])")
    }

    @Test func reversalChecksHashCaseAndAge() {
        let srs = SRSRewriter(secret: Self.secret)
        let made = srs.forward("alice@origin.example", forwarderDomain: "fwd.example", now: Self.now)
        #expect(srs.reverse(made, now: Self.now) == .success("alice@origin.example"))
        // A relay that lowercased the whole address still gets the bounce back.
        #expect(srs.reverse(made.lowercased(), now: Self.now) == .success("alice@origin.example"))
        // 21 days later it is still good; on the 22nd it has expired.
        #expect(srs.reverse(made, now: Self.now + 21 * 86_400) == .success("alice@origin.example"))
        #expect(srs.reverse(made, now: Self.now + 22 * 86_400) == .failure(.expired))
        // A stamp from the future (tomorrow's) is not valid either.
        #expect(srs.reverse(srs.forward("a@b.example", forwarderDomain: "f.example", now: Self.now + 86_400), now: Self.now) == .failure(.expired))
        // Another local part or host under the same hash: refused.
        #expect(srs.reverse(made.replacingOccurrences(of: "=alice@", with: "=mallory@"), now: Self.now) == .failure(.badHash))
        #expect(srs.reverse(made.replacingOccurrences(of: "origin.example", with: "evil.example"), now: Self.now) == .failure(.badHash))
        // Another server's secret: refused; an old secret kept in `older`: accepted.
        #expect(SRSRewriter(secret: "another secret of 32 characters!").reverse(made, now: Self.now) == .failure(.badHash))
        #expect(SRSRewriter(secret: "a new secret", older: [Self.secret]).reverse(made, now: Self.now) == .success("alice@origin.example"))
        // Not SRS, or broken parts.
        #expect(srs.reverse("alice@fwd.example", now: Self.now) == .failure(.notSRS))
        #expect(srs.reverse("SRS0=abcd@fwd.example", now: Self.now) == .failure(.notSRS))
        #expect(srs.reverse("SRS1=abcd=host@fwd.example", now: Self.now) == .failure(.notSRS))
        #expect(srs.reverse("SRS0=@fwd.example", now: Self.now) == .failure(.notSRS))
        #expect(srs.reverse("", now: Self.now) == .failure(.notSRS))
        // SRS1 leads back to the first forwarder's SRS0 address, whose hash is that forwarder's.
        let first = SRSRewriter(secret: "the first forwarder's secret!!!!")
        let srs0 = first.forward("alice@origin.example", forwarderDomain: "first.example", now: Self.now)
        let srs1 = srs.forward(srs0, forwarderDomain: "fwd.example", now: Self.now)
        #expect(srs1.hasPrefix("SRS1="))
        #expect(srs.reverse(srs1, now: Self.now) == .success(srs0))
        #expect(first.reverse(srs0, now: Self.now) == .success("alice@origin.example"))
        // A separator followed by a combining mark is one Character: splitting is by octets.
        let odd = "\u{484}ceo@origin.example"
        #expect(srs.reverse(srs.forward(odd, forwarderDomain: "fwd.example", now: Self.now), now: Self.now) == .success(odd))
        #expect(SRSRewriter.looksLikeSRS("srs0=x") && SRSRewriter.looksLikeSRS("SRS1-x") && !SRSRewriter.looksLikeSRS("srs2=x")
                && !SRSRewriter.looksLikeSRS("srs0") && !SRSRewriter.looksLikeSRS("srs0x"))
    }
}
