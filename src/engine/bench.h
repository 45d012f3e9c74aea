/* bench: the timing core of `sov bench`, shared by the command and by the
 * capacity planner's calibration (`sov plan --calibrate`), so both time the
 * forward pass the same way.
 *
 * A test runs reps + 1 times, the first run a warm-up: pp<N> evaluates N
 * prompt tokens as one batch (logits after the last), tg<N> makes N
 * single-token decode calls. With a bandwidth buffer, the memory read
 * bandwidth is measured right after each timed tg run, so each run is set
 * against the bandwidth of its own moment (other processes on the machine
 * change it from minute to minute). */
#ifndef SOV_BENCH_H
#define SOV_BENCH_H

#include <stdbool.h>
#include <stdint.h>

#include "../base/membw.h"
#include "../base/pool.h"
#include "cost.h"
#include "forward.h"

#define BENCH_TG_PROMPT 16         /* untimed prompt before a tg run (sov bench without -d) */
#define BENCH_BW_RUN_PASSES 2      /* bandwidth passes per kernel after each timed tg run */
#define BENCH_TOKEN_SEED 0x5eedULL /* the random tokens are the same in every run */
#define BENCH_MAX_REPS 32          /* timed runs bench_model keeps */

/* Fills toks[0..n) with token ids uniform in 0..n_vocab-1, a pure function
 * of seed (sov bench uses BENCH_TOKEN_SEED). n_vocab >= 1. */
void bench_tokens(uint64_t seed, int32_t n_vocab, int32_t *toks, int32_t n);

/* One pp or tg test. */
typedef struct bench_test {
    bool is_pp;
    const int32_t *toks;  /* depth + n token ids (borrowed) */
    int32_t depth;        /* positions evaluated once, untimed, before the runs */
    int32_t n;            /* tokens per run, at positions depth .. depth + n - 1 */
    int reps;             /* timed runs (>= 1), after one warm-up run */
    membw *bw;            /* tg: bandwidth measured after each timed run; NULL: not measured */
    pool *bw_pool;        /* threads of that measurement (NULL: the calling thread) */
} bench_test;

/* Result of a test; the arrays are the caller's, reps entries each. */
typedef struct bench_result {
    double mean, sd;      /* tok/s over the timed runs (sd: sample stddev, 0 for one run) */
    double *runs;         /* tok/s of each timed run */
    double *bw_runs;      /* read GB/s (1e9 B/s) after each run; written only for tg with t->bw */
} bench_result;

/* Runs test t on context fw (whose KV cache must hold depth + n positions
 * of sequence 0) and fills r. Each run rewrites the same positions, so the
 * runs are alike. Errors: SOV_EINVAL (bad test), SOV_ENOMEM, those of
 * forward_decode and membw_measure. */
int bench_run(forward *fw, const bench_test *t, bench_result *r);

/* What bench_model runs. */
typedef struct bench_model_opts {
    int32_t n_pp;         /* prompt tokens of the pp test (0: no pp test) */
    int32_t n_gen;        /* tokens of the tg test, after a BENCH_TG_PROMPT-token prompt (0: none) */
    int reps;             /* timed runs of each test, 1..BENCH_MAX_REPS */
    int kv_type;          /* enum kv_type (kv.h) of the KV cache */
    bool use_mmap;        /* map the file (false: read it into huge-page memory, as sov bench) */
    membw *bw;            /* tg: bandwidth after each run (NULL: none, tg_bw stays 0) */
} bench_model_opts;

typedef struct bench_model_result {
    model_cost cost;      /* of the model with the opts' KV type */
    uint64_t file_bytes;
    int reps;
    double pp_runs[BENCH_MAX_REPS], pp_mean, pp_sd; /* pp tok/s */
    double pp_flops_token;                          /* matrix flops per prompt token of the pp test */
    double tg_runs[BENCH_MAX_REPS], tg_mean, tg_sd; /* tg tok/s */
    double tg_bw[BENCH_MAX_REPS];                   /* read GB/s right after each tg run */
    double tg_avg_ctx;    /* average positions a tg token's attention reads */
    double tg_bytes_token; /* bytes streamed per tg token: weights + KV at tg_avg_ctx */
} bench_model_result;

/* Loads the GGUF model at path, runs the pp test then the tg test of o
 * (as `sov bench -p N_PP -n N_GEN -r REPS` does, same tokens) on pool p,
 * and frees it. Errors: SOV_EINVAL (bad options: nothing to run, reps out
 * of range), SOV_ERANGE (the tests exceed the training context), and those
 * of model_load_mode, forward_new_kv and bench_run. */
int bench_model(const char *path, pool *p, const bench_model_opts *o, bench_model_result *out);

#endif
