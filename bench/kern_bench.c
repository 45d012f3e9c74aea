/* kern_bench: times one gemm kernel (ops->gemm[type], and ops->gemm_x8[type]
 * / ops->gemm_r16[type] on the same weights packed to the x8 / r16 layout,
 * label suffix "/x8" / "/r16") of a kernel table on
 * random weights and prints weight bandwidth (GB/s) and arithmetic rate
 * (GFLOP/s, counted as 2 * k * rows * nc). Single-threaded, best of several
 * timed runs (other processes make timings noisy).
 *
 *   kern_bench                       the standard matrix: every table x every
 *                                    gemm type, three cases (see below)
 *   kern_bench -t avx512 -T q4_0     only that table / type (lists: a,b,c)
 *   kern_bench -k 4096 -r 8192 -n 1  one explicit case: k, rows, nc
 *   kern_bench -m 64                 weights of about M MiB (rows derived)
 *   kern_bench -H 0                  4 KiB pages (default: huge pages)
 *
 * Standard cases: "dram" nc=1 with ~64 MiB of weights (beyond the caches:
 * the decode case, bound by memory bandwidth), "l2 nc=1" with ~256 KiB of
 * weights (compute rate of the matrix-vector kernel), "l2 nc=16" with the
 * same weights and 16 x rows (prompt processing). A plain streaming read of
 * the dram buffer is printed first as the memory-bandwidth yardstick.
 * Not part of make test; `make bench-kern` builds and runs it. */
#include "base/err.h"
#include "engine/kern/kern.h"
#include "kern_rand.h"

#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* true if `name` is in the comma-separated list (NULL list: everything) */
static bool in_list(const char *list, const char *name)
{
    if (!list)
        return true;
    size_t n = strlen(name);
    for (const char *p = list; *p;) {
        const char *e = strchr(p, ',');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == n && !strncmp(p, name, n))
            return true;
        if (!e)
            break;
        p = e + 1;
    }
    return false;
}

/* Best seconds per run of fn over at least min_s of runs (at least 3). */
typedef struct {
    kern_gemm_fn fn;
    const unsigned char *W;
    uint64_t rb;
    const unsigned char *X;
    uint64_t xb;
    float *out;
    int64_t k, nr, nc;
} gcall;

static void run_gemm(const gcall *g)
{
    g->fn(g->W, g->rb, g->X, g->xb, g->out, g->nr, g->k, g->nr, g->nc);
}

static double best_time(const gcall *g, double min_s)
{
    run_gemm(g); /* warm-up (page faults, caches) */
    /* batch calls so one sample lasts >= ~2 ms */
    double t0 = now();
    run_gemm(g);
    double one = now() - t0;
    int batch = one > 2e-3 ? 1 : (int)(2e-3 / (one > 1e-9 ? one : 1e-9)) + 1;
    double best = 1e30, start = now();
    for (int it = 0; it < 3 || now() - start < min_s; it++) {
        t0 = now();
        for (int b = 0; b < batch; b++)
            run_gemm(g);
        double t = (now() - t0) / batch;
        if (t < best)
            best = t;
    }
    return best;
}

/* A streaming read of n bytes with 256-bit loads (8 independent sums; the
 * plain C loop if the CPU lacks AVX2); returns GB/s, best of 5. */
__attribute__((target("avx2"))) static uint64_t read_avx2(const unsigned char *p, uint64_t n)
{
    __m256i s[8];
    for (int j = 0; j < 8; j++)
        s[j] = _mm256_setzero_si256();
    for (uint64_t i = 0; i + 256 <= n; i += 256)
        for (int j = 0; j < 8; j++)
            s[j] = _mm256_add_epi64(s[j], _mm256_load_si256((const __m256i *)(p + i + 32 * j)));
    for (int j = 1; j < 8; j++)
        s[0] = _mm256_add_epi64(s[0], s[j]);
    return (uint64_t)_mm256_extract_epi64(s[0], 0);
}

