/* sov serve: the OpenAI-compatible HTTP server: one GGUF model (-m), or the
 * router over local and remote backends from a config file (--config). */
#include "cmd.h"
#include "opt.h"

#include "../base/err.h"
#include "../base/sys.h"
#include "../base/pool.h"
#include "../engine/kv.h"
#include "../engine/sample.h"
#include "../router/backend_local.h"
#include "../router/backend_openai.h"
#include "../router/config.h"
#include "../router/route.h"
#include "../server/chat.h"
#include "../server/http.h"
#include "../server/metrics.h"
#include "../store/store.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: sov serve -m MODEL [options]      one local model\n"
            "       sov serve --config FILE [options] the router: local and remote backends, aliases,\n"
            "                                         privacy, overflow, failover (see examples/hybrid.ini)\n"
            "  -m, --model FILE        GGUF model, or the NAME of one in the models folder (sov ls)\n"
            "      --config FILE       router config (INI); with --check-config: validate it, print the\n"
            "                          routing table and exit\n"
            "      --audit-log FILE    one JSON line per request (time, id, key, model, backend, reason,\n"
            "                          status, tokens, latency; '-' = stderr); also [server] audit_log\n"
            "      --log-prompts       put the request bodies in the audit log (off by default)\n"
            "      --memory-budget SIZE  memory of all local models together (e.g. 20G; default: the\n"
            "                          available memory less 1 GiB); LRU models unload to make room\n"
            "  -a, --alias NAME        model id clients use (default: the file name without .gguf)\n"
            "      --host ADDR         address to listen on (default 127.0.0.1; 0.0.0.0 exposes it)\n"
            "      --port N            TCP port (default 8080; 0 = any free port, printed)\n"
            "  -c, --ctx-size N        context positions in all, split evenly over the slots (as llama-server;\n"
            "                          default: each slot gets min(training context, 4096))\n"
            "  -np, --parallel N       slots: sequences generated at once (default 4)\n"
            "  -t, --threads N         compute threads (default: number of CPUs)\n"
            "  -b, --batch N           tokens one engine step evaluates at most: one per generating\n"
            "                          slot plus prompt chunks (default 256)\n"
            "      --queue N           requests that may wait for a slot; more get 429 (default 64)\n"
            "      --kv-size N         KV pool in positions, shared by all slots in blocks of 32 (default:\n"
            "                          every slot its whole context, or what fits in the available memory\n"
            "                          with 1 GiB to spare); when it is full, the latest request waits\n"
            "      --kv-mem GiB        the KV pool as memory instead of positions\n"
            "      --no-prefix-cache   do not share cached prompt blocks between requests\n"
            "      --kv-type T         KV cache element type: f16 (default), q8_0 (half of f16's memory)\n"
            "                          or f32 (exactly sov run's results)\n"
            "      --api-key KEY       require 'Authorization: Bearer KEY' (default: env SOV_API_KEY)\n"
            "      --chat-template NAME  chat format instead of the model's own (%s)\n"
            "      --max-body BYTES    largest request body (default 8388608); larger get 413\n"
            "      --no-mmap / --mmap  weights read into memory (default) or mapped, as sov run\n"
            "Sampling defaults of a request (each request may override them): --temp 0.8 --top-k 40\n"
            "--top-p 0.95 --min-p 0.05 --repeat-penalty 1 --repeat-last-n 64 (as llama-server),\n"
            "set with the same options as sov run.\n"
            "SIGTERM or Ctrl-C: stop taking requests, finish the running ones, exit 0; a second one\n"
            "exits at once.\n",
            chat_names());
}

typedef struct serve_opts {
    const char *model, *alias, *host, *api_key, *chat_tmpl, *config, *audit, *budget;
    long long port, n_ctx, n_slots, threads, n_batch, queue, max_body, kv_size;
    double kv_mem;
    int kv_type;
    sample_params sp;
    bool use_mmap, no_share, check, log_prompts, host_set, port_set, body_set;
} serve_opts;

