#include "sched.h"

#include "../base/err.h"
#include "../engine/forward.h"
#include "../engine/kv.h"
#include "../engine/kvpage.h"
#include "prefix.h"
#include "../tok/vocab.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A slot is one sequence of the forward context: the job it runs and the
 * KV blocks mapped to its tiles. */
typedef struct slot {
    sched_job *job;     /* NULL: free */
    int32_t n_kv;       /* job->seq[0..n_kv) are in the KV blocks */
    int32_t n_blk;      /* tiles 0..n_blk-1 are mapped to blk[] (one reference each) */
    int32_t *blk;       /* [n_tile] */
    int32_t n_pub;      /* full blocks already offered to the prefix tree */
    int32_t take;       /* tokens this step evaluates for it */
} slot;

struct sched {
    const model *m;
    const vocab *vb;
    pool *pl;
    forward *fw;
    metrics *mt;
    sched_params sp;
    int32_t n_vocab;
    int32_t n_tile;     /* tiles of one sequence */
    size_t max_piece;   /* longest token text in bytes */
    slot *slots;
    kvpage *pg;         /* the KV block pool (scheduler thread only) */
    prefix *pt;         /* full blocks by their tokens */
    int32_t *mbuf;      /* [n_tile] blocks prefix_match found */

    pthread_t th;
    bool th_started;
    pthread_mutex_t mu; /* guards the queue, stop, draining, n_running, kv */
    pthread_cond_t cv;
    sched_job **q;      /* ring of queue_max + n_slots (preempted jobs go back to its front) */
    int32_t q_cap, q_head, q_n;
    bool stop, draining;
    int32_t n_running;
    sched_kv_stats kv;  /* published under mu for sched_kv_stat */
    sched_gram_stats gs; /* under mu */

    /* grammars: the vocabulary's token trie (built with the first grammar
     * job) and one step's mask (scheduler thread) */
    gram_vocab *gv;
    uint8_t *mask;

    /* batch of one step */
    int32_t *b_tok, *b_pos, *b_seq, *b_slot;
    int8_t *b_logits;
    char *piece;
    size_t piece_cap;
    uint64_t n_admitted;
    int64_t eval_prompt; /* prompt tokens evaluated (scheduler thread; copied into kv by gauges) */
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

void sched_gen_clear(sched_gen *g)
{
    for (int32_t i = 0; i < g->n_stop; i++)
        free(g->stop[i]);
    free(g->bias_id);
    free(g->bias);
    gram_free(g->grammar);
    g->grammar = NULL;
    g->n_stop = 0;
    g->n_bias = 0;
    g->bias_id = NULL;
    g->bias = NULL;
}

int sched_job_new(sched_job **out, const sched *s, int32_t *prompt, int32_t n_prompt, const sched_gen *gen)
{
    *out = NULL;
    sched_gen g = *gen;
    sched_job *j = calloc(1, sizeof *j);
    if (!j) {
        free(prompt);
        sched_gen_clear(&g);
        return err_set(SOV_ENOMEM, "out of memory");
    }
    j->prompt = prompt;
    j->n_prompt = n_prompt;
    j->gen = g;
    j->refs = 1;
    atomic_init(&j->cancel, false);
    pthread_mutex_init(&j->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&j->cv, &ca);
    pthread_condattr_destroy(&ca);
    int32_t n_max = g.n_max > 0 ? g.n_max : 1;
    j->text = malloc((size_t)n_max * s->max_piece + 1);
    j->seq = malloc(sizeof *j->seq * ((size_t)n_prompt + (size_t)n_max + 1));
    if (j->seq) {
        memcpy(j->seq, prompt, sizeof *j->seq * (size_t)n_prompt);
        j->n_seq = n_prompt;
    }
    if (g.logprobs >= 0) {
        j->toks = malloc(sizeof *j->toks * (size_t)n_max);
        size_t nt = (size_t)n_max * (size_t)(g.logprobs > 0 ? g.logprobs : 1);
        j->top_id = malloc(sizeof *j->top_id * nt);
        j->top_lp = malloc(sizeof *j->top_lp * nt);
    }
    if (!j->text || !j->seq || (g.logprobs >= 0 && (!j->toks || !j->top_id || !j->top_lp))) {
        sched_job_unref(j);
        return err_set(SOV_ENOMEM, "out of memory for a generation of %d tokens", n_max);
    }
    *out = j;
    return 0;
}

void sched_job_unref(sched_job *j)
{
    if (!j)
        return;
    pthread_mutex_lock(&j->mu);
    int left = --j->refs;
    pthread_mutex_unlock(&j->mu);
    if (left > 0)
        return;
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv);
    free(j->prompt);
    sched_gen_clear(&j->gen);
    free(j->text);
    free(j->toks);
    free(j->top_id);
    free(j->top_lp);
    free(j->seq);
    sample_free(j->smp);
    gram_state_free(j->gst);
    free(j);
}

