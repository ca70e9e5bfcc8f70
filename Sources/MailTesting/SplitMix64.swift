/// A small, seedable random number generator (SplitMix64) so "random" test inputs are reproducible.
///
/// Not for anything but tests: the same seed always yields the same sequence on every platform.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    /// Creates a generator; equal seeds give equal sequences.
    public init(seed: UInt64) { state = seed }

    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// How one client write is cut into the pieces a server reads ("drip feed", ARCHITECTURE §7.2).
public enum WriteSplitting: Hashable, Sendable, CustomStringConvertible {
    /// Each write arrives in one read.
    case asWritten
    /// Each write arrives one byte per read.
    case byteByByte
    /// Each write is cut at pseudo-random points chosen by a ``SplitMix64`` with this seed.
    case random(seed: UInt64)

    /// The whole writes, the single bytes and `randomSeeds` seeded random splits.
    public static func all(randomSeeds: ClosedRange<UInt64> = 1...8) -> [WriteSplitting] {
        [.asWritten, .byteByByte] + randomSeeds.map { .random(seed: $0) }
    }

    public var description: String {
        switch self {
        case .asWritten: "as written"
        case .byteByByte: "byte by byte"
        case .random(let seed): "random splits (seed \(seed))"
        }
    }

    /// Cuts each of `writes` into pieces; the pieces of one write never merge with the next write.
    /// The generator state carries over between writes, so the whole sequence depends on the seed only.
    public func pieces(of writes: [[UInt8]]) -> [[UInt8]] {
        var rng = SplitMix64(seed: { if case .random(let s) = self { s } else { 0 } }())
        var out: [[UInt8]] = []
        for write in writes {
            switch self {
            case .asWritten:
                out.append(write)
            case .byteByByte:
                out.append(contentsOf: write.map { [$0] })
            case .random:
                var i = 0
                while i < write.count {
                    // Mostly short pieces (so CR, LF and "." land on boundaries), sometimes long ones.
                    let maxLength = Int.random(in: 0..<8, using: &rng) == 0 ? 200 : 6
                    let n = min(write.count - i, Int.random(in: 1...maxLength, using: &rng))
                    out.append(Array(write[i..<(i + n)]))
                    i += n
                }
            }
        }
        return out
    }
}
