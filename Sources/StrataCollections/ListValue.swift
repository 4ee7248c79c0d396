import DequeModule

/// A Redis list: a quicklist, a deque of `ListNode`s (listpacks) each within the
/// `listMaxListpackSize` limit (a count of entries, or 4-64 KiB of entry bytes), the nodes
/// more than `listCompressDepth` from either end held LZF-compressed. Pushes and pops at
/// either end are O(1) (they touch one bounded node, and at most two nodes change compression);
/// access by index is O(n/node size) through the node counts; edits in the middle repack one
/// bounded node. As Redis 7.2, a list that fits one node reports `listpack`, becomes
/// `quicklist` when it outgrows it, and goes back once a deletion leaves one node at most
/// half full.
public struct ListValue: Sendable {
    /// The nodes, none empty.
    private(set) var nodes: Deque<ListNode> = []
    /// How many elements the list holds.
    public private(set) var count = 0
    /// Whether the list has outgrown a single node (Redis' `quicklist` encoding).
    private(set) var isQuicklist = false
    /// The heap bytes of all nodes, kept as nodes change.
    private var nodeBytes = 0
    /// The `listCompressDepth` the nodes' compression follows (0: none compressed).
    private var compressDepth = 0

    /// An empty list.
    public init() {}

    /// A list with the given nodes (deserialization).
    init(nodes: Deque<Listpack>, isQuicklist: Bool) {
        self.nodes = Deque(nodes.map(ListNode.init))
        self.isQuicklist = isQuicklist
        count = nodes.reduce(0) { $0 + $1.count }
        nodeBytes = nodes.reduce(0) { $0 + $1.memoryBytes }
    }

    /// Whether the list has no elements.
    public var isEmpty: Bool { count == 0 }

    /// Redis' OBJECT ENCODING name: `listpack` or `quicklist`.
    public var encodingName: String { isQuicklist ? "quicklist" : "listpack" }

    /// The heap bytes this list holds, kept up to date as it changes.
    public var memoryBytes: Int { nodeBytes + ByteCost.array(capacity: nodes.count, stride: MemoryLayout<ListNode>.stride) }

    /// Whether `node` can take one more element of `size` bytes under `limits`.
    private static func fits(count: Int, bytes: Int, adding size: Int, _ limits: CollectionLimits) -> Bool {
        let l = limits.listNodeLimits
        return count + 1 <= l.entries && bytes + varintSize(size) + size <= l.bytes
    }

    /// The bytes of a varint holding `n`.
    private static func varintSize(_ n: Int) -> Int {
        var size = 1
        var v = n >> 7
        while v > 0 {
            size += 1
            v >>= 7
        }
        return size
    }

    /// Edits node `i` in place, keeping the byte and element counts up to date.
    private mutating func withNode<R>(_ i: Int, _ body: (inout Listpack) -> R) -> R {
        let before = (nodes[i].memoryBytes, nodes[i].count)
        let r = nodes[i].edit(body)
        nodeBytes += nodes[i].memoryBytes - before.0
        count += nodes[i].count - before.1
        return r
    }

    /// Inserts `node` (non-empty) at node position `i`.
    private mutating func insertNode(_ node: Listpack, at i: Int) {
        nodes.insert(ListNode(node), at: i)
        nodeBytes += node.memoryBytes
        count += node.count
        if nodes.count > 1 { isQuicklist = true }
    }

    /// Removes node `i`.
    private mutating func removeNode(_ i: Int) {
        let node = nodes.remove(at: i)
        nodeBytes -= node.memoryBytes
        count -= node.count
    }

    /// After a deletion: back to `listpack` when one node at most half full is left (Redis'
    /// `listTypeTryConvertQuicklist` with shrinking).
    private mutating func shrunk(_ limits: CollectionLimits) {
        guard isQuicklist, nodes.count <= 1 else { return }
        let l = limits.listNodeLimits
        if (nodes.first?.byteCount ?? 0) <= l.bytes / 2 && (nodes.first?.count ?? 0) <= l.entries / 2 { isQuicklist = false }
    }

    /// Whether node `i` should be held compressed: more than `depth` nodes from either end.
    private func isInterior(_ i: Int, depth: Int) -> Bool {
        depth > 0 && i >= depth && i < nodes.count - depth
    }

    /// Compresses or decompresses node `i` as its place requires, keeping `nodeBytes` right.
    private mutating func settle(_ i: Int) {
        guard nodes.indices.contains(i) else { return }
        let before = nodes[i].memoryBytes
        if isInterior(i, depth: compressDepth) { nodes[i].compress() } else { nodes[i].decompress() }
        nodeBytes += nodes[i].memoryBytes - before
    }