static void job_ref(sched_job *j)
{
    pthread_mutex_lock(&j->mu);
    j->refs++;
    pthread_mutex_unlock(&j->mu);
}

void sched_cancel(sched_job *j)
{
    atomic_store(&j->cancel, true);
}

bool sched_job_wait(sched_job *j, size_t seen, int32_t seen_tok, int timeout_ms, sched_view *v)
{
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += timeout_ms / 1000;
    dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&j->mu);
    while (j->committed <= seen && j->n_tok_committed <= seen_tok && j->finish == SCHED_RUNNING)
        if (pthread_cond_timedwait(&j->cv, &j->mu, &dl) == ETIMEDOUT)
            break;
    v->committed = j->committed;
    v->n_tok_committed = j->n_tok_committed;
    v->finish = j->finish;
    v->n_gen = j->n_gen;
    v->n_cached = j->n_cached;
    bool news = j->committed > seen || j->n_tok_committed > seen_tok || j->finish != SCHED_RUNNING;
    pthread_mutex_unlock(&j->mu);
    return news;
}

/* ---- committing text ---- */

/* Bytes at the end of t[0..n) that are an incomplete UTF-8 character. */
static size_t utf8_tail(const char *t, size_t n)
{
    for (size_t k = 1; k <= 3 && k <= n; k++) {
        unsigned char c = (unsigned char)t[n - k];
        if ((c & 0xc0) == 0x80)
            continue; /* continuation byte: look further back */
        size_t need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
        return need > k ? k : 0;
    }
    return 0;
}

/* Publishes what of j's text is decided (caller holds j->mu): all of it when
 * the job finished, else all but a suffix that starts some stop string and
 * an incomplete UTF-8 character. */
static void job_commit(sched_job *j)
{
    size_t c = j->len;
    if (j->finish == SCHED_RUNNING) {
        size_t hold = 0;
        for (int32_t i = 0; i < j->gen.n_stop; i++) {
            const char *st = j->gen.stop[i];
            size_t sl = strlen(st);
            for (size_t k = sl - 1 < j->len ? sl - 1 : j->len; k > hold; k--)
                if (!memcmp(j->text + j->len - k, st, k)) {
                    hold = k;
                    break;
                }
        }
        c = j->len - hold;
        c -= utf8_tail(j->text, c);
        if (c < j->committed)
            c = j->committed;
    }
    j->committed = c;
    int32_t nt = j->n_tok_committed;
    while (nt < j->n_tok && j->toks[nt].end <= c)
        nt++;
    j->n_tok_committed = nt;
}

/* Ends j with reason `finish` (caller holds j->mu). */
static void job_finish(sched_job *j, int finish)
{
    if (j->finish != SCHED_RUNNING)
        return;
    j->finish = finish;
    job_commit(j);
    pthread_cond_broadcast(&j->cv);
}

/* ---- scheduler ---- */

/* ---- KV blocks of a slot ---- */

/* Offers sl's full blocks not offered yet to the prefix tree (their tokens
 * are job->seq[0..32 k)). */
static void slot_publish(sched *s, slot *sl)
{
    int32_t full = sl->n_kv / KV_TILE;
    if (s->sp.no_share || full <= sl->n_pub)
        return;
    /* an error (a bug: blocks are fresh or came from the tree) only means
     * these blocks are not shared; it is not retried */
    (void)prefix_insert(s->pt, sl->job->seq, full * KV_TILE, sl->blk);
    sl->n_pub = full;
}

/* Gives back every block of sl (full ones stay cached in the tree) and
 * unmaps its tiles. */
static void slot_drop_blocks(sched *s, slot *sl, int32_t si)
{
    slot_publish(s, sl);
    for (int32_t t = 0; t < sl->n_blk; t++) {
        kvpage_unref(s->pg, sl->blk[t]);
        forward_map(s->fw, si, t, -1);
    }
    sl->n_blk = sl->n_kv = sl->n_pub = 0;
}

