#include "forward.h"

#include "../base/err.h"
#include "attn.h"
#include "kern/kern.h"
#include "kv.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_BATCH 512
#define ATT_QB 16 /* query tokens per attention work item */

struct forward {
    const model *m;
    pool *pool;
    int n_threads;
    const kern_ops *ops;
    kv_cache kv;
    int32_t n_batch;     /* tokens per chunk; scratch rows */
    double *inv_freq;    /* [n_rot/2] rope frequencies */
    /* scratch, n_batch rows each */
    float *x;            /* [B][E] residual stream */
    float *xb;           /* [B][max(E,Q)] normed input / projections */
    float *q, *o;        /* [B][Q] queries, attention output */
    float *k, *v;        /* [B][KV] new keys / values */
    float *h1, *h2;      /* [B][F] FFN gate / up */
    unsigned char *xq;   /* [B][xq_row] activations in a kern x format, 64-aligned */
    uint64_t xq_row;
    const float *xq_src; /* what xq holds now: rows of xq_src in xq_fmt (NULL: nothing) */
    uint32_t xq_fmt;
    int64_t xq_k;
    float *normw;        /* dequantized norm / bias vector, [max(E,Q,F)] */
    float *att_scratch;  /* [n_threads][att_scratch] */
    int64_t att_scratch_n;
    int32_t *seq_last;   /* [n_seq] last position of each sequence in the current chunk */
    int32_t *lrow;       /* [B] batch index of each row that wants logits */
    float *logits;       /* [logits_cap][n_vocab] */
    int32_t logits_cap, n_logits;
};

/* Below this many multiply-adds an op runs on the calling thread: waking the
 * pool costs more than it saves. Results do not depend on the choice (each
 * output is computed the same way by whichever thread owns it). */
#define PAR_MIN_WORK 32768

static void run(forward *f, pool_fn fn, void *arg, int64_t work)
{
    if (f->pool && work >= PAR_MIN_WORK)
        pool_run(f->pool, fn, arg);
    else
        fn(arg, 0, 1);
}

/* ---- activations -> x format, rows split across threads ---- */
typedef struct {
    const kern_ops *ops;
    uint32_t fmt;
    const float *src;
    int64_t src_stride, k;
    unsigned char *dst;
    uint64_t dst_row;
    int32_t n;
} qx_job;

static void qx_worker(void *arg, int ith, int nth)
{
    qx_job *j = arg;
    for (int32_t i = j->n * ith / nth; i < j->n * (ith + 1) / nth; i++)
        j->ops->quant_x[j->fmt](j->src + i * j->src_stride, j->dst + (uint64_t)i * j->dst_row, j->k);
}

/* Makes f->xq hold rows src[i*stride .. +k) for i < n in the x format of
 * weight type `type`; reuses what is there if it is the same input. */
static void quant_rows(forward *f, uint32_t type, const float *src, int64_t stride, int64_t k, int32_t n)
{
    uint32_t fmt = kern_xfmt(type);
    if (f->xq_src == src && f->xq_fmt == fmt && f->xq_k == k)
        return;
    qx_job j = {f->ops, fmt, src, stride, k, f->xq, f->xq_row, n};
    run(f, qx_worker, &j, k * n * 4);
    f->xq_src = src;
    f->xq_fmt = fmt;
    f->xq_k = k;
}

/* ---- threaded matrix products ---- */
typedef struct {
    const kern_ops *ops;
    const gguf_tensor *W;
    const unsigned char *X;
    uint64_t x_row;
    float *out;
    int64_t ldo, nc;
} mm_job;

#define MM_RB 64 /* weight rows per cache block */
#define MM_CB 64 /* activation rows per cache block */

