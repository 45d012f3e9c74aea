/* backend_local: GGUF models run in this process, behind the backend
 * interface (backend.h), several of them under one memory budget.
 *
 * Each local backend loads its model on first use (or at start with
 * preload) and unloads it after keep_alive seconds without a request. The
 * group holds the memory budget of all of them: loading a model first
 * unloads idle ones, least recently used first; a model that does not fit
 * even alone, or while the others are busy for longer than a wait bound,
 * is a 503 (BK_FAIL_UNAVAILABLE), never an out-of-memory kill. What a model
 * needs is estimated before loading from its file: weights + KV pool +
 * compute buffers. */
#ifndef SOV_BACKEND_LOCAL_H
#define SOV_BACKEND_LOCAL_H

#include <stdint.h>

#include "../engine/sample.h"
#include "../server/metrics.h"
#include "backend.h"
#include "config.h"

typedef struct local_group local_group;

/* A group with budget bytes for all its models (> 0). *out freed with
 * local_group_free after every backend of it. Starts the group's loader thread (models load there, at the
 * server's priority, one at a time). Errors: SOV_ENOMEM, SOV_EIO (thread). */
int local_group_new(local_group **out, int64_t budget);
void local_group_free(local_group *g);

/* Bytes the group's loaded (and loading) models hold, and the budget. */
int64_t local_group_used(local_group *g);
int64_t local_group_budget(const local_group *g);

/* A local backend for c (type CFG_LOCAL; copied) in group g (borrowed).
 * base: the sampling defaults of a request (copied). mt: metrics its
 * scheduler feeds (borrowed, may be NULL). The model file is opened mapped
 * once here, to check it and to estimate its memory; nothing is loaded.
 * Errors: those of model_load (with the path), SOV_EFORMAT (no tokenizer),
 * SOV_ENOMEM. */
int backend_local_new(backend **out, local_group *g, const cfg_backend *c, const sample_params *base, metrics *mt);

/* Loads b's model now (for preload), waiting for room as a request would.
 * Errors: SOV_EBUSY / SOV_ENOMEM (does not fit), the load's own errors. */
int backend_local_load(backend *b);

/* Estimated bytes b's model takes when loaded. */
int64_t backend_local_need(const backend *b);

/* Model loads and unloads so far. */
void backend_local_counts(backend *b, int64_t *loads, int64_t *unloads);

/* Stops taking new requests; running ones go on. */
void backend_local_drain(backend *b);

/* Requests open on b (waiting, generating or streaming). */
int backend_local_busy(backend *b);

#endif
