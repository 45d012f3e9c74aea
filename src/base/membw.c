/* membw: streaming read bandwidth (see membw.h). */
#include "membw.h"

#include "err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define MEMBW_X86 1
#endif

#define WORD_MUL 0x9E3779B97F4A7C15ull
#define MIN_BYTES (1ull << 20)
#define MAX_BYTES (1ull << 40)

struct membw {
    uint64_t *p;
    uint64_t bytes;
};

/* ---- kernels: return the wrapping sum of p[0..n) ---- */

/* Eight independent accumulators so the adds never limit the loads. */
static uint64_t sum_c(const uint64_t *p, uint64_t n)
{
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0, i = 0;
    for (; i + 8 <= n; i += 8) {
        s0 += p[i];
        s1 += p[i + 1];
        s2 += p[i + 2];
        s3 += p[i + 3];
        s4 += p[i + 4];
        s5 += p[i + 5];
        s6 += p[i + 6];
        s7 += p[i + 7];
    }
    for (; i < n; i++)
        s0 += p[i];
    return s0 + s1 + s2 + s3 + s4 + s5 + s6 + s7;
}

#ifdef MEMBW_X86
/* 256 bytes per iteration: eight 32-byte loads into eight accumulators. */
__attribute__((target("avx2"))) static uint64_t sum_avx2(const uint64_t *p, uint64_t n)
{
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    uint64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        const __m256i *v = (const __m256i *)(p + i);
        a0 = _mm256_add_epi64(a0, _mm256_loadu_si256(v + 0));
        a1 = _mm256_add_epi64(a1, _mm256_loadu_si256(v + 1));
        a2 = _mm256_add_epi64(a2, _mm256_loadu_si256(v + 2));
        a3 = _mm256_add_epi64(a3, _mm256_loadu_si256(v + 3));
        a4 = _mm256_add_epi64(a4, _mm256_loadu_si256(v + 4));
        a5 = _mm256_add_epi64(a5, _mm256_loadu_si256(v + 5));
        a6 = _mm256_add_epi64(a6, _mm256_loadu_si256(v + 6));
        a7 = _mm256_add_epi64(a7, _mm256_loadu_si256(v + 7));
    }
    a0 = _mm256_add_epi64(_mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3)),
                          _mm256_add_epi64(_mm256_add_epi64(a4, a5), _mm256_add_epi64(a6, a7)));
    uint64_t lane[4];
    _mm256_storeu_si256((__m256i *)lane, a0);
    uint64_t s = lane[0] + lane[1] + lane[2] + lane[3];
    for (; i < n; i++)
        s += p[i];
    return s;
}

/* 512 bytes per iteration: eight 64-byte loads into eight accumulators. */
__attribute__((target("avx512f"))) static uint64_t sum_avx512(const uint64_t *p, uint64_t n)
{
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    uint64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        const uint64_t *v = p + i;
        a0 = _mm512_add_epi64(a0, _mm512_loadu_si512(v + 0));
        a1 = _mm512_add_epi64(a1, _mm512_loadu_si512(v + 8));
        a2 = _mm512_add_epi64(a2, _mm512_loadu_si512(v + 16));
        a3 = _mm512_add_epi64(a3, _mm512_loadu_si512(v + 24));
        a4 = _mm512_add_epi64(a4, _mm512_loadu_si512(v + 32));
        a5 = _mm512_add_epi64(a5, _mm512_loadu_si512(v + 40));
        a6 = _mm512_add_epi64(a6, _mm512_loadu_si512(v + 48));
        a7 = _mm512_add_epi64(a7, _mm512_loadu_si512(v + 56));
    }
    a0 = _mm512_add_epi64(_mm512_add_epi64(_mm512_add_epi64(a0, a1), _mm512_add_epi64(a2, a3)),
                          _mm512_add_epi64(_mm512_add_epi64(a4, a5), _mm512_add_epi64(a6, a7)));
    uint64_t lane[8]; /* unsigned lane sum: _mm512_reduce_add_epi64 adds as signed (UB on wrap) */
    _mm512_storeu_si512(lane, a0);
    uint64_t s = lane[0] + lane[1] + lane[2] + lane[3] + lane[4] + lane[5] + lane[6] + lane[7];
    for (; i < n; i++)
        s += p[i];
    return s;
}

/* Several streams. One sequential stream per thread does not reach the
 * memory bandwidth on every CPU: some prefetchers fetch a stream only so far
 * ahead (an Intel Xeon measured 10 GB/s from one stream, 18 GB/s from 4-8
 * streams side by side, 1 thread), and the matrix kernels, which read several
 * rows at once, do get the higher figure. So the words are cut into S runs of
 * whole 128-byte steps, read side by side with a software prefetch MS_PF
 * bytes ahead in each (prefetches past the end are harmless hints); the
 * words after the S runs go to the one-stream kernel. */
