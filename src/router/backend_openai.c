#include "backend_openai.h"

#include "../base/err.h"
#include "../base/sys.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define STREAM_BUF (256 * 1024) /* a stream's buffer: the transfer pauses beyond this */
#define BODY_MAX (64 << 20)     /* largest whole (non-streamed or error) answer collected */
#define LOOP_POLL_MS 50         /* longest sleep of the loop (its own timers are more precise) */
#define CLIENT_POLL_MS 200      /* how often a waiting open looks at the client's socket */
#define SCAN_LINE 8192          /* SSE line bytes the token scan looks at */

enum { XS_QUEUED = 0, XS_ACTIVE, XS_DONE };
enum { TF_NONE = 0, TF_FIRST_BYTE, TF_IDLE };

typedef struct oai_loop oai_loop;
typedef struct xfer xfer;

/* The one loop of the process: a thread driving every transfer of every
 * openai backend through one multi handle (one connection pool). */
struct oai_loop {
    pthread_mutex_t mu;  /* guards the list and every xfer's state below */
    pthread_t th;
    CURLM *m;
    xfer *head;          /* every transfer not freed yet */
    bool stop;
};

/* One upstream request. Created by a client thread, then owned by the
 * loop: only the loop thread calls curl on it after it is queued and only
 * the loop frees it, once the client has released it (closed). */
struct xfer {
    oai_loop *lp;
    xfer *prev, *next;   /* lp->head list */
    xfer *tmp;           /* the loop's per-round action lists */
    CURL *e;
    struct curl_slist *hdrs;
    char *req_body;
    int64_t fb_ms, idle_ms;
    bool stream;         /* the client asked for a stream */
    /* guarded by lp->mu */
    pthread_cond_t cv;   /* bytes came, or the transfer ended */
    int state;
    bool closed;         /* the client let go: the loop cancels (if running) and frees */
    bool seen;           /* the first response byte (headers) came */
    bool got_body;       /* the first body byte came: status and content type known */
    bool passing;        /* a 2xx stream: bytes are handed out as they come, bounded */
    bool paused, want_unpause;
    bool overflow, nomem;
    bool json_ctype;
    long status;
    int retry_after;
    int tfail;           /* TF_*: which of our own timers ended it */
    CURLcode result;
    char *buf;           /* bytes not handed out yet: buf[off, len) */
    size_t off, len, cap;
    int64_t t0_ms, t_last_ms;
    char errbuf[CURL_ERROR_SIZE];
};

typedef struct oai_be {
    backend base;        /* first: a backend * is an oai_be * */
    oai_loop *lp;
    char *url, *origin, *api_key, *health;
    int64_t connect_ms, fb_ms, idle_ms;
    int max;
    pthread_mutex_t mu;
    int inflight;        /* requests open: counted from open to the end of open (whole) or close (stream) */
} oai_be;

/* A streamed answer (bk_resp.impl). */
typedef struct ostream {
    oai_be *b;
    xfer *x;
    bool ended;
    ssize_t end_rc;
    /* token scan of the SSE lines handed out */
    char line[SCAN_LINE];
    size_t ll;
    int64_t events;      /* events with non-empty delta content / text */
    bool have_usage;
    int64_t u_in, u_out;
    bool done, finished; /* "data: [DONE]" / a finish_reason came: the answer reached its end */
} ostream;

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static CURLcode g_init_rc;
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static oai_loop *g_loop;
static int g_refs;
static atomic_llong g_pauses;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct timespec deadline_in(int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

static char *dup_str(const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s);
    char *d = malloc(n + 1);
    if (d)
        memcpy(d, s, n + 1);
    return d;
}

