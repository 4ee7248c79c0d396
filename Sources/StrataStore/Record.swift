/// The one on-disk record format. Every value and tombstone in the disk tier is stored as a record.
///
/// Layout, little-endian, format version 1 (`Record.formatVersion`):
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 1 | format version |
/// | 1 | 1 | flags: 0x01 compressed, 0x02 tombstone, 0x04 full key stored (long keys) |
/// | 2 | 1 | value kind (`ValueKind`: 0 string, 1 hash, 2 list, 3 set, 4 sorted set) |
/// | 3 | 1 | reserved, zero |
/// | 4 | 4 | CRC-32 of every byte from offset 8 to the end |
/// | 8 | 8 | absolute expiry, milliseconds since the Unix epoch; 0 = never |
/// | 16 | 8 | version clock (hybrid logical clock) |
/// | 24 | 4 | version node id |
/// | 28 | 4 | raw (uncompressed) value length |
/// | 32 | 4 | stamp: seconds since the epoch of the last write, for disk-tier eviction |
/// | 36 | … | payload: if flag 0x04, a 4-byte key length and the full key; then the value bytes, zlib-compressed if flag 0x01 |
///
/// A reader that meets a format version above its own refuses the record (and `DataDirectory`
/// refuses a directory written by a newer format); a CRC mismatch makes the record a miss.
enum Record {
    static let formatVersion: UInt8 = 1
    static let headerSize = 36

    struct Flags: OptionSet, Sendable {
        let rawValue: UInt8
        static let compressed = Flags(rawValue: 0x01)
        static let tombstone = Flags(rawValue: 0x02)
        static let fullKey = Flags(rawValue: 0x04)
    }

    /// The decoded fixed fields of a record.
    struct Header: Sendable, Equatable {
        var flags: Flags
        var expiry: Int64
        var version: Version
        var rawLength: Int
        var stamp: UInt32
        var kind: ValueKind
    }

    enum DecodeError: Error, Equatable {
        case truncated
        case newerFormat(UInt8)
        case checksumMismatch
        case badPayload
        case unknownKind(UInt8)
    }

    /// Encodes a record. `fullKey` is given for keys too long to be LMDB keys themselves.
    /// Returns the bytes and how many value bytes went in and came out of compression (0, 0 if none).
    static func encode(
        value: UnsafeRawBufferPointer,
        fullKey: UnsafeRawBufferPointer?,
        expiry: Int64,
        version: Version,
        tombstone: Bool = false,
        kind: ValueKind = .string,
        stamp: UInt32,
        compressThreshold: Int,
        compressor: ValueCompressor
    ) -> (bytes: [UInt8], compressedIn: Int, compressedOut: Int) {
        var flags: Flags = tombstone ? .tombstone : []
        var compressed = value.count >= compressThreshold && value.count > 0 ? compressor.compress(value) : nil
        if compressed != nil { flags.insert(.compressed) }
        if fullKey != nil { flags.insert(.fullKey) }
        let payloadCount = (compressed?.readableBytes ?? value.count) + (fullKey.map { 4 + $0.count } ?? 0)
        let total = headerSize + payloadCount
        let bytes = [UInt8](unsafeUninitializedCapacity: total) { buffer, initialized in
            let raw = UnsafeMutableRawBufferPointer(buffer)
            raw.storeBytes(of: formatVersion, toByteOffset: 0, as: UInt8.self)
            raw.storeBytes(of: flags.rawValue, toByteOffset: 1, as: UInt8.self)
            raw.storeBytes(of: kind.rawValue, toByteOffset: 2, as: UInt8.self)
            raw.storeBytes(of: UInt8(0), toByteOffset: 3, as: UInt8.self)
            raw.storeBytes(of: expiry.littleEndian, toByteOffset: 8, as: Int64.self)
            raw.storeBytes(of: version.clock.littleEndian, toByteOffset: 16, as: UInt64.self)
            raw.storeBytes(of: version.node.littleEndian, toByteOffset: 24, as: UInt32.self)
            raw.storeBytes(of: UInt32(value.count).littleEndian, toByteOffset: 28, as: UInt32.self)
            raw.storeBytes(of: stamp.littleEndian, toByteOffset: 32, as: UInt32.self)
            var offset = headerSize
            if let fullKey {
                raw.storeBytes(of: UInt32(fullKey.count).littleEndian, toByteOffset: offset, as: UInt32.self)
                offset += 4
                if fullKey.count > 0 {
                    UnsafeMutableRawBufferPointer(rebasing: raw[offset..<offset + fullKey.count]).copyMemory(from: fullKey)
                }
                offset += fullKey.count
            }
            if var c = compressed {
                c.withUnsafeReadableBytes { src in
                    UnsafeMutableRawBufferPointer(rebasing: raw[offset..<offset + src.count]).copyMemory(from: src)
                }
                offset += c.readableBytes
                c.clear()
            } else if value.count > 0 {
                UnsafeMutableRawBufferPointer(rebasing: raw[offset..<offset + value.count]).copyMemory(from: value)
                offset += value.count
            }
            let crc = Checksum.crc32(UnsafeRawBufferPointer(rebasing: raw[8..<total]))
            raw.storeBytes(of: crc.littleEndian, toByteOffset: 4, as: UInt32.self)
            initialized = total
        }
        let c = compressed?.readableBytes ?? 0
        compressed = nil
        return (bytes, c > 0 ? value.count : 0, c)
    }

