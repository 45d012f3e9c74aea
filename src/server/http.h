/* http: the OpenAI-compatible HTTP front of `sov serve`, on libmicrohttpd
 * (one thread per connection: a thread may block waiting for its job's
 * tokens; none of them computes).
 *
 * Routes: POST /v1/chat/completions, POST /v1/completions, GET /v1/models,
 * GET /v1/models/{id}, GET /health, GET /metrics (the /v1 prefix is
 * optional). Before http_ready every route but /health answers 503, and so
 * do new generation requests after http_drain. Errors are OpenAI-shaped
 * JSON with the matching status (400, 401, 404, 405, 413, 429, 503). */
#ifndef SOV_HTTP_H
#define SOV_HTTP_H

#include <stddef.h>

#include "../engine/model.h"
#include "../engine/sample.h"
#include "metrics.h"
#include "sched.h"

typedef struct http_cfg {
    const char *host;        /* address to bind (IPv4 or IPv6 literal, or a name) */
    int port;                /* 0: any free port (http_port tells which) */
    const char *api_key;     /* NULL or "": no authentication */
    size_t max_body;         /* request bodies above this get 413 */
    const char *model_id;    /* the id clients name (copied) */
    int max_conns;           /* connections served at once */
} http_cfg;

typedef struct http http;

/* Binds and starts serving (state: loading). mt is borrowed (may be NULL).
 * Errors: SOV_EINVAL (host), SOV_EIO (cannot bind or start), SOV_ENOMEM. */
int http_start(http **out, const http_cfg *cfg, metrics *mt);

/* The bound TCP port. */
int http_port(const http *h);

/* Switches to ready: generation requests go to sc for model m (both
 * borrowed until http_stop). chat_tmpl: enum chat_tmpl for chat requests
 * (CHAT_NONE: they get a 400 saying so). base: sampling defaults of a
 * request (copied). fingerprint: system_fingerprint value (copied). */
void http_ready(http *h, const model *m, sched *sc, int chat_tmpl, const sample_params *base, const char *fingerprint);

/* New generation requests get 503 from now on; running ones go on. */
void http_drain(http *h);

/* Generation requests being answered (waiting, generating or streaming). */
int http_busy(http *h);

/* Stops the daemon (closing every connection) and frees h; NULL is fine. */
void http_stop(http *h);

#endif