static void global_init(void) { g_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

int64_t backend_openai_pauses(void) { return atomic_load(&g_pauses); }

/* ---- the loop ---- */

static void xfer_free(xfer *x)
{
    if (!x)
        return;
    if (x->e)
        curl_easy_cleanup(x->e);
    curl_slist_free_all(x->hdrs);
    free(x->req_body);
    free(x->buf);
    pthread_cond_destroy(&x->cv);
    free(x);
}

static void unlink_locked(oai_loop *lp, xfer *x)
{
    if (x->prev)
        x->prev->next = x->next;
    else
        lp->head = x->next;
    if (x->next)
        x->next->prev = x->prev;
    x->prev = x->next = NULL;
}

/* Ends x from the loop (lp->mu held): done with result; the caller wakes
 * its reader (wake_done) after unlocking, so that the reader does not wake
 * only to block on lp->mu. */
static bool finish_nowake_locked(xfer *x, CURLcode result)
{
    if (x->state == XS_DONE)
        return false;
    x->state = XS_DONE;
    x->result = result;
    if (!x->got_body) {
        long code = 0;
        curl_easy_getinfo(x->e, CURLINFO_RESPONSE_CODE, &code);
        x->status = code;
    }
    return true;
}

static void finish_locked(xfer *x, CURLcode result)
{
    if (finish_nowake_locked(x, result))
        pthread_cond_broadcast(&x->cv);
}

static void *loop_main(void *arg)
{
    oai_loop *lp = arg;
    for (;;) {
        xfer *add = NULL, *rm = NULL, *dead = NULL, *cont = NULL, *late = NULL;
        int64_t now = now_ms(), wait = LOOP_POLL_MS;
        pthread_mutex_lock(&lp->mu);
        bool stop = lp->stop;
        for (xfer *x = lp->head, *nx; x; x = nx) {
            nx = x->next;
            if (stop)
                x->closed = true; /* contract broken (a request still open): never leave a thread behind */
            if (x->closed) {
                unlink_locked(lp, x);
                if (x->state == XS_ACTIVE) {
                    x->state = XS_DONE;
                    x->tmp = rm; /* removed, then freed */
                    rm = x;
                } else {
                    x->tmp = dead;
                    dead = x;
                }
                continue;
            }
            if (x->state == XS_QUEUED) {
                x->state = XS_ACTIVE;
                x->tmp = add;
                add = x;
                continue;
            }
            if (x->state != XS_ACTIVE)
                continue;
            if (x->want_unpause) {
                x->want_unpause = false;
                x->paused = false;
                x->t_last_ms = now;
                x->tmp = cont;
                cont = x;
                continue;
            }
            int64_t due = -1;
            int tf = TF_NONE;
            if (!x->seen) {
                due = x->t0_ms + x->fb_ms;
                tf = TF_FIRST_BYTE;
            } else if (!x->paused) {
                due = x->t_last_ms + x->idle_ms;
                tf = TF_IDLE;
            }
            if (due < 0)
                continue;
            if (due <= now) {
                x->tfail = tf;
                finish_locked(x, CURLE_OPERATION_TIMEDOUT);
                x->tmp = late; /* removed (closes the connection), freed when released */
                late = x;
            } else if (due - now < wait) {
                wait = due - now;
            }
        }
        bool empty = !lp->head;
        pthread_mutex_unlock(&lp->mu);

        for (xfer *x = late; x; x = x->tmp)
            curl_multi_remove_handle(lp->m, x->e);
        for (xfer *x = rm, *nx; x; x = nx) {
            nx = x->tmp;
            curl_multi_remove_handle(lp->m, x->e);
            xfer_free(x);
        }
        for (xfer *x = dead, *nx; x; x = nx) {
            nx = x->tmp;
            xfer_free(x);
        }
        for (xfer *x = add; x; x = x->tmp) {
            if (curl_multi_add_handle(lp->m, x->e) != CURLM_OK) {
                pthread_mutex_lock(&lp->mu);
                snprintf(x->errbuf, sizeof x->errbuf, "curl_multi_add_handle failed");
                finish_locked(x, CURLE_FAILED_INIT);
                pthread_mutex_unlock(&lp->mu);
            }
        }
        for (xfer *x = cont; x; x = x->tmp)
            curl_easy_pause(x->e, CURLPAUSE_CONT); /* may deliver held bytes right here */
        if (stop && empty)
            break;

        int running = 0;
        curl_multi_perform(lp->m, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(lp->m, &left))) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            CURL *e = msg->easy_handle;
            CURLcode res = msg->data.result;
            char *pv = NULL;
            curl_easy_getinfo(e, CURLINFO_PRIVATE, &pv);
            xfer *x = (xfer *)pv;
            pthread_mutex_lock(&lp->mu);
            bool wake = x && finish_nowake_locked(x, res);
            pthread_mutex_unlock(&lp->mu);
            if (wake) /* x stays alive: only this thread frees it */
                pthread_cond_broadcast(&x->cv);
            curl_multi_remove_handle(lp->m, e);
        }
        curl_multi_poll(lp->m, NULL, 0, (int)(wait > 0 ? wait : 0), NULL);
    }
    return NULL;
}

/* Takes a reference on the process's loop, starting it if needed. */
static int loop_ref(oai_loop **out)
{
    pthread_once(&g_once, global_init);
    if (g_init_rc != CURLE_OK)
        return err_set(SOV_EIO, "curl_global_init: %s", curl_easy_strerror(g_init_rc));
    int rc = 0;
    pthread_mutex_lock(&g_mu);
    if (!g_loop) {
        oai_loop *lp = calloc(1, sizeof *lp);
        if (!lp) {
            rc = err_set(SOV_ENOMEM, "out of memory");
            goto fail;
        }
        if (!(lp->m = curl_multi_init())) {
            free(lp);
            rc = err_set(SOV_EIO, "curl_multi_init failed");
            goto fail;
        }
        pthread_mutex_init(&lp->mu, NULL);
        if (pthread_create(&lp->th, NULL, loop_main, lp)) {
            curl_multi_cleanup(lp->m);
            pthread_mutex_destroy(&lp->mu);
            free(lp);
            rc = err_set(SOV_EIO, "cannot start the openai loop thread");
            goto fail;
        }
        g_loop = lp;
    }
    g_refs++;
    *out = g_loop;
fail:
    pthread_mutex_unlock(&g_mu);
    return rc;
}

