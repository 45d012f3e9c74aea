/* sched: continuous batching of generation requests over one forward
 * context (one KV sequence per slot), on its own thread.
 *
 * KV memory is one pool of blocks of KV_TILE positions (engine/kvpage.h)
 * that every sequence draws from as it grows; full blocks are published in
 * a prefix tree (server/prefix.h), so a prompt starting with cached blocks
 * (a system prompt, tools, an earlier turn, a preempted job's own work)
 * maps them read-only and evaluates only the rest. When the pool is out of
 * blocks, the most recently admitted sequence is preempted: its blocks go
 * back (full ones stay cached), it returns to the front of the queue with
 * its tokens and sampler, and later resumes where it stopped.
 *
 * Each step the scheduler thread admits queued jobs into free slots (when
 * the pool has room for their prompt), then makes ONE forward_decode call that
 * carries the next token of every generating slot plus at most `n_batch`
 * tokens in all (pending prompt tokens of admitted slots fill what the
 * generating ones leave), samples every slot that got logits with its own
 * sampler, and publishes the new text to the job. The engine gives every
 * output the same bits whatever else is in the batch and wherever its KV
 * blocks live, and each job samples with its own seeded RNG, so a job's
 * tokens do not depend on its neighbours, its slot, how its prompt was
 * chunked, what was shared, or whether it was preempted.
 *
 * A job is shared by the submitting thread and the scheduler (refcounted).
 * Its text grows in a buffer sized at submission for the whole generation;
 * bytes below `committed` never change again, so a reader may use
 * text[0..committed) after reading `committed` under the job's lock
 * (sched_job_view). Text that could still turn out to be the start of a stop
 * string, or an incomplete UTF-8 character, is held back until it is
 * decided; a stop string and what follows it are never committed. */
#ifndef SOV_SCHED_H
#define SOV_SCHED_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../base/pool.h"
#include "../engine/model.h"
#include "../engine/sample.h"
#include "../grammar/gram.h"
#include "metrics.h"

#define SCHED_MAX_STOP 4     /* stop strings per request (OpenAI's limit) */
#define SCHED_MAX_TOP 20     /* top_logprobs bound (OpenAI's) */

enum sched_finish { SCHED_RUNNING = 0, SCHED_STOP, SCHED_LENGTH, SCHED_CANCELLED, SCHED_ERROR };

typedef struct sched_params {
    int32_t n_slots;     /* sequences generated at once (>= 1) */
    int32_t n_ctx;       /* positions one sequence may reach (prompt + generated) */
    int32_t n_batch;     /* tokens one step evaluates at most (generating + prompt) */
    int32_t queue_max;   /* jobs waiting for a slot before submit says SOV_EBUSY */
    int32_t kv_tokens;   /* KV pool in positions, rounded up to whole blocks of KV_TILE
                          * (0: n_slots * n_ctx, every sequence its full context); at least n_ctx */
    bool no_share;       /* true: no prefix sharing between requests (for measurements) */
    int kv_type;         /* enum kv_type (engine/kv.h): KV_F32, KV_F16, KV_Q8_0 */
} sched_params;

/* What to generate; filled by the caller before sched_submit, then owned by
 * the job (the stop strings and bias arrays are freed with it). */
typedef struct sched_gen {
    sample_params sp;
    int32_t n_max;            /* tokens to generate at most (>= 1) */
    bool ignore_eos;          /* end-of-generation tokens do not stop (and are emitted) */
    int32_t n_stop;
    char *stop[SCHED_MAX_STOP]; /* malloc'd, non-empty */
    int32_t logprobs;         /* -1: none; else record log p and this many top tokens (0..SCHED_MAX_TOP) */
    int32_t n_bias;
    int32_t *bias_id;         /* malloc'd [n_bias] */
    float *bias;              /* malloc'd [n_bias] */
    gram *grammar;            /* the output must follow it (owned; NULL: free text); the
                               * generation stops where the grammar cannot go on */
} sched_gen;

/* One generated token, for logprobs: its text is text[end_prev..end) where
 * end_prev is the previous record's end (0 for the first). */
typedef struct sched_tok {
    int32_t id;
    size_t end;
    float lp;
    int32_t top_off;          /* index of its n_top entries in top_id / top_lp */
} sched_tok;

