#include "forward.h"

#include "../base/err.h"
#include "attn.h"
#include "kern/kern.h"
#include "kv.h"

#include <math.h>
#include <stdatomic.h>
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

/* ---- threaded matrix products ----
 * One job computes up to MM_PARTS products that share their input (q, k, v;
 * gate, up). Their rows are cut into chunks of about MM_CHUNK_BYTES of
 * weights (whole 16-row tiles) which the threads take in turn from an atomic
 * counter, so a thread that got slower memory or started late does less:
 * the split is dynamic, the result is not (each output value is computed by
 * one gemm call with the same instruction sequence whoever runs it). */
#define MM_PARTS 3
#ifndef MM_CHUNK_BYTES
#define MM_CHUNK_BYTES (1u << 20)
#endif
#define MM_CB 64 /* activation rows per cache block */

typedef struct {
    const gguf_tensor *W;
    float *out;
    int64_t ldo;
    int64_t chunk, n_chunk; /* rows per chunk, chunks */
} mm_part;

typedef struct {
    const kern_ops *ops;
    const unsigned char *X;
    uint64_t x_row;
    int64_t nc;
    int n_part;
    bool swiglu; /* parts gate, up: a chunk of both, then gate = silu(gate) * up on its rows */
    mm_part part[MM_PARTS];
    _Alignas(64) atomic_llong next; /* next chunk to take, over the parts in order (own cache line) */
    char pad[64 - sizeof(atomic_llong)];
} mm_job;

// out[c*ldo + r] = W[r,k] . X[c,k] for r in [r0, r1), c < nc
static void mm_rows(const mm_job *j, const mm_part *pt, int64_t r0, int64_t r1)
{
    const gguf_tensor *W = pt->W;
    int64_t k = W->ne[0];
    uint64_t row_bytes = W->nbytes / (uint64_t)W->ne[1];
    /* x8 / r16 tensors were packed for kern_best(), the table forward uses;
     * chunks start at multiples of 16 rows, so at 8- and 16-row groups */
    kern_gemm_fn gemm = W->layout == KL_R16  ? j->ops->gemm_r16[W->type]
                        : W->layout == KL_X8 ? j->ops->gemm_x8[W->type]
                                             : j->ops->gemm[W->type];
    const unsigned char *w = (const unsigned char *)W->data + (uint64_t)r0 * row_bytes;
    for (int64_t c0 = 0; c0 < j->nc; c0 += MM_CB) {
        int64_t nc = j->nc - c0 < MM_CB ? j->nc - c0 : MM_CB;
        gemm(w, row_bytes, j->X + (uint64_t)c0 * j->x_row, j->x_row, pt->out + c0 * pt->ldo + r0, pt->ldo, k,
             r1 - r0, nc);
    }
}

static void mm_worker(void *arg, int ith, int nth)
{
    (void)ith, (void)nth;
    mm_job *j = arg;
    int np = j->swiglu ? 1 : j->n_part;
    for (;;) {
        int64_t i = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed);
        int p = 0;
        while (p < np && i >= j->part[p].n_chunk)
            i -= j->part[p++].n_chunk;
        if (p == np)
            return;
        const mm_part *pt = &j->part[p];
        int64_t rows = pt->W->ne[1], r0 = i * pt->chunk, r1 = r0 + pt->chunk < rows ? r0 + pt->chunk : rows;
        mm_rows(j, pt, r0, r1);
        if (j->swiglu) {
            const mm_part *up = &j->part[1];
            mm_rows(j, up, r0, r1);
            for (int64_t c = 0; c < j->nc; c++) {
                float *g = pt->out + c * pt->ldo;
                const float *u = up->out + c * up->ldo;
                for (int64_t r = r0; r < r1; r++)
                    g[r] = g[r] / (1.0f + expf(-g[r])) * u[r]; // silu(gate) * up
            }
        }
    }
}

/* out_p[c][r] = W_p[r,k] . src[c][k] for the np products (np <= MM_PARTS;
 * all W_p have the same k, and kern x format), c < n rows of src (stride
 * floats apart); with swiglu (np == 2, same shapes) out_0 becomes
 * silu(out_0) * out_1. */
