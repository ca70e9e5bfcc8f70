import MailCore
import Testing

@Suite("QueueID")
struct QueueIDTests {
    @Test("known values", arguments: [
        (UInt64(0), UInt32(0), "00000000000z0000"),
        (UInt64(31), UInt32(1), "0000000000bz0001"),
        (UInt64(32), UInt32(31), "00000000010z000b"),
        (UInt64(1023), UInt32(32), "000000000bbz0010"),
    ])
    func knownValues(_ micros: UInt64, _ sequence: UInt32, _ expected: String) {
        #expect(QueueID(microseconds: micros, sequence: sequence).rawValue == expected)
        #expect(QueueID(microseconds: micros, sequence: sequence).description == expected)
    }

    @Test("IDs are safe file names without vowels")
    func safeAlphabet() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<1000 {
            let id = QueueID(microseconds: .random(in: 0...UInt64.max, using: &rng), sequence: .random(in: 0...UInt32.max, using: &rng))
            #expect(!id.rawValue.isEmpty)
            #expect(id.rawValue.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber) })
            #expect(!id.rawValue.contains(where: { "AEIOUaeiou/.".contains($0) }))
        }
    }

    @Test("IDs of the same width sort by creation time, then by sequence")
    func sortable() {
        // Realistic times (2020…2100) all have 11 base-32 digits.
        let base: UInt64 = 1_600_000_000_000_000
        var previous = QueueID(microseconds: base, sequence: 0)
        for step: UInt64 in [1, 2, 31, 32, 1000, 1_000_000, 3_600_000_000, 86_400_000_000 * 365 * 50] {
            let next = QueueID(microseconds: base + step, sequence: 0)
            #expect(previous < next)
            #expect(QueueID(microseconds: base + step - 1, sequence: 25) < next)
            previous = next
        }
        for s: UInt32 in [0, 1, 30, 31, 32, 1000, 65_535] {
            #expect(QueueID(microseconds: base, sequence: s) < QueueID(microseconds: base, sequence: s + 1))
        }
    }

    @Test("rawValue round-trips")
    func rawValue() {
        let id = QueueID(microseconds: 1_700_000_000_123_456, sequence: 7)
        #expect(QueueID(rawValue: id.rawValue) == id)
        #expect(QueueID(microseconds: 1, sequence: 1) != QueueID(microseconds: 1, sequence: 2))
    }
}
