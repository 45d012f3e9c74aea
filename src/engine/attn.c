#include "attn.h"

#include <math.h>
#include <string.h>

/* 8-lane float vectors (GCC/Clang vector extension): the compiler emits SSE,
 * AVX2 or AVX-512 code for them per target clone below. The clones name
 * features, not CPUs: an "avx2" clone is chosen only on Intel
 * Haswell parts (the resolver tests the CPU model), so AMD CPUs with AVX2
 * would fall to the SSE default. */
typedef float v8f __attribute__((vector_size(32), aligned(4)));

#if defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__) && !defined(__clang__)
#define ATTN_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define ATTN_CLONES
#endif

// sum_d a[d] * b[d]; n a multiple of 8 takes the vector path
static inline float dot(const float *a, const float *b, int n)
{
    if (n % 8 == 0) {
        v8f acc = {0};
        for (int d = 0; d < n; d += 8) {
            v8f x, y;
            memcpy(&x, a + d, sizeof x);
            memcpy(&y, b + d, sizeof y);
            acc += x * y;
        }
        float s = 0;
        for (int l = 0; l < 8; l++)
            s += acc[l];
        return s;
    }
    float s = 0;
    for (int d = 0; d < n; d++)
        s += a[d] * b[d];
    return s;
}

// o[d] = o[d] * c + sum_t p[t] * V[t][d]
static inline void axpy_rows(float *o, float c, const float *p, const float *v, int64_t stride, int nt, int n)
{
    if (n % 8 == 0) {
        for (int d = 0; d < n; d += 8) {
            v8f acc;
            memcpy(&acc, o + d, sizeof acc);
            acc *= c;
            for (int t = 0; t < nt; t++) {
                v8f x;
                memcpy(&x, v + t * stride + d, sizeof x);
                acc += p[t] * x;
            }
            memcpy(o + d, &acc, sizeof acc);
        }
        return;
    }
    for (int d = 0; d < n; d++)
        o[d] *= c;
    for (int t = 0; t < nt; t++) {
        const float *vt = v + t * stride;
        float pt = p[t];
        for (int d = 0; d < n; d++)
            o[d] += pt * vt[d];
    }
}

int64_t attn_scratch_floats(int32_t nq, int32_t n_group)
{
    return (int64_t)nq * n_group * (2 + ATTN_KT);
}

ATTN_CLONES
void attn_run(const attn_block *b, float *scratch)
{
    const int hd = b->head_dim, G = b->n_group;
    const int64_t nqg = (int64_t)b->nq * G;
    float *m = scratch, *l = scratch + nqg, *s = scratch + 2 * nqg; /* s: [nqg][ATTN_KT] */
    int32_t maxpos = 0;
    for (int32_t j = 0; j < b->nq; j++) {
        if (b->pos[j] > maxpos)
            maxpos = b->pos[j];
        for (int g = 0; g < G; g++)
            memset(b->out + j * b->out_stride + (int64_t)g * hd, 0, sizeof(float) * (size_t)hd);
    }
    for (int64_t i = 0; i < nqg; i++) {
        m[i] = -INFINITY;
        l[i] = 0.0f;
    }
    for (int32_t t0 = 0; t0 <= maxpos; t0 += ATTN_KT) {
        const float *kt = b->k + (int64_t)t0 * b->kv_stride, *vt = b->v + (int64_t)t0 * b->kv_stride;
        for (int32_t j = 0; j < b->nq; j++) {
            int32_t nt = b->pos[j] + 1 - t0; /* keys of this tile the query sees */
            if (nt <= 0)
                continue;
            if (nt > ATTN_KT)
                nt = ATTN_KT;
            for (int g = 0; g < G; g++) {
                int64_t i = (int64_t)j * G + g;
                const float *qv = b->q + j * b->q_stride + (int64_t)g * hd;
                float *si = s + i * ATTN_KT;
                float mx = m[i];
                for (int t = 0; t < nt; t++) {
                    si[t] = b->scale * dot(qv, kt + t * b->kv_stride, hd);
                    if (si[t] > mx)
                        mx = si[t];
                }
                float c = expf(m[i] - mx); /* 0 on the first tile (m = -inf) */
                float sum = 0.0f;
                for (int t = 0; t < nt; t++) {
                    si[t] = expf(si[t] - mx);
                    sum += si[t];
                }
                l[i] = l[i] * c + sum;
                m[i] = mx;
                axpy_rows(b->out + j * b->out_stride + (int64_t)g * hd, c, si, vt, b->kv_stride, nt, hd);
            }
        }
    }
    for (int32_t j = 0; j < b->nq; j++)
        for (int g = 0; g < G; g++) {
            float inv = 1.0f / l[(int64_t)j * G + g];
            float *o = b->out + j * b->out_stride + (int64_t)g * hd;
            for (int d = 0; d < hd; d++)
                o[d] *= inv;
        }
}
