#include "backend_local.h"

#include "../base/err.h"
#include "../base/sys.h"
#include "../base/pool.h"
#include "../engine/forward.h"
#include "../engine/kv.h"
#include "../engine/model.h"
#include "../server/chat.h"
#include "../server/openai.h"
#include "../server/sched.h"
#include "../tok/vocab.h"

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { LB_UNLOADED = 0, LB_LOADING, LB_READY };

#define LOAD_WAIT_S 30.0 /* longest wait for busy models to make room */

typedef struct local_be local_be;

/* Models load on the group's loader thread, started with the group: the
 * threads a load starts (the scheduler's, the compute pool's) inherit its
 * scheduling priority, and a request's thread may run at a lower one (sov
 * serve's connection threads are niced to 19); a model loaded there would
 * compute at idle priority for as long as it stays loaded. */
struct local_group {
    pthread_mutex_t mu;
    pthread_cond_t cv;   /* state, active, used or a load's outcome changed */
    pthread_cond_t load_cv; /* a load was asked for, or stop */
    pthread_t loader;
    bool stop;
    int64_t budget, used;
    local_be **mem;
    int n_mem;
};

struct local_be {
    backend base;        /* first: a backend * is a local_be * */
    local_group *g;
    cfg_backend c;       /* copy; c.model and c.chat_template owned */
    sample_params sp;
    metrics *mt;
    int64_t need;        /* estimated bytes when loaded */
    int32_t per;         /* positions of one slot */
    int64_t kv_tok;      /* KV pool positions */
    const char *kv_why;
    /* guarded by g->mu */
    int state;
    int active;          /* requests open (the model stays loaded while > 0) */
    bool draining;
    double last_used;
    double t_kvlog;             /* when the KV figures were last logged */
    sched_kv_stats kv_last;     /* ... and what they were */
    double ewma_s;       /* mean time a request holds its slot, for the wait estimate */
    int64_t loads, unloads;
    bool load_want;      /* a load asked of the loader thread (state is LB_LOADING) */
    uint64_t load_gen, load_done; /* loads asked for / finished (by number) */
    int load_rc;         /* the last finished load's result ... */
    char load_msg[200];  /* ... and its error */
    /* valid while state == LB_READY */
    model *m;
    pool *pl;
    sched *sc;
    int tmpl;
    char fp[64];
    char eos_text[128];
};

/* A streamed answer (bk_resp.impl). */
typedef struct lstream {
    local_be *lb;
    sched_job *j;
    oai_req r;
    oai_meta meta;
    size_t sent;
    int32_t sent_tok;
    bool role_sent, ended;
    oai_tstream ts;      /* with tools: what of the content and calls was sent */
    char *out;           /* SSE bytes not handed out yet */
    size_t out_len, out_off;
    double t0;
} lstream;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static char *dup_str(const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s);
    char *d = malloc(n + 1);
    if (d)
        memcpy(d, s, n + 1);
    return d;
}

/* ---- group ---- */

static void *loader_main(void *arg);

int local_group_new(local_group **out, int64_t budget)
{
    *out = NULL;
    local_group *g = calloc(1, sizeof *g);
    if (!g)
        return err_set(SOV_ENOMEM, "out of memory");
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    pthread_cond_init(&g->load_cv, NULL);
    g->budget = budget > 0 ? budget : INT64_MAX;
    if (pthread_create(&g->loader, NULL, loader_main, g)) {
        pthread_mutex_destroy(&g->mu);
        pthread_cond_destroy(&g->cv);
        pthread_cond_destroy(&g->load_cv);
        free(g);
        return err_set(SOV_EIO, "cannot start the model loader thread");
    }
    *out = g;
    return 0;
}

void local_group_free(local_group *g)
{
    if (!g)
        return;
    pthread_mutex_lock(&g->mu);
    g->stop = true;
    pthread_cond_signal(&g->load_cv);
    pthread_mutex_unlock(&g->mu);
    pthread_join(g->loader, NULL);
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->cv);
    pthread_cond_destroy(&g->load_cv);
    free(g->mem);
    free(g);
}

int64_t local_group_used(local_group *g)
{
    pthread_mutex_lock(&g->mu);
    int64_t u = g->used;
    pthread_mutex_unlock(&g->mu);
    return u;
}

int64_t local_group_budget(const local_group *g) { return g->budget; }

/* ---- load / unload ---- */

static void gib(char *buf, size_t cap, int64_t b)
{
    if (b >= (1LL << 30))
        snprintf(buf, cap, "%.2f GiB", (double)b / 1073741824.0);
    else
        snprintf(buf, cap, "%.1f MiB", (double)b / 1048576.0);
}

