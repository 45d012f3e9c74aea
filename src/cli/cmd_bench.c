/* sov bench: prompt-processing (pp) and generation (tg) speed of GGUF models
 * in the style of llama-bench, with a memory-bandwidth roofline for tg and
 * the share of the fp32 compute peak for pp. */
#include "cmd.h"
#include "jout.h"
#include "opt.h"

#include "../base/cpupeak.h"
#include "../base/err.h"
#include "../base/membw.h"
#include "../base/pool.h"
#include "../engine/bench.h"
#include "../engine/cost.h"
#include "../engine/forward.h"
#include "../engine/kern/kern.h"
#include "../engine/kv.h"
#include "../engine/model.h"
#include "../format/ttype.h"
#include "../store/store.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_LIST 64
#define TG_PROMPT BENCH_TG_PROMPT /* untimed prompt before each tg run */
#define BW_PASSES 5         /* bandwidth passes per kernel; the best counts */
#define FMA_PASSES 5

static void usage(FILE *f)
{
    fprintf(f,
            "usage: sov bench -m MODEL [-m MODEL2 ...] [options]\n"
            "  -m, --model FILE        GGUF model or a NAME from sov ls (repeat for several)\n"
            "  -t, --threads LIST      thread counts, comma-separated (default: number of CPUs)\n"
            "  -p, --n-prompt LIST     prompt lengths for the pp tests (default 512; 0 = no pp test)\n"
            "  -n, --n-gen LIST        generated tokens for the tg tests (default 128; 0 = no tg test)\n"
            "  -r, --repetitions N     timed runs per test after one warm-up run (default 3)\n"
            "  -b, --batch N           prompt tokens the forward pass evaluates together (default 512)\n"
            "  -d, --depth LIST        positions already in the context when a test starts (default:\n"
            "                          pp 0, tg %d); with it, every test runs at every depth\n"
            "      --kv-type LIST      KV cache types, comma-separated: f32 (default), f16, q8_0\n"
            "      --kv-layout LIST    fixed (default: the sequence's positions in consecutive blocks, as\n"
            "                          sov run) and/or paged (scattered over a pool twice as large, in\n"
            "                          descending order, as sov serve's block tables), comma-separated\n"
            "      --no-mmap           read the weights into huge-page memory (default, as sov run)\n"
            "      --mmap              map the file instead\n"
            "      --json              print one JSON object on stdout instead of the table\n"
            "      --json-out FILE     also write that JSON object to FILE (the table still prints)\n"
            "      --no-bw             skip the memory bandwidth measurement (no roofline %%)\n"
            "      --bw-mib N          bandwidth buffer in MiB (default 1024; far above the LLC)\n"
            "pp<N>: N random prompt tokens from position 0. tg<N>: N single-token decode calls\n"
            "after an untimed %d-token prompt. With -d D (\"@ dD\"), both start at position D after\n"
            "an untimed D-token prompt. t/s is the mean +- stddev over the runs.\n",
            TG_PROMPT, TG_PROMPT);
}

typedef struct bench_opts {
    const char *models[MAX_LIST];
    const char *json_out;
    int n_models;
    int32_t threads[MAX_LIST], pp[MAX_LIST], tg[MAX_LIST], depth[MAX_LIST];
    int kv[KV_TYPE_COUNT * 4];
    int n_threads, n_pp, n_tg, n_depth, n_kv; /* n_depth 0: pp at 0, tg at TG_PROMPT */
    bool layout[2];                           /* [0] fixed, [1] paged */
    long long reps, batch, bw_mib;
    bool json, no_bw, use_mmap;
} bench_opts;

/* Parses "a,b,c" of integers in lo..hi into out (cap entries). A list that
 * is exactly "0" (when lo == 0) yields zero entries: no test of that kind.
 * lo < 0: items in 0..hi, and "0" is the one item 0. */
static int parse_list(const char *flag, const char *s, long long lo, long long hi, int32_t *out, int *n)
{
    *n = 0;
    if (lo == 0 && !strcmp(s, "0"))
        return 0;
    if (lo < 0)
        lo = -1; /* opt_int below: lo + 1 = 0 */
    const char *p = s;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char item[32];
        if (len == 0 || len >= sizeof item) {
            fprintf(stderr, "sov bench: %s: bad list '%s' (comma-separated integers)\n", flag, s);
            return 2;
        }
        if (*n == MAX_LIST) {
            fprintf(stderr, "sov bench: %s: at most %d values\n", flag, MAX_LIST);
            return 2;
        }
        memcpy(item, p, len);
        item[len] = 0;
        long long v;
        if (opt_int(flag, item, lo <= 0 ? lo + 1 : lo, hi, &v))
            return 2;
        out[(*n)++] = (int32_t)v;
        if (!comma)
            return 0;
        p = comma + 1;
    }
}

