/* model: llama-family architecture description and weight tensors of a GGUF.
 *
 * Weights stay in the file mapping (zero-copy). Validation checks every
 * tensor the architecture needs: present, expected shape, supported type. */
#ifndef SOV_MODEL_H
#define SOV_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "../format/gguf.h"
#include "../tok/vocab.h"

enum rope_kind { ROPE_NORMAL = 0, ROPE_NEOX = 2 }; /* adjacent pairs / split halves */

typedef struct model_hparams {
    char arch[32];       /* general.architecture: llama, mistral, qwen2 */
    int32_t n_vocab;
    int32_t n_ctx_train;
    int32_t n_embd;
    int32_t n_layer;
    int32_t n_head;
    int32_t n_head_kv;
    int32_t n_ff;
    int32_t head_dim;    /* n_embd / n_head unless given */
    int32_t n_rot;       /* rotated dims per head */
    float rms_eps;
    float rope_base;     /* rope.freq_base */
    float rope_scale;    /* linear scaling factor (positions are divided by it) */
    int rope_kind;       /* enum rope_kind */
} model_hparams;

typedef struct model_layer {
    const gguf_tensor *attn_norm, *wq, *wk, *wv, *wo;
    const gguf_tensor *bq, *bk, *bv; /* optional biases (qwen2) */
    const gguf_tensor *ffn_norm, *ffn_gate, *ffn_down, *ffn_up;
} model_layer;

typedef struct model {
    gguf *g;                    /* owned if own_gguf */
    bool own_gguf;
    vocab *vocab;               /* owned; NULL only if the file has no tokenizer */
    model_hparams hp;
    const gguf_tensor *tok_embd, *out_norm, *output; /* output == tok_embd when tied */
    model_layer *layers;        /* hp.n_layer entries */
} model;

/* Opens the GGUF at path and validates it as a model (see model_from_gguf).
 * *out owned by caller (model_free). Errors as gguf_open and model_from_gguf. */
int model_load(model **out, const char *path);

/* model_load with the weights either mapped (use_mmap) or read into
 * huge-page memory (see gguf_load); model_load maps. Read into memory, the
 * matrices are then rewritten in place to the r16 layout (Q4_0, Q8_0,
 * Q4_K, Q6_K) or the x8 layout (32-element block types; kern.h) when the
 * best kernel table has gemm_r16 / gemm_x8 for them (gguf_tensor.layout
 * says which): faster to stream. x8 gives the same results as the mapped
 * weights; r16 sums each dot product in another order, so its products
 * differ from them in the last bits, and logits somewhat more (activations
 * are requantized every layer); results are still the same for every
 * thread count and batch size.
 * Further errors: those of kern_r16_pack, kern_x8_pack, file_map_protect. */
int model_load_mode(model **out, const char *path, bool use_mmap);

/* model_load_mode with bar p (may be NULL; the caller ends it) following
 * the read into memory ("reading FILE") and the repacking ("repacking
 * FILE"), in bytes. A mapping reads nothing and moves no bar. */
int model_load_progress(model **out, const char *path, bool use_mmap, progress *p);

/* Builds a model over an open gguf. If take_ownership, the model closes g in
 * model_free (also on failure). Errors: SOV_EUNSUPPORTED (architecture,
 * tensor type), SOV_EFORMAT (missing tensor/metadata, wrong shape), SOV_ENOMEM. */
int model_from_gguf(model **out, gguf *g, bool take_ownership);

void model_free(model *m);

/* Bytes of all weight tensors. */
uint64_t model_weight_bytes(const model *m);

/* Bytes of an f32 KV cache holding n_ctx positions for n_seq sequences. */
uint64_t model_kv_bytes(const model_hparams *hp, int64_t n_ctx, int64_t n_seq);

#endif
