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
