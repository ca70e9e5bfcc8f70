import Foundation
import Testing

/// A Python library as the judge of a test: its script's standard output, or `nil` when the
/// interpreter cannot import what the test needs — a recorded failure in CI (`CI=true`), where a
/// missing peer is a defect of the machine's setup.
enum PythonPeer {
    /// Runs `interpreter` (`["/usr/bin/env", "python3"]`, or a fixed path) with `-c script` and
    /// `arguments`, after `probe` (an import statement) succeeded; the output trimmed.
    static func run(_ script: String, _ arguments: [String], interpreter: [String], probe: String, missing: String) throws -> String? {
        func process(_ args: [String]) -> Process {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: interpreter[0])
            p.arguments = Array(interpreter.dropFirst()) + args
            return p
        }
        let check = process(["-c", probe])
        check.standardError = FileHandle.nullDevice
        try? check.run()
        check.waitUntilExit()
        if check.terminationReason != .exit || check.terminationStatus != 0 {
            if ProcessInfo.processInfo.environment["CI"] == "true" { Issue.record("\(missing)") }
            return nil
        }
        let p = process(["-c", script] + arguments)
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
