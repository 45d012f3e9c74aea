/* sov serve: the OpenAI-compatible HTTP server over one GGUF model. */
#include "cmd.h"
#include "opt.h"

#include "../base/err.h"
#include "../base/pool.h"
#include "../engine/kv.h"
#include "../engine/model.h"
#include "../engine/sample.h"
#include "../server/chat.h"
#include "../server/http.h"
#include "../server/metrics.h"
#include "../server/sched.h"
#include "../tok/vocab.h"

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
            "usage: sov serve -m MODEL [options]\n"
            "  -m, --model FILE        GGUF model\n"
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
    const char *model, *alias, *host, *api_key, *chat_tmpl;
    long long port, n_ctx, n_slots, threads, n_batch, queue, max_body, kv_size;
    double kv_mem;
    int kv_type;
    sample_params sp;
    bool use_mmap, no_share;
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
            VAL(); o->host = v;
        } else if (!strcmp(a, "--port")) {
            VAL(); rc = opt_int(a, v, 0, 65535, &o->port);
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
            VAL(); rc = opt_int(a, v, 256, 1LL << 32, &o->max_body);
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
    if (!o->model) {
        fprintf(stderr, "sov serve: -m MODEL is required (see sov serve --help)\n");
        return 2;
    }
    return 0;
}

/* MemAvailable from /proc/meminfo in bytes, or -1. */
static int64_t mem_available(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f)
        return -1;
    char line[256];
    long long kb = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %lld kB", &kb) == 1)
            break;
    fclose(f);
    return kb < 0 ? -1 : (int64_t)kb * 1024;
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

