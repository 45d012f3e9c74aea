/* health: the router's background thread. Every interval it probes each
 * backend (GET /health or /v1/models upstream; never a generation) and
 * reports the outcome; about once a second it calls each backend's tick
 * (local: unload after keep_alive). */
#ifndef SOV_HEALTH_H
#define SOV_HEALTH_H

#include <stdbool.h>

#include "backend.h"

typedef struct health health;

/* Called on the health thread after each probe of backend i. */
typedef void (*health_cb)(void *ctx, int i, bool ok, const char *why, double ms);

/* Starts the thread over bs[0..n) (borrowed until health_stop). The first
 * probes run at once. interval_s > 0. Errors: SOV_ENOMEM, SOV_EIO. */
int health_start(health **out, backend **bs, int n, double interval_s, health_cb cb, void *ctx);

/* Stops and joins the thread (within about one probe timeout); NULL is
 * fine. */
void health_stop(health *h);

#endif
