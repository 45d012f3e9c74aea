/* pool: a persistent worker pool. Threads are created once and reused for
 * every pool_run(), so nothing is created per token. */
#ifndef SOV_POOL_H
#define SOV_POOL_H

#include <stddef.h>

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

/* A byte range a thread reads into its cache while it has nothing to do. */
typedef struct {
    const void *p;
    size_t n;
} pool_span;

#define POOL_SPANS 2 /* spans per thread in pool_run_pf */

/* pool_run, and then each thread that finishes its share of fn before the
 * others, or waits for the next job, reads its spans span[ith*POOL_SPANS ..
 * +POOL_SPANS) (NULL p: none) into its cache, from the start, stopping when
 * the job ends for the caller or the next job comes for a worker. What the
 * next job reads first, read while the memory bus would otherwise idle (the
 * caller's serial work between jobs, threads waiting for the slowest) makes
 * that job shorter. The reads are prefetch instructions, which never
 * fault, so a span freed meanwhile is harmless. span (pool_size *
 * POOL_SPANS entries) is copied; NULL means none. */
void pool_run_pf(pool *p, pool_fn fn, void *arg, const pool_span *span);

/* Number of threads (including the caller). */
int pool_size(const pool *p);

/* Stops and joins the workers; NULL is fine. */
void pool_free(pool *p);

/* Number of online CPUs (>= 1). */
int pool_cpu_count(void);

#endif
