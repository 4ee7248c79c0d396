// The few operating-system calls Strata needs that Swift's Glibc module does not export.
// Each compiles everywhere: where the platform lacks the call, it does nothing and says so.
#ifndef C_STRATA_SYSTEM_H
#define C_STRATA_SYSTEM_H

/// Names the calling thread for `top -H` and `perf` (the kernel keeps at most 15 bytes).
/// Returns 0, or an errno value (ENOSYS where threads cannot be named).
int strata_set_thread_name(const char *name);

/// Hands free heap memory back to the kernel (glibc's `malloc_trim(0)`).
/// Returns 1 if memory was released, 0 if not or where the allocator has no such call.
int strata_malloc_trim(void);

/// Caps the number of glibc malloc arenas (`mallopt(M_ARENA_MAX, count)`). Call it before threads
/// start allocating: arenas that exist already stay. Returns 1 on success, 0 on failure or where the
/// allocator has no such setting.
int strata_malloc_set_arena_max(int count);

/// Fixes glibc's mmap threshold at `bytes` (`mallopt(M_MMAP_THRESHOLD, bytes)`): allocations of at
/// least that size get mappings of their own, returned to the kernel when freed. (Left alone, glibc
/// raises the threshold to the size of each mapped block freed, up to 32 MiB, so large transient
/// arrays then come from the heap and leave holes in it.) Returns 1 on success, else 0.
int strata_malloc_set_mmap_threshold(int bytes);

/// The allocator's heap, as glibc's `mallinfo2` reports it over every arena. All zero where unknown.
typedef struct {
    /// Bytes the heap has from the kernel: arenas (`arena`) plus chunks mapped on their own (`hblkhd`).
    unsigned long long system_bytes;
    /// Bytes of those mapped chunks alone (large allocations).
    unsigned long long mapped_bytes;
    /// Bytes handed out and not yet freed (`uordblks` + `hblkhd`).
    unsigned long long in_use_bytes;
    /// Bytes freed but still held by the heap (`fordblks`): reused by later allocations, and
    /// returned to the kernel only by a trim, and only in whole free pages.
    unsigned long long free_bytes;
} strata_heap_stats;

/// Fills `stats` (takes each arena's lock briefly: call it at scrape time, not per request).
/// Returns 1 if the allocator reported, else 0.
int strata_heap_statistics(strata_heap_stats *stats);

/// The number of CPUs in this process' affinity mask (`sched_getaffinity`), or -1 where unknown.
int strata_affinity_cpu_count(void);

/// Lowers the calling thread's scheduling priority to `nice` (Linux: `setpriority` on the
/// thread's id), so background work takes only CPU time the other threads leave.
/// Returns 0, or an errno value (ENOSYS where threads have no priority of their own).
int strata_set_thread_nice(int nice);

#include <stddef.h>
#include <stdint.h>

/// CRC-32C (Castagnoli) of `length` bytes, continuing `crc` (0 to start): with the CPU's crc32
/// instruction where it has one (SSE 4.2), else a table. For the hot-set snapshot's blocks,
/// which a warm start checks at memory speed.
uint32_t strata_crc32c(uint32_t crc, const void *data, size_t length);

#endif