static int parse(int argc, char **argv, serve_opts *o)
{
    o->host = "127.0.0.1";
    o->port = 8080;
    o->n_slots = 4;
    o->threads = pool_cpu_count();
    o->n_batch = 256;
    o->queue = 64;
    o->max_body = 8 << 20;
    o->sp = sample_defaults();
    o->kv_type = KV_F16;
    o->api_key = getenv("SOV_API_KEY");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        int rc = 0;
#define VAL() do { if (!(v = opt_value(argc, argv, &i))) return 2; } while (0)
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 1;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            VAL(); o->model = v;
        } else if (!strcmp(a, "-a") || !strcmp(a, "--alias")) {
            VAL(); o->alias = v;
        } else if (!strcmp(a, "--host")) {
            VAL(); o->host = v; o->host_set = true;
        } else if (!strcmp(a, "--port")) {
            VAL(); rc = opt_int(a, v, 0, 65535, &o->port); o->port_set = true;
        } else if (!strcmp(a, "--config")) {
            VAL(); o->config = v;
        } else if (!strcmp(a, "--check-config")) {
            o->check = true;
        } else if (!strcmp(a, "--audit-log")) {
            VAL(); o->audit = v;
        } else if (!strcmp(a, "--log-prompts")) {
            o->log_prompts = true;
        } else if (!strcmp(a, "--memory-budget")) {
            VAL(); o->budget = v;
        } else if (!strcmp(a, "-c") || !strcmp(a, "--ctx-size") || !strcmp(a, "--ctx")) {
            VAL(); rc = opt_int(a, v, 2, 1 << 24, &o->n_ctx);
        } else if (!strcmp(a, "-np") || !strcmp(a, "--parallel")) {
            VAL(); rc = opt_int(a, v, 1, 256, &o->n_slots);
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            VAL(); rc = opt_int(a, v, 1, 512, &o->threads);
        } else if (!strcmp(a, "-b") || !strcmp(a, "--batch") || !strcmp(a, "--batch-size")) {
            VAL(); rc = opt_int(a, v, 1, 65536, &o->n_batch);
        } else if (!strcmp(a, "--queue")) {
            VAL(); rc = opt_int(a, v, 1, 1 << 20, &o->queue);
        } else if (!strcmp(a, "--kv-size")) {
            VAL(); rc = opt_int(a, v, 32, 1LL << 34, &o->kv_size);
        } else if (!strcmp(a, "--kv-mem")) {
            VAL(); rc = opt_float(a, v, 0.001, 1 << 20, &o->kv_mem);
        } else if (!strcmp(a, "--no-prefix-cache")) {
            o->no_share = true;
        } else if (!strcmp(a, "--kv-type")) {
            VAL();
            if ((o->kv_type = kv_type_parse(v)) < 0) {
                fprintf(stderr, "sov serve: --kv-type: '%s' is not f32, f16 or q8_0\n", v);
                return 2;
            }
        } else if (!strcmp(a, "--api-key")) {
            VAL(); o->api_key = v;
        } else if (!strcmp(a, "--chat-template")) {
            VAL(); o->chat_tmpl = v;
            if (chat_from_name(v) < 0) {
                fprintf(stderr, "sov serve: unknown chat template '%s' (one of: %s)\n", v, chat_names());
                return 2;
            }
        } else if (!strcmp(a, "--max-body")) {
            VAL(); rc = opt_int(a, v, 256, 1LL << 32, &o->max_body); o->body_set = true;
        } else if (opt_sampling(argc, argv, &i, &o->sp, &rc)) {
            /* --temp --top-k --top-p --min-p --repeat-penalty --repeat-last-n */
        } else if (!strcmp(a, "--mmap")) {
            o->use_mmap = true;
        } else if (!strcmp(a, "--no-mmap")) {
            o->use_mmap = false;
        } else {
            fprintf(stderr, "sov serve: unknown option '%s' (see sov serve --help)\n", a);
            return 2;
        }
#undef VAL
        if (rc)
            return rc;
    }
    if (!o->model && !o->config) {
        fprintf(stderr, "sov serve: -m MODEL or --config FILE is required (see sov serve --help)\n");
        return 2;
    }
    if (o->model && o->config) {
        fprintf(stderr, "sov serve: -m and --config exclude each other (put the model in the config as a "
                        "[backend.NAME] with type = local)\n");
        return 2;
    }
    if (o->check && !o->config) {
        fprintf(stderr, "sov serve: --check-config needs --config FILE\n");
        return 2;
    }
    return 0;
}

static char *sdup(const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s);
    char *d = malloc(n + 1);
    if (d)
        memcpy(d, s, n + 1);
    return d;
}

/* The config of `sov serve -m`: one local backend, loaded at start and
 * never unloaded, under one alias. */
