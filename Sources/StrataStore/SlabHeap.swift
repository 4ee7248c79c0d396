#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where one memory-tier shard keeps its small entries: 16 KiB slabs, each cut into chunks of one
/// size (a multiple of 16 bytes, up to `maxBlock`, 2 KiB). No locks: the shard's lock covers it.
///
/// Why not `malloc`: an entry is allocated while the write's record, key copy and queue slot
/// are allocated beside it, and those are freed a second later when the writer has applied
/// them. With glibc each entry is then carved from such a freed chunk, and the remainders (48
/// bytes per 100-byte entry) stay free between entries for good: a quarter of the tier's size in
/// free heap after a fill. Slabs keep entries away from the short-lived allocations, and a chunk
/// carries no allocator header.
///
/// A slab is 16 KiB, aligned to that, so a chunk finds its slab by masking its address; slabs
/// are cut from regions mapped from the kernel (256 KiB, or more for a large shard, so that a
/// large tier does not run into the kernel's limit on mappings, 65,530 by default) (never from the heap, where they would
/// interleave with the short-lived allocations again). A slab starts with a header (`Slab`) and
/// holds `(16 KiB - header) / size` chunks, handed out from a free list of released chunks, then
/// from never-used space. Slabs with room are on their size's list; a slab whose last chunk is
/// released has its pages given back to the kernel (`MADV_DONTNEED`) and waits on the list of
/// empty slabs for any size. Regions stay mapped (address space only) until the heap goes.
struct SlabHeap: ~Copyable {
    static let slabSize = 16 << 10
    /// The smallest region.
    static let minimumRegionSize = 256 << 10
    /// This heap's region size, a multiple of the slab size.
    let regionSize: Int
    /// The largest chunk (7 to a slab); bigger entries come from `malloc`, where a chunk's
    /// rounding and the remainders it leaves are small against its size.
    static let maxBlock = 2048
    private static let classes = maxBlock / 16
    private static let headerSize = (MemoryLayout<Slab>.stride + 15) & ~15

    /// The header at the start of each slab.
    private struct Slab {
        var chunkSize: UInt32
        var used: UInt32
        /// Offset of the first released chunk (0: none); each released chunk holds the next one's.
        var freeList: UInt32
        /// Offset of the never-used space.
        var bump: UInt32
        var prev: UnsafeMutablePointer<Slab>?
        var next: UnsafeMutablePointer<Slab>?
        var onList: Bool
    }

    /// What the heap holds, behind a pointer so that the table can release chunks in its `deinit`.
    private struct Pool {
        /// Slabs in use (with at least one chunk).
        var slabs = 0
        /// Empty slabs (pages given back), linked through their first word.
        var empty: UnsafeMutableRawPointer?
        /// Mapped regions, unmapped with the heap.
        var regions: [UnsafeMutableRawPointer] = []
    }

    /// Per chunk size (index `size / 16 - 1`), the slabs that have room.
    private let partial: UnsafeMutablePointer<UnsafeMutablePointer<Slab>?>
    private let pool: UnsafeMutablePointer<Pool>

    /// A heap that maps regions of `regionBytes` (rounded to slabs, at least 256 KiB).
    init(regionBytes: Int = SlabHeap.minimumRegionSize) {
        regionSize = max(SlabHeap.minimumRegionSize, regionBytes / SlabHeap.slabSize * SlabHeap.slabSize)
        partial = .allocate(capacity: SlabHeap.classes)
        partial.initialize(repeating: nil, count: SlabHeap.classes)
        pool = .allocate(capacity: 1)
        pool.initialize(to: Pool())
    }

    deinit {
        // The table releases every live chunk first; the regions go back to the kernel here.
        for region in pool.pointee.regions { munmap(region, regionSize) }
        pool.deinitialize(count: 1)
        pool.deallocate()
        partial.deallocate()
    }

    /// Bytes of slabs in use (resident, unless the kernel swapped them out).
    var slabBytes: Int { pool.pointee.slabs * SlabHeap.slabSize }

    /// The chunk size a block of `count` bytes takes (`count` at most `maxBlock`).
    @inline(__always)
    static func chunkSize(_ count: Int) -> Int { max(16, (count + 15) & ~15) }

