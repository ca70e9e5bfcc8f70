import IMAPCore
import Testing

@Suite struct SequenceSetTests {
    @Test func starResolvesToLargestAndRangesMerge() {
        let set = SequenceSet([.init(.number(5), .star), .init(2), .init(.number(3), .number(1))])
        #expect(set.resolve(largest: 10) == [1...3, 5...10])
        #expect(set.resolve(largest: 4) == [1...5])
    }

    @Test func starOnEmptyMailboxMatchesNothing() {
        #expect(SequenceSet.all.resolve(largest: 0) == [])
        #expect(SequenceSet([.init(.number(7), .star)]).resolve(largest: 0) == [])
    }

    @Test func compactFromValues() {
        #expect(SequenceSet(values: [1, 2, 3, 7, 9, 10]) == SequenceSet([.init(.number(1), .number(3)), .init(7), .init(.number(9), .number(10))]))
        #expect(SequenceSet(values: [UInt32]()).ranges.isEmpty)
    }
}
