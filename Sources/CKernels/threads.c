// Processor placement for the package's worker threads (Swift: WorkerPool).
#if defined(__linux__)
#define _GNU_SOURCE
#include <sched.h>
#endif
#include "CKernels.h"

int ck_current_cpu(void) {
#if defined(__linux__)
    return sched_getcpu();
#else
    return -1;
#endif
}

// Moves the calling thread off processor `cpu` by dropping it from the thread's affinity mask for
// one call, then restores the mask: the thread stays free to run anywhere afterwards, but the
// scheduler has placed it elsewhere now.
int ck_leave_cpu(int cpu) {
#if defined(__linux__)
    cpu_set_t all, others;
    if (cpu < 0 || cpu >= CPU_SETSIZE || sched_getaffinity(0, sizeof all, &all) != 0) return 0;
    others = all;
    CPU_CLR(cpu, &others);
    if (CPU_COUNT(&others) == 0 || sched_setaffinity(0, sizeof others, &others) != 0) return 0;
    sched_setaffinity(0, sizeof all, &all);
    return 1;
#else
    (void)cpu;
    return 0;
#endif
}
