/* kern: x formats and table selection by CPUID. */
#include "kern.h"

#include "../../base/err.h"

#include <cpuid.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

uint32_t kern_xfmt(uint32_t type)
{
    switch (type) {
    case SOV_Q4_0:
    case SOV_Q4_1:
    case SOV_Q5_0:
    case SOV_Q5_1:
    case SOV_Q8_0:
        return KX_Q8_32;
    case SOV_Q2_K:
    case SOV_Q3_K:
    case SOV_Q4_K:
    case SOV_Q5_K:
    case SOV_Q6_K:
    case SOV_Q8_K:
        return KX_Q8_K;
    default:
        return KX_F32;
    }
}

bool kern_x8_type(uint32_t type)
{
    return type == SOV_Q4_0 || type == SOV_Q4_1 || type == SOV_Q5_0 || type == SOV_Q5_1 || type == SOV_Q8_0;
}

int kern_x8_pack(uint32_t type, void *W, uint64_t row_bytes, int64_t nr, int64_t k)
{
    if (!kern_x8_type(type))
        return err_set(SOV_EINVAL, "x8 layout: type %s has none", ttype_name(type));
    const uint64_t bs = (uint64_t)ttype_get(type)->size;
    if (nr < 0 || nr % 8 || k <= 0 || k % 32 || row_bytes != (uint64_t)(k / 32) * bs)
        return err_set(SOV_EINVAL, "x8 layout: %lld rows of %lld elements (%llu bytes) cannot be packed",
                       (long long)nr, (long long)k, (unsigned long long)row_bytes);
    if (nr == 0)
        return 0;
    const uint64_t nb = (uint64_t)k / 32, U = 4 * bs, nu = nb / 4, tail = (nb % 4) * bs;
    unsigned char *tmp = malloc(8 * row_bytes);
    if (!tmp)
        return err_set(SOV_ENOMEM, "x8 layout: no memory for %llu bytes", (unsigned long long)(8 * row_bytes));
    for (int64_t g = 0; g < nr / 8; g++) {
        unsigned char *grp = (unsigned char *)W + (uint64_t)g * 8 * row_bytes;
        memcpy(tmp, grp, 8 * row_bytes);
        for (uint64_t r = 0; r < 8; r++) {
            const unsigned char *row = tmp + r * row_bytes;
            for (uint64_t u = 0; u < nu; u++)
                memcpy(grp + u * 8 * U + r * U, row + u * U, U);
            if (tail)
                memcpy(grp + nu * 8 * U + r * tail, row + nu * U, tail);
        }
    }
    free(tmp);
    return 0;
}

bool kern_r16_type(uint32_t type)
{
    return type == SOV_Q4_0 || type == SOV_Q8_0 || type == SOV_Q4_K || type == SOV_Q6_K;
}

void kern_r16_form(uint32_t type, int *nf, int fo[2], int *w0, int *nw, unsigned char *flip)
{
    const int bs = (int)ttype_get(type)->size;
    *nf = type == SOV_Q4_K ? 2 : 1;
    fo[0] = type == SOV_Q6_K ? bs - 2 : 0; /* Q6_K: d last */
    fo[1] = 2;
    *w0 = type == SOV_Q6_K ? 0 : 2 * *nf;
    *nw = (bs - 2 * *nf) / 4;
    *flip = type == SOV_Q8_0 ? 0x80 : 0;
}

int kern_r16_pack(uint32_t type, void *W, uint64_t row_bytes, int64_t nr, int64_t k)
{
    if (!kern_r16_type(type))
        return err_set(SOV_EINVAL, "r16 layout: type %s has none", ttype_name(type));
    const ttype_traits *tr = ttype_get(type);
    const uint64_t bs = (uint64_t)tr->size, blck = (uint64_t)tr->blck;
    if (nr < 0 || nr % 16 || k <= 0 || (uint64_t)k % blck || row_bytes != (uint64_t)k / blck * bs)
        return err_set(SOV_EINVAL, "r16 layout: %lld rows of %lld elements (%llu bytes) cannot be packed",
                       (long long)nr, (long long)k, (unsigned long long)row_bytes);
    if (nr == 0)
        return 0;
    int nf, fo[2], w0, nw;
    unsigned char flip;
    kern_r16_form(type, &nf, fo, &w0, &nw, &flip);
    const uint64_t nb = (uint64_t)k / blck, S = 16 * bs;
    unsigned char *tmp = malloc(16 * row_bytes);
    if (!tmp)
        return err_set(SOV_ENOMEM, "r16 layout: no memory for %llu bytes", (unsigned long long)(16 * row_bytes));
    for (int64_t g = 0; g < nr / 16; g++) {
        unsigned char *grp = (unsigned char *)W + (uint64_t)g * 16 * row_bytes;
        memcpy(tmp, grp, 16 * row_bytes);
        for (uint64_t b = 0; b < nb; b++) {
            unsigned char *dst = grp + b * S;
            for (uint64_t r = 0; r < 16; r++) {
                const unsigned char *blk = tmp + r * row_bytes + b * bs;
                for (int f = 0; f < nf; f++)
                    memcpy(dst + 32 * f + 2 * r, blk + fo[f], 2);
                for (int t = 0; t < nw; t++)
                    for (int j = 0; j < 4; j++)
                        dst[32 * nf + 64 * t + 4 * r + j] = blk[w0 + 4 * t + j] ^ flip;
            }
        }
    }
    free(tmp);
    return 0;
}