/* Ends slot sl's job after it finished (counts its tokens). */
static void slot_release(sched *s, slot *sl, int32_t si)
{
    sched_job *j = sl->job;
    slot_drop_blocks(s, sl, si);
    metrics_tokens(s->mt, j->n_prompt, j->n_gen, j->n_cached);
    sl->job = NULL;
    sched_job_unref(j);
    pthread_mutex_lock(&s->mu);
    s->n_running--;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* Takes slot sl's job off the engine to make room: its blocks go back and
 * it waits at the front of the queue with its tokens and sampler. */
static void slot_preempt(sched *s, slot *sl, int32_t si)
{
    sched_job *j = sl->job;
    slot_drop_blocks(s, sl, si);
    sl->job = NULL;
    sl->take = 0;
    j->n_preempt++;
    metrics_preempt(s->mt);
    pthread_mutex_lock(&s->mu);
    s->q_head = (s->q_head + s->q_cap - 1) % s->q_cap;
    s->q[s->q_head] = j;
    s->q_n++;
    s->n_running--;
    s->kv.preemptions++;
    pthread_mutex_unlock(&s->mu);
}

static void job_fail(sched_job *j, const char *msg)
{
    pthread_mutex_lock(&j->mu);
    snprintf(j->err, sizeof j->err, "%s", msg);
    job_finish(j, SCHED_ERROR);
    pthread_mutex_unlock(&j->mu);
}

static int32_t lcp(const int32_t *a, const int32_t *b, int32_t n)
{
    int32_t i = 0;
    while (i < n && a[i] == b[i])
        i++;
    return i;
}

/* Puts j into a free slot if the pool has room for its prompt: the prompt's
 * longest chain of cached full blocks (never its last token, whose logits
 * start generation) is mapped read-only, and only the rest is evaluated.
 * Called with s->mu held. Returns 1 admitted (or finished: cancelled,
 * failed), 0 no free slot or no room now, 2 deferred: a running sequence
 * is evaluating more of this prompt's full blocks than the tree holds yet,
 * so j waits for them instead of evaluating them a second time. */
static int admit(sched *s, sched_job *j)
{
    int32_t si = -1;
    int32_t active = 0;
    for (int32_t i = 0; i < s->sp.n_slots; i++) {
        if (!s->slots[i].job && si < 0)
            si = i;
        active += s->slots[i].job != NULL;
    }
    if (si < 0)
        return 0;
    if (atomic_load(&j->cancel)) {
        pthread_mutex_lock(&j->mu);
        job_finish(j, SCHED_CANCELLED);
        pthread_mutex_unlock(&j->mu);
        sched_job_unref(j);
        return 1;
    }
    slot *sl = &s->slots[si];
    const int32_t lim = (j->n_seq - 1) / KV_TILE; /* full blocks j may map */
    if (!s->sp.no_share && lim > 0) {
        int32_t have = prefix_peek(s->pt, j->seq, lim * KV_TILE, NULL);
        for (int32_t i = 0; i < s->sp.n_slots; i++) {
            const slot *r = &s->slots[i];
            if (!r->job || have >= lim)
                continue;
            int32_t n = j->n_seq < r->job->n_seq ? j->n_seq : r->job->n_seq;
            int32_t c = lcp(j->seq, r->job->seq, n) / KV_TILE;
            if (c > lim)
                c = lim;
            if (c > have && r->n_kv < c * KV_TILE)
                return 2;
        }
    }
    int32_t m = s->sp.no_share ? 0 : prefix_match(s->pt, j->seq, lim * KV_TILE, s->mbuf);
    int32_t need = (j->n_seq - 1) / KV_TILE + 1 - m;
    /* room for the rest of the prompt, and a block of growth for every
     * running sequence (else the newcomer is preempted at once). Every
     * cached block can be had: evicting a leaf frees its parent in turn,
     * and no running sequence holds a block without its whole prefix */
    kvpage_stats ps = kvpage_stat(s->pg);
    if (ps.free + ps.cached < need + active) {
        for (int32_t t = 0; t < m; t++)
            kvpage_unref(s->pg, s->mbuf[t]);
        return 0;
    }
    if (!j->smp) {
        int rc = sample_new(&j->smp, &j->gen.sp, s->n_vocab);
        if (!rc && j->gen.n_bias)
            rc = sample_set_bias(j->smp, j->gen.bias_id, j->gen.bias, j->gen.n_bias);
        if (!rc && j->gen.grammar) {
            if (!s->gv)
                rc = gram_vocab_new(&s->gv, s->vb);
            if (!rc && !s->mask && !(s->mask = malloc((size_t)s->n_vocab)))
                rc = err_set(SOV_ENOMEM, "out of memory");
            if (!rc)
                rc = gram_state_new(&j->gst, j->gen.grammar);
        }
        if (rc) {
            for (int32_t t = 0; t < m; t++)
                kvpage_unref(s->pg, s->mbuf[t]);
            job_fail(j, err_msg());
            sched_job_unref(j);
            return 1;
        }
        pthread_mutex_lock(&j->mu);
        j->n_cached = m * KV_TILE;
        pthread_mutex_unlock(&j->mu);
        s->kv.prompt_tokens += j->n_prompt;
        s->kv.prompt_cached += m * KV_TILE;
    }
    for (int32_t t = 0; t < m; t++) {
        sl->blk[t] = s->mbuf[t];
        forward_map(s->fw, si, t, s->mbuf[t]);
    }
    sl->n_blk = sl->n_pub = m;
    sl->n_kv = m * KV_TILE;
    sl->take = 0;
    sl->job = j;
    if (!j->order) /* the first admission's number stays: a resumed job is not "latest" again */
        j->order = ++s->n_admitted;
    s->n_running++;
    return 1;
}

/* Handles the token slot sl sampled: appends its text, checks stop strings
 * and limits, publishes. */
static void on_token(sched *s, slot *sl, int32_t tok, double t)
{
    sched_job *j = sl->job;
    const sched_gen *g = &j->gen;
    int32_t prev = j->seq[j->n_seq - 1];
    j->seq[j->n_seq++] = tok;
    bool eog = vocab_is_eog(s->vb, tok);

    float lp = 0;
    int32_t n_top = 0;
    int32_t top_id[SCHED_MAX_TOP];
    float top_lp[SCHED_MAX_TOP];
    if (g->logprobs >= 0) {
        int r = sample_logprobs(j->smp, tok, &lp, g->logprobs, top_id, top_lp);
        n_top = r > 0 ? r : 0;
    }
    int n = 0;
    if (!(eog && !g->ignore_eos)) {
        n = vocab_piece(s->vb, prev, tok, s->piece, s->piece_cap);
        if (n < 0 || (size_t)n > s->piece_cap)
            n = 0; /* cannot happen: piece_cap >= max_piece */
    }

    pthread_mutex_lock(&j->mu);
    if (j->n_gen == 0) {
        j->t_first = t;
        metrics_ttft(s->mt, t - j->t_submit);
    } else {
        metrics_itl(s->mt, t - j->t_last);
    }
    j->t_last = t;
    j->n_gen++;
    if (eog && !g->ignore_eos) {
        job_finish(j, SCHED_STOP);
        pthread_mutex_unlock(&j->mu);
        return;
    }
    size_t old = j->len;
    memcpy(j->text + j->len, s->piece, (size_t)n);
    j->len += (size_t)n;
    if (g->logprobs >= 0) {
        sched_tok *r = &j->toks[j->n_tok];
        r->id = tok;
        r->end = j->len;
        r->lp = lp;
        r->top_off = j->n_tok * (g->logprobs > 0 ? g->logprobs : 1);
        memcpy(j->top_id + r->top_off, top_id, sizeof *top_id * (size_t)n_top);
        memcpy(j->top_lp + r->top_off, top_lp, sizeof *top_lp * (size_t)n_top);
        j->n_tok++;
    }
    /* the earliest stop string that the new bytes complete */
    size_t cut = SIZE_MAX;
    for (int32_t i = 0; i < g->n_stop; i++) {
        size_t sl_len = strlen(g->stop[i]);
        size_t from = old >= sl_len - 1 ? old - (sl_len - 1) : 0;
        if (j->len - from < sl_len)
            continue;
        const char *hit = memmem(j->text + from, j->len - from, g->stop[i], sl_len);
        if (hit && (size_t)(hit - j->text) < cut)
            cut = (size_t)(hit - j->text);
    }
    if (cut != SIZE_MAX) {
        j->len = cut;
        /* tokens that start at or after the stop are dropped; one that
         * straddles it keeps the part before */
        while (j->n_tok > 0 && (j->n_tok == 1 ? 0 : j->toks[j->n_tok - 2].end) >= cut)
            j->n_tok--;
        if (j->n_tok > 0 && j->toks[j->n_tok - 1].end > cut)
            j->toks[j->n_tok - 1].end = cut;
        job_finish(j, SCHED_STOP);
    } else if (j->n_gen >= g->n_max || j->n_seq > s->sp.n_ctx) {
        job_finish(j, SCHED_LENGTH);
    } else {
        job_commit(j);
        if (j->per_token)
            pthread_cond_broadcast(&j->cv);
    }
    pthread_mutex_unlock(&j->mu);
}

/* The running slot admitted last (-1: none). */
static int32_t latest(sched *s)
{
    int32_t v = -1;
    for (int32_t i = 0; i < s->sp.n_slots; i++)
        if (s->slots[i].job && (v < 0 || s->slots[i].job->order > s->slots[v].job->order))
            v = i;
    return v;
}

/* Maps blocks for the tiles slot si writes this step, preempting the latest
 * admitted sequences while the pool has none to give (si itself, if it is
 * the latest: then its plan is gone). */
static void slot_grow(sched *s, int32_t si)
{
    slot *sl = &s->slots[si];
    int32_t last_tile = (sl->n_kv + sl->take - 1) / KV_TILE;
    while (sl->n_blk <= last_tile) {
        int32_t b = kvpage_alloc(s->pg);
        if (b < 0) {
            int32_t v = latest(s);
            slot_preempt(s, &s->slots[v], v);
            if (v == si)
                return;
            continue;
        }
        sl->blk[sl->n_blk] = b;
        forward_map(s->fw, si, sl->n_blk, b);
        sl->n_blk++;
    }
}

/* One engine step over every slot with work. */
static void step(sched *s)
{
    const int32_t ns = s->sp.n_slots;
    /* cancelled jobs leave first */
    for (int32_t i = 0; i < ns; i++) {
        slot *sl = &s->slots[i];
        if (sl->job && atomic_load(&sl->job->cancel)) {
            pthread_mutex_lock(&sl->job->mu);
            job_finish(sl->job, SCHED_CANCELLED);
            pthread_mutex_unlock(&sl->job->mu);
            slot_release(s, sl, i);
        }
    }
    /* the plan: the next token of every generating slot, then prompt
     * tokens, oldest admission first, into what is left of the budget */
    int32_t budget = s->sp.n_batch;
    for (int32_t i = 0; i < ns; i++) {
        slot *sl = &s->slots[i];
        sl->take = 0;
        if (sl->job && sl->job->n_seq - sl->n_kv == 1) {
            sl->take = 1;
            budget--;
        }
    }
    for (;;) {
        slot *sl = NULL;
        for (int32_t i = 0; i < ns; i++) {
            slot *c = &s->slots[i];
            if (c->job && !c->take && c->job->n_seq - c->n_kv > 1 && (!sl || c->job->order < sl->job->order))
                sl = c;
        }
        if (!sl || budget <= 0)
            break;
        int32_t want = sl->job->n_seq - sl->n_kv;
        sl->take = want < budget ? want : budget;
        budget -= sl->take;
    }
    /* blocks for what the plan writes, oldest first (a preempted slot's
     * take is gone with it) */
    for (;;) {
        int32_t si = -1;
        for (int32_t i = 0; i < ns; i++) {
            slot *c = &s->slots[i];
            int32_t end = c->n_kv + c->take;
            if (c->job && c->take && (end - 1) / KV_TILE >= c->n_blk &&
                (si < 0 || c->job->order < s->slots[si].job->order))
                si = i;
        }
        if (si < 0)
            break;
        slot_grow(s, si);
    }
    int32_t n = 0;
    for (int32_t i = 0; i < ns; i++) {
        slot *sl = &s->slots[i];
        if (!sl->job || !sl->take)
            continue;
        for (int32_t k = 0; k < sl->take; k++) {
            s->b_tok[n] = sl->job->seq[sl->n_kv];
            s->b_pos[n] = sl->n_kv;
            s->b_seq[n] = i;
            s->b_logits[n] = sl->n_kv == sl->job->n_seq - 1;
            s->b_slot[n] = i;
            sl->n_kv++;
            n++;
        }
        /* prompt work: a fresh prompt, or a preempted job's tokens again */
        if (sl->take > 1 || sl->job->n_gen == 0)
            s->eval_prompt += sl->take;
    }
    if (n == 0)
        return;
    forward_batch b = {.n = n, .token = s->b_tok, .pos = s->b_pos, .seq = s->b_seq, .logits = s->b_logits};
    int rc = forward_decode(s->fw, &b);
    double t = now_s();
    if (rc) {
        char msg[256];
        snprintf(msg, sizeof msg, "engine error: %s", err_msg());
        fprintf(stderr, "sov serve: %s\n", msg);
        for (int32_t i = 0; i < ns; i++)
            if (s->slots[i].job) {
                job_fail(s->slots[i].job, msg);
                s->slots[i].n_kv = 0; /* its KV is in doubt: nothing of it is published */
                s->slots[i].n_pub = s->slots[i].n_blk;
                slot_release(s, &s->slots[i], i);
            }
        return;
    }
    int32_t k = 0;
    for (int32_t i = 0; i < n; i++) {
        if (!s->b_logits[i])
            continue;
        slot *sl = &s->slots[s->b_slot[i]];
        const float *lg = forward_logits(s->fw, k++);
        sched_job *j = sl->job;
        int32_t tok;
        if (j->gst) {
            /* only the tokens the grammar allows; where it cannot go on,
             * the generation has ended */
            if (gram_done(j->gst)) {
                pthread_mutex_lock(&j->mu);
                job_finish(j, SCHED_STOP);
                pthread_mutex_unlock(&j->mu);
                slot_release(s, sl, s->b_slot[i]);
                continue;
            }
            int32_t prev = j->seq[j->n_seq - 1];
            double t0 = now_s();
            int na = gram_mask(j->gst, s->gv, prev, s->mask);
            double dt = now_s() - t0;
            pthread_mutex_lock(&s->mu);
            s->gs.masks++;
            s->gs.seconds += dt;
            pthread_mutex_unlock(&s->mu);
            metrics_grammar_mask(s->mt, dt);
            if (na <= 0) {
                job_fail(j, na == 0 ? "the grammar allows no token here (the model's vocabulary cannot continue it)"
                                    : "out of memory computing the grammar mask");
                slot_release(s, sl, s->b_slot[i]);
                continue;
            }
            tok = sample_next_masked(j->smp, lg, s->mask, j->seq, j->n_seq);
            if (gram_accept_token(j->gst, s->gv, prev, tok)) {
                job_fail(j, "the grammar refused the token its mask allowed (internal error)");
                slot_release(s, sl, s->b_slot[i]);
                continue;
            }
        } else {
            tok = sample_next(j->smp, lg, j->seq, j->n_seq);
        }
        on_token(s, sl, tok, t);
        if (j->finish == SCHED_RUNNING && j->gst && gram_done(j->gst)) {
            pthread_mutex_lock(&j->mu);
            job_finish(j, SCHED_STOP);
            pthread_mutex_unlock(&j->mu);
        }
        if (j->finish != SCHED_RUNNING)
            slot_release(s, sl, s->b_slot[i]);
    }
    for (int32_t i = 0; i < ns; i++)
        if (s->slots[i].job)
            slot_publish(s, &s->slots[i]);
}

static void gauges(sched *s)
{
    int64_t active = 0, kv = 0;
    for (int32_t i = 0; i < s->sp.n_slots; i++) {
        active += s->slots[i].job != NULL;
        kv += s->slots[i].n_kv;
    }
    kvpage_stats ps = kvpage_stat(s->pg);
    pthread_mutex_lock(&s->mu);
    int64_t q = s->q_n;
    s->kv.blocks_total = ps.total;
    s->kv.blocks_used = ps.used;
    s->kv.blocks_cached = ps.cached;
    s->kv.evaluated_prompt = s->eval_prompt;
    pthread_mutex_unlock(&s->mu);
    metrics_gauges(s->mt, q, active, s->sp.n_slots, kv, (int64_t)ps.total * KV_TILE);
    metrics_kv_blocks(s->mt, ps.total, ps.used, ps.cached);
    metrics_prompt_evaluated(s->mt, s->eval_prompt);
}

/* Drops queued jobs whose clients left, so they hold no queue places while
 * every slot is busy (caller holds s->mu). */
static void purge_queue(sched *s)
{
    int32_t kept = 0;
    for (int32_t k = 0; k < s->q_n; k++) {
        sched_job *j = s->q[(s->q_head + k) % s->q_cap];
        if (atomic_load(&j->cancel)) {
            pthread_mutex_lock(&j->mu);
            job_finish(j, SCHED_CANCELLED);
            pthread_mutex_unlock(&j->mu);
            sched_job_unref(j);
        } else {
            s->q[(s->q_head + kept++) % s->q_cap] = j;
        }
    }
    s->q_n = kept;
}

static void *sched_main(void *arg)
{
    sched *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        if (s->stop)
            break;
        purge_queue(s);
        /* admission in queue order; a deferred job keeps its place while
         * those behind it may go */
        for (int32_t k = 0; k < s->q_n;) {
            int r = admit(s, s->q[(s->q_head + k) % s->q_cap]);
            if (r == 0)
                break;
            if (r == 2) {
                k++;
                continue;
            }
            for (int32_t i = k; i > 0; i--)
                s->q[(s->q_head + i) % s->q_cap] = s->q[(s->q_head + i - 1) % s->q_cap];
            s->q_head = (s->q_head + 1) % s->q_cap;
            s->q_n--;
        }
        bool any = false;
        for (int32_t i = 0; i < s->sp.n_slots && !any; i++)
            any = s->slots[i].job != NULL;
        if (!any) {
            pthread_mutex_unlock(&s->mu);
            gauges(s);
            pthread_mutex_lock(&s->mu);
            if (!s->stop && s->q_n == 0) {
                pthread_cond_wait(&s->cv, &s->mu);
            } else if (!s->stop) { /* queued but nothing admissible: not expected; do not spin */
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_nsec += 10000000L;
                if (ts.tv_nsec >= 1000000000L) {
                    ts.tv_sec++;
                    ts.tv_nsec -= 1000000000L;
                }
                pthread_cond_timedwait(&s->cv, &s->mu, &ts);
            }
            continue;
        }
        pthread_mutex_unlock(&s->mu);
        step(s);
        gauges(s);
        pthread_mutex_lock(&s->mu);
    }
    /* stopping: everything still queued or running is cancelled */
    while (s->q_n > 0) {
        sched_job *j = s->q[s->q_head];
        s->q_head = (s->q_head + 1) % s->q_cap;
        s->q_n--;
        pthread_mutex_lock(&j->mu);
        job_finish(j, SCHED_CANCELLED);
        pthread_mutex_unlock(&j->mu);
        sched_job_unref(j);
    }
    pthread_mutex_unlock(&s->mu);
    for (int32_t i = 0; i < s->sp.n_slots; i++)
        if (s->slots[i].job) {
            pthread_mutex_lock(&s->slots[i].job->mu);
            job_finish(s->slots[i].job, SCHED_CANCELLED);
            pthread_mutex_unlock(&s->slots[i].job->mu);
            slot_release(s, &s->slots[i], i);
        }
    return NULL;
}