/* Drops a reference; the last one stops and joins the loop. */
static void loop_unref(void)
{
    pthread_mutex_lock(&g_mu);
    if (g_loop && --g_refs == 0) {
        oai_loop *lp = g_loop;
        pthread_mutex_lock(&lp->mu);
        lp->stop = true;
        pthread_mutex_unlock(&lp->mu);
        curl_multi_wakeup(lp->m);
        pthread_join(lp->th, NULL);
        curl_multi_cleanup(lp->m);
        pthread_mutex_destroy(&lp->mu);
        free(lp);
        g_loop = NULL;
    }
    pthread_mutex_unlock(&g_mu);
}

/* Hands x to the loop (it starts it). */
static void submit(xfer *x)
{
    oai_loop *lp = x->lp;
    pthread_mutex_lock(&lp->mu);
    x->t0_ms = x->t_last_ms = now_ms();
    x->next = lp->head;
    if (lp->head)
        lp->head->prev = x;
    lp->head = x;
    pthread_mutex_unlock(&lp->mu);
    curl_multi_wakeup(lp->m);
}

/* The client lets go of x: the loop cancels it if unfinished and frees it.
 * x must not be touched afterwards. */
static void release(xfer *x)
{
    oai_loop *lp = x->lp;
    pthread_mutex_lock(&lp->mu);
    x->closed = true;
    /* a finished transfer is out of the multi handle already: the loop's
     * next round frees it; only a running one needs the loop now (cancel) */
    bool running = x->state != XS_DONE;
    pthread_mutex_unlock(&lp->mu);
    if (running)
        curl_multi_wakeup(lp->m);
}

/* ---- curl callbacks (loop thread) ---- */

static size_t on_header(char *p, size_t sz, size_t nm, void *ud)
{
    xfer *x = ud;
    size_t n = sz * nm;
    pthread_mutex_lock(&x->lp->mu);
    x->seen = true;
    x->t_last_ms = now_ms();
    if (n >= 5 && !memcmp(p, "HTTP/", 5)) {
        x->retry_after = 0; /* a new response (after a 1xx) */
    } else if (n > 12 && !strncasecmp(p, "Retry-After:", 12)) {
        size_t i = 12;
        while (i < n && (p[i] == ' ' || p[i] == '\t'))
            i++;
        long v = 0;
        bool digits = i < n && p[i] >= '0' && p[i] <= '9';
        for (; i < n && p[i] >= '0' && p[i] <= '9'; i++)
            if (v < 86400)
                v = v * 10 + (p[i] - '0');
        if (digits)
            x->retry_after = v > 86400 ? 86400 : (int)v;
    }
    pthread_mutex_unlock(&x->lp->mu);
    return n;
}

static size_t on_body(char *p, size_t sz, size_t nm, void *ud)
{
    xfer *x = ud;
    size_t n = sz * nm;
    long code = 0;
    char *ct = NULL;
    if (!x->got_body) { /* only this thread writes got_body */
        curl_easy_getinfo(x->e, CURLINFO_RESPONSE_CODE, &code);
        curl_easy_getinfo(x->e, CURLINFO_CONTENT_TYPE, &ct);
    }
    int64_t now = now_ms();
    pthread_mutex_lock(&x->lp->mu);
    if (!x->got_body) {
        x->got_body = true;
        x->status = code;
        x->json_ctype = ct && !strncasecmp(ct, "application/json", 16);
        /* a stream request answered with one JSON object is collected whole */
        x->passing = x->stream && code >= 200 && code < 300 && !x->json_ctype;
    }
    x->t_last_ms = now;
    size_t have = x->len - x->off;
    if (x->passing) {
        if (have > 0 && have + n > STREAM_BUF) {
            x->paused = true;
            pthread_mutex_unlock(&x->lp->mu);
            atomic_fetch_add(&g_pauses, 1);
            return CURL_WRITEFUNC_PAUSE; /* curl holds n and delivers it again after CURLPAUSE_CONT */
        }
    } else if (x->len + n > BODY_MAX) {
        x->overflow = true;
        pthread_mutex_unlock(&x->lp->mu);
        return 0;
    }
    if (x->off > 0 && x->cap - x->len < n) {
        memmove(x->buf, x->buf + x->off, have);
        x->off = 0;
        x->len = have;
    }
    if (x->cap - x->len < n) {
        size_t nc = x->cap ? x->cap * 2 : 16384;
        while (nc < x->len + n)
            nc *= 2;
        char *nb = realloc(x->buf, nc);
        if (!nb) {
            x->nomem = true;
            pthread_mutex_unlock(&x->lp->mu);
            return 0;
        }
        x->buf = nb;
        x->cap = nc;
    }
    memcpy(x->buf + x->len, p, n);
    x->len += n;
    /* a whole answer's reader waits for the end (finish), a stream's for bytes */
    bool wake = x->passing;
    pthread_mutex_unlock(&x->lp->mu);
    if (wake) /* x stays alive: only this (the loop) thread frees it */
        pthread_cond_broadcast(&x->cv);
    return n;
}

