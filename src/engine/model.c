#include "model.h"

#include "../base/err.h"
#include "kern/kern.h"
#include "../format/ttype.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Per-architecture differences: a few lines each. */
typedef struct arch_desc {
    const char *name;
    int rope_kind;
    bool qkv_bias;
} arch_desc;

static const arch_desc archs[] = {
    {"llama", ROPE_NORMAL, false},
    {"mistral", ROPE_NORMAL, false},
    {"qwen2", ROPE_NEOX, true},
};

static int get_int(const gguf *g, const char *arch, const char *suffix, bool required,
                   int64_t dflt, int64_t lo, int64_t hi, int32_t *out)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    int64_t v = dflt;
    int rc = gguf_get_i64(g, key, &v);
    if (rc == SOV_ENOTFOUND && !required)
        v = dflt;
    else if (rc)
        return rc;
    if (v < lo || v > hi)
        return err_set(SOV_EFORMAT, "metadata '%s' = %" PRId64 " is out of range %" PRId64 "..%" PRId64,
                       key, v, lo, hi);
    *out = (int32_t)v;
    return 0;
}

static int get_float(const gguf *g, const char *arch, const char *suffix, double dflt, float *out)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    double v = dflt;
    int rc = gguf_get_f64(g, key, &v);
    if (rc && rc != SOV_ENOTFOUND)
        return rc;
    if (!(isfinite(v) && v > 0))
        return err_set(SOV_EFORMAT, "metadata '%s' = %g must be a positive number", key, v);
    *out = (float)v;
    return 0;
}

/* Finds tensor `name` and checks its shape is exactly ne0 x ne1 (ne1 = 1 for
 * vectors) and that the kernels support its type. */
static int want(const model *m, const char *name, int64_t ne0, int64_t ne1, bool optional,
                const gguf_tensor **out)
{
    const gguf_tensor *t = gguf_find_tensor(m->g, name);
    *out = t;
    if (!t)
        return optional ? 0 : err_set(SOV_EFORMAT, "tensor '%s' is missing", name);
    if (t->ne[0] != ne0 || t->ne[1] != ne1 || t->ne[2] != 1 || t->ne[3] != 1)
        return err_set(SOV_EFORMAT, "tensor '%s' has shape [%" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64
                       "], expected [%" PRId64 ", %" PRId64 "]",
                       name, t->ne[0], t->ne[1], t->ne[2], t->ne[3], ne0, ne1);
    const kern_ops *ops = kern_ref_ops();
    if (!ops->dot[t->type] || !ops->dequant[t->type])
        return err_set(SOV_EUNSUPPORTED, "tensor '%s' has type %s, which sov cannot compute with",
                       name, ttype_name(t->type));
    return 0;
}

static int load_hparams(model *m, const arch_desc **ad_out)
{
    const gguf *g = m->g;
    model_hparams *hp = &m->hp;
    gguf_str a;
    int rc = gguf_get_str(g, "general.architecture", &a);
    if (rc)
        return rc;
    gguf_str_copy(a, hp->arch, sizeof hp->arch);
    const arch_desc *ad = NULL;
    for (size_t i = 0; i < sizeof archs / sizeof archs[0]; i++)
        if (gguf_str_eq(a, archs[i].name))
            ad = &archs[i];
    if (!ad)
        return err_set(SOV_EUNSUPPORTED, "architecture '%s' is not supported (supported: llama, mistral, qwen2)",
                       hp->arch);
    *ad_out = ad;
    const char *ar = ad->name;
    if ((rc = get_int(g, ar, "embedding_length", true, 0, 1, 1 << 20, &hp->n_embd)) ||
        (rc = get_int(g, ar, "block_count", true, 0, 1, 4096, &hp->n_layer)) ||
        (rc = get_int(g, ar, "attention.head_count", true, 0, 1, 1 << 14, &hp->n_head)) ||
        (rc = get_int(g, ar, "attention.head_count_kv", false, hp->n_head, 1, hp->n_head, &hp->n_head_kv)) ||
        (rc = get_int(g, ar, "context_length", false, 2048, 1, INT32_MAX, &hp->n_ctx_train)))
        return rc;
    if (hp->n_head % hp->n_head_kv != 0)
        return err_set(SOV_EFORMAT, "head_count %d is not a multiple of head_count_kv %d", hp->n_head, hp->n_head_kv);
    int64_t hd_default = hp->n_embd / hp->n_head;
    if ((rc = get_int(g, ar, "attention.key_length", false, hd_default, 2, 1 << 14, &hp->head_dim)) ||
        (rc = get_int(g, ar, "rope.dimension_count", false, hp->head_dim, 2, hp->head_dim, &hp->n_rot)))
        return rc;
    if (hp->head_dim % 2 || hp->n_rot % 2)
        return err_set(SOV_EFORMAT, "head dimension %d / rope dimension %d must be even", hp->head_dim, hp->n_rot);
    if ((rc = get_float(g, ar, "attention.layer_norm_rms_epsilon", 1e-5, &hp->rms_eps)) ||
        (rc = get_float(g, ar, "rope.freq_base", 10000.0, &hp->rope_base)))
        return rc;
    hp->rope_scale = 1.0f;
    char key[128];
    snprintf(key, sizeof key, "%s.rope.scaling.type", ar);
    gguf_str st;
    rc = gguf_get_str(g, key, &st);
    bool linear = rc == 0 && gguf_str_eq(st, "linear");
    if (rc == 0 && !linear && !gguf_str_eq(st, "none"))
        return err_set(SOV_EUNSUPPORTED, "rope scaling type '%.*s' is not supported (none, linear)",
                       (int)(st.len > 40 ? 40 : st.len), st.ptr);
    if (rc == SOV_ENOTFOUND || linear) {
        /* also the older key name */
        float f = 1.0f;
        if ((rc = get_float(g, ar, "rope.scaling.factor", 1.0, &f)))
            return rc;
        if (f == 1.0f && (rc = get_float(g, ar, "rope.scale_linear", 1.0, &f)))
            return rc;
        hp->rope_scale = f;
    } else if (rc && rc != SOV_ENOTFOUND) {
        return rc;
    }
    hp->rope_kind = ad->rope_kind;
    return 0;
}