/* Frees the loaded model (g->mu held; no request open). */
static void unload_locked(local_be *lb, const char *why)
{
    sched_free(lb->sc);
    pool_free(lb->pl);
    model_free(lb->m);
    lb->sc = NULL;
    lb->pl = NULL;
    lb->m = NULL;
    lb->state = LB_UNLOADED;
    lb->g->used -= lb->need;
    lb->unloads++;
    char nb[32];
    gib(nb, sizeof nb, lb->need);
    fprintf(stderr, "sov serve: [%s] unloaded (%s): %s freed\n", lb->base.name, why, nb);
    pthread_cond_broadcast(&lb->g->cv);
}

/* Loads the model (no lock held; state is LB_LOADING, so nobody else
 * touches m, pl, sc). */
static int load(local_be *lb)
{
    double t0 = now_s();
    int rc;
    if ((rc = model_load_mode(&lb->m, lb->c.model, lb->c.mmap)))
        goto fail;
    if (!lb->m->vocab) {
        rc = err_set(SOV_EFORMAT, "%s has no tokenizer metadata", lb->c.model);
        goto fail;
    }
    const char *tmpl_src = "none";
    if (lb->c.chat_template) {
        lb->tmpl = chat_from_name(lb->c.chat_template);
        tmpl_src = "chat_template";
    } else {
        gguf_str js;
        char *jinja = NULL;
        if (gguf_get_str(lb->m->g, "tokenizer.chat_template", &js) == 0 && (jinja = malloc(js.len + 1))) {
            memcpy(jinja, js.ptr, js.len);
            jinja[js.len] = 0;
        }
        lb->tmpl = chat_detect(jinja);
        free(jinja);
        tmpl_src = jinja ? (lb->tmpl != CHAT_NONE ? "tokenizer.chat_template" : "unrecognized tokenizer.chat_template")
                         : "no tokenizer.chat_template";
    }
    const vocab *vb = lb->m->vocab;
    int32_t eos = vocab_eos(vb);
    size_t el = 0;
    const char *et = eos >= 0 ? vocab_token_text(vb, eos, &el) : NULL;
    snprintf(lb->eos_text, sizeof lb->eos_text, "</s>");
    if (et && el < sizeof lb->eos_text) {
        memcpy(lb->eos_text, et, el);
        lb->eos_text[el] = 0;
    }
    int threads = lb->c.threads > 0 ? (int)lb->c.threads : pool_cpu_count();
    if ((rc = pool_new(&lb->pl, threads)))
        goto fail;
    sched_params sp = {.n_slots = (int32_t)lb->c.n_slots, .n_ctx = lb->per, .n_batch = (int32_t)lb->c.n_batch,
                       .queue_max = (int32_t)lb->c.queue,
                       .kv_tokens = lb->kv_tok > INT32_MAX ? INT32_MAX : (int32_t)lb->kv_tok,
                       .no_share = lb->c.no_prefix_cache, .kv_type = lb->c.kv_type};
    if ((rc = sched_new(&lb->sc, lb->m, lb->pl, &sp, lb->mt)))
        goto fail;
    snprintf(lb->fp, sizeof lb->fp, "sov-%s-%s-kv%s", sched_kernels(lb->sc), lb->c.mmap ? "mmap" : "mem",
             kv_type_name(lb->c.kv_type));
    sched_kv_stats ks = sched_kv_stat(lb->sc);
    lb->kv_last = ks; /* a new scheduler counts from 0 */
    lb->t_kvlog = now_s();
    uint64_t per_pos = kv_bytes_per_token(&lb->m->hp, lb->c.kv_type);
    fprintf(stderr, "sov serve: [%s] KV pool %d blocks x 32 = %lld positions, %.1f MiB %s (%s), prefix cache %s\n",
            lb->base.name, ks.blocks_total, (long long)ks.blocks_total * 32,
            ks.blocks_total * 32.0 * (double)per_pos / 1048576.0, kv_type_name(lb->c.kv_type), lb->kv_why,
            lb->c.no_prefix_cache ? "off" : "on");
    char nb[32];
    gib(nb, sizeof nb, lb->need);
    fprintf(stderr,
            "sov serve: [%s] loaded %s in %.0f ms (%s): %d slots, up to %d positions each, %d threads, kernels %s, "
            "chat template %s (%s)\n",
            lb->base.name, lb->c.model, (now_s() - t0) * 1e3, nb, sp.n_slots, lb->per, pool_size(lb->pl),
            sched_kernels(lb->sc), chat_name(lb->tmpl), tmpl_src);
    return 0;
fail:
    sched_free(lb->sc);
    pool_free(lb->pl);
    model_free(lb->m);
    lb->sc = NULL;
    lb->pl = NULL;
    lb->m = NULL;
    return rc;
}