/* ---- requests ---- */

/* The body to send: rq's, with "model" set to upstream_model when that
 * differs (malloc'd, *len set). NULL: out of memory. */
static char *request_body(const bk_req *rq, size_t *len)
{
    if (rq->upstream_model) {
        json_t *o = json_loadb(rq->body, rq->len, 0, NULL);
        if (json_is_object(o)) {
            const char *m = json_string_value(json_object_get(o, "model"));
            if (!m || strcmp(m, rq->upstream_model)) {
                char *s = NULL;
                if (!json_object_set_new(o, "model", json_string(rq->upstream_model)))
                    s = json_dumps(o, JSON_COMPACT);
                json_decref(o);
                if (s) {
                    *len = strlen(s);
                    return s;
                }
                return NULL;
            }
        }
        json_decref(o); /* not JSON: sent as it is, the upstream answers 400 */
    }
    char *s = malloc(rq->len + 1);
    if (!s)
        return NULL;
    if (rq->len)
        memcpy(s, rq->body, rq->len);
    s[rq->len] = 0;
    *len = rq->len;
    return s;
}

/* Every socket to an upstream gives up when bytes it sent stay
 * unacknowledged for the connect timeout (TCP_USER_TIMEOUT): a request
 * written on a kept-alive connection whose link died silently then fails
 * like a connect error, within about the connect timeout, instead of
 * waiting out the first-byte timeout. A slow upstream that is alive still
 * acknowledges what it is sent, so long generations are not affected. */
static int on_socket(void *ud, curl_socket_t fd, curlsocktype purpose)
{
    if (purpose == CURLSOCKTYPE_IPCXN) {
        unsigned ms = (unsigned)(intptr_t)ud;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ms, sizeof ms);
    }
    return CURL_SOCKOPT_OK;
}

static int xfer_new(oai_be *b, const bk_req *rq, xfer **out)
{
    *out = NULL;
    xfer *x = calloc(1, sizeof *x);
    if (!x)
        return -1;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&x->cv, &ca);
    pthread_condattr_destroy(&ca);
    x->lp = b->lp;
    x->stream = rq->stream;
    x->fb_ms = b->fb_ms;
    x->idle_ms = b->idle_ms;
    size_t blen = 0;
    char url[1024], h[1024];
    if (!(x->req_body = request_body(rq, &blen)))
        goto fail;
    if (!(x->e = curl_easy_init()))
        goto fail;
    snprintf(url, sizeof url, "%s/%s", b->url, rq->kind == BK_COMPLETION ? "completions" : "chat/completions");
    struct curl_slist *l;
    if (!(l = curl_slist_append(x->hdrs, "Content-Type: application/json")))
        goto fail;
    x->hdrs = l;
    if (!(l = curl_slist_append(x->hdrs, "Expect:")))
        goto fail;
    x->hdrs = l;
    if (b->api_key) {
        snprintf(h, sizeof h, "Authorization: Bearer %s", b->api_key);
        if (!(l = curl_slist_append(x->hdrs, h)))
            goto fail;
        x->hdrs = l;
    }
    if (rq->request_id && *rq->request_id) {
        /* printable ASCII only: the id must not smuggle other headers in */
        int k = snprintf(h, sizeof h, "X-Request-Id: ");
        for (const char *p = rq->request_id; *p && k < 200; p++)
            if (*p > 32 && *p < 127)
                h[k++] = *p;
        h[k] = 0;
        if (!(l = curl_slist_append(x->hdrs, h)))
            goto fail;
        x->hdrs = l;
    }
    CURL *e = x->e;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->req_body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)blen);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->hdrs);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)b->connect_ms);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPIDLE, 30L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPINTVL, 10L);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_SOCKOPTFUNCTION, on_socket);
    curl_easy_setopt(e, CURLOPT_SOCKOPTDATA, (void *)(intptr_t)(b->connect_ms > 500 ? b->connect_ms : 500));
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)x);
    *out = x;
    return 0;
fail:
    xfer_free(x);
    return -1;
}

/* usage.prompt_tokens / completion_tokens of o into r (when present). */
static void usage_of(json_t *o, int64_t *in, int64_t *outn)
{
    json_t *u = json_object_get(o, "usage");
    json_t *pi = json_object_get(u, "prompt_tokens"), *co = json_object_get(u, "completion_tokens");
    if (json_is_integer(pi))
        *in = json_integer_value(pi);
    if (json_is_integer(co))
        *outn = json_integer_value(co);
}

