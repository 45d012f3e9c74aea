/* metrics: all values live in one plain struct guarded by one mutex.
 * Recording computes what it can (endpoint index, bucket index) before
 * taking the lock, then does a few stores. Rendering copies the struct
 * under the lock into a buffer allocated beforehand and formats the copy
 * with the lock released, so a slow scrape never stalls the token paths. */
#include "metrics.h"

#include "../base/err.h"
#include "../base/sbuf.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const endpoints[] = {
    "/v1/chat/completions", "/v1/completions", "/v1/models", "/health", "/metrics", "other",
};
#define N_EP ((int)(sizeof endpoints / sizeof endpoints[0]))
#define EP_OTHER (N_EP - 1)
#define N_STATUS 1000 /* statuses 0..999 */

static const double ttft_bounds[] = {
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 15, 20, 30, 45, 60,
};
static const double itl_bounds[] = {
    0.001, 0.0025, 0.005, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05,
    0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 2.5, 5,
};
#define N_TTFT ((int)(sizeof ttft_bounds / sizeof ttft_bounds[0]))
#define N_ITL ((int)(sizeof itl_bounds / sizeof itl_bounds[0]))

/* Per-bucket (not cumulative) counts; the last one is +Inf. */
typedef struct {
    int64_t ttft_b[N_TTFT + 1];
    int64_t itl_b[N_ITL + 1];
    double ttft_sum, itl_sum;
    int64_t ttft_n, itl_n;
    int64_t prompt, generated, cached;
    int64_t queue, active, slots, kv_used, kv_total;
    int64_t blk_total, blk_used, blk_cached, blk_bytes, preempt, prompt_eval;
    int64_t gram_masks;
    double gram_s;
    int64_t req[N_EP][N_STATUS];
} values;

struct metrics {
    pthread_mutex_t mu;
    char *model; /* escaped label value */
    values v;
};

/* Label value with \, " and newline escaped; malloc'd, NULL on ENOMEM. */
static char *escape_label(const char *s)
{
    size_t n = 0;
    for (const char *p = s; *p; p++)
        n += (*p == '\\' || *p == '"' || *p == '\n') ? 2 : 1;
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    char *o = out;
    for (const char *p = s; *p; p++) {
        if (*p == '\\') {
            *o++ = '\\';
            *o++ = '\\';
        } else if (*p == '"') {
            *o++ = '\\';
            *o++ = '"';
        } else if (*p == '\n') {
            *o++ = '\\';
            *o++ = 'n';
        } else {
            *o++ = *p;
        }
    }
    *o = 0;
    return out;
}

int metrics_new(metrics **out, const char *model)
{
    *out = NULL;
    metrics *m = calloc(1, sizeof *m);
    if (!m)
        goto fail_nomem;
    m->model = escape_label(model ? model : "");
    if (!m->model)
        goto fail_nomem;
    if (pthread_mutex_init(&m->mu, NULL) != 0)
        goto fail_nomem;
    *out = m;
    return 0;
fail_nomem:
    if (m)
        free(m->model);
    free(m);
    return err_set(SOV_ENOMEM, "metrics: out of memory");
}

void metrics_free(metrics *m)
{
    if (!m)
        return;
    pthread_mutex_destroy(&m->mu);
    free(m->model);
    free(m);
}

void metrics_request(metrics *m, const char *endpoint, int status)
{
    if (!m)
        return;
    int ep = EP_OTHER;
    if (endpoint)
        for (int i = 0; i < EP_OTHER; i++)
            if (strcmp(endpoint, endpoints[i]) == 0) {
                ep = i;
                break;
            }
    int st = status >= 0 && status < N_STATUS ? status : 0;
    pthread_mutex_lock(&m->mu);
    m->v.req[ep][st]++;
    pthread_mutex_unlock(&m->mu);
}

void metrics_tokens(metrics *m, int64_t prompt, int64_t generated, int64_t cached)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->mu);
    m->v.prompt += prompt > 0 ? prompt : 0;
    m->v.generated += generated > 0 ? generated : 0;
    m->v.cached += cached > 0 ? cached : 0;
    pthread_mutex_unlock(&m->mu);
}