/* The loader thread: runs the loads acquire asks for, one at a time. A
 * load that worked counts one open request for the one that asked (so that
 * nothing unloads the model before that request has it). */
static void *loader_main(void *arg)
{
    local_group *g = arg;
    pthread_mutex_lock(&g->mu);
    for (;;) {
        local_be *lb = NULL;
        for (int i = 0; i < g->n_mem && !lb; i++)
            if (g->mem[i]->load_want)
                lb = g->mem[i];
        if (!lb) {
            if (g->stop)
                break;
            pthread_cond_wait(&g->load_cv, &g->mu);
            continue;
        }
        lb->load_want = false;
        uint64_t gen = lb->load_gen;
        pthread_mutex_unlock(&g->mu);
        int rc = load(lb);
        char msg[sizeof lb->load_msg];
        snprintf(msg, sizeof msg, "%s", rc ? err_msg() : "");
        pthread_mutex_lock(&g->mu);
        if (rc) {
            lb->state = LB_UNLOADED;
            g->used -= lb->need;
            fprintf(stderr, "sov serve: [%s] cannot load: %s\n", lb->base.name, msg);
        } else {
            lb->state = LB_READY;
            lb->loads++;
            lb->active++; /* the asking request's */
            lb->last_used = now_s();
        }
        lb->load_rc = rc;
        memcpy(lb->load_msg, msg, sizeof msg);
        lb->load_done = gen;
        pthread_cond_broadcast(&g->cv);
    }
    pthread_mutex_unlock(&g->mu);
    return NULL;
}

/* Makes lb's model loaded and counts one open request on it; on failure
 * fills out (a 503) and returns -1. client_fd: give up when the client
 * leaves (-1: never). */
static int acquire(local_be *lb, int client_fd, bk_resp *out)
{
    local_group *g = lb->g;
    double t0 = now_s();
    char nb[32], bb[32];
    pthread_mutex_lock(&g->mu);
    for (;;) {
        if (lb->draining) {
            pthread_mutex_unlock(&g->mu);
            return bk_failf(out, BK_FAIL_UNAVAILABLE, 503, "shutting_down", "the server is shutting down");
        }
        if (lb->state == LB_READY) {
            lb->active++;
            lb->last_used = now_s();
            pthread_mutex_unlock(&g->mu);
            return 0;
        }
        bool wait = lb->state == LB_LOADING;
        if (!wait) {
            if (lb->need > g->budget) {
                pthread_mutex_unlock(&g->mu);
                gib(nb, sizeof nb, lb->need);
                gib(bb, sizeof bb, g->budget);
                return bk_failf(out, BK_FAIL_UNAVAILABLE, 503, "model_too_large",
                                "the local model '%s' needs %s, more than the memory budget of all local models (%s)",
                                lb->base.name, nb, bb);
            }
            /* room: unload idle models, least recently used first */
            while (g->used + lb->need > g->budget) {
                local_be *v = NULL;
                for (int i = 0; i < g->n_mem; i++) {
                    local_be *o = g->mem[i];
                    if (o != lb && o->state == LB_READY && o->active == 0 && (!v || o->last_used < v->last_used))
                        v = o;
                }
                if (!v)
                    break;
                unload_locked(v, "room for another model");
            }
            if (g->used + lb->need <= g->budget) {
                /* on the loader thread (see struct local_group), waiting
                 * for it whatever the client does: it counts this request
                 * open when the load works */
                lb->state = LB_LOADING;
                g->used += lb->need;
                uint64_t gen = ++lb->load_gen;
                lb->load_want = true;
                pthread_cond_signal(&g->load_cv);
                while (lb->load_done < gen)
                    pthread_cond_wait(&g->cv, &g->mu);
                if (lb->load_rc) {
                    char msg[sizeof lb->load_msg];
                    memcpy(msg, lb->load_msg, sizeof msg);
                    pthread_mutex_unlock(&g->mu);
                    return bk_failf(out, BK_FAIL_UNAVAILABLE, 503, "model_unavailable",
                                    "the local model '%s' cannot be loaded: %s", lb->base.name, msg);
                }
                pthread_mutex_unlock(&g->mu);
                return 0;
            }
            wait = true; /* the others are busy: wait for one to finish */
            if (now_s() - t0 > LOAD_WAIT_S) {
                pthread_mutex_unlock(&g->mu);
                gib(nb, sizeof nb, lb->need);
                gib(bb, sizeof bb, g->budget);
                return bk_failf(out, BK_FAIL_UNAVAILABLE, 503, "model_unavailable",
                                "the local model '%s' (%s) does not fit the memory budget (%s) next to the models "
                                "busy now; retry later",
                                lb->base.name, nb, bb);
            }
        }
        if (wait) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 200 * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&g->cv, &g->mu, &ts);
            if (sys_peer_gone(client_fd)) {
                pthread_mutex_unlock(&g->mu);
                return bk_failf(out, BK_FAIL_CLIENT, 499, NULL, "the client disconnected");
            }
        }
    }
}