int model_from_gguf(model **out, gguf *g, bool take_ownership)
{
    *out = NULL;
    int rc;
    model *m = calloc(1, sizeof *m);
    if (!m) {
        if (take_ownership)
            gguf_close(g);
        return err_set(SOV_ENOMEM, "out of memory");
    }
    m->g = g;
    m->own_gguf = take_ownership;
    const arch_desc *ad = NULL;
    if ((rc = load_hparams(m, &ad)))
        goto fail;
    model_hparams *hp = &m->hp;

    const gguf_tensor *te = gguf_find_tensor(g, "token_embd.weight");
    if (!te) {
        rc = err_set(SOV_EFORMAT, "tensor 'token_embd.weight' is missing");
        goto fail;
    }
    if (te->ne[1] < 1 || te->ne[1] > INT32_MAX) {
        rc = err_set(SOV_EFORMAT, "tensor 'token_embd.weight' has an invalid vocabulary size %" PRId64, te->ne[1]);
        goto fail;
    }
    hp->n_vocab = (int32_t)te->ne[1];
    const int64_t E = hp->n_embd, Q = (int64_t)hp->n_head * hp->head_dim,
                  KV = (int64_t)hp->n_head_kv * hp->head_dim, V = hp->n_vocab;
    if ((rc = want(m, "token_embd.weight", E, V, false, &m->tok_embd)) ||
        (rc = want(m, "output_norm.weight", E, 1, false, &m->out_norm)) ||
        (rc = want(m, "output.weight", E, V, true, &m->output)))
        goto fail;
    if (!m->output)
        m->output = m->tok_embd; /* tied embeddings */

    /* n_ff from metadata, else from the first layer's gate tensor */
    const gguf_tensor *g0 = gguf_find_tensor(g, "blk.0.ffn_gate.weight");
    if ((rc = get_int(g, ad->name, "feed_forward_length", false, g0 ? g0->ne[1] : 0, 1, 1 << 24, &hp->n_ff)))
        goto fail;
    const int64_t F = hp->n_ff;

    m->layers = calloc((size_t)hp->n_layer, sizeof *m->layers);
    if (!m->layers) {
        rc = err_set(SOV_ENOMEM, "out of memory");
        goto fail;
    }
    for (int l = 0; l < hp->n_layer; l++) {
        model_layer *L = &m->layers[l];
        char n[96];
#define W(field, suffix, ne0, ne1, opt) \
    snprintf(n, sizeof n, "blk.%d.%s", l, suffix); \
    if ((rc = want(m, n, ne0, ne1, opt, &L->field))) \
        goto fail;
        W(attn_norm, "attn_norm.weight", E, 1, false)
        W(wq, "attn_q.weight", E, Q, false)
        W(wk, "attn_k.weight", E, KV, false)
        W(wv, "attn_v.weight", E, KV, false)
        W(wo, "attn_output.weight", Q, E, false)
        W(bq, "attn_q.bias", Q, 1, !ad->qkv_bias)
        W(bk, "attn_k.bias", KV, 1, !ad->qkv_bias)
        W(bv, "attn_v.bias", KV, 1, !ad->qkv_bias)
        W(ffn_norm, "ffn_norm.weight", E, 1, false)
        W(ffn_gate, "ffn_gate.weight", E, F, false)
        W(ffn_up, "ffn_up.weight", E, F, false)
        W(ffn_down, "ffn_down.weight", F, E, false)
#undef W
    }

    rc = vocab_load(&m->vocab, g);
    if (rc == SOV_ENOTFOUND) {
        m->vocab = NULL; /* weights only: fine for info, not for run */
    } else if (rc) {
        goto fail;
    } else if (vocab_n_tokens(m->vocab) > hp->n_vocab) {
        rc = err_set(SOV_EFORMAT, "tokenizer has %d tokens but the embedding only %d rows",
                     vocab_n_tokens(m->vocab), hp->n_vocab);
        goto fail;
    }
    *out = m;
    return 0;
fail:
    model_free(m);
    return rc;
}