    /// After a change: the nodes whose place relative to the compress depth may have changed
    /// (the `depth + 1` at each end, as Redis' `__quicklistCompress` walks, and `touched`) are
    /// compressed or not as their place requires; when `listCompressDepth` itself changed,
    /// every node is (O(nodes), once).
    private mutating func settleCompression(_ limits: CollectionLimits, touched: Range<Int> = 0..<0) {
        if limits.listCompressDepth != compressDepth {
            compressDepth = limits.listCompressDepth
            for i in nodes.indices { settle(i) }
            return
        }
        guard compressDepth > 0 else { return }
        let d = compressDepth
        let n = nodes.count
        for i in 0..<min(d + 1, n) { settle(i) }
        for i in max(n - d - 1, d + 1)..<max(n, d + 1) { settle(i) }
        for i in touched { settle(i) }
    }

    /// LPUSH (`front`) or RPUSH one element.
    public mutating func push(_ element: [UInt8], front: Bool, limits: CollectionLimits) {
        let end = front ? 0 : nodes.count - 1
        defer { settleCompression(limits) }
        if !nodes.isEmpty && ListValue.fits(count: nodes[end].count, bytes: nodes[end].byteCount, adding: element.count, limits) {
            withNode(end) { node in
                if front { node.insert(element, at: 0) } else { node.append(element) }
            }
            return
        }
        var node = Listpack()
        node.append(element)
        insertNode(node, at: front ? 0 : nodes.count)
    }

    /// LPOP (`front`) or RPOP one element; nil when empty.
    public mutating func pop(front: Bool, limits: CollectionLimits) -> [UInt8]? {
        guard !nodes.isEmpty else { return nil }
        let end = front ? 0 : nodes.count - 1
        let element = withNode(end) { node in
            let offset = front ? 0 : node.offset(ofIndex: node.count - 1)
            let e = node.element(at: offset)
            node.remove(at: offset)
            return e
        }
        if nodes[end].count == 0 { removeNode(end) }
        shrunk(limits)
        settleCompression(limits)
        return element
    }

    /// The node holding 0-based `index` (which must be in range) and its place there, found
    /// walking the node counts from the nearer end.
    private func locate(_ index: Int) -> (node: Int, inNode: Int) {
        if index < count / 2 {
            var i = index
            for n in nodes.indices {
                if i < nodes[n].count { return (n, i) }
                i -= nodes[n].count
            }
        } else {
            var i = count - 1 - index
            for n in nodes.indices.reversed() {
                if i < nodes[n].count { return (n, nodes[n].count - 1 - i) }
                i -= nodes[n].count
            }
        }
        preconditionFailure("index \(index) out of 0..<\(count)")
    }

    /// `index` made 0-based (negatives count from the end), nil when out of range.
    private func normalized(_ index: Int) -> Int? {
        let i = index < 0 ? index + count : index
        return i >= 0 && i < count ? i : nil
    }

    /// LINDEX: the element at `index` (negative from the end), nil when out of range.
    public func element(at index: Int) -> [UInt8]? {
        guard let i = normalized(index) else { return nil }
        let (n, k) = locate(i)
        let node = nodes[n].listpack
        return node.element(at: node.offset(ofIndex: k))
    }

    /// Replaces node `n` by `elements` packed into as many nodes as the limits need (none
    /// when empty): how every middle edit ends, costing O(node size).
    private mutating func repack(_ n: Int, _ elements: [[UInt8]], _ limits: CollectionLimits) {
        removeNode(n)
        var packed: [Listpack] = []
        var node = Listpack()
        for e in elements {
            if node.count > 0 && !ListValue.fits(count: node.count, bytes: node.bytes.count, adding: e.count, limits) {
                packed.append(node)
                node = Listpack()
            }
            node.append(e)
        }
        if node.count > 0 { packed.append(node) }
        for (k, p) in packed.enumerated() { insertNode(p, at: n + k) }
        settleCompression(limits, touched: n..<n + packed.count)
    }

    /// LSET: replaces the element at `index`; false when out of range.
    @discardableResult
    public mutating func set(at index: Int, to element: [UInt8], limits: CollectionLimits) -> Bool {
        guard let i = normalized(index) else { return false }
        let (n, k) = locate(i)
        var elements = nodes[n].listpack.elements
        elements[k] = element
        repack(n, elements, limits)
        return true
    }

    /// LINSERT: inserts `element` before (or after) the first `pivot` from the head; false when
    /// there is no `pivot`.
    @discardableResult
    public mutating func insert(
        _ element: [UInt8], before: Bool, pivot: [UInt8], limits: CollectionLimits
    ) -> Bool {
        for n in nodes.indices {
            let node = nodes[n].listpack
            guard let offset = node.firstOffset(of: pivot) else { continue }
            var elements = node.elements
            var k = 0
            var o = 0
            while o != offset {
                o = node.entry(at: o).next
                k += 1
            }
            elements.insert(element, at: before ? k : k + 1)
            repack(n, elements, limits)
            return true
        }
        return false
    }