/* Ends one open request (any thread). held_s: how long it held a slot. */
static void release(local_be *lb, double held_s)
{
    local_group *g = lb->g;
    pthread_mutex_lock(&g->mu);
    lb->active--;
    lb->last_used = now_s();
    if (held_s > 0)
        lb->ewma_s = lb->ewma_s > 0 ? 0.8 * lb->ewma_s + 0.2 * held_s : held_s;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

/* ---- requests ---- */

static void err_to_resp(bk_resp *out, const oai_err *e, int fail)
{
    free(out->body);
    out->body = oai_err_json(e);
    out->len = out->body ? strlen(out->body) : 0;
    out->status = e->status;
    out->fail = fail;
    out->ctype = "application/json";
    snprintf(out->err, sizeof out->err, "%.255s", e->msg);
    if (e->status == 429 || e->status == 503)
        out->retry_after = 1;
}

/* Appends s (malloc'd; NULL = out of memory) to st's pending output. */
static bool out_add(lstream *st, char *s)
{
    if (!s)
        return false;
    size_t n = strlen(s);
    char *nb = realloc(st->out, st->out_len + n + 1);
    if (!nb) {
        free(s);
        return false;
    }
    memcpy(nb + st->out_len, s, n + 1);
    st->out = nb;
    st->out_len += n;
    free(s);
    return true;
}

/* The next SSE events of st into st->out, waiting at most timeout_ms.
 * Returns 1 (events added), 0 (nothing yet), -1 (out of memory). */
static int stream_fill(lstream *st, int timeout_ms)
{
    if (st->meta.kind == OAI_CHAT && !st->role_sent) {
        st->role_sent = true;
        return out_add(st, oai_chunk(&st->meta, &st->r, st->j, 0, 0, 0, 0, true, SCHED_RUNNING)) ? 1 : -1;
    }
    sched_view v;
    if (!sched_job_wait(st->j, st->sent, st->sent_tok, timeout_ms, &v))
        return 0;
    bool tools = st->meta.kind == OAI_CHAT && tools_active(&st->r.tools);
    if (tools) {
        /* content and call deltas; what may still be a call waits */
        if (v.finish == SCHED_RUNNING || v.finish == SCHED_STOP || v.finish == SCHED_LENGTH) {
            char *s = oai_tools_chunks(&st->meta, &st->r, st->j, &v, &st->ts);
            st->sent = v.committed;
            st->sent_tok = v.n_tok_committed;
            bool any = s && *s;
            if (!out_add(st, s))
                return -1;
            if (v.finish == SCHED_RUNNING)
                return any ? 1 : 0;
        }
    } else if (v.committed > st->sent || v.n_tok_committed > st->sent_tok) {
        bool ok = out_add(st, oai_chunk(&st->meta, &st->r, st->j, st->sent, v.committed, st->sent_tok,
                                        v.n_tok_committed, false, SCHED_RUNNING));
        st->sent = v.committed;
        st->sent_tok = v.n_tok_committed;
        if (!ok)
            return -1;
        if (v.finish == SCHED_RUNNING)
            return 1;
    }
    if (v.finish == SCHED_RUNNING)
        return 0;
    st->ended = true;
    if (v.finish == SCHED_STOP || v.finish == SCHED_LENGTH) {
        if (!tools && !out_add(st, oai_chunk(&st->meta, &st->r, st->j, st->sent, st->sent, st->sent_tok,
                                             st->sent_tok, false, v.finish)))
            return -1;
        if (st->r.include_usage && !out_add(st, oai_usage_chunk(&st->meta, st->j, &v)))
            return -1;
    } else {
        oai_err e;
        if (v.finish == SCHED_ERROR)
            oai_fail(&e, 500, "server_error", NULL, NULL, "%s", st->j->err);
        else
            oai_fail(&e, 503, "server_error", NULL, "cancelled", "the generation was cancelled (the server is stopping)");
        char *ej = oai_err_json(&e);
        if (!ej)
            return -1;
        size_t n = strlen(ej);
        char *ev = malloc(n + 9);
        if (!ev) {
            free(ej);
            return -1;
        }
        memcpy(ev, "data: ", 6);
        memcpy(ev + 6, ej, n);
        memcpy(ev + 6 + n, "\n\n", 3);
        free(ej);
        if (!out_add(st, ev))
            return -1;
    }
    return out_add(st, dup_str("data: [DONE]\n\n")) ? 1 : -1;
}

static ssize_t lstream_read(bk_resp *r, char *buf, size_t cap, int timeout_ms)
{
    lstream *st = r->impl;
    for (;;) {
        if (st->out_off < st->out_len) {
            size_t n = st->out_len - st->out_off;
            if (n > cap)
                n = cap;
            memcpy(buf, st->out + st->out_off, n);
            st->out_off += n;
            return (ssize_t)n;
        }
        free(st->out);
        st->out = NULL;
        st->out_len = st->out_off = 0;
        if (st->ended) {
            r->tokens_in = st->j->n_prompt;
            r->tokens_out = st->j->n_gen;
            return 0;
        }
        int f = stream_fill(st, timeout_ms);
        if (f < 0) {
            snprintf(r->err, sizeof r->err, "out of memory");
            return BK_BROKEN;
        }
        if (f == 0)
            return BK_AGAIN;
    }
}

static void lstream_close(bk_resp *r)
{
    lstream *st = r->impl;
    if (!st)
        return;
    sched_cancel(st->j); /* no effect if it had finished */
    r->tokens_in = st->j->n_prompt;
    r->tokens_out = st->j->n_gen;
    sched_job_unref(st->j);
    oai_req_free(&st->r);
    oai_tstream_free(&st->ts);
    free(st->out);
    release(st->lb, now_s() - st->t0);
    free(st);
    r->impl = NULL;
}

static const bk_stream_vt lstream_vt = {.read = lstream_read, .close = lstream_close};

static int local_open(backend *b, const bk_req *rq, bk_resp *out)
{
    local_be *lb = (local_be *)b;
    memset(out, 0, sizeof *out);
    out->b = b;
    out->tokens_in = out->tokens_out = -1;
    if (acquire(lb, rq->client_fd, out))
        return -1;
    double t0 = now_s();
    oai_err e;
    oai_req r;
    const vocab *vb = lb->m->vocab;
    sched_job *j = NULL;
    int32_t *ids = NULL;
    size_t n_ids = 0;
    char *text = NULL;
    int kind = rq->kind == BK_CHAT ? OAI_CHAT : OAI_COMPLETION;
    if (oai_parse(rq->body ? rq->body : "", rq->len, kind, &lb->sp, vocab_n_tokens(vb), &r, &e)) {
        err_to_resp(out, &e, BK_FAIL_REQUEST);
        release(lb, 0);
        return -1;
    }
    if (kind == OAI_CHAT) {
        if (lb->tmpl == CHAT_NONE) {
            oai_fail(&e, 400, "invalid_request_error", "messages", "no_chat_template",
                     "this model has no chat template sov recognizes; use /v1/completions, or start sov serve "
                     "with --chat-template NAME (one of: %s)",
                     chat_names());
            goto err;
        }
        if (oai_chat_prompt(&r, lb->tmpl, lb->eos_text, &text, &e))
            goto err;
        if (vocab_encode(vb, text, strlen(text), true, true, &ids, &n_ids)) {
            oai_fail(&e, 400, "invalid_request_error", "messages", NULL, "cannot tokenize the messages: %s", err_msg());
            goto err;
        }
    } else if (r.prompt) {
        if (vocab_encode(vb, r.prompt, strlen(r.prompt), true, true, &ids, &n_ids)) {
            oai_fail(&e, 400, "invalid_request_error", "prompt", NULL, "cannot tokenize the prompt: %s", err_msg());
            goto err;
        }
    } else {
        ids = r.prompt_ids;
        n_ids = r.n_prompt_ids;
        r.prompt_ids = NULL;
    }
    if (n_ids == 0) { /* an empty prompt starts from BOS, as sov run */
        int32_t bos = vocab_bos(vb);
        free(ids);
        ids = malloc(sizeof *ids);
        if (!ids || bos < 0) {
            oai_fail(&e, 400, "invalid_request_error", "prompt", NULL, "the prompt is empty");
            goto err;
        }
        ids[0] = bos;
        n_ids = 1;
    }
    int32_t n_ctx = sched_n_ctx(lb->sc);
    if ((int64_t)n_ids >= n_ctx) {
        oai_fail(&e, 400, "invalid_request_error", kind == OAI_CHAT ? "messages" : "prompt", "context_length_exceeded",
                 "this model's context is %d tokens per request, but the prompt has %zu tokens", n_ctx, n_ids);
        goto err;
    }
    if (r.max_tokens > 0 && (int64_t)n_ids + r.max_tokens > n_ctx) {
        oai_fail(&e, 400, "invalid_request_error", "max_tokens", "context_length_exceeded",
                 "this model's context is %d tokens per request; the prompt has %zu tokens and max_tokens asks for "
                 "%lld more (%lld in all)",
                 n_ctx, n_ids, (long long)r.max_tokens, (long long)n_ids + r.max_tokens);
        goto err;
    }
    r.gen.n_max = r.max_tokens > 0 ? (int32_t)r.max_tokens : n_ctx - (int32_t)n_ids;
    if (!r.seed_set) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        static _Atomic uint64_t ctr;
        r.gen.sp.seed = (uint64_t)ts.tv_nsec ^ (uint64_t)ts.tv_sec << 30 ^ ++ctr * 0x9e3779b97f4a7c15ull;
    }
    sched_gen g = r.gen;
    memset(&r.gen, 0, sizeof r.gen); /* the job owns its allocations now */
    r.gen.logprobs = g.logprobs;
    int rc = sched_job_new(&j, lb->sc, ids, (int32_t)n_ids, &g);
    ids = NULL;
    if (rc) {
        oai_fail(&e, 503, "server_error", NULL, NULL, "%s", err_msg());
        goto err_fail;
    }
    j->per_token = r.stream;
    if ((rc = sched_submit(lb->sc, j))) {
        if (rc == SOV_EBUSY && lb->draining) {
            oai_fail(&e, 503, "server_error", NULL, "shutting_down", "%s", err_msg());
            goto err_fail;
        } else if (rc == SOV_EBUSY) {
            oai_fail(&e, 429, "rate_limit_error", NULL, "queue_full", "%s", err_msg());
            sched_job_unref(j);
            free(text);
            oai_req_free(&r);
            err_to_resp(out, &e, BK_FAIL_BUSY);
            release(lb, 0);
            return -1;
        }
        oai_fail(&e, 400, "invalid_request_error", "max_tokens", "context_length_exceeded", "%s", err_msg());
        goto err;
    }
    free(text);
    text = NULL;

    oai_meta meta;
    oai_meta_init(&meta, kind);
    meta.model = rq->model;
    meta.fingerprint = lb->fp;
    meta.vb = vb;
    if (r.stream) {
        lstream *st = calloc(1, sizeof *st);
        if (!st) {
            sched_cancel(j);
            oai_fail(&e, 500, "server_error", NULL, NULL, "out of memory");
            goto err_fail;
        }
        st->lb = lb;
        st->j = j;
        st->r = r;
        st->meta = meta;
        st->t0 = t0;
        out->status = 200;
        out->ctype = "text/event-stream";
        out->streamed = true;
        out->svt = &lstream_vt;
        out->impl = st;
        return 0;
    }
    /* not streamed: wait here for the end */
    sched_view v;
    for (;;) {
        sched_job_wait(j, SIZE_MAX - 1, INT32_MAX - 1, 200, &v);
        if (v.finish != SCHED_RUNNING)
            break;
        if (sys_peer_gone(rq->client_fd)) {
            sched_cancel(j);
            sched_job_wait(j, SIZE_MAX - 1, INT32_MAX - 1, 1, &v);
            sched_job_unref(j);
            oai_req_free(&r);
            release(lb, now_s() - t0);
            return bk_failf(out, BK_FAIL_CLIENT, 499, NULL, "the client disconnected");
        }
    }
    out->tokens_in = j->n_prompt;
    out->tokens_out = j->n_gen;
    if (v.finish == SCHED_ERROR || v.finish == SCHED_CANCELLED) {
        if (v.finish == SCHED_ERROR)
            oai_fail(&e, 500, "server_error", NULL, NULL, "%s", j->err);
        else
            oai_fail(&e, 503, "server_error", NULL, "cancelled",
                     "the generation was cancelled (the server is stopping)");
        err_to_resp(out, &e, BK_OK); /* an answer of this backend, not a reason to try another */
    } else {
        out->body = oai_response(&meta, &r, j, &v);
        if (!out->body) {
            sched_job_unref(j);
            oai_req_free(&r);
            release(lb, now_s() - t0);
            return bk_failf(out, BK_FAIL_UPSTREAM, 500, NULL, "out of memory");
        }
        out->len = strlen(out->body);
        out->status = 200;
        out->ctype = "application/json";
    }
    sched_job_unref(j);
    oai_req_free(&r);
    release(lb, now_s() - t0);
    return 0;
err:
    free(ids);
    free(text);
    sched_job_unref(j);
    oai_req_free(&r);
    err_to_resp(out, &e, BK_FAIL_REQUEST);
    release(lb, 0);
    return -1;
err_fail: /* the backend's failure (retry elsewhere is fine) */
    free(ids);
    free(text);
    sched_job_unref(j);
    oai_req_free(&r);
    err_to_resp(out, &e, BK_FAIL_UNAVAILABLE);
    release(lb, 0);
    return -1;
}

