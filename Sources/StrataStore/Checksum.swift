import CZlib

/// CRC-32 (IEEE 802.3, the zlib/PNG polynomial) over raw bytes, from zlib's table-driven code.
enum Checksum {
    @inline(__always)
    static func crc32(_ buffer: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return crc }
        return UInt32(
            truncatingIfNeeded: CZlib.crc32(
                UInt(crc),
                base.assumingMemoryBound(to: UInt8.self),
                UInt32(buffer.count)
            )
        )
    }
}
