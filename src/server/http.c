#include "http.h"

#include "../base/err.h"
#include "../base/sys.h"
#include "../tok/vocab.h"
#include "chat.h"
#include "console.h"
#include "openai.h"
#include "planinfo.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>

enum { ST_LOADING = 0, ST_READY, ST_DRAINING };

#define HTTP_IDLE_S 60 /* a connection with no traffic for this long is closed */
#define HOLD_MAX (1 << 20) /* an SSE event longer than this is passed on before its end */

struct http {
    struct MHD_Daemon *d;
    metrics *mt;
    router *rt;
    size_t max_body;
    int port;
    atomic_int state;
    atomic_int busy;
};

/* Per-connection request state (MHD's con_cls). */
typedef struct req {
    char *body;
    size_t len, cap;
    bool too_big, answered;
    bool busy;          /* counted in http.busy until the request completes (sent or failed) */
    int status;
    const char *endpoint;
    const rt_call *call; /* the routed call while its answer is queued (for the headers) */
} req;

/* A streamed answer: owned by the MHD response (freed in stream_free). */
typedef struct stream {
    http *h;
    rt_call c;
    int fd;
    bool ended, broken, gone;
    bool boundary;      /* what was sent so far ends an SSE event (a comment may go in) */
    char prev1, prev2;  /* the last and the one-before-last byte sent */
    int idle_ms;
    char *tail;         /* bytes to send first: whole events, a keep-alive comment, the error event */
    size_t tail_len, tail_off;
    char *part;         /* the backend's bytes after the last whole event, held back: a stream that
                         * breaks then ends with the error event, not half of an event */
    size_t part_len, part_cap;
} stream;

/* ---- responses ---- */

/* X-Sov-Backend / X-Sov-Route-Reason (and X-Request-Id) of call, or the
 * router's own when it answered without a backend (call NULL). */
static void add_route_headers(struct MHD_Response *resp, const rt_call *call)
{
    MHD_add_response_header(resp, "X-Sov-Backend", call ? call->backend : "router");
    MHD_add_response_header(resp, "X-Sov-Route-Reason", call ? call->reason : "answered by the router");
    if (call)
        MHD_add_response_header(resp, "X-Request-Id", call->request_id);
}

static enum MHD_Result send_buf(struct MHD_Connection *c, req *rq, int status, const char *ctype, char *body,
                                size_t len)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    add_route_headers(resp, rq->call);
    if (status == 429 || status == 503)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, "1");
    if (status == 401)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    enum MHD_Result r = MHD_queue_response(c, (unsigned)status, resp);
    MHD_destroy_response(resp);
    rq->status = status;
    rq->answered = true;
    return r;
}

static enum MHD_Result send_json(struct MHD_Connection *c, req *rq, int status, char *json)
{
    if (!json)
        return MHD_NO;
    return send_buf(c, rq, status, "application/json", json, strlen(json));
}

static enum MHD_Result send_err(struct MHD_Connection *c, req *rq, const oai_err *e)
{
    return send_json(c, rq, e->status, oai_err_json(e));
}

static enum MHD_Result fail(struct MHD_Connection *c, req *rq, int status, const char *type, const char *param,
                            const char *code, const char *msg)
{
    oai_err e;
    oai_fail(&e, status, type, param, code, "%s", msg);
    return send_err(c, rq, &e);
}

/* Whether an If-None-Match value (a list of entity tags, or "*") names etag. */
static bool etag_listed(const char *inm, const char *etag)
{
    while (*inm == ' ' || *inm == '\t')
        inm++;
    return !strcmp(inm, "*") || strstr(inm, etag) != NULL;
}

/* A console file: revalidated on every use (no-cache + its ETag, 304 when
 * the client has it), never sniffed; the pages with a Content-Security-
 * Policy that lets them load only this server's scripts, styles and data
 * (inline styles for the plan report shown in a frame from a blob). */
