#include "forward.h"

#include "../base/err.h"
#include "act.h"
#include "attn.h"
#include "kern/kern.h"
#include "kv.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(KV_TILE == ATTN_KT, "the cache stores K in the attention kernel's tiles");

#define DEFAULT_BATCH 512
#define ATT_QB 16 /* query tokens per attention work item */

typedef struct mm_range mm_range;

/* the matrix product after the current step (for reading ahead) */
typedef struct {
    const gguf_tensor *W[3];
    int np; /* 0: unknown */
    bool swiglu;
} mm_next;

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
    mm_range *range;     /* [n_threads] the threads' units in a matrix product */
    mm_next next;        /* what the next matrix product will be */
};

/* Below this many multiply-adds an op runs on the calling thread: waking the
 * pool costs more than it saves. Results do not depend on the choice (each
 * output is computed the same way by whichever thread owns it). */
#define PAR_MIN_WORK 32768

#ifndef PF_BYTES
#define PF_BYTES (256u << 10) /* most bytes of the next weights a waiting thread reads ahead */
#endif
#define PF_MAX_THREADS 64      /* more threads than this read nothing ahead */

static void run_pf(forward *f, pool_fn fn, void *arg);

/* Runs fn on the pool when work is worth it, else on this thread. */
static void run(forward *f, pool_fn fn, void *arg, int64_t work)
{
    if (!f->pool || work < PAR_MIN_WORK)
        fn(arg, 0, 1);
    else
        run_pf(f, fn, arg);
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
 * gate, up). Their rows are cut into units (whole 16-row tiles, about
 * MM_UNIT_BYTES of weights); the units of all parts, in order, are dealt as
 * one contiguous range per thread, which the thread works through front to
 * back (one long stream for the hardware prefetchers, and where run() had it
 * read ahead). A thread done with its range takes units one at a time from
 * the back of the range with the most left, so a thread that got slower
 * memory or started late does less, and all finish within about a unit of
 * each other. The split is dynamic, the result is not: each output value is
 * computed by one gemm call with the same instruction sequence whoever runs
 * it. */
#define MM_PARTS 3
#ifndef MM_UNIT_BYTES
#define MM_UNIT_BYTES (64u << 10)
#endif
#define MM_CB 64 /* activation rows per cache block */

typedef struct {
    const gguf_tensor *W;
    float *out;
    int64_t ldo;
    int64_t unit, n_unit; /* rows per unit, units */
} mm_part;

/* a thread's units: next from the front in the low 32 bits, end in the high
 * 32 (own cache line) */
struct mm_range {
    _Alignas(64) atomic_ullong lohi;
};

typedef struct {
    const kern_ops *ops;
    const unsigned char *X;
    uint64_t x_row;
    int64_t nc;
    int n_part;
    bool swiglu; /* parts gate, up: a unit of both, then gate = silu(gate) * up on its rows */
    mm_part part[MM_PARTS];
    int64_t n_unit; /* over the parts that are dealt (gate only with swiglu) */
    mm_range *range; /* [nth] */
} mm_job;

/* Fills j->part[0..np) for W[0..np) and nth threads: units of about
 * MM_UNIT_BYTES, at least two per thread where the matrix has the rows,
 * multiples of the rows an r16 kernel reads for one column (ops->r16_rows:
 * 64 or 48; 64 for the other layouts) where it has them, so no one-column
 * tile is cut short (at 1 thread, 688-row chunks spent 7 % of decode time
 * in 3- and 2-group tiles). */
static void mm_plan(mm_job *j, const kern_ops *ops, int np, const gguf_tensor *const *W, bool swiglu, int64_t nth)
{
    j->n_part = np;
    j->swiglu = swiglu;
    j->n_unit = 0;
    for (int p = 0; p < np; p++) {
        int64_t rows = W[p]->ne[1], per = rows / nth;
        uint64_t row_bytes = W[p]->nbytes / (uint64_t)rows;
        int64_t base = W[p]->layout == KL_R16 && ops->r16_rows[W[p]->type] ? ops->r16_rows[W[p]->type] : 64;
        int64_t unit = base * (int64_t)(MM_UNIT_BYTES / ((uint64_t)base * row_bytes));
        int64_t most = per / 2 / base * base;
        if (unit > most)
            unit = most;
        if (unit < base)
            unit = per >= base ? base : 16;
        j->part[p].W = W[p];
        j->part[p].unit = unit;
        j->part[p].n_unit = (rows + unit - 1) / unit;
        if (p == 0 || !swiglu)
            j->n_unit += j->part[p].n_unit;
    }
}

