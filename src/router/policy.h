/* policy: the router's decisions, each a small pure function over the
 * request and snapshots of the backends, returning a decision and the
 * reason for the audit log. route.c applies them in order:
 *   privacy -> candidates (never a remote backend for a local-only request)
 *   replicas / affinity -> their order
 *   overflow -> a saturated local backend moves behind the others
 *   breaker -> which of them may be tried now
 * No locking here: callers pass snapshots and keep the breaker state under
 * their own lock. */
#ifndef SOV_POLICY_H
#define SOV_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend.h"

/* What a policy sees of one candidate backend. */
typedef struct pol_cand {
    int idx;             /* the caller's index of the backend */
    const char *name;
    bool local;          /* on this machine */
    int inflight;        /* requests the router has open on it */
    bk_stats st;
} pol_cand;

/* privacy: whether the request must stay on this machine, and why
 * (reason: static string, or NULL when not local-only). alias_local_only:
 * the alias says privacy = local-only; key_local_only: the client key's
 * class; header: the X-Sov-Privacy value (NULL if absent). Returns 0, or -1
 * when the header has a value other than "local-only" / "any" (a 400). */
int pol_privacy(bool alias_local_only, bool key_local_only, const char *header, bool *local_only,
                const char **reason);

/* Removes the remote candidates when local_only (keeping the order);
 * returns the new count. */
int pol_keep_local(pol_cand *c, int n, bool local_only);

/* replicas: orders c[0..n) by fewest in-flight requests, ties in the given
 * (preference) order. With a prefix key (affinity = prefix; key != NULL),
 * the candidate the key hashes to (rendezvous hashing over the names, so a
 * key keeps its backend while the others come and go) goes first, unless it
 * has at least 2 more in flight than the least-loaded one plus its slots
 * (then load wins). Writes a reason ("least outstanding", "affinity
 * prefix", "affinity prefix overridden by load"). */
void pol_replicas(pol_cand *c, int n, const char *key, size_t key_len, char *reason, size_t cap);

/* overflow: when c[0] is local and its queue passes max_queue (>= 0) or its
 * estimated wait passes max_wait_s (>= 0), moves it behind the others.
 * Returns true (with a reason such as "overflow: ws has 5 waiting > 4")
 * when it did. Nothing when n < 2 or both bounds are off (< 0). */
bool pol_overflow(pol_cand *c, int n, int64_t max_queue, double max_wait_s, char *reason, size_t cap);

/* The affinity key of a request body: the first system message (or, without
 * one, the first message) of a chat, or the first 256 bytes of a completion
 * prompt, plus the tools, as a 64-bit hash. Returns false when the body has
 * none of them. */
bool pol_prefix_key(const char *body, size_t len, uint64_t *key);

/* ---- circuit breaker ---- */

enum { BRK_CLOSED = 0, BRK_OPEN = 1, BRK_HALF_OPEN = 2 };

typedef struct breaker {
    int state;
    int fails;           /* consecutive failures */
    double opened_at;    /* when it last opened (seconds, monotonic) */
    bool trial;          /* half-open: a trial request is out */
    int64_t opens;       /* times it opened */
} breaker;

/* Whether a request may go to the backend now; in half-open state one
 * trial at a time (the call that gets true takes the trial slot). A breaker
 * that has been open for cooldown_s becomes half-open here. */
bool brk_allow(breaker *b, double now, double cooldown_s);

/* A request's outcome: a success closes the breaker; a failure counts, and
 * threshold consecutive ones (or any failure in half-open state) open it.
 * Returns the state before (to log changes). */
int brk_result(breaker *b, bool ok, double now, int threshold);

/* A health check's outcome: a failure counts like a request failure (and
 * keeps an open breaker open for another cooldown); a success never closes
 * the breaker by itself (only a request does), but lets an open one that
 * has cooled down go half-open. */
void brk_probe(breaker *b, bool ok, double now, int threshold, double cooldown_s);

const char *brk_name(int state);

#endif
