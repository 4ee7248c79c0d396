/// XXH64, the 64-bit xxHash: Strata's one stable hash.
///
/// Stable means the same bytes give the same number on every machine, in every process and in
/// every version of Strata: the memory tier picks shards with it, the disk tier derives keys for
/// long user keys from it, and the cluster ring places keys with it. Swift's `Hasher` is seeded per
/// process, so it cannot serve any of these. Test vectors (from the reference implementation) are
/// in `StableHashTests`.
public enum StableHash {
    private static let p1: UInt64 = 0x9E37_79B1_85EB_CA87
    private static let p2: UInt64 = 0xC2B2_AE3D_27D4_EB4F
    private static let p3: UInt64 = 0x1656_67B1_9E37_79F9
    private static let p4: UInt64 = 0x85EB_CA77_C2B2_AE63
    private static let p5: UInt64 = 0x27D4_EB2F_1656_67C5

    /// XXH64 of `bytes` with `seed`.
    @inlinable
    public static func hash(_ bytes: [UInt8], seed: UInt64 = 0) -> UInt64 {
        bytes.withUnsafeBytes { hash($0, seed: seed) }
    }

    /// XXH64 of the bytes at `buffer` with `seed`.
    public static func hash(_ buffer: UnsafeRawBufferPointer, seed: UInt64 = 0) -> UInt64 {
        let count = buffer.count
        guard let base = buffer.baseAddress else { return finish(seed &+ p5, 0, buffer) }
        var offset = 0
        var h: UInt64
        if count >= 32 {
            var v1 = seed &+ p1 &+ p2
            var v2 = seed &+ p2
            var v3 = seed
            var v4 = seed &- p1
            while offset + 32 <= count {
                v1 = round(v1, base.loadUnaligned(fromByteOffset: offset, as: UInt64.self).littleEndian)
                v2 = round(v2, base.loadUnaligned(fromByteOffset: offset + 8, as: UInt64.self).littleEndian)
                v3 = round(v3, base.loadUnaligned(fromByteOffset: offset + 16, as: UInt64.self).littleEndian)
                v4 = round(v4, base.loadUnaligned(fromByteOffset: offset + 24, as: UInt64.self).littleEndian)
                offset += 32
            }
            h = rotl(v1, 1) &+ rotl(v2, 7) &+ rotl(v3, 12) &+ rotl(v4, 18)
            h = merge(h, v1)
            h = merge(h, v2)
            h = merge(h, v3)
            h = merge(h, v4)
        } else {
            h = seed &+ p5
        }
        return finish(h, offset, buffer)
    }

    @inline(__always)
    private static func finish(_ start: UInt64, _ from: Int, _ buffer: UnsafeRawBufferPointer) -> UInt64 {
        var h = start &+ UInt64(buffer.count)
        var offset = from
        let count = buffer.count
        if let base = buffer.baseAddress {
            while offset + 8 <= count {
                let k = round(0, base.loadUnaligned(fromByteOffset: offset, as: UInt64.self).littleEndian)
                h ^= k
                h = rotl(h, 27) &* p1 &+ p4
                offset += 8
            }
            if offset + 4 <= count {
                h ^= UInt64(base.loadUnaligned(fromByteOffset: offset, as: UInt32.self).littleEndian) &* p1
                h = rotl(h, 23) &* p2 &+ p3
                offset += 4
            }
            while offset < count {
                h ^= UInt64(buffer[offset]) &* p5
                h = rotl(h, 11) &* p1
                offset += 1
            }
        }
        h ^= h >> 33
        h = h &* p2
        h ^= h >> 29
        h = h &* p3
        h ^= h >> 32
        return h
    }

    @inline(__always)
    private static func round(_ acc: UInt64, _ input: UInt64) -> UInt64 {
        rotl(acc &+ input &* p2, 31) &* p1
    }

    @inline(__always)
    private static func merge(_ acc: UInt64, _ value: UInt64) -> UInt64 {
        (acc ^ round(0, value)) &* p1 &+ p4
    }

    @inline(__always)
    private static func rotl(_ x: UInt64, _ r: UInt64) -> UInt64 {
        (x << r) | (x >> (64 - r))
    }
}
