/* Architecture variants built from stories260K must compute the same
 * function: `mistral` (same layout), `qwen2` (NeoX RoPE: q/k rows in split-
 * halves order, QKV biases), and llama with optional biases. */
#include "t.h"

#include "base/err.h"
#include "engine/forward.h"
#include "format/gguf.h"
#include "format/gguf_write.h"
#include "engine/model.h"
#include "format/ttype.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { POSITIONS = 4 };
static const int32_t toks[POSITIONS] = {1, 403, 407, 261};

/* logits of POSITIONS tokens, all positions, into out[POSITIONS][n_vocab] */
static int run_logits(const char *path, float *out, int *n_vocab)
{
    model *m = NULL;
    forward *f = NULL;
    int rc = model_load(&m, path);
    if (rc)
        return rc;
    *n_vocab = m->hp.n_vocab;
    if ((rc = forward_new(&f, m, 16, 1, NULL)))
        goto done;
    int32_t pos[POSITIONS];
    int8_t want[POSITIONS];
    for (int i = 0; i < POSITIONS; i++) {
        pos[i] = i;
        want[i] = 1;
    }
    forward_batch b = {.n = POSITIONS, .token = toks, .pos = pos, .logits = want};
    if ((rc = forward_decode(f, &b)))
        goto done;
    for (int i = 0; i < POSITIONS; i++)
        memcpy(out + (size_t)i * m->hp.n_vocab, forward_logits(f, i), sizeof(float) * (size_t)m->hp.n_vocab);
done:
    forward_free(f);
    model_free(m);
    return rc;
}

/* max |a-b| / (1e-5 |b| + 1e-5) over n values */
static double worst(const float *a, const float *b, int n)
{
    double w = 0;
    for (int i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]) / (1e-5 * fabs(b[i]) + 1e-5);
        if (e > w)
            w = e;
    }
    return w;
}

/* interleaved (2i, 2i+1) rows of each head -> split halves (i, i + hd/2) */
static float *to_neox(const gguf_tensor *t, int n_heads, int head_dim)
{
    int64_t cols = t->ne[0];
    float *dst = malloc((size_t)t->nbytes);
    const float *src = t->data;
    if (!dst)
        return NULL;
    for (int h = 0; h < n_heads; h++)
        for (int r = 0; r < head_dim; r++) {
            int nr = (r % 2 == 0) ? r / 2 : r / 2 + head_dim / 2;
            memcpy(dst + ((int64_t)h * head_dim + nr) * cols, src + ((int64_t)h * head_dim + r) * cols,
                   sizeof(float) * (size_t)cols);
        }
    return dst;
}

static float *vec_neox(const float *v, int n_heads, int head_dim)
{
    float *d = malloc(sizeof(float) * (size_t)n_heads * head_dim);
    for (int h = 0; d && h < n_heads; h++)
        for (int r = 0; r < head_dim; r++)
            d[h * head_dim + ((r % 2 == 0) ? r / 2 : r / 2 + head_dim / 2)] = v[h * head_dim + r];
    return d;
}

/* Writes a variant of g: architecture `arch`; neox permutes q/k; bias >= 0
 * adds QKV biases (deterministic pseudo-random values of scale `bias`; 0 gives
 * all-zero biases), bias < 0 adds none. */
