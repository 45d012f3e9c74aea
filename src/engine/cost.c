/* cost: per-token traffic and matrix flops of a model (see cost.h). */
#include "cost.h"

#include "../base/err.h"
#include "../format/ttype.h"
#include "kv.h"

#include <string.h>

static uint64_t bytes_of(const gguf_tensor *t) { return t ? t->nbytes : 0; }

int model_cost_get(const model *m, model_cost *out) { return model_cost_get_kv(m, KV_F32, out); }

int model_cost_get_kv(const model *m, int kv_type, model_cost *out)
{
    memset(out, 0, sizeof *out);
    if (!kv_type_name(kv_type))
        return err_set(SOV_EINVAL, "KV cache type %d unknown", kv_type);
    const model_hparams *hp = &m->hp;
    int64_t by_type[SOV_TYPE_COUNT] = {0};
    uint64_t w = 0;
    for (int32_t l = 0; l < hp->n_layer; l++) {
        const model_layer *L = &m->layers[l];
        const gguf_tensor *all[] = {L->attn_norm, L->wq, L->wk, L->wv, L->wo, L->bq, L->bk, L->bv,
                                    L->ffn_norm, L->ffn_gate, L->ffn_down, L->ffn_up};
        const gguf_tensor *mats[] = {L->wq, L->wk, L->wv, L->wo, L->ffn_gate, L->ffn_down, L->ffn_up};
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
            w += bytes_of(all[i]);
        for (size_t i = 0; i < sizeof mats / sizeof mats[0]; i++) {
            int64_t ne = gguf_tensor_nelements(mats[i]);
            out->layer_matrix_params += ne;
            if (mats[i]->type < SOV_TYPE_COUNT)
                by_type[mats[i]->type] += ne;
        }
    }
    w += bytes_of(m->out_norm) + bytes_of(m->output);
    if (m->tok_embd != m->output) {
        if (m->tok_embd->ne[1] <= 0)
            return err_set(SOV_EFORMAT, "token_embd has no rows");
        w += m->tok_embd->nbytes / (uint64_t)m->tok_embd->ne[1];
    }
    out->weight_bytes_token = w;
    out->output_params = gguf_tensor_nelements(m->output);
    out->kv_bytes_pos = kv_bytes_per_token(hp, kv_type);
    out->kv_type = kv_type;
    for (uint64_t i = 0; i < m->g->n_tensors; i++)
        out->params += gguf_tensor_nelements(&m->g->tensors[i]);
    uint32_t best = SOV_F32; /* a model without layer matrices */
    for (uint32_t t = 0; t < SOV_TYPE_COUNT; t++)
        if (by_type[t] > by_type[best])
            best = t;
    out->type = best;
    return 0;
}

double model_cost_token_bytes(const model_cost *c, double ctx)
{
    return (double)c->weight_bytes_token + ctx * (double)c->kv_bytes_pos;
}

double model_cost_matrix_flops(const model_cost *c, int64_t n_tok, int64_t n_logits)
{
    return 2.0 * ((double)c->layer_matrix_params * (double)n_tok + (double)c->output_params * (double)n_logits);
}