/* A short printable excerpt of an upstream body for messages. */
static void excerpt(char *dst, size_t cap, const char *s, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n && k + 1 < cap && k < 160; i++)
        dst[k++] = (s[i] >= 32 && s[i] < 127) ? s[i] : ' ';
    dst[k] = 0;
}

/* The error message an upstream JSON body carries ("error.message", or a
 * string "error"), or "". */
static const char *json_err_msg(json_t *o)
{
    json_t *e = json_object_get(o, "error");
    const char *m = json_is_string(e) ? json_string_value(e) : json_string_value(json_object_get(e, "message"));
    return m ? m : "";
}

/* Maps a whole upstream answer (status, body: taken) to out. */
static int answer(oai_be *b, bk_resp *out, long status, int retry_after, char *body, size_t len)
{
    const char *nm = b->base.name;
    json_t *o = len ? json_loadb(body, len, 0, NULL) : NULL;
    bool is_json = o != NULL;
    char ex[200];
    excerpt(ex, sizeof ex, body, len);
    int rc;
    if (status >= 200 && status < 300) {
        if (!json_is_object(o)) {
            rc = bk_failf(out, BK_FAIL_UPSTREAM, 502, "bad_upstream", "backend %s answered %ld with %s: %s", nm, status,
                          len ? "something other than a JSON object" : "an empty body", ex);
            goto done;
        }
        usage_of(o, &out->tokens_in, &out->tokens_out);
        out->fail = BK_OK;
        out->status = (int)status;
        out->ctype = "application/json";
        out->body = body;
        out->len = len;
        body = NULL;
        rc = 0;
    } else if (status == 429) {
        rc = bk_failf(out, BK_FAIL_BUSY, 429, "rate_limited", "backend %s is rate limited (upstream 429)%s%s", nm,
                      is_json ? ": " : "", is_json ? json_err_msg(o) : "");
        out->retry_after = retry_after;
    } else if (status == 401 || status == 403) {
        rc = bk_failf(out, BK_FAIL_UPSTREAM, 502, "backend_auth",
                      "backend %s rejected the router's API key (upstream %ld; check its api_key_env)", nm, status);
    } else if (status >= 400 && status < 500) {
        if (is_json) { /* the client's error, as the upstream put it */
            out->fail = BK_OK;
            out->status = (int)status;
            out->ctype = "application/json";
            out->body = body;
            out->len = len;
            body = NULL;
        } else {
            bk_failf(out, BK_OK, (int)status, NULL, "backend %s answered %ld: %s", nm, status, ex);
            out->fail = BK_OK;
        }
        rc = 0;
    } else if (status >= 500 && status < 600 && is_json) {
        snprintf(out->err, sizeof out->err, "backend %.63s answered %ld: %.150s", nm, status, json_err_msg(o));
        out->fail = BK_FAIL_UPSTREAM;
        out->status = (int)status;
        out->ctype = "application/json";
        out->body = body;
        out->len = len;
        body = NULL;
        rc = -1;
    } else {
        rc = bk_failf(out, BK_FAIL_UPSTREAM, 502, "bad_upstream", "backend %s answered %ld: %s", nm, status, ex);
    }
done:
    json_decref(o);
    free(body);
    return rc;
}

/* Maps a transfer that ended with a curl error (before any answer) to out. */
static int transfer_failed(oai_be *b, bk_resp *out, const xfer *x)
{
    const char *nm = b->base.name;
    const char *why = x->errbuf[0] ? x->errbuf : curl_easy_strerror(x->result);
    if (x->tfail == TF_FIRST_BYTE)
        return bk_failf(out, BK_FAIL_TIMEOUT, 504, "backend_timeout",
                        "backend %s sent no answer within %.3f s (first-byte timeout)", nm, (double)b->fb_ms / 1e3);
    if (x->tfail == TF_IDLE)
        return bk_failf(out, BK_FAIL_TIMEOUT, 504, "backend_timeout",
                        "backend %s stalled for %.3f s inside its answer (idle timeout)", nm, (double)b->idle_ms / 1e3);
    if (x->overflow)
        return bk_failf(out, BK_FAIL_UPSTREAM, 502, "bad_upstream", "backend %s sent an answer over %d MiB", nm,
                        BODY_MAX >> 20);
    if (x->nomem)
        return bk_failf(out, BK_FAIL_UPSTREAM, 502, "bad_upstream", "out of memory reading backend %s", nm);
    switch (x->result) {
    case CURLE_OPERATION_TIMEDOUT:
        return bk_failf(out, BK_FAIL_TIMEOUT, 504, "backend_timeout", "backend %s: %s", nm, why);
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
        return bk_failf(out, BK_FAIL_CONNECT, 502, "backend_unreachable", "cannot connect to backend %s: %s", nm, why);
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_BAD_CONTENT_ENCODING:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_HTTP2:
        return bk_failf(out, BK_FAIL_UPSTREAM, 502, "bad_upstream", "backend %s sent a malformed answer: %s", nm, why);
    default:
        return bk_failf(out, BK_FAIL_CONNECT, 502, "backend_unreachable",
                        "connection to backend %s broke before its answer: %s", nm, why);
    }
}

