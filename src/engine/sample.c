#include "sample.h"

#include "../base/err.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    float logit;
    int32_t id;
} cand;

struct sampler {
    sample_params p;
    int32_t n_vocab;
    uint64_t rng;
    float *work; /* adjusted logits of the last sample_next */
    cand *cands;
    int32_t *count;     /* [n_vocab] times each token was returned (presence/frequency) */
    int32_t n_bias, *bias_id;
    float *bias;
    bool have_last;     /* work holds the last call's adjusted logits */
};

sample_params sample_defaults(void)
{
    return (sample_params){.temp = 0.8f, .top_k = 40, .top_p = 0.95f, .min_p = 0.05f,
                           .repeat_penalty = 1.0f, .repeat_last_n = 64, .presence_penalty = 0.0f,
                           .frequency_penalty = 0.0f, .seed = 0};
}

/* splitmix64: small, well-distributed, reproducible across platforms */
static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double rng_unit(uint64_t *s) { return (double)(rng_next(s) >> 11) * (1.0 / 9007199254740992.0); }

int sample_new(sampler **out, const sample_params *p, int32_t n_vocab)
{
    *out = NULL;
    if (n_vocab < 1)
        return err_set(SOV_EINVAL, "vocabulary size %d", n_vocab);
    if (isnan(p->temp) || isnan(p->top_p) || isnan(p->min_p) || !(p->repeat_penalty > 0) ||
        p->repeat_last_n < 0 || !isfinite(p->presence_penalty) || !isfinite(p->frequency_penalty))
        return err_set(SOV_EINVAL, "invalid sampling parameters");
    sampler *s = calloc(1, sizeof *s);
    if (!s)
        return err_set(SOV_ENOMEM, "out of memory");
    s->p = *p;
    s->n_vocab = n_vocab;
    s->rng = p->seed;
    s->work = malloc(sizeof(float) * (size_t)n_vocab);
    s->cands = malloc(sizeof(cand) * (size_t)n_vocab);
    s->count = calloc((size_t)n_vocab, sizeof *s->count);
    if (!s->work || !s->cands || !s->count) {
        sample_free(s);
        return err_set(SOV_ENOMEM, "out of memory");
    }
    *out = s;
    return 0;
}

void sample_free(sampler *s)
{
    if (!s)
        return;
    free(s->work);
    free(s->cands);
    free(s->count);
    free(s->bias_id);
    free(s->bias);
    free(s);
}

int32_t sample_argmax(const float *logits, int32_t n)
{
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++)
        if (logits[i] > logits[best])
            best = i;
    return best;
}

static int cand_desc(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->logit != y->logit)
        return x->logit > y->logit ? -1 : 1;
    return x->id - y->id; /* stable order on ties */
}

/* "a ranks below b": smaller logit, or equal logit and larger id */
static bool cand_lt(const cand *a, const cand *b)
{
    return a->logit < b->logit || (a->logit == b->logit && a->id > b->id);
}

static void heap_down(cand *h, int32_t k, int32_t i)
{
    for (;;) {
        int32_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < k && cand_lt(&h[l], &h[m]))
            m = l;
        if (r < k && cand_lt(&h[r], &h[m]))
            m = r;
        if (m == i)
            return;
        cand t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

/* Moves the k best candidates of c[0..n) to c[0..k) (unordered) with a
 * min-heap: O(n log k). Returns k. */
static int32_t top_k_select(cand *c, int32_t n, int32_t k)
{
    for (int32_t i = k / 2 - 1; i >= 0; i--)
        heap_down(c, k, i);
    for (int32_t i = k; i < n; i++) {
        if (cand_lt(&c[0], &c[i])) {
            c[0] = c[i];
            heap_down(c, k, 0);
        }
    }
    return k;
}

int sample_set_bias(sampler *s, const int32_t *ids, const float *bias, int32_t n)
{
    for (int32_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= s->n_vocab)
            return err_set(SOV_EINVAL, "logit_bias: token id %d is outside the vocabulary (0..%d)", ids[i],
                           s->n_vocab - 1);
        if (isnan(bias[i]) || bias[i] == INFINITY)
            return err_set(SOV_EINVAL, "logit_bias: the bias of token %d is not a number or -infinity", ids[i]);
    }
    int32_t *ni = NULL;
    float *nb = NULL;
    if (n > 0) {
        ni = malloc(sizeof *ni * (size_t)n);
        nb = malloc(sizeof *nb * (size_t)n);
        if (!ni || !nb) {
            free(ni);
            free(nb);
            return err_set(SOV_ENOMEM, "out of memory");
        }
        memcpy(ni, ids, sizeof *ni * (size_t)n);
        memcpy(nb, bias, sizeof *nb * (size_t)n);
    }
    free(s->bias_id);
    free(s->bias);
    s->bias_id = ni;
    s->bias = nb;
    s->n_bias = n;
    return 0;
}

static int32_t pick(sampler *s, const float *lg);