/* Parses "f32,f16" into out (cap entries) as enum kv_type values. */
static int parse_kv_list(const char *s, int *out, int cap, int *n)
{
    *n = 0;
    for (const char *p = s;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char item[16];
        int t = -1;
        if (len > 0 && len < sizeof item) {
            memcpy(item, p, len);
            item[len] = 0;
            t = kv_type_parse(item);
        }
        if (t < 0 || *n == cap) {
            fprintf(stderr, "sov bench: --kv-type: bad list '%s' (comma-separated f32, f16, q8_0)\n", s);
            return 2;
        }
        out[(*n)++] = t;
        if (!comma)
            return 0;
        p = comma + 1;
    }
}

/* Parses "fixed,paged" into o->layout. */
static int parse_layout_list(const char *s, bench_opts *o)
{
    o->layout[0] = o->layout[1] = false;
    for (const char *p = s;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len == 5 && !strncmp(p, "fixed", 5)) {
            o->layout[0] = true;
        } else if (len == 5 && !strncmp(p, "paged", 5)) {
            o->layout[1] = true;
        } else {
            fprintf(stderr, "sov bench: --kv-layout: bad list '%s' (comma-separated fixed, paged)\n", s);
            return 2;
        }
        if (!comma)
            return 0;
        p = comma + 1;
    }
}

static int parse(int argc, char **argv, bench_opts *o)
{
    o->threads[0] = pool_cpu_count();
    o->n_threads = 1;
    o->pp[0] = 512;
    o->n_pp = 1;
    o->tg[0] = 128;
    o->n_tg = 1;
    o->reps = 3;
    o->batch = 512;
    o->kv[0] = KV_F32;
    o->n_kv = 1;
    o->layout[0] = true;
    o->bw_mib = 1024;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        int rc = 0;
#define VAL() do { if (!(v = opt_value(argc, argv, &i))) return 2; } while (0)
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 1;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            VAL();
            if (o->n_models == MAX_LIST) {
                fprintf(stderr, "sov bench: at most %d models\n", MAX_LIST);
                return 2;
            }
            o->models[o->n_models++] = v;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            VAL(); rc = parse_list(a, v, 1, 512, o->threads, &o->n_threads);
        } else if (!strcmp(a, "-p") || !strcmp(a, "--n-prompt")) {
            VAL(); rc = parse_list(a, v, 0, 1 << 24, o->pp, &o->n_pp);
        } else if (!strcmp(a, "-n") || !strcmp(a, "--n-gen")) {
            VAL(); rc = parse_list(a, v, 0, 1 << 24, o->tg, &o->n_tg);
        } else if (!strcmp(a, "-d") || !strcmp(a, "--depth")) {
            VAL(); rc = parse_list(a, v, -1, 1 << 24, o->depth, &o->n_depth);
        } else if (!strcmp(a, "--kv-type")) {
            VAL(); rc = parse_kv_list(v, o->kv, (int)(sizeof o->kv / sizeof o->kv[0]), &o->n_kv);
        } else if (!strcmp(a, "--kv-layout")) {
            VAL(); rc = parse_layout_list(v, o);
        } else if (!strcmp(a, "-r") || !strcmp(a, "--repetitions")) {
            VAL(); rc = opt_int(a, v, 1, 1000, &o->reps);
        } else if (!strcmp(a, "-b") || !strcmp(a, "--batch")) {
            VAL(); rc = opt_int(a, v, 1, 65536, &o->batch);
        } else if (!strcmp(a, "--bw-mib")) {
            VAL(); rc = opt_int(a, v, 1, 1 << 20, &o->bw_mib);
        } else if (!strcmp(a, "--json")) {
            o->json = true;
        } else if (!strcmp(a, "--json-out")) {
            VAL(); o->json_out = v;
        } else if (!strcmp(a, "--no-bw")) {
            o->no_bw = true;
        } else if (!strcmp(a, "--mmap")) {
            o->use_mmap = true;
        } else if (!strcmp(a, "--no-mmap")) {
            o->use_mmap = false;
        } else {
            fprintf(stderr, "sov bench: unknown option '%s' (see sov bench --help)\n", a);
            return 2;
        }
#undef VAL
        if (rc)
            return rc;
    }
    if (!o->n_models) {
        fprintf(stderr, "sov bench: -m MODEL is required (see sov bench --help)\n");
        return 2;
    }
    if (!o->n_threads) {
        fprintf(stderr, "sov bench: -t needs at least one thread count\n");
        return 2;
    }
    if (!o->n_pp && !o->n_tg) {
        fprintf(stderr, "sov bench: nothing to run: -p 0 and -n 0\n");
        return 2;
    }
    return 0;
}

