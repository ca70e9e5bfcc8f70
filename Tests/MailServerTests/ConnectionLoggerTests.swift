import ListenerSupport
import Logging
import Synchronization
import Testing

/// Records what reaches the handler.
private final class Recorder: Sendable {
    let records = Mutex<[(Logger.Level, String, Logger.Metadata)]>([])
}

private struct RecordingHandler: LogHandler {
    let recorder: Recorder
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .info

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let all = self.metadata.merging(event.metadata ?? [:]) { _, new in new }
        recorder.records.withLock { $0.append((event.level, event.message.description, all)) }
    }
}

@Suite struct ConnectionLoggerTests {
    @Test func addsClientAndUserToEveryRecordAndKeepsTheLevel() {
        let recorder = Recorder()
        var log = ConnectionLogger(Logger(label: "t") { _ in RecordingHandler(recorder: recorder) })
        log.debug("below the level")  // the base logger is at info
        log.info("connect", metadata: ["listener": "smtp"])
        log.client = "127.0.0.1:4242"
        log.notice("timeout")
        log.user = "alice@example.test"
        log.error("local error", metadata: ["user": "explicit"])
        log.warning("discarding")
        let records = recorder.records.withLock { $0 }
        #expect(records.count == 4)
        #expect(records[0].0 == .info && records[0].2 == ["listener": "smtp"])
        #expect(records[1].1 == "timeout" && records[1].2 == ["client": "127.0.0.1:4242"])
        #expect(records[2].0 == .error && records[2].2 == ["client": "127.0.0.1:4242", "user": "explicit"])
        #expect(records[3].2 == ["client": "127.0.0.1:4242", "user": "alice@example.test"])
    }
}
