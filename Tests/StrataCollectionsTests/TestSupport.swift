@testable import StrataCollections

/// A seeded generator (SplitMix64) so every random test replays the same operations.
struct SeededRandom: RandomNumberGenerator {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A short random byte string over a small alphabet (so operations hit existing elements),
    /// sometimes a canonical integer, sometimes long.
    mutating func element(pool: Int = 40, longEvery: Int = 0) -> [UInt8] {
        let k = Int.random(in: 0..<pool, using: &self)
        if longEvery > 0 && Int.random(in: 0..<longEvery, using: &self) == 0 {
            return Array(repeating: UInt8(ascii: "x"), count: 70 + k)
        }
        if k % 3 == 0 { return Array(String(k - 20).utf8) }
        return Array("e\(k)".utf8) + (k % 7 == 0 ? [0, 255] : [])
    }
}

/// `s` as bytes.
func b(_ s: String) -> [UInt8] { Array(s.utf8) }

/// Small limits so random tests cross every threshold many times.
func smallLimits() -> CollectionLimits {
    var l = CollectionLimits()
    l.hashMaxListpackEntries = 16
    l.hashMaxListpackValue = 8
    l.setMaxIntsetEntries = 12
    l.setMaxListpackEntries = 10
    l.setMaxListpackValue = 8
    l.zsetMaxListpackEntries = 16
    l.zsetMaxListpackValue = 8
    l.listMaxListpackSize = 4
    return l
}

/// What `memoryBytes` should be, recomputed by walking every entry (the values keep it incrementally).
enum WalkedMemory {
    static func of(_ h: HashValue) -> Int {
        switch h.storage {
        case .listpack(let lp): lp.memoryBytes
        case .table(let t):
            t.memoryBytes + t.slots.reduce(0) { $0 + ByteCost.string($1.key.count) + ByteCost.string($1.value.count) }
        }
    }

    static func of(_ s: SetValue) -> Int {
        switch s.storage {
        case .intset(let a): ByteCost.array(capacity: a.capacity, stride: 8)
        case .listpack(let lp): lp.memoryBytes
        case .table(let t): t.memoryBytes + t.slots.reduce(0) { $0 + ByteCost.string($1.key.count) }
        }
    }

    static func of(_ z: SortedSetValue) -> Int {
        switch z.storage {
        case .listpack(let lp): return lp.memoryBytes
        case .skiplist(let list):
            var total = list.index.memoryBytes + ByteCost.allocation(48) * 2
            var node = list.first
            while let n = node {
                total += ByteCost.allocation(48) + ByteCost.string(n.member.count)
                    + ByteCost.array(capacity: n.levels.count, stride: MemoryLayout<SkipNode.Level>.stride)
                node = n.levels[0].forward
            }
            return total
        }
    }
}
