#include "kv.h"

#include "../base/err.h"

#include <stdlib.h>

int kv_init(kv_cache *kv, const model_hparams *hp, int32_t n_ctx, int32_t n_seq)
{
    kv->k = kv->v = NULL;
    if (n_ctx < 1 || n_seq < 1)
        return err_set(SOV_EINVAL, "context size %d and sequence count %d must be >= 1", n_ctx, n_seq);
    kv->n_layer = hp->n_layer;
    kv->n_seq = n_seq;
    kv->n_ctx = n_ctx;
    kv->row = hp->n_head_kv * hp->head_dim;
    kv->n_tile = (n_ctx + KV_TILE - 1) / KV_TILE;
    uint64_t bytes = model_kv_bytes(hp, n_ctx, n_seq) / 2;
    /* K by whole tiles: up to KV_TILE - 1 positions more */
    uint64_t kbytes = bytes / (uint64_t)n_ctx * (uint64_t)kv->n_tile * KV_TILE;
    kv->k = calloc(1, kbytes);
    kv->v = calloc(1, bytes);
    if (!kv->k || !kv->v) {
        kv_free(kv);
        return err_set(SOV_ENOMEM, "cannot allocate the KV cache (%.1f + %.1f MiB for %d positions)",
                       kbytes / 1048576.0, bytes / 1048576.0, n_ctx);
    }
    return 0;
}

void kv_free(kv_cache *kv)
{
    free(kv->k);
    free(kv->v);
    kv->k = kv->v = NULL;
}
