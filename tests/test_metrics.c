/* metrics: 4 threads record requests, tokens and latencies concurrently
 * (10,000 rounds each) while the main thread renders; every rendering
 * parses under the exposition grammar and its histograms are internally
 * consistent (cumulative buckets, +Inf == _count). Afterwards every counter,
 * bucket and sum equals the value worked out from what the threads
 * recorded, exactly (latencies are dyadic, so their sums are exact in any
 * order). Also: label escaping of the model, unknown endpoints and odd
 * statuses, gauges, and ignored / clamped observations. */
#include "t.h"

#include "base/err.h"
#include "server/metrics.h"

#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#define N_THREADS 4
#define N_ROUNDS 10000

/* Dyadic latencies (exact in binary, so sums do not depend on order); some
 * equal a bucket bound (TTFT 0.5 and 1, ITL 5) and some lie past the last
 * bound. */
static const double ttft_vals[] = {0.0078125, 0.03125, 0.5, 1, 3.25, 100};
static const double itl_vals[] = {0.0009765625, 0.015625, 0.0625, 0.25, 1.5, 5, 8};
#define N_TV ((int)(sizeof ttft_vals / sizeof ttft_vals[0]))
#define N_IV ((int)(sizeof itl_vals / sizeof itl_vals[0]))

/* Endpoints the threads use, in rotation; the last three fold into "other". */
static const char *const eps[] = {
    "/v1/chat/completions", "/v1/completions", "/v1/models", "/health", "/metrics",
    "/v1/embeddings", "/", NULL,
};
#define N_EPS ((int)(sizeof eps / sizeof eps[0]))
static const int statuses[] = {200, 400, 503};
#define N_STS ((int)(sizeof statuses / sizeof statuses[0]))

typedef struct {
    metrics *m;
    int id;
} worker;

static atomic_int workers_done;

static void *work(void *arg)
{
    worker *w = arg;
    for (int i = 0; i < N_ROUNDS; i++) {
        int k = i + w->id;
        metrics_request(w->m, eps[k % N_EPS], statuses[k % N_STS]);
        metrics_tokens(w->m, 3, 2, 1);
        metrics_ttft(w->m, ttft_vals[k % N_TV]);
        metrics_itl(w->m, itl_vals[k % N_IV]);
        metrics_itl(w->m, itl_vals[(k + 3) % N_IV]);
        metrics_gauges(w->m, k % 5, 1, 4, k, 4096);
    }
    atomic_fetch_add(&workers_done, 1);
    return NULL;
}

/* ---- a small parser of the text exposition format ---- */

#define MAX_TYPES 64
typedef struct {
    char name[128];
    char type[64];
} family;

static bool name_start(int c) { return isalpha(c) || c == '_' || c == ':'; }
static bool name_char(int c) { return isalnum(c) || c == '_' || c == ':'; }

/* A sample value: a float as strtod reads it, or +Inf / -Inf / NaN. */
static bool parse_value(const char *s, const char *end, double *v)
{
    size_t n = (size_t)(end - s);
    if (n == 4 && !memcmp(s, "+Inf", 4)) {
        *v = INFINITY;
        return true;
    }
    if (n == 4 && !memcmp(s, "-Inf", 4)) {
        *v = -INFINITY;
        return true;
    }
    if (n == 3 && !memcmp(s, "NaN", 3)) {
        *v = NAN;
        return true;
    }
    if (n == 0 || n > 63)
        return false;
    char buf[64];
    memcpy(buf, s, n);
    buf[n] = 0;
    if (!isdigit((unsigned char)buf[0]) && buf[0] != '-' && buf[0] != '+' && buf[0] != '.')
        return false;
    char *e;
    *v = strtod(buf, &e);
    return *e == 0 && isfinite(*v);
}

/* Checks one sample line `name{l="v",...} value` (labels optional, no
 * timestamp since metrics never writes one). Sets *name_len to the length
 * of the metric name and *v to the value. Returns NULL or what is wrong. */
