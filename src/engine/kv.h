/* kv: the key/value cache of a context, f32, in blocks of KV_TILE positions
 * shared by all sequences through a block table per sequence, one
 * allocation each for K and V over all layers:
 *   K: [layer][block][n_head_kv][head_dim][KV_TILE]  keys stored transposed
 *      by blocks, the layout the attention kernel scores from (attn.h:
 *      ATTN_KT == KV_TILE), so no tile is transposed at attention time;
 *   V: [layer][block][KV_TILE][n_head_kv * head_dim].
 * Tile t of sequence s (positions t*KV_TILE ..) lives in block
 * table[s * n_tile + t] (-1: not mapped). A cache made without a block count
 * maps sequence s's tiles to blocks s*n_tile .. s*n_tile + n_tile - 1, the
 * old fixed per-sequence regions. */
#ifndef SOV_KV_H
#define SOV_KV_H

#include <stdint.h>

#include "model.h"

#define KV_TILE 32 /* positions per block (and per K tile) */

typedef struct kv_cache {
    int32_t n_layer, n_seq, n_ctx, row; /* row = n_head_kv * head_dim floats */
    int32_t n_tile;                     /* tiles per sequence: n_ctx rounded up to KV_TILE */
    int32_t n_blocks;
    int32_t *table;                     /* [n_seq][n_tile] block of each tile, -1 = none */
    float *k, *v;
} kv_cache;

/* Allocates a zeroed cache of n_blocks blocks (0: n_seq * n_tile, mapped as
 * fixed per-sequence regions; otherwise every tile starts unmapped) for
 * n_seq sequences of up to n_ctx positions. Errors: SOV_EINVAL (n_ctx /
 * n_seq < 1, n_blocks < 0), SOV_ENOMEM (message gives the size). */
int kv_init(kv_cache *kv, const model_hparams *hp, int32_t n_ctx, int32_t n_seq, int32_t n_blocks);

/* Frees the cache memory; safe on a zeroed struct. */
void kv_free(kv_cache *kv);

/* Floats of one block of K (or of V) in one layer. */
static inline int64_t kv_block_floats(const kv_cache *kv) { return (int64_t)kv->row * KV_TILE; }

/* Block b of K in layer: [n_head_kv][head_dim][KV_TILE] floats. */
static inline float *kv_k_block(const kv_cache *kv, int32_t layer, int32_t b)
{
    return kv->k + ((int64_t)layer * kv->n_blocks + b) * kv_block_floats(kv);
}

/* Block b of V in layer: [KV_TILE][row] floats. */
static inline float *kv_v_block(const kv_cache *kv, int32_t layer, int32_t b)
{
    return kv->v + ((int64_t)layer * kv->n_blocks + b) * kv_block_floats(kv);
}

/* Block table of sequence seq: n_tile entries. */
static inline const int32_t *kv_table(const kv_cache *kv, int32_t seq) { return kv->table + (int64_t)seq * kv->n_tile; }

/* Stores the key row k[row] of (layer, seq, pos) into its block, transposed
 * (a strided copy); caller keeps indices in range and the tile mapped. */
static inline void kv_k_put(const kv_cache *kv, int32_t layer, int32_t seq, int32_t pos, const float *k)
{
    float *t = kv_k_block(kv, layer, kv_table(kv, seq)[pos / KV_TILE]) + pos % KV_TILE;
    for (int32_t i = 0; i < kv->row; i++)
        t[(int64_t)i * KV_TILE] = k[i];
}

/* Row of V for (layer, seq, pos); caller keeps indices in range and the
 * tile mapped. */
static inline float *kv_v(const kv_cache *kv, int32_t layer, int32_t seq, int32_t pos)
{
    return kv_v_block(kv, layer, kv_table(kv, seq)[pos / KV_TILE]) + (int64_t)(pos % KV_TILE) * kv->row;
}

#endif