int32_t sample_next(sampler *s, const float *logits, const int32_t *hist, int64_t n_hist)
{
    return sample_next_masked(s, logits, NULL, hist, n_hist);
}

int32_t sample_next_masked(sampler *s, const float *logits, const uint8_t *allowed, const int32_t *hist,
                           int64_t n_hist)
{
    const sample_params *p = &s->p;
    const int32_t n = s->n_vocab;
    float *w = s->work;
    memcpy(w, logits, sizeof(float) * (size_t)n);
    for (int32_t i = 0; i < s->n_bias; i++)
        w[s->bias_id[i]] += s->bias[i];
    if (p->repeat_penalty != 1.0f && n_hist > 0 && p->repeat_last_n > 0) {
        int64_t from = n_hist > p->repeat_last_n ? n_hist - p->repeat_last_n : 0;
        /* each distinct token in the window is penalized once */
        for (int64_t i = from; i < n_hist; i++) {
            int32_t t = hist[i];
            if (t < 0 || t >= n)
                continue;
            bool seen = false;
            for (int64_t j = from; j < i && !seen; j++)
                seen = hist[j] == t;
            if (seen)
                continue;
            float v = w[t];
            w[t] = v > 0 ? v / p->repeat_penalty : v * p->repeat_penalty;
        }
    }
    if (p->presence_penalty != 0.0f || p->frequency_penalty != 0.0f)
        for (int32_t t = 0; t < n; t++)
            if (s->count[t])
                w[t] -= (float)s->count[t] * p->frequency_penalty + p->presence_penalty;
    if (allowed)
        for (int32_t t = 0; t < n; t++)
            if (!allowed[t])
                w[t] = -INFINITY;
    s->have_last = true;
    int32_t tok = pick(s, w);
    s->count[tok]++;
    return tok;
}

int sample_logprobs(sampler *s, int32_t tok, float *lp_tok, int32_t n_top, int32_t *top_ids, float *top_lp)
{
    const int32_t n = s->n_vocab;
    if (!s->have_last)
        return err_set(SOV_EINVAL, "sample_logprobs before any sample_next");
    if (tok < 0 || tok >= n)
        return err_set(SOV_EINVAL, "token id %d out of range", tok);
    const float *w = s->work;
    float mx = w[0];
    for (int32_t i = 1; i < n; i++)
        if (w[i] > mx)
            mx = w[i];
    double sum = 0;
    for (int32_t i = 0; i < n; i++)
        sum += exp((double)w[i] - mx);
    const double lse = mx + log(sum);
    *lp_tok = (float)((double)w[tok] - lse);
    if (n_top > n)
        n_top = n;
    if (n_top <= 0)
        return 0;
    cand *c = s->cands;
    for (int32_t i = 0; i < n; i++)
        c[i] = (cand){w[i], i};
    top_k_select(c, n, n_top);
    qsort(c, (size_t)n_top, sizeof *c, cand_desc);
    for (int32_t i = 0; i < n_top; i++) {
        top_ids[i] = c[i].id;
        top_lp[i] = (float)((double)c[i].logit - lse);
    }
    return n_top;
}

/* The token for adjusted logits lg: greedy or temperature + filters. */
static int32_t pick(sampler *s, const float *lg)
{
    const sample_params *p = &s->p;
    const int32_t n = s->n_vocab;
    if (p->temp <= 0.0f)
        return sample_argmax(lg, n);

    /* candidates sorted by logit; top-k cut */
    cand *c = s->cands;
    for (int32_t i = 0; i < n; i++)
        c[i] = (cand){lg[i], i};
    int32_t k = n;
    if (p->top_k > 0 && p->top_k < n) {
        k = top_k_select(c, n, p->top_k);
        qsort(c, (size_t)k, sizeof *c, cand_desc);
    } else {
        qsort(c, (size_t)n, sizeof *c, cand_desc);
    }
    /* softmax with temperature over the k candidates */
    double mx = c[0].logit, sum = 0;
    for (int32_t i = 0; i < k; i++) {
        double e = exp(((double)c[i].logit - mx) / p->temp);
        c[i].logit = (float)e;
        sum += e;
    }
    /* top-p: smallest prefix with mass >= top_p */
    if (p->top_p < 1.0f) {
        double acc = 0;
        for (int32_t i = 0; i < k; i++) {
            acc += c[i].logit / sum;
            if (acc >= p->top_p) {
                k = i + 1;
                break;
            }
        }
    }
    /* min-p: drop candidates below min_p * p(max) */
    if (p->min_p > 0.0f) {
        float thr = p->min_p * c[0].logit;
        int32_t kk = 1;
        while (kk < k && c[kk].logit >= thr)
            kk++;
        k = kk;
    }
    double tot = 0;
    for (int32_t i = 0; i < k; i++)
        tot += c[i].logit;
    double r = rng_unit(&s->rng) * tot;
    for (int32_t i = 0; i < k; i++) {
        r -= c[i].logit;
        if (r < 0)
            return c[i].id;
    }
    return c[k - 1].id;
}