int sched_new(sched **out, const model *m, pool *p, const sched_params *sp, metrics *mt)
{
    *out = NULL;
    if (!m->vocab)
        return err_set(SOV_EINVAL, "the model has no tokenizer");
    if (sp->n_slots < 1 || sp->n_slots > 256 || sp->n_ctx < 2 || sp->queue_max < 1 || sp->n_batch < 1)
        return err_set(SOV_EINVAL, "scheduler: slots %d, context %d, queue %d, batch %d", sp->n_slots, sp->n_ctx,
                       sp->queue_max, sp->n_batch);
    sched *s = calloc(1, sizeof *s);
    if (!s)
        return err_set(SOV_ENOMEM, "out of memory");
    int rc;
    s->m = m;
    s->vb = m->vocab;
    s->pl = p;
    s->mt = mt;
    s->sp = *sp;
    /* every generating slot gets its token each step, and prompts still move */
    if (s->sp.n_batch < s->sp.n_slots + 16)
        s->sp.n_batch = s->sp.n_slots + 16;
    s->n_vocab = vocab_n_tokens(s->vb);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);

    s->piece_cap = 256;
    s->piece = malloc(s->piece_cap);
    if (!s->piece)
        goto nomem;
    for (int32_t id = 0; id < s->n_vocab; id++) {
        int n = vocab_piece(s->vb, 0, id, s->piece, s->piece_cap);
        int n2 = vocab_piece(s->vb, -1, id, s->piece, s->piece_cap);
        if (n2 > n)
            n = n2;
        if (n > 0 && (size_t)n > s->max_piece)
            s->max_piece = (size_t)n;
    }
    if (s->max_piece < 1)
        s->max_piece = 1;
    if (s->max_piece > s->piece_cap) {
        free(s->piece);
        s->piece_cap = s->max_piece;
        if (!(s->piece = malloc(s->piece_cap)))
            goto nomem;
    }

    s->n_tile = (s->sp.n_ctx + KV_TILE - 1) / KV_TILE;
    int64_t kv_tok = s->sp.kv_tokens > 0 ? s->sp.kv_tokens : (int64_t)s->sp.n_slots * s->n_tile * KV_TILE;
    if (kv_tok < s->sp.n_ctx)
        kv_tok = s->sp.n_ctx; /* one sequence must be able to reach its whole context */
    int64_t n_blocks = (kv_tok + KV_TILE - 1) / KV_TILE;
    if (n_blocks > (1 << 30)) {
        rc = err_set(SOV_EINVAL, "a KV pool of %lld positions is too large", (long long)kv_tok);
        goto fail;
    }
    if ((rc = forward_new_kv(&s->fw, m, s->sp.n_ctx, s->sp.n_slots, (int32_t)n_blocks, s->sp.kv_type, p)) ||
        (rc = forward_set_batch(s->fw, s->sp.n_batch)) || (rc = kvpage_new(&s->pg, (int32_t)n_blocks)) ||
        (rc = prefix_new(&s->pt, s->pg, KV_TILE)))
        goto fail;
    metrics_kv_block_bytes(mt, (int64_t)kv_bytes_per_block(&m->hp, s->sp.kv_type));
    s->slots = calloc((size_t)s->sp.n_slots, sizeof *s->slots);
    s->q_cap = s->sp.queue_max + s->sp.n_slots; /* preempted jobs come back beside the queued ones */
    s->q = calloc((size_t)s->q_cap, sizeof *s->q);
    s->mbuf = malloc(sizeof(int32_t) * (size_t)s->n_tile);
    size_t nb = (size_t)s->sp.n_batch;
    s->b_tok = malloc(sizeof(int32_t) * nb);
    s->b_pos = malloc(sizeof(int32_t) * nb);
    s->b_seq = malloc(sizeof(int32_t) * nb);
    s->b_slot = malloc(sizeof(int32_t) * nb);
    s->b_logits = malloc(nb);
    if (!s->slots || !s->q || !s->mbuf || !s->b_tok || !s->b_pos || !s->b_seq || !s->b_slot || !s->b_logits)
        goto nomem;
    for (int32_t i = 0; i < s->sp.n_slots; i++)
        if (!(s->slots[i].blk = malloc(sizeof(int32_t) * (size_t)s->n_tile)))
            goto nomem;
    s->kv.blocks_total = (int32_t)n_blocks;
    if (pthread_create(&s->th, NULL, sched_main, s)) {
        rc = err_set(SOV_EIO, "cannot start the scheduler thread");
        goto fail;
    }
    s->th_started = true;
    *out = s;
    return 0;
