#include "route.h"

#include "../base/err.h"
#include "../base/sbuf.h"
#include "health.h"
#include "policy.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* route decision classes, for sov_route_decisions_total */
enum { RS_PRIMARY, RS_PRIVACY, RS_OVERFLOW, RS_FAILOVER, RS_REPLICA, RS_AFFINITY, RS_NONE, RS_N };
static const char *const rs_names[RS_N] = {"primary", "privacy", "overflow", "failover", "replica", "affinity",
                                           "unavailable"};

typedef struct rt_be {
    backend *b;
    breaker brk;
    int inflight;
    int64_t n_ok, n_fail, n_client;
    int health;          /* -1 unknown, 0 down, 1 up */
    char health_why[160];
    double health_ms;
} rt_be;

/* One finished request in the routing log (no prompt text). */
typedef struct rt_logent {
    int64_t seq;         /* 1, 2, ...: the order of finishing */
    double time;         /* when it finished, Unix seconds */
    char id[32];
    char model[128];
    char backend[64];
    char reason[256];
    int decision;        /* RS_* */
    int status;          /* what the client was sent; 499: it left early */
    bool stream, local_only, broken;
    int64_t tokens_in, tokens_out; /* -1: unknown */
    double latency_ms;
} rt_logent;

struct router {
    const cfg *c;
    rt_be *be;
    backend **bs;
    int nb;
    pthread_mutex_t mu;
    int busy;
    int64_t reasons[RS_N];
    FILE *audit;
    pthread_mutex_t audit_mu;
    bool log_prompts;
    health *h;
    int64_t created;
    atomic_uint_fast64_t ids;
    rt_logent log[ROUTER_LOG_N]; /* a ring: entry seq lives at (seq - 1) % ROUTER_LOG_N */
    int64_t log_seq;             /* the last seq written (0: none) */
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void on_probe(void *ctx, int i, bool ok, const char *why, double ms)
{
    router *r = ctx;
    pthread_mutex_lock(&r->mu);
    rt_be *e = &r->be[i];
    int before = e->brk.state;
    brk_probe(&e->brk, ok, now_s(), (int)r->c->srv.breaker_failures, r->c->srv.breaker_cooldown_s);
    if (e->health != (ok ? 1 : 0))
        fprintf(stderr, "sov serve: backend %s is %s%s%s\n", e->b->name, ok ? "up" : "down", ok ? "" : ": ",
                ok ? "" : why);
    if (before != e->brk.state)
        fprintf(stderr, "sov serve: backend %s: breaker %s -> %s (health check)\n", e->b->name, brk_name(before),
                brk_name(e->brk.state));
    e->health = ok ? 1 : 0;
    snprintf(e->health_why, sizeof e->health_why, "%s", ok ? "" : why);
    e->health_ms = ms;
    pthread_mutex_unlock(&r->mu);
}

int router_new(router **out, const cfg *c, backend **bs, FILE *audit, bool log_prompts)
{
    *out = NULL;
    router *r = calloc(1, sizeof *r);
    rt_be *be = calloc((size_t)(c->n_backends > 0 ? c->n_backends : 1), sizeof *be);
    backend **bcopy = calloc((size_t)(c->n_backends > 0 ? c->n_backends : 1), sizeof *bcopy);
    if (!r || !be || !bcopy) {
        free(r);
        free(be);
        free(bcopy);
        for (int i = 0; i < c->n_backends; i++)
            bs[i]->vt->free(bs[i]);
        return err_set(SOV_ENOMEM, "out of memory");
    }
    r->c = c;
    r->be = be;
    r->bs = bcopy;
    r->nb = c->n_backends;
    for (int i = 0; i < r->nb; i++) {
        be[i].b = bs[i];
        be[i].health = -1;
        bcopy[i] = bs[i];
    }
    pthread_mutex_init(&r->mu, NULL);
    pthread_mutex_init(&r->audit_mu, NULL);
    r->audit = audit;
    r->log_prompts = log_prompts;
    r->created = (int64_t)time(NULL);
    atomic_init(&r->ids, 0);
    int rc = health_start(&r->h, r->bs, r->nb, c->srv.health_interval_s, on_probe, r);
    if (rc) {
        router_free(r);
        return rc;
    }
    *out = r;
    return 0;
}

void router_free(router *r)
{
    if (!r)
        return;
    health_stop(r->h);
    for (int i = 0; i < r->nb; i++)
        r->be[i].b->vt->free(r->be[i].b);
    pthread_mutex_destroy(&r->mu);
    pthread_mutex_destroy(&r->audit_mu);
    free(r->be);
    free(r->bs);
    free(r);
}

/* ---- keys ---- */

static bool same_secret(const char *a, const char *k)
{
    size_t la = strlen(a), lk = strlen(k);
    unsigned diff = (unsigned)(la != lk);
    for (size_t i = 0; i < lk; i++)
        diff |= (unsigned char)k[i] ^ (unsigned char)(i < la ? a[i] : 0);
    return diff == 0;
}

bool router_has_keys(const router *r) { return r->c->n_keys > 0 || (r->c->srv.api_key && *r->c->srv.api_key); }

bool router_auth(router *r, const char *authorization, const char **key_name, bool *local_only)
{
    *key_name = "-";
    *local_only = false;
    if (!router_has_keys(r))
        return true;
    if (!authorization || strncmp(authorization, "Bearer ", 7))
        return false;
    const char *a = authorization + 7;
    bool found = false;
    /* every key is compared, so the time does not tell which matched */
    for (int i = 0; i < r->c->n_keys; i++)
        if (same_secret(a, r->c->keys[i].key) && !found) {
            found = true;
            *key_name = r->c->keys[i].name;
            *local_only = r->c->keys[i].local_only;
        }
    if (r->c->srv.api_key && *r->c->srv.api_key && same_secret(a, r->c->srv.api_key) && !found) {
        found = true;
        *key_name = "server";
    }
    return found;
}

/* ---- routing ---- */

/* An error of the router's own, OpenAI-shaped, into c->resp. */
static void rt_fail(rt_call *c, int fail, int status, const char *type, const char *param, const char *code,
                    const char *fmt, ...) __attribute__((format(printf, 7, 8)));
static void rt_fail(rt_call *c, int fail, int status, const char *type, const char *param, const char *code,
                    const char *fmt, ...)
{
    bk_resp *o = &c->resp;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(o->err, sizeof o->err, fmt, ap);
    va_end(ap);
    free(o->body);
    o->fail = fail;
    o->status = status;
    o->ctype = "application/json";
    o->streamed = false;
    o->retry_after = status == 429 || status == 503 ? 1 : 0;
    json_t *j = json_pack("{s:{s:s,s:s,s:s?,s:s?}}", "error", "message", o->err, "type", type, "param", param,
                          "code", code);
    if (j && !param)
        json_object_set_new(json_object_get(j, "error"), "param", json_null());
    o->body = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    o->len = o->body ? strlen(o->body) : 0;
}

static void reason_add(rt_call *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void reason_add(rt_call *c, const char *fmt, ...)
{
    size_t n = strlen(c->reason);
    if (n + 3 >= sizeof c->reason)
        return;
    if (n) {
        memcpy(c->reason + n, "; ", 3);
        n += 2;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->reason + n, sizeof c->reason - n, fmt, ap);
    va_end(ap);
}

static const char *fail_name(int f)
{
    switch (f) {
    case BK_FAIL_CONNECT: return "connect error";
    case BK_FAIL_TIMEOUT: return "timeout";
    case BK_FAIL_UPSTREAM: return "server error";
    case BK_FAIL_BUSY: return "busy";
    case BK_FAIL_UNAVAILABLE: return "unavailable";
    case BK_FAIL_CLIENT: return "client gone";
    case BK_FAIL_REQUEST: return "bad request";
    default: return "ok";
    }
}

/* Header values must be one line of printable ASCII. */
static void sanitize(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
            *s = '?';
}

void router_open(router *r, const rt_req *q, rt_call *c)
{
    memset(c, 0, sizeof *c);
    c->bi = -1;
    c->t0 = now_s();
    c->resp.tokens_in = c->resp.tokens_out = -1;
    c->key_name = q->key_name ? q->key_name : "-";
    snprintf(c->backend, sizeof c->backend, "none");
    uint64_t idn = atomic_fetch_add(&r->ids, 1) + 1;
    snprintf(c->request_id, sizeof c->request_id, "req-%08llx-%06llx", (unsigned long long)r->created & 0xffffffffull,
             (unsigned long long)idn & 0xffffffull);
    pthread_mutex_lock(&r->mu);
    r->busy++;
    pthread_mutex_unlock(&r->mu);
    if (r->log_prompts && q->body) {
        c->prompt = malloc(q->len + 1);
        if (c->prompt) {
            memcpy(c->prompt, q->body, q->len);
            c->prompt[q->len] = 0;
        }
    }

    /* what routing needs of the body: model and stream */
    const char *body = q->body ? q->body : "";
    const char *nul = memchr(body, 0, q->len);
    if (nul) {
        rt_fail(c, BK_FAIL_REQUEST, 400, "invalid_request_error", NULL, NULL,
                "the request body is not valid JSON: a NUL byte at offset %zu", (size_t)(nul - body));
        goto unrouted;
    }
    json_error_t je;
    json_t *root = json_loadb(body, q->len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        rt_fail(c, BK_FAIL_REQUEST, 400, "invalid_request_error", NULL, NULL,
                "the request body is not valid JSON: %s (line %d, column %d)", je.text, je.line, je.column);
        goto unrouted;
    }
    json_t *mv = json_object_get(root, "model"), *sv = json_object_get(root, "stream");
    if (!json_is_object(root) || !mv || !json_is_string(mv) || (sv && !json_is_boolean(sv))) {
        if (!json_is_object(root))
            rt_fail(c, BK_FAIL_REQUEST, 400, "invalid_request_error", NULL, NULL,
                    "the request body must be a JSON object");
        else if (!mv)
            rt_fail(c, BK_FAIL_REQUEST, 400, "invalid_request_error", "model", NULL, "'model' is required");
        else if (!json_is_string(mv))
            rt_fail(c, BK_FAIL_REQUEST, 400, "invalid_request_error", "model", NULL, "'model' must be a string");
        else
            rt_fail(c, BK_FAIL_REQUEST, 400, "invalid_request_error", "stream", NULL, "'stream' must be a boolean");
        json_decref(root);
        goto unrouted;
    }
    snprintf(c->model, sizeof c->model, "%s", json_string_value(mv));
    c->stream = json_is_true(sv);
    bool named_ok = strlen(json_string_value(mv)) < sizeof c->model;
    json_decref(root);
    int ai = named_ok ? cfg_alias_find(r->c, c->model) : -1;
    if (ai < 0) {
        char have[512] = "";
        size_t hn = 0;
        for (int i = 0; i < r->c->n_aliases && hn + 8 < sizeof have; i++)
            hn += (size_t)snprintf(have + hn, sizeof have - hn, "%s'%s'", i ? ", " : "", r->c->aliases[i].name);
        if (hn >= sizeof have)
            hn = sizeof have - 1;
        rt_fail(c, BK_FAIL_REQUEST, 404, "invalid_request_error", "model", "model_not_found",
                "the model '%.200s' does not exist; this server has %s", c->model, have);
        goto unrouted;
    }
    const cfg_alias *al = &r->c->aliases[ai];

    /* privacy */
    const char *why = NULL;
    if (pol_privacy(al->local_only, q->key_local_only, q->privacy, &c->local_only, &why)) {
        rt_fail(c, BK_FAIL_REQUEST, 400, "invalid_request_error", NULL, "bad_privacy_header",
                "X-Sov-Privacy must be 'local-only' or 'any', not '%.100s'", q->privacy);
        goto unrouted;
    }
    int cls = why ? RS_PRIVACY : RS_PRIMARY;
    pol_cand cand[CFG_MAX_REFS];
    int n = 0;
    for (int i = 0; i < al->n_refs; i++) {
        rt_be *e = &r->be[al->refs[i]];
        pol_cand *p = &cand[n++];
        memset(p, 0, sizeof *p);
        p->idx = al->refs[i];
        p->name = e->b->name;
        p->local = e->b->local;
        e->b->vt->stats(e->b, &p->st);
    }
    pthread_mutex_lock(&r->mu);
    for (int i = 0; i < n; i++)
        cand[i].inflight = r->be[cand[i].idx].inflight;
    pthread_mutex_unlock(&r->mu);
    int n_all = n;
    n = pol_keep_local(cand, n, c->local_only);
    if (why)
        reason_add(c, "%s", why);
    if (n == 0) {
        reason_add(c, "no local backend");
        rt_fail(c, BK_FAIL_UNAVAILABLE, 503, "server_error", NULL, "local_only_unavailable",
                "this request is local-only (%s) and model '%s' has no local backend (%d remote one%s not used)",
                why, c->model, n_all, n_all == 1 ? "" : "s");
        cls = RS_NONE;
        goto unrouted_counted;
    }
    char pr[160] = "";
    if (al->balance == CFG_LEAST && n > 1) {
        uint64_t key = 0;
        bool has = al->affinity_prefix && pol_prefix_key(body, q->len, &key);
        pol_replicas(cand, n, has ? (const char *)&key : NULL, sizeof key, pr, sizeof pr);
        reason_add(c, "%s", pr);
        if (cls == RS_PRIMARY)
            cls = has && !strcmp(pr, "affinity prefix") ? RS_AFFINITY : RS_REPLICA;
    }
    if (pol_overflow(cand, n, al->overflow_queue, al->overflow_wait_s, pr, sizeof pr)) {
        reason_add(c, "%s", pr);
        cls = RS_OVERFLOW;
    }
    if (!c->reason[0])
        reason_add(c, n_all == 1 ? "only backend" : "preference order");

    /* try them in order while nothing has been sent */
    bool tried = false;
    for (int k = 0; k < n; k++) {
        rt_be *e = &r->be[cand[k].idx];
        pthread_mutex_lock(&r->mu);
        bool ok = brk_allow(&e->brk, now_s(), r->c->srv.breaker_cooldown_s);
        int st = e->brk.state;
        if (ok)
            e->inflight++;
        pthread_mutex_unlock(&r->mu);
        if (!ok) {
            reason_add(c, "skipped %s (breaker %s)", e->b->name, brk_name(st));
            continue;
        }
        if (tried)
            cls = RS_FAILOVER;
        tried = true;
        const cfg_alias *a = al;
        bk_req rq = {.kind = q->kind, .body = body, .len = q->len, .model = c->model,
                     .upstream_model = e->b->local ? NULL : (a->remote_model ? a->remote_model : NULL),
                     .stream = c->stream, .request_id = c->request_id, .client_fd = q->client_fd};
        bk_resp resp;
        memset(&resp, 0, sizeof resp);
        int rc = bk_open(e->b, &rq, &resp);
        if (rc == 0 || resp.fail == BK_FAIL_REQUEST || resp.fail == BK_FAIL_CLIENT) {
            free(c->resp.body);
            c->resp = resp;
            c->bi = cand[k].idx;
            snprintf(c->backend, sizeof c->backend, "%s", e->b->name);
            if (k > 0 && cls == RS_FAILOVER)
                reason_add(c, "failover to %s", e->b->name);
            goto routed;
        }
        /* the backend failed before sending anything: count it, try the next */
        pthread_mutex_lock(&r->mu);
        e->inflight--;
        e->n_fail++;
        if (resp.fail != BK_FAIL_BUSY) {
            int before = brk_result(&e->brk, false, now_s(), (int)r->c->srv.breaker_failures);
            if (before != e->brk.state)
                fprintf(stderr, "sov serve: backend %s: breaker %s -> %s after %s\n", e->b->name, brk_name(before),
                        brk_name(e->brk.state), fail_name(resp.fail));
        } else if (e->brk.state == BRK_HALF_OPEN) {
            e->brk.trial = false;
        }
        pthread_mutex_unlock(&r->mu);
        reason_add(c, "%s failed (%s)", e->b->name, fail_name(resp.fail));
        free(c->resp.body);
        c->resp = resp;
        snprintf(c->backend, sizeof c->backend, "%s", e->b->name);
    }
    if (!tried) {
        rt_fail(c, BK_FAIL_UNAVAILABLE, 503, "server_error", NULL, "backends_unavailable",
                "no backend of model '%s' can take requests now (%s)", c->model, c->reason);
        snprintf(c->backend, sizeof c->backend, "none");
    }
    cls = RS_NONE;
    goto unrouted_counted;
routed:
    sanitize(c->reason);
    c->decision = cls;
    pthread_mutex_lock(&r->mu);
    r->reasons[cls]++;
    pthread_mutex_unlock(&r->mu);
    return;
unrouted:
    cls = RS_NONE;
    if (!c->reason[0])
        reason_add(c, "not routed: %s", c->resp.status == 404 ? "unknown model" : "bad request");
unrouted_counted:
    sanitize(c->reason);
    c->decision = cls;
    pthread_mutex_lock(&r->mu);
    r->reasons[cls]++;
    pthread_mutex_unlock(&r->mu);
}

static void audit_line(router *r, const rt_call *c, int status, double ms)
{
    if (!r->audit)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[96];
    snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000L);
    json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:i,s:b,s:b,s:f,s:I}", "time", when, "id", c->request_id, "key",
                          c->key_name, "model", c->model, "backend", c->backend, "reason", c->reason, "status", status,
                          "stream", c->stream, "local_only", c->local_only, "latency_ms", ms, "bytes_out",
                          (json_int_t)c->bytes_out);
    if (!o)
        return;
    json_object_set_new(o, "tokens_in", c->resp.tokens_in >= 0 ? json_integer(c->resp.tokens_in) : json_null());
    json_object_set_new(o, "tokens_out", c->resp.tokens_out >= 0 ? json_integer(c->resp.tokens_out) : json_null());
    if (c->prompt) {
        json_t *p = json_loads(c->prompt, 0, NULL);
        json_object_set_new(o, "request", p ? p : json_string(c->prompt));
    }
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!s)
        return;
    pthread_mutex_lock(&r->audit_mu);
    fputs(s, r->audit);
    fputc('\n', r->audit);
    fflush(r->audit);
    pthread_mutex_unlock(&r->audit_mu);
    free(s);
}