int model_load(model **out, const char *path) { return model_load_mode(out, path, true); }

/* Rewrites t in the r16 layout if the best kernel table has a gemm_r16 for
 * its type and its rows come in whole groups of 16, else in the x8 layout
 * if it has a gemm_x8 and the rows come in groups of 8; else leaves it. */
static int pack_one(const gguf_tensor *t, const kern_ops *ops)
{
    gguf_tensor *w = (gguf_tensor *)t; /* the model owns its gguf: not const underneath */
    if (!t || t->layout != KL_PLAIN)
        return 0;
    const uint64_t rb = t->nbytes / (uint64_t)t->ne[1];
    int rc = 0;
    if (kern_r16_type(t->type) && ops->gemm_r16[t->type] && t->ne[1] % 16 == 0) {
        if ((rc = kern_r16_pack(t->type, (void *)t->data, rb, t->ne[1], t->ne[0])) == 0)
            w->layout = KL_R16;
    } else if (kern_x8_type(t->type) && ops->gemm_x8[t->type] && t->ne[1] % 8 == 0) {
        if ((rc = kern_x8_pack(t->type, (void *)t->data, rb, t->ne[1], t->ne[0])) == 0)
            w->layout = KL_X8;
    }
    if (rc)
        return err_set(rc, "tensor '%.*s': %s", (int)t->name.len, t->name.ptr, err_msg());
    return 0;
}

/* The matrices that only meet activations in gemm go to the r16 or x8
 * layout (the token embedding stays: rows of it are looked up one at a
 * time); bar p (may be NULL) counts their bytes. */
static int pack_weights(model *m, progress *p, const char *label)
{
    const kern_ops *ops = kern_best();
    int rc = file_map_protect(&m->g->map, true);
    if (rc)
        return rc;
    uint64_t total = 0;
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1)
            progress_reset(p, label, 0, total);
        for (int32_t l = 0; l < m->hp.n_layer && !rc; l++) {
            const model_layer *L = &m->layers[l];
            const gguf_tensor *mats[] = {L->wq, L->wk, L->wv, L->wo, L->ffn_gate, L->ffn_up, L->ffn_down};
            for (size_t i = 0; i < sizeof mats / sizeof mats[0] && !rc; i++) {
                if (!mats[i])
                    continue;
                if (pass == 0) {
                    total += mats[i]->nbytes;
                } else {
                    rc = pack_one(mats[i], ops);
                    progress_add(p, mats[i]->nbytes);
                }
            }
        }
        if (m->output != m->tok_embd && m->output) {
            if (pass == 0)
                total += m->output->nbytes;
            else if (!rc) {
                rc = pack_one(m->output, ops);
                progress_add(p, m->output->nbytes);
            }
        }
    }
    int rc2 = file_map_protect(&m->g->map, false);
    return rc ? rc : rc2;
}

int model_load_mode(model **out, const char *path, bool use_mmap)
{
    return model_load_progress(out, path, use_mmap, NULL);
}

int model_load_progress(model **out, const char *path, bool use_mmap, progress *p)
{
    gguf *g = NULL;
    char label[96];
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    snprintf(label, sizeof label, "reading %.80s", base);
    if (!use_mmap)
        progress_reset(p, label, 0, 0);
    int rc = gguf_load_progress(&g, path, use_mmap, p);
    if (rc)
        return rc;
    rc = model_from_gguf(out, g, true);
    if (rc)
        return err_set(rc, "%s: %s", path, err_msg());
    snprintf(label, sizeof label, "repacking %.78s", base);
    if (!use_mmap && (rc = pack_weights(*out, p, label)) != 0) {
        model_free(*out);
        *out = NULL;
        return err_set(rc, "%s: %s", path, err_msg());
    }
    return 0;
}

void model_free(model *m)
{
    if (!m)
        return;
    vocab_free(m->vocab);
    free(m->layers);
    if (m->own_gguf)
        gguf_close(m->g);
    free(m);
}

uint64_t model_weight_bytes(const model *m)
{
    uint64_t s = 0;
    for (uint64_t i = 0; i < m->g->n_tensors; i++)
        s += m->g->tensors[i].nbytes;
    return s;
}

uint64_t model_kv_bytes(const model_hparams *hp, int64_t n_ctx, int64_t n_seq)
{
    return 2ull * (uint64_t)hp->n_layer * (uint64_t)n_ctx * (uint64_t)n_seq *
           (uint64_t)hp->n_head_kv * (uint64_t)hp->head_dim * sizeof(float);
}
