/* gguf: a plan_model from a GGUF file's metadata and tensor table. */
#include "gguf.h"

#include "../base/err.h"
#include "../format/gguf.h"
#include "../format/ttype.h"

#include <stdio.h>
#include <string.h>

/* ARCH.key as an integer, or def when absent (or of another type). */
static int64_t key_i64(const gguf *g, const char *arch, const char *key, int64_t def)
{
    char k[160];
    snprintf(k, sizeof k, "%s.%s", arch, key);
    int64_t v;
    return gguf_get_i64(g, k, &v) == 0 ? v : def;
}

static bool name_has(const gguf_tensor *t, const char *s)
{
    char n[128];
    gguf_str_copy(t->name, n, sizeof n);
    return strstr(n, s) != NULL;
}

int plan_gguf_model(const char *path, plan_model *m, char *quant, size_t qcap)
{
    memset(m, 0, sizeof *m);
    if (qcap)
        quant[0] = 0;
    gguf *g = NULL;
    int rc = gguf_open(&g, path);
    if (rc)
        return rc;
    gguf_str as;
    char arch[64];
    if (gguf_get_str(g, "general.architecture", &as)) {
        rc = err_set(SOV_EUNSUPPORTED, "%s: no general.architecture key", path);
        goto fail;
    }
    gguf_str_copy(as, arch, sizeof arch);
    m->n_layer = key_i64(g, arch, "block_count", 0);
    m->d_model = key_i64(g, arch, "embedding_length", 0);
    m->n_head = key_i64(g, arch, "attention.head_count", 0);
    if (m->n_layer <= 0 || m->d_model <= 0 || m->n_head <= 0) {
        rc = err_set(SOV_EUNSUPPORTED, "%s: %s has no %s.block_count, embedding_length or attention.head_count",
                     path, arch, arch);
        goto fail;
    }
    m->n_head_kv = key_i64(g, arch, "attention.head_count_kv", m->n_head);
    m->d_head = key_i64(g, arch, "attention.key_length", m->d_model / m->n_head);
    int64_t dv = key_i64(g, arch, "attention.value_length", m->d_head);
    m->d_head_v = dv != m->d_head ? dv : 0;
    m->d_ff = key_i64(g, arch, "feed_forward_length", 0);
    m->ctx_train = key_i64(g, arch, "context_length", 0);
    m->n_expert = key_i64(g, arch, "expert_count", 0);
    m->n_expert_used = key_i64(g, arch, "expert_used_count", 0);
    m->d_ff_expert = key_i64(g, arch, "expert_feed_forward_length", 0);
    m->n_shared_expert = key_i64(g, arch, "expert_shared_count", 0);
    m->n_layer_dense = key_i64(g, arch, "leading_dense_block_count", 0);
    m->kv_lora_rank = key_i64(g, arch, "attention.kv_lora_rank", 0);
    m->q_lora_rank = key_i64(g, arch, "attention.q_lora_rank", 0);
    if (m->kv_lora_rank > 0)
        m->d_head_rope = key_i64(g, arch, "rope.dimension_count", 0);

    const gguf_tensor *embd = gguf_find_tensor(g, "token_embd.weight");
    m->tied_embd = gguf_find_tensor(g, "output.weight") == NULL;
    if (embd && embd->n_dims >= 2)
        m->n_vocab = embd->ne[1];
    const double share = m->n_expert > 0 && m->n_expert_used > 0
                             ? (double)m->n_expert_used / (double)m->n_expert
                             : 1.0;
    /* the matrix type: the one holding the most bytes of 2-D+ tensors */
    double type_bytes[64] = {0};
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const gguf_tensor *t = &g->tensors[i];
        double n = (double)gguf_tensor_nelements(t), b = (double)t->nbytes;
        m->params += n;
        m->file_bytes += b;
        if (t == embd && !m->tied_embd) {
            double rows = t->n_dims >= 2 && t->ne[1] > 0 ? (double)t->ne[1] : 1.0;
            m->params_active += n / rows;
            m->file_active_bytes += b / rows;
        } else if (name_has(t, "_exps")) {
            m->params_active += n * share;
            m->file_active_bytes += b * share;
        } else {
            m->params_active += n;
            m->file_active_bytes += b;
        }
        if (t->n_dims >= 2 && t->type < 64 && t != embd)
            type_bytes[t->type] += b;
    }
    int best = -1;
    for (int t = 0; t < 64; t++)
        if (type_bytes[t] > 0 && (best < 0 || type_bytes[t] > type_bytes[best]))
            best = t;
    if (qcap && best >= 0) {
        const char *tn = ttype_name((uint32_t)best);
        snprintf(quant, qcap, "%s", tn ? tn : "?");
        for (char *p = quant; *p; p++)
            *p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
    }
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    snprintf(m->id, sizeof m->id, "%s", base);
    size_t l = strlen(m->id);
    if (l > 5 && !strcmp(m->id + l - 5, ".gguf"))
        m->id[l - 5] = 0;
    gguf_close(g);
    return 0;
fail:
    gguf_close(g);
    return rc;
}