enum { MS_PF = 512 };

#define MULTI_STREAM(NAME, TARGET, VEC, ZERO, LOAD, ADD, ONE, STEP_LOADS)                                             \
    __attribute__((target(TARGET))) static uint64_t NAME(const uint64_t *p, uint64_t n, const int S)                  \
    {                                                                                                                  \
        VEC a[8][STEP_LOADS];                                                                                          \
        for (int s = 0; s < 8; s++)                                                                                    \
            for (int l = 0; l < STEP_LOADS; l++)                                                                       \
                a[s][l] = ZERO;                                                                                        \
        uint64_t run = n / (uint64_t)S / 16 * 16; /* words per stream, whole 128-byte steps */                       \
        for (uint64_t i = 0; i < run; i += 16)                                                                         \
            for (int s = 0; s < S; s++) {                                                                              \
                const uint64_t *q = p + (uint64_t)s * run + i;                                                         \
                _mm_prefetch((const char *)q + MS_PF, _MM_HINT_T0);                                                    \
                _mm_prefetch((const char *)q + MS_PF + 64, _MM_HINT_T0);                                               \
                for (int l = 0; l < STEP_LOADS; l++)                                                                   \
                    a[s][l] = ADD(a[s][l], LOAD(q + l * (16 / STEP_LOADS)));                                           \
            }                                                                                                          \
        uint64_t lane[8] = {0}, s = 0;                                                                                 \
        for (int k = 0; k < 8; k++)                                                                                    \
            for (int l = 0; l < STEP_LOADS; l++) {                                                                     \
                memcpy(lane, &a[k][l], sizeof a[k][l]);                                                                \
                for (int w = 0; w < (int)(sizeof a[k][l] / 8); w++)                                                    \
                    s += lane[w];                                                                                      \
            }                                                                                                          \
        return s + ONE(p + (uint64_t)S * run, n - (uint64_t)S * run);                                                  \
    }

#define LD256(q) _mm256_loadu_si256((const __m256i *)(q))
MULTI_STREAM(sum_avx2_ms, "avx2", __m256i, _mm256_setzero_si256(), LD256, _mm256_add_epi64, sum_avx2, 4)
MULTI_STREAM(sum_avx512_ms, "avx512f", __m512i, _mm512_setzero_si512(), _mm512_loadu_si512, _mm512_add_epi64,
             sum_avx512, 2)

static uint64_t sum_avx2x4(const uint64_t *p, uint64_t n) { return sum_avx2_ms(p, n, 4); }
static uint64_t sum_avx2x8(const uint64_t *p, uint64_t n) { return sum_avx2_ms(p, n, 8); }
static uint64_t sum_avx512x4(const uint64_t *p, uint64_t n) { return sum_avx512_ms(p, n, 4); }
static uint64_t sum_avx512x8(const uint64_t *p, uint64_t n) { return sum_avx512_ms(p, n, 8); }
#endif

typedef uint64_t (*sum_fn)(const uint64_t *, uint64_t);

typedef struct {
    const char *name;
    sum_fn fn;
} kernel;

/* Supported kernels, narrowest first. */
static int kernels(kernel *k)
{
    int n = 0;
    k[n++] = (kernel){"c", sum_c};
#ifdef MEMBW_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2")) {
        k[n++] = (kernel){"avx2", sum_avx2};
        k[n++] = (kernel){"avx2x4", sum_avx2x4};
        k[n++] = (kernel){"avx2x8", sum_avx2x8};
    }
    if (__builtin_cpu_supports("avx512f")) {
        k[n++] = (kernel){"avx512", sum_avx512};
        k[n++] = (kernel){"avx512x4", sum_avx512x4};
        k[n++] = (kernel){"avx512x8", sum_avx512x8};
    }
#endif
    return n;
}

int membw_kernels(const char **names)
{
    kernel k[MEMBW_MAX_KERNELS];
    int n = kernels(k);
    for (int i = 0; i < n; i++)
        names[i] = k[i].name;
    return n;
}

static sum_fn find(const char *name)
{
    kernel k[MEMBW_MAX_KERNELS];
    int n = kernels(k);
    for (int i = 0; i < n; i++)
        if (!strcmp(k[i].name, name))
            return k[i].fn;
    return NULL;
}

int membw_sum(const char *name, const uint64_t *p, uint64_t n, uint64_t *sum)
{
    sum_fn fn = name ? find(name) : NULL;
    if (!fn)
        return err_set(SOV_EINVAL, "memory bandwidth kernel '%s' is unknown or not supported by this CPU",
                       name ? name : "(null)");
    *sum = fn(p, n);
    return 0;
}

/* ---- buffer ---- */

