import CStrataSystem
import Foundation

/// The process's own memory, read from the kernel and the allocator: what `--memory` promises to
/// bound (see `docs/DESIGN.md`, "Memory"), as opposed to the memory tier's own accounting.
public enum ProcessMemory {
    /// What `/proc/self/status` and glibc's `mallinfo2` report now, in bytes (0 where unknown).
    public struct Reading: Sendable {
        /// Resident set (`VmRSS`): anonymous memory plus mapped files such as LMDB's data file.
        public var resident = 0
        /// Resident anonymous memory (`RssAnon`): heap, thread stacks, LMDB's dirty pages. This is
        /// what the page cache cannot give back and what an out-of-memory killer counts.
        public var anonymous = 0
        /// Heap bytes handed out and not yet freed.
        public var heapInUse = 0
        /// Heap bytes freed but still held (reused by later allocations, or trimmed).
        public var heapFree = 0
    }

    /// The overhead `--memory` allows beyond itself: the node's fixed costs (code, threads, the
    /// allocator's arenas), LMDB's page cache and the free heap a write burst leaves.
    public static let overheadAllowance = 64 << 20

    /// The resident anonymous memory a node with this `--memory` promises to stay under outside
    /// a write burst: `--memory` plus the overhead allowance, but at most twice `--memory`, so a
    /// node whose `--memory` is below its own fixed overhead is over it from the start.
    public static func limit(budget: Int) -> Int {
        budget + min(budget, overheadAllowance)
    }

    /// Reads the process's memory now (a small file read and a walk of the allocator's arenas).
    public static func read() -> Reading {
        var reading = Reading()
        if let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) {
            for line in status.split(separator: "\n") {
                if line.hasPrefix("VmRSS:") {
                    reading.resident = kilobytes(line)
                } else if line.hasPrefix("RssAnon:") {
                    reading.anonymous = kilobytes(line)
                }
            }
        }
        var heap = strata_heap_stats()
        if strata_heap_statistics(&heap) == 1 {
            reading.heapInUse = Int(clamping: heap.in_use_bytes)
            reading.heapFree = Int(clamping: heap.free_bytes)
        }
        return reading
    }

    /// `Name:   1234 kB` as bytes.
    static func kilobytes(_ line: Substring) -> Int {
        let fields = line.split(separator: " ", omittingEmptySubsequences: true)
        guard fields.count >= 2, let value = Int(fields[1]) else { return 0 }
        return value * 1024
    }

    /// Sets up glibc's allocator for a long-lived cache (call before the event loops start):
    /// - at most `arenas` arenas: each thread that meets a locked arena gets one of its own, up
    ///   to 8 per core, and a write burst leaves free heap in every one of them that the others
    ///   cannot reuse;
    /// - a fixed mmap threshold of `mmapThreshold` bytes, so large transient arrays (the writer's
    ///   tables, log buffers) always get mappings of their own and go back to the kernel when
    ///   freed, instead of leaving holes among the memory tier's entries.
    /// Returns whether the allocator took both.
    @discardableResult
    public static func configureAllocator(arenas: Int = 2, mmapThreshold: Int = 256 << 10) -> Bool {
        let a = strata_malloc_set_arena_max(Int32(clamping: arenas)) == 1
        let m = strata_malloc_set_mmap_threshold(Int32(clamping: mmapThreshold)) == 1
        return a && m
    }
}
