import Foundation
import MailCore
import Testing

/// `readdir` records are only as long as their names: reading them must not copy the whole `dirent`
/// (the old code did, and the queue runner crashed at the end of a directory buffer with 1,000 entries).
@Suite struct DirectoryEntryTests {
    @Test func namesOfEveryLengthAreReadInPlace() throws {
        let dir = NSTemporaryDirectory() + "swallow-dirent-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var expected: Set<String> = []
        var rng = SystemRandomNumberGenerator()
        for i in 0..<3000 {
            let name = "\(i)." + String(repeating: "x", count: Int.random(in: 0...200, using: &rng))
            #expect(FileManager.default.createFile(atPath: dir + "/" + name, contents: nil))
            expected.insert(name)
        }
        for _ in 0..<5 {
            guard let d = opendir(dir) else { Issue.record("opendir"); return }
            var found: Set<String> = []
            while let e = readdir(d) {
                let name = directoryEntryName(e)
                if name != "." && name != ".." { found.insert(name) }
            }
            closedir(d)
            #expect(found == expected)
        }
    }
}