static void inflight_dec(oai_be *b)
{
    pthread_mutex_lock(&b->mu);
    b->inflight--;
    pthread_mutex_unlock(&b->mu);
}

static const bk_stream_vt ostream_vt;

static int oai_open(backend *bb, const bk_req *rq, bk_resp *out)
{
    oai_be *b = (oai_be *)bb;
    memset(out, 0, sizeof *out);
    out->b = bb;
    out->tokens_in = out->tokens_out = -1;
    pthread_mutex_lock(&b->mu);
    bool full = b->inflight >= b->max;
    if (!full)
        b->inflight++;
    pthread_mutex_unlock(&b->mu);
    if (full) {
        bk_failf(out, BK_FAIL_BUSY, 429, "backend_busy", "backend %s is at its limit of %d requests at once",
                 bb->name, b->max);
        out->retry_after = 1;
        return -1;
    }
    xfer *x = NULL;
    ostream *st = NULL;
    if (rq->stream && !(st = calloc(1, sizeof *st)))
        goto nomem;
    if (xfer_new(b, rq, &x))
        goto nomem;
    submit(x);

    /* wait for the whole answer, or for a stream's status and first bytes */
    oai_loop *lp = b->lp;
    bool gone = false;
    int64_t next_look = now_ms() + CLIENT_POLL_MS;
    pthread_mutex_lock(&lp->mu);
    for (;;) {
        if (x->state == XS_DONE || (x->passing && x->len > x->off))
            break;
        int64_t now = now_ms();
        if (now >= next_look) {
            if (sys_peer_gone(rq->client_fd)) {
                gone = true;
                break;
            }
            next_look = now + CLIENT_POLL_MS;
        }
        struct timespec ts = deadline_in(next_look - now);
        pthread_cond_timedwait(&x->cv, &lp->mu, &ts);
    }
    bool passing = x->passing && x->len > x->off;
    long status = x->status;
    int retry_after = x->retry_after;
    char *body = NULL;
    size_t len = 0;
    if (!gone && !passing && x->result == CURLE_OK) {
        body = x->buf; /* whole: the loop never touches it again */
        len = x->len - x->off;
        if (x->off)
            memmove(body, body + x->off, len);
        x->buf = NULL;
        x->len = x->off = x->cap = 0;
    }
    pthread_mutex_unlock(&lp->mu);

    if (gone) {
        release(x);
        free(st);
        inflight_dec(b);
        return bk_failf(out, BK_FAIL_CLIENT, 499, "client_gone", "the client went away while backend %s worked",
                        bb->name);
    }
    if (passing) {
        st->b = b;
        st->x = x;
        out->fail = BK_OK;
        out->status = (int)status;
        out->ctype = "text/event-stream";
        out->streamed = true;
        out->svt = &ostream_vt;
        out->impl = st;
        return 0; /* in flight until close */
    }
    free(st);
    int rc;
    if (x->result != CURLE_OK)
        rc = transfer_failed(b, out, x); /* x is done: the loop no longer writes its fields */
    else
        rc = answer(b, out, status, retry_after, body, len);
    release(x);
    inflight_dec(b);
    return rc;
nomem:
    free(st);
    inflight_dec(b);
    return bk_failf(out, BK_FAIL_UPSTREAM, 502, NULL, "out of memory starting a request to backend %s", bb->name);
}

/* ---- streams ---- */

/* Whether p[0..n) has key (with its quotes) followed by ':' and then c,
 * whitespace allowed around the colon; with c == '"', the string must not
 * be empty. */
static bool has_key(const char *p, size_t n, const char *key, char c)
{
    size_t kl = strlen(key);
    const char *end = p + n, *q = p;
    while ((q = memmem(q, (size_t)(end - q), key, kl))) {
        const char *s = q + kl;
        while (s < end && (*s == ' ' || *s == '\t'))
            s++;
        if (s < end && *s == ':') {
            s++;
            while (s < end && (*s == ' ' || *s == '\t'))
                s++;
            if (s < end && *s == c && (c != '"' || (s + 1 < end && s[1] != '"')))
                return true;
        }
        q += kl;
    }
    return false;
}

/* One SSE line handed out (without its newline). */
static void scan_line(ostream *s, const char *p, size_t n)
{
    if (n && p[n - 1] == '\r')
        n--;
    if (n < 5 || memcmp(p, "data:", 5))
        return;
    p += 5;
    n -= 5;
    while (n && *p == ' ') {
        p++;
        n--;
    }
    if (n >= 6 && !memcmp(p, "[DONE]", 6)) {
        s->done = true;
        return;
    }
    if (has_key(p, n, "\"finish_reason\"", '"'))
        s->finished = true;
    if (has_key(p, n, "\"usage\"", '{')) {
        json_t *o = json_loadb(p, n, 0, NULL);
        if (o) {
            int64_t in = -1, on = -1;
            usage_of(o, &in, &on);
            if (on >= 0) {
                s->have_usage = true;
                s->u_in = in;
                s->u_out = on;
            }
            json_decref(o);
        }
    }
    if (has_key(p, n, "\"content\"", '"') || has_key(p, n, "\"text\"", '"'))
        s->events++;
}

