/* kv: the key/value cache of a context, one allocation each for K and V
 * over all layers and sequences, f32.
 *   V: [layer][seq][pos][n_head_kv * head_dim]
 *   K: [layer][seq][tile][n_head_kv][head_dim][KV_TILE], tile = pos / KV_TILE:
 *      keys stored transposed by tiles of KV_TILE positions, the layout the
 *      attention kernel scores from (attn.h: ATTN_KT == KV_TILE), so no
 *      tile is transposed at attention time. */
#ifndef SOV_KV_H
#define SOV_KV_H

#include <stdint.h>

#include "model.h"

#define KV_TILE 32 /* positions per K tile */

typedef struct kv_cache {
    int32_t n_layer, n_seq, n_ctx, row; /* row = n_head_kv * head_dim floats */
    int32_t n_tile;                     /* K tiles per sequence: n_ctx rounded up to KV_TILE */
    float *k, *v;
} kv_cache;

/* Allocates a zeroed cache for n_ctx positions x n_seq sequences.
 * Errors: SOV_EINVAL (n_ctx/n_seq < 1), SOV_ENOMEM (message gives the size). */
int kv_init(kv_cache *kv, const model_hparams *hp, int32_t n_ctx, int32_t n_seq);

/* Frees the cache memory; safe on a zeroed struct. */
void kv_free(kv_cache *kv);

/* K tile `tile` of (layer, seq): [n_head_kv][head_dim][KV_TILE] floats, the
 * next tile row * KV_TILE floats further; caller keeps indices in range. */
static inline float *kv_k_tile(const kv_cache *kv, int32_t layer, int32_t seq, int32_t tile)
{
    return kv->k + (((int64_t)layer * kv->n_seq + seq) * kv->n_tile + tile) * kv->row * KV_TILE;
}

/* Stores the key row k[n_head_kv * head_dim] of (layer, seq, pos) into its
 * tile (a strided copy); caller keeps indices in range. */
static inline void kv_k_put(const kv_cache *kv, int32_t layer, int32_t seq, int32_t pos, const float *k)
{
    float *t = kv_k_tile(kv, layer, seq, pos / KV_TILE) + pos % KV_TILE;
    for (int32_t i = 0; i < kv->row; i++)
        t[(int64_t)i * KV_TILE] = k[i];
}

/* Row of V for (layer, seq, pos); caller keeps indices in range. */
static inline float *kv_v(const kv_cache *kv, int32_t layer, int32_t seq, int32_t pos)
{
    return kv->v + (((int64_t)layer * kv->n_seq + seq) * kv->n_ctx + pos) * kv->row;
}

#endif
