/* cost: how much memory traffic and arithmetic a model's forward pass needs,
 * derived from the tensors the forward reads (the model struct), not from
 * the file: the inputs of a roofline (sov bench) or a capacity estimate. */
#ifndef SOV_COST_H
#define SOV_COST_H

#include <stdint.h>

#include "model.h"

typedef struct model_cost {
    /* Weight bytes one decoded token reads: every tensor of every layer
     * (norms, wq wk wv wo, biases, ffn gate/up/down) + output_norm + output;
     * token_embd adds one row, unless it is the output (tied), which is
     * already counted whole. */
    uint64_t weight_bytes_token;
    uint64_t kv_bytes_pos;        /* K + V of one cached position, all layers, in kv_type */
    int kv_type;                  /* the KV cache type kv_bytes_pos counts (enum kv_type, kv.h) */
    int64_t params;               /* elements of every tensor in the file */
    int64_t layer_matrix_params;  /* elements of wq wk wv wo gate up down, all layers */
    int64_t output_params;        /* elements of the output matrix */
    uint32_t type;                /* the type holding most layer-matrix elements */
} model_cost;

/* Fills *out for model m with an f32 KV cache. Errors: SOV_EFORMAT if a
 * tensor the model points at has a zero dimension (cannot happen for a
 * validated model). */
int model_cost_get(const model *m, model_cost *out);

/* model_cost_get for a KV cache of type kv_type (enum kv_type, kv.h):
 * kv_bytes_pos = kv_bytes_per_token(hp, kv_type). Errors: as
 * model_cost_get, SOV_EINVAL for an unknown type. */
int model_cost_get_kv(const model *m, int kv_type, model_cost *out);

/* Bytes one decoded token streams when attention reads ctx cached positions:
 * weight_bytes_token + ctx * kv_bytes_pos (ctx may be fractional: an average). */
double model_cost_token_bytes(const model_cost *c, double ctx);

/* Matrix flops of evaluating n_tok tokens of which n_logits produce logits:
 * 2 x (layer_matrix_params x n_tok + output_params x n_logits). Attention
 * (Q.K and softmax.V, growing with the position), norms, RoPE and the
 * activation function are not counted. */
double model_cost_matrix_flops(const model_cost *c, int64_t n_tok, int64_t n_logits);

#endif