/* Appends c to the routing log (under r->mu). */
static void log_add(router *r, const rt_call *c, int status, bool broken, double ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    rt_logent *e = &r->log[r->log_seq % ROUTER_LOG_N];
    e->seq = ++r->log_seq;
    e->time = (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
    snprintf(e->id, sizeof e->id, "%s", c->request_id);
    snprintf(e->model, sizeof e->model, "%s", c->model);
    snprintf(e->backend, sizeof e->backend, "%s", c->backend);
    snprintf(e->reason, sizeof e->reason, "%s", c->reason);
    e->decision = c->decision;
    e->status = status;
    e->stream = c->stream;
    e->local_only = c->local_only;
    e->broken = broken;
    e->tokens_in = c->resp.tokens_in;
    e->tokens_out = c->resp.tokens_out;
    e->latency_ms = ms;
}

void router_finish(router *r, rt_call *c, int status, bool broken, bool client_gone)
{
    bk_close(&c->resp);
    double ms = (now_s() - c->t0) * 1e3;
    pthread_mutex_lock(&r->mu);
    log_add(r, c, client_gone ? 499 : status, broken, ms);
    if (c->bi >= 0) {
        rt_be *e = &r->be[c->bi];
        e->inflight--;
        if (client_gone || c->resp.fail == BK_FAIL_CLIENT) {
            e->n_client++;
            if (e->brk.state == BRK_HALF_OPEN)
                e->brk.trial = false;
        } else {
            bool ok = !broken && status < 500;
            ok ? e->n_ok++ : e->n_fail++;
            int before = brk_result(&e->brk, ok, now_s(), (int)r->c->srv.breaker_failures);
            if (before != e->brk.state)
                fprintf(stderr, "sov serve: backend %s: breaker %s -> %s\n", e->b->name, brk_name(before),
                        brk_name(e->brk.state));
        }
    }
    r->busy--;
    pthread_mutex_unlock(&r->mu);
    audit_line(r, c, client_gone ? 499 : status, ms);
    free(c->resp.body);
    c->resp.body = NULL;
    free(c->prompt);
    c->prompt = NULL;
}

char *router_stream_error(const rt_call *c)
{
    char msg[400];
    snprintf(msg, sizeof msg, "the backend %s failed while streaming: %s", c->backend,
             c->resp.err[0] ? c->resp.err : "connection lost");
    json_t *o = json_pack("{s:{s:s,s:s,s:n,s:s}}", "error", "message", msg, "type", "server_error", "param", "code",
                          "backend_stream_broken");
    char *j = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!j)
        return NULL;
    size_t n = strlen(j);
    char *s = malloc(n + 32);
    if (s)
        snprintf(s, n + 32, "data: %s\n\ndata: [DONE]\n\n", j);
    free(j);
    return s;
}

