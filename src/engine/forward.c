#include "forward.h"

#include "../base/err.h"
#include "kern/kern.h"
#include "kv.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct forward {
    const model *m;
    pool *pool;
    const kern_ops *ops;
    kv_cache kv;
    double *inv_freq;   /* [n_rot/2] rope frequencies */
    float *x, *xb, *q, *att_out, *hb, *hb2, *normw, *att; /* scratch */
    float *logits;      /* [logits_cap][n_vocab] */
    int32_t logits_cap, n_logits;
};

/* Below this many multiply-adds an op runs on the calling thread: waking the
 * pool costs more than it saves. Results do not depend on the choice (each
 * output row is computed the same way by whichever thread owns it). */
#define PAR_MIN_WORK 32768

/* ---- threaded matrix-vector product ---- */
typedef struct {
    const kern_ops *ops;
    const gguf_tensor *W;
    const float *x;
    float *out;
} mv_job;

static void mv_worker(void *arg, int ith, int nth)
{
    mv_job *j = arg;
    int64_t rows = j->W->ne[1];
    int64_t r0 = rows * ith / nth, r1 = rows * (ith + 1) / nth;
    uint64_t row_bytes = j->W->nbytes / (uint64_t)rows;
    kern_matvec(j->ops, j->W->type, j->W->data, row_bytes, j->x, j->out, j->W->ne[0], r0, r1);
}

// out[n] = W[n,k] @ x[k]   (W is ne[1] rows of ne[0] elements)
static void matvec(forward *f, const gguf_tensor *W, const float *x, float *out)
{
    mv_job j = {f->ops, W, x, out};
    if (f->pool && W->ne[0] * W->ne[1] >= PAR_MIN_WORK)
        pool_run(f->pool, mv_worker, &j);
    else
        mv_worker(&j, 0, 1);
}

/* ---- small ops ---- */
// out[i] = x[i] / sqrt(mean(x^2) + eps) * w[i]
static void rmsnorm(float *out, const float *x, const float *w, int n, float eps)
{
    double ss = 0;
    for (int i = 0; i < n; i++)
        ss += (double)x[i] * x[i];
    float scale = (float)(1.0 / sqrt(ss / n + eps));
    for (int i = 0; i < n; i++)
        out[i] = x[i] * scale * w[i];
}

static void vec_dequant(forward *f, const gguf_tensor *t, float *dst)
{
    f->ops->dequant[t->type](t->data, dst, gguf_tensor_nelements(t));
}

static void add_bias(forward *f, const gguf_tensor *b, float *y, int n)
{
    if (!b)
        return;
    vec_dequant(f, b, f->normw);
    for (int i = 0; i < n; i++)
        y[i] += f->normw[i];
}

// rotate pairs of every head of v[n_heads][head_dim] by position pos
static void rope(const forward *f, float *v, int n_heads, int32_t pos)
{
    const model_hparams *hp = &f->m->hp;
    int half = hp->n_rot / 2;
    double p = (double)pos / hp->rope_scale;
    for (int i = 0; i < half; i++) {
        double th = p * f->inv_freq[i];
        float c = (float)cos(th), s = (float)sin(th);
        for (int h = 0; h < n_heads; h++) {
            float *hv = v + (int64_t)h * hp->head_dim;
            int a = hp->rope_kind == ROPE_NEOX ? i : 2 * i;
            int b = hp->rope_kind == ROPE_NEOX ? i + half : 2 * i + 1;
            float x0 = hv[a], x1 = hv[b];
            hv[a] = x0 * c - x1 * s;
            hv[b] = x0 * s + x1 * c;
        }
    }
}

/* ---- attention over the cache, heads split across threads ---- */
typedef struct {
    forward *f;
    int32_t layer, seq, pos;
} att_job;

