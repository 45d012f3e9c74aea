/* bench: timed pp / tg runs of the forward pass (see bench.h). */
#include "bench.h"

#include "../base/err.h"
#include "kv.h"
#include "model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void bench_tokens(uint64_t seed, int32_t n_vocab, int32_t *toks, int32_t n)
{
    for (int32_t i = 0; i < n; i++)
        toks[i] = (int32_t)(rng_next(&seed) % (uint64_t)n_vocab);
}

int bench_run(forward *fw, const bench_test *t, bench_result *r)
{
    if (!fw || !t || !r || !t->toks || !r->runs || t->depth < 0 || t->n < 1 || t->reps < 1 ||
        (!t->is_pp && t->bw && !r->bw_runs))
        return err_set(SOV_EINVAL, "bench_run: bad arguments");
    const int32_t depth = t->depth, n = t->n;
    const int32_t n_pos = depth > n ? depth : n;
    int32_t *pos = malloc(sizeof *pos * (size_t)n_pos);
    int8_t *want = malloc((size_t)n);
    int rc = 0;
    if (!pos || !want) {
        rc = err_set(SOV_ENOMEM, "out of memory");
        goto done;
    }
    if (depth > 0) {
        for (int32_t i = 0; i < depth; i++)
            pos[i] = i;
        forward_batch pb = {.n = depth, .token = t->toks, .pos = pos};
        if ((rc = forward_decode(fw, &pb)))
            goto done;
    }
    for (int rep = -1; rep < t->reps; rep++) {
        double dt;
        if (t->is_pp) {
            for (int32_t i = 0; i < n; i++) {
                pos[i] = depth + i;
                want[i] = i == n - 1; /* logits only after the whole prompt */
            }
            double t0 = now_s();
            forward_batch b = {.n = n, .token = t->toks + depth, .pos = pos, .logits = want};
            if ((rc = forward_decode(fw, &b)))
                goto done;
            dt = now_s() - t0;
        } else {
            double t0 = now_s();
            for (int32_t i = 0; i < n; i++) {
                int32_t p = depth + i;
                forward_batch b = {.n = 1, .token = t->toks + depth + i, .pos = &p};
                if ((rc = forward_decode(fw, &b)))
                    goto done;
            }
            dt = now_s() - t0;
        }
        if (rep < 0)
            continue;
        r->runs[rep] = dt > 0 ? n / dt : 0;
        if (!t->is_pp && t->bw) {
            membw_result br;
            if ((rc = membw_measure(t->bw, t->bw_pool, BENCH_BW_RUN_PASSES, NULL, &br)))
                goto done;
            r->bw_runs[rep] = br.gbps;
        }
    }
    double s = 0, ss = 0;
    for (int i = 0; i < t->reps; i++)
        s += r->runs[i];
    r->mean = s / t->reps;
    for (int i = 0; i < t->reps; i++)
        ss += (r->runs[i] - r->mean) * (r->runs[i] - r->mean);
    r->sd = t->reps > 1 ? sqrt(ss / (t->reps - 1)) : 0;
done:
    free(pos);
    free(want);
    return rc;
}

int bench_model(const char *path, pool *p, const bench_model_opts *o, bench_model_result *out)
{
    if (!path || !o || !out || o->n_pp < 0 || o->n_gen < 0 || (!o->n_pp && !o->n_gen) || o->reps < 1 ||
        o->reps > BENCH_MAX_REPS)
        return err_set(SOV_EINVAL, "bench_model: bad options (pp %d, tg %d, %d runs; 1 to %d runs)",
                       o ? o->n_pp : 0, o ? o->n_gen : 0, o ? o->reps : 0, BENCH_MAX_REPS);
    memset(out, 0, sizeof *out);
    model *m = NULL;
    forward *fw = NULL;
    int32_t *toks = NULL;
    int rc;
    if ((rc = model_load_mode(&m, path, o->use_mmap)))
        goto fail;
    if ((rc = model_cost_get_kv(m, o->kv_type, &out->cost)))
        goto fail;
    const int32_t tg_end = o->n_gen ? BENCH_TG_PROMPT + o->n_gen : 0;
    const int32_t n_ctx = o->n_pp > tg_end ? o->n_pp : tg_end;
    if (n_ctx > m->hp.n_ctx_train) {
        rc = err_set(SOV_ERANGE, "%s: pp %d / tg %d (+ %d prompt) exceed the training context (%d tokens)", path,
                     o->n_pp, o->n_gen, BENCH_TG_PROMPT, m->hp.n_ctx_train);
        goto fail;
    }
    out->file_bytes = m->g->size;
    out->reps = o->reps;
    if (!(toks = malloc(sizeof *toks * (size_t)n_ctx))) {
        rc = err_set(SOV_ENOMEM, "out of memory");
        goto fail;
    }
    bench_tokens(BENCH_TOKEN_SEED, m->hp.n_vocab, toks, n_ctx);
    if ((rc = forward_new_kv(&fw, m, n_ctx, 1, 0, o->kv_type, p)) ||
        (rc = forward_set_batch(fw, n_ctx < 512 ? n_ctx : 512)))
        goto fail;
    if (o->n_pp) {
        bench_test t = {.is_pp = true, .toks = toks, .n = o->n_pp, .reps = o->reps};
        bench_result r = {.runs = out->pp_runs};
        if ((rc = bench_run(fw, &t, &r)))
            goto fail;
        out->pp_mean = r.mean;
        out->pp_sd = r.sd;
        out->pp_flops_token = model_cost_matrix_flops(&out->cost, o->n_pp, 1) / o->n_pp;
    }
    if (o->n_gen) {
        bench_test t = {.toks = toks, .depth = BENCH_TG_PROMPT, .n = o->n_gen, .reps = o->reps, .bw = o->bw,
                        .bw_pool = p};
        bench_result r = {.runs = out->tg_runs, .bw_runs = out->tg_bw};
        if ((rc = bench_run(fw, &t, &r)))
            goto fail;
        out->tg_mean = r.mean;
        out->tg_sd = r.sd;
        out->tg_avg_ctx = BENCH_TG_PROMPT + (o->n_gen + 1) / 2.0; /* the token at position q reads q + 1 */
        out->tg_bytes_token = model_cost_token_bytes(&out->cost, out->tg_avg_ctx);
    }
    forward_free(fw);
    model_free(m);
    free(toks);
    return 0;
fail:
    forward_free(fw);
    model_free(m);
    free(toks);
    memset(out, 0, sizeof *out);
    return rc;
}