static void local_stats(backend *b, bk_stats *out)
{
    local_be *lb = (local_be *)b;
    memset(out, 0, sizeof *out);
    out->slots = (int)lb->c.n_slots;
    pthread_mutex_lock(&lb->g->mu);
    out->loaded = lb->state == LB_READY;
    out->mem_bytes = lb->state != LB_UNLOADED ? lb->need : 0;
    int busy = lb->state == LB_READY ? sched_busy(lb->sc) : 0;
    double ew = lb->ewma_s;
    pthread_mutex_unlock(&lb->g->mu);
    out->running = busy < out->slots ? busy : out->slots;
    out->queued = busy > out->slots ? busy - out->slots : 0;
    /* a new request starts when (busy - slots + 1) requests ahead of it have
     * ended, slots of them at a time */
    int ahead = busy - out->slots + 1;
    out->est_wait_s = ahead > 0 ? ew * (double)((ahead + out->slots - 1) / out->slots) : 0;
}

static int local_probe(backend *b, int timeout_ms, char *why, size_t cap)
{
    (void)timeout_ms;
    local_be *lb = (local_be *)b;
    FILE *f = fopen(lb->c.model, "rb");
    if (!f) {
        snprintf(why, cap, "cannot open %s", lb->c.model);
        return -1;
    }
    fclose(f);
    return 0;
}