static void att_worker(void *arg, int ith, int nth)
{
    att_job *j = arg;
    forward *f = j->f;
    const model_hparams *hp = &f->m->hp;
    int hd = hp->head_dim, group = hp->n_head / hp->n_head_kv;
    float scale = 1.0f / sqrtf((float)hd);
    int h0 = hp->n_head * ith / nth, h1 = hp->n_head * (ith + 1) / nth;
    for (int h = h0; h < h1; h++) {
        const float *qh = f->q + (int64_t)h * hd;
        float *att = f->att + (int64_t)h * f->kv.n_ctx;
        int kvh = h / group;
        float mx = -INFINITY;
        for (int32_t t = 0; t <= j->pos; t++) {
            const float *kt = kv_k(&f->kv, j->layer, j->seq, t) + (int64_t)kvh * hd;
            float s = 0;
            for (int d = 0; d < hd; d++)
                s += qh[d] * kt[d];
            s *= scale;
            att[t] = s;
            if (s > mx)
                mx = s;
        }
        float sum = 0;
        for (int32_t t = 0; t <= j->pos; t++) {
            att[t] = expf(att[t] - mx);
            sum += att[t];
        }
        float inv = 1.0f / sum;
        float *o = f->att_out + (int64_t)h * hd;
        memset(o, 0, sizeof(float) * (size_t)hd);
        for (int32_t t = 0; t <= j->pos; t++) {
            const float *vt = kv_v(&f->kv, j->layer, j->seq, t) + (int64_t)kvh * hd;
            float a = att[t] * inv;
            for (int d = 0; d < hd; d++)
                o[d] += a * vt[d];
        }
    }
}

int forward_new(forward **out, const model *m, int32_t n_ctx, int32_t n_seq, pool *p)
{
    *out = NULL;
    const model_hparams *hp = &m->hp;
    forward *f = calloc(1, sizeof *f);
    if (!f)
        return err_set(SOV_ENOMEM, "out of memory");
    f->m = m;
    f->pool = p;
    f->ops = kern_best();
    int rc = kv_init(&f->kv, hp, n_ctx, n_seq);
    if (rc)
        goto fail;
    int64_t E = hp->n_embd, Q = (int64_t)hp->n_head * hp->head_dim;
    int64_t big = E > Q ? E : Q;
    f->inv_freq = malloc(sizeof(double) * (size_t)(hp->n_rot / 2));
    f->x = malloc(sizeof(float) * (size_t)E);
    f->xb = malloc(sizeof(float) * (size_t)big);
    f->q = malloc(sizeof(float) * (size_t)Q);
    f->att_out = malloc(sizeof(float) * (size_t)Q);
    f->hb = malloc(sizeof(float) * (size_t)hp->n_ff);
    f->hb2 = malloc(sizeof(float) * (size_t)hp->n_ff);
    f->normw = malloc(sizeof(float) * (size_t)(big > hp->n_ff ? big : hp->n_ff));
    f->att = malloc(sizeof(float) * (size_t)hp->n_head * (size_t)n_ctx);
    if (!f->inv_freq || !f->x || !f->xb || !f->q || !f->att_out || !f->hb || !f->hb2 || !f->normw || !f->att) {
        rc = err_set(SOV_ENOMEM, "out of memory for scratch buffers");
        goto fail;
    }
    for (int i = 0; i < hp->n_rot / 2; i++)
        f->inv_freq[i] = pow((double)hp->rope_base, -2.0 * i / hp->n_rot);
    *out = f;
    return 0;
fail:
    forward_free(f);
    return rc;
}

void forward_free(forward *f)
{
    if (!f)
        return;
    kv_free(&f->kv);
    free(f->inv_freq);
    free(f->x);
    free(f->xb);
    free(f->q);
    free(f->att_out);
    free(f->hb);
    free(f->hb2);
    free(f->normw);
    free(f->att);
    free(f->logits);
    free(f);
}

int32_t forward_n_ctx(const forward *f) { return f->kv.n_ctx; }