typedef struct sched_job {
    /* input, immutable after submit */
    int32_t *prompt;          /* malloc'd, owned */
    int32_t n_prompt;
    sched_gen gen;
    bool per_token;           /* wake waiters at every token (streams); else only at the end */

    /* output: guarded by mu, except text[0..committed) and toks[0..n_tok_committed) which never change once published */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char *text;               /* generated text, capacity for the whole generation */
    size_t len, committed;
    sched_tok *toks;          /* logprobs records (NULL unless gen.logprobs >= 0) */
    int32_t *top_id;
    float *top_lp;
    int32_t n_tok, n_tok_committed;
    int finish;               /* enum sched_finish; != SCHED_RUNNING when done */
    char err[256];            /* message when finish == SCHED_ERROR */
    int32_t n_cached;         /* prompt tokens whose KV was reused */
    int32_t n_gen;            /* tokens generated (including a final EOS) */
    double t_submit, t_first, t_last; /* seconds, monotonic */
    atomic_bool cancel;
    int refs;

    /* the scheduler thread's own (no lock): the tokens so far and the
     * sampler live in the job, not the slot, so a preempted job resumes
     * exactly where it stopped */
    int32_t *seq;             /* prompt + generated tokens, capacity n_prompt + n_max + 1 */
    int32_t n_seq;
    sampler *smp;             /* NULL until first admitted */
    gram_state *gst;          /* the grammar's matcher (with gen.grammar), created with smp */
    uint64_t order;           /* first admission's number (the latest admitted is preempted first) */
    int32_t n_preempt;        /* times it was preempted */
} sched_job;

typedef struct sched sched;

/* Creates a scheduler for model m (borrowed; must outlive it) computing on
 * pool p (borrowed), with metrics mt (borrowed; may be NULL), and starts its
 * thread. Errors: SOV_EINVAL (parameters), SOV_ENOMEM, SOV_EIO (thread). */
int sched_new(sched **out, const model *m, pool *p, const sched_params *sp, metrics *mt);

/* Stops the thread (jobs still queued or running finish as SCHED_CANCELLED)
 * and frees the scheduler; NULL is fine. */
void sched_free(sched *s);

/* A new job with one reference held by the caller; takes ownership of
 * prompt (malloc'd, n_prompt >= 1 tokens) and of the gen's allocations,
 * also on failure. Errors: SOV_ENOMEM. */
int sched_job_new(sched_job **out, const sched *s, int32_t *prompt, int32_t n_prompt, const sched_gen *gen);

/* Drops one reference; the last frees the job. NULL is fine. */
void sched_job_unref(sched_job *j);

/* Frees the allocations inside a gen that was never given to a job. */
void sched_gen_clear(sched_gen *g);

/* Queues j (the scheduler takes its own reference). Errors: SOV_ERANGE
 * (prompt + n_max exceed the slot context; nothing queued), SOV_EBUSY (queue
 * full, or draining). */
int sched_submit(sched *s, sched_job *j);

/* Asks the scheduler to stop j: within one step its slot is freed and it
 * finishes as SCHED_CANCELLED (if it had not finished). Any thread. */
void sched_cancel(sched_job *j);

/* A consistent view of j's progress (taken under its lock). */
typedef struct sched_view {
    size_t committed;
    int32_t n_tok_committed;
    int finish;
    int32_t n_gen, n_cached;
} sched_view;

/* Waits until j has committed more than `seen` bytes or more than seen_tok
 * token records, or finished, or timeout_ms passed; then fills *v. Returns
 * true if something new (or the end) is there. */
bool sched_job_wait(sched_job *j, size_t seen, int32_t seen_tok, int timeout_ms, sched_view *v);

/* Stop accepting jobs (sched_submit says SOV_EBUSY); running and queued
 * jobs go on. */
void sched_drain(sched *s);

/* Jobs queued or running. */
int sched_busy(sched *s);

/* Context positions of one sequence, and number of slots. */
int32_t sched_n_ctx(const sched *s);
int32_t sched_n_slots(const sched *s);

/* KV pool counters (a snapshot, any thread). */
typedef struct sched_kv_stats {
    int32_t blocks_total, blocks_used, blocks_cached;
    int64_t preemptions, prompt_tokens, prompt_cached, evaluated_prompt;
} sched_kv_stats;
sched_kv_stats sched_kv_stat(sched *s);

/* Grammar masks computed so far and the time they took (seconds), for the
 * benchmarks and /metrics. */
typedef struct sched_gram_stats {
    int64_t masks;
    double seconds;
} sched_gram_stats;
sched_gram_stats sched_gram_stat(sched *s);

/* Name of the kernel table the scheduler's context computes with. */
const char *sched_kernels(const sched *s);

#endif