/* Index of the first bound >= s (n: +Inf). */
static int bucket_of(const double *bounds, int n, double s)
{
    int lo = 0, hi = n; /* answer in [lo, hi] */
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (s <= bounds[mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

void metrics_ttft(metrics *m, double s)
{
    if (!m || !isfinite(s))
        return;
    if (s < 0)
        s = 0;
    int b = bucket_of(ttft_bounds, N_TTFT, s);
    pthread_mutex_lock(&m->mu);
    m->v.ttft_b[b]++;
    m->v.ttft_sum += s;
    m->v.ttft_n++;
    pthread_mutex_unlock(&m->mu);
}

void metrics_itl(metrics *m, double s)
{
    if (!m || !isfinite(s))
        return;
    if (s < 0)
        s = 0;
    int b = bucket_of(itl_bounds, N_ITL, s);
    pthread_mutex_lock(&m->mu);
    m->v.itl_b[b]++;
    m->v.itl_sum += s;
    m->v.itl_n++;
    pthread_mutex_unlock(&m->mu);
}

void metrics_kv_blocks(metrics *m, int64_t total, int64_t used, int64_t cached)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->mu);
    m->v.blk_total = total;
    m->v.blk_used = used;
    m->v.blk_cached = cached;
    pthread_mutex_unlock(&m->mu);
}

void metrics_kv_block_bytes(metrics *m, int64_t bytes)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->mu);
    m->v.blk_bytes = bytes;
    pthread_mutex_unlock(&m->mu);
}

void metrics_prompt_evaluated(metrics *m, int64_t total)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->mu);
    if (total > m->v.prompt_eval)
        m->v.prompt_eval = total;
    pthread_mutex_unlock(&m->mu);
}

void metrics_grammar_mask(metrics *m, double s)
{
    if (!m || !(s >= 0) || s == INFINITY)
        return;
    pthread_mutex_lock(&m->mu);
    m->v.gram_masks++;
    m->v.gram_s += s;
    pthread_mutex_unlock(&m->mu);
}

void metrics_preempt(metrics *m)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->mu);
    m->v.preempt++;
    pthread_mutex_unlock(&m->mu);
}

void metrics_gauges(metrics *m, int64_t queue_depth, int64_t slots_active, int64_t slots_total,
                    int64_t kv_used, int64_t kv_total)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->mu);
    m->v.queue = queue_depth;
    m->v.active = slots_active;
    m->v.slots = slots_total;
    m->v.kv_used = kv_used;
    m->v.kv_total = kv_total;
    pthread_mutex_unlock(&m->mu);
}

/* ---- rendering ---- */

/* A float sample value: the shortest of %.15g / %.17g that reads back as v
 * (so sums round-trip exactly), or +Inf / -Inf / NaN as the format spells
 * them. */
static void fmt_double(char *buf, size_t size, double v)
{
    if (isnan(v)) {
        snprintf(buf, size, "NaN");
    } else if (isinf(v)) {
        snprintf(buf, size, v > 0 ? "+Inf" : "-Inf");
    } else {
        snprintf(buf, size, "%.15g", v);
        if (strtod(buf, NULL) != v)
            snprintf(buf, size, "%.17g", v);
    }
}