static enum MHD_Result send_static(struct MHD_Connection *c, req *rq, const console_file *f)
{
    const char *inm = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH);
    bool fresh = inm && etag_listed(inm, f->etag);
    struct MHD_Response *resp = MHD_create_response_from_buffer(fresh ? 0 : f->len, (void *)f->data,
                                                                MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, console_type(f));
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, f->etag);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    if (console_is_page(f))
        MHD_add_response_header(resp, "Content-Security-Policy",
                                "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                                "img-src 'self' data: blob:; frame-src 'self' blob:; connect-src 'self'; "
                                "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'self'");
    add_route_headers(resp, NULL);
    int status = fresh ? 304 : 200;
    enum MHD_Result r = MHD_queue_response(c, (unsigned)status, resp);
    MHD_destroy_response(resp);
    rq->status = status;
    rq->answered = true;
    return r;
}

/* ---- helpers ---- */

static int conn_fd(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    return ci ? (int)ci->connect_fd : -1;
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s);
    char *d = malloc(n + 1);
    if (d)
        memcpy(d, s, n + 1);
    return d;
}

static char *dumps_free(json_t *o)
{
    if (!o)
        return NULL;
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

/* ---- streaming ---- */

static void stream_free(void *cls)
{
    stream *st = cls;
    /* freed before the end: the client went away (or MHD gave up on it) */
    router_finish(st->h->rt, &st->c, 200, st->broken, !st->ended && !st->broken);
    free(st->tail);
    free(st->part);
    atomic_fetch_sub(&st->h->busy, 1);
    free(st);
}

static void set_tail(stream *st, char *s)
{
    free(st->tail);
    st->tail = s;
    st->tail_len = s ? strlen(s) : 0;
    st->tail_off = 0;
}

/* Where the last whole SSE event of p[0..n) ends (after its blank line:
 * "\n\n" or "\r\n\r\n"), looking from `from` on; 0 if none ends there. */
static size_t event_end(const char *p, size_t n, size_t from)
{
    for (size_t i = n; i > from && i >= 2; i--)
        if (p[i - 1] == '\n' && (p[i - 2] == '\n' || (i >= 4 && p[i - 2] == '\r' && p[i - 3] == '\n')))
            return i;
    return 0;
}

/* Moves part[0..k) to the (sent) tail. false: out of memory. */
static bool part_to_tail(stream *st, size_t k)
{
    char *t = malloc(k + 1);
    if (!t)
        return false;
    memcpy(t, st->part, k);
    t[k] = 0;
    free(st->tail);
    st->tail = t;
    st->tail_len = k;
    st->tail_off = 0;
    memmove(st->part, st->part + k, st->part_len - k);
    st->part_len -= k;
    return true;
}

/* Ends a stream that cannot go on for want of memory, saying so (the
 * library's own line for an error end is not printed: see on_log). */
static ssize_t stream_oom(void)
{
    fprintf(stderr, "sov serve: http: out of memory inside a stream; closing that connection\n");
    return MHD_CONTENT_READER_END_WITH_ERROR;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    stream *st = cls;
    for (;;) {
        if (st->tail_off < st->tail_len) {
            size_t n = st->tail_len - st->tail_off;
            if (n > max)
                n = max;
            memcpy(buf, st->tail + st->tail_off, n);
            st->tail_off += n;
            /* the last two bytes sent: "\n\n" ends an event */
            st->prev2 = n >= 2 ? buf[n - 2] : st->prev1;
            st->prev1 = buf[n - 1];
            st->boundary = st->prev1 == '\n' && st->prev2 == '\n';
            return (ssize_t)n;
        }
        if (st->ended)
            return MHD_CONTENT_READER_END_OF_STREAM;
        ssize_t n = bk_read(&st->c.resp, buf, max, 200);
        if (n > 0) {
            st->c.bytes_out += n;
            st->idle_ms = 0;
            /* whole events go out; the rest waits for its end */
            if (st->part_len + (size_t)n > st->part_cap) {
                size_t nc = st->part_cap ? st->part_cap * 2 : 16384;
                while (nc < st->part_len + (size_t)n)
                    nc *= 2;
                char *np = realloc(st->part, nc);
                if (!np)
                    return stream_oom();
                st->part = np;
                st->part_cap = nc;
            }
            size_t from = st->part_len > 3 ? st->part_len - 3 : 0;
            memcpy(st->part + st->part_len, buf, (size_t)n);
            st->part_len += (size_t)n;
            size_t k = event_end(st->part, st->part_len, from);
            if (!k && st->part_len >= HOLD_MAX)
                k = st->part_len; /* not SSE as we know it: pass it on */
            if (k && !part_to_tail(st, k))
                return stream_oom();
            continue;
        }
        if (n == 0) {
            st->ended = true;
            if (st->part_len && !part_to_tail(st, st->part_len)) /* whatever the backend ended with */
                return stream_oom();
            continue;
        }
        if (n == BK_BROKEN) {
            /* a clean end for the client: the half event held back is
             * dropped, then an error event (after what was sent, ended if
             * it was not) */
            st->broken = st->ended = true;
            st->part_len = 0;
            char *ev = router_stream_error(&st->c);
            if (ev && !st->boundary) {
                size_t k = strlen(ev);
                char *e2 = malloc(k + 3);
                if (e2) {
                    memcpy(e2, "\n\n", 2);
                    memcpy(e2 + 2, ev, k + 1);
                }
                free(ev);
                ev = e2;
            }
            if (!ev)
                return stream_oom();
            set_tail(st, ev);
            continue;
        }
        /* BK_AGAIN */
        if (sys_peer_gone(st->fd)) {
            st->gone = true;
            return MHD_CONTENT_READER_END_WITH_ERROR; /* the client left: not logged */
        }
        /* an SSE comment now and then (a long prompt before the first
         * token) keeps the connection from timing out as idle */
        if ((st->idle_ms += 200) >= 15000 && st->boundary) {
            st->idle_ms = 0;
            set_tail(st, dup_str(": keep-alive\n\n"));
            if (!st->tail)
                return stream_oom();
        }
    }
}

/* ---- generation ---- */

static enum MHD_Result generate(http *h, struct MHD_Connection *c, req *rq, int kind, const char *key_name,
                                bool key_local)
{
    int fd = conn_fd(c);
    rt_req q = {.kind = kind, .body = rq->body ? rq->body : "", .len = rq->len, .key_name = key_name,
                .key_local_only = key_local, .client_fd = fd,
                .privacy = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Sov-Privacy")};
    /* the wait for an answer is not idleness: MHD's idle timeout is off
     * meanwhile (setting it back restarts its clock) */
    atomic_fetch_add(&h->busy, 1);
    MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT, 0u);
    stream *st = calloc(1, sizeof *st);
    if (!st) {
        atomic_fetch_sub(&h->busy, 1);
        return MHD_NO;
    }
    st->h = h;
    st->fd = fd;
    st->boundary = true;
    st->prev1 = st->prev2 = '\n';
    router_open(h->rt, &q, &st->c);
    MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT, (unsigned)HTTP_IDLE_S);
    bk_resp *r = &st->c.resp;
    /* a connection thread that writes a local model's tokens runs at the
     * lowest priority from then on: it waits most of the time and must not
     * preempt the compute threads (which yield while they wait for one
     * another, giving these threads their turn without stalling a matrix
     * product). One that forwards a remote backend is the whole data path
     * of its request and keeps its priority. */
    static _Thread_local bool niced;
    if (!niced && r->b && strcmp(r->b->type, "openai")) {
        niced = true;
        (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 19);
    }
    if (r->fail == BK_FAIL_CLIENT) {
        router_finish(h->rt, &st->c, 499, false, true);
        free(st);
        atomic_fetch_sub(&h->busy, 1);
        rq->status = 499; /* client closed the request (nginx's convention, for the metrics) */
        rq->answered = true;
        return MHD_NO;
    }
    if (r->streamed) {
        struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, stream_read, st,
                                                                      stream_free);
        if (!resp) {
            stream_free(st);
            return MHD_NO;
        }
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->ctype ? r->ctype : "text/event-stream");
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
        add_route_headers(resp, &st->c);
        enum MHD_Result res = MHD_queue_response(c, (unsigned)(r->status ? r->status : 200), resp);
        MHD_destroy_response(resp);
        rq->status = r->status ? r->status : 200;
        rq->answered = true;
        return res;
    }
    /* a whole answer: the backend's, or an error */
    char *body = r->body;
    size_t len = r->len;
    r->body = NULL;
    int status = r->status ? r->status : 502;
    const char *ctype = r->ctype ? r->ctype : "application/json";
    rq->busy = true; /* until on_completed: the response is still to be sent when this returns */
    st->c.bytes_out = (int64_t)len;
    enum MHD_Result res;
    if (!body) {
        res = fail(c, rq, 500, "server_error", NULL, NULL, "out of memory");
    } else {
        rq->call = &st->c;
        res = send_buf(c, rq, status, ctype, body, len);
        rq->call = NULL;
    }
    router_finish(h->rt, &st->c, status, false, false);
    free(st);
    return res;
}