static uint64_t read_c(const unsigned char *p, uint64_t n)
{
    uint64_t s[8] = {0};
    for (uint64_t i = 0; i + 64 <= n; i += 64)
        for (int j = 0; j < 8; j++) {
            uint64_t v;
            memcpy(&v, p + i + 8 * j, 8);
            s[j] += v;
        }
    return s[0] + s[1] + s[2] + s[3] + s[4] + s[5] + s[6] + s[7];
}

static double memread_gbs(const unsigned char *p, uint64_t n)
{
    bool avx2 = __builtin_cpu_supports("avx2");
    double best = 1e30;
    volatile uint64_t sink = 0;
    for (int it = 0; it < 5; it++) {
        double t0 = now();
        sink += avx2 ? read_avx2(p, n) : read_c(p, n);
        double t = now() - t0;
        if (t < best)
            best = t;
    }
    (void)sink;
    return (double)n / best * 1e-9;
}

typedef struct {
    const char *label;
    uint64_t wbytes; /* target weight bytes (rows derived), 0: use rows */
    int64_t rows, nc;
} bcase;

/* Large buffers: anonymous memory with transparent huge pages unless -H 0,
 * as sov loads weights (4 KiB pages cost TLB misses that are not the
 * kernel's). */
static bool use_huge = true;

