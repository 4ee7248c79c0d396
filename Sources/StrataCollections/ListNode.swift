/// One quicklist node: a `Listpack` of list elements, held LZF-compressed while it is an
/// interior node under `list-compress-depth` (and compression saves at least 8 bytes of a
/// node of at least 48, Redis' `MIN_COMPRESS_BYTES`/`MIN_COMPRESS_IMPROVE`).
struct ListNode: Sendable {
    /// The elements, when not compressed.
    private var packed: Listpack
    /// The LZF form of `packed.bytes`, when compressed.
    private var compressed: [UInt8]?
    /// How many elements the node holds.
    private(set) var count: Int
    /// The uncompressed size of the node's entry bytes.
    private(set) var byteCount: Int

    /// A node holding `listpack`, uncompressed.
    init(_ listpack: Listpack) {
        packed = listpack
        compressed = nil
        count = listpack.count
        byteCount = listpack.bytes.count
    }

    /// Whether the node is held compressed.
    var isCompressed: Bool { compressed != nil }

    /// The node's elements as a listpack (decompressed on the fly for a compressed node: O(node)).
    var listpack: Listpack {
        guard let compressed else { return packed }
        guard let raw = LZF.decompress(compressed, size: byteCount),
            let lp = try? Listpack.validated(bytes: raw, count: count)
        else { preconditionFailure("a node this type compressed failed to decompress") }
        return lp
    }

    /// The heap bytes the node holds.
    var memoryBytes: Int {
        if let compressed { return ByteCost.array(capacity: compressed.capacity) }
        return packed.memoryBytes
    }

    /// Edits the elements (decompressing first; the node stays uncompressed until `compress`).
    mutating func edit<R>(_ body: (inout Listpack) -> R) -> R {
        decompress()
        let r = body(&packed)
        count = packed.count
        byteCount = packed.bytes.count
        return r
    }

    /// Holds the node compressed when that is worth it.
    mutating func compress() {
        guard compressed == nil, byteCount >= 48, let c = LZF.compress(packed.bytes) else { return }
        compressed = c
        packed = Listpack()
    }

    /// Holds the node uncompressed.
    mutating func decompress() {
        guard compressed != nil else { return }
        packed = listpack
        compressed = nil
    }
}
