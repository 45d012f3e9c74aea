/* kv: the key/value cache of a context, in blocks of KV_TILE positions
 * shared by all sequences through a block table per sequence, one
 * allocation each for K and V over all layers. The element type is chosen
 * per context (enum kv_type); every type keeps the same two layouts:
 *   K: [layer][block][n_head_kv][head_dim][KV_TILE]  keys stored transposed
 *      by blocks, the layout the attention kernel scores from (attn.h:
 *      ATTN_KT == KV_TILE), so no tile is transposed at attention time;
 *   V: [layer][block][KV_TILE][n_head_kv * head_dim].
 * KV_F32 stores floats, KV_F16 IEEE halves (round to nearest even; |x| >
 * 65504 becomes inf). KV_Q8_0 stores int8 codes in exactly those layouts
 * and, behind the codes of each block, f16 scales (value = code * scale),
 * one per token and chunk of KV_Q8_CHUNK consecutive elements of one head
 * (nch = ceil(head_dim / 32) chunks per head, the last head_dim - 32 (nch -
 * 1) long: head_dim 8 has one chunk of 8, 80 chunks of 32, 32 and 16):
 *   K block: int8 [n_head_kv][head_dim][KV_TILE], then f16 [n_head_kv][nch][KV_TILE];
 *   V block: int8 [KV_TILE][row], then f16 [KV_TILE][n_head_kv * nch].
 * A chunk never spans positions, so a token's codes depend on its own row
 * only (results do not change with batching); the quantizer is kern.h's
 * kern_kv_put_fn (scales saturate at 65504).
 * Tile t of sequence s (positions t*KV_TILE ..) lives in block
 * table[s * n_tile + t] (-1: not mapped). A cache made without a block count
 * maps sequence s's tiles to blocks s*n_tile .. s*n_tile + n_tile - 1, the
 * old fixed per-sequence regions. */
#ifndef SOV_KV_H
#define SOV_KV_H

#include <stdint.h>

#include "model.h"

#define KV_TILE 32     /* positions per block (and per K tile) */
#define KV_Q8_CHUNK 32 /* elements of a head per q8_0 scale (kern.h: KERN_KV_CHUNK) */

/* element types of a KV cache */
enum kv_type { KV_F32 = 0, KV_F16 = 1, KV_Q8_0 = 2 };
#define KV_TYPE_COUNT 3

typedef struct kv_cache {
    int32_t n_layer, n_seq, n_ctx, row; /* row = n_head_kv * head_dim elements */
    int32_t n_head_kv, head_dim, nch;   /* nch: q8_0 scale chunks per head */
    int32_t n_tile;                     /* tiles per sequence: n_ctx rounded up to KV_TILE */
    int32_t n_blocks;
    int type;             /* enum kv_type */
    uint64_t block_bytes; /* one layer's block of K (V has the same size) */
    int32_t *table;       /* [n_seq][n_tile] block of each tile, -1 = none */
    unsigned char *k, *v; /* n_layer * n_blocks * block_bytes each, 2 MiB aligned (huge pages) */
    uint64_t map_bytes;   /* bytes mapped for each of k and v */
} kv_cache;

/* "f32", "f16", "q8_0"; NULL for a type out of range. */
const char *kv_type_name(int type);

/* The enum kv_type named s ("f32", "f16", "q8_0"), or -1. */
int kv_type_parse(const char *s);

/* Bytes of one block (KV_TILE positions) of K plus V over all layers for
 * model hp in type `type` (0 for a type out of range): what a paged cache
 * of n blocks holds, n x this. */
uint64_t kv_bytes_per_block(const model_hparams *hp, int type);

/* Bytes of K plus V of one cached position over all layers
 * (kv_bytes_per_block / KV_TILE, exact). */
uint64_t kv_bytes_per_token(const model_hparams *hp, int type);

/* Allocates a zeroed cache of element type `type` and n_blocks blocks (0:
 * n_seq * n_tile, mapped as fixed per-sequence regions; otherwise every
 * tile starts unmapped) for n_seq sequences of up to n_ctx positions.
 * Errors: SOV_EINVAL (n_ctx / n_seq < 1, n_blocks < 0, unknown type),
 * SOV_ENOMEM (message gives the size). */
int kv_init(kv_cache *kv, const model_hparams *hp, int32_t n_ctx, int32_t n_seq, int32_t n_blocks, int type);

/* Frees the cache memory; safe on a zeroed struct. */
void kv_free(kv_cache *kv);

/* Bytes of one element (f32 4, f16 2, q8_0 1: the code). */
static inline int kv_elt_bytes(int type) { return type == KV_F32 ? 4 : type == KV_F16 ? 2 : 1; }

/* Block b of K in layer: [n_head_kv][head_dim][KV_TILE] elements (q8_0:
 * then the scales, kv_k_scales). */
static inline unsigned char *kv_k_block(const kv_cache *kv, int32_t layer, int32_t b)
{
    return kv->k + ((uint64_t)layer * (uint64_t)kv->n_blocks + (uint64_t)b) * kv->block_bytes;
}

/* Block b of V in layer: [KV_TILE][row] elements (q8_0: then the scales,
 * kv_v_scales). */
static inline unsigned char *kv_v_block(const kv_cache *kv, int32_t layer, int32_t b)
{
    return kv->v + ((uint64_t)layer * (uint64_t)kv->n_blocks + (uint64_t)b) * kv->block_bytes;
}

/* q8_0: the scales of K block blk, f16 [n_head_kv][nch][KV_TILE] */
static inline uint16_t *kv_k_scales(const kv_cache *kv, unsigned char *blk)
{
    return (uint16_t *)(void *)(blk + (uint64_t)kv->row * KV_TILE);
}

/* q8_0: the scales of V block blk, f16 [KV_TILE][n_head_kv * nch] */
static inline uint16_t *kv_v_scales(const kv_cache *kv, unsigned char *blk)
{
    return (uint16_t *)(void *)(blk + (uint64_t)kv->row * KV_TILE);
}

/* Block table of sequence seq: n_tile entries. */
static inline const int32_t *kv_table(const kv_cache *kv, int32_t seq) { return kv->table + (int64_t)seq * kv->n_tile; }

#endif
