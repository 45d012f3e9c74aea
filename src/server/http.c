#include "http.h"

#include "../base/err.h"
#include "../tok/vocab.h"
#include "chat.h"
#include "openai.h"

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

struct http {
    struct MHD_Daemon *d;
    metrics *mt;
    char *api_key;
    size_t max_body;
    char *model_id;
    int port;
    int64_t created;
    atomic_int state;
    atomic_int busy;
    /* set once by http_ready, before state becomes ST_READY */
    const model *m;
    sched *sc;
    int chat_tmpl;
    sample_params base;
    char fingerprint[64];
};

/* Per-connection request state (MHD's con_cls). */
typedef struct req {
    char *body;
    size_t len, cap;
    bool too_big, answered;
    bool busy;          /* counted in http.busy until the request completes (sent or failed) */
    int status;
    const char *endpoint;
} req;

/* A streamed response: owned by the MHD response (freed in stream_free). */
typedef struct stream {
    http *h;
    sched_job *j;
    oai_req r;
    oai_meta meta;
    int fd;
    size_t sent;
    int32_t sent_tok;
    bool role_sent, ended;
    char *out;
    size_t out_len, out_off;
} stream;

/* ---- responses ---- */

static enum MHD_Result send_buf(struct MHD_Connection *c, req *rq, int status, const char *ctype, char *body,
                                size_t len)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
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

/* ---- helpers ---- */

/* Whether the peer closed its end of fd (or the socket failed). */
static bool peer_gone(int fd)
{
    if (fd < 0)
        return false;
    struct pollfd p = {.fd = fd, .events = POLLRDHUP};
    if (poll(&p, 1, 0) <= 0)
        return false;
    return (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
}

static int conn_fd(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    return ci ? (int)ci->connect_fd : -1;
}

/* Constant-time comparison of the bearer token with the key. */
static bool key_ok(const http *h, struct MHD_Connection *c)
{
    if (!h->api_key)
        return true;
    const char *a = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!a || strncmp(a, "Bearer ", 7))
        return false;
    a += 7;
    size_t la = strlen(a), lk = strlen(h->api_key);
    unsigned diff = (unsigned)(la != lk);
    for (size_t i = 0; i < lk; i++)
        diff |= (unsigned char)h->api_key[i] ^ (unsigned char)(i < la ? a[i] : 0);
    return diff == 0;
}

static json_t *model_obj(const http *h)
{
    return json_pack("{s:s,s:s,s:I,s:s}", "id", h->model_id, "object", "model", "created", (json_int_t)h->created,
                     "owned_by", "sov");
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
    if (st->j) {
        sched_cancel(st->j); /* no effect if it had finished */
        sched_job_unref(st->j);
    }
    oai_req_free(&st->r);
    free(st->out);
    atomic_fetch_sub(&st->h->busy, 1);
    free(st);
}

/* Appends s (malloc'd; NULL = out of memory) to the pending output. */
static bool out_add(stream *st, char *s)
{
    if (!s)
        return false;
    size_t n = strlen(s);
    char *nb = realloc(st->out, st->out_len + n + 1);
    if (!nb) {
        free(s);
        return false;
    }
    memcpy(nb + st->out_len, s, n + 1);
    st->out = nb;
    st->out_len += n;
    free(s);
    return true;
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s);
    char *d = malloc(n + 1);
    if (d)
        memcpy(d, s, n + 1);
    return d;
}

/* The next SSE events of st into st->out. Returns false when the stream must
 * end with an error (the client left, out of memory). */
