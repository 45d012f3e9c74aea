/* attn: causal attention of a block of queries over a KV cache, tiled over
 * keys with an online (running max) softmax, so the scores of a long context
 * are never materialized and each K/V tile is loaded once for every query of
 * the block.
 *
 * Determinism: keys are visited in fixed tiles of ATTN_KT positions starting
 * at 0, and each (query, head) pair runs the same operation sequence whatever
 * other queries share its block, so a token gets the same bits whether it is
 * evaluated alone or in a batch. */
#ifndef SOV_ATTN_H
#define SOV_ATTN_H

#include <stdint.h>

#include "kern/kern.h"
#include "kv.h"

#define ATTN_KT 32 /* keys per tile */

typedef struct attn_block {
    int32_t nq;          /* query tokens in the block (>= 1) */
    int32_t n_group;     /* query heads sharing this kv head (>= 1) */
    int32_t head_dim;
    const int32_t *pos;  /* [nq] position of each query; it sees keys 0..pos[j] */
    const float *q;      /* query (j, g) at q + j*q_stride + g*head_dim */
    int64_t q_stride;
    const int32_t *tiles; /* block of each tile of ATTN_KT positions (the sequence's block table);
                           * NULL: tile i is block i */
    int kv_type;         /* enum kv_type (kv.h): the elements of k and v (floats, halves or q8_0
                          * codes); offsets and strides of k and v count these elements */
    const kern_ops *ops; /* KV_F16 / KV_Q8_0: the table whose kv_k_* / kv_v_* decode the tiles and
                          * attn_scores / attn_axpy use them (unused for KV_F32, read in place) */
    const void *k;       /* keys by blocks, each [head_dim][ATTN_KT] (transposed): key t, element d at
                          * k + tiles[t / ATTN_KT] * k_tile_stride + d * ATTN_KT + t % ATTN_KT */
    int64_t k_tile_stride;
    const uint16_t *ks;  /* KV_Q8_0: f16 scale of chunk c (kern.h) of key t at
                          * ks + tiles[t / ATTN_KT] * ks_tile_stride + c * ATTN_KT + t % ATTN_KT */
    int64_t ks_tile_stride;
    const void *v;       /* value of position t at v + tiles[t / ATTN_KT] * v_tile_stride
                          * + (t % ATTN_KT) * kv_stride (this head) */
    int64_t v_tile_stride;
    int64_t kv_stride;
    const uint16_t *vs;  /* KV_Q8_0: f16 scale of chunk c of value t at
                          * vs + tiles[t / ATTN_KT] * vs_tile_stride + (t % ATTN_KT) * vs_stride + c */
    int64_t vs_tile_stride, vs_stride;
    float *out;          /* output (j, g) at out + j*out_stride + g*head_dim */
    int64_t out_stride;
    float scale;         /* score = scale * q.k */
} attn_block;

/* Scratch floats attn_run needs for a block of nq queries and n_group heads
 * of head_dim elements. */
int64_t attn_scratch_floats(int32_t nq, int32_t n_group, int32_t head_dim);

/* out(j, g) = softmax_t(scale * q(j,g) . k_t) @ v_t over t = 0..pos[j].
 * KV_F16 / KV_Q8_0 tiles are first decoded to floats (exactly, by b->ops)
 * into the scratch, once per tile for all queries and heads of the block;
 * their scores and value sums then run through b->ops->attn_scores /
 * attn_axpy (fused multiply-adds, kern.h: the same bits in every table).
 * KV_F32 tiles are read in place by attn.c's own kernels (separate
 * multiplies and adds), whose results are those of before the KV types.
 * scratch: attn_scratch_floats(b->nq, b->n_group, b->head_dim) floats, owned by
 * the caller.
 * No errors (the caller keeps positions within the cache). */
void attn_run(const attn_block *b, float *scratch);

/* s[i] = e^(s[i] - sub) for i < 16, as attn_run's softmax computes it (a
 * polynomial, within 2 ulp of e^x; meant for s[i] - sub <= 0: values below
 * -87 give 0, NaN stays NaN). Exposed for tests. No errors. */
void attn_exp16(float *s, float sub);

#endif