/* ---- small helpers ---- */

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* The "<key>: N kB" line of /proc/self/status in bytes; 0 if unreadable. */
static uint64_t status_bytes(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return 0;
    char line[256];
    size_t kl = strlen(key);
    unsigned long long kb = 0;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, key, kl) && line[kl] == ':' && sscanf(line + kl + 1, "%llu kB", &kb) == 1)
            break;
    fclose(f);
    return (uint64_t)kb * 1024;
}

/* VmHWM (peak resident set) / VmRSS (resident set now) of this process */
static uint64_t peak_rss(void) { return status_bytes("VmHWM"); }
static uint64_t cur_rss(void) { return status_bytes("VmRSS"); }

/* Resets VmHWM to the current RSS (Linux: "5" > /proc/self/clear_refs). */
static bool reset_peak_rss(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f)
        return false;
    bool ok = fputs("5", f) >= 0;
    ok = (fclose(f) == 0) && ok;
    return ok;
}

static void fmt_size(char *buf, size_t cap, uint64_t b)
{
    if (b >= (1ull << 30))
        snprintf(buf, cap, "%.2f GiB", (double)b / (1ull << 30));
    else
        snprintf(buf, cap, "%.2f MiB", (double)b / (1ull << 20));
}

static void fmt_count(char *buf, size_t cap, int64_t n)
{
    if (n >= 1000000000)
        snprintf(buf, cap, "%.2f B", n / 1e9);
    else if (n >= 1000000)
        snprintf(buf, cap, "%.2f M", n / 1e6);
    else
        snprintf(buf, cap, "%.2f K", n / 1e3);
}

/* ---- JSON building: failures (out of memory) are collected in one flag ---- */
/* ---- the machine ---- */

typedef struct machine {
    cpu_peak_info ci;
    uint64_t bw_bytes;
    membw_result bw1;            /* 1 thread */
    membw_result bw[MAX_LIST];   /* per entry of opts.threads */
    double fma[MAX_LIST];        /* measured FMA GFLOP/s per entry of opts.threads */
    const char *fma_kernel;
    membw *buf;                  /* the bandwidth buffer, kept for the runs' own measurements;
                                  * non-NULL once bw[] and bw1 are measured */
    uint64_t buf_rss;            /* what it adds to the resident set */
} machine;

static double peak_gflops(const machine *mc, int ti, int threads)
{
    double th = cpu_peak_theory_gflops(&mc->ci, threads);
    return th > mc->fma[ti] ? th : mc->fma[ti];
}

static int measure_machine(const bench_opts *o, pool **pools, machine *mc)
{
    int rc = 0;
    cpu_peak_info_get(&mc->ci);
    for (int i = 0; i < o->n_threads; i++)
        if ((rc = cpu_fma_measure(pools[i], FMA_PASSES, &mc->fma[i], &mc->fma_kernel)))
            return rc;
    if (o->no_bw)
        return 0;
    membw *b = NULL;
    uint64_t rss0 = cur_rss();
    if ((rc = membw_new(&b, (uint64_t)o->bw_mib << 20)))
        return rc;
    uint64_t rss1 = cur_rss();
    mc->buf_rss = rss1 > rss0 ? rss1 - rss0 : 0;
    mc->bw_bytes = membw_bytes(b);
    int one = -1;
    for (int i = 0; i < o->n_threads; i++) {
        if ((rc = membw_measure(b, pools[i], BW_PASSES, NULL, &mc->bw[i])))
            goto done;
        if (o->threads[i] == 1)
            one = i;
    }
    if (one >= 0)
        mc->bw1 = mc->bw[one];
    else if ((rc = membw_measure(b, NULL, BW_PASSES, NULL, &mc->bw1)))
        goto done;
done:
    if (rc)
        membw_free(b);
    else
        mc->buf = b;
    return rc;
}

/* ---- output ---- */

static int name_w = 5, test_w = 8;

static const char dashes[] = "------------------------------------------------------------------------------------------";

static void table_header(void)
{
    printf("| %-*s | %10s | %9s | %-6s | %-7s | %-6s | %7s | %-*s | %20s | %8s | %8s | %9s | %7s |\n", name_w,
           "model", "size", "params", "type", "backend", "kv", "threads", test_w, "test", "t/s", "GB/s", "roofline",
           "GFLOP/s", "peak");
    printf("| %.*s | ---------: | --------: | ------ | ------- | ------ | ------: | %.*s | -------------------: | "
           "-------: | -------: | --------: | ------: |\n",
           name_w, dashes, test_w, dashes);
}

