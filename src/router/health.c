#include "health.h"

#include "../base/err.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

struct health {
    backend **bs;
    int n;
    double interval_s;
    health_cb cb;
    void *ctx;
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void *run(void *arg)
{
    health *h = arg;
    double next_probe = 0, next_tick = 0;
    /* a probe may take up to its timeout: less than the interval, at most 2 s */
    int timeout_ms = (int)(h->interval_s * 500);
    if (timeout_ms > 2000)
        timeout_ms = 2000;
    if (timeout_ms < 100)
        timeout_ms = 100;
    pthread_mutex_lock(&h->mu);
    while (!h->stop) {
        pthread_mutex_unlock(&h->mu);
        double t = now_s();
        if (t >= next_probe) {
            next_probe = t + h->interval_s;
            for (int i = 0; i < h->n; i++) {
                char why[160] = "";
                double t0 = now_s();
                int rc = h->bs[i]->vt->probe(h->bs[i], timeout_ms, why, sizeof why);
                h->cb(h->ctx, i, rc == 0, why, (now_s() - t0) * 1e3);
            }
        }
        if (t >= next_tick) {
            next_tick = t + 1;
            for (int i = 0; i < h->n; i++)
                if (h->bs[i]->vt->tick)
                    h->bs[i]->vt->tick(h->bs[i]);
        }
        pthread_mutex_lock(&h->mu);
        if (h->stop)
            break;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 100 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&h->cv, &h->mu, &ts);
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

int health_start(health **out, backend **bs, int n, double interval_s, health_cb cb, void *ctx)
{
    *out = NULL;
    health *h = calloc(1, sizeof *h);
    if (!h)
        return err_set(SOV_ENOMEM, "out of memory");
    h->bs = bs;
    h->n = n;
    h->interval_s = interval_s > 0 ? interval_s : 5;
    h->cb = cb;
    h->ctx = ctx;
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    if (pthread_create(&h->th, NULL, run, h)) {
        pthread_mutex_destroy(&h->mu);
        pthread_cond_destroy(&h->cv);
        free(h);
        return err_set(SOV_EIO, "cannot start the health thread");
    }
    *out = h;
    return 0;
}

void health_stop(health *h)
{
    if (!h)
        return;
    pthread_mutex_lock(&h->mu);
    h->stop = true;
    pthread_cond_signal(&h->cv);
    pthread_mutex_unlock(&h->mu);
    pthread_join(h->th, NULL);
    pthread_mutex_destroy(&h->mu);
    pthread_cond_destroy(&h->cv);
    free(h);
}