/* ---- routing ---- */

static enum MHD_Result route(http *h, struct MHD_Connection *c, req *rq, const char *url, const char *method)
{
    bool get = !strcmp(method, "GET") || !strcmp(method, "HEAD"), post = !strcmp(method, "POST");
    const char *p = !strncmp(url, "/v1/", 4) ? url + 3 : url;
    int st = atomic_load(&h->state);
    if (!strcmp(url, "/health") || !strcmp(url, "/v1/health")) {
        rq->endpoint = "/health";
        if (st == ST_READY)
            return send_json(c, rq, 200, dup_str("{\"status\":\"ok\"}"));
        return send_json(c, rq, 503,
                         dup_str(st == ST_LOADING ? "{\"status\":\"loading\",\"error\":{\"message\":\"the model is loading\","
                                                    "\"type\":\"server_error\",\"param\":null,\"code\":\"loading\"}}"
                                                  : "{\"status\":\"draining\",\"error\":{\"message\":\"the server is "
                                                    "shutting down\",\"type\":\"server_error\",\"param\":null,"
                                                    "\"code\":\"shutting_down\"}}"));
    }
    /* the console's files: no key (a page must load to ask for it), in every state */
    const console_file *cf = console_find(url);
    if (cf) {
        rq->endpoint = "console";
        if (!get)
            return fail(c, rq, 405, "invalid_request_error", NULL, "method_not_allowed", "this route takes GET");
        return send_static(c, rq, cf);
    }
    if (!strcmp(p, "/chat/completions"))
        rq->endpoint = "/v1/chat/completions";
    else if (!strcmp(p, "/completions"))
        rq->endpoint = "/v1/completions";
    else if (!strcmp(p, "/models") || !strncmp(p, "/models/", 8))
        rq->endpoint = "/v1/models";
    else if (!strcmp(p, "/backends"))
        rq->endpoint = "/v1/backends";
    else if (!strcmp(p, "/routes"))
        rq->endpoint = "/v1/routes";
    else if (!strcmp(p, "/plan"))
        rq->endpoint = "/v1/plan";
    else if (!strcmp(p, "/plan/report"))
        rq->endpoint = "/v1/plan/report";
    else if (!strcmp(url, "/metrics"))
        rq->endpoint = "/metrics";
    else
        return fail(c, rq, 404, "invalid_request_error", NULL, "not_found", "no such route; see /v1/models, "
                    "/v1/chat/completions, /v1/completions, /v1/backends, /v1/routes, /v1/plan, "
                    "/v1/plan/report, /health, /metrics, and the console at /");
    const char *key_name;
    bool key_local;
    if (!router_auth(h->rt, MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION), &key_name,
                     &key_local))
        return fail(c, rq, 401, "invalid_request_error", NULL, "invalid_api_key",
                    "missing or wrong API key: send it as 'Authorization: Bearer KEY'");
    if (st == ST_LOADING)
        return fail(c, rq, 503, "server_error", NULL, "loading", "the model is loading; retry shortly");
    bool gen = rq->endpoint[4] == 'c'; /* /v1/chat... or /v1/completions */
    if (gen != post || (!gen && !get))
        return fail(c, rq, 405, "invalid_request_error", NULL, "method_not_allowed",
                    gen ? "this route takes POST" : "this route takes GET");
    if (rq->too_big) {
        char msg[128];
        snprintf(msg, sizeof msg, "the request body is larger than the limit of %zu bytes", h->max_body);
        return fail(c, rq, 413, "invalid_request_error", NULL, "request_too_large", msg);
    }
    if (!strcmp(rq->endpoint, "/metrics")) {
        char *text;
        size_t len;
        if (metrics_render(h->mt, &text, &len))
            return MHD_NO;
        char *more = router_metrics(h->rt);
        if (!more) {
            free(text);
            return MHD_NO;
        }
        size_t ml = strlen(more);
        char *all = realloc(text, len + ml + 1);
        if (!all) {
            free(text);
            free(more);
            return MHD_NO;
        }
        memcpy(all + len, more, ml + 1);
        free(more);
        text = all;
        len += ml;
        return send_buf(c, rq, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
    }
    if (!strcmp(p, "/models"))
        return send_json(c, rq, 200, dumps_free(router_models_json(h->rt, NULL)));
    if (!strcmp(p, "/backends"))
        return send_json(c, rq, 200, dumps_free(router_backends_json(h->rt)));
    if (!strcmp(p, "/routes")) {
        const char *av = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "after");
        long long after = 0;
        char *end = NULL;
        if (av && (after = strtoll(av, &end, 10), !*av || *end || after < 0))
            return fail(c, rq, 400, "invalid_request_error", "after", NULL,
                        "'after' must be a sequence number (a whole number >= 0)");
        return send_json(c, rq, 200, dumps_free(router_routes_json(h->rt, (int64_t)after)));
    }
    if (!strcmp(p, "/plan"))
        return send_json(c, rq, 200, dumps_free(planinfo_json()));
    if (!strcmp(p, "/plan/report")) {
        char *html;
        size_t len;
        if (planinfo_report(&html, &len)) {
            char msg[600];
            snprintf(msg, sizeof msg, "cannot make the plan report: %s", err_msg());
            return fail(c, rq, 500, "server_error", NULL, "plan_report_failed", msg);
        }
        return send_buf(c, rq, 200, "text/html; charset=utf-8", html, len);
    }
    if (!strncmp(p, "/models/", 8)) {
        json_t *o = router_models_json(h->rt, p + 8);
        if (!o) {
            char msg[300];
            snprintf(msg, sizeof msg, "the model '%.200s' does not exist", p + 8);
            return fail(c, rq, 404, "invalid_request_error", "model", "model_not_found", msg);
        }
        return send_json(c, rq, 200, dumps_free(o));
    }
    if (st == ST_DRAINING)
        return fail(c, rq, 503, "server_error", NULL, "shutting_down", "the server is shutting down");
    return generate(h, c, rq, !strcmp(rq->endpoint, "/v1/chat/completions") ? BK_CHAT : BK_COMPLETION, key_name,
                    key_local);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *data, size_t *data_size, void **con_cls)
{
    (void)version;
    http *h = cls;
    req *rq = *con_cls;
    if (!rq) {
        rq = calloc(1, sizeof *rq);
        if (!rq)
            return MHD_NO;
        rq->endpoint = "other";
        *con_cls = rq;
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > h->max_body) {
            rq->too_big = true;
            /* answered before the body is read: MHD closes the connection
             * after the 413 instead of reading what was announced */
            return route(h, c, rq, url, method);
        }
        return MHD_YES;
    }
    if (*data_size) {
        if (!rq->too_big && !rq->answered) {
            if (rq->len + *data_size > h->max_body) {
                rq->too_big = true;
                free(rq->body);
                rq->body = NULL;
                rq->len = rq->cap = 0;
            } else {
                if (rq->len + *data_size + 1 > rq->cap) {
                    size_t nc = rq->cap ? rq->cap * 2 : 4096;
                    while (nc < rq->len + *data_size + 1)
                        nc *= 2;
                    char *nb = realloc(rq->body, nc);
                    if (!nb)
                        return MHD_NO;
                    rq->body = nb;
                    rq->cap = nc;
                }
                memcpy(rq->body + rq->len, data, *data_size);
                rq->len += *data_size;
                rq->body[rq->len] = 0;
            }
        }
        *data_size = 0;
        return MHD_YES;
    }
    if (rq->answered)
        return MHD_YES;
    return route(h, c, rq, url, method);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    (void)c;
    (void)toe;
    http *h = cls;
    req *rq = *con_cls;
    if (!rq)
        return;
    if (rq->answered)
        metrics_request(h->mt, rq->endpoint, rq->status);
    if (rq->busy)
        atomic_fetch_sub(&h->busy, 1);
    free(rq->body);
    free(rq);
    *con_cls = NULL;
}