static bool stream_fill(stream *st)
{
    if (st->meta.kind == OAI_CHAT && !st->role_sent) {
        st->role_sent = true;
        return out_add(st, oai_chunk(&st->meta, &st->r, st->j, 0, 0, 0, 0, true, SCHED_RUNNING));
    }
    int idle_ms = 0;
    for (;;) {
        sched_view v;
        if (!sched_job_wait(st->j, st->sent, st->sent_tok, 200, &v)) {
            if (peer_gone(st->fd)) {
                sched_cancel(st->j);
                return false;
            }
            /* an SSE comment now and then (a long prompt before the first
             * token) keeps the connection from timing out as idle */
            if ((idle_ms += 200) >= 15000)
                return out_add(st, dup_str(": keep-alive\n\n"));
            continue;
        }
        if (v.committed > st->sent || v.n_tok_committed > st->sent_tok) {
            bool ok = out_add(st, oai_chunk(&st->meta, &st->r, st->j, st->sent, v.committed, st->sent_tok,
                                            v.n_tok_committed, false, SCHED_RUNNING));
            st->sent = v.committed;
            st->sent_tok = v.n_tok_committed;
            if (!ok)
                return false;
            if (v.finish == SCHED_RUNNING)
                return true;
        }
        if (v.finish == SCHED_RUNNING)
            continue;
        st->ended = true;
        if (v.finish == SCHED_STOP || v.finish == SCHED_LENGTH) {
            if (!out_add(st, oai_chunk(&st->meta, &st->r, st->j, st->sent, st->sent, st->sent_tok, st->sent_tok,
                                       false, v.finish)))
                return false;
            if (st->r.include_usage && !out_add(st, oai_usage_chunk(&st->meta, st->j, &v)))
                return false;
        } else {
            oai_err e;
            if (v.finish == SCHED_ERROR)
                oai_fail(&e, 500, "server_error", NULL, NULL, "%s", st->j->err);
            else
                oai_fail(&e, 503, "server_error", NULL, "cancelled", "the generation was cancelled (the server is stopping)");
            char *ej = oai_err_json(&e);
            if (!ej)
                return false;
            size_t n = strlen(ej);
            char *ev = malloc(n + 9);
            if (!ev) {
                free(ej);
                return false;
            }
            memcpy(ev, "data: ", 6);
            memcpy(ev + 6, ej, n);
            memcpy(ev + 6 + n, "\n\n", 3);
            free(ej);
            if (!out_add(st, ev))
                return false;
        }
        return out_add(st, dup_str("data: [DONE]\n\n"));
    }
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    stream *st = cls;
    for (;;) {
        if (st->out_off < st->out_len) {
            size_t n = st->out_len - st->out_off;
            if (n > max)
                n = max;
            memcpy(buf, st->out + st->out_off, n);
            st->out_off += n;
            return (ssize_t)n;
        }
        free(st->out);
        st->out = NULL;
        st->out_len = st->out_off = 0;
        if (st->ended)
            return MHD_CONTENT_READER_END_OF_STREAM;
        if (!stream_fill(st))
            return MHD_CONTENT_READER_END_WITH_ERROR;
    }
}

static enum MHD_Result route(http *h, struct MHD_Connection *c, req *rq, const char *url, const char *method);

/* ---- generation ---- */

