/* pool: every job runs on every thread exactly once, with the right (ith,
 * nth), both back to back (workers spinning) and after idle gaps longer than
 * the spin time (workers asleep, woken by the condition variable); the same
 * with pool_run_pf and spans to read while waiting (large ones, so threads
 * are still reading when the next job comes; none; and ones freed before
 * the workers are done with them). */
#include "t.h"

#include "base/pool.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

typedef struct {
    atomic_int calls;
    atomic_int bad;
    atomic_long ith_sum;
} job;

static void fn(void *arg, int ith, int nth)
{
    job *j = arg;
    atomic_fetch_add(&j->calls, 1);
    atomic_fetch_add(&j->ith_sum, ith);
    if (ith < 0 || ith >= nth)
        atomic_fetch_add(&j->bad, 1);
}

static unsigned char big[8 << 20];

static void run(int n_threads, int jobs, long gap_us, const char *what)
{
    pool *p = NULL;
    char name[128];
    snprintf(name, sizeof name, "pool %d threads, %d jobs, %s", n_threads, jobs, what);
    if (pool_new(&p, n_threads) != 0) {
        t_check(false, name, "pool_new failed");
        return;
    }
    bool ok = pool_size(p) == n_threads;
    for (int i = 0; i < jobs && ok; i++) {
        job j = {0};
        if (what[0] == 'p') { /* "pf ...": spans of up to 4 MiB each, some none */
            pool_span sp[8 * POOL_SPANS] = {{0}};
            for (int t = 0; t < n_threads && t < 8; t++)
                for (int k = 0; k < POOL_SPANS; k++)
                    if ((t + k + i) % 3)
                        sp[t * POOL_SPANS + k] = (pool_span){big + (size_t)(t * POOL_SPANS + k) * 512 * 1024,
                                                             (size_t)(i % 9) << 19};
            pool_run_pf(p, fn, &j, i % 5 ? sp : NULL);
        } else {
            pool_run(p, fn, &j);
        }
        /* pool_run returns only after every thread finished */
        ok = atomic_load(&j.calls) == n_threads && atomic_load(&j.bad) == 0 &&
             atomic_load(&j.ith_sum) == (long)n_threads * (n_threads - 1) / 2;
        if (gap_us) {
            struct timespec ts = {0, gap_us * 1000};
            nanosleep(&ts, NULL);
        }
    }
    pool_free(p);
    t_check(ok, name, "a job did not run exactly once per thread");
}

int main(void)
{
    run(1, 1000, 0, "back to back");
    run(2, 20000, 0, "back to back");
    run(3, 5000, 0, "back to back (more threads than cores is allowed)");
    run(2, 20, 5000, "5 ms gaps (workers sleep)");
    run(4, 20, 3000, "3 ms gaps");
    run(2, 20000, 0, "pf back to back");
    run(3, 3000, 0, "pf back to back");
    run(2, 20, 3000, "pf 3 ms gaps");
    /* spans freed while a worker may still be reading them: prefetches do not fault */
    pool *q = NULL;
    bool ok = pool_new(&q, 2) == 0;
    for (int i = 0; ok && i < 200; i++) {
        unsigned char *m = malloc(1 << 20);
        pool_span sp[2 * POOL_SPANS] = {{m, 1 << 20}, {0}, {m, 1 << 20}, {0}};
        job j = {0};
        pool_run_pf(q, fn, &j, sp);
        free(m);
        ok = atomic_load(&j.calls) == 2;
    }
    pool_free(q);
    t_check(ok, "pool_run_pf: spans freed after the job returns", "a job did not run on both threads");
    pool *p = NULL;
    t_check(pool_new(&p, 0) != 0 && pool_new(&p, 513) != 0 && !p, "pool rejects 0 and 513 threads", "-");
    t_check(pool_cpu_count() >= 1, "pool_cpu_count >= 1", "-");
    return t_done();
}
