/* http: the OpenAI-compatible HTTP front of `sov serve`, on libmicrohttpd
 * (one thread per connection: a thread may block waiting for its answer;
 * none of them computes).
 *
 * Routes: POST /v1/chat/completions, POST /v1/completions (both through
 * the router), GET /v1/models, GET /v1/models/{id}, GET /v1/backends,
 * GET /v1/routes[?after=SEQ] (the routing log), GET /v1/plan (the
 * planner's prices), GET /v1/plan/report (its HTML report), GET /health,
 * GET /metrics (the /v1 prefix is optional); the web console's files
 * (console.h: /, /status, /console/NAME) without an API key and in every
 * state. Before http_ready every other route but /health answers 503, and
 * so do new generation requests after http_drain. Errors are OpenAI-shaped JSON with the matching status
 * (400, 401, 404, 405, 413, 429, 502, 503, 504). Every response carries
 * X-Sov-Backend and X-Sov-Route-Reason (generation requests also
 * X-Request-Id). */
#ifndef SOV_HTTP_H
#define SOV_HTTP_H

#include <stddef.h>

#include "../router/route.h"
#include "metrics.h"

typedef struct http_cfg {
    const char *host;        /* address to bind (IPv4 or IPv6 literal, or a name) */
    int port;                /* 0: any free port (http_port tells which) */
    size_t max_body;         /* request bodies above this get 413 */
    int max_conns;           /* connections served at once */
} http_cfg;

typedef struct http http;

/* Binds and starts serving (state: loading). rt (the router: models, keys,
 * backends) and mt (may be NULL) are borrowed until http_stop.
 * Errors: SOV_EINVAL (host), SOV_EIO (cannot bind or start), SOV_ENOMEM. */
int http_start(http **out, const http_cfg *cfg, router *rt, metrics *mt);

/* The bound TCP port. */
int http_port(const http *h);

/* Switches to ready: generation requests are routed from now on. */
void http_ready(http *h);

/* New generation requests get 503 from now on; running ones go on. */
void http_drain(http *h);

/* Generation requests being answered (waiting, generating or streaming). */
int http_busy(http *h);

/* Stops the daemon (closing every connection) and frees h; NULL is fine. */
void http_stop(http *h);

#endif