static void scan(ostream *s, const char *p, size_t n)
{
    while (n) {
        const char *nl = memchr(p, '\n', n);
        size_t k = nl ? (size_t)(nl - p) : n;
        size_t room = sizeof s->line - s->ll, c = k < room ? k : room;
        memcpy(s->line + s->ll, p, c);
        s->ll += c;
        if (!nl)
            return;
        scan_line(s, s->line, s->ll);
        s->ll = 0;
        p += k + 1;
        n -= k + 1;
    }
}

static void tokens_final(bk_resp *r, const ostream *s)
{
    if (s->have_usage) {
        r->tokens_in = s->u_in;
        r->tokens_out = s->u_out;
    } else {
        r->tokens_out = s->events;
    }
}

static ssize_t os_read(bk_resp *r, char *buf, size_t cap, int timeout_ms)
{
    ostream *s = r->impl;
    if (!s)
        return BK_BROKEN;
    if (s->ended)
        return s->end_rc;
    xfer *x = s->x;
    oai_loop *lp = x->lp;
    struct timespec ts = deadline_in(timeout_ms > 0 ? timeout_ms : 0);
    pthread_mutex_lock(&lp->mu);
    while (x->len == x->off && x->state != XS_DONE && timeout_ms > 0)
        if (pthread_cond_timedwait(&x->cv, &lp->mu, &ts) == ETIMEDOUT)
            break;
    size_t have = x->len - x->off;
    if (have && cap) {
        size_t n = have < cap ? have : cap;
        memcpy(buf, x->buf + x->off, n);
        x->off += n;
        if (x->off == x->len)
            x->off = x->len = 0;
        bool wake = false;
        if (x->paused && !x->want_unpause && x->len - x->off <= STREAM_BUF / 2)
            wake = x->want_unpause = true;
        pthread_mutex_unlock(&lp->mu);
        if (wake)
            curl_multi_wakeup(lp->m);
        scan(s, buf, n);
        if (!s->have_usage)
            r->tokens_out = s->events;
        return (ssize_t)n;
    }
    if (x->state != XS_DONE || have) {
        pthread_mutex_unlock(&lp->mu);
        return BK_AGAIN;
    }
    CURLcode res = x->result;
    int tf = x->tfail;
    char eb[CURL_ERROR_SIZE];
    snprintf(eb, sizeof eb, "%s", x->errbuf[0] ? x->errbuf : curl_easy_strerror(res));
    pthread_mutex_unlock(&lp->mu);
    s->ended = true;
    if (s->ll) { /* a last line without its newline */
        scan_line(s, s->line, s->ll);
        s->ll = 0;
    }
    tokens_final(r, s);
    if (res == CURLE_OK && (s->done || s->finished)) {
        s->end_rc = 0;
        return 0;
    }
    if (res == CURLE_OK) /* the body ended cleanly, but the answer had not: a truncation the client must see */
        snprintf(r->err, sizeof r->err, "the stream from backend %.63s ended before the answer did (no finish_reason, "
                 "no [DONE])", s->b->base.name);
    else if (tf == TF_IDLE)
        snprintf(r->err, sizeof r->err, "backend %s stalled for %.3f s inside its stream (idle timeout)",
                 s->b->base.name, (double)s->b->idle_ms / 1e3);
    else
        snprintf(r->err, sizeof r->err, "the stream from backend %.63s broke: %.150s", s->b->base.name, eb);
    s->end_rc = BK_BROKEN;
    return BK_BROKEN;
}

static void os_close(bk_resp *r)
{
    ostream *s = r->impl;
    if (!s)
        return;
    if (!s->ended)
        tokens_final(r, s);
    oai_be *b = s->b;
    release(s->x);
    inflight_dec(b);
    free(s);
    r->impl = NULL;
}

static const bk_stream_vt ostream_vt = {.read = os_read, .close = os_close};

/* ---- the rest of the interface ---- */

static void oai_stats(backend *bb, bk_stats *out)
{
    oai_be *b = (oai_be *)bb;
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&b->mu);
    out->running = b->inflight;
    pthread_mutex_unlock(&b->mu);
    out->queued = -1;
    out->slots = b->max;
    out->est_wait_s = -1;
    out->loaded = true;
}

static size_t discard(char *p, size_t sz, size_t nm, void *ud)
{
    (void)p;
    size_t *tot = ud;
    *tot += sz * nm;
    return *tot > (1u << 20) ? 0 : sz * nm;
}

