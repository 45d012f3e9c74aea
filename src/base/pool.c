/* pool: persistent workers that spin briefly between jobs, then sleep.
 *
 * A job is published by bumping `gen`; workers that are spinning see it within
 * nanoseconds, workers that went to sleep (no job for SPIN_NS) are woken by a
 * condition variable. The caller runs share 0 itself and spins until `done`
 * counts every worker. Dekker-style handshake, all seq_cst: a worker sets
 * `sleeping` under the mutex before its last look at `gen`, and pool_run bumps
 * `gen` before it looks at `sleeping`, so a job is never missed. */
#include "pool.h"

#include "err.h"

#include <errno.h>
#include <immintrin.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SPIN_NS 2000000 /* how long an idle worker spins before it sleeps: 2 ms */

struct pool {
    int n;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    _Atomic unsigned long gen; /* bumped for each job */
    atomic_int done;           /* workers finished with the current job */
    atomic_int sleeping;       /* workers waiting on cv */
    atomic_int stop;
    pool_fn fn; /* the job: written before gen is bumped */
    void *arg;
    pool_span *span; /* [n * POOL_SPANS] idle reads of the job, written with fn */
};

typedef struct {
    pool *p;
    int ith;
} worker_arg;

static int64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* Waits until gen != seen (or stop); returns the new gen. */
static unsigned long wait_job(pool *p, unsigned long seen)
{
    int64_t t0 = 0;
    for (unsigned i = 1;; i++) {
        unsigned long g = atomic_load(&p->gen);
        if (g != seen || atomic_load(&p->stop))
            return g;
        _mm_pause();
        if ((i & 1023) == 0) {
            sched_yield(); /* lets a descheduled peer run when threads > cores */
            int64_t t = now_ns();
            if (!t0)
                t0 = t;
            else if (t - t0 > SPIN_NS)
                break;
        }
    }
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add(&p->sleeping, 1);
    unsigned long g;
    while ((g = atomic_load(&p->gen)) == seen && !atomic_load(&p->stop))
        pthread_cond_wait(&p->cv, &p->mu);
    atomic_fetch_sub(&p->sleeping, 1);
    pthread_mutex_unlock(&p->mu);
    return g;
}

#define READ_STEP 4096 /* bytes read between looks at the stop condition */

/* Reads the lines of s[0..POOL_SPANS) into the cache, a step at a time,
 * while *gen == seen (a worker waiting for the next job; gen non-NULL) or
 * *done < n (the caller waiting for the workers). */
static void idle_read(const pool_span *s, _Atomic unsigned long *gen, unsigned long seen, atomic_int *done, int n)
{
    for (int k = 0; k < POOL_SPANS; k++) {
        const char *b = s[k].p;
        for (size_t o = 0; b && o < s[k].n; o += READ_STEP) {
            if (gen ? atomic_load_explicit(gen, memory_order_relaxed) != seen
                    : atomic_load_explicit(done, memory_order_relaxed) >= n)
                return;
            size_t e = o + READ_STEP < s[k].n ? o + READ_STEP : s[k].n;
            for (size_t i = o; i < e; i += 64)
                _mm_prefetch(b + i, _MM_HINT_T0);
        }
    }
}

static void *worker(void *a)
{
    worker_arg wa = *(worker_arg *)a;
    free(a);
    pool *p = wa.p;
    unsigned long seen = 0;
    for (;;) {
        seen = wait_job(p, seen);
        if (atomic_load(&p->stop))
            return NULL;
        pool_span span[POOL_SPANS];
        memcpy(span, p->span + wa.ith * POOL_SPANS, sizeof span); /* before done: the caller may rewrite it then */
        p->fn(p->arg, wa.ith, p->n);
        atomic_fetch_add(&p->done, 1);
        idle_read(span, &p->gen, seen, NULL, 0);
    }
}

int pool_new(pool **out, int n_threads)
{
    *out = NULL;
    if (n_threads < 1 || n_threads > 512)
        return err_set(SOV_EINVAL, "thread count %d out of range 1..512", n_threads);
    pool *p = calloc(1, sizeof *p);
    if (!p)
        return err_set(SOV_ENOMEM, "out of memory");
    p->n = n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->threads = calloc((size_t)n_threads, sizeof *p->threads);
    p->span = calloc((size_t)n_threads * POOL_SPANS, sizeof *p->span);
    if (!p->threads || !p->span) {
        p->n = 1;
        pool_free(p);
        return err_set(SOV_ENOMEM, "out of memory");
    }
    for (int i = 1; i < n_threads; i++) {
        worker_arg *wa = malloc(sizeof *wa);
        int rc = wa ? 0 : ENOMEM;
        if (wa) {
            wa->p = p;
            wa->ith = i;
            rc = pthread_create(&p->threads[i], NULL, worker, wa);
        }
        if (rc != 0) {
            free(wa);
            p->n = i; /* join only the workers that started */
            pool_free(p);
            return err_set(rc == ENOMEM ? SOV_ENOMEM : SOV_EIO, "cannot start worker thread: %s", strerror(rc));
        }
    }
    *out = p;
    return 0;
}

void pool_run(pool *p, pool_fn fn, void *arg) { pool_run_pf(p, fn, arg, NULL); }

void pool_run_pf(pool *p, pool_fn fn, void *arg, const pool_span *span)
{
    if (p->n == 1) {
        fn(arg, 0, 1);
        return;
    }
    p->fn = fn;
    p->arg = arg;
    if (span)
        memcpy(p->span, span, sizeof *span * (size_t)p->n * POOL_SPANS);
    else
        memset(p->span, 0, sizeof *span * (size_t)p->n * POOL_SPANS);
    atomic_store(&p->done, 0);
    atomic_fetch_add(&p->gen, 1);
    if (atomic_load(&p->sleeping) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }

    fn(arg, 0, p->n);
    idle_read(p->span, NULL, 0, &p->done, p->n - 1);

    /* workers were just running: spin, yielding now and then in case the
     * pool has more threads than free cores */
    for (unsigned i = 1; atomic_load(&p->done) < p->n - 1; i++) {
        _mm_pause();
        if ((i & 1023) == 0)
            sched_yield();
    }
}

int pool_size(const pool *p) { return p->n; }

void pool_free(pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, 1);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n; i++)
        pthread_join(p->threads[i], NULL);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p->threads);
    free(p->span);
    free(p);
}

int pool_cpu_count(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n >= 1)
            return n;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (int)n;
}