static void local_tick(backend *b)
{
    local_be *lb = (local_be *)b;
    pthread_mutex_lock(&lb->g->mu);
    if (lb->state == LB_READY && lb->active == 0 && lb->c.keep_alive_s >= 0 &&
        now_s() - lb->last_used >= lb->c.keep_alive_s)
        unload_locked(lb, "keep_alive");
    /* the KV accounting in the log, once a minute while requests come */
    if (lb->state == LB_READY && now_s() - lb->t_kvlog >= 60) {
        sched_kv_stats k = sched_kv_stat(lb->sc);
        if (k.prompt_tokens != lb->kv_last.prompt_tokens || k.preemptions != lb->kv_last.preemptions)
            fprintf(stderr,
                    "sov serve: [%s] kv: %d of %d blocks used, %d cached; prefix hits %.1f %% of %lld prompt "
                    "tokens, %lld evaluated; %lld preemptions\n",
                    lb->base.name, k.blocks_used, k.blocks_total, k.blocks_cached,
                    k.prompt_tokens ? 100.0 * (double)k.prompt_cached / (double)k.prompt_tokens : 0.0,
                    (long long)k.prompt_tokens, (long long)k.evaluated_prompt, (long long)k.preemptions);
        lb->kv_last = k;
        lb->t_kvlog = now_s();
    }
    pthread_mutex_unlock(&lb->g->mu);
}