    /// Decodes and checks the fixed fields; verifies the CRC over the whole record.
    static func header(_ bytes: UnsafeRawBufferPointer, verify: Bool = true) throws(DecodeError) -> Header {
        guard bytes.count >= headerSize else { throw .truncated }
        let format = bytes.load(fromByteOffset: 0, as: UInt8.self)
        guard format <= formatVersion, format > 0 else { throw .newerFormat(format) }
        if verify {
            let stored = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
            guard Checksum.crc32(UnsafeRawBufferPointer(rebasing: bytes[8...])) == stored else {
                throw .checksumMismatch
            }
        }
        let kindByte = bytes.load(fromByteOffset: 2, as: UInt8.self)
        guard let kind = ValueKind(rawValue: kindByte) else { throw .unknownKind(kindByte) }
        return Header(
            flags: Flags(rawValue: bytes.load(fromByteOffset: 1, as: UInt8.self)),
            expiry: Int64(littleEndian: bytes.loadUnaligned(fromByteOffset: 8, as: Int64.self)),
            version: Version(
                clock: UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 16, as: UInt64.self)),
                node: UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 24, as: UInt32.self))),
            rawLength: Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 28, as: UInt32.self))),
            stamp: UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 32, as: UInt32.self)),
            kind: kind
        )
    }

    /// The full user key stored in a record with the `fullKey` flag.
    static func fullKey(_ bytes: UnsafeRawBufferPointer, _ header: Header) throws(DecodeError) -> UnsafeRawBufferPointer? {
        guard header.flags.contains(.fullKey) else { return nil }
        guard bytes.count >= headerSize + 4 else { throw .badPayload }
        let length = Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: headerSize, as: UInt32.self)))
        guard bytes.count >= headerSize + 4 + length else { throw .badPayload }
        return UnsafeRawBufferPointer(rebasing: bytes[headerSize + 4..<headerSize + 4 + length])
    }

    /// The stored (possibly compressed) value bytes.
    static func storedValue(_ bytes: UnsafeRawBufferPointer, _ header: Header) throws(DecodeError) -> UnsafeRawBufferPointer {
        var offset = headerSize
        if let key = try fullKey(bytes, header) { offset += 4 + key.count }
        return UnsafeRawBufferPointer(rebasing: bytes[offset...])
    }

    /// The raw value: decompressed when the record is compressed.
    static func value(_ bytes: UnsafeRawBufferPointer, _ header: Header, compressor: ValueCompressor) throws -> [UInt8] {
        let stored = try storedValue(bytes, header)
        if header.flags.contains(.compressed) {
            return try compressor.decompress(stored, rawLength: header.rawLength)
        }
        guard stored.count == header.rawLength else { throw DecodeError.badPayload }
        return [UInt8](stored)
    }

    /// Rewrites the expiry field (and the CRC) of an encoded record in place.
    static func setExpiry(_ expiry: Int64, version: Version, stamp: UInt32, in bytes: inout [UInt8]) {
        bytes.withUnsafeMutableBytes { raw in
            raw.storeBytes(of: expiry.littleEndian, toByteOffset: 8, as: Int64.self)
            raw.storeBytes(of: version.clock.littleEndian, toByteOffset: 16, as: UInt64.self)
            raw.storeBytes(of: version.node.littleEndian, toByteOffset: 24, as: UInt32.self)
            raw.storeBytes(of: stamp.littleEndian, toByteOffset: 32, as: UInt32.self)
            let crc = Checksum.crc32(UnsafeRawBufferPointer(rebasing: raw[8...]))
            raw.storeBytes(of: crc.littleEndian, toByteOffset: 4, as: UInt32.self)
        }
    }
}
