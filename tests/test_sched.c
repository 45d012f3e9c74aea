/* Scheduler (server/sched.c) without HTTP, on the real engine and the
 * shared stories260K model: the greedy oracle through a slot, stop strings
 * cut across token boundaries and never committed, text published in order,
 * shared prefix blocks, cancellation freeing the slot, queue and context
 * limits, a job's text independent of its neighbours (12 jobs on 4 slots vs
 * alone), and a pool too small for 16 jobs at once: preemptions, the same
 * texts. */
#include "t.h"

#include "base/err.h"
#include "base/file.h"
#include "base/pool.h"
#include "engine/model.h"
#include "server/metrics.h"
#include "server/sched.h"
#include "tok/vocab.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static model *M;
static pool *P;

static int32_t *encode(const char *text, int32_t *n)
{
    int32_t *ids = NULL;
    size_t k = 0;
    if (vocab_encode(M->vocab, text, strlen(text), true, true, &ids, &k))
        return NULL;
    *n = (int32_t)k;
    return ids;
}

static sched_gen greedy(int32_t n_max)
{
    sched_gen g;
    memset(&g, 0, sizeof g);
    g.sp = sample_defaults();
    g.sp.temp = 0;
    g.n_max = n_max;
    g.ignore_eos = true;
    g.logprobs = -1;
    return g;
}

/* Submits prompt with gen to s and waits for the end; the text (malloc'd)
 * and the final view. NULL on a submit error (its code in *rc). */
static char *run1(sched *s, const char *prompt, sched_gen g, sched_view *v, int *rc, bool cancel_early)
{
    int32_t n;
    int32_t *ids = encode(prompt, &n);
    sched_job *j = NULL;
    *rc = sched_job_new(&j, s, ids, n, &g);
    if (*rc)
        return NULL;
    j->per_token = true;
    if ((*rc = sched_submit(s, j))) {
        sched_job_unref(j);
        return NULL;
    }
    size_t seen = 0;
    bool ordered = true;
    for (;;) {
        sched_job_wait(j, seen, 0, 1000, v);
        if (v->committed < seen)
            ordered = false;
        seen = v->committed;
        if (cancel_early && v->n_gen > 0 && v->finish == SCHED_RUNNING)
            sched_cancel(j);
        if (v->finish != SCHED_RUNNING)
            break;
    }
    char *t = malloc(v->committed + 1);
    memcpy(t, j->text, v->committed);
    t[v->committed] = 0;
    if (!ordered)
        t[0] = '\x01'; /* flags a committed count that went backwards */
    sched_job_unref(j);
    return t;
}

static char *expected_text(const char *path)
{
    char *txt = NULL;
    if (file_read_all(path, &txt, NULL))
        return NULL;
    char *p = strstr(txt, "\n---\n");
    if (!p) {
        free(txt);
        return NULL;
    }
    char *e = strdup(p + 5);
    size_t n = strlen(e);
    if (n && e[n - 1] == '\n')
        e[n - 1] = 0;
    free(txt);
    return e;
}