static int oai_probe(backend *bb, int timeout_ms, char *why, size_t cap)
{
    oai_be *b = (oai_be *)bb;
    if (timeout_ms <= 0)
        timeout_ms = 5000;
    char url[1024], auth[600], eb[CURL_ERROR_SIZE] = "";
    snprintf(url, sizeof url, "%s%s", b->origin, b->health);
    struct curl_slist *h = NULL;
    if (b->api_key) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", b->api_key);
        h = curl_slist_append(NULL, auth);
    }
    CURL *e = curl_easy_init();
    if (!e || (b->api_key && !h)) {
        curl_easy_cleanup(e);
        curl_slist_free_all(h);
        snprintf(why, cap, "out of memory");
        return -1;
    }
    size_t tot = 0;
    long ct = b->connect_ms < timeout_ms ? (long)b->connect_ms : timeout_ms;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, ct);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, eb);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &tot);
    CURLcode res = curl_easy_perform(e);
    long code = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(e);
    curl_slist_free_all(h);
    if (res != CURLE_OK) {
        snprintf(why, cap, "GET %s: %s", url, eb[0] ? eb : curl_easy_strerror(res));
        return -1;
    }
    if (code < 200 || code >= 300) {
        snprintf(why, cap, "GET %s: HTTP %ld", url, code);
        return -1;
    }
    if (cap)
        why[0] = 0;
    return 0;
}

static void oai_free(backend *bb)
{
    oai_be *b = (oai_be *)bb;
    if (!b)
        return;
    if (b->lp)
        loop_unref();
    pthread_mutex_destroy(&b->mu);
    free(b->url);
    free(b->origin);
    free(b->api_key);
    free(b->health);
    free(b);
}

static const backend_vt oai_vt = {
    .open = oai_open, .stats = oai_stats, .probe = oai_probe, .tick = NULL, .free = oai_free,
};

static int64_t secs_ms(double s, int64_t dflt)
{
    if (!(s > 0))
        return dflt;
    double ms = s * 1e3;
    return ms < 1 ? 1 : ms > 1e12 ? (int64_t)1e12 : (int64_t)(ms + 0.5);
}

int backend_openai_new(backend **out, const cfg_backend *c)
{
    *out = NULL;
    if (!c->url || !*c->url)
        return err_set(SOV_EINVAL, "backend %s: no url", c->name);
    if (strlen(c->url) >= 900)
        return err_set(SOV_EINVAL, "backend %s: url too long", c->name);
    if (c->max_concurrent < 0 || c->max_concurrent > 1000000)
        return err_set(SOV_EINVAL, "backend %s: max_concurrent %lld out of range", c->name,
                       (long long)c->max_concurrent);
    oai_be *b = calloc(1, sizeof *b);
    if (!b)
        return err_set(SOV_ENOMEM, "out of memory");
    pthread_mutex_init(&b->mu, NULL);
    b->base.vt = &oai_vt;
    snprintf(b->base.name, sizeof b->base.name, "%s", c->name);
    b->base.type = "openai";
    b->base.local = c->location_local;
    int rc = SOV_ENOMEM;
    if (!(b->url = dup_str(c->url)))
        goto fail;
    size_t ul = strlen(b->url);
    while (ul > 0 && b->url[ul - 1] == '/')
        b->url[--ul] = 0;
    snprintf(b->base.where, sizeof b->base.where, "%s", b->url);
    if (c->origin && *c->origin) {
        if (!(b->origin = dup_str(c->origin)))
            goto fail;
    } else { /* scheme://host:port of url */
        const char *p = strstr(b->url, "://");
        p = p ? strchr(p + 3, '/') : NULL;
        size_t n = p ? (size_t)(p - b->url) : ul;
        if (!(b->origin = malloc(n + 1)))
            goto fail;
        memcpy(b->origin, b->url, n);
        b->origin[n] = 0;
    }
    if (strlen(b->origin) >= 900) {
        rc = err_set(SOV_EINVAL, "backend %s: origin too long", c->name);
        goto fail;
    }
    if (!(b->health = dup_str(c->health && *c->health ? c->health : "/health")))
        goto fail;
    if (c->api_key && *c->api_key && !(b->api_key = dup_str(c->api_key)))
        goto fail;
    if (b->api_key && strlen(b->api_key) > 512) {
        rc = err_set(SOV_EINVAL, "backend %s: api key too long", c->name);
        goto fail;
    }
    b->connect_ms = secs_ms(c->connect_timeout_s, 5000);
    b->fb_ms = secs_ms(c->first_byte_timeout_s, 300000);
    b->idle_ms = secs_ms(c->idle_timeout_s, 60000);
    b->max = c->max_concurrent > 0 ? (int)c->max_concurrent : 64;
    if ((rc = loop_ref(&b->lp)))
        goto fail;
    *out = &b->base;
    return 0;
fail:
    if (rc == SOV_ENOMEM)
        err_set(SOV_ENOMEM, "out of memory");
    oai_free(&b->base);
    return rc;
}