static void family(sbuf *b, const char *name, const char *type, const char *help)
{
    sb_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void scalar(sbuf *b, const char *model, const char *name, const char *type,
                   const char *help, int64_t v)
{
    family(b, name, type, help);
    sb_printf(b, "%s{model=\"%s\"} %" PRId64 "\n", name, model, v);
}

static void histogram(sbuf *b, const char *model, const char *name, const char *help,
                      const double *bounds, int n, const int64_t *counts, double sum,
                      int64_t count)
{
    family(b, name, "histogram", help);
    int64_t cum = 0;
    for (int i = 0; i < n; i++) {
        cum += counts[i];
        sb_printf(b, "%s_bucket{model=\"%s\",le=\"%g\"} %" PRId64 "\n", name, model, bounds[i], cum);
    }
    cum += counts[n];
    sb_printf(b, "%s_bucket{model=\"%s\",le=\"+Inf\"} %" PRId64 "\n", name, model, cum);
    char num[64];
    fmt_double(num, sizeof num, sum);
    sb_printf(b, "%s_sum{model=\"%s\"} %s\n", name, model, num);
    sb_printf(b, "%s_count{model=\"%s\"} %" PRId64 "\n", name, model, count);
}

int metrics_render(metrics *m, char **out, size_t *len)
{
    sbuf b = {0};
    values *v = NULL;
    if (out)
        *out = NULL;
    if (len)
        *len = 0;
    if (!m || !out || !len)
        return err_set(SOV_EINVAL, "metrics_render: NULL argument");
    v = malloc(sizeof *v);
    if (!v)
        goto fail_nomem;

    pthread_mutex_lock(&m->mu);
    memcpy(v, &m->v, sizeof *v);
    pthread_mutex_unlock(&m->mu);

    const char *mo = m->model;
    family(&b, "sov_requests_total", "counter", "HTTP requests finished, by route and status.");
    for (int e = 0; e < N_EP; e++)
        for (int s = 0; s < N_STATUS; s++)
            if (v->req[e][s])
                sb_printf(&b, "sov_requests_total{model=\"%s\",endpoint=\"%s\",status=\"%d\"} %" PRId64 "\n",
                          mo, endpoints[e], s, v->req[e][s]);
    scalar(&b, mo, "sov_prompt_tokens_total", "counter",
           "Prompt tokens of finished requests.", v->prompt);
    scalar(&b, mo, "sov_generated_tokens_total", "counter",
           "Tokens generated for finished requests.", v->generated);
    scalar(&b, mo, "sov_prompt_cached_tokens_total", "counter",
           "Prompt tokens served from the prefix cache.", v->cached);
    scalar(&b, mo, "sov_queue_depth", "gauge", "Requests waiting for a slot.", v->queue);
    scalar(&b, mo, "sov_slots_active", "gauge", "Slots busy with a request.", v->active);
    scalar(&b, mo, "sov_slots_total", "gauge", "Slots (sequences decoded together).", v->slots);
    family(&b, "sov_prefix_cache_hit_ratio", "gauge",
           "Share of finished requests' prompt tokens taken from the prefix cache (cached / prompt tokens).");
    sb_printf(&b, "sov_prefix_cache_hit_ratio{model=\"%s\"} %.6f\n", mo,
              v->prompt > 0 ? (double)v->cached / (double)v->prompt : 0.0);
    scalar(&b, mo, "sov_kv_positions_used", "gauge", "KV cache positions in use over all slots.",
           v->kv_used);
    scalar(&b, mo, "sov_kv_positions_total", "gauge", "KV cache positions over all slots.",
           v->kv_total);
    scalar(&b, mo, "sov_kv_blocks_total", "gauge", "KV pool blocks (32 positions each).", v->blk_total);
    scalar(&b, mo, "sov_kv_block_bytes", "gauge",
           "Bytes of one KV block: K and V of 32 positions over all layers, in the cache's type.", v->blk_bytes);
    scalar(&b, mo, "sov_kv_blocks_used", "gauge", "KV blocks referenced by running sequences.", v->blk_used);
    scalar(&b, mo, "sov_kv_blocks_cached", "gauge",
           "KV blocks held only by the prefix cache (evicted least recently used first).", v->blk_cached);
    scalar(&b, mo, "sov_prompt_tokens_evaluated_total", "counter",
           "Prompt tokens the engine evaluated (cached prefix blocks are not; a preempted request's are again).",
           v->prompt_eval);
    scalar(&b, mo, "sov_preemptions_total", "counter",
           "Sequences preempted (blocks given back, resumed later) because the KV pool was full.", v->preempt);
    scalar(&b, mo, "sov_grammar_masks_total", "counter",
           "Token masks computed for grammar-constrained requests (one per constrained token).", v->gram_masks);
    family(&b, "sov_grammar_mask_seconds_total", "counter", "Seconds spent computing grammar token masks.");
    sb_printf(&b, "sov_grammar_mask_seconds_total{model=\"%s\"} %.9f\n", mo, v->gram_s);
    histogram(&b, mo, "sov_time_to_first_token_seconds",
              "Seconds from request arrival to its first generated token.", ttft_bounds, N_TTFT,
              v->ttft_b, v->ttft_sum, v->ttft_n);
    histogram(&b, mo, "sov_inter_token_latency_seconds",
              "Seconds between consecutive generated tokens of a request.", itl_bounds, N_ITL,
              v->itl_b, v->itl_sum, v->itl_n);
    if (b.oom)
        goto fail_nomem;

    free(v);
    *len = b.len;
    *out = sb_take(&b);
    return *out ? 0 : err_set(SOV_ENOMEM, "metrics_render: out of memory");
fail_nomem:
    free(v);
    sb_free(&b);
    return err_set(SOV_ENOMEM, "metrics_render: out of memory");
}
