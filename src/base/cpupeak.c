/* cpupeak: theoretical and measured fp32 peak (see cpupeak.h). */
#include "cpupeak.h"

#include "err.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#include <immintrin.h>
#define CPUPEAK_X86 1
#endif

/* ---- clock ---- */

static double read_mhz(const char **src)
{
    FILE *f = fopen("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq", "r");
    if (f) {
        double khz = 0;
        int ok = fscanf(f, "%lf", &khz) == 1;
        fclose(f);
        if (ok && khz > 0) {
            *src = "cpufreq cpuinfo_max_freq";
            return khz / 1000.0;
        }
    }
    f = fopen("/proc/cpuinfo", "r");
    double best = 0;
    if (f) {
        char line[256];
        while (fgets(line, sizeof line, f)) {
            double v;
            if (!strncmp(line, "cpu MHz", 7) && sscanf(strchr(line, ':') ? strchr(line, ':') + 1 : "", "%lf", &v) == 1 &&
                v > best)
                best = v;
        }
        fclose(f);
    }
    *src = best > 0 ? "/proc/cpuinfo cpu MHz" : "unknown";
    return best;
}

/* ---- flop per cycle ---- */

static int flop_per_cycle(char *basis, size_t cap)
{
#ifdef CPUPEAK_X86
    unsigned a, b, c, d;
    char vendor[13] = {0};
    if (!__get_cpuid(0, &a, &b, &c, &d)) {
        snprintf(basis, cap, "no CPUID");
        return 0;
    }
    memcpy(vendor, &b, 4);
    memcpy(vendor + 4, &d, 4);
    memcpy(vendor + 8, &c, 4);
    __get_cpuid(1, &a, &b, &c, &d);
    unsigned fam = (a >> 8) & 0xf, model = (a >> 4) & 0xf;
    if (fam == 0xf)
        fam += (a >> 20) & 0xff;
    if (fam == 0x6 || fam == 0xf)
        model |= ((a >> 16) & 0xf) << 4;
    bool amd = !strcmp(vendor, "AuthenticAMD");
    __builtin_cpu_init();
    bool avx512 = __builtin_cpu_supports("avx512f");
    bool avx2fma = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    bool avx = __builtin_cpu_supports("avx");
    const char *who = amd ? "AMD" : vendor;
    if (avx512 && amd && fam == 0x19) {
        snprintf(basis, cap, "%s family %Xh (Zen 4), AVX-512 as 2 x 256-bit FMA", who, fam);
        return 32;
    }
    if (avx512) {
        snprintf(basis, cap, "%s family %Xh%s, AVX-512: 2 x 512-bit FMA", who, fam, amd && fam == 0x1a ? " (Zen 5)" : "");
        return 64;
    }
    if (avx2fma && amd && fam == 0x17 && model < 0x30) {
        snprintf(basis, cap, "%s family %Xh model %Xh (Zen 1), AVX2: 2 x 128-bit FMA", who, fam, model);
        return 16;
    }
    if (avx2fma) {
        snprintf(basis, cap, "%s family %Xh, AVX2: 2 x 256-bit FMA", who, fam);
        return 32;
    }
    if (avx) {
        snprintf(basis, cap, "%s family %Xh, AVX without FMA: 256-bit mul + add", who, fam);
        return 16;
    }
    snprintf(basis, cap, "%s family %Xh, SSE: 128-bit mul + add", who, fam);
    return 8;
#else
    snprintf(basis, cap, "not x86-64: flop/cycle unknown");
    return 0;
#endif
}

void cpu_peak_info_get(cpu_peak_info *out)
{
    memset(out, 0, sizeof *out);
    out->mhz = read_mhz(&out->mhz_source);
    out->flop_per_cycle = flop_per_cycle(out->basis, sizeof out->basis);
}

double cpu_peak_theory_gflops(const cpu_peak_info *ci, int threads)
{
    return threads * ci->mhz * ci->flop_per_cycle / 1000.0;
}

/* ---- measured FMA throughput ----
 * Twelve independent chains a = a * m + k: with a 4-cycle FMA latency and
 * two pipes, eight chains keep both busy; twelve leave slack. The values
 * converge to k / (1 - m) = 1, so nothing overflows. Each kernel returns the
 * sum of its chains (used by the caller) so none can be removed. */