static enum MHD_Result generate(http *h, struct MHD_Connection *c, req *rq, int kind)
{
    oai_err e;
    oai_req r;
    const vocab *vb = h->m->vocab;
    if (oai_parse(rq->body ? rq->body : "", rq->len, kind, &h->base, vocab_n_tokens(vb), &r, &e))
        return send_err(c, rq, &e);
    sched_job *j = NULL;
    int32_t *ids = NULL;
    size_t n_ids = 0;
    char *text = NULL;
    enum MHD_Result res;
    if (strcmp(r.model, h->model_id)) {
        oai_fail(&e, 404, "invalid_request_error", "model", "model_not_found",
                 "the model '%.200s' does not exist; this server has '%s'", r.model, h->model_id);
        goto err;
    }
    if (kind == OAI_CHAT) {
        if (h->chat_tmpl == CHAT_NONE) {
            oai_fail(&e, 400, "invalid_request_error", "messages", "no_chat_template",
                     "this model has no chat template sov recognizes; use /v1/completions, or start sov serve "
                     "with --chat-template NAME (one of: %s)",
                     chat_names());
            goto err;
        }
        int32_t eos = vocab_eos(vb);
        size_t el = 0;
        const char *et = eos >= 0 ? vocab_token_text(vb, eos, &el) : NULL;
        char eos_text[128] = "</s>";
        if (et && el < sizeof eos_text) {
            memcpy(eos_text, et, el);
            eos_text[el] = 0;
        }
        if (chat_render(h->chat_tmpl, r.msgs, r.n_msgs, eos_text, &text)) {
            oai_fail(&e, 400, "invalid_request_error", "messages", NULL, "%s", err_msg());
            goto err;
        }
        if (vocab_encode(vb, text, strlen(text), true, true, &ids, &n_ids)) {
            oai_fail(&e, 400, "invalid_request_error", "messages", NULL, "cannot tokenize the messages: %s", err_msg());
            goto err;
        }
    } else if (r.prompt) {
        if (vocab_encode(vb, r.prompt, strlen(r.prompt), true, true, &ids, &n_ids)) {
            oai_fail(&e, 400, "invalid_request_error", "prompt", NULL, "cannot tokenize the prompt: %s", err_msg());
            goto err;
        }
    } else {
        ids = r.prompt_ids;
        n_ids = r.n_prompt_ids;
        r.prompt_ids = NULL;
    }
    if (n_ids == 0) { /* an empty prompt starts from BOS, as sov run */
        int32_t bos = vocab_bos(vb);
        free(ids);
        ids = malloc(sizeof *ids);
        if (!ids || bos < 0) {
            oai_fail(&e, 400, "invalid_request_error", "prompt", NULL, "the prompt is empty");
            goto err;
        }
        ids[0] = bos;
        n_ids = 1;
    }
    int32_t n_ctx = sched_n_ctx(h->sc);
    if ((int64_t)n_ids >= n_ctx) {
        oai_fail(&e, 400, "invalid_request_error", kind == OAI_CHAT ? "messages" : "prompt", "context_length_exceeded",
                 "this model's context is %d tokens per request, but the prompt has %zu tokens", n_ctx, n_ids);
        goto err;
    }
    if (r.max_tokens > 0 && (int64_t)n_ids + r.max_tokens > n_ctx) {
        oai_fail(&e, 400, "invalid_request_error", "max_tokens",
                 "context_length_exceeded",
                 "this model's context is %d tokens per request; the prompt has %zu tokens and max_tokens asks for "
                 "%lld more (%lld in all)",
                 n_ctx, n_ids, (long long)r.max_tokens, (long long)n_ids + r.max_tokens);
        goto err;
    }
    r.gen.n_max = r.max_tokens > 0 ? (int32_t)r.max_tokens : n_ctx - (int32_t)n_ids;
    if (!r.seed_set) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        static _Atomic uint64_t ctr;
        r.gen.sp.seed = (uint64_t)ts.tv_nsec ^ (uint64_t)ts.tv_sec << 30 ^ ++ctr * 0x9e3779b97f4a7c15ull;
    }
    sched_gen g = r.gen;
    memset(&r.gen, 0, sizeof r.gen); /* the job owns its allocations now */
    r.gen.logprobs = g.logprobs;
    int rc = sched_job_new(&j, h->sc, ids, (int32_t)n_ids, &g);
    ids = NULL;
    if (rc) {
        oai_fail(&e, 503, "server_error", NULL, NULL, "%s", err_msg());
        goto err;
    }
    j->per_token = r.stream;
    if ((rc = sched_submit(h->sc, j))) {
        if (rc == SOV_EBUSY && atomic_load(&h->state) == ST_DRAINING)
            oai_fail(&e, 503, "server_error", NULL, "shutting_down", "%s", err_msg());
        else if (rc == SOV_EBUSY)
            oai_fail(&e, 429, "rate_limit_error", NULL, "queue_full", "%s", err_msg());
        else
            oai_fail(&e, 400, "invalid_request_error", "max_tokens", "context_length_exceeded", "%s", err_msg());
        goto err;
    }
    free(text);
    text = NULL;

    oai_meta meta;
    oai_meta_init(&meta, kind);
    meta.model = h->model_id;
    meta.fingerprint = h->fingerprint;
    meta.vb = vb;
    int fd = conn_fd(c);
    if (r.stream) {
        stream *st = calloc(1, sizeof *st);
        if (!st) {
            sched_cancel(j);
            sched_job_unref(j);
            oai_req_free(&r);
            return MHD_NO;
        }
        st->h = h;
        st->j = j;
        st->r = r;
        st->meta = meta;
        st->fd = fd;
        atomic_fetch_add(&h->busy, 1);
        struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, stream_read, st,
                                                                      stream_free);
        if (!resp) {
            stream_free(st);
            return MHD_NO;
        }
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
        res = MHD_queue_response(c, 200, resp);
        MHD_destroy_response(resp);
        rq->status = 200;
        rq->answered = true;
        return res;
    }
    /* not streamed: wait here (this connection's own thread) for the end,
     * with the idle timeout off meanwhile (MHD would otherwise count the
     * wait as idleness); setting it back restarts its clock */
    atomic_fetch_add(&h->busy, 1);
    rq->busy = true; /* until on_completed: the response is still to be sent when this returns */
    MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT, 0u);
    sched_view v;
    for (;;) {
        sched_job_wait(j, SIZE_MAX - 1, INT32_MAX - 1, 200, &v);
        if (v.finish != SCHED_RUNNING)
            break;
        if (peer_gone(fd)) {
            sched_cancel(j);
            sched_job_wait(j, SIZE_MAX - 1, INT32_MAX - 1, 1, &v);
            sched_job_unref(j);
            oai_req_free(&r);
            rq->status = 499; /* client closed the request (nginx's convention, for the metrics) */
            rq->answered = true;
            return MHD_NO;
        }
    }
    MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT, (unsigned)HTTP_IDLE_S);
    if (v.finish == SCHED_ERROR)
        oai_fail(&e, 500, "server_error", NULL, NULL, "%s", j->err);
    else if (v.finish == SCHED_CANCELLED)
        oai_fail(&e, 503, "server_error", NULL, "cancelled", "the generation was cancelled (the server is stopping)");
    if (v.finish == SCHED_ERROR || v.finish == SCHED_CANCELLED)
        res = send_err(c, rq, &e);
    else
        res = send_json(c, rq, 200, oai_response(&meta, &r, j, &v));
    sched_job_unref(j);
    oai_req_free(&r);
    return res;
