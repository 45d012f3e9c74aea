/* backend: the one interface the router sees for every backend, in-process
 * (backend_local) or across the network (backend_openai). A policy never
 * knows which kind it is talking to; it sees only `local` (whether the
 * backend runs on this machine) and bk_stats.
 *
 * A request is opened (bk_open), which blocks until the backend has either
 * an answer to begin (status and, for a stream, its first bytes; for a
 * non-streamed request the whole body) or has failed without sending
 * anything. A streamed answer is then read piece by piece (bk_read) and
 * closed (bk_close, which cancels unfinished work). Each call is made from
 * one client connection's thread; a backend serves many such threads at
 * once. */
#ifndef SOV_BACKEND_H
#define SOV_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum bk_kind { BK_CHAT = 1, BK_COMPLETION = 2 }; /* same values as enum oai_kind */

/* Why a backend gave no answer (bk_resp.fail). Every failure but
 * BK_FAIL_CLIENT and BK_FAIL_REQUEST may be retried on another backend,
 * since nothing has been sent to the client yet. */
enum bk_fail {
    BK_OK = 0,            /* answered: status is the backend's answer (maybe a 4xx for a bad request) */
    BK_FAIL_CONNECT,      /* could not connect, or the connection broke before any answer */
    BK_FAIL_TIMEOUT,      /* connect or first-byte timeout */
    BK_FAIL_UPSTREAM,     /* the backend answered 5xx (or garbage) */
    BK_FAIL_BUSY,         /* at its limit of concurrent requests, queue full, or upstream 429 */
    BK_FAIL_UNAVAILABLE,  /* local model cannot be loaded (does not fit the memory budget, load error) */
    BK_FAIL_CLIENT,       /* the client disconnected while waiting (not the backend's fault; no retry) */
    BK_FAIL_REQUEST,      /* the request itself is bad for this backend (400-type): no retry */
};

/* bk_read results besides a byte count. */
#define BK_AGAIN (-1)  /* nothing within the timeout; call again */
#define BK_BROKEN (-2) /* the stream broke after it began (bk_resp.err says why); nothing more comes */

typedef struct bk_req {
    int kind;               /* enum bk_kind */
    const char *body;       /* the client's request JSON (borrowed until bk_close) */
    size_t len;
    const char *model;      /* the model id the client asked for (the alias); answers carry it */
    const char *upstream_model; /* the name to send to a remote backend (NULL: model) */
    bool stream;            /* "stream": true in the body */
    const char *request_id; /* for logs (and X-Request-Id upstream) */
    int client_fd;          /* the client's socket, to notice a disconnect while waiting (-1: none) */
} bk_req;

typedef struct backend backend;
typedef struct bk_resp bk_resp;

typedef struct bk_stream_vt {
    /* Up to cap next bytes of the streamed body into buf, waiting at most
     * timeout_ms. Returns the count (> 0), 0 at the end, BK_AGAIN or
     * BK_BROKEN. Bytes come exactly as the client is to get them (SSE). */
    ssize_t (*read)(bk_resp *r, char *buf, size_t cap, int timeout_ms);
    /* Ends the answer: cancels unfinished work (upstream: closes the
     * transfer), frees r->impl. Called once for every opened stream. */
    void (*close)(bk_resp *r);
} bk_stream_vt;

/* An answer in progress. Filled by bk_open. */
struct bk_resp {
    int fail;              /* enum bk_fail */
    int status;            /* HTTP status for the client (for a failure: 502/503/504/429 as fits) */
    const char *ctype;     /* static: "application/json" or "text/event-stream" */
    char *body;            /* not streamed (or a failure): the whole body, malloc'd; the caller frees it */
    size_t len;
    bool streamed;         /* the body comes from svt->read */
    int retry_after;       /* seconds for a Retry-After header (0: none) */
    char err[256];         /* a failure, for logs and error bodies */
    int64_t tokens_in;     /* prompt / completion tokens when known, else -1 (final after the end) */
    int64_t tokens_out;
    const bk_stream_vt *svt;
    void *impl;
    backend *b;
};

/* What policies see of a backend (a snapshot). */
typedef struct bk_stats {
    int queued;            /* requests waiting for a slot (-1: unknown) */
    int running;           /* requests being generated (-1: unknown) */
    int slots;             /* requests generated at once (0: unknown) */
    double est_wait_s;     /* estimated wait before a new request starts (-1: unknown) */
    bool loaded;           /* local: the model is in memory (remote: true) */
    int64_t mem_bytes;     /* local: memory it holds now */
} bk_stats;

typedef struct backend_vt {
    /* Starts answering rq (see the file comment); always fills *out, and
     * returns 0 when out->fail is BK_OK, else -1. */
    int (*open)(backend *b, const bk_req *rq, bk_resp *out);
    void (*stats)(backend *b, bk_stats *out);
    /* A health check now, blocking at most about timeout_ms: 0 healthy,
     * else -1 with why[] set. Never a generation. */
    int (*probe)(backend *b, int timeout_ms, char *why, size_t cap);
    /* Housekeeping, called about once a second from the health thread
     * (local: unload after keep_alive). May be NULL. */
    void (*tick)(backend *b);
    /* Stops taking new requests; open ones go on (a server drain). May be
     * NULL. */
    void (*drain)(backend *b);
    /* Stops and frees the backend (no request may be open). */
    void (*free)(backend *b);
} backend_vt;

/* The common head of every backend; implementations embed it first. */
struct backend {
    const backend_vt *vt;
    char name[64];         /* the config section's name */
    const char *type;      /* "local" or "openai" (static) */
    bool local;            /* runs on this machine: local-only requests may go here */
    char where[160];       /* for listings: the GGUF path or the base URL */
};

static inline int bk_open(backend *b, const bk_req *rq, bk_resp *out) { return b->vt->open(b, rq, out); }
static inline ssize_t bk_read(bk_resp *r, char *buf, size_t cap, int timeout_ms)
{
    return r->svt->read(r, buf, cap, timeout_ms);
}
static inline void bk_close(bk_resp *r)
{
    if (r->streamed && r->svt)
        r->svt->close(r);
    r->streamed = false;
    r->svt = NULL;
}

/* Fills r as a failure: fail, status, and an OpenAI-shaped error body
 * {"error":{"message","type","param":null,"code"}} built from the printf
 * message (also kept in r->err). Returns -1 (for `return bk_failf(...)`). */
int bk_failf(bk_resp *r, int fail, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

#endif
