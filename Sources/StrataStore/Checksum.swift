import CStrataSystem
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

    /// CRC-32C (Castagnoli), with the CPU's crc32 instruction where there is one: for the
    /// hot-set snapshot, which a warm start checks at memory speed.
    @inline(__always)
    static func crc32c(_ buffer: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return crc }
        return strata_crc32c(crc, base, buffer.count)
    }
}
