/* cpupeak: the fp32 compute ceiling of the CPU, for the prompt-processing
 * side of a roofline: a theoretical figure (clock x flop/cycle/core from a
 * CPUID-based table) and a measured one (FMA throughput of independent
 * register chains). Pure measurement: no engine dependency. */
#ifndef SOV_CPUPEAK_H
#define SOV_CPUPEAK_H

#include "pool.h"

typedef struct cpu_peak_info {
    double mhz;             /* max clock in MHz; 0 when unknown */
    const char *mhz_source; /* "cpufreq cpuinfo_max_freq", "/proc/cpuinfo cpu MHz" or "unknown" */
    int flop_per_cycle;     /* fp32 flop per cycle per core (an FMA counts 2); 0 when unknown */
    char basis[128];        /* the table row used, e.g. "AMD family 1Ah (Zen 5), AVX-512: 2 x 512-bit FMA" */
} cpu_peak_info;

/* Fills *out. The clock is cpufreq's cpuinfo_max_freq of cpu0 when present,
 * else the largest "cpu MHz" line of /proc/cpuinfo (the current or nominal
 * clock: under a hypervisor it may be well below the boost clock). The
 * flop/cycle table (fp32, 2 FMA pipes assumed unless noted):
 *   AVX-512F: AMD family 19h (Zen 4, 512-bit ops split in two 256-bit halves) 32;
 *             other CPUs (AMD Zen 5, Intel server cores: 2 x 512-bit FMA) 64
 *   AVX2+FMA: 32, except AMD family 17h models < 30h (Zen 1: 128-bit FMA) 16
 *   AVX only: 16 (separate mul and add); SSE only: 8; not x86: 0 (unknown).
 * Where a part has fewer FMA units than assumed the peak comes out too high,
 * which makes the % of peak look worse, never better. */
void cpu_peak_info_get(cpu_peak_info *out);

/* threads x mhz x flop_per_cycle / 1000; 0 when either is unknown. */
double cpu_peak_theory_gflops(const cpu_peak_info *ci, int threads);

/* Measures fp32 FMA throughput on every thread of p (NULL: the calling
 * thread): each thread runs 12 independent chains of vector FMAs of the
 * widest width the CPU has ("avx512", "avx2" or "c": plain C mul+add),
 * `passes` times; the best pass counts. *gflops = flops / seconds / 1e9,
 * *kernel = the width used (static string). Errors: SOV_EINVAL (passes < 1),
 * SOV_ENOMEM. */
int cpu_fma_measure(pool *p, int passes, double *gflops, const char **kernel);

#endif