static void on_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char buf[512];
    vsnprintf(buf, sizeof buf, fmt, ap);
    size_t n = strlen(buf);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = 0;
    /* A stream callback ends with an error when its client has gone (in
     * the routing log as status 499) or memory ran out (stream_oom says
     * so): libmicrohttpd's "internal error" line would read like a fault
     * of the server. */
    if (strstr(buf, "Application reported internal error"))
        return;
    fprintf(stderr, "sov serve: http: %s\n", buf);
}

int http_start(http **out, const http_cfg *cfg, router *rt, metrics *mt)
{
    *out = NULL;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    const char *host = cfg->host ? cfg->host : "127.0.0.1";
    if (cfg->port < 0 || cfg->port > 65535)
        return err_set(SOV_EINVAL, "port %d out of range", cfg->port);
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)cfg->port);
    } else if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)cfg->port);
        flags |= MHD_USE_IPv6;
    } else {
        struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
        if (getaddrinfo(host, NULL, &hints, &ai) || !ai)
            return err_set(SOV_EINVAL, "cannot resolve host '%s'", host);
        memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
        if (ai->ai_family == AF_INET6) {
            s6->sin6_port = htons((uint16_t)cfg->port);
            flags |= MHD_USE_IPv6;
        } else {
            s4->sin_port = htons((uint16_t)cfg->port);
        }
        freeaddrinfo(ai);
    }
    http *h = calloc(1, sizeof *h);
    if (!h)
        return err_set(SOV_ENOMEM, "out of memory");
    h->mt = mt;
    h->rt = rt;
    h->max_body = cfg->max_body;
    atomic_init(&h->state, ST_LOADING);
    atomic_init(&h->busy, 0);
    h->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, h, MHD_OPTION_EXTERNAL_LOGGER, on_log, NULL,
                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, h, MHD_OPTION_CONNECTION_LIMIT,
                            (unsigned)(cfg->max_conns > 0 ? cfg->max_conns : 256), MHD_OPTION_CONNECTION_TIMEOUT,
                            (unsigned)HTTP_IDLE_S, MHD_OPTION_END);
    if (!h->d) {
        http_stop(h);
        return err_set(SOV_EIO, "cannot listen on %s port %d (in use, or not an address of this machine?)", host,
                       cfg->port);
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = di ? di->port : cfg->port;
    *out = h;
    return 0;
}

int http_port(const http *h) { return h->port; }

void http_ready(http *h) { atomic_store(&h->state, ST_READY); }

void http_drain(http *h) { atomic_store(&h->state, ST_DRAINING); }

int http_busy(http *h) { return atomic_load(&h->busy); }

void http_stop(http *h)
{
    if (!h)
        return;
    if (h->d)
        MHD_stop_daemon(h->d);
    free(h);
}
