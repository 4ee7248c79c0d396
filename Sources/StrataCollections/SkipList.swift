/// One element of a `SkipList`: a member, its score, and its forward links with spans.
final class SkipNode {
    /// A forward link and how many level-0 steps it skips (Redis' `span`, which makes ranks O(log n)).
    struct Level {
        var forward: SkipNode?
        var span: Int
    }

    let member: [UInt8]
    var score: Double
    var levels: [Level]
    /// The previous node on level 0 (nil for the first); not owning, the list owns its nodes.
    unowned(unsafe) var backward: SkipNode?

    init(member: [UInt8], score: Double, height: Int) {
        self.member = member
        self.score = score
        self.levels = Array(repeating: Level(forward: nil, span: 0), count: height)
    }

    /// Whether this node sorts before (`score`, `member`): by score, then member bytes.
    @inline(__always)
    func isBefore(_ score: Double, _ member: [UInt8]) -> Bool {
        self.score < score || (self.score == score && bytesLess(self.member, member))
    }
}

/// Redis' `zskiplist` plus the member -> node dictionary of a large sorted set: O(log n)
/// insert, delete, score update, rank and rank lookup, O(1) score lookup. A reference type
/// owned by exactly one `SortedSetValue`, which copies it before mutating when shared.
final class SkipList: @unchecked Sendable {
    /// The most levels a node can have (Redis' `ZSKIPLIST_MAXLEVEL`).
    static let maxLevel = 32

    private let header = SkipNode(member: [], score: 0, height: SkipList.maxLevel)
    /// How many nodes the list holds.
    private(set) var count = 0
    /// The number of levels in use.
    private var level = 1
    /// member -> node.
    private(set) var index = ByteTable<SkipNode>()
    /// The heap bytes of the nodes and their members (the index's table counted separately).
    private(set) var nodeBytes = 0
    /// Nodes stepped over by searches since creation: lets tests check operations are O(log n).
    private(set) var visits = 0
    /// The state of the level generator (xorshift64*).
    private var randomState = UInt64.random(in: 1 ... .max)

    /// An empty list.
    init() {}

    deinit {
        // Unlink iteratively: releasing the first node must not free the rest recursively.
        var next = header.levels[0].forward
        for i in header.levels.indices { header.levels[i].forward = nil }
        while let node = next {
            next = node.levels[0].forward
            node.levels.removeAll()
        }
    }

    /// The first node, nil when empty.
    var first: SkipNode? { header.levels[0].forward }

    /// The heap bytes of the list, its nodes and its index.
    var memoryBytes: Int { nodeBytes + index.memoryBytes + ByteCost.allocation(48) * 2 }

    /// A deep copy (for copy-on-write), O(n log n).
    func copy() -> SkipList {
        let other = SkipList()
        var node = first
        while let n = node {
            other.insert(n.member, n.score)
            node = n.levels[0].forward
        }
        return other
    }

    /// The score of `member`, if present.
    func score(of member: [UInt8]) -> Double? { index[member]?.score }

    /// A random height, 1 to `maxLevel`, each extra level with probability 1/4.
    private func randomHeight() -> Int {
        var h = 1
        while h < SkipList.maxLevel {
            randomState ^= randomState >> 12
            randomState ^= randomState << 25
            randomState ^= randomState >> 27
            guard (randomState &* 0x2545_F491_4F6C_DD1D) >> 62 == 0 else { break }
            h += 1
        }
        return h
    }

    /// The heap bytes of `node` and its member.
    private static func cost(of node: SkipNode) -> Int {
        ByteCost.allocation(48) + ByteCost.array(capacity: node.levels.count, stride: MemoryLayout<SkipNode.Level>.stride)
            + ByteCost.string(node.member.count)
    }

    /// Inserts `member` (which must be absent) with `score`.
    @discardableResult
    func insert(_ member: [UInt8], _ score: Double) -> SkipNode {
        var update = [SkipNode](repeating: header, count: SkipList.maxLevel)
        var rank = [Int](repeating: 0, count: SkipList.maxLevel)
        var x = header
        for i in stride(from: level - 1, through: 0, by: -1) {
            rank[i] = i == level - 1 ? 0 : rank[i + 1]
            while let f = x.levels[i].forward, f.isBefore(score, member) {
                rank[i] += x.levels[i].span
                x = f
                visits += 1
            }
            update[i] = x
        }
        let height = randomHeight()
        if height > level {
            for i in level..<height {
                rank[i] = 0
                update[i] = header
                header.levels[i].span = count
            }
            level = height
        }
        let node = SkipNode(member: member, score: score, height: height)
        for i in 0..<height {
            node.levels[i].forward = update[i].levels[i].forward
            update[i].levels[i].forward = node
            node.levels[i].span = update[i].levels[i].span - (rank[0] - rank[i])
            update[i].levels[i].span = (rank[0] - rank[i]) + 1
        }
        for i in height..<level { update[i].levels[i].span += 1 }
        node.backward = update[0] === header ? nil : update[0]
        node.levels[0].forward?.backward = node
        count += 1
        index.insertNew(member, node)
        nodeBytes += SkipList.cost(of: node)
        return node
    }

