/* kv: the key/value cache of a context, one allocation for all layers and
 * sequences. Layout: [layer][seq][pos][n_head_kv * head_dim] f32, K and V. */
#ifndef SOV_KV_H
#define SOV_KV_H

#include <stdint.h>

#include "model.h"

typedef struct kv_cache {
    int32_t n_layer, n_seq, n_ctx, row; /* row = n_head_kv * head_dim floats */
    float *k, *v;
} kv_cache;

/* Allocates a zeroed cache for n_ctx positions x n_seq sequences.
 * Errors: SOV_EINVAL (n_ctx/n_seq < 1), SOV_ENOMEM (message gives the size). */
int kv_init(kv_cache *kv, const model_hparams *hp, int32_t n_ctx, int32_t n_seq);

/* Frees the cache memory; safe on a zeroed struct. */
void kv_free(kv_cache *kv);

/* Row of K / V for (layer, seq, pos); caller keeps indices in range. */
static inline float *kv_k(const kv_cache *kv, int32_t layer, int32_t seq, int32_t pos)
{
    return kv->k + (((int64_t)layer * kv->n_seq + seq) * kv->n_ctx + pos) * kv->row;
}
static inline float *kv_v(const kv_cache *kv, int32_t layer, int32_t seq, int32_t pos)
{
    return kv->v + (((int64_t)layer * kv->n_seq + seq) * kv->n_ctx + pos) * kv->row;
}

#endif