static const char *parse_sample(const char *s, const char *end, size_t *name_len, double *v)
{
    const char *p = s;
    if (p == end || !name_start((unsigned char)*p))
        return "bad metric name";
    while (p < end && name_char((unsigned char)*p))
        p++;
    *name_len = (size_t)(p - s);
    if (p < end && *p == '{') {
        p++;
        while (p < end && *p != '}') {
            if (!name_start((unsigned char)*p) || *p == ':')
                return "bad label name";
            while (p < end && (isalnum((unsigned char)*p) || *p == '_'))
                p++;
            if (p + 1 >= end || p[0] != '=' || p[1] != '"')
                return "label without =\"";
            p += 2;
            while (p < end && *p != '"') {
                if (*p == '\\') {
                    if (p + 1 >= end || (p[1] != '\\' && p[1] != '"' && p[1] != 'n'))
                        return "bad escape in label value";
                    p += 2;
                } else {
                    p++;
                }
            }
            if (p >= end)
                return "unterminated label value";
            p++; /* closing quote */
            if (p < end && *p == ',')
                p++;
            else if (p < end && *p != '}')
                return "labels not separated by ,";
        }
        if (p >= end)
            return "unterminated labels";
        p++; /* } */
    }
    if (p >= end || *p != ' ')
        return "no space before value";
    p++;
    if (!parse_value(p, end, v))
        return "bad value";
    return NULL;
}

/* Checks the whole output: each line is a # HELP / # TYPE comment or a
 * sample; each sample belongs to a family whose # TYPE came before it
 * (histogram samples as name_bucket / _sum / _count); every histogram has
 * cumulative buckets ending in le="+Inf" equal to its _count. Returns NULL
 * or what is wrong, with the offending line in line[]. */
static const char *check_grammar(const char *txt, size_t len, char *line, size_t line_size)
{
    static family fams[MAX_TYPES];
    int nf = 0;
    const char *p = txt, *end = txt + len;
    double last_bucket = -1, inf_bucket = -1;
    line[0] = 0;
    if (len == 0 || txt[len - 1] != '\n')
        return "output does not end with a newline";
    if (strlen(txt) != len)
        return "len differs from strlen";
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = (size_t)(nl - p);
        snprintf(line, line_size, "%.*s", (int)n, p);
        if (n == 0)
            return "empty line";
        if (p[0] == '#') {
            char kw[8], name[128], rest[64];
            if (sscanf(line, "# %7s %127s %63s", kw, name, rest) != 3)
                return "comment not # HELP/TYPE name text";
            if (!strcmp(kw, "TYPE")) {
                if (strcmp(rest, "counter") && strcmp(rest, "gauge") && strcmp(rest, "histogram") &&
                    strcmp(rest, "summary") && strcmp(rest, "untyped"))
                    return "unknown TYPE";
                if (nf == MAX_TYPES)
                    return "too many families";
                for (int i = 0; i < nf; i++)
                    if (!strcmp(fams[i].name, name))
                        return "family TYPE'd twice";
                snprintf(fams[nf].name, sizeof fams[nf].name, "%s", name);
                snprintf(fams[nf].type, sizeof fams[nf].type, "%s", rest);
                nf++;
                last_bucket = -1;
                inf_bucket = -1;
            } else if (strcmp(kw, "HELP")) {
                return "comment neither HELP nor TYPE";
            }
        } else {
            size_t nl_name;
            double v;
            const char *why = parse_sample(p, nl, &nl_name, &v);
            if (why)
                return why;
            if (nf == 0)
                return "sample before any TYPE";
            family *f = &fams[nf - 1];
            size_t fl = strlen(f->name);
            if (!strcmp(f->type, "histogram")) {
                if (nl_name < fl || memcmp(p, f->name, fl))
                    return "histogram sample outside its family";
                const char *suf = p + fl;
                size_t sl = nl_name - fl;
                if (sl == 7 && !memcmp(suf, "_bucket", 7)) {
                    if (v < last_bucket)
                        return "buckets not cumulative";
                    last_bucket = v;
                    if (strstr(line, "le=\"+Inf\""))
                        inf_bucket = v;
                } else if (sl == 6 && !memcmp(suf, "_count", 6)) {
                    if (inf_bucket < 0)
                        return "_count before the le=\"+Inf\" bucket";
                    if (v != inf_bucket)
                        return "+Inf bucket differs from _count";
                } else if (!(sl == 4 && !memcmp(suf, "_sum", 4))) {
                    return "unknown histogram suffix";
                }
            } else {
                if (nl_name != fl || memcmp(p, f->name, fl))
                    return "sample name differs from its family";
                if (!strcmp(f->type, "counter") && (fl < 6 || strcmp(f->name + fl - 6, "_total")))
                    return "counter not ending in _total";
            }
        }
        p = nl + 1;
    }
    line[0] = 0;
    return NULL;
}