/* ---- listings ---- */

static json_t *alias_json(router *r, const cfg_alias *a)
{
    json_t *bs = json_array();
    bool any_local = false, any_remote = false;
    for (int i = 0; i < a->n_refs; i++) {
        backend *b = r->be[a->refs[i]].b;
        json_array_append_new(bs, json_string(b->name));
        b->local ? (any_local = true) : (any_remote = true);
    }
    const char *loc = any_local && any_remote ? "hybrid" : any_local ? "local" : "remote";
    return json_pack("{s:s,s:s,s:I,s:s,s:s,s:s,s:o}", "id", a->name, "object", "model", "created",
                     (json_int_t)r->created, "owned_by", "sov", "location", loc, "privacy",
                     a->local_only ? "local-only" : "any", "backends", bs);
}

json_t *router_models_json(router *r, const char *id)
{
    if (id) {
        int i = cfg_alias_find(r->c, id);
        return i < 0 ? NULL : alias_json(r, &r->c->aliases[i]);
    }
    json_t *arr = json_array();
    for (int i = 0; i < r->c->n_aliases; i++)
        json_array_append_new(arr, alias_json(r, &r->c->aliases[i]));
    return json_pack("{s:s,s:o}", "object", "list", "data", arr);
}

json_t *router_backends_json(router *r)
{
    json_t *arr = json_array();
    for (int i = 0; i < r->nb; i++) {
        rt_be *e = &r->be[i];
        bk_stats st;
        e->b->vt->stats(e->b, &st);
        pthread_mutex_lock(&r->mu);
        rt_be s = *e;
        pthread_mutex_unlock(&r->mu);
        json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:i,s:s,s:i,s:I,s:I,s:I,s:I,s:b,s:i,s:i,s:i,s:I}", "name",
                              s.b->name, "object", "backend", "type", s.b->type, "location",
                              s.b->local ? "local" : "remote", "health",
                              s.health < 0 ? "unknown" : s.health ? "up" : "down", "in_flight", s.inflight, "breaker",
                              brk_name(s.brk.state), "consecutive_failures", s.brk.fails, "breaker_opens",
                              (json_int_t)s.brk.opens, "requests_ok", (json_int_t)s.n_ok, "requests_failed",
                              (json_int_t)s.n_fail, "requests_client_gone", (json_int_t)s.n_client, "loaded",
                              st.loaded, "queued", st.queued, "running", st.running, "slots", st.slots, "memory_bytes",
                              (json_int_t)st.mem_bytes);
        if (!o)
            continue;
        json_object_set_new(o, "where", json_string(s.b->where));
        if (s.health == 0)
            json_object_set_new(o, "health_error", json_string(s.health_why));
        json_object_set_new(o, "health_check_ms", json_real(s.health_ms));
        json_object_set_new(o, "est_wait_s", st.est_wait_s >= 0 ? json_real(st.est_wait_s) : json_null());
        json_array_append_new(arr, o);
    }
    return json_pack("{s:s,s:o}", "object", "list", "data", arr);
}