int main(void)
{
    if (!t_check(model_load_mode(&M, t_shared("models/stories260K.gguf"), false) == 0, "sched: load stories260K",
                 "%s", err_msg()) ||
        !t_check(pool_new(&P, 2) == 0, "sched: pool", "%s", err_msg()))
        return t_done();
    sched *s = NULL;
    sched_params sp = {.n_slots = 4, .n_ctx = 512, .n_batch = 64, .queue_max = 32};
    if (!t_check(sched_new(&s, M, P, &sp, NULL) == 0, "sched: new", "%s", err_msg()))
        return t_done();
    sched_view v;
    int rc;

    /* 1. the exact-text oracle through a slot: 200 greedy tokens after the prompt */
    char *exp = expected_text(t_shared("models/stories260K.expected-greedy-prompt.txt"));
    char *got = run1(s, "Once upon a time", greedy(200), &v, &rc, false);
    t_check(exp && got && !strncmp(exp, "Once upon a time", 16) && !strcmp(got, exp + 16) &&
                v.finish == SCHED_LENGTH && v.n_gen == 200,
            "sched: greedy text equals the oracle", "rc %d finish %d n %d got %.60s", rc, v.finish, v.n_gen,
            got ? got : "(null)");

    /* 2. shared prefix: a long prompt's full blocks are cached; the same
     * prompt again maps them (all but the block holding its last token) and
     * gives the same text; a prompt that shares only the first block maps one */
    char longp[1200];
    snprintf(longp, sizeof longp, "Once upon a time%.600s", exp ? exp + 16 : "");
    int32_t n_long = 0;
    free(encode(longp, &n_long));
    sched_view v1, v2;
    char *l1 = run1(s, longp, greedy(40), &v1, &rc, false);
    char *l2 = run1(s, longp, greedy(40), &v2, &rc, false);
    int32_t want_cached = (n_long - 1) / 32 * 32;
    t_check(l1 && l2 && !strcmp(l1, l2) && v2.n_cached == want_cached && want_cached >= 64,
            "sched: a cached prefix is mapped, same text", "prompt %d tokens, cached %d then %d (want %d)", n_long,
            v1.n_cached, v2.n_cached, want_cached);
    free(l1);
    free(l2);

    /* 3. stop strings: cut at the first occurrence, across token boundaries;
     * text before it only */
    if (got) {
        const char *cands[] = {"ttle gi", "ily. S", "e park", "d, \"L"};
        for (int k = 0; k < 4; k++) {
            const char *hit = strstr(got, cands[k]);
            if (!hit)
                continue;
            sched_gen g = greedy(200);
            g.stop[0] = strdup("never-appears");
            g.stop[1] = strdup(cands[k]);
            g.n_stop = 2;
            char *st = run1(s, "Once upon a time", g, &v, &rc, false);
            size_t want = (size_t)(hit - got);
            char name[96];
            snprintf(name, sizeof name, "sched: stop \"%s\" cuts the text before it", cands[k]);
            t_check(st && strlen(st) == want && !strncmp(st, got, want) && v.finish == SCHED_STOP, name,
                    "len %zu want %zu finish %d", st ? strlen(st) : 0, want, v.finish);
            free(st);
        }
    }

    /* 4. cancellation finishes the job and frees its slot */
    char *c = run1(s, "The cat", greedy(400), &v, &rc, true);
    t_check(c && v.finish == SCHED_CANCELLED && v.n_gen < 400, "sched: cancel ends the job", "finish %d n %d",
            v.finish, v.n_gen);
    free(c);
    for (int k = 0; k < 50 && sched_busy(s); k++) {
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    t_check(sched_busy(s) == 0, "sched: idle after the cancel", "busy %d", sched_busy(s));

    /* 5. limits: prompt + n_max beyond the slot's context */
    {
        int32_t n;
        int32_t *ids = encode("Once upon a time", &n);
        sched_job *j = NULL;
        sched_job_new(&j, s, ids, n, &(sched_gen){.sp = sample_defaults(), .n_max = 600, .logprobs = -1});
        rc = sched_submit(s, j);
        t_check(rc == SOV_ERANGE, "sched: context limit is SOV_ERANGE", "rc %d", rc);
        sched_job_unref(j);
    }

    /* 6. 12 seeded jobs on 4 slots at once == each alone */
    enum { NJ = 12 };
    const char *prompts[NJ] = {"Lily", "Tom had", "The sun", "A dog", "One day", "Sue", "The bird", "Mom said",
                               "He ran", "The tree", "She saw", "Ben"};
    char *alone[NJ];
    for (int i = 0; i < NJ; i++) {
        sched_gen g = greedy(48);
        g.sp.temp = 0.9f;
        g.sp.seed = 1000 + (uint64_t)i;
        alone[i] = run1(s, prompts[i], g, &v, &rc, false);
    }
    sched_job *js[NJ];
    for (int i = 0; i < NJ; i++) {
        int32_t n;
        int32_t *ids = encode(prompts[i], &n);
        sched_gen g = greedy(48);
        g.sp.temp = 0.9f;
        g.sp.seed = 1000 + (uint64_t)i;
        sched_job_new(&js[i], s, ids, n, &g);
        sched_submit(s, js[i]);
    }
    int same = 0;
    for (int i = 0; i < NJ; i++) {
        do
            sched_job_wait(js[i], SIZE_MAX - 1, INT32_MAX - 1, 1000, &v);
        while (v.finish == SCHED_RUNNING);
        same += alone[i] && v.committed == strlen(alone[i]) && !memcmp(js[i]->text, alone[i], v.committed);
        sched_job_unref(js[i]);
        free(alone[i]);
    }
    t_check(same == NJ, "sched: 12 seeded jobs on 4 slots give the texts they give alone", "%d of %d", same, NJ);

    /* 7. queue full: with every slot busy and the queue at its bound, submit says SOV_EBUSY */
    {
        sched *q = NULL;
        sched_params qp = {.n_slots = 1, .n_ctx = 512, .n_batch = 32, .queue_max = 1};
        sched_new(&q, M, P == NULL ? NULL : P, &qp, NULL);
        sched_job *a[3] = {0};
        int rcs[3];
        for (int i = 0; i < 3; i++) {
            int32_t n;
            int32_t *ids = encode("Once upon a time", &n);
            sched_job_new(&a[i], q, ids, n, &(sched_gen){.sp = sample_defaults(), .n_max = 400, .ignore_eos = true,
                                                        .logprobs = -1});
            rcs[i] = sched_submit(q, a[i]);
        }
        /* the first may already be in the slot; the third never fits while the second waits */
        t_check(rcs[0] == 0 && (rcs[1] == 0 || rcs[1] == SOV_EBUSY) && (rcs[1] == SOV_EBUSY || rcs[2] == SOV_EBUSY),
                "sched: queue bound gives SOV_EBUSY", "rc %d %d %d", rcs[0], rcs[1], rcs[2]);
        sched_drain(q);
        int32_t n;
        int32_t *ids = encode("x", &n);
        sched_job *d = NULL;
        sched_job_new(&d, q, ids, n, &(sched_gen){.sp = sample_defaults(), .n_max = 4, .logprobs = -1});
        t_check(sched_submit(q, d) == SOV_EBUSY, "sched: draining refuses new jobs", "-");
        sched_job_unref(d);
        sched_free(q); /* cancels what still runs */
        for (int i = 0; i < 3; i++) {
            if (rcs[i] == 0) {
                sched_job_wait(a[i], SIZE_MAX - 1, INT32_MAX - 1, 1, &v);
                t_check(v.finish != SCHED_RUNNING, "sched: free ends every job", "job %d running", i);
            }
            sched_job_unref(a[i]);
        }
    }

    /* 8. a small pool: 16 jobs at once whose contexts exceed it all finish
     * with the texts they give alone; preemptions happen */
    {
        sched *q = NULL;
        sched_params qp = {.n_slots = 8, .n_ctx = 512, .n_batch = 64, .queue_max = 32, .kv_tokens = 640};
        metrics *mt = NULL;
        metrics_new(&mt, "t");
        int qrc = sched_new(&q, M, P, &qp, mt);
        enum { NP = 16 };
        char *solo[NP];
        char pr[NP][64];
        for (int i = 0; i < NP; i++) {
            snprintf(pr[i], sizeof pr[i], "%s %d", prompts[i % NJ], i);
            sched_gen g = greedy(120 + 8 * i);
            g.sp.temp = 0.8f;
            g.sp.seed = 77 + (uint64_t)i;
            solo[i] = qrc ? NULL : run1(q, pr[i], g, &v, &rc, false);
        }
        sched_job *pj[NP] = {0};
        for (int i = 0; i < NP && !qrc; i++) {
            int32_t n;
            int32_t *ids = encode(pr[i], &n);
            sched_gen g = greedy(120 + 8 * i);
            g.sp.temp = 0.8f;
            g.sp.seed = 77 + (uint64_t)i;
            sched_job_new(&pj[i], q, ids, n, &g);
            sched_submit(q, pj[i]);
        }
        int okn = 0, total = 0;
        for (int i = 0; i < NP && !qrc; i++) {
            do
                sched_job_wait(pj[i], SIZE_MAX - 1, INT32_MAX - 1, 1000, &v);
            while (v.finish == SCHED_RUNNING);
            total += pj[i]->n_prompt + v.n_gen;
            okn += solo[i] && v.finish == SCHED_LENGTH && v.committed == strlen(solo[i]) &&
                   !memcmp(pj[i]->text, solo[i], v.committed);
            sched_job_unref(pj[i]);
            free(solo[i]);
        }
        sched_kv_stats ks = qrc ? (sched_kv_stats){0} : sched_kv_stat(q);
        t_check(!qrc && okn == NP && total > 640 && ks.preemptions > 0,
                "sched: 16 jobs over a 640-position pool: same texts as alone, with preemptions",
                "rc %d, %d of %d same, %d positions in all, %lld preemptions", qrc, okn, NP, total,
                (long long)ks.preemptions);
        printf("INFO sched: small pool: %d positions asked of a 640-position pool, %lld preemptions, %lld prompt "
               "tokens evaluated\n",
               total, (long long)ks.preemptions, (long long)ks.evaluated_prompt);
        char *mtext = NULL;
        size_t mlen = 0;
        metrics_render(mt, &mtext, &mlen);
        t_check(mtext && strstr(mtext, "sov_preemptions_total{model=\"t\"} ") &&
                !strstr(mtext, "sov_preemptions_total{model=\"t\"} 0\n"),
                "sched: /metrics counts the preemptions", "%.200s", mtext ? mtext : "");
        free(mtext);
        sched_free(q);
        metrics_free(mt);
    }

    /* 9. jobs arriving together with a shared 3-block prefix: the prefix is
     * evaluated once (the others wait for its blocks), texts as alone */
    {
        sched *q = NULL;
        sched_params qp = {.n_slots = 6, .n_ctx = 512, .n_batch = 64, .queue_max = 32};
        sched_new(&q, M, P, &qp, NULL);
        enum { NS = 6 };
        char pre[700], pr[NS][800];
        snprintf(pre, sizeof pre, "%.400s", exp ? exp : "Once upon a time");
        int32_t n_pre = 0, n_tot = 0;
        free(encode(pre, &n_pre));
        char *solo[NS];
        for (int i = 0; i < NS; i++) {
            snprintf(pr[i], sizeof pr[i], "%s %s", pre, prompts[i]);
            solo[i] = run1(s, pr[i], greedy(24), &v, &rc, false); /* alone, on the other scheduler */
        }
        sched_job *sj[NS] = {0};
        for (int i = 0; i < NS; i++) {
            int32_t n;
            int32_t *ids = encode(pr[i], &n);
            n_tot += n;
            sched_job_new(&sj[i], q, ids, n, &(sched_gen){.sp = greedy(24).sp, .n_max = 24, .ignore_eos = true,
                                                         .logprobs = -1});
            sched_submit(q, sj[i]);
        }
        int same = 0;
        for (int i = 0; i < NS; i++) {
            do
                sched_job_wait(sj[i], SIZE_MAX - 1, INT32_MAX - 1, 1000, &v);
            while (v.finish == SCHED_RUNNING);
            same += solo[i] && v.committed == strlen(solo[i]) && !memcmp(sj[i]->text, solo[i], v.committed);
            sched_job_unref(sj[i]);
            free(solo[i]);
        }
        for (int k = 0; k < 100 && sched_busy(q); k++)
            nanosleep(&(struct timespec){0, 10000000}, NULL);
        nanosleep(&(struct timespec){0, 30000000}, NULL); /* the step's counters are published after it */
        sched_kv_stats ks = sched_kv_stat(q);
        sched_free(q);
        int32_t bound = n_pre + NS * (n_tot / NS - n_pre + 32);
        t_check(same == NS, "sched: jobs sharing a prefix at once give the texts they give alone", "%d of %d", same,
                NS);
        t_check(ks.evaluated_prompt <= bound && ks.evaluated_prompt < n_tot,
                "sched: a prefix shared by jobs arriving together is evaluated once",
                "evaluated %lld prompt tokens of %d; bound %d (prefix %d)", (long long)ks.evaluated_prompt, n_tot,
                bound, n_pre);
        printf("INFO sched: %d jobs with a %d-token shared prefix: %lld of %d prompt tokens evaluated\n", NS, n_pre,
               (long long)ks.evaluated_prompt, n_tot);
    }

    /* 10. a queued job whose client left gives its queue place back */
    {
        sched *q = NULL;
        sched_params qp = {.n_slots = 1, .n_ctx = 2048, .n_batch = 32, .queue_max = 2};
        sched_new(&q, M, P, &qp, NULL);
        sched_job *a[4] = {0};
        int rcs[4] = {0};
        for (int i = 0; i < 4; i++) {
            int32_t n;
            int32_t *ids = encode(i ? "The cat" : "Once upon a time", &n);
            sched_job_new(&a[i], q, ids, n, &(sched_gen){.sp = sample_defaults(), .n_max = i ? 4 : 2000,
                                                        .ignore_eos = true, .logprobs = -1});
            if (i == 0) { /* A runs; wait until it has its slot */
                rcs[0] = sched_submit(q, a[0]);
                do
                    sched_job_wait(a[0], 0, 0, 1000, &v);
                while (v.n_gen == 0 && v.finish == SCHED_RUNNING);
                continue;
            }
            rcs[i] = sched_submit(q, a[i]);
            if (i == 1) { /* B waits, then its client leaves */
                sched_cancel(a[1]);
                struct timespec ts = {0, 50000000};
                nanosleep(&ts, NULL);
            }
        }
        t_check(rcs[0] == 0 && rcs[1] == 0 && rcs[2] == 0 && rcs[3] == 0,
                "sched: a cancelled queued job frees its queue place", "rc %d %d %d %d", rcs[0], rcs[1], rcs[2],
                rcs[3]);
        sched_cancel(a[0]);
        for (int i = 0; i < 4; i++) {
            if (rcs[i] == 0)
                do
                    sched_job_wait(a[i], SIZE_MAX - 1, INT32_MAX - 1, 1000, &v);
                while (v.finish == SCHED_RUNNING);
            sched_job_unref(a[i]);
        }
        sched_free(q);
    }

    free(exp);
    free(got);
    sched_free(s);
    pool_free(P);
    model_free(M);
    return t_done();
}