int cmd_serve(int argc, char **argv)
{
    serve_opts o = {0};
    int prc = parse(argc, argv, &o);
    if (prc)
        return prc == 1 ? 0 : prc;

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
    model_id(o.model, id, sizeof id);
    if (o.alias)
        snprintf(id, sizeof id, "%s", o.alias);
    metrics *mt = NULL;
    http *h = NULL;
    model *m = NULL;
    pool *pl = NULL;
    sched *sc = NULL;
    if ((rc = metrics_new(&mt, id)))
        goto fail;
    http_cfg hc = {.host = o.host, .port = (int)o.port, .api_key = o.api_key, .max_body = (size_t)o.max_body,
                   .model_id = id, .max_conns = 512};
    if ((rc = http_start(&h, &hc, mt)))
        goto fail;
    const char *disp = strchr(o.host, ':') ? "[%s]" : "%s";
    char hostbuf[300];
    snprintf(hostbuf, sizeof hostbuf, disp, o.host);
    fprintf(stderr, "sov serve: listening on http://%s:%d (model %s loading)\n", hostbuf, http_port(h), id);

    double t0 = opt_now();
    if ((rc = model_load_mode(&m, o.model, o.use_mmap)))
        goto fail;
    if (!m->vocab) {
        rc = err_set(SOV_EFORMAT, "%s has no tokenizer metadata", o.model);
        goto fail;
    }
    int tmpl = CHAT_NONE;
    const char *tmpl_src = "none";
    if (o.chat_tmpl) {
        tmpl = chat_from_name(o.chat_tmpl);
        tmpl_src = "--chat-template";
    } else {
        gguf_str js;
        char *jinja = NULL;
        if (gguf_get_str(m->g, "tokenizer.chat_template", &js) == 0 && (jinja = malloc(js.len + 1))) {
            memcpy(jinja, js.ptr, js.len);
            jinja[js.len] = 0;
        }
        tmpl = chat_detect(jinja);
        free(jinja);
        tmpl_src = jinja ? (tmpl != CHAT_NONE ? "tokenizer.chat_template" : "unrecognized tokenizer.chat_template")
                         : "no tokenizer.chat_template";
    }
    int32_t train = m->hp.n_ctx_train > 0 ? m->hp.n_ctx_train : 4096;
    int32_t per = train < 4096 ? train : 4096;
    if (o.n_ctx) {
        per = (int32_t)(o.n_ctx / o.n_slots);
        if (per < 2) {
            rc = err_set(SOV_EINVAL, "-c %lld over %lld slots leaves %d positions each", o.n_ctx, o.n_slots, per);
            goto fail;
        }
    }
    if ((rc = pool_new(&pl, (int)o.threads)))
        goto fail;
    /* the KV pool: asked for, or every slot its whole context if that fits
     * in the available memory with 1 GiB to spare (else what fits, and at
     * least one whole context) */
    uint64_t per_pos = kv_bytes_per_token(&m->hp, o.kv_type);
    int64_t kv_tok = o.kv_size;
    if (o.kv_mem > 0) /* whole blocks within the memory asked for */
        kv_tok = (int64_t)(o.kv_mem * 1073741824.0 / (double)kv_bytes_per_block(&m->hp, o.kv_type)) * KV_TILE;
    const char *kv_why = o.kv_size || o.kv_mem > 0 ? "asked" : "every slot its context";
    if (!kv_tok) {
        kv_tok = (int64_t)o.n_slots * per;
        int64_t avail = mem_available();
        if (avail > 0) {
            int64_t fit = (avail - (1LL << 30)) / (int64_t)per_pos;
            if (fit < kv_tok) {
                kv_tok = fit > per ? fit : per;
                kv_why = "what fits in the available memory";
            }
        }
    }
    if (kv_tok < per) {
        rc = err_set(SOV_EINVAL, "a KV pool of %lld positions cannot hold one context of %d (lower -c or raise --kv-size)",
                     (long long)kv_tok, per);
        goto fail;
    }
    sched_params sp = {.n_slots = (int32_t)o.n_slots, .n_ctx = per, .n_batch = (int32_t)o.n_batch,
                       .queue_max = (int32_t)o.queue, .kv_tokens = kv_tok > INT32_MAX ? INT32_MAX : (int32_t)kv_tok,
                       .no_share = o.no_share, .kv_type = o.kv_type};
    if ((rc = sched_new(&sc, m, pl, &sp, mt)))
        goto fail;
    char fp[64];
    snprintf(fp, sizeof fp, "sov-%s-%s-kv%s", sched_kernels(sc), o.use_mmap ? "mmap" : "mem", kv_type_name(o.kv_type));
    http_ready(h, m, sc, tmpl, &o.sp, fp);
    sched_kv_stats ks = sched_kv_stat(sc);
    fprintf(stderr,
            "sov serve: KV pool %d blocks x 32 = %lld positions, %.1f MiB %s (%s), prefix cache %s\n",
            ks.blocks_total, (long long)ks.blocks_total * 32, ks.blocks_total * 32.0 * (double)per_pos / 1048576.0,
            kv_type_name(o.kv_type), kv_why, o.no_share ? "off" : "on");
    fprintf(stderr,
            "sov serve: ready in %.0f ms: %d slots, up to %d positions each, %d threads, kernels %s, chat template %s "
            "(%s)%s\n",
            (opt_now() - t0) * 1e3, sp.n_slots, per, pool_size(pl), sched_kernels(sc), chat_name(tmpl), tmpl_src,
            o.api_key && *o.api_key ? ", API key required" : "");

    /* wait for SIGTERM / SIGINT; then drain */
    bool draining = false;
    sched_kv_stats last = sched_kv_stat(sc);
    double t_log = opt_now();
    for (;;) {
        struct timespec ts = {.tv_sec = draining ? 0 : 1, .tv_nsec = draining ? 50 * 1000000L : 0};
        int sig = sigtimedwait(&sigs, NULL, &ts);
        /* KV accounting in the log, once a minute while anything happens */
        if (opt_now() - t_log >= 60) {
            sched_kv_stats k = sched_kv_stat(sc);
            if (k.prompt_tokens != last.prompt_tokens || k.preemptions != last.preemptions) {
                fprintf(stderr,
                        "sov serve: kv: %d of %d blocks used, %d cached; prefix hits %.1f %% of %lld prompt tokens, "
                        "%lld evaluated; %lld preemptions\n",
                        k.blocks_used, k.blocks_total, k.blocks_cached,
                        k.prompt_tokens ? 100.0 * (double)k.prompt_cached / (double)k.prompt_tokens : 0.0,
                        (long long)k.prompt_tokens, (long long)k.evaluated_prompt, (long long)k.preemptions);
                last = k;
            }
            t_log = opt_now();
        }
        if (sig == SIGINT || sig == SIGTERM) {
            if (draining) {
                fprintf(stderr, "sov serve: second %s, exiting now\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
                fflush(stderr);
                _exit(130);
            }
            draining = true;
            http_drain(h);
            sched_drain(sc);
            fprintf(stderr, "sov serve: %s: finishing %d running request(s), then exiting\n",
                    sig == SIGINT ? "SIGINT" : "SIGTERM", http_busy(h));
        } else if (sig < 0 && errno != EAGAIN && errno != EINTR) {
            rc = err_set(SOV_EIO, "sigtimedwait: %s", strerror(errno));
            goto fail;
        }
        if (draining && http_busy(h) == 0 && sched_busy(sc) == 0)
            break;
    }
    fprintf(stderr, "sov serve: stopped\n");
    ret = 0;
    goto done;
fail:
    fprintf(stderr, "sov serve: %s\n", err_msg());
done:
    http_stop(h);
    sched_free(sc);
    pool_free(pl);
    model_free(m);
    metrics_free(mt);
    return ret;
}
