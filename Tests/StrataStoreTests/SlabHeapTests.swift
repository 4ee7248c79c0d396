import Testing

@testable import StrataStore

@Suite struct SlabHeapTests {
    /// Fills a chunk with a pattern derived from its number, so overlapping chunks show.
    func fill(_ chunk: UnsafeMutableRawPointer, _ count: Int, _ n: Int) {
        for i in 0..<count { chunk.storeBytes(of: UInt8(truncatingIfNeeded: n &* 31 &+ i), toByteOffset: i, as: UInt8.self) }
    }

    func holds(_ chunk: UnsafeMutableRawPointer, _ count: Int, _ n: Int) -> Bool {
        (0..<count).allSatisfy { chunk.load(fromByteOffset: $0, as: UInt8.self) == UInt8(truncatingIfNeeded: n &* 31 &+ $0) }
    }

    @Test func chunksOfEverySizeKeepTheirBytesAndEmptySlabsAreGivenBack() {
        let heap = SlabHeap()
        var live: [(UnsafeMutableRawPointer, Int, Int)] = []
        var rng = SystemRandomNumberGenerator()
        for n in 0..<20_000 {
            let count = Int.random(in: 1...SlabHeap.maxBlock, using: &rng)
            let chunk = heap.allocate(count)
            #expect(Int(bitPattern: chunk) % 16 == 0)
            fill(chunk, count, n)
            live.append((chunk, count, n))
            // Release a random third as we go, so chunks are reused from free lists.
            if n % 3 == 0 {
                let victim = live.remove(at: Int.random(in: 0..<live.count, using: &rng))
                #expect(holds(victim.0, victim.1, victim.2))
                heap.release(victim.0)
            }
        }
        #expect(live.allSatisfy { holds($0.0, $0.1, $0.2) })
        #expect(heap.slabBytes > 0)
        for (chunk, _, _) in live { heap.release(chunk) }
        #expect(heap.slabBytes == 0)
        // Empty slabs are reused for any size.
        let again = heap.allocate(100)
        fill(again, 100, 7)
        #expect(holds(again, 100, 7))
        heap.release(again)
    }

    @Test func largerRegionsServeManySlabs() {
        let heap = SlabHeap(regionBytes: 1 << 20)
        // 1,008-byte chunks, 16 to a slab: 66 slabs, more than the first region's 64.
        let chunks = (0..<(15 * 70)).map { n -> UnsafeMutableRawPointer in
            let chunk = heap.allocate(1000)
            fill(chunk, 1000, n)
            return chunk
        }
        #expect(chunks.enumerated().allSatisfy { holds($0.element, 1000, $0.offset) })
        #expect(heap.slabBytes == 66 * SlabHeap.slabSize)
        for chunk in chunks { heap.release(chunk) }
        #expect(heap.slabBytes == 0)
    }

    @Test func chunkSizesAreSixteenByteMultiples() {
        #expect(SlabHeap.chunkSize(1) == 16)
        #expect(SlabHeap.chunkSize(16) == 16)
        #expect(SlabHeap.chunkSize(17) == 32)
        #expect(SlabHeap.chunkSize(122) == 128)
        #expect(LRUTable.charge(keyCount: 14, valueCount: 100) == 128)
        #expect(LRUTable.charge(keyCount: 14, valueCount: 100, expires: true) == 144)
    }
}