#define CHAINS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)

#ifdef CPUPEAK_X86
__attribute__((target("avx512f"))) static float fma_avx512(long n, float seed)
{
#define DECL(i) __m512 a##i = _mm512_set1_ps(seed + (float)(i) * 0.001f);
    CHAINS(DECL)
#undef DECL
    const __m512 m = _mm512_set1_ps(0.9999f), k = _mm512_set1_ps(0.0001f);
    for (long it = 0; it < n; it++) {
#define STEP(i) a##i = _mm512_fmadd_ps(a##i, m, k);
        CHAINS(STEP)
#undef STEP
    }
    __m512 s = _mm512_setzero_ps();
#define ADD(i) s = _mm512_add_ps(s, a##i);
    CHAINS(ADD)
#undef ADD
    return _mm512_reduce_add_ps(s);
}

__attribute__((target("avx2,fma"))) static float fma_avx2(long n, float seed)
{
#define DECL(i) __m256 a##i = _mm256_set1_ps(seed + (float)(i) * 0.001f);
    CHAINS(DECL)
#undef DECL
    const __m256 m = _mm256_set1_ps(0.9999f), k = _mm256_set1_ps(0.0001f);
    for (long it = 0; it < n; it++) {
#define STEP(i) a##i = _mm256_fmadd_ps(a##i, m, k);
        CHAINS(STEP)
#undef STEP
    }
    __m256 s = _mm256_setzero_ps();
#define ADD(i) s = _mm256_add_ps(s, a##i);
    CHAINS(ADD)
#undef ADD
    float lane[8];
    _mm256_storeu_ps(lane, s);
    return lane[0] + lane[1] + lane[2] + lane[3] + lane[4] + lane[5] + lane[6] + lane[7];
}
#endif

/* plain C: twelve scalar chains (the compiler may use SSE); 2 flop per step */
static float fma_c(long n, float seed)
{
#define DECL(i) float a##i = seed + (float)(i) * 0.001f;
    CHAINS(DECL)
#undef DECL
    const float m = 0.9999f, k = 0.0001f;
    for (long it = 0; it < n; it++) {
#define STEP(i) a##i = a##i * m + k;
        CHAINS(STEP)
#undef STEP
    }
    float s = 0;
#define ADD(i) s += a##i;
    CHAINS(ADD)
#undef ADD
    return s;
}

typedef struct {
    float (*fn)(long, float);
    long iters;
    struct {
        float s;
        char pad[60];
    } part[512];
} fma_job;

static void fma_worker(void *arg, int ith, int nth)
{
    (void)nth;
    fma_job *j = arg;
    j->part[ith].s = j->fn(j->iters, (float)ith * 0.01f);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int cpu_fma_measure(pool *p, int passes, double *gflops, const char **kernel)
{
    *gflops = 0;
    *kernel = "c";
    if (passes < 1)
        return err_set(SOV_EINVAL, "FMA passes must be >= 1 (got %d)", passes);
    fma_job *j = calloc(1, sizeof *j);
    if (!j)
        return err_set(SOV_ENOMEM, "out of memory");
    double flop_per_iter = 12 * 2; /* per lane */
    j->fn = fma_c;
    j->iters = 2000000;
#ifdef CPUPEAK_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) {
        j->fn = fma_avx512;
        j->iters = 8000000;
        flop_per_iter *= 16;
        *kernel = "avx512";
    } else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        j->fn = fma_avx2;
        j->iters = 8000000;
        flop_per_iter *= 8;
        *kernel = "avx2";
    }
#endif
    int nth = p ? pool_size(p) : 1;
    double best = 0;
    volatile float sink = 0;
    for (int r = 0; r < passes; r++) {
        double t0 = now_s();
        if (p)
            pool_run(p, fma_worker, j);
        else
            fma_worker(j, 0, 1);
        double t = now_s() - t0;
        for (int i = 0; i < nth; i++)
            sink += j->part[i].s;
        if (r == 0 || t < best)
            best = t;
    }
    (void)sink;
    *gflops = flop_per_iter * (double)j->iters * nth / best / 1e9;
    free(j);
    return 0;
}
