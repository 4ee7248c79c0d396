/// Appends the pieces of the serialization format (LEB128 varints, length-prefixed byte strings,
/// doubles) to a byte array.
struct ByteWriter {
    /// The bytes written so far.
    var bytes: [UInt8] = []

    /// Appends `value` as an unsigned LEB128 varint (7 bits a byte, low bits first).
    mutating func varint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    /// Appends a non-negative count or length as a varint.
    mutating func count(_ value: Int) { varint(UInt64(value)) }

    /// Appends a byte string as its length then its bytes.
    mutating func string(_ value: some Collection<UInt8>) {
        count(value.count)
        bytes.append(contentsOf: value)
    }

    /// Appends the 8 little-endian bytes of `value`'s bit pattern.
    mutating func double(_ value: Double) { fixed64(value.bitPattern) }

    /// Appends the 8 little-endian bytes of `value`.
    mutating func fixed64(_ value: UInt64) {
        for shift in stride(from: 0, to: 64, by: 8) { bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(shift))) }
    }

    /// Appends one raw byte.
    mutating func byte(_ value: UInt8) { bytes.append(value) }
}

/// Reads the pieces `ByteWriter` writes, throwing `CollectionFormatError` on truncated or
/// out-of-range input instead of trapping.
struct ByteReader {
    private let bytes: [UInt8]
    /// The offset of the next unread byte.
    private(set) var offset: Int

    /// A reader over `bytes` starting at `offset`.
    init(_ bytes: [UInt8], offset: Int = 0) {
        self.bytes = bytes
        self.offset = offset
    }

    /// Whether every byte has been read.
    var isAtEnd: Bool { offset == bytes.count }

    /// How many bytes are left.
    var remaining: Int { bytes.count - offset }

    /// Reads one byte.
    mutating func byte() throws(CollectionFormatError) -> UInt8 {
        guard offset < bytes.count else { throw CollectionFormatError("truncated input") }
        defer { offset += 1 }
        return bytes[offset]
    }

    /// Reads an unsigned LEB128 varint of at most 10 bytes.
    mutating func varint() throws(CollectionFormatError) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let b = try byte()
            if shift == 63 && b > 1 { throw CollectionFormatError("varint overflow") }
            result |= UInt64(b & 0x7F) << shift
            if b & 0x80 == 0 { return result }
            shift += 7
            if shift > 63 { throw CollectionFormatError("varint overflow") }
        }
    }

    /// Reads a count or length and checks it is at most `limit` (usually what the input could
    /// still hold), so a corrupt count cannot make the caller reserve huge memory.
    mutating func count(atMost limit: Int) throws(CollectionFormatError) -> Int {
        let v = try varint()
        guard v <= UInt64(max(limit, 0)) else { throw CollectionFormatError("count \(v) larger than the input allows") }
        return Int(v)
    }

    /// Reads a length-prefixed byte string.
    mutating func string() throws(CollectionFormatError) -> [UInt8] {
        let length = try varint()
        guard length <= UInt64(remaining) else { throw CollectionFormatError("string length \(length) past the end") }
        let n = Int(length)
        defer { offset += n }
        return Array(bytes[offset..<offset + n])
    }

    /// Reads 8 little-endian bytes.
    mutating func fixed64() throws(CollectionFormatError) -> UInt64 {
        guard remaining >= 8 else { throw CollectionFormatError("truncated input") }
        var v: UInt64 = 0
        for i in 0..<8 { v |= UInt64(bytes[offset + i]) << UInt64(8 * i) }
        offset += 8
        return v
    }

    /// Reads a double's bit pattern.
    mutating func double() throws(CollectionFormatError) -> Double { Double(bitPattern: try fixed64()) }

    /// Throws unless every byte was read: trailing bytes mean a corrupt or mismatched value.
    func expectEnd() throws(CollectionFormatError) {
        guard isAtEnd else { throw CollectionFormatError("\(remaining) trailing bytes") }
    }
}