uint64_t kern_x_row_bytes(uint32_t fmt, int64_t k)
{
    uint64_t n = fmt == KX_Q8_32  ? (uint64_t)(k / 32) * sizeof(kx_q8_32)
                 : fmt == KX_Q8_K ? (uint64_t)(k / QK_K) * sizeof(kx_q8_k)
                                  : (uint64_t)k * sizeof(float);
    return (n + 63) & ~(uint64_t)63;
}

/* ---- CPU features ---- */
typedef struct {
    bool avx2, avx512;
} cpu_feats;

static cpu_feats detect(void)
{
    cpu_feats f = {false, false};
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return f;
    bool osxsave = c & (1u << 27), fma = c & (1u << 12), f16c = c & (1u << 29);
    if (!osxsave)
        return f;
    unsigned xlo, xhi;
    __asm__ volatile("xgetbv" : "=a"(xlo), "=d"(xhi) : "c"(0));
    bool os_ymm = (xlo & 0x6) == 0x6;        /* SSE + AVX state */
    bool os_zmm = (xlo & 0xe6) == 0xe6;      /* + opmask, ZMM_Hi256, Hi16_ZMM */
    if (__get_cpuid_max(0, NULL) < 7)
        return f;
    __cpuid_count(7, 0, a, b, c, d);
    bool avx2 = b & (1u << 5);
    bool avx512f = b & (1u << 16), avx512dq = b & (1u << 17), avx512bw = b & (1u << 30),
         avx512vl = b & (1u << 31), vnni = c & (1u << 11);
    f.avx2 = os_ymm && avx2 && fma && f16c;
    f.avx512 = f.avx2 && os_zmm && avx512f && avx512dq && avx512bw && avx512vl && vnni;
    return f;
}

/* ---- tables ---- */
static kern_ops avx2_ops, avx512_ops;
static cpu_feats feats;
static const kern_ops *best;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void init_tables(void)
{
    feats = detect();
    best = kern_ref_ops();
    if (feats.avx2) {
        avx2_ops = *kern_ref_ops();
        avx2_ops.name = "avx2";
        kern_avx2_fill(&avx2_ops);
        kern_avx2_k_fill(&avx2_ops);
        kern_avx2_kv_fill(&avx2_ops);
        best = &avx2_ops;
    }
    if (feats.avx512) {
        avx512_ops = avx2_ops; /* what AVX-512 does not improve, AVX2 does */
        avx512_ops.name = "avx512";
        kern_avx512_fill(&avx512_ops);
        kern_avx512_k_fill(&avx512_ops);
        kern_avx512_r16_fill(&avx512_ops);
        kern_avx512_kv_fill(&avx512_ops);
        best = &avx512_ops;
    }
    const char *want = getenv("SOV_KERN");
    if (want && *want) {
        const kern_ops *o = !strcmp(want, "ref")                      ? kern_ref_ops()
                            : !strcmp(want, "avx2") && feats.avx2     ? &avx2_ops
                            : !strcmp(want, "avx512") && feats.avx512 ? &avx512_ops
                                                                      : NULL;
        if (o)
            best = o;
    }
}

const kern_ops *kern_best(void)
{
    pthread_once(&once, init_tables);
    return best;
}

const kern_ops *kern_by_name(const char *name)
{
    pthread_once(&once, init_tables);
    if (!strcmp(name, "ref"))
        return kern_ref_ops();
    if (!strcmp(name, "avx2"))
        return feats.avx2 ? &avx2_ops : NULL;
    if (!strcmp(name, "avx512"))
        return feats.avx512 ? &avx512_ops : NULL;
    return NULL;
}