static void matmul_n(forward *f, int np, const gguf_tensor *const *W, float *const *out, const int64_t *ldo,
                     bool swiglu, const float *src, int64_t stride, int32_t n)
{
    quant_rows(f, W[0]->type, src, stride, W[0]->ne[0], n);
    mm_job j = {.ops = f->ops, .X = f->xq, .x_row = f->xq_row, .nc = n, .n_part = np, .swiglu = swiglu};
    int64_t work = 0;
    const int64_t nth = f->pool ? pool_size(f->pool) : 1;
    for (int p = 0; p < np; p++) {
        int64_t rows = W[p]->ne[1];
        /* chunks of at most ~MM_CHUNK_BYTES, as many as a multiple of the
         * threads and of about equal size, so that threads running at the
         * same speed finish together (1 MiB chunks left e.g. 896 + 896 +
         * 256 rows of a 2048-row matrix to 2 threads); whole multiples of
         * 64 rows where the matrix has them, so the r16 kernels' one-column
         * tiles (4 groups of 16 rows) are never cut (at 1 thread, 688-row
         * chunks spent 7 % of decode time in 3- and 2-group tiles) */
        int64_t nch = (int64_t)((W[p]->nbytes + MM_CHUNK_BYTES - 1) / MM_CHUNK_BYTES);
        nch = (nch + nth - 1) / nth * nth;
        const int64_t unit = rows >= 64 * nch ? 64 : 16;
        int64_t chunk = ((rows + nch - 1) / nch + unit - 1) / unit * unit;
        j.part[p] = (mm_part){W[p], out[p], ldo[p], chunk, (rows + chunk - 1) / chunk};
        work += W[p]->ne[0] * rows * n;
    }
    atomic_init(&j.next, 0);
    run(f, mm_worker, &j, work);
}

// out[c][r] = W[r,k] . X[c,k] for c < n rows of src (stride floats apart), out rows ldo apart
static void matmul(forward *f, const gguf_tensor *W, const float *src, int64_t stride, int32_t n, float *out,
                   int64_t ldo)
{
    matmul_n(f, 1, &W, &out, &ldo, false, src, stride, n);
}

static void rows(forward *f, int op, float *out, const float *a, const float *b, int64_t dim, int32_t n);
enum { ROW_NORM, ROW_SWIGLU, ROW_ADD };

/* q, k, v projections of xb: one job when the three weights share an x format */
static void matmul_qkv(forward *f, const model_layer *L, int32_t n)
{
    const model_hparams *hp = &f->m->hp;
    const int64_t E = hp->n_embd, Q = hp->n_head * hp->head_dim, KV = hp->n_head_kv * hp->head_dim;
    const gguf_tensor *W[3] = {L->wq, L->wk, L->wv};
    float *out[3] = {f->q, f->k, f->v};
    const int64_t ldo[3] = {Q, KV, KV};
    uint32_t fmt = kern_xfmt(L->wq->type);
    if (kern_xfmt(L->wk->type) == fmt && kern_xfmt(L->wv->type) == fmt) {
        matmul_n(f, 3, W, out, ldo, false, f->xb, E, n);
        return;
    }
    for (int p = 0; p < 3; p++)
        matmul(f, W[p], f->xb, E, n, out[p], ldo[p]);
}

/* h1 = silu(gate(xb)) * up(xb), one job when gate and up share an x format */
static void matmul_ffn_up(forward *f, const model_layer *L, int32_t n)
{
    const model_hparams *hp = &f->m->hp;
    const int64_t E = hp->n_embd, F = hp->n_ff;
    const gguf_tensor *W[2] = {L->ffn_gate, L->ffn_up};
    float *out[2] = {f->h1, f->h2};
    const int64_t ldo[2] = {F, F};
    if (kern_xfmt(W[0]->type) == kern_xfmt(W[1]->type)) {
        matmul_n(f, 2, W, out, ldo, true, f->xb, E, n);
        return;
    }
    matmul(f, W[0], f->xb, E, n, f->h1, F);
    matmul(f, W[1], f->xb, E, n, f->h2, F);
    rows(f, ROW_SWIGLU, f->h1, f->h1, f->h2, F, n);
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
    f->att_scratch_n = (attn_scratch_floats(ATT_QB, hp->n_head / hp->n_head_kv, hp->head_dim) + 15) & ~(int64_t)15;
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
        matmul_qkv(f, L, n);
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
        matmul_ffn_up(f, L, n);
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
