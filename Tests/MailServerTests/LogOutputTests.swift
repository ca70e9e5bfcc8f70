import Foundation
import Logging
import Testing
@testable import MailServer

@Suite struct LogOutputTests {
    let metadata: Logger.Metadata = [
        "to": "<bob@example.test>", "reply": "550 5.1.1 \"no\" such\\user\nsecond line", "empty": "",
        "msg": "a metadata key named like a fixed one", "list": ["a", "b=c"], "map": ["k": "v"],
    ]

    @Test func jsonLinesAreObjectsWithEveryField() throws {
        let line = LogLineHandler.render(format: .json, time: "2026-12-05T15:04:05.123Z", level: .notice, label: "swallow",
                                         source: "MailQueue", message: "bounced \u{1}ctl", metadata: metadata)
        #expect(!line.contains("\n"))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(object["time"] as? String == "2026-12-05T15:04:05.123Z")
        #expect(object["level"] as? String == "notice")
        #expect(object["source"] as? String == "MailQueue")
        #expect(object["msg"] as? String == "bounced \u{1}ctl")
        #expect(object["meta.msg"] as? String == "a metadata key named like a fixed one")
        #expect(object["reply"] as? String == "550 5.1.1 \"no\" such\\user\nsecond line")
        #expect(object["list"] as? [String] == ["a", "b=c"])
        #expect(object["map"] as? [String: String] == ["k": "v"])
        #expect(object["empty"] as? String == "")
    }

    @Test func jsonStringEscapesControlsAndSeparators() {
        #expect(LogLineHandler.jsonString("a\"b\\c\n\t\u{0}\u{7F}\u{2028}é") == #""a\"b\\c\n\t\u0000\u007f\u2028é""#)
    }

    @Test func logfmtQuotesOnlyWhatNeedsIt() {
        let line = LogLineHandler.render(format: .logfmt, time: nil, level: .info, label: "swallow", source: "MailServer",
                                         message: "accepted", metadata: ["to": "<bob@example.test>", "reply": "250 2.0.0 ok",
                                                                          "empty": "", "eq": "a=b", "odd key": "x"])
        #expect(line == #"level=info logger=swallow source=MailServer msg=accepted empty="" eq="a=b" odd_key=x reply="250 2.0.0 ok" to=<bob@example.test>"#)
    }

    @Test func textMatchesSwiftLogsLayout() {
        let line = LogLineHandler.render(format: .text, time: nil, level: .info, label: "swallow", source: "MailQueue",
                                         message: "delivered", metadata: ["id": "X1", "to": "a@b"])
        #expect(line == "info swallow : id=X1 to=a@b [MailQueue] delivered")
    }

    @Test func syslogSeverities() {
        #expect(LogLineHandler.severity(.critical) == 2)
        #expect(LogLineHandler.severity(.warning) == 4)
        #expect(LogLineHandler.severity(.info) == 6)
        #expect(LogLineHandler.severity(.trace) == 7)
    }
}
