import Testing
@testable import StrataCollections

@Suite struct ListValueTests {
    /// Random pushes, pops, LSET, LINSERT, LREM, LTRIM, LINDEX, LRANGE and LPOS against an array.
    @Test(arguments: [1 as UInt64, 2, 3])
    func randomOperationsMatchModel(seed: UInt64) throws {
        var rng = SeededRandom(seed: seed)
        var limits = seed == 3 ? CollectionLimits() : smallLimits()
        if seed == 2 { limits.listMaxListpackSize = -1 }
        if seed == 1 { limits.listCompressDepth = 1 }
        var list = ListValue()
        var model: [[UInt8]] = []
        for step in 0..<5000 {
            let e = rng.element(pool: 12, longEvery: 50)
            let i = Int.random(in: -(model.count + 2)...(model.count + 2), using: &rng)
            let j = Int.random(in: -(model.count + 2)...(model.count + 2), using: &rng)
            switch Int.random(in: 0..<14, using: &rng) {
            case 0...3:
                let front = Bool.random(using: &rng)
                list.push(e, front: front, limits: limits)
                if front { model.insert(e, at: 0) } else { model.append(e) }
            case 4, 5:
                let front = Bool.random(using: &rng)
                let expected = model.isEmpty ? nil : (front ? model.removeFirst() : model.removeLast())
                #expect(list.pop(front: front, limits: limits) == expected)
            case 6:
                let k = i < 0 ? i + model.count : i
                let inRange = k >= 0 && k < model.count
                #expect(list.set(at: i, to: e, limits: limits) == inRange)
                if inRange { model[k] = e }
            case 7:
                let pivot = rng.element(pool: 12)
                let before = Bool.random(using: &rng)
                let at = model.firstIndex(of: pivot)
                #expect(list.insert(e, before: before, pivot: pivot, limits: limits) == (at != nil))
                if let at { model.insert(e, at: before ? at : at + 1) }
            case 8:
                let count = Int.random(in: -2...2, using: &rng)
                #expect(list.remove(e, count: count, limits: limits) == ListValueTests.lrem(&model, e, count))
            case 9:
                if Int.random(in: 0..<4, using: &rng) == 0 {
                    list.trim(i, j, limits: limits)
                    model = ListValueTests.range(model, i, j)
                }
            case 10:
                let k = i < 0 ? i + model.count : i
                #expect(list.element(at: i) == (k >= 0 && k < model.count ? model[k] : nil))
            case 11:
                let rank = [1, 2, -1, -2].randomElement(using: &rng)!
                let count = Int.random(in: 0...2, using: &rng)
                let maxLength = Int.random(in: 0...5, using: &rng)
                #expect(list.positions(of: e, rank: rank, count: count, maxLength: maxLength)
                    == ListValueTests.lpos(model, e, rank, count, maxLength))
            default:
                #expect(list.range(i, j) == ListValueTests.range(model, i, j))
            }
            #expect(list.count == model.count)
            if step == 2500 { limits.listCompressDepth = seed == 1 ? 2 : 1 }  // a live CONFIG SET
            if step % 250 == 0 {
                ListValueTests.checkCompression(list, depth: limits.listCompressDepth)
                #expect(list.elements == model)
                let loaded = try ListValue(deserializing: list.serialize())
                #expect(loaded.elements == model && loaded.encodingName == list.encodingName)
            }
        }
    }

    /// No node within `depth` of an end is compressed, and the byte accounting matches a walk.
    static func checkCompression(_ list: ListValue, depth: Int) {
        let n = list.nodes.count
        for (i, node) in list.nodes.enumerated() where node.isCompressed {
            #expect(depth > 0 && i >= depth && i < n - depth)
        }
        let walked = list.nodes.reduce(0) { $0 + $1.memoryBytes }
        #expect(list.memoryBytes == walked + ByteCost.array(capacity: n, stride: MemoryLayout<ListNode>.stride))
    }

    /// Interior nodes are held compressed under `list-compress-depth`, saving memory, and read back intact.
    @Test func compressDepthCompressesInteriorNodes() throws {
        var limits = CollectionLimits()
        var plain = ListValue()
        for i in 0..<20_000 { plain.push(b("order:\(i % 100):status=shipped"), front: false, limits: limits) }
        limits.listCompressDepth = 1
        var packed = ListValue()
        for i in 0..<20_000 { packed.push(b("order:\(i % 100):status=shipped"), front: false, limits: limits) }
        #expect(packed.elements == plain.elements)
        #expect(!packed.nodes.first!.isCompressed && !packed.nodes.last!.isCompressed)
        #expect(packed.nodes.dropFirst().dropLast().allSatisfy { $0.isCompressed })
        #expect(packed.memoryBytes * 3 < plain.memoryBytes)
        #expect(packed.element(at: 10_001) == b("order:1:status=shipped"))
        ListValueTests.checkCompression(packed, depth: 1)
        let loaded = try ListValue(deserializing: packed.serialize())
        #expect(loaded.elements == plain.elements)
        // Back to depth 0 at the next mutation: every node uncompressed.
        limits.listCompressDepth = 0
        packed.push(b("x"), front: true, limits: limits)
        #expect(packed.nodes.allSatisfy { !$0.isCompressed })
    }

    @Test func lzfRoundTripsAndRejectsGarbage() {
        var rng = SeededRandom(seed: 21)
        for size in [4, 48, 100, 1000, 9000] {
            let repetitive = (0..<size).map { UInt8(truncatingIfNeeded: ($0 / 7) % 5) }
            let random = (0..<size).map { _ in UInt8.random(in: 0...255, using: &rng) }
            if let c = LZF.compress(repetitive) {
                #expect(LZF.decompress(c, size: size) == repetitive)
                #expect(c.count + 8 <= size)
            }
            if let c = LZF.compress(random) { #expect(LZF.decompress(c, size: size) == random) }
        }
        #expect(LZF.compress(Array(repeating: 1, count: 5000)) != nil)
        for _ in 0..<500 {
            let junk = (0..<Int.random(in: 0..<40, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            _ = LZF.decompress(junk, size: Int.random(in: 0..<100, using: &rng))
        }
    }

    /// LRANGE's model: Redis' index normalization over an array.
    static func range(_ a: [[UInt8]], _ start: Int, _ stop: Int) -> [[UInt8]] {
        var lo = start < 0 ? start + a.count : start
        var hi = stop < 0 ? stop + a.count : stop
        if lo < 0 { lo = 0 }
        if lo > hi || lo >= a.count { return [] }
        if hi >= a.count { hi = a.count - 1 }
        return Array(a[lo...hi])
    }

    /// LREM's model.
    static func lrem(_ a: inout [[UInt8]], _ e: [UInt8], _ count: Int) -> Int {
        var removed = 0
        let most = count == 0 ? Int.max : abs(count)
        let order = count < 0 ? Array(a.indices.reversed()) : Array(a.indices)
        var drop = Set<Int>()
        for i in order where a[i] == e && removed < most {
            drop.insert(i)
            removed += 1
        }
        a = a.indices.filter { !drop.contains($0) }.map { a[$0] }
        return removed
    }

    /// LPOS's model.
    static func lpos(_ a: [[UInt8]], _ e: [UInt8], _ rank: Int, _ count: Int, _ maxLength: Int) -> [Int] {
        let order = rank < 0 ? Array(a.indices.reversed()) : Array(a.indices)
        var skip = abs(rank) - 1
        var out: [Int] = []
        for (compared, i) in order.enumerated() {
            if maxLength > 0 && compared >= maxLength { break }
            if a[i] == e {
                if skip > 0 { skip -= 1 } else { out.append(i) }
                if count > 0 && out.count >= count { break }
            }
        }
        return out
    }

    @Test func encodingFollowsRedis72() {
        var limits = CollectionLimits()
        limits.listMaxListpackSize = 4
        var list = ListValue()
        for i in 0..<4 { list.push(b("\(i)"), front: false, limits: limits) }
        #expect(list.encodingName == "listpack")
        list.push(b("4"), front: false, limits: limits)
        #expect(list.encodingName == "quicklist")
        _ = list.pop(front: false, limits: limits)
        #expect(list.encodingName == "quicklist")  // one node, but 4 entries > half of 4
        _ = list.pop(front: false, limits: limits)
        #expect(list.encodingName == "quicklist")
        _ = list.pop(front: false, limits: limits)
        #expect(list.encodingName == "listpack")
        // A byte limit: -2 is 8 KiB a node.
        var big = ListValue()
        for _ in 0..<100 { big.push(Array(repeating: 1, count: 100), front: true, limits: CollectionLimits()) }
        #expect(big.encodingName == "quicklist" && big.nodes.count == 2)
        #expect(big.nodes.allSatisfy { $0.byteCount <= 8192 })
    }

    /// Push and pop at both ends touch one node: a long list's node count grows with its
    /// size, and edits at the ends never repack the list.
    @Test func endsStayConstantTime() {
        var list = ListValue()
        let limits = CollectionLimits()
        for i in 0..<200_000 { list.push(b("element-\(i)"), front: i % 2 == 0, limits: limits) }
        #expect(list.nodes.count > 200)
        #expect(list.nodes.allSatisfy { $0.byteCount <= 8192 })
        #expect(list.element(at: 100_000) != nil)
        let memory = list.memoryBytes
        #expect(memory > 200_000 * 10)
        for _ in 0..<100_000 { _ = list.pop(front: false, limits: limits) }
        #expect(list.count == 100_000 && list.memoryBytes < memory * 2 / 3)
    }
}
