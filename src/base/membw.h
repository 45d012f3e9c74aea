/* membw: memory read bandwidth, the denominator of the decode roofline.
 *
 * A buffer much larger than the last-level cache is allocated and written
 * (every page touched) once; each measurement pass then streams it with wide
 * loads, every thread of a pool summing its own contiguous slice, and the
 * sum is returned so no load can be optimized away. The best of several
 * passes is reported (an underestimate would flatter a roofline).
 * Pure measurement: no engine dependency. */
#ifndef SOV_MEMBW_H
#define SOV_MEMBW_H

#include <stdint.h>

#include "pool.h"

typedef struct membw membw;

/* Read kernels: "c" (plain C, whatever the compiler makes of it), "avx2"
 * (256-bit loads), "avx512" (512-bit loads), each SIMD one also as "...x4"
 * and "...x8" (4 or 8 streams side by side, software-prefetched: some CPUs
 * read one stream well below their bandwidth). The SIMD ones exist only on
 * x86-64 and run only where the CPU (and OS) support them. */
#define MEMBW_MAX_KERNELS 7

/* Names of the kernels this CPU can run, widest last; returns how many
 * (1..MEMBW_MAX_KERNELS). names[] must hold MEMBW_MAX_KERNELS entries. */
int membw_kernels(const char **names);

/* Wrapping sum of the n 64-bit words at p (8-byte aligned) using kernel
 * `name` (one of membw_kernels()). Returns SOV_EINVAL (unknown or
 * unsupported kernel) or 0 with the sum in *sum. Any n, any alignment of n. */
int membw_sum(const char *name, const uint64_t *p, uint64_t n, uint64_t *sum);

/* Allocates a buffer of `bytes` (rounded up to a multiple of 4096; at least
 * 1 MiB) and writes every 64-bit word (word i = i * 0x9E3779B97F4A7C15), so
 * all pages are resident before any timing. *out owned by caller
 * (membw_free). Errors: SOV_EINVAL (bytes < 1 MiB or > 1 TiB), SOV_ENOMEM. */
int membw_new(membw **out, uint64_t bytes);

/* Bytes of the buffer (after rounding). */
uint64_t membw_bytes(const membw *b);

void membw_free(membw *b);

typedef struct membw_result {
    double gbps;        /* bytes / best pass seconds / 1e9 (decimal GB/s) */
    double best_s;      /* seconds of the best pass */
    double mean_gbps;   /* mean over the passes of that kernel, for information */
    int threads;        /* pool_size(p) */
    int passes;
    const char *kernel; /* the kernel of the best pass */
    uint64_t checksum;  /* sum of all words of the last pass (equals membw_expected_sum) */
} membw_result;

/* Sum of all words as written by membw_new, computed arithmetically. */
uint64_t membw_expected_sum(const membw *b);

/* Streams the whole buffer `passes` times with each kernel this CPU runs
 * (kernel = NULL) or only with `kernel`, on every thread of p (NULL: the
 * calling thread alone), and keeps the best pass. Errors: SOV_EINVAL
 * (passes < 1, unknown kernel), SOV_EFORMAT if a pass's sum differs from
 * membw_expected_sum (a broken kernel: the number would be meaningless). */
int membw_measure(membw *b, pool *p, int passes, const char *kernel, membw_result *out);

#endif