/* first unit of thread t's range */
static int64_t mm_first(const mm_job *j, int64_t t, int64_t nth) { return j->n_unit * t / nth; }

/* unit i (global index) -> part *p, rows [*r0, *r1) */
static void mm_unit(const mm_job *j, int64_t i, int *p, int64_t *r0, int64_t *r1)
{
    int q = 0;
    while (i >= j->part[q].n_unit)
        i -= j->part[q++].n_unit;
    const mm_part *pt = &j->part[q];
    *p = q;
    *r0 = i * pt->unit;
    *r1 = *r0 + pt->unit < pt->W->ne[1] ? *r0 + pt->unit : pt->W->ne[1];
}

/* Next unit for thread ith: from the front of its range while it lasts
 * (*own), then from the back of the range with the most left; -1: none. */
static int64_t mm_take(mm_range *rg, int ith, int nth, bool *own)
{
    if (*own) {
        unsigned long long v = atomic_fetch_add_explicit(&rg[ith].lohi, 1, memory_order_relaxed);
        if ((uint32_t)v < (uint32_t)(v >> 32))
            return (uint32_t)v;
        *own = false;
    }
    for (;;) {
        int best = -1;
        int64_t most = 0;
        unsigned long long bv = 0;
        for (int t = 0; t < nth; t++) {
            unsigned long long v = atomic_load_explicit(&rg[t].lohi, memory_order_relaxed);
            int64_t left = (int64_t)(v >> 32) - (int64_t)(uint32_t)v;
            if (t != ith && left > most)
                most = left, best = t, bv = v;
        }
        if (best < 0)
            return -1;
        unsigned long long nv = bv - (1ull << 32);
        if (atomic_compare_exchange_weak_explicit(&rg[best].lohi, &bv, nv, memory_order_relaxed,
                                                  memory_order_relaxed))
            return (int64_t)(nv >> 32);
    }
}

// out[c*ldo + r] = W[r,k] . X[c,k] for r in [r0, r1), c < nc
static void mm_rows(const mm_job *j, const mm_part *pt, int64_t r0, int64_t r1)
{
    const gguf_tensor *W = pt->W;
    int64_t k = W->ne[0];
    uint64_t row_bytes = W->nbytes / (uint64_t)W->ne[1];
    /* x8 / r16 tensors were packed for kern_best(), the table forward uses;
     * units start at multiples of 16 rows, so at 8- and 16-row groups */
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
    mm_job *j = arg;
    bool own = true;
    for (int64_t i; (i = mm_take(j->range, ith, nth, &own)) >= 0;) {
        int p;
        int64_t r0, r1;
        mm_unit(j, i, &p, &r0, &r1);
        const mm_part *pt = &j->part[p];
        mm_rows(j, pt, r0, r1);
        if (j->swiglu) {
            const mm_part *up = &j->part[1];
            mm_rows(j, up, r0, r1);
            for (int64_t c = 0; c < j->nc; c++)
                act_swiglu(pt->out + c * pt->ldo + r0, up->out + c * up->ldo + r0, r1 - r0);
        }
    }
}

/* pool_run, and threads that wait meanwhile read ahead the start of their
 * range of the next matrix product (f->next), at most PF_BYTES. */
static void run_pf(forward *f, pool_fn fn, void *arg)
{
    const int nth = f->n_threads;
    if (!f->next.np || nth > PF_MAX_THREADS) {
        pool_run(f->pool, fn, arg);
        return;
    }
    pool_span span[PF_MAX_THREADS * POOL_SPANS];
    memset(span, 0, sizeof span);
    mm_job j;
    mm_plan(&j, f->ops, f->next.np, f->next.W, f->next.swiglu, nth);
    uint64_t cap = f->next.swiglu ? PF_BYTES / 2 : PF_BYTES;
    for (int t = 0; t < nth; t++) {
        int64_t u0 = mm_first(&j, t, nth), u1 = mm_first(&j, t + 1, nth), r0, r1, e0, e1;
        int p, pe;
        if (u0 >= u1)
            continue;
        mm_unit(&j, u0, &p, &r0, &r1);
        mm_unit(&j, u1 - 1, &pe, &e0, &e1);
        if (pe != p) /* the range runs past this part: to its end */
            e1 = j.part[p].W->ne[1];
        for (int s = 0; s < (f->next.swiglu ? 2 : 1); s++) {
            const gguf_tensor *W = f->next.W[p + s];
            uint64_t row_bytes = W->nbytes / (uint64_t)W->ne[1], n = (uint64_t)(e1 - r0) * row_bytes;
            span[t * POOL_SPANS + s] = (pool_span){(const unsigned char *)W->data + (uint64_t)r0 * row_bytes,
                                                   n < cap ? n : cap};
        }
    }
    pool_run_pf(f->pool, fn, arg, span);
}