static int write_variant(const gguf *g, const model_hparams *hp, const char *arch, bool neox, float bias,
                         const char *path)
{
    gguf_writer *w = NULL;
    int rc = gguf_writer_new(&w);
    if (rc)
        return rc;
    for (uint64_t i = 0; i < g->n_kv && !rc; i++) {
        char key[256];
        gguf_str_copy(g->kv[i].key, key, sizeof key);
        if (!strcmp(key, "general.alignment"))
            continue;
        if (!strncmp(key, "llama.", 6)) {
            char nk[300];
            snprintf(nk, sizeof nk, "%s.%s", arch, key + 6);
            rc = gguf_w_set_value(w, nk, &g->kv[i].val);
        } else if (!strcmp(key, "general.architecture")) {
            rc = gguf_w_set_str(w, key, arch);
        } else {
            rc = gguf_w_set_value(w, key, &g->kv[i].val);
        }
    }
    int hd = hp->head_dim;
    for (uint64_t i = 0; i < g->n_tensors && !rc; i++) {
        const gguf_tensor *t = &g->tensors[i];
        char name[256];
        gguf_str_copy(t->name, name, sizeof name);
        bool is_q = strstr(name, "attn_q.weight") != NULL, is_k = strstr(name, "attn_k.weight") != NULL;
        if (neox && (is_q || is_k))
            rc = gguf_w_add_tensor_owned(w, name, t->type, t->n_dims, t->ne,
                                         to_neox(t, is_q ? hp->n_head : hp->n_head_kv, hd), t->nbytes);
        else
            rc = gguf_w_add_tensor(w, name, t->type, t->n_dims, t->ne, t->data, t->nbytes);
    }
    for (int l = 0; l < hp->n_layer && !rc && bias >= 0; l++) {
        const char *sfx[3] = {"attn_q.bias", "attn_k.bias", "attn_v.bias"};
        int heads[3] = {hp->n_head, hp->n_head_kv, hp->n_head_kv};
        for (int j = 0; j < 3 && !rc; j++) {
            int64_t n = (int64_t)heads[j] * hd;
            float *b = malloc(sizeof(float) * (size_t)n);
            if (!b)
                return -3;
            for (int64_t e = 0; e < n; e++) /* same values in the interleaved layout for both variants */
                b[e] = bias * sinf(1.7f * (float)(e + 31 * l + 7 * j));
            if (neox && j < 2) {
                float *p = vec_neox(b, heads[j], hd);
                free(b);
                b = p;
            }
            char name[64];
            snprintf(name, sizeof name, "blk.%d.%s", l, sfx[j]);
            rc = gguf_w_add_tensor_owned(w, name, SOV_F32, 1, &n, b, sizeof(float) * (uint64_t)n);
        }
    }
    if (!rc)
        rc = gguf_w_write(w, path);
    gguf_writer_free(w);
    return rc;
}

int main(void)
{
    char dir[] = "/tmp/sov-arch-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    model *m = NULL;
    if (!t_check(model_load(&m, t_shared("models/stories260K.gguf")) == 0, "load stories260K", "%s", err_msg()))
        return t_done();
    int nv = m->hp.n_vocab;
    float *ref = malloc(sizeof(float) * POSITIONS * (size_t)nv), *got = malloc(sizeof(float) * POSITIONS * (size_t)nv),
          *got2 = malloc(sizeof(float) * POSITIONS * (size_t)nv);
    int n = 0;
    run_logits(t_shared("models/stories260K.gguf"), ref, &n);

    struct { const char *arch; bool neox; float bias; const char *file; } v[] = {
        {"mistral", false, -1, "mistral.gguf"},
        {"qwen2", true, 0, "qwen2-zero-bias.gguf"},
        {"qwen2", true, 0.05f, "qwen2-bias.gguf"},
        {"llama", false, 0.05f, "llama-bias.gguf"},
        {"qwen2", true, -1, "qwen2-no-bias.gguf"},
    };
    char path[5][256];
    for (int i = 0; i < 5; i++) {
        snprintf(path[i], sizeof path[i], "%s/%s", dir, v[i].file);
        int rc = write_variant(m->g, &m->hp, v[i].arch, v[i].neox, v[i].bias, path[i]);
        char name[128];
        snprintf(name, sizeof name, "write %s", v[i].file);
        t_check(rc == 0, name, "%s", err_msg());
    }
    int rc = run_logits(path[0], got, &n);
    t_check(rc == 0 && memcmp(got, ref, sizeof(float) * POSITIONS * (size_t)nv) == 0,
            "mistral computes exactly what llama does", "rc %d %s", rc, err_msg());
    rc = run_logits(path[1], got, &n);
    double w = rc ? 1e9 : worst(got, ref, POSITIONS * nv);
    t_check(w <= 1.0, "qwen2 (neox rope on permuted q/k) matches llama within 1e-5", "rc %d worst/tol %.3g", rc, w);
    rc = run_logits(path[2], got, &n);
    int rc2 = run_logits(path[3], got2, &n);
    w = (rc || rc2) ? 1e9 : worst(got, got2, POSITIONS * nv);
    t_check(w <= 1.0, "qwen2 with QKV bias matches llama with the same biases", "rc %d/%d worst/tol %.3g", rc, rc2, w);
    t_check(rc2 == 0 && worst(got2, ref, POSITIONS * nv) > 100, "biases change the result", "no effect");

    rc = run_logits(path[4], got, &n);
    t_check(rc == SOV_EFORMAT && strstr(err_msg(), "tensor 'blk.0.attn_q.bias' is missing"),
            "qwen2 without biases is rejected by name", "rc %d %s", rc, err_msg());

    for (int i = 0; i < 5; i++)
        unlink(path[i]);
    rmdir(dir);
    free(ref);
    free(got);
    free(got2);
    model_free(m);
    return t_done();
}