    /// The nodes before the place of (`score`, `member`) on each level.
    private func path(to score: Double, _ member: [UInt8]) -> [SkipNode] {
        var update = [SkipNode](repeating: header, count: SkipList.maxLevel)
        var x = header
        for i in stride(from: level - 1, through: 0, by: -1) {
            while let f = x.levels[i].forward, f.isBefore(score, member) {
                x = f
                visits += 1
            }
            update[i] = x
        }
        return update
    }

    /// Unlinks `node` given the nodes before it on each level (Redis' `zslDeleteNode`).
    private func unlink(_ node: SkipNode, _ update: [SkipNode]) {
        for i in 0..<level {
            if update[i].levels[i].forward === node {
                update[i].levels[i].span += node.levels[i].span - 1
                update[i].levels[i].forward = node.levels[i].forward
            } else {
                update[i].levels[i].span -= 1
            }
        }
        node.levels[0].forward?.backward = node.backward
        while level > 1 && header.levels[level - 1].forward == nil { level -= 1 }
        count -= 1
        index.remove(node.member)
        nodeBytes -= SkipList.cost(of: node)
    }

    /// Removes `member`; returns whether it was present.
    @discardableResult
    func remove(_ member: [UInt8]) -> Bool {
        guard let node = index[member] else { return false }
        unlink(node, path(to: node.score, member))
        node.levels.removeAll()
        return true
    }

    /// Changes `member`'s score (it must be present): in place when the order is unchanged,
    /// else by removing and re-inserting (Redis' `zslUpdateScore`).
    func updateScore(_ member: [UInt8], to score: Double) {
        guard let node = index[member] else { return }
        let prevOK = node.backward.map { $0.isBefore(score, member) } ?? true
        let nextOK = node.levels[0].forward.map { !$0.isBefore(score, member) } ?? true
        if prevOK && nextOK {
            node.score = score
            return
        }
        remove(member)
        insert(member, score)
    }

    /// How many nodes sort before the first node for which `reached` holds; `reached` must be
    /// false then true along the list (a lower bound), so the search is O(log n).
    func countBefore(where reached: (SkipNode) -> Bool) -> Int {
        var x = header
        var rank = 0
        for i in stride(from: level - 1, through: 0, by: -1) {
            while let f = x.levels[i].forward, !reached(f) {
                rank += x.levels[i].span
                x = f
                visits += 1
            }
        }
        return rank
    }

    /// The 0-based position of `member`, if present.
    func position(of member: [UInt8]) -> Int? {
        guard let node = index[member] else { return nil }
        return countBefore { !$0.isBefore(node.score, member) }
    }

    /// The node at 0-based `position` (which must be below `count`), found in O(log n).
    func node(at position: Int) -> SkipNode {
        let target = position + 1
        var x = header
        var traversed = 0
        for i in stride(from: level - 1, through: 0, by: -1) {
            while let f = x.levels[i].forward, traversed + x.levels[i].span <= target {
                traversed += x.levels[i].span
                x = f
                visits += 1
            }
            if traversed == target { return x }
        }
        preconditionFailure("position \(position) out of 0..<\(count)")
    }

    /// Removes the nodes at 0-based positions `range`, O(log n + range.count); returns them
    /// in order as (member, score).
    func removePositions(_ range: Range<Int>) -> [(member: [UInt8], score: Double)] {
        guard !range.isEmpty else { return [] }
        var update = [SkipNode](repeating: header, count: SkipList.maxLevel)
        var x = header
        var traversed = 0
        for i in stride(from: level - 1, through: 0, by: -1) {
            while let f = x.levels[i].forward, traversed + x.levels[i].span <= range.lowerBound {
                traversed += x.levels[i].span
                x = f
                visits += 1
            }
            update[i] = x
        }
        var removed: [(member: [UInt8], score: Double)] = []
        removed.reserveCapacity(range.count)
        var node = x.levels[0].forward
        for _ in range {
            guard let n = node else { break }
            node = n.levels[0].forward
            unlink(n, update)
            removed.append((n.member, n.score))
            n.levels.removeAll()
        }
        return removed
    }
}
