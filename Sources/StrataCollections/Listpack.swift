/// A compact sequence of byte strings in one flat byte array, each entry its length as a LEB128
/// varint then its bytes: the small-collection form (Redis' listpack). Every operation but
/// `append` and `removeFirst`-style edits near the front is O(n) in the bytes, which is the point:
/// it is only used while small.
struct Listpack: Sendable, Equatable {
    /// The entries, back to back.
    private(set) var bytes: [UInt8] = []
    /// How many entries `bytes` holds.
    private(set) var count = 0

    /// An empty listpack.
    init() {}

    /// Adopts already-validated entry bytes; see `validated(bytes:count:)`.
    private init(bytes: [UInt8], count: Int) {
        self.bytes = bytes
        self.count = count
    }

    /// The listpack whose entry bytes are `bytes`, if they parse as exactly `count` entries.
    static func validated(bytes: [UInt8], count: Int) throws(CollectionFormatError) -> Listpack {
        var reader = ByteReader(bytes)
        var seen = 0
        while !reader.isAtEnd {
            _ = try reader.string()
            seen += 1
        }
        guard seen == count else { throw CollectionFormatError("listpack holds \(seen) entries, header says \(count)") }
        return Listpack(bytes: bytes, count: count)
    }

    /// The start offset of the entry after the one at `offset`, and the range of this entry's bytes.
    @inline(__always)
    func entry(at offset: Int) -> (payload: Range<Int>, next: Int) {
        var length = 0
        var shift = 0
        var i = offset
        while true {
            let b = bytes[i]
            length |= Int(b & 0x7F) << shift
            i += 1
            if b & 0x80 == 0 { break }
            shift += 7
        }
        return (i..<i + length, i + length)
    }

    /// The bytes of the entry at `offset`.
    func element(at offset: Int) -> [UInt8] { Array(bytes[entry(at: offset).payload]) }

    /// Whether the entry at `offset` equals `value`.
    func entry(at offset: Int, equals value: [UInt8]) -> Bool {
        let range = entry(at: offset).payload
        guard range.count == value.count else { return false }
        return bytes.withUnsafeBufferPointer { buffer in
            value.withUnsafeBufferPointer { v in
                range.isEmpty || memcmpBytes(buffer.baseAddress! + range.lowerBound, v.baseAddress!, range.count)
            }
        }
    }

    /// The offset of entry number `index` (0-based), or `bytes.count` for `index == count`.
    func offset(ofIndex index: Int) -> Int {
        var offset = 0
        for _ in 0..<index { offset = entry(at: offset).next }
        return offset
    }

    /// The offset of the first entry equal to `value`, looking at every `stride`-th entry (2 for
    /// field/value pairs) from `start`.
    func firstOffset(of value: [UInt8], stride: Int = 1, from start: Int = 0) -> Int? {
        var offset = start
        while offset < bytes.count {
            if entry(at: offset, equals: value) { return offset }
            for _ in 0..<stride { offset = entry(at: offset).next }
        }
        return nil
    }

    /// The encoded form of one entry.
    static func encode(_ value: some Collection<UInt8>) -> [UInt8] {
        var writer = ByteWriter()
        writer.string(value)
        return writer.bytes
    }

    /// Appends `value` as the last entry.
    mutating func append(_ value: some Collection<UInt8>) {
        var v = UInt64(value.count)
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
        bytes.append(contentsOf: value)
        count += 1
    }

    /// Inserts `value` as a new entry starting at `offset` (an entry boundary).
    mutating func insert(_ value: some Collection<UInt8>, at offset: Int) {
        bytes.insert(contentsOf: Listpack.encode(value), at: offset)
        count += 1
    }

    /// Removes the `entries` entries starting at `offset`.
    mutating func remove(at offset: Int, entries: Int = 1) {
        var end = offset
        for _ in 0..<entries { end = entry(at: end).next }
        bytes.removeSubrange(offset..<end)
        count -= entries
    }

    /// Replaces the entry at `offset` with `value`.
    mutating func replace(at offset: Int, with value: some Collection<UInt8>) {
        let end = entry(at: offset).next
        bytes.replaceSubrange(offset..<end, with: Listpack.encode(value))
    }

    /// Every entry, in order.
    var elements: [[UInt8]] {
        var result: [[UInt8]] = []
        result.reserveCapacity(count)
        var offset = 0
        while offset < bytes.count {
            let e = entry(at: offset)
            result.append(Array(bytes[e.payload]))
            offset = e.next
        }
        return result
    }

    /// The heap bytes this listpack holds (its array's capacity and header).
    var memoryBytes: Int { ByteCost.array(capacity: bytes.capacity) }
}

/// Whether the `count` bytes at `a` and `b` are equal.
@inline(__always)
func memcmpBytes(_ a: UnsafePointer<UInt8>, _ b: UnsafePointer<UInt8>, _ count: Int) -> Bool {
    for i in 0..<count where a[i] != b[i] { return false }
    return true
}

/// Lexicographic byte order (Redis' memcmp order, a shorter prefix first).
@inline(__always)
func bytesLess(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    a.withUnsafeBufferPointer { x in
        b.withUnsafeBufferPointer { y in
            let n = min(x.count, y.count)
            for i in 0..<n where x[i] != y[i] { return x[i] < y[i] }
            return x.count < y.count
        }
    }
}

/// The heap cost model `memoryBytes` uses: Swift arrays and class instances as the allocator
/// sees them (a 32-byte array header, 16-byte object header, 16-byte allocation granularity).
enum ByteCost {
    /// The bytes a heap allocation of `size` bytes takes (rounded up to 16).
    @inline(__always)
    static func allocation(_ size: Int) -> Int { (size + 15) & ~15 }

    /// The bytes of an array with `capacity` elements of `stride` bytes; an empty array
    /// shares Swift's empty singleton and costs nothing.
    @inline(__always)
    static func array(capacity: Int, stride: Int = 1) -> Int {
        capacity == 0 ? 0 : allocation(32 + capacity * stride)
    }

    /// The bytes of a byte string of `count` bytes held as its own array.
    @inline(__always)
    static func string(_ count: Int) -> Int { array(capacity: count) }
}