    /// A chunk of `chunkSize(count)` bytes.
    func allocate(_ count: Int) -> UnsafeMutableRawPointer {
        let size = SlabHeap.chunkSize(count)
        let index = size / 16 - 1
        let slab = partial[index] ?? newSlab(chunkSize: size, index: index)
        let base = UnsafeMutableRawPointer(slab)
        let chunk: UnsafeMutableRawPointer
        if slab.pointee.freeList != 0 {
            chunk = base + Int(slab.pointee.freeList)
            slab.pointee.freeList = chunk.load(as: UInt32.self)
        } else {
            chunk = base + Int(slab.pointee.bump)
            slab.pointee.bump += UInt32(size)
        }
        slab.pointee.used += 1
        let full = slab.pointee.freeList == 0 && Int(slab.pointee.bump) + size > SlabHeap.slabSize
        if full { unlink(slab, index: index) }
        return chunk
    }

    /// Releases a chunk `allocate` returned.
    func release(_ chunk: UnsafeMutableRawPointer) {
        let base = UnsafeMutableRawPointer(bitPattern: UInt(bitPattern: chunk) & ~UInt(SlabHeap.slabSize - 1))!
        let slab = base.assumingMemoryBound(to: Slab.self)
        let index = Int(slab.pointee.chunkSize) / 16 - 1
        slab.pointee.used -= 1
        if slab.pointee.used == 0 {
            if slab.pointee.onList { unlink(slab, index: index) }
            madvise(base, SlabHeap.slabSize, MADV_DONTNEED)
            base.storeBytes(of: pool.pointee.empty, as: UnsafeMutableRawPointer?.self)
            pool.pointee.empty = base
            pool.pointee.slabs -= 1
            return
        }
        chunk.storeBytes(of: slab.pointee.freeList, as: UInt32.self)
        slab.pointee.freeList = UInt32(chunk - base)
        if !slab.pointee.onList { link(slab, index: index) }
    }

    private func newSlab(chunkSize: Int, index: Int) -> UnsafeMutablePointer<Slab> {
        if pool.pointee.empty == nil { mapRegion() }
        let raw = pool.pointee.empty!
        pool.pointee.empty = raw.load(as: UnsafeMutableRawPointer?.self)
        let slab = raw.bindMemory(to: Slab.self, capacity: 1)
        slab.initialize(
            to: Slab(
                chunkSize: UInt32(chunkSize), used: 0, freeList: 0, bump: UInt32(SlabHeap.headerSize), prev: nil,
                next: nil, onList: false))
        pool.pointee.slabs += 1
        link(slab, index: index)
        return slab
    }

    /// Maps a region aligned to the slab size and puts its slabs on the empty list.
    private func mapRegion() {
        let length = regionSize + SlabHeap.slabSize
        let mapped = mmap(nil, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        precondition(mapped != MAP_FAILED && mapped != nil, "out of memory mapping a memory-tier region")
        let start = UInt(bitPattern: mapped!)
        let aligned = (start + UInt(SlabHeap.slabSize - 1)) & ~UInt(SlabHeap.slabSize - 1)
        // Give back the unaligned head and the tail beyond the region.
        if aligned > start { munmap(mapped!, Int(aligned - start)) }
        let end = aligned + UInt(regionSize)
        if start + UInt(length) > end { munmap(UnsafeMutableRawPointer(bitPattern: end)!, Int(start + UInt(length) - end)) }
        let region = UnsafeMutableRawPointer(bitPattern: aligned)!
        pool.pointee.regions.append(region)
        for offset in stride(from: regionSize - SlabHeap.slabSize, through: 0, by: -SlabHeap.slabSize) {
            let slab = region + offset
            slab.storeBytes(of: pool.pointee.empty, as: UnsafeMutableRawPointer?.self)
            pool.pointee.empty = slab
        }
    }

    private func link(_ slab: UnsafeMutablePointer<Slab>, index: Int) {
        slab.pointee.prev = nil
        slab.pointee.next = partial[index]
        partial[index]?.pointee.prev = slab
        partial[index] = slab
        slab.pointee.onList = true
    }

    private func unlink(_ slab: UnsafeMutablePointer<Slab>, index: Int) {
        if let prev = slab.pointee.prev { prev.pointee.next = slab.pointee.next } else { partial[index] = slab.pointee.next }
        slab.pointee.next?.pointee.prev = slab.pointee.prev
        slab.pointee.prev = nil
        slab.pointee.next = nil
        slab.pointee.onList = false
    }
}