/* Value of the sample whose text before the space is exactly `series`; NAN
 * if there is none. */
static double value_of(const char *txt, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = txt; *p;) {
        const char *nl = strchr(p, '\n');
        if (!nl)
            break;
        if ((size_t)(nl - p) > n && !memcmp(p, series, n) && p[n] == ' ')
            return strtod(p + n + 1, NULL);
        p = nl + 1;
    }
    return NAN;
}

static int count_lines_with(const char *txt, const char *needle)
{
    int k = 0;
    for (const char *p = txt; (p = strstr(p, needle)); p++)
        k++;
    return k;
}

/* Checks one histogram of the final output against the values recorded:
 * counts[i] observations of vals[i]. */
static void check_hist(const char *txt, const char *name, const double *vals, const int64_t *counts,
                       int nv)
{
    char key[256], label[64], tn[160];
    bool ok = true;
    int n_buckets = 0;
    double prev_le = -1;
    /* every bucket line: le parsed from the output, count = observations <= le */
    snprintf(key, sizeof key, "%s_bucket{model=\"m\",le=\"", name);
    for (const char *p = txt; (p = strstr(p, key)); p++) {
        const char *le = p + strlen(key);
        const char *q = strchr(le, '"');
        snprintf(label, sizeof label, "%.*s", (int)(q - le), le);
        double bound = !strcmp(label, "+Inf") ? INFINITY : strtod(label, NULL);
        if (!(bound > prev_le)) {
            ok = false;
            printf("INFO %s: le=%s not above the previous bound\n", name, label);
        }
        prev_le = bound;
        int64_t want = 0;
        for (int i = 0; i < nv; i++)
            if (vals[i] <= bound)
                want += counts[i];
        double got = strtod(q + 3, NULL); /* past `"} ` */
        if (got != (double)want) {
            ok = false;
            printf("INFO %s le=%s: %.0f, want %" PRId64 "\n", name, label, got, want);
        }
        n_buckets++;
    }
    snprintf(tn, sizeof tn, "%s buckets (%d) count observations <= le", name, n_buckets);
    t_check(ok && n_buckets >= 2 && isinf(prev_le), tn, "see INFO lines (last le %g)", prev_le);

    int64_t n = 0;
    double sum = 0;
    for (int i = 0; i < nv; i++) {
        n += counts[i];
        sum += vals[i] * (double)counts[i];
    }
    snprintf(key, sizeof key, "%s_count{model=\"m\"}", name);
    double got_n = value_of(txt, key);
    snprintf(key, sizeof key, "%s_sum{model=\"m\"}", name);
    double got_sum = value_of(txt, key);
    snprintf(tn, sizeof tn, "%s _count and _sum exact", name);
    t_check(got_n == (double)n && got_sum == sum, tn, "count %.0f want %" PRId64 ", sum %.17g want %.17g",
            got_n, n, got_sum, sum);
}