json_t *router_routes_json(router *r, int64_t after)
{
    rt_logent *snap = malloc(sizeof(rt_logent) * ROUTER_LOG_N);
    if (!snap)
        return NULL;
    pthread_mutex_lock(&r->mu);
    int64_t last = r->log_seq, first = last - ROUTER_LOG_N + 1;
    if (first < after + 1)
        first = after + 1;
    if (first < 1)
        first = 1;
    int n = 0;
    for (int64_t s = last; s >= first; s--)
        snap[n++] = r->log[(s - 1) % ROUTER_LOG_N];
    pthread_mutex_unlock(&r->mu);
    json_t *arr = json_array();
    for (int i = 0; i < n; i++) {
        const rt_logent *e = &snap[i];
        json_t *o = json_pack("{s:I,s:f,s:s,s:s,s:s,s:s,s:s,s:i,s:b,s:b,s:b,s:f}", "seq", (json_int_t)e->seq, "time",
                              e->time, "id", e->id, "model", e->model, "backend", e->backend, "reason", e->reason,
                              "decision", rs_names[e->decision], "status", e->status, "stream", e->stream,
                              "local_only", e->local_only, "broken", e->broken, "latency_ms", e->latency_ms);
        if (!o)
            continue;
        json_object_set_new(o, "tokens_in", e->tokens_in >= 0 ? json_integer(e->tokens_in) : json_null());
        json_object_set_new(o, "tokens_out", e->tokens_out >= 0 ? json_integer(e->tokens_out) : json_null());
        json_array_append_new(arr, o);
    }
    free(snap);
    return json_pack("{s:s,s:I,s:o}", "object", "list", "last_seq", (json_int_t)last, "data", arr);
}

