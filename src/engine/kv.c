#include "kv.h"

#include "../base/err.h"

#include <stdlib.h>

int kv_init(kv_cache *kv, const model_hparams *hp, int32_t n_ctx, int32_t n_seq, int32_t n_blocks)
{
    kv->k = kv->v = NULL;
    kv->table = NULL;
    if (n_ctx < 1 || n_seq < 1 || n_blocks < 0)
        return err_set(SOV_EINVAL, "context size %d, sequence count %d and block count %d must be >= 1 (blocks >= 0)",
                       n_ctx, n_seq, n_blocks);
    kv->n_layer = hp->n_layer;
    kv->n_seq = n_seq;
    kv->n_ctx = n_ctx;
    kv->row = hp->n_head_kv * hp->head_dim;
    kv->n_tile = (n_ctx + KV_TILE - 1) / KV_TILE;
    bool fixed = n_blocks == 0;
    if (fixed && (int64_t)n_seq * kv->n_tile > INT32_MAX)
        return err_set(SOV_EINVAL, "%d sequences x %d positions is too many blocks", n_seq, n_ctx);
    kv->n_blocks = fixed ? n_seq * kv->n_tile : n_blocks;
    uint64_t bytes = (uint64_t)kv->n_layer * (uint64_t)kv->n_blocks * (uint64_t)kv_block_floats(kv) * sizeof(float);
    kv->k = calloc(1, bytes);
    kv->v = calloc(1, bytes);
    kv->table = malloc(sizeof *kv->table * (size_t)n_seq * (size_t)kv->n_tile);
    if (!kv->k || !kv->v || !kv->table) {
        kv_free(kv);
        return err_set(SOV_ENOMEM, "cannot allocate the KV cache (2 x %.1f MiB for %d blocks of %d positions)",
                       bytes / 1048576.0, kv->n_blocks, KV_TILE);
    }
    for (int64_t i = 0; i < (int64_t)n_seq * kv->n_tile; i++)
        kv->table[i] = fixed ? (int32_t)i : -1;
    return 0;
}

void kv_free(kv_cache *kv)
{
    free(kv->k);
    free(kv->v);
    free(kv->table);
    kv->k = kv->v = NULL;
    kv->table = NULL;
}