static int single_config(cfg **out, const serve_opts *o, const char *id)
{
    cfg *c = NULL;
    int rc = cfg_new(&c);
    if (rc)
        return rc;
    c->backends = calloc(1, sizeof *c->backends);
    c->aliases = calloc(1, sizeof *c->aliases);
    if (!c->backends || !c->aliases)
        goto oom;
    c->n_backends = 1;
    c->n_aliases = 1;
    cfg_backend *b = &c->backends[0];
    snprintf(b->name, sizeof b->name, "%.63s", id);
    b->type = CFG_LOCAL;
    if (!(b->model = sdup(o->model)) || (o->chat_tmpl && !(b->chat_template = sdup(o->chat_tmpl))))
        goto oom;
    b->n_ctx = o->n_ctx;
    b->n_slots = o->n_slots;
    b->threads = o->threads;
    b->n_batch = o->n_batch;
    b->queue = o->queue;
    b->kv_type = o->kv_type;
    b->kv_size = o->kv_size;
    b->mmap = o->use_mmap;
    b->no_prefix_cache = o->no_share;
    b->preload = true;
    b->keep_alive_s = -1;
    b->kv_mem = o->kv_mem;
    cfg_alias *a = &c->aliases[0];
    snprintf(a->name, sizeof a->name, "%.127s", id);
    a->refs[0] = 0;
    a->n_refs = 1;
    a->overflow_queue = -1;
    a->overflow_wait_s = -1;
    *out = c;
    return 0;
oom:
    cfg_free(c);
    return err_set(SOV_ENOMEM, "out of memory");
}

/* The model id: the file name without directories and .gguf. */
static void model_id(const char *path, char *out, size_t cap)
{
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    size_t n = strlen(b);
    if (n > 5 && !strcmp(b + n - 5, ".gguf"))
        n -= 5;
    if (n >= cap)
        n = cap - 1;
    memcpy(out, b, n);
    out[n] = 0;
}

/* Opens the audit log: "-" is stderr; else appended to. NULL path: none. */
static int audit_open(const char *path, FILE **out)
{
    *out = NULL;
    if (!path || !*path)
        return 0;
    if (!strcmp(path, "-")) {
        *out = stderr;
        return 0;
    }
    FILE *f = fopen(path, "a");
    if (!f)
        return err_set(SOV_EIO, "audit log %s: %s", path, strerror(errno));
    setvbuf(f, NULL, _IOLBF, 0);
    *out = f;
    return 0;
}