static void test_concurrent(void)
{
    metrics *m = NULL;
    if (!t_check(metrics_new(&m, "m") == 0, "metrics_new", "%s", err_msg()))
        return;
    pthread_t th[N_THREADS];
    worker w[N_THREADS];
    int started = 0;
    for (int i = 0; i < N_THREADS; i++) {
        w[i] = (worker){m, i};
        if (pthread_create(&th[i], NULL, work, &w[i]) != 0)
            break;
        started++;
    }
    if (!t_check(started == N_THREADS, "4 recording threads started", "only %d", started))
        goto done;

    /* render while they record: every snapshot parses and is consistent */
    int renders = 0, bad = 0;
    char line[512], why_line[512] = "";
    const char *why = NULL;
    while (atomic_load(&workers_done) < N_THREADS || renders == 0) {
        char *txt = NULL;
        size_t len = 0;
        if (metrics_render(m, &txt, &len) != 0) {
            why = err_msg();
            bad++;
            break;
        }
        const char *w1 = check_grammar(txt, len, line, sizeof line);
        if (w1 && !why) {
            why = w1;
            snprintf(why_line, sizeof why_line, "%s", line);
        }
        bad += w1 != NULL;
        free(txt);
        renders++;
    }
    t_check(bad == 0, "renders during recording parse and are consistent", "%d bad of %d: %s [%s]", bad,
            renders, why ? why : "", why_line);
    for (int i = 0; i < N_THREADS; i++)
        pthread_join(th[i], NULL);
    started = 0;

    char *txt = NULL;
    size_t len = 0;
    if (!t_check(metrics_render(m, &txt, &len) == 0, "metrics_render", "%s", err_msg()))
        goto done;
    const char *w2 = check_grammar(txt, len, line, sizeof line);
    t_check(!w2, "final output matches the exposition grammar", "%s [%s]", w2 ? w2 : "", line);

    /* requests: expected counts per (endpoint label, status) */
    static const char *const labels[] = {"/v1/chat/completions", "/v1/completions", "/v1/models",
                                         "/health", "/metrics", "other"};
    int64_t want[6][N_STS] = {{0}};
    for (int t = 0; t < N_THREADS; t++)
        for (int i = 0; i < N_ROUNDS; i++) {
            int k = i + t;
            int e = k % N_EPS;
            want[e < 5 ? e : 5][k % N_STS]++;
        }
    bool ok = true;
    int64_t total = 0;
    for (int e = 0; e < 6; e++)
        for (int s = 0; s < N_STS; s++) {
            char key[256];
            snprintf(key, sizeof key, "sov_requests_total{model=\"m\",endpoint=\"%s\",status=\"%d\"}",
                     labels[e], statuses[s]);
            double got = value_of(txt, key);
            if (got != (double)want[e][s]) {
                ok = false;
                printf("INFO %s = %g, want %" PRId64 "\n", key, got, want[e][s]);
            }
            total += want[e][s];
        }
    t_check(ok && total == N_THREADS * N_ROUNDS, "sov_requests_total per endpoint and status exact",
            "see INFO lines");
    int n_series = count_lines_with(txt, "\nsov_requests_total{");
    t_check(n_series == 6 * N_STS, "unknown endpoints fold into \"other\" (no other series)",
            "%d request series, want %d", n_series, 6 * N_STS);
    t_check(!strstr(txt, "/v1/embeddings") && !strstr(txt, "endpoint=\"/\""),
            "unknown endpoint names never appear", "found one in the output");

    double pt = value_of(txt, "sov_prompt_tokens_total{model=\"m\"}");
    double gt = value_of(txt, "sov_generated_tokens_total{model=\"m\"}");
    double ct = value_of(txt, "sov_prompt_cached_tokens_total{model=\"m\"}");
    double r = N_THREADS * N_ROUNDS;
    t_check(pt == 3 * r && gt == 2 * r && ct == r, "token counters exact", "prompt %g generated %g cached %g",
            pt, gt, ct);
    double hr = value_of(txt, "sov_prefix_cache_hit_ratio{model=\"m\"}");
    t_check(fabs(hr - 1.0 / 3) < 1e-6, "prefix cache hit ratio = cached / prompt tokens", "%g, want 1/3", hr);
    double st = value_of(txt, "sov_slots_total{model=\"m\"}");
    double kt = value_of(txt, "sov_kv_positions_total{model=\"m\"}");
    double sa = value_of(txt, "sov_slots_active{model=\"m\"}");
    t_check(st == 4 && kt == 4096 && sa == 1, "gauges from the concurrent calls", "slots %g kv %g active %g",
            st, kt, sa);

    int64_t tc[N_TV] = {0}, ic[N_IV] = {0};
    for (int t = 0; t < N_THREADS; t++)
        for (int i = 0; i < N_ROUNDS; i++) {
            int k = i + t;
            tc[k % N_TV]++;
            ic[k % N_IV]++;
            ic[(k + 3) % N_IV]++;
        }
    check_hist(txt, "sov_time_to_first_token_seconds", ttft_vals, tc, N_TV);
    check_hist(txt, "sov_inter_token_latency_seconds", itl_vals, ic, N_IV);

    static const char *const types[] = {
        "# TYPE sov_requests_total counter\n",
        "# TYPE sov_prompt_tokens_total counter\n",
        "# TYPE sov_generated_tokens_total counter\n",
        "# TYPE sov_prompt_cached_tokens_total counter\n",
        "# TYPE sov_queue_depth gauge\n",
        "# TYPE sov_slots_active gauge\n",
        "# TYPE sov_slots_total gauge\n",
        "# TYPE sov_kv_positions_used gauge\n",
        "# TYPE sov_kv_positions_total gauge\n",
        "# TYPE sov_time_to_first_token_seconds histogram\n",
        "# TYPE sov_inter_token_latency_seconds histogram\n",
    };
    int missing = -1;
    for (int i = 0; i < (int)(sizeof types / sizeof types[0]); i++)
        if (!strstr(txt, types[i]))
            missing = i;
    t_check(missing < 0, "every family has its # TYPE line", "missing %s", missing >= 0 ? types[missing] : "");
    free(txt);
done:
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    metrics_free(m);
}