/* out_p[c][r] = W_p[r,k] . src[c][k] for the np products (np <= MM_PARTS;
 * all W_p have the same k, and kern x format), c < n rows of src (stride
 * floats apart); with swiglu (np == 2, same shapes) out_0 becomes
 * silu(out_0) * out_1. */
static void matmul_n(forward *f, int np, const gguf_tensor *const *W, float *const *out, const int64_t *ldo,
                     bool swiglu, const float *src, int64_t stride, int32_t n)
{
    quant_rows(f, W[0]->type, src, stride, W[0]->ne[0], n);
    int64_t work = 0;
    for (int p = 0; p < np; p++)
        work += W[p]->ne[0] * W[p]->ne[1] * n;
    const int nth = work >= PAR_MIN_WORK ? f->n_threads : 1;
    mm_job j = {.ops = f->ops, .X = f->xq, .x_row = f->xq_row, .nc = n, .range = f->range};
    mm_plan(&j, f->ops, np, W, swiglu, nth);
    for (int p = 0; p < np; p++) {
        j.part[p].out = out[p];
        j.part[p].ldo = ldo[p];
    }
    for (int t = 0; t < nth; t++)
        atomic_init(&f->range[t].lohi,
                    (unsigned long long)mm_first(&j, t, nth) | (unsigned long long)mm_first(&j, t + 1, nth) << 32);
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

/* f->next = the product(s) matmul_qkv / matmul_ffn_up / matmul will run first */
static void next_qkv(forward *f, const model_layer *L)
{
    uint32_t fmt = kern_xfmt(L->wq->type);
    bool one = kern_xfmt(L->wk->type) == fmt && kern_xfmt(L->wv->type) == fmt;
    f->next = (mm_next){{L->wq, L->wk, L->wv}, one ? 3 : 1, false};
}

static void next_ffn_up(forward *f, const model_layer *L)
{
    bool one = kern_xfmt(L->ffn_gate->type) == kern_xfmt(L->ffn_up->type);
    f->next = (mm_next){{L->ffn_gate, L->ffn_up}, one ? 2 : 1, one};
}

static void next_one(forward *f, const gguf_tensor *W) { f->next = (mm_next){{W}, 1, false}; }

/* q, k, v projections of xb: one job when the three weights share an x
 * format. f->next: what comes after the three. */
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
    const mm_next after = f->next;
    for (int p = 0; p < 3; p++) {
        f->next = p < 2 ? (mm_next){{W[p + 1]}, 1, false} : after;
        matmul(f, W[p], f->xb, E, n, out[p], ldo[p]);
    }
}

/* h1 = silu(gate(xb)) * up(xb), one job when gate and up share an x
 * format. f->next: what comes after. */
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
    const mm_next after = f->next;
    f->next = (mm_next){{W[1]}, 1, false};
    matmul(f, W[0], f->xb, E, n, f->h1, F);
    f->next = after;
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
            act_swiglu(o, j->b + r * j->dim, j->dim); /* o == a */
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
        const kv_cache *kv = &f->kv;
        unsigned char *k0 = kv_k_block(kv, j->layer, 0), *v0 = kv_v_block(kv, j->layer, 0);
        const int elt = kv_elt_bytes(kv->type);
        attn_block b = {
            .nq = it->nq,
            .n_group = G,
            .head_dim = hd,
            .pos = j->pos + it->j0,
            .q = f->q + (int64_t)it->j0 * Q + (int64_t)it->kvh * G * hd,
            .q_stride = Q,
            .tiles = kv_table(kv, seq),
            .kv_type = kv->type,
            .ops = f->ops,
            .k = k0 + (int64_t)it->kvh * hd * KV_TILE * elt,
            .k_tile_stride = (int64_t)kv->block_bytes / elt,
            .v = v0 + (int64_t)it->kvh * hd * elt,
            .v_tile_stride = (int64_t)kv->block_bytes / elt,
            .kv_stride = kv->row,
            .out = f->o + (int64_t)it->j0 * Q + (int64_t)it->kvh * G * hd,
            .out_stride = Q,
            .scale = 1.0f / sqrtf((float)hd),
        };
        if (kv->type == KV_Q8_0) {
            b.ks = kv_k_scales(kv, k0) + (int64_t)it->kvh * kv->nch * KV_TILE;
            b.ks_tile_stride = (int64_t)kv->block_bytes / 2;
            b.vs = kv_v_scales(kv, v0) + (int64_t)it->kvh * kv->nch;
            b.vs_tile_stride = (int64_t)kv->block_bytes / 2;
            b.vs_stride = (int64_t)kv->n_head_kv * kv->nch;
        }
        attn_run(&b, scratch);
    }
}

