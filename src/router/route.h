/* route: the router inside `sov serve`. Clients name a model alias; the
 * router picks one of the alias's backends with the policies (policy.h),
 * opens it through the backend interface, fails over to the next while
 * nothing has been sent to the client, and accounts for every call: the
 * breakers, per-backend counters for /metrics, GET /v1/backends, and one
 * JSON line per request in the audit log.
 *
 * Threads: router_open / router_finish run on the client connections'
 * threads; the health thread (health.h) probes the backends. All shared
 * state is under one mutex held only for bookkeeping, never during I/O. */
#ifndef SOV_ROUTE_H
#define SOV_ROUTE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

#include "backend.h"
#include "config.h"

typedef struct router router;

/* A router over cfg c (borrowed: must outlive the router) and its backends
 * bs[0..c->n_backends) (in config order; taken: router_free frees them).
 * audit: the audit log stream (borrowed; NULL: none); log_prompts: include
 * the request body in it. Starts the health thread. Errors: SOV_ENOMEM,
 * SOV_EIO (thread). On failure the backends are freed too. */
int router_new(router **out, const cfg *c, backend **bs, FILE *audit, bool log_prompts);

/* Stops the health thread and frees the router and its backends (no call may
 * be open). NULL is fine. */
void router_free(router *r);

/* Checks the Authorization header value (NULL when absent) against the
 * configured keys. Returns true when allowed (also when no key is
 * configured), with *key_name the key's name ("-" when no keys) and
 * *local_only its privacy class. */
bool router_auth(router *r, const char *authorization, const char **key_name, bool *local_only);

/* Whether any client key is configured. */
bool router_has_keys(const router *r);

typedef struct rt_req {
    int kind;                 /* enum bk_kind */
    const char *body;         /* the request JSON (borrowed until router_finish) */
    size_t len;
    const char *privacy;      /* X-Sov-Privacy header (NULL: absent) */
    const char *key_name;     /* from router_auth */
    bool key_local_only;
    int client_fd;            /* to notice a disconnect while waiting (-1: none) */
} rt_req;

/* One routed request. */
typedef struct rt_call {
    bk_resp resp;             /* the answer: the backend's, or the router's own error */
    char backend[64];         /* X-Sov-Backend: the backend that answered ("none" if none) */
    char reason[256];         /* X-Sov-Route-Reason */
    char request_id[32];      /* X-Request-Id */
    char model[128];          /* the alias asked for */
    bool stream;
    /* the router's own */
    int bi;                   /* index of the backend that answered, or -1 */
    double t0;
    const char *key_name;
    bool local_only;
    char *prompt;             /* the body, when prompts are logged */
    int64_t bytes_out;
    int decision;             /* the decision class (sov_route_decisions_total's reason) */
} rt_call;

/* Routes q (see the file comment); always fills *c. c->resp.streamed: read
 * the rest of the body with bk_read(&c->resp, ...). Never blocks on the
 * router's lock during I/O. */
void router_open(router *r, const rt_req *q, rt_call *c);

/* Ends c: closes a stream, counts the outcome, writes the audit line.
 * status: what the client was sent; broken: the stream broke after it began
 * (a backend failure); client_gone: the client left early (not the
 * backend's fault). */
void router_finish(router *r, rt_call *c, int status, bool broken, bool client_gone);

/* "data: {error}\n\ndata: [DONE]\n\n" ending a stream that broke after it
 * began (malloc'd; NULL out of memory). */
char *router_stream_error(const rt_call *c);

/* {"object":"list","data":[model...]} of every alias with its location;
 * id: one alias only (NULL: all; an unknown id gives NULL). New reference. */
json_t *router_models_json(router *r, const char *id);

/* Finished requests the routing log keeps (the latest ones). */
#define ROUTER_LOG_N 256

/* {"object":"list","last_seq":N,"data":[entry...]}: the routing log, newest
 * first, of the requests finished after seq `after` (0: all it keeps, the
 * last ROUTER_LOG_N). Each entry: seq, time (Unix seconds), id, model,
 * backend, reason (X-Sov-Route-Reason), decision (primary, privacy,
 * overflow, failover, replica, affinity, unavailable), status (499: the
 * client left), stream, local_only, broken (the stream broke after it
 * began), tokens_in, tokens_out (null:
 * unknown), latency_ms; never a prompt. last_seq: the newest seq (0: none
 * yet). New reference; NULL out of memory. */
json_t *router_routes_json(router *r, int64_t after);

/* {"object":"list","data":[backend...]}: health, in flight, breaker, load. */
json_t *router_backends_json(router *r);

/* Prometheus text of the per-backend series (appended to /metrics):
 * sov_backend_requests_total{backend,outcome}, sov_backend_in_flight,
 * sov_backend_up, sov_backend_breaker_state (0 closed, 1 open, 2
 * half-open), sov_backend_breaker_opens_total, sov_backend_loaded,
 * sov_backend_memory_bytes, sov_backend_queue_depth,
 * sov_route_decisions_total{reason}. malloc'd; NULL out of memory. */
char *router_metrics(router *r);

/* Open calls (answers being produced or streamed). */
int router_busy(router *r);

/* Stops the local backends taking new requests (for a drain). */
void router_drain(router *r);

/* Backend i (config order) and the count, for startup (preload). */
backend *router_backend(router *r, int i);
int router_n_backends(const router *r);

#endif
