/* pool: a persistent worker pool. Threads are created once and reused for
 * every pool_run(), so nothing is created per token. */
#ifndef SOV_POOL_H
#define SOV_POOL_H

typedef struct pool pool;

/* fn(arg, ith, nth): run by nth threads at once, ith = 0..nth-1. */
typedef void (*pool_fn)(void *arg, int ith, int nth);

/* Creates a pool of n_threads (>= 1; the caller's thread counts as one, so
 * n_threads - 1 workers are started). *out owned by caller (pool_free).
 * Errors: SOV_EINVAL (n_threads < 1 or > 512), SOV_ENOMEM, SOV_EIO (thread
 * creation failed). */
int pool_new(pool **out, int n_threads);

/* Runs fn on every thread of the pool and returns when all have finished.
 * Not reentrant: one pool_run at a time per pool. */
void pool_run(pool *p, pool_fn fn, void *arg);

/* Number of threads (including the caller). */
int pool_size(const pool *p);

/* Stops and joins the workers; NULL is fine. */
void pool_free(pool *p);

/* Number of online CPUs (>= 1). */
int pool_cpu_count(void);

#endif