    /// LREM: removes up to `count` elements equal to `element` from the head (`count > 0`), the
    /// tail (`count < 0`) or all (`0`); returns how many were removed.
    @discardableResult
    public mutating func remove(_ element: [UInt8], count limit: Int, limits: CollectionLimits) -> Int {
        var removed = 0
        let fromTail = limit < 0
        let most = limit == 0 ? Int.max : limit.magnitude > UInt(Int.max) ? Int.max : abs(limit)
        var n = fromTail ? nodes.count - 1 : 0
        while n >= 0 && n < nodes.count && removed < most {
            let node = nodes[n].listpack
            guard node.firstOffset(of: element) != nil else {
                n += fromTail ? -1 : 1
                continue
            }
            var elements = node.elements
            var keep: [[UInt8]] = []
            keep.reserveCapacity(elements.count)
            if fromTail { elements.reverse() }
            for e in elements {
                if removed < most && e == element { removed += 1 } else { keep.append(e) }
            }
            if fromTail { keep.reverse() }
            let before = nodes.count
            repack(n, keep, limits)
            if !fromTail { n += 1 - (before - nodes.count) } else { n -= 1 }
        }
        shrunk(limits)
        return removed
    }

    /// Removes `k` elements from the front (or back): whole nodes, then part of one.
    private mutating func drop(_ k: Int, front: Bool) {
        var left = k
        while left > 0, !nodes.isEmpty {
            let end = front ? 0 : nodes.count - 1
            if nodes[end].count <= left {
                left -= nodes[end].count
                removeNode(end)
                continue
            }
            withNode(end) { node in
                if front {
                    node.remove(at: 0, entries: left)
                } else {
                    node.remove(at: node.offset(ofIndex: node.count - left), entries: left)
                }
            }
            left = 0
        }
    }

    /// Redis' normalization of a range of indexes (negatives from the end), empty when out of range.
    private func indexes(_ start: Int, _ stop: Int) -> Range<Int> {
        var lo = start < 0 ? start + count : start
        var hi = stop < 0 ? stop + count : stop
        if lo < 0 { lo = 0 }
        if lo > hi || lo >= count { return 0..<0 }
        if hi >= count { hi = count - 1 }
        return lo..<hi + 1
    }

    /// LTRIM: keeps only indexes `start`...`stop`, O(removed nodes + one node at each end).
    public mutating func trim(_ start: Int, _ stop: Int, limits: CollectionLimits) {
        let keep = indexes(start, stop)
        if keep.isEmpty {
            drop(count, front: true)
        } else {
            drop(count - keep.upperBound, front: false)
            drop(keep.lowerBound, front: true)
        }
        shrunk(limits)
        settleCompression(limits)
    }

    /// LRANGE: the elements at indexes `start`...`stop` (negatives from the end).
    public func range(_ start: Int, _ stop: Int) -> [[UInt8]] {
        let r = indexes(start, stop)
        guard !r.isEmpty else { return [] }
        var out: [[UInt8]] = []
        out.reserveCapacity(r.count)
        var (n, k) = locate(r.lowerBound)
        while out.count < r.count {
            let node = nodes[n].listpack
            var offset = node.offset(ofIndex: k)
            while offset < node.bytes.count && out.count < r.count {
                let e = node.entry(at: offset)
                out.append(Array(node.bytes[e.payload]))
                offset = e.next
            }
            n += 1
            k = 0
        }
        return out
    }

    /// Every element, head first.
    public var elements: [[UInt8]] { range(0, -1) }

    /// LPOS: the indexes of elements equal to `element`, starting with the `rank`-th match
    /// from the head (`rank > 0`) or tail (`rank < 0`, `rank` is never 0), at most `count`
    /// of them (0: all), comparing at most `maxLength` elements (0: all).
    public func positions(of element: [UInt8], rank: Int, count limit: Int, maxLength: Int) -> [Int] {
        var out: [Int] = []
        var skip = rank.magnitude > 1 ? Int(rank.magnitude - 1) : 0
        var compared = 0
        let fromTail = rank < 0
        let nodeOrder = fromTail ? Array(nodes.indices.reversed()) : Array(nodes.indices)
        var index = fromTail ? count - 1 : 0
        for n in nodeOrder {
            var elements = nodes[n].listpack.elements
            if fromTail { elements.reverse() }
            for e in elements {
                if maxLength > 0 && compared >= maxLength { return out }
                compared += 1
                if e == element {
                    if skip > 0 {
                        skip -= 1
                    } else {
                        out.append(index)
                        if limit > 0 && out.count >= limit { return out }
                    }
                }
                index += fromTail ? -1 : 1
            }
        }
        return out
    }
}