/* Prometheus label value: backslash, quote and newline escaped. */
static void esc(char *out, size_t cap, const char *s)
{
    size_t k = 0;
    for (; *s && k + 3 < cap; s++) {
        if (*s == '\\' || *s == '"') {
            out[k++] = '\\';
            out[k++] = *s;
        } else if (*s == '\n') {
            out[k++] = '\\';
            out[k++] = 'n';
        } else {
            out[k++] = *s;
        }
    }
    out[k] = 0;
}

char *router_metrics(router *r)
{
    sbuf b = {0};
    int nb = r->nb;
    rt_be *snap = calloc((size_t)(nb > 0 ? nb : 1), sizeof *snap);
    bk_stats *st = calloc((size_t)(nb > 0 ? nb : 1), sizeof *st);
    if (!snap || !st) {
        free(snap);
        free(st);
        return NULL;
    }
    for (int i = 0; i < nb; i++)
        r->be[i].b->vt->stats(r->be[i].b, &st[i]);
    int64_t reasons[RS_N];
    pthread_mutex_lock(&r->mu);
    memcpy(snap, r->be, (size_t)nb * sizeof *snap);
    memcpy(reasons, r->reasons, sizeof reasons);
    pthread_mutex_unlock(&r->mu);
    char nm[160];
    sb_printf(&b, "# HELP sov_backend_requests_total Requests a backend answered, by outcome.\n"
                  "# TYPE sov_backend_requests_total counter\n");
    for (int i = 0; i < nb; i++) {
        esc(nm, sizeof nm, snap[i].b->name);
        sb_printf(&b, "sov_backend_requests_total{backend=\"%s\",outcome=\"ok\"} %lld\n", nm, (long long)snap[i].n_ok);
        sb_printf(&b, "sov_backend_requests_total{backend=\"%s\",outcome=\"failed\"} %lld\n", nm,
                  (long long)snap[i].n_fail);
        sb_printf(&b, "sov_backend_requests_total{backend=\"%s\",outcome=\"client_gone\"} %lld\n", nm,
                  (long long)snap[i].n_client);
    }
#define GAUGE(NAME, HELP, EXPR)                                                                                        \
    do {                                                                                                               \
        sb_printf(&b, "# HELP " NAME " " HELP "\n# TYPE " NAME " gauge\n");                                            \
        for (int i = 0; i < nb; i++) {                                                                                 \
            esc(nm, sizeof nm, snap[i].b->name);                                                                       \
            sb_printf(&b, NAME "{backend=\"%s\",type=\"%s\"} %lld\n", nm, snap[i].b->type, (long long)(EXPR));        \
        }                                                                                                              \
    } while (0)
    GAUGE("sov_backend_in_flight", "Requests open on a backend.", snap[i].inflight);
    GAUGE("sov_backend_up", "1 if the last health check passed, 0 if it failed, -1 before the first.", snap[i].health);
    GAUGE("sov_backend_breaker_state", "Circuit breaker: 0 closed, 1 open, 2 half-open.", snap[i].brk.state);
    GAUGE("sov_backend_loaded", "1 while a local backend's model is in memory (remote: 1).", st[i].loaded);
    GAUGE("sov_backend_memory_bytes", "Memory a local backend's model holds.", st[i].mem_bytes);
    GAUGE("sov_backend_queue_depth", "Requests waiting for a slot (-1: unknown).", st[i].queued);
#undef GAUGE
    sb_printf(&b, "# HELP sov_backend_breaker_opens_total Times a backend's breaker opened.\n"
                  "# TYPE sov_backend_breaker_opens_total counter\n");
    for (int i = 0; i < nb; i++) {
        esc(nm, sizeof nm, snap[i].b->name);
        sb_printf(&b, "sov_backend_breaker_opens_total{backend=\"%s\"} %lld\n", nm, (long long)snap[i].brk.opens);
    }
    sb_printf(&b, "# HELP sov_route_decisions_total Requests by the routing decision that placed them.\n"
                  "# TYPE sov_route_decisions_total counter\n");
    for (int k = 0; k < RS_N; k++)
        sb_printf(&b, "sov_route_decisions_total{reason=\"%s\"} %lld\n", rs_names[k], (long long)reasons[k]);
    free(snap);
    free(st);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

int router_busy(router *r)
{
    pthread_mutex_lock(&r->mu);
    int n = r->busy;
    pthread_mutex_unlock(&r->mu);
    return n;
}

void router_drain(router *r)
{
    for (int i = 0; i < r->nb; i++)
        if (r->be[i].b->vt->drain)
            r->be[i].b->vt->drain(r->be[i].b);
}

backend *router_backend(router *r, int i) { return i >= 0 && i < r->nb ? r->be[i].b : NULL; }

int router_n_backends(const router *r) { return r->nb; }
