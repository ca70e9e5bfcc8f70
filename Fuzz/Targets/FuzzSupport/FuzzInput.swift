/// Splits one fuzzer input into the pieces a target needs: a few control bytes (which choose how the
/// stream is cut into reads and how a simulated delegate answers) and the payload.
public struct FuzzInput {
    public let control: [UInt8]
    public let payload: [UInt8]

    public init(_ data: UnsafePointer<UInt8>, _ size: Int, controlBytes: Int = 2) {
        let all = Array(UnsafeBufferPointer(start: data, count: size))
        let n = min(controlBytes, all.count)
        control = Array(all[..<n]) + Array(repeating: 0, count: controlBytes - n)
        payload = Array(all[n...])
    }

    /// The payload cut into reads of 1…64 bytes, the size chosen by the first control byte (0 means
    /// one read of everything), the way a TCP stream arrives.
    public var reads: [ArraySlice<UInt8>] {
        let step = Int(control[0] % 65)
        guard step > 0 else { return [payload[...]] }
        return stride(from: 0, to: payload.count, by: step).map { payload[$0..<min($0 + step, payload.count)] }
    }

    /// A deterministic sequence of yes/no answers derived from the second control byte.
    public func answer(_ n: Int) -> Bool {
        (Int(control[1]) >> (n % 8)) & 1 == 1
    }
}

/// Stops the run with a message libFuzzer records as a crash: a broken invariant is a finding.
public func fuzzCheck(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String) {
    if !condition() { fatalError("invariant broken: \(message())") }
}