static void mm_worker(void *arg, int ith, int nth)
{
    mm_job *j = arg;
    int64_t rows = j->W->ne[1], k = j->W->ne[0];
    /* split on multiples of 16 rows so SIMD tiles stay whole */
    int64_t units = (rows + 15) / 16;
    int64_t r0 = units * ith / nth * 16, r1 = units * (ith + 1) / nth * 16;
    if (r1 > rows)
        r1 = rows;
    uint64_t row_bytes = j->W->nbytes / (uint64_t)rows;
    kern_gemm_fn gemm = j->ops->gemm[j->W->type];
    const unsigned char *w = j->W->data;
    int64_t rb = j->nc == 1 ? r1 - r0 : MM_RB;
    for (int64_t c0 = 0; c0 < j->nc; c0 += MM_CB) {
        int64_t nc = j->nc - c0 < MM_CB ? j->nc - c0 : MM_CB;
        for (int64_t ra = r0; ra < r1; ra += rb) {
            int64_t nr = r1 - ra < rb ? r1 - ra : rb;
            gemm(w + (uint64_t)ra * row_bytes, row_bytes, j->X + (uint64_t)c0 * j->x_row, j->x_row,
                 j->out + c0 * j->ldo + ra, j->ldo, k, nr, nc);
        }
    }
}