int membw_new(membw **out, uint64_t bytes)
{
    *out = NULL;
    if (bytes < MIN_BYTES || bytes > MAX_BYTES)
        return err_set(SOV_EINVAL, "bandwidth buffer of %llu bytes out of range 1 MiB..1 TiB",
                       (unsigned long long)bytes);
    bytes = (bytes + 4095) & ~4095ull;
    membw *b = calloc(1, sizeof *b);
    if (!b)
        return err_set(SOV_ENOMEM, "out of memory");
    void *p = mmap(NULL, (size_t)bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        free(b);
        return err_set(SOV_ENOMEM, "cannot map a %llu MiB bandwidth buffer", (unsigned long long)(bytes >> 20));
    }
#ifdef MADV_HUGEPAGE
    madvise(p, (size_t)bytes, MADV_HUGEPAGE); /* fewer TLB misses; a hint, failure is harmless */
#endif
    b->p = p;
    b->bytes = bytes;
    uint64_t n = bytes / 8;
    for (uint64_t i = 0; i < n; i++)
        b->p[i] = i * WORD_MUL;
    *out = b;
    return 0;
}

uint64_t membw_bytes(const membw *b) { return b->bytes; }

void membw_free(membw *b)
{
    if (!b)
        return;
    munmap(b->p, (size_t)b->bytes);
    free(b);
}

uint64_t membw_expected_sum(const membw *b)
{
    /* sum_{i<n} i*M = M * n(n-1)/2 (mod 2^64); halve the even factor first */
    uint64_t n = b->bytes / 8;
    uint64_t tri = n % 2 == 0 ? (n / 2) * (n - 1) : n * ((n - 1) / 2);
    return tri * WORD_MUL;
}

/* ---- measurement ---- */

#define MAX_THREADS 512

typedef struct {
    sum_fn fn;
    const uint64_t *p;
    uint64_t n;
    struct {
        uint64_t s;
        char pad[56];
    } part[MAX_THREADS]; /* one cache line per thread */
} read_job;

/* thread ith sums words [n*ith/nth, n*(ith+1)/nth), bounds on 64-byte lines */
static void read_worker(void *arg, int ith, int nth)
{
    read_job *j = arg;
    uint64_t lines = j->n / 8;
    uint64_t l0 = lines * (uint64_t)ith / (uint64_t)nth, l1 = lines * (uint64_t)(ith + 1) / (uint64_t)nth;
    uint64_t w1 = ith == nth - 1 ? j->n : l1 * 8;
    j->part[ith].s = j->fn(j->p + l0 * 8, w1 - l0 * 8);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int membw_measure(membw *b, pool *p, int passes, const char *kernel_name, membw_result *out)
{
    memset(out, 0, sizeof *out);
    if (passes < 1)
        return err_set(SOV_EINVAL, "bandwidth passes must be >= 1 (got %d)", passes);
    kernel ks[MEMBW_MAX_KERNELS];
    int nk = kernels(ks);
    if (kernel_name) {
        int k = 0;
        while (k < nk && strcmp(ks[k].name, kernel_name))
            k++;
        if (k == nk)
            return err_set(SOV_EINVAL, "memory bandwidth kernel '%s' is unknown or not supported by this CPU",
                           kernel_name);
        ks[0] = ks[k];
        nk = 1;
    }
    read_job *j = calloc(1, sizeof *j);
    if (!j)
        return err_set(SOV_ENOMEM, "out of memory");
    int nth = p ? pool_size(p) : 1;
    uint64_t expect = membw_expected_sum(b);
    double best = 0, mean_gbps = 0;
    const char *best_k = NULL;
    uint64_t checksum = 0;
    int rc = 0;
    j->p = b->p;
    j->n = b->bytes / 8;
    for (int k = 0; k < nk; k++) {
        j->fn = ks[k].fn;
        double kbest = 0, ksum = 0;
        for (int r = 0; r < passes; r++) {
            double t0 = now_s();
            if (p)
                pool_run(p, read_worker, j);
            else
                read_worker(j, 0, 1);
            double t = now_s() - t0;
            /* the sum is compared with the expected value, so every load counts */
            checksum = 0;
            for (int i = 0; i < nth; i++)
                checksum += j->part[i].s;
            if (checksum != expect) {
                rc = err_set(SOV_EFORMAT, "bandwidth kernel %s summed %llx, expected %llx", ks[k].name,
                             (unsigned long long)checksum, (unsigned long long)expect);
                goto done;
            }
            ksum += (double)b->bytes / t / 1e9;
            if (r == 0 || t < kbest)
                kbest = t;
        }
        if (best_k == NULL || kbest < best) {
            best = kbest;
            best_k = ks[k].name;
            mean_gbps = ksum / passes;
        }
    }
    out->best_s = best;
    out->gbps = (double)b->bytes / best / 1e9;
    out->mean_gbps = mean_gbps;
    out->threads = nth;
    out->passes = passes;
    out->kernel = best_k;
    out->checksum = checksum;
done:
    free(j);
    return rc;
}