static void *big_alloc(uint64_t n)
{
    void *p = mmap(NULL, (size_t)n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    madvise(p, (size_t)n, use_huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
    return p;
}

static void big_free(void *p, uint64_t n)
{
    if (p)
        munmap(p, (size_t)n);
}

/* Runs one case (lay: KL_X8 / KL_R16 on weights packed to that layout, rows
 * rounded up to whole groups of 8 / 16); returns 0 or -1 (allocation). */
static int bench_case(const kern_ops *ops, uint32_t type, int64_t k, const bcase *bc, double min_s, int lay)
{
    const ttype_traits *tr = ttype_get(type);
    uint64_t rb;
    if (k % (tr->blck < 32 ? 32 : tr->blck) != 0 || ttype_nbytes(type, k, &rb) != 0) {
        printf("%-7s %-5s %-10s k %lld is not a multiple of the block size\n", ops->name, tr->name, bc->label,
               (long long)k);
        return 0;
    }
    int64_t nr = bc->rows > 0 ? bc->rows : (int64_t)(bc->wbytes / rb);
    if (nr < 1)
        nr = 1;
    if (lay != KL_PLAIN) {
        int64_t gr = lay == KL_X8 ? 8 : 16;
        nr = (nr + gr - 1) / gr * gr;
    }
    uint32_t fmt = kern_xfmt(type);
    uint64_t xb = kern_x_row_bytes(fmt, k);
    uint64_t wn = (rb * (uint64_t)nr + 63) & ~(uint64_t)63;
    unsigned char *W = big_alloc(wn);
    unsigned char *X = aligned_alloc(64, xb * (uint64_t)bc->nc);
    float *xf = malloc(sizeof(float) * (size_t)k);
    float *out = malloc(sizeof(float) * (size_t)(nr * bc->nc));
    if (!W || !X || !xf || !out) {
        big_free(W, wn), free(X), free(xf), free(out);
        fprintf(stderr, "kern_bench: out of memory\n");
        return -1;
    }
    fill_random(type, W, rb * (uint64_t)nr, k * nr);
    for (int64_t c = 0; c < bc->nc; c++) {
        for (int64_t i = 0; i < k; i++)
            xf[i] = rng_uniform(-1.0f, 1.0f);
        ops->quant_x[fmt](xf, X + (uint64_t)c * xb, k);
    }
    if ((lay == KL_X8 && kern_x8_pack(type, W, rb, nr, k) != 0) ||
        (lay == KL_R16 && kern_r16_pack(type, W, rb, nr, k) != 0)) {
        big_free(W, wn), free(X), free(xf), free(out);
        fprintf(stderr, "kern_bench: pack failed: %s\n", err_msg());
        return -1;
    }
    gcall g = {lay == KL_X8 ? ops->gemm_x8[type] : lay == KL_R16 ? ops->gemm_r16[type] : ops->gemm[type],
               W, rb, X, xb, out, k, nr, bc->nc};
    char label[32];
    snprintf(label, sizeof label, "%s%s", bc->label, lay == KL_X8 ? "/x8" : lay == KL_R16 ? "/r16" : "");
    double t = best_time(&g, min_s);
    double bytes = (double)rb * (double)nr;
    double flops = 2.0 * (double)k * (double)nr * (double)bc->nc;
    printf("%-7s %-5s %-10s k %6lld rows %7lld nc %3lld  %9.3f ms  %8.2f GB/s  %8.2f GFLOP/s  %7.2f Gw/s\n",
           ops->name, tr->name, label, (long long)k, (long long)nr, (long long)bc->nc, t * 1e3,
           bytes / t * 1e-9, flops / t * 1e-9, (double)k * (double)nr / t * 1e-9);
    fflush(stdout);
    big_free(W, wn), free(X), free(xf), free(out);
    return 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: kern_bench [-t ref,avx2,avx512] [-T type,...] [-k K] [-r ROWS | -m MIB] [-n NC]\n"
                    "                  [-s SECONDS_PER_CASE] [-H 0|1 huge pages, default 1]\n");
}

int main(int argc, char **argv)
{
    const char *tables = NULL, *types = NULL;
    int64_t k = 4096, rows = 0, nc = 0;
    double mib = 0, min_s = 0.3;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            usage();
            return 2;
        }
        if (!strcmp(a, "-t"))
            tables = v;
        else if (!strcmp(a, "-T"))
            types = v;
        else if (!strcmp(a, "-k"))
            k = atoll(v);
        else if (!strcmp(a, "-r"))
            rows = atoll(v);
        else if (!strcmp(a, "-n"))
            nc = atoll(v);
        else if (!strcmp(a, "-m"))
            mib = atof(v);
        else if (!strcmp(a, "-s"))
            min_s = atof(v);
        else if (!strcmp(a, "-H"))
            use_huge = atoi(v) != 0;
        else {
            usage();
            return 2;
        }
        i++;
    }
    if (k <= 0 || rows < 0 || nc < 0 || mib < 0) {
        usage();
        return 2;
    }
    bcase std_cases[] = {
        {"dram", 64ull << 20, 0, 1},
        {"l2", 256ull << 10, 0, 1},
        {"l2", 256ull << 10, 0, 16},
    };
    bcase one = {"custom", mib > 0 ? (uint64_t)(mib * 1048576.0) : 64ull << 20, rows, nc > 0 ? nc : 1};
    bool custom = rows > 0 || nc > 0 || mib > 0;
    const bcase *cases = custom ? &one : std_cases;
    size_t ncases = custom ? 1 : 3;

    /* memory yardstick */
    {
        uint64_t n = 64ull << 20;
        unsigned char *p = big_alloc(n);
        if (p) {
            memset(p, 1, n);
            printf("memread 64 MiB: %.2f GB/s\n", memread_gbs(p, n));
            big_free(p, n);
        }
    }
    static const char *const names[] = {"ref", "avx2", "avx512"};
    for (size_t ti = 0; ti < 3; ti++) {
        if (!in_list(tables, names[ti]))
            continue;
        const kern_ops *ops = kern_by_name(names[ti]);
        if (!ops) {
            printf("%s: not supported by this CPU\n", names[ti]);
            continue;
        }
        for (uint32_t t = 0; t < SOV_TYPE_COUNT; t++) {
            const ttype_traits *tr = ttype_get(t);
            if (!tr || !ops->gemm[t] || !in_list(types, tr->name))
                continue;
            for (size_t ci = 0; ci < ncases; ci++)
                for (int lay = KL_PLAIN; lay <= KL_R16; lay++)
                    if ((lay == KL_PLAIN || (lay == KL_X8 ? ops->gemm_x8[t] : ops->gemm_r16[t])) &&
                        bench_case(ops, t, k, &cases[ci], min_s, lay) != 0)
                        return 1;
        }
    }
    return 0;
}