static void local_free(backend *b)
{
    local_be *lb = (local_be *)b;
    if (!lb)
        return;
    local_group *g = lb->g;
    pthread_mutex_lock(&g->mu);
    if (lb->state == LB_READY) {
        sched_free(lb->sc);
        pool_free(lb->pl);
        model_free(lb->m);
        g->used -= lb->need;
    }
    for (int i = 0; i < g->n_mem; i++)
        if (g->mem[i] == lb) {
            g->mem[i] = g->mem[--g->n_mem];
            break;
        }
    pthread_mutex_unlock(&g->mu);
    free(lb->c.model);
    free(lb->c.chat_template);
    free(lb);
}

static const backend_vt local_vt = {
    .open = local_open, .stats = local_stats, .probe = local_probe, .tick = local_tick, .drain = backend_local_drain,
    .free = local_free};

int backend_local_new(backend **out, local_group *g, const cfg_backend *c, const sample_params *base, metrics *mt)
{
    *out = NULL;
    local_be *lb = calloc(1, sizeof *lb);
    if (!lb)
        return err_set(SOV_ENOMEM, "out of memory");
    int rc;
    model *m = NULL;
    lb->base.vt = &local_vt;
    snprintf(lb->base.name, sizeof lb->base.name, "%s", c->name);
    lb->base.type = "local";
    lb->base.local = true;
    snprintf(lb->base.where, sizeof lb->base.where, "%s", c->model ? c->model : "");
    lb->g = g;
    lb->c = *c;
    lb->c.model = dup_str(c->model);
    lb->c.chat_template = dup_str(c->chat_template);
    lb->c.url = lb->c.origin = lb->c.api_key = lb->c.api_key_env = lb->c.health = NULL;
    lb->sp = *base;
    lb->mt = mt;
    lb->tmpl = CHAT_NONE;
    if (lb->c.n_slots < 1)
        lb->c.n_slots = 4;
    if (lb->c.n_batch < 1)
        lb->c.n_batch = 256;
    if (lb->c.queue < 1)
        lb->c.queue = 64;
    if (!lb->c.model || (c->chat_template && !lb->c.chat_template)) {
        rc = err_set(SOV_ENOMEM, "out of memory");
        goto fail;
    }
    /* the file, mapped: its shapes size the KV pool and the estimate */
    if ((rc = model_load(&m, lb->c.model)))
        goto fail;
    if (!m->vocab) {
        rc = err_set(SOV_EFORMAT, "%s has no tokenizer metadata", lb->c.model);
        goto fail;
    }
    int32_t train = m->hp.n_ctx_train > 0 ? m->hp.n_ctx_train : 4096;
    lb->per = train < 4096 ? train : 4096;
    if (lb->c.n_ctx) {
        lb->per = (int32_t)(lb->c.n_ctx / lb->c.n_slots);
        if (lb->per < 2) {
            rc = err_set(SOV_EINVAL, "ctx_size %lld over %lld slots leaves %d positions each", (long long)lb->c.n_ctx,
                         (long long)lb->c.n_slots, lb->per);
            goto fail;
        }
    }
    uint64_t per_pos = kv_bytes_per_token(&m->hp, lb->c.kv_type);
    lb->kv_tok = lb->c.kv_size;
    if (lb->c.kv_mem > 0) /* whole blocks within the memory asked for */
        lb->kv_tok = (int64_t)(lb->c.kv_mem * 1073741824.0 / (double)kv_bytes_per_block(&m->hp, lb->c.kv_type)) *
                     KV_TILE;
    lb->kv_why = lb->c.kv_size || lb->c.kv_mem > 0 ? "asked" : "every slot its context";
    if (!lb->kv_tok) {
        lb->kv_tok = lb->c.n_slots * lb->per;
        int64_t avail = sys_mem_available();
        if (avail > 0) {
            int64_t fit = (avail - (1LL << 30)) / (int64_t)per_pos;
            if (fit < lb->kv_tok) {
                lb->kv_tok = fit > lb->per ? fit : lb->per;
                lb->kv_why = "what fits in the available memory";
            }
        }
    }
    if (lb->kv_tok < lb->per) {
        rc = err_set(SOV_EINVAL, "a KV pool of %lld positions cannot hold one context of %d (lower ctx_size or raise "
                                 "kv_size)",
                     (long long)lb->kv_tok, lb->per);
        goto fail;
    }
    int64_t blocks = (lb->kv_tok + KV_TILE - 1) / KV_TILE;
    int threads = lb->c.threads > 0 ? (int)lb->c.threads : pool_cpu_count();
    lb->need = (int64_t)model_weight_bytes(m) + blocks * (int64_t)kv_bytes_per_block(&m->hp, lb->c.kv_type) +
               (int64_t)forward_scratch_bytes(&m->hp, (int32_t)lb->c.n_batch, threads, (int32_t)lb->c.n_slots);
    model_free(m);
    m = NULL;
    pthread_mutex_lock(&g->mu);
    local_be **nm = realloc(g->mem, (size_t)(g->n_mem + 1) * sizeof *nm);
    if (nm) {
        g->mem = nm;
        g->mem[g->n_mem++] = lb;
    }
    pthread_mutex_unlock(&g->mu);
    if (!nm) {
        rc = err_set(SOV_ENOMEM, "out of memory");
        goto fail;
    }
    *out = &lb->base;
    return 0;
fail:
    model_free(m);
    free(lb->c.model);
    free(lb->c.chat_template);
    free(lb);
    return rc;
}

