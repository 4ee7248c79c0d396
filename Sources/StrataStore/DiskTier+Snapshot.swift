/// Writing the hot-key snapshot from the memory tier's packed keys (`MemoryTier.packedHottestKeys`).
extension DiskTier {
    /// Replaces the snapshot with `packed` (`[u32 little-endian length][key]` each), in chunks of
    /// about 256 KiB cut at key boundaries, the format `snapshotKeys` reads. Returns the key count.
    @discardableResult
    func writeSnapshot(packed: [UInt8], in txn: borrowing LMDBTransaction) throws -> Int {
        try txn.clear(snapshot)
        var number: UInt32 = 0
        var keys = 0
        try packed.withUnsafeBytes { all in
            var start = 0
            var offset = 0
            func flush(to end: Int) throws {
                guard end > start else { return }
                var k = number.bigEndian
                try withUnsafeBytes(of: &k) { key in try txn.put(snapshot, key, UnsafeRawBufferPointer(rebasing: all[start..<end])) }
                number += 1
                start = end
            }
            while offset + 4 <= all.count {
                let length = Int(UInt32(littleEndian: all.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
                offset = min(all.count, offset + 4 + length)
                keys += 1
                if offset - start >= 256 << 10 { try flush(to: offset) }
            }
            try flush(to: offset)
        }
        return keys
    }
}