nomem:
    rc = err_set(SOV_ENOMEM, "out of memory");
fail:
    sched_free(s);
    return rc;
}

void sched_free(sched *s)
{
    if (!s)
        return;
    if (s->th_started) {
        pthread_mutex_lock(&s->mu);
        s->stop = true;
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->th, NULL);
    }
    if (s->slots)
        for (int32_t i = 0; i < s->sp.n_slots; i++)
            free(s->slots[i].blk);
    free(s->slots);
    free(s->q);
    free(s->mbuf);
    prefix_free(s->pt);
    kvpage_free(s->pg);
    free(s->b_tok);
    free(s->b_pos);
    free(s->b_seq);
    free(s->b_slot);
    free(s->b_logits);
    free(s->piece);
    gram_vocab_free(s->gv);
    free(s->mask);
    forward_free(s->fw);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
}

int sched_submit(sched *s, sched_job *j)
{
    if (j->n_prompt < 1 || j->gen.n_max < 1)
        return err_set(SOV_EINVAL, "empty prompt or no tokens to generate");
    if ((int64_t)j->n_prompt + j->gen.n_max > s->sp.n_ctx)
        return err_set(SOV_ERANGE,
                       "this model's context is %d tokens per request; the prompt has %d tokens and %d more were "
                       "asked for (max_tokens): %lld in all",
                       s->sp.n_ctx, j->n_prompt, j->gen.n_max, (long long)j->n_prompt + j->gen.n_max);
    pthread_mutex_lock(&s->mu);
    if (s->stop || s->draining) {
        pthread_mutex_unlock(&s->mu);
        return err_set(SOV_EBUSY, "the server is shutting down");
    }
    if (s->q_n >= s->sp.queue_max) {
        pthread_mutex_unlock(&s->mu);
        return err_set(SOV_EBUSY, "the request queue is full (%d waiting); retry later", s->sp.queue_max);
    }
    job_ref(j);
    j->t_submit = now_s();
    s->q[(s->q_head + s->q_n) % s->q_cap] = j;
    s->q_n++;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

void sched_drain(sched *s)
{
    pthread_mutex_lock(&s->mu);
    s->draining = true;
    pthread_mutex_unlock(&s->mu);
}

int sched_busy(sched *s)
{
    pthread_mutex_lock(&s->mu);
    int n = s->q_n + s->n_running;
    pthread_mutex_unlock(&s->mu);
    return n;
}

sched_kv_stats sched_kv_stat(sched *s)
{
    pthread_mutex_lock(&s->mu);
    sched_kv_stats k = s->kv;
    pthread_mutex_unlock(&s->mu);
    return k;
}

sched_gram_stats sched_gram_stat(sched *s)
{
    pthread_mutex_lock(&s->mu);
    sched_gram_stats g = s->gs;
    pthread_mutex_unlock(&s->mu);
    return g;
}

int32_t sched_n_ctx(const sched *s) { return s->sp.n_ctx; }
int32_t sched_n_slots(const sched *s) { return s->sp.n_slots; }
const char *sched_kernels(const sched *s) { return forward_kernels(s->fw); }