int backend_local_load(backend *b)
{
    local_be *lb = (local_be *)b;
    bk_resp r;
    memset(&r, 0, sizeof r);
    if (acquire(lb, -1, &r)) {
        int rc = err_set(r.fail == BK_FAIL_UNAVAILABLE && strstr(r.err, "budget") ? SOV_ENOMEM : SOV_EIO, "%s", r.err);
        free(r.body);
        return rc;
    }
    release(lb, 0);
    return 0;
}

int64_t backend_local_need(const backend *b) { return ((const local_be *)b)->need; }

void backend_local_counts(backend *b, int64_t *loads, int64_t *unloads)
{
    local_be *lb = (local_be *)b;
    pthread_mutex_lock(&lb->g->mu);
    *loads = lb->loads;
    *unloads = lb->unloads;
    pthread_mutex_unlock(&lb->g->mu);
}

void backend_local_drain(backend *b)
{
    local_be *lb = (local_be *)b;
    pthread_mutex_lock(&lb->g->mu);
    lb->draining = true;
    if (lb->state == LB_READY)
        sched_drain(lb->sc);
    pthread_cond_broadcast(&lb->g->cv);
    pthread_mutex_unlock(&lb->g->mu);
}

int backend_local_busy(backend *b)
{
    local_be *lb = (local_be *)b;
    pthread_mutex_lock(&lb->g->mu);
    int n = lb->active;
    pthread_mutex_unlock(&lb->g->mu);
    return n;
}