/* Stores the key row k[row] and the value row v[row] of (layer, seq, pos)
 * into their blocks in the cache's type (K transposed: element i at stride
 * KV_TILE); the caller keeps indices in range and the tile mapped. */
static void kv_put(const forward *f, int32_t layer, int32_t seq, int32_t pos, const float *k, const float *v)
{
    const kv_cache *kv = &f->kv;
    const int32_t blk = kv_table(kv, seq)[pos / KV_TILE], t = pos % KV_TILE;
    unsigned char *kb = kv_k_block(kv, layer, blk), *vb = kv_v_block(kv, layer, blk);
    const int elt = kv_elt_bytes(kv->type);
    unsigned char *kt = kb + (int64_t)t * elt, *vt = vb + (int64_t)t * kv->row * elt;
    switch (kv->type) {
    case KV_F32:
        for (int32_t i = 0; i < kv->row; i++)
            ((float *)(void *)kt)[(int64_t)i * KV_TILE] = k[i];
        memcpy(vt, v, sizeof(float) * (size_t)kv->row);
        break;
    case KV_F16:
        f->ops->kv_put_f16(k, kv->n_head_kv, kv->head_dim, kt, KV_TILE, NULL, 0);
        f->ops->kv_put_f16(v, kv->n_head_kv, kv->head_dim, vt, 1, NULL, 0);
        break;
    default: /* KV_Q8_0: scales [n_head_kv][nch][KV_TILE] (K), [KV_TILE][n_head_kv * nch] (V) */
        f->ops->kv_put_q8_0(k, kv->n_head_kv, kv->head_dim, kt, KV_TILE, kv_k_scales(kv, kb) + t, KV_TILE);
        f->ops->kv_put_q8_0(v, kv->n_head_kv, kv->head_dim, vt, 1,
                            kv_v_scales(kv, vb) + (int64_t)t * kv->n_head_kv * kv->nch, 1);
        break;
    }
}

int forward_new(forward **out, const model *m, int32_t n_ctx, int32_t n_seq, pool *p)
{
    return forward_new_kv(out, m, n_ctx, n_seq, 0, KV_F32, p);
}

int forward_new_paged(forward **out, const model *m, int32_t n_ctx, int32_t n_seq, int32_t n_blocks, pool *p)
{
    return forward_new_kv(out, m, n_ctx, n_seq, n_blocks, KV_F32, p);
}