/* "pp512", "tg128", with -d "tg128 @ d2048" */
static void test_name(char *buf, size_t cap, bool is_pp, int32_t n, bool with_depth, int32_t depth)
{
    if (with_depth)
        snprintf(buf, cap, "%s%d @ d%d", is_pp ? "pp" : "tg", n, depth);
    else
        snprintf(buf, cap, "%s%d", is_pp ? "pp" : "tg", n);
}

static void cell_num(char *buf, size_t cap, double v, const char *fmt)
{
    if (isfinite(v))
        snprintf(buf, cap, fmt, v);
    else
        snprintf(buf, cap, "-");
}

int cmd_bench(int argc, char **argv)
{
    bench_opts o = {0};
    int prc = parse(argc, argv, &o);
    if (prc)
        return prc == 1 ? 0 : prc;
    static char mpaths[MAX_LIST][STORE_PATH_MAX]; /* -m NAME: a model of the models folder */
    for (int i = 0; i < o.n_models; i++)
        if (!(o.models[i] = store_resolve(o.models[i], mpaths[i], sizeof mpaths[i]))) {
            fprintf(stderr, "sov bench: %s\n", err_msg());
            return 1;
        }

    int ret = 1, rc = 0;
    pool *pools[MAX_LIST] = {0};
    machine mc = {0};
    model *m = NULL;
    forward *fw = NULL;
    int32_t *toks = NULL;
    bench_result tr = {0};
    json_t *root = NULL, *jmodels = NULL, *jresults = NULL;
    bool tty = isatty(2), want_json = o.json || o.json_out;
    static char footer[MAX_LIST][768]; /* per-model memory lines of the table output */
    FILE *jf = NULL;                    /* --json-out, opened first so a bad path fails early */

    int32_t max_pp = 0, max_tg = 0;
    for (int i = 0; i < o.n_pp; i++)
        max_pp = o.pp[i] > max_pp ? o.pp[i] : max_pp;
    for (int i = 0; i < o.n_tg; i++)
        max_tg = o.tg[i] > max_tg ? o.tg[i] : max_tg;
    int32_t max_depth = 0;
    for (int i = 0; i < o.n_depth; i++)
        max_depth = o.depth[i] > max_depth ? o.depth[i] : max_depth;
    /* positions a test reaches: pp from its depth (0 without -d), tg from its depth (TG_PROMPT without -d) */
    const int32_t pp_depth = o.n_depth ? max_depth : 0, tg_depth = o.n_depth ? max_depth : TG_PROMPT;
    const int32_t pp_end = o.n_pp ? pp_depth + max_pp : 0, tg_end = o.n_tg ? tg_depth + max_tg : 0;
    int32_t n_ctx = pp_end > tg_end ? pp_end : tg_end;

    if (o.json_out && !(jf = fopen(o.json_out, "w"))) {
        rc = err_set(SOV_EIO, "cannot create %s: %s", o.json_out, strerror(errno));
        goto fail;
    }
    /* every model loads and fits before anything is timed */
    for (int i = 0; i < o.n_models; i++) {
        if ((rc = model_load(&m, o.models[i])))
            goto fail;
        int32_t train = m->hp.n_ctx_train;
        model_free(m);
        m = NULL;
        if (pp_end > train) {
            if (o.n_depth)
                rc = err_set(SOV_ERANGE, "-p %d at depth %d exceeds the training context of %s (%d tokens)", max_pp,
                             pp_depth, o.models[i], train);
            else
                rc = err_set(SOV_ERANGE, "-p %d exceeds the training context of %s (%d tokens)", max_pp,
                             o.models[i], train);
            goto fail;
        }
        if (tg_end > train) {
            if (o.n_depth)
                rc = err_set(SOV_ERANGE, "-n %d at depth %d exceeds the training context of %s (%d tokens)", max_tg,
                             tg_depth, o.models[i], train);
            else
                rc = err_set(SOV_ERANGE,
                             "-n %d plus the %d-token tg prompt exceeds the training context of %s (%d tokens)",
                             max_tg, TG_PROMPT, o.models[i], train);
            goto fail;
        }
        int w = (int)strlen(base_name(o.models[i]));
        if (w > name_w)
            name_w = w;
    }
    for (int k = 0; k < (o.n_pp + o.n_tg) * (o.n_depth ? o.n_depth : 1); k++) {
        const int kt = k / (o.n_depth ? o.n_depth : 1);
        char t[48];
        test_name(t, sizeof t, kt < o.n_pp, kt < o.n_pp ? o.pp[kt] : o.tg[kt - o.n_pp], o.n_depth > 0,
                  o.n_depth ? o.depth[k % o.n_depth] : 0);
        if ((int)strlen(t) > test_w)
            test_w = (int)strlen(t);
    }

    for (int i = 0; i < o.n_threads; i++)
        if ((rc = pool_new(&pools[i], o.threads[i])))
            goto fail;
    if (tty)
        fprintf(stderr, "sov bench: measuring the machine...\n");
    if (!o.no_bw && o.bw_mib < 512)
        fprintf(stderr, "sov bench: warning: a %lld MiB bandwidth buffer may be partly cache-resident; "
                        "the bandwidth would be overstated and the roofline %% understated\n", o.bw_mib);
    if ((rc = measure_machine(&o, pools, &mc)))
        goto fail;
    const char *backend = kern_best()->name;

    tr.runs = calloc((size_t)o.reps, sizeof *tr.runs);
    tr.bw_runs = calloc((size_t)o.reps, sizeof *tr.bw_runs);
    int32_t n_tok = n_ctx;
    toks = malloc(sizeof *toks * (size_t)n_tok);
    if (!tr.runs || !tr.bw_runs || !toks) {
        rc = err_set(SOV_ENOMEM, "out of memory");
        goto fail;
    }

    /* header: the machine */
    if (want_json) {
        root = json_object();
        jmodels = json_array();
        jresults = json_array();
        json_t *cpu = json_object(), *jbw = mc.buf ? json_array() : json_null(), *jpk = json_array();
        if (!root || !jmodels || !jresults || !cpu || !jbw || !jpk) {
            json_decref(cpu);
            json_decref(jbw);
            json_decref(jpk);
            rc = err_set(SOV_ENOMEM, "out of memory");
            goto fail;
        }
        jset(root, "backend", json_string(backend));
        jset(cpu, "mhz", jnum(mc.ci.mhz));
        jset(cpu, "mhz_source", json_string(mc.ci.mhz_source));
        jset(cpu, "flop_per_cycle", json_integer(mc.ci.flop_per_cycle));
        jset(cpu, "basis", json_string(mc.ci.basis));
        jset(cpu, "n_cpus", json_integer(pool_cpu_count()));
        jset(root, "cpu", cpu);
        if (mc.buf) {
            for (int i = -1; i < o.n_threads; i++) {
                const membw_result *b = i < 0 ? &mc.bw1 : &mc.bw[i];
                if (i >= 0 && o.threads[i] == 1)
                    continue; /* already listed as the 1-thread entry */
                json_t *e = json_object();
                jset(e, "threads", json_integer(b->threads));
                jset(e, "gbps", jnum(b->gbps));
                jset(e, "mean_gbps", jnum(b->mean_gbps));
                jset(e, "kernel", json_string(b->kernel));
                jset(e, "passes", json_integer(b->passes));
                jset(e, "buffer_bytes", json_integer((json_int_t)mc.bw_bytes));
                jpush(jbw, e);
            }
        }
        jset(root, "bandwidth", jbw);
        for (int i = 0; i < o.n_threads; i++) {
            json_t *e = json_object();
            jset(e, "threads", json_integer(o.threads[i]));
            jset(e, "theory_gflops", jnum(cpu_peak_theory_gflops(&mc.ci, o.threads[i])));
            jset(e, "measured_gflops", jnum(mc.fma[i]));
            jset(e, "measured_kernel", json_string(mc.fma_kernel));
            jset(e, "used_gflops", jnum(peak_gflops(&mc, i, o.threads[i])));
            jpush(jpk, e);
        }
        jset(root, "peak", jpk);
        json_t *jt = json_object();
        jset(jt, "tg_prompt", json_integer(TG_PROMPT));
        jset(jt, "repetitions", json_integer(o.reps));
        jset(jt, "batch", json_integer(o.batch));
        jset(jt, "n_ctx", json_integer(n_ctx));
        json_t *jd = o.n_depth ? json_array() : json_null(), *jk = json_array();
        for (int i = 0; i < o.n_depth; i++)
            jpush(jd, json_integer(o.depth[i]));
        for (int i = 0; i < o.n_kv; i++)
            jpush(jk, json_string(kv_type_name(o.kv[i])));
        jset(jt, "depths", jd);
        jset(jt, "kv_types", jk);
        json_t *jl = json_array();
        for (int i = 0; i < 2; i++)
            if (o.layout[i])
                jpush(jl, json_string(i ? "paged" : "fixed"));
        jset(jt, "kv_layouts", jl);
        jset(root, "settings", jt);
        json_incref(jmodels);
        jset(root, "models", jmodels);
        json_incref(jresults);
        jset(root, "results", jresults);
    }
    if (!o.json) {
        if (mc.buf) {
            printf("memory read bandwidth (%.0f MiB buffer, best of %d passes per kernel): 1 thread %.1f GB/s (%s)",
                   (double)mc.bw_bytes / (1 << 20), BW_PASSES, mc.bw1.gbps, mc.bw1.kernel);
            for (int i = 0; i < o.n_threads; i++)
                if (o.threads[i] != 1)
                    printf(", %d threads %.1f GB/s (%s)", o.threads[i], mc.bw[i].gbps, mc.bw[i].kernel);
            printf("\n");
        } else {
            printf("memory read bandwidth: not measured (--no-bw)\n");
        }
        if (mc.ci.flop_per_cycle > 0 && mc.ci.mhz > 0)
            printf("fp32 peak, theory: threads x %.0f MHz (%s) x %d flop/cycle (%s) = %.1f GFLOP/s per thread\n",
                   mc.ci.mhz, mc.ci.mhz_source, mc.ci.flop_per_cycle, mc.ci.basis,
                   cpu_peak_theory_gflops(&mc.ci, 1));
        else
            printf("fp32 peak, theory: unknown (%s; clock from %s)\n", mc.ci.basis, mc.ci.mhz_source);
        printf("fp32 peak, measured (%s FMA chains):", mc.fma_kernel);
        for (int i = 0; i < o.n_threads; i++)
            printf("%s %d thread%s %.1f GFLOP/s", i ? "," : "", o.threads[i], o.threads[i] == 1 ? "" : "s", mc.fma[i]);
        printf("; %% peak uses the larger of theory and measured\n\n");
        table_header();
        fflush(stdout);
    }

    for (int mi = 0; mi < o.n_models; mi++) {
        const char *path = o.models[mi], *name = base_name(path);
        bool rss_reset = reset_peak_rss();
        progress *bar = progress_new(NULL, 0, PROGRESS_BYTES); /* NULL unless stderr is a terminal */
        rc = model_load_progress(&m, path, o.use_mmap, bar);
        progress_done(bar);
        if (rc)
            goto fail;
        model_cost cost;
        if ((rc = model_cost_get(m, &cost)))
            goto fail;
        bench_tokens(BENCH_TOKEN_SEED, m->hp.n_vocab, toks, n_tok);
        char size_s[32], params_s[32];
        fmt_size(size_s, sizeof size_s, m->g->size);
        fmt_count(params_s, sizeof params_s, cost.params);
        const char *type = ttype_name(cost.type);

        for (int tk = 0; tk < o.n_threads * o.n_kv * 2; tk++) { /* thread counts x KV types x layouts */
            const int ti = tk / (o.n_kv * 2), ki = tk / 2 % o.n_kv, paged = tk % 2;
            if (!o.layout[paged])
                continue;
            int th = o.threads[ti];
            const int kvt = o.kv[ki];
            char kvn[16]; /* "f16", paged "f16 pg" */
            snprintf(kvn, sizeof kvn, "%s%s", kv_type_name(kvt), paged ? " pg" : "");
            model_cost kcost; /* the KV bytes of this cache type */
            if ((rc = model_cost_get_kv(m, kvt, &kcost)))
                goto fail;
            /* paged: the sequence's tiles in every other block of a pool of
             * twice its size, last block first, as blocks taken from a
             * shared pool lie */
            const int32_t n_tile = (n_ctx + KV_TILE - 1) / KV_TILE;
            if ((rc = forward_new_kv(&fw, m, n_ctx, 1, paged ? 2 * n_tile : 0, kvt, pools[ti])) ||
                (rc = forward_set_batch(fw, (int32_t)(o.batch < n_ctx ? o.batch : n_ctx))))
                goto fail;
            for (int32_t t = 0; paged && t < n_tile; t++)
                if ((rc = forward_map(fw, 0, t, 2 * n_tile - 1 - 2 * t)))
                    goto fail;
            for (int k = 0; k < (o.n_pp + o.n_tg) * (o.n_depth ? o.n_depth : 1); k++) {
                const int kt = k / (o.n_depth ? o.n_depth : 1), di = k % (o.n_depth ? o.n_depth : 1);
                bool is_pp = kt < o.n_pp;
                int32_t n = is_pp ? o.pp[kt] : o.tg[kt - o.n_pp];
                const int32_t depth = o.n_depth ? o.depth[di] : is_pp ? 0 : TG_PROMPT;
                char test[48];
                test_name(test, sizeof test, is_pp, n, o.n_depth > 0, depth);
                if (tty)
                    fprintf(stderr, "sov bench: %s, %d thread%s, kv %s, %s...\n", name, th, th == 1 ? "" : "s", kvn,
                            test);
                bench_test bt = {.is_pp = is_pp, .toks = toks, .depth = depth, .n = n, .reps = (int)o.reps,
                                 .bw = mc.buf, .bw_pool = pools[ti]};
                if ((rc = bench_run(fw, &bt, &tr)))
                    goto fail;
                double gflops = NAN, peak_pct = NAN, bpt = NAN, gbps = NAN, roof = NAN, avg_ctx = NAN;
                if (is_pp) {
                    gflops = model_cost_matrix_flops(&cost, n, 1) * tr.mean / n / 1e9;
                    double pk = peak_gflops(&mc, ti, th);
                    if (pk > 0)
                        peak_pct = 100.0 * gflops / pk;
                } else {
                    avg_ctx = depth + (n + 1) / 2.0; /* token at position p reads p + 1 positions */
                    bpt = model_cost_token_bytes(&kcost, avg_ctx);
                    gbps = tr.mean * bpt / 1e9;
                    if (mc.buf) { /* each run against the bandwidth measured right after it */
                        roof = 0;
                        for (int r = 0; r < o.reps; r++)
                            roof += 100.0 * tr.runs[r] * bpt / 1e9 / tr.bw_runs[r] / (double)o.reps;
                    }
                }
                if (want_json) {
                    json_t *e = json_object(), *runs = json_array();
                    if (!e || !runs) {
                        json_decref(e);
                        json_decref(runs);
                        rc = err_set(SOV_ENOMEM, "out of memory");
                        goto fail;
                    }
                    jset(e, "model", json_string(name));
                    jset(e, "threads", json_integer(th));
                    jset(e, "kv_type", json_string(kv_type_name(kvt)));
                    jset(e, "kv_layout", json_string(paged ? "paged" : "fixed"));
                    jset(e, "test", json_string(test));
                    jset(e, "kind", json_string(is_pp ? "pp" : "tg"));
                    jset(e, "n_tokens", json_integer(n));
                    jset(e, "n_before", json_integer(depth));
                    jset(e, "kv_bytes_per_pos", json_integer((json_int_t)kcost.kv_bytes_pos));
                    for (int r = 0; r < o.reps; r++)
                        jpush(runs, jnum(tr.runs[r]));
                    jset(e, "runs_tps", runs);
                    jset(e, "tps_mean", jnum(tr.mean));
                    jset(e, "tps_stddev", jnum(tr.sd));
                    jset(e, "gflops", jnum(gflops));
                    jset(e, "peak_pct", jnum(peak_pct));
                    jset(e, "avg_ctx", jnum(avg_ctx));
                    jset(e, "bytes_per_token", jnum(bpt));
                    jset(e, "gbps", jnum(gbps));
                    jset(e, "roofline_pct", jnum(roof));
                    if (!is_pp && mc.buf) {
                        json_t *bwr = json_array();
                        for (int r = 0; bwr && r < o.reps; r++)
                            jpush(bwr, jnum(tr.bw_runs[r]));
                        jset(e, "bw_gbps_runs", bwr);
                    }
                    jpush(jresults, e);
                }
                if (!o.json) {
                    char tps[48], c_gbps[16], c_roof[16], c_gf[16], c_pk[16];
                    snprintf(tps, sizeof tps, "%.2f ± %.2f", tr.mean, tr.sd);
                    cell_num(c_gbps, sizeof c_gbps, gbps, "%.2f");
                    cell_num(c_roof, sizeof c_roof, roof, "%.1f %%");
                    cell_num(c_gf, sizeof c_gf, gflops, "%.2f");
                    cell_num(c_pk, sizeof c_pk, peak_pct, "%.1f %%");
                    /* "±" is two bytes but one column: pad by one more */
                    printf("| %-*s | %10s | %9s | %-6s | %-7s | %-6s | %7d | %-*s | %21s | %8s | %8s | %9s | %7s |\n",
                           name_w, name, size_s, params_s, type, backend, kvn, th, test_w, test, tps, c_gbps, c_roof,
                           c_gf, c_pk);
                    fflush(stdout);
                }
            }
            forward_free(fw);
            fw = NULL;
        }

        /* less the bandwidth buffer, resident all along */
        uint64_t rss = peak_rss(), kv_pos = kv_bytes_per_token(&m->hp, o.kv[0]), kvb = kv_pos * (uint64_t)n_ctx;
        rss = rss > mc.buf_rss ? rss - mc.buf_rss : 0;
        if (want_json) {
            json_t *e = json_object();
            jset(e, "model", json_string(name));
            jset(e, "path", json_string(path));
            jset(e, "file_bytes", json_integer((json_int_t)m->g->size));
            jset(e, "params", json_integer(cost.params));
            jset(e, "type", json_string(type));
            jset(e, "weight_bytes_per_token", json_integer((json_int_t)cost.weight_bytes_token));
            jset(e, "kv_type", json_string(kv_type_name(o.kv[0])));
            jset(e, "kv_bytes_per_pos", json_integer((json_int_t)kv_pos));
            jset(e, "layer_matrix_params", json_integer(cost.layer_matrix_params));
            jset(e, "output_params", json_integer(cost.output_params));
            jset(e, "n_ctx", json_integer(n_ctx));
            jset(e, "kv_bytes", json_integer((json_int_t)kvb));
            json_t *kb = json_array();
            for (int i = 0; i < o.n_kv; i++) {
                json_t *x = json_object();
                jset(x, "kv_type", json_string(kv_type_name(o.kv[i])));
                jset(x, "kv_bytes_per_pos", json_integer((json_int_t)kv_bytes_per_token(&m->hp, o.kv[i])));
                jset(x, "kv_bytes", json_integer((json_int_t)(kv_bytes_per_token(&m->hp, o.kv[i]) * (uint64_t)n_ctx)));
                jpush(kb, x);
            }
            jset(e, "kv_by_type", kb);
            jset(e, "peak_rss_bytes", json_integer((json_int_t)rss));
            jset(e, "peak_rss_reset", json_boolean(rss_reset));
            jset(e, "mmap", json_boolean(o.use_mmap));
            jpush(jmodels, e);
        }
        if (!o.json) {
            char f_s[32], kv_s[160] = "", rss_s[32], w_s[32], kvp_s[160] = "";
            fmt_size(f_s, sizeof f_s, m->g->size);
            fmt_size(rss_s, sizeof rss_s, rss);
            fmt_size(w_s, sizeof w_s, cost.weight_bytes_token);
            for (int i = 0; i < o.n_kv; i++) { /* "f32 1.25 MiB / f16 0.62 MiB" */
                char one[32];
                uint64_t per = kv_bytes_per_token(&m->hp, o.kv[i]);
                fmt_size(one, sizeof one, per * (uint64_t)n_ctx);
                size_t a = strlen(kv_s), b = strlen(kvp_s);
                snprintf(kv_s + a, sizeof kv_s - a, "%s%s %s", i ? " / " : "", kv_type_name(o.kv[i]), one);
                snprintf(kvp_s + b, sizeof kvp_s - b, "%s%s %.2f", i ? " / " : "", kv_type_name(o.kv[i]),
                         (double)per / 1024);
            }
            /* printed after the table, which stays contiguous */
            snprintf(footer[mi], sizeof footer[mi],
                     "%s: peak RSS %s%s%s; file %s (%s) + KV cache %s (%d positions) + scratch; "
                     "weights read per token %s, KV per position %s KiB",
                     name, rss_s, mc.buf ? " (less the bandwidth buffer)" : "",
                     rss_reset ? "" : " (process peak: reset failed)", f_s,
                     o.use_mmap ? "mmap" : "read into memory", kv_s, n_ctx, w_s, kvp_s);
        }
        model_free(m);
        m = NULL;
    }

    if (!o.json) {
        printf("\nGB/s = t/s x bytes streamed per token (weights + KV cache of the row's kv type at the run's\n"
               "average position);\n"
               "roofline = GB/s / read bandwidth at that thread count, measured right after each timed run\n"
               "(mean of the runs' ratios; a bound only when the bytes per token far exceed the last-level\n"
               "cache); GFLOP/s = matrix flops only (attention excluded)\n");
        printf("\nmemory:\n");
        for (int k = 0; k < o.n_models; k++)
            printf("  %s\n", footer[k]);
    }
    if (want_json) {
        if (json_bad) {
            rc = err_set(SOV_ENOMEM, "out of memory building the JSON output");
            goto fail;
        }
        size_t flags = JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10);
        if (o.json && (json_dumpf(root, stdout, flags) || fputc('\n', stdout) == EOF)) {
            rc = err_set(SOV_EIO, "cannot write the JSON output");
            goto fail;
        }
        if (jf) {
            bool ok = json_dumpf(root, jf, flags) == 0 && fputc('\n', jf) != EOF;
            ok = fclose(jf) == 0 && ok;
            jf = NULL;
            if (!ok) {
                rc = err_set(SOV_EIO, "cannot write %s", o.json_out);
                goto fail;
            }
        }
    }
    fflush(stdout);
    ret = 0;
    goto done;
fail:
    (void)rc;
    fprintf(stderr, "sov bench: %s\n", err_msg());
    if (jf) { /* no partial JSON file is left behind */
        fclose(jf);
        jf = NULL;
        unlink(o.json_out);
    }
done:
    if (jf)
        fclose(jf);
    json_decref(jmodels);
    json_decref(jresults);
    json_decref(root);
    free(tr.runs);
    free(tr.bw_runs);
    membw_free(mc.buf);
    free(toks);
    forward_free(fw);
    model_free(m);
    for (int i = 0; i < o.n_threads; i++)
        pool_free(pools[i]);
    return ret;
}