/* One token through all layers; leaves the final hidden state in f->x. */
static void eval_token(forward *f, int32_t token, int32_t pos, int32_t seq)
{
    const model *m = f->m;
    const model_hparams *hp = &m->hp;
    int E = hp->n_embd, Q = hp->n_head * hp->head_dim, KV = hp->n_head_kv * hp->head_dim;
    uint64_t erow = m->tok_embd->nbytes / (uint64_t)hp->n_vocab;
    f->ops->dequant[m->tok_embd->type]((const unsigned char *)m->tok_embd->data + (uint64_t)token * erow, f->x, E);

    for (int l = 0; l < hp->n_layer; l++) {
        const model_layer *L = &m->layers[l];
        float *kc = kv_k(&f->kv, l, seq, pos), *vc = kv_v(&f->kv, l, seq, pos);
        vec_dequant(f, L->attn_norm, f->normw);
        rmsnorm(f->xb, f->x, f->normw, E, hp->rms_eps);
        matvec(f, L->wq, f->xb, f->q);
        matvec(f, L->wk, f->xb, kc);
        matvec(f, L->wv, f->xb, vc);
        add_bias(f, L->bq, f->q, Q);
        add_bias(f, L->bk, kc, KV);
        add_bias(f, L->bv, vc, KV);
        rope(f, f->q, hp->n_head, pos);
        rope(f, kc, hp->n_head_kv, pos);

        att_job aj = {f, l, seq, pos};
        if (f->pool && (int64_t)Q * (pos + 1) >= PAR_MIN_WORK)
            pool_run(f->pool, att_worker, &aj);
        else
            att_worker(&aj, 0, 1);
        matvec(f, L->wo, f->att_out, f->xb);
        for (int i = 0; i < E; i++)
            f->x[i] += f->xb[i];

        vec_dequant(f, L->ffn_norm, f->normw);
        rmsnorm(f->xb, f->x, f->normw, E, hp->rms_eps);
        matvec(f, L->ffn_gate, f->xb, f->hb);
        matvec(f, L->ffn_up, f->xb, f->hb2);
        for (int i = 0; i < hp->n_ff; i++) {
            float g = f->hb[i];
            f->hb[i] = g / (1.0f + expf(-g)) * f->hb2[i]; // silu(gate) * up
        }
        matvec(f, L->ffn_down, f->hb, f->xb);
        for (int i = 0; i < E; i++)
            f->x[i] += f->xb[i];
    }
}

int forward_decode(forward *f, const forward_batch *b)
{
    const model_hparams *hp = &f->m->hp;
    int32_t want = 0;
    for (int32_t i = 0; i < b->n; i++)
        want += b->logits ? (b->logits[i] != 0) : (i == b->n - 1);
    if (want > f->logits_cap) {
        float *nl = realloc(f->logits, sizeof(float) * (size_t)want * (size_t)hp->n_vocab);
        if (!nl)
            return err_set(SOV_ENOMEM, "out of memory for logits");
        f->logits = nl;
        f->logits_cap = want;
    }
    f->n_logits = 0;
    for (int32_t i = 0; i < b->n; i++) {
        int32_t tok = b->token[i], pos = b->pos[i], seq = b->seq ? b->seq[i] : 0;
        if (tok < 0 || tok >= hp->n_vocab)
            return err_set(SOV_EINVAL, "token id %d out of range 0..%d", tok, hp->n_vocab - 1);
        if (pos < 0 || pos >= f->kv.n_ctx)
            return err_set(SOV_ERANGE, "position %d outside the context of %d tokens", pos, f->kv.n_ctx);
        if (seq < 0 || seq >= f->kv.n_seq)
            return err_set(SOV_EINVAL, "sequence %d out of range 0..%d", seq, f->kv.n_seq - 1);
        eval_token(f, tok, pos, seq);
        bool wl = b->logits ? b->logits[i] != 0 : i == b->n - 1;
        if (!wl)
            continue;
        vec_dequant(f, f->m->out_norm, f->normw);
        rmsnorm(f->xb, f->x, f->normw, hp->n_embd, hp->rms_eps);
        matvec(f, f->m->output, f->xb, f->logits + (int64_t)f->n_logits * hp->n_vocab);
        f->n_logits++;
    }
    return 0;
}

const float *forward_logits(const forward *f, int32_t k)
{
    if (k < 0 || k >= f->n_logits)
        return NULL;
    return f->logits + (int64_t)k * f->m->hp.n_vocab;
}