int forward_new_kv(forward **out, const model *m, int32_t n_ctx, int32_t n_seq, int32_t n_blocks, int kv_type,
                   pool *p)
{
    *out = NULL;
    forward *f = calloc(1, sizeof *f);
    if (!f)
        return err_set(SOV_ENOMEM, "out of memory");
    f->m = m;
    f->pool = p;
    f->n_threads = p ? pool_size(p) : 1;
    f->ops = kern_best();
    int rc = kv_init(&f->kv, &m->hp, n_ctx, n_seq, n_blocks, kv_type);
    if (rc)
        goto fail;
    f->inv_freq = malloc(sizeof(double) * (size_t)(m->hp.n_rot / 2 + 1));
    f->seq_last = malloc(sizeof(int32_t) * (size_t)n_seq);
    f->range = aligned_alloc(_Alignof(mm_range), sizeof(mm_range) * (size_t)f->n_threads);
    if (!f->inv_freq || !f->seq_last || !f->range) {
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

uint64_t forward_scratch_bytes(const model_hparams *hp, int32_t n_batch, int n_threads, int32_t n_logits)
{
    int64_t E = hp->n_embd, Q = (int64_t)hp->n_head * hp->head_dim, KV = (int64_t)hp->n_head_kv * hp->head_dim,
            F = hp->n_ff, B = n_batch;
    int64_t EQ = E > Q ? E : Q, big = EQ > F ? EQ : F;
    int64_t att = (attn_scratch_floats(ATT_QB, hp->n_head / hp->n_head_kv, hp->head_dim) + 15) & ~(int64_t)15;
    /* what forward_set_batch allocates: x, xb, q, o, k, v, h1, h2, xq, normw,
     * att_scratch, lrow; then the logits rows */
    int64_t floats = B * (E + EQ + 2 * Q + 2 * KV + 2 * F) + big + att * n_threads +
                     (int64_t)n_logits * hp->n_vocab;
    return (uint64_t)floats * sizeof(float) + kern_x_row_bytes(KX_F32, big) * (uint64_t)B +
           sizeof(int32_t) * (uint64_t)B;
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
    free(f->range);
    free(f->logits);
    free(f);
}

int32_t forward_n_ctx(const forward *f) { return f->kv.n_ctx; }

int32_t forward_n_blocks(const forward *f) { return f->kv.n_blocks; }

int forward_kv_type(const forward *f) { return f->kv.type; }

int forward_map(forward *f, int32_t seq, int32_t tile, int32_t block)
{
    if (seq < 0 || seq >= f->kv.n_seq || tile < 0 || tile >= f->kv.n_tile || block < -1 || block >= f->kv.n_blocks)
        return err_set(SOV_EINVAL, "map sequence %d tile %d to block %d: out of range (%d sequences, %d tiles, %d blocks)",
                       seq, tile, block, f->kv.n_seq, f->kv.n_tile, f->kv.n_blocks);
    f->kv.table[(int64_t)seq * f->kv.n_tile + tile] = block;
    return 0;
}

int forward_copy_block(forward *f, int32_t dst, int32_t src)
{
    if (dst < 0 || dst >= f->kv.n_blocks || src < 0 || src >= f->kv.n_blocks)
        return err_set(SOV_EINVAL, "copy block %d to %d: out of range (%d blocks)", src, dst, f->kv.n_blocks);
    if (dst == src)
        return 0;
    size_t n = (size_t)f->kv.block_bytes;
    for (int32_t l = 0; l < f->kv.n_layer; l++) {
        memcpy(kv_k_block(&f->kv, l, dst), kv_k_block(&f->kv, l, src), n);
        memcpy(kv_v_block(&f->kv, l, dst), kv_v_block(&f->kv, l, src), n);
    }
    return 0;
}

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

    /* f->next, for run(): the next product in the order qkv, (attention),
     * wo, gate+up, down, next layer's qkv ... output, and the first layer's
     * qkv (the next chunk or token) */
    for (int l = 0; l < hp->n_layer; l++) {
        const model_layer *L = &m->layers[l];
        vec_dequant(f, L->attn_norm, f->normw);
        next_qkv(f, L);
        rows(f, ROW_NORM, f->xb, f->x, f->normw, E, n);
        f->xq_src = NULL;
        next_one(f, L->wo);
        matmul_qkv(f, L, n);
        add_bias(f, L->bq, f->q, Q, (int)Q, n);
        add_bias(f, L->bk, f->k, KV, (int)KV, n);
        add_bias(f, L->bv, f->v, KV, (int)KV, n);
        for (int32_t j = 0; j < n; j++) {
            int32_t s = seq ? seq[j] : 0;
            rope(f, f->q + j * Q, hp->n_head, pos[j]);
            rope(f, f->k + j * KV, hp->n_head_kv, pos[j]);
            kv_put(f, l, s, pos[j], f->k + j * KV, f->v + j * KV);
        }

        att_job aj = {f, l, pos, seq, items, n_items};
        run(f, att_worker, &aj, att_work);
        next_ffn_up(f, L);
        matmul(f, L->wo, f->o, Q, n, f->xb, E);
        rows(f, ROW_ADD, f->x, f->xb, NULL, E, n);

        vec_dequant(f, L->ffn_norm, f->normw);
        rows(f, ROW_NORM, f->xb, f->x, f->normw, E, n);
        f->xq_src = NULL;
        next_one(f, L->ffn_down);
        matmul_ffn_up(f, L, n);
        if (l + 1 < hp->n_layer)
            next_qkv(f, &m->layers[l + 1]);
        else
            next_one(f, m->output);
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
    next_qkv(f, &m->layers[0]);
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
        /* attention reads every tile up to pos: all must be mapped */
        const int32_t *tab = kv_table(&f->kv, seq);
        for (int32_t t = pos / KV_TILE; t >= 0; t--)
            if (tab[t] < 0)
                return err_set(SOV_EINVAL, "sequence %d has no KV block for positions %d..%d", seq, t * KV_TILE,
                               t * KV_TILE + KV_TILE - 1);
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