err:
    free(ids);
    free(text);
    sched_job_unref(j);
    oai_req_free(&r);
    return send_err(c, rq, &e);
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
    if (!strcmp(p, "/chat/completions"))
        rq->endpoint = "/v1/chat/completions";
    else if (!strcmp(p, "/completions"))
        rq->endpoint = "/v1/completions";
    else if (!strcmp(p, "/models") || !strncmp(p, "/models/", 8))
        rq->endpoint = "/v1/models";
    else if (!strcmp(url, "/metrics"))
        rq->endpoint = "/metrics";
    else
        return fail(c, rq, 404, "invalid_request_error", NULL, "not_found", "no such route; see /v1/models, "
                    "/v1/chat/completions, /v1/completions, /health, /metrics");
    if (!key_ok(h, c))
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
        return send_buf(c, rq, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
    }
    if (!strcmp(p, "/models")) {
        json_t *o = json_pack("{s:s,s:[o]}", "object", "list", "data", model_obj(h));
        return send_json(c, rq, 200, dumps_free(o));
    }
    if (!strncmp(p, "/models/", 8)) {
        if (strcmp(p + 8, h->model_id)) {
            char msg[300];
            snprintf(msg, sizeof msg, "the model '%.200s' does not exist", p + 8);
            return fail(c, rq, 404, "invalid_request_error", "model", "model_not_found", msg);
        }
        return send_json(c, rq, 200, dumps_free(model_obj(h)));
    }
    if (st == ST_DRAINING)
        return fail(c, rq, 503, "server_error", NULL, "shutting_down", "the server is shutting down");
    return generate(h, c, rq, !strcmp(rq->endpoint, "/v1/chat/completions") ? OAI_CHAT : OAI_COMPLETION);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *data, size_t *data_size, void **con_cls)
{
    (void)version;
    http *h = cls;
    req *rq = *con_cls;
    /* connection threads run at the lowest priority: they wait most of the
     * time and, when they write a token, must not preempt the compute
     * threads (which yield while they wait for one another, giving these
     * threads their turn without stalling a matrix product) */
    static _Thread_local bool niced;
    if (!niced) {
        niced = true;
        (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 19);
    }
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
    fprintf(stderr, "sov serve: http: %s\n", buf);
}

int http_start(http **out, const http_cfg *cfg, metrics *mt)
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
    h->max_body = cfg->max_body;
    h->api_key = cfg->api_key && *cfg->api_key ? dup_str(cfg->api_key) : NULL;
    h->model_id = dup_str(cfg->model_id ? cfg->model_id : "model");
    h->created = (int64_t)time(NULL);
    atomic_init(&h->state, ST_LOADING);
    atomic_init(&h->busy, 0);
    if (!h->model_id || (cfg->api_key && *cfg->api_key && !h->api_key)) {
        http_stop(h);
        return err_set(SOV_ENOMEM, "out of memory");
    }
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

void http_ready(http *h, const model *m, sched *sc, int chat_tmpl, const sample_params *base, const char *fingerprint)
{
    h->m = m;
    h->sc = sc;
    h->chat_tmpl = chat_tmpl;
    h->base = *base;
    snprintf(h->fingerprint, sizeof h->fingerprint, "%s", fingerprint);
    atomic_store(&h->state, ST_READY);
}

void http_drain(http *h) { atomic_store(&h->state, ST_DRAINING); }

int http_busy(http *h) { return atomic_load(&h->busy); }

void http_stop(http *h)
{
    if (!h)
        return;
    if (h->d)
        MHD_stop_daemon(h->d);
    free(h->api_key);
    free(h->model_id);
    free(h);
}