int cmd_serve(int argc, char **argv)
{
    serve_opts o = {0};
    int prc = parse(argc, argv, &o);
    if (prc)
        return prc == 1 ? 0 : prc;
    static char mpath[STORE_PATH_MAX]; /* -m NAME: a model of the models folder */
    if (o.model && !(o.model = store_resolve(o.model, mpath, sizeof mpath))) {
        fprintf(stderr, "sov serve: %s\n", err_msg());
        return 1;
    }

    /* signals are taken by this thread only (sigtimedwait); every thread
     * started from here inherits the mask */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    int ret = 1, rc;
    char id[256];
    cfg *c = NULL;
    local_group *grp = NULL;
    backend **bs = NULL;
    int n_bs = 0;
    metrics *mt = NULL;
    router *rt = NULL;
    http *h = NULL;
    FILE *audit = NULL;
    if (o.model) {
        model_id(o.model, id, sizeof id);
        if (o.alias)
            snprintf(id, sizeof id, "%s", o.alias);
        if (strlen(id) > 127) {
            fprintf(stderr, "sov serve: model id '%s' is longer than 127 bytes (set a shorter one with -a)\n", id);
            ret = 2;
            goto done;
        }
        if ((rc = single_config(&c, &o, id)))
            goto fail;
    } else {
        snprintf(id, sizeof id, "router");
        if ((rc = cfg_load(&c, o.config)))
            goto fail;
    }
    /* the command line wins over [server] */
    const char *host = o.host_set || !c->srv.host ? o.host : c->srv.host;
    int port = o.port_set || c->srv.port < 0 ? (int)o.port : (int)c->srv.port;
    size_t max_body = o.body_set || c->srv.max_body <= 0 ? (size_t)o.max_body : (size_t)c->srv.max_body;
    if (o.api_key && *o.api_key && !c->srv.api_key && !(c->srv.api_key = sdup(o.api_key))) {
        rc = err_set(SOV_ENOMEM, "out of memory");
        goto fail;
    }
    const char *audit_path = o.audit ? o.audit : c->srv.audit_log;
    bool log_prompts = o.log_prompts || c->srv.log_prompts;
    int64_t budget = 0;
    if (o.budget) {
        if (cfg_parse_size(o.budget, &budget) || budget <= 0) {
            fprintf(stderr, "sov serve: --memory-budget: '%s' is not a size such as 20G or 512M\n", o.budget);
            ret = 2;
            goto done;
        }
    } else if (c->srv.memory_budget > 0) {
        budget = c->srv.memory_budget;
    } else if (o.config) {
        int64_t avail = sys_mem_available();
        budget = avail > (2LL << 30) ? avail - (1LL << 30) : (avail > 0 ? avail / 2 : (8LL << 30));
    } else {
        budget = INT64_MAX / 4; /* one model, loaded at start: it fits or the load itself fails */
    }
    if (o.check) {
        cfg_print(c, stdout);
        ret = 0;
        goto done;
    }

    if ((rc = local_group_new(&grp, budget)))
        goto fail;
    if ((rc = metrics_new(&mt, id)))
        goto fail;
    if (!(bs = calloc((size_t)c->n_backends, sizeof *bs))) {
        rc = err_set(SOV_ENOMEM, "out of memory");
        goto fail;
    }
    for (int i = 0; i < c->n_backends; i++, n_bs++) {
        const cfg_backend *cb = &c->backends[i];
        rc = cb->type == CFG_LOCAL ? backend_local_new(&bs[i], grp, cb, &o.sp, mt) : backend_openai_new(&bs[i], cb);
        if (rc) {
            if (o.config) {
                char m[1024];
                snprintf(m, sizeof m, "%s", err_msg());
                err_set(rc, "%s:%d: [backend.%s]: %s", o.config, cb->line, cb->name, m);
            }
            goto fail;
        }
    }
    if ((rc = audit_open(audit_path, &audit)))
        goto fail;
    rc = router_new(&rt, c, bs, audit, log_prompts);
    free(bs); /* the backends are taken (also on failure), the array copied */
    bs = NULL;
    n_bs = 0;
    if (rc)
        goto fail;
    http_cfg hc = {.host = host, .port = port, .max_body = max_body, .max_conns = 512};
    if ((rc = http_start(&h, &hc, rt, mt)))
        goto fail;
    const char *disp = strchr(host, ':') ? "[%s]" : "%s";
    char hostbuf[300];
    snprintf(hostbuf, sizeof hostbuf, disp, host);
    if (o.model)
        fprintf(stderr, "sov serve: listening on http://%s:%d (model %s loading)\n", hostbuf, http_port(h), id);
    else
        fprintf(stderr, "sov serve: listening on http://%s:%d (router: %d models, %d backends, budget %.2f GiB)\n",
                hostbuf, http_port(h), c->n_aliases, c->n_backends, (double)budget / 1073741824.0);

    double t0 = opt_now();
    for (int i = 0; i < router_n_backends(rt); i++) {
        if (c->backends[i].type != CFG_LOCAL || !c->backends[i].preload)
            continue;
        if ((rc = backend_local_load(router_backend(rt, i)))) {
            if (o.config) {
                char m[1024];
                snprintf(m, sizeof m, "%s", err_msg());
                err_set(rc, "[backend.%s] preload: %s", c->backends[i].name, m);
            }
            goto fail;
        }
    }
    http_ready(h);
    fprintf(stderr, "sov serve: ready in %.0f ms%s\n", (opt_now() - t0) * 1e3,
            c->srv.api_key || c->n_keys ? ", API key required" : "");

    /* wait for SIGTERM / SIGINT; then drain */
    bool draining = false;
    for (;;) {
        struct timespec ts = {.tv_sec = draining ? 0 : 1, .tv_nsec = draining ? 50 * 1000000L : 0};
        int sig = sigtimedwait(&sigs, NULL, &ts);
        if (sig == SIGINT || sig == SIGTERM) {
            if (draining) {
                fprintf(stderr, "sov serve: second %s, exiting now\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
                fflush(stderr);
                _exit(130);
            }
            draining = true;
            http_drain(h);
            router_drain(rt);
            fprintf(stderr, "sov serve: %s: finishing %d running request(s), then exiting\n",
                    sig == SIGINT ? "SIGINT" : "SIGTERM", http_busy(h));
        } else if (sig < 0 && errno != EAGAIN && errno != EINTR) {
            rc = err_set(SOV_EIO, "sigtimedwait: %s", strerror(errno));
            goto fail;
        }
        if (draining && http_busy(h) == 0 && router_busy(rt) == 0)
            break;
    }
    fprintf(stderr, "sov serve: stopped\n");
    ret = 0;
    goto done;
fail:
    fprintf(stderr, "sov serve: %s\n", err_msg());
done:
    http_stop(h);
    router_free(rt);
    for (int i = 0; i < n_bs; i++)
        if (bs[i])
            bs[i]->vt->free(bs[i]);
    free(bs);
    local_group_free(grp);
    metrics_free(mt);
    if (audit && audit != stderr)
        fclose(audit);
    cfg_free(c);
    return ret;
}
