#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE  // pthread_setname_np, sched_getaffinity and CPU_COUNT are GNU extensions.
#endif

#include "CStrataSystem.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

#if defined(__linux__)
#include <sched.h>
#endif
#if defined(__GLIBC__)
#include <malloc.h>
#endif

int strata_set_thread_name(const char *name) {
#if defined(__linux__)
    char truncated[16];
    strncpy(truncated, name, sizeof(truncated) - 1);
    truncated[sizeof(truncated) - 1] = '\0';
    return pthread_setname_np(pthread_self(), truncated);
#elif defined(__APPLE__)
    return pthread_setname_np(name);
#else
    (void)name;
    return ENOSYS;
#endif
}

int strata_malloc_trim(void) {
#if defined(__GLIBC__)
    return malloc_trim(0);
#else
    return 0;
#endif
}

int strata_malloc_set_arena_max(int count) {
#if defined(__GLIBC__) && defined(M_ARENA_MAX)
    return mallopt(M_ARENA_MAX, count) == 1 ? 1 : 0;
#else
    (void)count;
    return 0;
#endif
}

int strata_malloc_set_mmap_threshold(int bytes) {
#if defined(__GLIBC__) && defined(M_MMAP_THRESHOLD)
    return mallopt(M_MMAP_THRESHOLD, bytes) == 1 ? 1 : 0;
#else
    (void)bytes;
    return 0;
#endif
}

int strata_heap_statistics(strata_heap_stats *stats) {
    memset(stats, 0, sizeof(*stats));
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
    struct mallinfo2 info = mallinfo2();
    stats->system_bytes = (unsigned long long)info.arena + (unsigned long long)info.hblkhd;
    stats->mapped_bytes = (unsigned long long)info.hblkhd;
    stats->in_use_bytes = (unsigned long long)info.uordblks + (unsigned long long)info.hblkhd;
    stats->free_bytes = (unsigned long long)info.fordblks;
    return 1;
#else
    return 0;
#endif
}

int strata_affinity_cpu_count(void) {
#if defined(__linux__)
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) != 0) return -1;
    int count = CPU_COUNT(&set);
    return count > 0 ? count : -1;
#else
    return -1;
#endif
}
