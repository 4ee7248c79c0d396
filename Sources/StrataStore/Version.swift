import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The version of a stored value: a hybrid logical clock reading plus the writing node's id.
///
/// Replicas keep the highest version of a key (last writer wins). `clock` orders writes in real
/// time as far as the nodes' clocks agree and never goes backwards on one node; `node` breaks ties
/// between two nodes that wrote in the same clock tick, so every replica picks the same winner.
public struct Version: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// Physical milliseconds since the Unix epoch in the upper 48 bits, a logical counter in the lower 16.
    public var clock: UInt64
    /// The id of the node that made the write.
    public var node: UInt32

    public init(clock: UInt64, node: UInt32) {
        self.clock = clock
        self.node = node
    }

    /// The version older than every real write.
    public static let zero = Version(clock: 0, node: 0)

    /// Milliseconds since the epoch that this version was made at.
    public var milliseconds: Int64 { Int64(clock >> 16) }

    public static func < (lhs: Version, rhs: Version) -> Bool {
        (lhs.clock, lhs.node) < (rhs.clock, rhs.node)
    }

    public var description: String { "\(clock >> 16).\(clock & 0xFFFF)@\(node)" }

    /// The version as text (`clock-node` in decimal; `0` for `zero`), for peers and INFO.
    public var text: String { self == .zero ? "0" : "\(clock)-\(node)" }

    public init?(text: String) {
        if text == "0" {
            self = .zero
            return
        }
        let parts = text.split(separator: "-")
        guard parts.count == 2, let clock = UInt64(parts[0]), let node = UInt32(parts[1]) else { return nil }
        self.init(clock: clock, node: node)
    }

    /// The version as 12 bytes (clock, then node; little-endian), for files and peers.
    public var bytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(12)
        withUnsafeBytes(of: clock.littleEndian) { out.append(contentsOf: $0) }
        withUnsafeBytes(of: node.littleEndian) { out.append(contentsOf: $0) }
        return out
    }

    /// Reads `bytes` as written by `bytes`; nil unless there are exactly 12.
    public init?(bytes: some Collection<UInt8>) {
        guard bytes.count == 12 else { return nil }
        let b = Array(bytes)
        var clock: UInt64 = 0
        for i in (0..<8).reversed() { clock = clock << 8 | UInt64(b[i]) }
        var node: UInt32 = 0
        for i in (8..<12).reversed() { node = node << 8 | UInt32(b[i]) }
        self.init(clock: clock, node: node)
    }
}

/// Wall-clock time in milliseconds since the Unix epoch.
@inline(__always)
public func currentTimeMilliseconds() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
}

/// Monotonic time in nanoseconds, for measuring durations.
@inline(__always)
func monotonicNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// A hybrid logical clock: physical time when it moves forward, a counter when it does not.
///
/// `now()` is strictly increasing on one node even if the wall clock steps back; `observe(_:)` moves
/// it past a version seen from another node, so a write that follows a read there orders after it.
public final class HybridClock: Sendable {
    private let last = Atomic<UInt64>(0)
    /// This node's id, stamped into every version it makes.
    public let node: UInt32

    public init(node: UInt32) {
        self.node = node
    }

    /// A new version, greater than every version this clock made or observed before.
    public func now() -> Version {
        let physical = UInt64(max(0, currentTimeMilliseconds())) << 16
        var current = last.load(ordering: .relaxed)
        while true {
            let next = max(physical, current &+ 1)
            let (exchanged, original) = last.compareExchange(
                expected: current, desired: next, ordering: .relaxed)
            if exchanged { return Version(clock: next, node: node) }
            current = original
        }
    }

    /// The newest clock reading this clock made or observed.
    public var latest: UInt64 { last.load(ordering: .relaxed) }

    /// Moves the clock past `version`.
    public func observe(_ version: Version) {
        var current = last.load(ordering: .relaxed)
        while current < version.clock {
            let (exchanged, original) = last.compareExchange(
                expected: current, desired: version.clock, ordering: .relaxed)
            if exchanged { return }
            current = original
        }
    }
}