static void test_escaping_and_edges(void)
{
    metrics *m = NULL;
    if (!t_check(metrics_new(&m, "a\"b\\c\nd") == 0, "metrics_new (odd model name)", "%s", err_msg()))
        return;
    metrics_request(m, "/health", 200);
    metrics_request(m, "/health", 1234); /* out of range: status "0" */
    metrics_request(m, "/v1/models", -5);
    metrics_request(m, "/v1/models/extra", 404);
    metrics_tokens(m, -1, 5, -2);
    metrics_ttft(m, NAN);
    metrics_ttft(m, INFINITY);
    metrics_ttft(m, -1); /* counts as 0 */
    metrics_itl(m, 0.01); /* equal to a bound: in that bucket */
    metrics_gauges(m, 7, 3, 8, 1000, 8192);
    metrics_gauges(m, 2, 1, 8, 500, 8192); /* the last call wins */

    /* NULL metrics: no-ops */
    metrics_request(NULL, "/health", 200);
    metrics_tokens(NULL, 1, 1, 1);
    metrics_ttft(NULL, 1);
    metrics_itl(NULL, 1);
    metrics_gauges(NULL, 1, 1, 1, 1, 1);

    char *txt = NULL;
    size_t len = 0;
    if (!t_check(metrics_render(m, &txt, &len) == 0, "metrics_render (odd model name)", "%s", err_msg()))
        goto done;
    char line[512];
    const char *why = check_grammar(txt, len, line, sizeof line);
    t_check(!why, "escaped output matches the exposition grammar", "%s [%s]", why ? why : "", line);

    const char *lab = "model=\"a\\\"b\\\\c\\nd\"";
    int n_lab = count_lines_with(txt, lab);
    int n_samples = 0;
    for (const char *p = txt; *p;) {
        const char *nl = strchr(p, '\n');
        n_samples += *p != '#';
        p = nl + 1;
    }
    t_check(n_lab == n_samples && n_samples > 0, "model label escaped (\\\\ \\\" \\n) on every sample",
            "%d of %d samples carry %s", n_lab, n_samples, lab);
    t_check(!strstr(txt, "c\nd"), "no raw newline from the label", "found one");

    char key[256];
    snprintf(key, sizeof key, "sov_requests_total{%s,endpoint=\"/health\",status=\"200\"}", lab);
    double h200 = value_of(txt, key);
    snprintf(key, sizeof key, "sov_requests_total{%s,endpoint=\"/health\",status=\"0\"}", lab);
    double h0 = value_of(txt, key);
    snprintf(key, sizeof key, "sov_requests_total{%s,endpoint=\"/v1/models\",status=\"0\"}", lab);
    double m0 = value_of(txt, key);
    snprintf(key, sizeof key, "sov_requests_total{%s,endpoint=\"other\",status=\"404\"}", lab);
    double o404 = value_of(txt, key);
    t_check(h200 == 1 && h0 == 1 && m0 == 1 && o404 == 1 && count_lines_with(txt, "\nsov_requests_total{") == 4,
            "odd statuses count as 0, near-miss routes as other", "%g %g %g %g", h200, h0, m0, o404);

    snprintf(key, sizeof key, "sov_prompt_tokens_total{%s}", lab);
    double pt = value_of(txt, key);
    snprintf(key, sizeof key, "sov_generated_tokens_total{%s}", lab);
    double gt = value_of(txt, key);
    snprintf(key, sizeof key, "sov_prompt_cached_tokens_total{%s}", lab);
    double ct = value_of(txt, key);
    t_check(pt == 0 && gt == 5 && ct == 0, "negative token counts add 0", "%g %g %g", pt, gt, ct);

    snprintf(key, sizeof key, "sov_time_to_first_token_seconds_count{%s}", lab);
    double tn = value_of(txt, key);
    snprintf(key, sizeof key, "sov_time_to_first_token_seconds_sum{%s}", lab);
    double ts = value_of(txt, key);
    snprintf(key, sizeof key, "sov_time_to_first_token_seconds_bucket{%s,le=\"0.01\"}", lab);
    double tb = value_of(txt, key);
    t_check(tn == 1 && ts == 0 && tb == 1, "NaN/Inf latencies ignored, negative ones count as 0",
            "count %g sum %g first bucket %g", tn, ts, tb);

    snprintf(key, sizeof key, "sov_inter_token_latency_seconds_bucket{%s,le=\"0.01\"}", lab);
    double ib = value_of(txt, key);
    snprintf(key, sizeof key, "sov_inter_token_latency_seconds_bucket{%s,le=\"0.005\"}", lab);
    double ib0 = value_of(txt, key);
    snprintf(key, sizeof key, "sov_inter_token_latency_seconds_sum{%s}", lab);
    double isum = value_of(txt, key);
    t_check(ib == 1 && ib0 == 0 && isum == 0.01, "a value equal to a bound lands in its bucket; sum round-trips",
            "le=0.01 %g, le=0.005 %g, sum %.17g", ib, ib0, isum);

    snprintf(key, sizeof key, "sov_queue_depth{%s}", lab);
    double q = value_of(txt, key);
    snprintf(key, sizeof key, "sov_kv_positions_used{%s}", lab);
    double ku = value_of(txt, key);
    snprintf(key, sizeof key, "sov_slots_active{%s}", lab);
    double sa = value_of(txt, key);
    t_check(q == 2 && ku == 500 && sa == 1, "gauges: the last call wins", "queue %g kv_used %g active %g", q, ku,
            sa);
    free(txt);

    txt = (char *)1;
    len = 1;
    int rc = metrics_render(NULL, &txt, &len);
    t_check(rc == SOV_EINVAL && txt == NULL && len == 0, "metrics_render(NULL) is SOV_EINVAL", "rc %d", rc);
done:
    metrics_free(m);
    metrics_free(NULL);
}

static void test_empty(void)
{
    metrics *m = NULL;
    if (!t_check(metrics_new(&m, NULL) == 0, "metrics_new (NULL model)", "%s", err_msg()))
        return;
    char *txt = NULL;
    size_t len = 0;
    if (metrics_render(m, &txt, &len) == 0) {
        char line[512];
        const char *why = check_grammar(txt, len, line, sizeof line);
        t_check(!why && strstr(txt, "sov_queue_depth{model=\"\"} 0\n") &&
                    strstr(txt, "sov_time_to_first_token_seconds_bucket{model=\"\",le=\"+Inf\"} 0\n") &&
                    strstr(txt, "sov_inter_token_latency_seconds_sum{model=\"\"} 0\n") &&
                    !strstr(txt, "\nsov_requests_total{"),
                "fresh metrics render zeros and no request series", "%s [%s]", why ? why : "values", line);
        free(txt);
    } else {
        t_check(false, "fresh metrics render", "%s", err_msg());
    }
    metrics_free(m);
}

int main(void)
{
    test_concurrent();
    test_escaping_and_edges();
    test_empty();
    return t_done();
}
