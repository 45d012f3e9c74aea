#include "kv.h"

#include "../base/err.h"
#include "../base/file.h"

#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

static const char *const names[KV_TYPE_COUNT] = {"f32", "f16", "q8_0"};

const char *kv_type_name(int type) { return type >= 0 && type < KV_TYPE_COUNT ? names[type] : NULL; }

int kv_type_parse(const char *s)
{
    for (int t = 0; t < KV_TYPE_COUNT; t++)
        if (!strcmp(s, names[t]))
            return t;
    return -1;
}

/* bytes of one layer's K (= V) block: KV_TILE positions x row elements,
 * q8_0 plus one f16 scale per position and chunk of each head */
static uint64_t block_bytes(const model_hparams *hp, int type)
{
    uint64_t row = (uint64_t)hp->n_head_kv * (uint64_t)hp->head_dim;
    uint64_t nch = ((uint64_t)hp->head_dim + KV_Q8_CHUNK - 1) / KV_Q8_CHUNK;
    switch (type) {
    case KV_F32:
        return row * KV_TILE * 4;
    case KV_F16:
        return row * KV_TILE * 2;
    case KV_Q8_0:
        return row * KV_TILE + (uint64_t)hp->n_head_kv * nch * KV_TILE * 2;
    default:
        return 0;
    }
}

uint64_t kv_bytes_per_block(const model_hparams *hp, int type)
{
    return 2 * (uint64_t)hp->n_layer * block_bytes(hp, type);
}

uint64_t kv_bytes_per_token(const model_hparams *hp, int type) { return kv_bytes_per_block(hp, type) / KV_TILE; }

int kv_init(kv_cache *kv, const model_hparams *hp, int32_t n_ctx, int32_t n_seq, int32_t n_blocks, int type)
{
    kv->k = kv->v = NULL;
    kv->table = NULL;
    if (n_ctx < 1 || n_seq < 1 || n_blocks < 0)
        return err_set(SOV_EINVAL, "context size %d, sequence count %d and block count %d must be >= 1 (blocks >= 0)",
                       n_ctx, n_seq, n_blocks);
    if (!kv_type_name(type))
        return err_set(SOV_EINVAL, "KV cache type %d unknown (f32, f16 or q8_0)", type);
    kv->n_layer = hp->n_layer;
    kv->n_seq = n_seq;
    kv->n_ctx = n_ctx;
    kv->n_head_kv = hp->n_head_kv;
    kv->head_dim = hp->head_dim;
    kv->nch = (hp->head_dim + KV_Q8_CHUNK - 1) / KV_Q8_CHUNK;
    kv->row = hp->n_head_kv * hp->head_dim;
    kv->type = type;
    kv->block_bytes = block_bytes(hp, type);
    kv->n_tile = (n_ctx + KV_TILE - 1) / KV_TILE;
    bool fixed = n_blocks == 0;
    if (fixed && (int64_t)n_seq * kv->n_tile > INT32_MAX)
        return err_set(SOV_EINVAL, "%d sequences x %d positions is too many blocks", n_seq, n_ctx);
    kv->n_blocks = fixed ? n_seq * kv->n_tile : n_blocks;
    uint64_t bytes = (uint64_t)kv->n_layer * (uint64_t)kv->n_blocks * kv->block_bytes;
    /* in 2 MiB huge pages (file_alloc_huge): a long context's K and V
     * streams cross a 4 KiB page every few tiles, and in huge pages the TLB
     * covers them (tinyllama shapes at 2048 positions, 1 thread: decode 31.3
     * -> 28.6 ms per token with an f32 cache, 32.8 -> 29.6 f16, 30.2 -> 26.7
     * q8_0); pages are allocated when first written, as calloc's would be */
    kv->k = file_alloc_huge(bytes, &kv->map_bytes);
    kv->v = file_alloc_huge(bytes, &kv->map_bytes);
    kv->table = malloc(sizeof *kv->table * (size_t)n_seq * (size_t)kv->n_tile);
    if (!kv->k || !kv->v || !kv->table) {
        kv_free(kv);
        return err_set(SOV_ENOMEM, "cannot allocate the KV cache (2 x %.1f MiB for %d blocks of %d positions, %s)",
                       bytes / 1048576.0, kv->n_blocks, KV_TILE, names[type]);
    }
    for (int64_t i = 0; i < (int64_t)n_seq * kv->n_tile; i++)
        kv->table[i] = fixed ? (int32_t)i : -1;
    return 0;
}

void kv_free(kv_cache *kv)
{
    if (kv->k)
        munmap(kv->k, kv->map_bytes);
    if (kv->v)
        munmap(kv->v, kv->map_bytes);
    free(kv->table);
    kv->k = kv->v = NULL;
    kv->table = NULL;
}