// out[c][r] = W[r,k] . X[c,k] for c < n rows of src (stride floats apart), out rows ldo apart
static void matmul(forward *f, const gguf_tensor *W, const float *src, int64_t stride, int32_t n, float *out,
                   int64_t ldo)
{
    quant_rows(f, W->type, src, stride, W->ne[0], n);
    mm_job j = {f->ops, W, f->xq, f->xq_row, out, ldo, n};
    run(f, mm_worker, &j, W->ne[0] * W->ne[1] * n);
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

/* ---- row-parallel elementwise steps of a chunk ---- */
typedef struct {
    int op;              /* ROW_NORM, ROW_SWIGLU, ROW_ADD */
    float *out;
    const float *a, *b;  /* NORM: a = input rows, b = weights; SWIGLU: a = gate (out), b = up; ADD: out += a */
    int64_t dim;
    int32_t n;
    float eps;
} row_job;

enum { ROW_NORM, ROW_SWIGLU, ROW_ADD };

static void row_worker(void *arg, int ith, int nth)
{
    row_job *j = arg;
    for (int32_t r = j->n * ith / nth; r < j->n * (ith + 1) / nth; r++) {
        float *o = j->out + r * j->dim;
        const float *a = j->a + r * j->dim;
        if (j->op == ROW_NORM) {
            rmsnorm(o, a, j->b, (int)j->dim, j->eps);
        } else if (j->op == ROW_SWIGLU) {
            const float *u = j->b + r * j->dim;
            for (int64_t i = 0; i < j->dim; i++)
                o[i] = a[i] / (1.0f + expf(-a[i])) * u[i]; // silu(gate) * up
        } else {
            for (int64_t i = 0; i < j->dim; i++)
                o[i] += a[i];
        }
    }
}

static void rows(forward *f, int op, float *out, const float *a, const float *b, int64_t dim, int32_t n)
{
    row_job j = {op, out, a, b, dim, n, f->m->hp.rms_eps};
    run(f, row_worker, &j, n > 1 ? dim * n * 8 : 0);
}

static void vec_dequant(forward *f, const gguf_tensor *t, float *dst)
{
    f->ops->dequant[t->type](t->data, dst, gguf_tensor_nelements(t));
}

// y[j][i] += b[i] for the n rows of y (stride floats apart)
static void add_bias(forward *f, const gguf_tensor *b, float *y, int64_t stride, int dim, int32_t n)
{
    if (!b)
        return;
    vec_dequant(f, b, f->normw);
    for (int32_t j = 0; j < n; j++)
        for (int i = 0; i < dim; i++)
            y[j * stride + i] += f->normw[i];
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

/* ---- attention: work items = (block of <= ATT_QB consecutive positions of
 * one sequence) x (kv head), dealt round-robin to the threads ---- */
typedef struct {
    int32_t j0, nq, kvh;
} att_item;

typedef struct {
    forward *f;
    int32_t layer;
    const int32_t *pos, *seq;
    const att_item *items;
    int32_t n_items;
} att_job;

static void att_worker(void *arg, int ith, int nth)
{
    att_job *j = arg;
    forward *f = j->f;
    const model_hparams *hp = &f->m->hp;
    int hd = hp->head_dim, G = hp->n_head / hp->n_head_kv, Q = hp->n_head * hd;
    float *scratch = f->att_scratch + (int64_t)ith * f->att_scratch_n;
    for (int32_t w = ith; w < j->n_items; w += nth) {
        const att_item *it = &j->items[w];
        int32_t seq = j->seq ? j->seq[it->j0] : 0;
        attn_block b = {
            .nq = it->nq,
            .n_group = G,
            .head_dim = hd,
            .pos = j->pos + it->j0,
            .q = f->q + (int64_t)it->j0 * Q + (int64_t)it->kvh * G * hd,
            .q_stride = Q,
            .k = kv_k(&f->kv, j->layer, seq, 0) + (int64_t)it->kvh * hd,
            .v = kv_v(&f->kv, j->layer, seq, 0) + (int64_t)it->kvh * hd,
            .kv_stride = f->kv.row,
            .out = f->o + (int64_t)it->j0 * Q + (int64_t)it->kvh * G * hd,
            .out_stride = Q,
            .scale = 1.0f / sqrtf((float)hd),
        };
        attn_run(&b, scratch);
    }
}

int forward_new(forward **out, const model *m, int32_t n_ctx, int32_t n_seq, pool *p)
{
    *out = NULL;
    forward *f = calloc(1, sizeof *f);
    if (!f)
        return err_set(SOV_ENOMEM, "out of memory");
    f->m = m;
    f->pool = p;
    f->n_threads = p ? pool_size(p) : 1;
    f->ops = kern_best();
    int rc = kv_init(&f->kv, &m->hp, n_ctx, n_seq);
    if (rc)
        goto fail;
    f->inv_freq = malloc(sizeof(double) * (size_t)(m->hp.n_rot / 2 + 1));
    f->seq_last = malloc(sizeof(int32_t) * (size_t)n_seq);
    if (!f->inv_freq || !f->seq_last) {
        rc = err_set(SOV_ENOMEM, "out of memory");
        goto fail;
    }
    for (int i = 0; i < m->hp.n_rot / 2; i++)
        f->inv_freq[i] = pow((double)m->hp.rope_base, -2.0 * i / m->hp.n_rot);
    if ((rc = forward_set_batch(f, DEFAULT_BATCH < n_ctx ? DEFAULT_BATCH : n_ctx)))
        goto fail;
    *out = f;
    return 0;
fail:
    forward_free(f);
    return rc;
}

static void free_scratch(forward *f)
{
    free(f->x);
    free(f->xb);
    free(f->q);
    free(f->o);
    free(f->k);
    free(f->v);
    free(f->h1);
    free(f->h2);
    free(f->xq);
    free(f->normw);
    free(f->att_scratch);
    free(f->lrow);
    f->x = f->xb = f->q = f->o = f->k = f->v = f->h1 = f->h2 = f->normw = f->att_scratch = NULL;
    f->xq = NULL;
    f->lrow = NULL;
    f->xq_src = NULL;
}

int forward_set_batch(forward *f, int32_t n_batch)
{
    if (n_batch < 1 || n_batch > 65536)
        return err_set(SOV_EINVAL, "batch size %d out of range 1..65536", n_batch);
    const model_hparams *hp = &f->m->hp;
    int64_t E = hp->n_embd, Q = (int64_t)hp->n_head * hp->head_dim, KV = (int64_t)hp->n_head_kv * hp->head_dim,
            F = hp->n_ff, B = n_batch;
    int64_t EQ = E > Q ? E : Q, big = EQ > F ? EQ : F;
    free_scratch(f);
    f->n_batch = n_batch;
    f->xq_row = kern_x_row_bytes(KX_F32, big); /* the widest format */
    f->att_scratch_n = (attn_scratch_floats(ATT_QB, hp->n_head / hp->n_head_kv) + 15) & ~(int64_t)15;
    size_t fl = sizeof(float);
    f->x = malloc(fl * (size_t)(B * E));
    f->xb = malloc(fl * (size_t)(B * EQ));
    f->q = malloc(fl * (size_t)(B * Q));
    f->o = malloc(fl * (size_t)(B * Q));
    f->k = malloc(fl * (size_t)(B * KV));
    f->v = malloc(fl * (size_t)(B * KV));
    f->h1 = malloc(fl * (size_t)(B * F));
    f->h2 = malloc(fl * (size_t)(B * F));
    f->xq = aligned_alloc(64, f->xq_row * (uint64_t)B);
    f->normw = malloc(fl * (size_t)big);
    f->att_scratch = malloc(fl * (size_t)(f->att_scratch_n * f->n_threads));
    f->lrow = malloc(sizeof(int32_t) * (size_t)B);
    if (!f->x || !f->xb || !f->q || !f->o || !f->k || !f->v || !f->h1 || !f->h2 || !f->xq || !f->normw ||
        !f->att_scratch || !f->lrow) {
        free_scratch(f);
        f->n_batch = 0;
        return err_set(SOV_ENOMEM, "out of memory for the scratch of a %d-token batch", n_batch);
    }
    return 0;
}

int32_t forward_batch_size(const forward *f) { return f->n_batch; }

const char *forward_kernels(const forward *f) { return f->ops->name; }

void forward_free(forward *f)
{
    if (!f)
        return;
    kv_free(&f->kv);
    free_scratch(f);
    free(f->inv_freq);
    free(f->seq_last);
    free(f->logits);
    free(f);
}

int32_t forward_n_ctx(const forward *f) { return f->kv.n_ctx; }

/* Evaluates batch entries [i0, i0+n) (positions of each sequence increasing
 * within the chunk) through all layers, then the logits of those that want
 * them. */
static void eval_chunk(forward *f, const forward_batch *b, int32_t i0, int32_t n, att_item *items)
{
    const model *m = f->m;
    const model_hparams *hp = &m->hp;
    const int64_t E = hp->n_embd, hd = hp->head_dim, Q = hp->n_head * hd, KV = hp->n_head_kv * hd, F = hp->n_ff;
    const int32_t *tok = b->token + i0, *pos = b->pos + i0, *seq = b->seq ? b->seq + i0 : NULL;
    uint64_t erow = m->tok_embd->nbytes / (uint64_t)hp->n_vocab;
    for (int32_t j = 0; j < n; j++)
        f->ops->dequant[m->tok_embd->type]((const unsigned char *)m->tok_embd->data + (uint64_t)tok[j] * erow,
                                           f->x + j * E, E);

    /* attention work items: runs of consecutive positions of one sequence,
     * cut into blocks of ATT_QB, times kv heads */
    int32_t n_items = 0;
    for (int32_t j = 0; j < n;) {
        int32_t e = j + 1;
        while (e < n && e - j < ATT_QB && (seq ? seq[e] == seq[j] : 1) && pos[e] == pos[e - 1] + 1)
            e++;
        for (int h = 0; h < hp->n_head_kv; h++)
            items[n_items++] = (att_item){j, e - j, h};
        j = e;
    }
    int64_t att_work = 0;
    for (int32_t j = 0; j < n; j++)
        att_work += (int64_t)(pos[j] + 1) * Q;

    for (int l = 0; l < hp->n_layer; l++) {
        const model_layer *L = &m->layers[l];
        vec_dequant(f, L->attn_norm, f->normw);
        rows(f, ROW_NORM, f->xb, f->x, f->normw, E, n);
        f->xq_src = NULL;
        matmul(f, L->wq, f->xb, E, n, f->q, Q);
        matmul(f, L->wk, f->xb, E, n, f->k, KV);
        matmul(f, L->wv, f->xb, E, n, f->v, KV);
        add_bias(f, L->bq, f->q, Q, (int)Q, n);
        add_bias(f, L->bk, f->k, KV, (int)KV, n);
        add_bias(f, L->bv, f->v, KV, (int)KV, n);
        for (int32_t j = 0; j < n; j++) {
            int32_t s = seq ? seq[j] : 0;
            rope(f, f->q + j * Q, hp->n_head, pos[j]);
            rope(f, f->k + j * KV, hp->n_head_kv, pos[j]);
            memcpy(kv_k(&f->kv, l, s, pos[j]), f->k + j * KV, sizeof(float) * (size_t)KV);
            memcpy(kv_v(&f->kv, l, s, pos[j]), f->v + j * KV, sizeof(float) * (size_t)KV);
        }

        att_job aj = {f, l, pos, seq, items, n_items};
        run(f, att_worker, &aj, att_work);
        matmul(f, L->wo, f->o, Q, n, f->xb, E);
        rows(f, ROW_ADD, f->x, f->xb, NULL, E, n);

        vec_dequant(f, L->ffn_norm, f->normw);
        rows(f, ROW_NORM, f->xb, f->x, f->normw, E, n);
        f->xq_src = NULL;
        matmul(f, L->ffn_gate, f->xb, E, n, f->h1, F);
        matmul(f, L->ffn_up, f->xb, E, n, f->h2, F);
        rows(f, ROW_SWIGLU, f->h1, f->h1, f->h2, F, n);
        matmul(f, L->ffn_down, f->h1, F, n, f->xb, E);
        rows(f, ROW_ADD, f->x, f->xb, NULL, E, n);
    }

    /* logits: the rows that want them, normed into xb, one product */
    int32_t nl = 0;
    for (int32_t j = 0; j < n; j++)
        if (b->logits ? b->logits[i0 + j] != 0 : i0 + j == b->n - 1)
            f->lrow[nl++] = j;
    if (!nl)
        return;
    vec_dequant(f, m->out_norm, f->normw);
    for (int32_t r = 0; r < nl; r++)
        rmsnorm(f->xb + r * E, f->x + f->lrow[r] * E, f->normw, (int)E, hp->rms_eps);
    f->xq_src = NULL;
    matmul(f, m->output, f->xb, E, nl, f->logits + (int64_t)f->n_logits * hp->n_vocab, hp->n_vocab);
    f->n_logits += nl;
}

int forward_decode(forward *f, const forward_batch *b)
{
    const model_hparams *hp = &f->m->hp;
    if (f->n_batch < 1)
        return err_set(SOV_ENOMEM, "forward context has no scratch (a batch resize failed)");
    int32_t want = 0;
    for (int32_t i = 0; i < b->n; i++) {
        int32_t tok = b->token[i], pos = b->pos[i], seq = b->seq ? b->seq[i] : 0;
        if (tok < 0 || tok >= hp->n_vocab)
            return err_set(SOV_EINVAL, "token id %d out of range 0..%d", tok, hp->n_vocab - 1);
        if (pos < 0 || pos >= f->kv.n_ctx)
            return err_set(SOV_ERANGE, "position %d outside the context of %d tokens", pos, f->kv.n_ctx);
        if (seq < 0 || seq >= f->kv.n_seq)
            return err_set(SOV_EINVAL, "sequence %d out of range 0..%d", seq, f->kv.n_seq - 1);
        want += b->logits ? (b->logits[i] != 0) : (i == b->n - 1);
    }
    if (want > f->logits_cap) {
        float *nl = realloc(f->logits, sizeof(float) * (size_t)want * (size_t)hp->n_vocab);
        if (!nl)
            return err_set(SOV_ENOMEM, "out of memory for logits");
        f->logits = nl;
        f->logits_cap = want;
    }
    att_item *items = malloc(sizeof *items * (size_t)f->n_batch * (size_t)hp->n_head_kv);
    if (!items)
        return err_set(SOV_ENOMEM, "out of memory");
    f->n_logits = 0;
    /* chunks of at most n_batch entries in which every sequence's positions
     * increase, so evaluating a chunk at once equals evaluating it in order */
    for (int32_t i0 = 0; i0 < b->n;) {
        for (int32_t s = 0; s < f->kv.n_seq; s++)
            f->seq_last[s] = -1;
        int32_t n = 0;
        while (i0 + n < b->n && n < f->n_batch) {
            int32_t s = b->seq ? b->seq[i0 + n] : 0;
            if (b->pos[i0 + n] <= f->seq_last[s])
                break;
            f->seq_last[s] = b->pos[i0 + n];
            n++;
        }
        eval_chunk(f, b, i0, n, items);
        i0 += n;
    }
    free(items);
    return 0;
}

const float *forward_logits(const forward *f, int32_t k)
{
    if (k < 0 || k >= f->n_logits)
        return NULL;
    return f->logits + (int64_t)k * f->m->hp.n_vocab;
}
