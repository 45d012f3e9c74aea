/* sov plan: capacity and economics, with the arithmetic shown: will a model
 * fit, how fast will it run, what does it save against cloud prices, and
 * which published claims hold. */
#include "cmd.h"
#include "jout.h"
#include "opt.h"

#include "../base/err.h"
#include "../plan/calib.h"
#include "../plan/catalog.h"
#include "../plan/check.h"
#include "../plan/gguf.h"
#include "../plan/hw.h"
#include "../plan/net.h"
#include "../plan/plan.h"
#include "../plan/report.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define MAX_MODELS 32
#define MAX_HW 32
#define MAX_CHECKS 32
#define REPORT_MODEL PLAN_REPORT_MODEL
#define RTT_N 200

static void usage(FILE *f)
{
    fprintf(f,
            "usage: sov plan [MODEL ...] [options]\n"
            "Capacity and economics with the arithmetic shown. MODEL is a catalogue id (--list) or a GGUF file.\n"
            "\n"
            "  -m, --model FILE      a GGUF file (its own tensor sizes and types; same as a MODEL argument)\n"
            "      --hw LIST         hardware ids, comma-separated (default: every profile, and `this` when\n"
            "                        calibrated); `this` is the current machine, calibrated or measured now\n"
            "  -q, --quant Q         quant of catalogue models (default q4_k_m; a GGUF keeps its own types)\n"
            "  -c, --ctx N           context positions (default 8192); speeds read the KV of half of them\n"
            "      --parallel N      parallel sequences (default 1)\n"
            "      --kv-type T       KV cache type: f16 (default), q8_0, f32\n"
            "      --reserve-gb X    memory kept for the OS and apps (default: each profile's reserve_gb)\n"
            "economics (defaults say where they come from):\n"
            "      --price-in X      cloud API price per 1M input tokens (default 2.50)\n"
            "      --price-out X     cloud API price per 1M output tokens (default 10.00)\n"
            "      --in-out-ratio X  input tokens per output token (default 1)\n"
            "      --tariff X        electricity per kWh (default 0.17)\n"
            "      --currency C      currency of every price (default USD; the profiles' prices are USD)\n"
            "      --duty X          share of the day generating, 0..1 (default 1)\n"
            "      --months N        hardware written off over N months (default 36)\n"
            "      --a ID, --b ID    the workstation and the box of the hybrid (default ryzen-ai-max-395,\n"
            "                        dgx-spark)\n"
            "      --cloud ID        the rented cloud GPU instance (default cloud-h100)\n"
            "claims:\n"
            "      --check CLAIM     judge a claim, e.g. \"70B Q4 on ryzen-ai-max-395 at 8 tok/s\" (repeatable;\n"
            "                        exit status 3 when one is judged impossible or wrong)\n"
            "      --report          the comparison report: A, B, hybrid and cloud side by side for %s\n"
            "                        and a verdict on every claim of a typical published comparison\n"
            "      --rtt-url URL     measure the round trip to a box (GET URL, e.g. http://box:8080/health)\n"
            "                        for the link claim (default: TCP over loopback, measured here)\n"
            "calibration:\n"
            "      --calibrate       measure this machine's efficiency factors with the engine's bench on\n"
            "                        synthetic models, and store them (later runs predict `this` with them)\n"
            "      --calib FILE      the calibration file (default $SOV_PLAN_CALIB, else\n"
            "                        ~/.local/share/sov/plan-calibration.ini)\n"
            "      --cache DIR       where --calibrate keeps its synthetic models (default ~/.cache/sov/plan)\n"
            "  -t, --threads N       threads for --calibrate (default: every CPU)\n"
            "output:\n"
            "      --json            one JSON object on stdout instead of the tables\n"
            "      --html FILE       also write a self-contained HTML report with SVG charts\n"
            "      --list            the catalogue and the hardware profiles\n"
            "      --hw-file FILE    hardware profiles (default data/plan/hardware.ini next to the binary)\n",
            REPORT_MODEL);
}

typedef struct plan_opts {
    const char *models[MAX_MODELS];
    int n_models;
    const char *hw_list, *hw_file, *quant, *html, *rtt_url, *calib, *cache;
    const char *a, *b, *cloud;
    const char *checks[MAX_CHECKS];
    int n_checks;
    long long ctx, parallel, threads, months;
    double reserve_gb, kv_bpe;
    const char *kv_name;
    plan_prices prices;
    const char *price_src[3];
    bool json, report, list, calibrate;
} plan_opts;

static int parse(int argc, char **argv, plan_opts *o)
{
    o->quant = PLAN_REPORT_QUANT;
    o->ctx = PLAN_REPORT_CTX;
    o->parallel = 1;
    o->reserve_gb = -1;
    o->kv_bpe = 2;
    o->kv_name = "f16";
    o->a = PLAN_REPORT_A;
    o->b = PLAN_REPORT_B;
    o->cloud = PLAN_REPORT_CLOUD;
    plan_prices_default(&o->prices, o->price_src);
    static char src_override[3][160];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        double d;
        int rc;
#define VAL()                                  \
    do {                                       \
        if (!(v = opt_value(argc, argv, &i)))  \
            return 2;                          \
    } while (0)
#define FLT(flag, lo, hi, dst, srcidx)                              \
    do {                                                            \
        VAL();                                                      \
        if ((rc = opt_float(flag, v, lo, hi, &d)))                  \
            return rc;                                              \
        dst = d;                                                    \
        if (srcidx >= 0) {                                          \
            snprintf(src_override[srcidx], sizeof src_override[0], \
                     "%s %s: given on the command line", flag, v);  \
            o->price_src[srcidx] = src_override[srcidx];            \
        }                                                           \
    } while (0)
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 1;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            VAL();
            if (o->n_models == MAX_MODELS) {
                fprintf(stderr, "sov plan: at most %d models\n", MAX_MODELS);
                return 2;
            }
            o->models[o->n_models++] = v;
        } else if (!strcmp(a, "--hw")) {
            VAL();
            o->hw_list = v;
        } else if (!strcmp(a, "--hw-file")) {
            VAL();
            o->hw_file = v;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quant")) {
            VAL();
            if (plan_quant_bpw(v) <= 0) {
                fprintf(stderr, "sov plan: --quant: unknown quant '%s' (one of", v);
                for (const char *const *q = plan_quants(); *q; q++)
                    fprintf(stderr, " %s", *q);
                fprintf(stderr, ")\n");
                return 2;
            }
            o->quant = v;
        } else if (!strcmp(a, "-c") || !strcmp(a, "--ctx")) {
            VAL();
            if ((rc = opt_int(a, v, 0, 100000000, &o->ctx)))
                return rc;
        } else if (!strcmp(a, "--parallel")) {
            VAL();
            if ((rc = opt_int(a, v, 1, 100000, &o->parallel)))
                return rc;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            VAL();
            if ((rc = opt_int(a, v, 1, 4096, &o->threads)))
                return rc;
        } else if (!strcmp(a, "--months")) {
            VAL();
            if ((rc = opt_int(a, v, 1, 1200, &o->months)))
                return rc;
            o->prices.amortize_months = (double)o->months;
            snprintf(src_override[2], sizeof src_override[2], "--months %s: given on the command line", v);
            o->price_src[2] = src_override[2];
        } else if (!strcmp(a, "--kv-type")) {
            VAL();
            if (!strcasecmp(v, "f16"))
                o->kv_bpe = 2;
            else if (!strcasecmp(v, "f32"))
                o->kv_bpe = 4;
            else if (!strcasecmp(v, "q8_0"))
                o->kv_bpe = plan_quant_bpw("q8_0");
            else {
                fprintf(stderr, "sov plan: --kv-type: '%s' is not f16, q8_0 or f32\n", v);
                return 2;
            }
            o->kv_name = v;
        } else if (!strcmp(a, "--reserve-gb")) {
            FLT(a, 0, 1e6, o->reserve_gb, -1);
        } else if (!strcmp(a, "--price-in")) {
            FLT(a, 0, 1e6, o->prices.in_per_m, 0);
        } else if (!strcmp(a, "--price-out")) {
            FLT(a, 0, 1e6, o->prices.out_per_m, 0);
        } else if (!strcmp(a, "--in-out-ratio")) {
            FLT(a, 0, 1e6, o->prices.in_out_ratio, 0);
        } else if (!strcmp(a, "--tariff")) {
            FLT(a, 0, 1e3, o->prices.tariff_kwh, 1);
        } else if (!strcmp(a, "--duty")) {
            FLT(a, 0, 1, o->prices.duty, 2);
        } else if (!strcmp(a, "--currency")) {
            VAL();
            if (strlen(v) < 1 || strlen(v) >= sizeof o->prices.currency) {
                fprintf(stderr, "sov plan: --currency: '%s' is not a currency code (e.g. EUR)\n", v);
                return 2;
            }
            snprintf(o->prices.currency, sizeof o->prices.currency, "%s", v);
        } else if (!strcmp(a, "--a")) {
            VAL();
            o->a = v;
        } else if (!strcmp(a, "--b")) {
            VAL();
            o->b = v;
        } else if (!strcmp(a, "--cloud")) {
            VAL();
            o->cloud = v;
        } else if (!strcmp(a, "--check")) {
            VAL();
            if (o->n_checks == MAX_CHECKS) {
                fprintf(stderr, "sov plan: at most %d --check claims\n", MAX_CHECKS);
                return 2;
            }
            o->checks[o->n_checks++] = v;
        } else if (!strcmp(a, "--report")) {
            o->report = true;
        } else if (!strcmp(a, "--rtt-url")) {
            VAL();
            o->rtt_url = v;
        } else if (!strcmp(a, "--calibrate")) {
            o->calibrate = true;
        } else if (!strcmp(a, "--calib")) {
            VAL();
            o->calib = v;
        } else if (!strcmp(a, "--cache")) {
            VAL();
            o->cache = v;
        } else if (!strcmp(a, "--json")) {
            o->json = true;
        } else if (!strcmp(a, "--html")) {
            VAL();
            o->html = v;
        } else if (!strcmp(a, "--list")) {
            o->list = true;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "sov plan: unknown option '%s'\n", a);
            return 2;
        } else {
            if (o->n_models == MAX_MODELS) {
                fprintf(stderr, "sov plan: at most %d models\n", MAX_MODELS);
                return 2;
            }
            o->models[o->n_models++] = a;
        }
#undef VAL
#undef FLT
    }
    return 0;
}

/* ---- formatting ---- */

static const char *gb(char *b, size_t cap, double bytes)
{
    if (!isfinite(bytes))
        snprintf(b, cap, "-");
    else if (bytes >= 100e9)
        snprintf(b, cap, "%.0f GB", bytes / 1e9);
    else if (bytes >= 1e9)
        snprintf(b, cap, "%.1f GB", bytes / 1e9);
    else
        snprintf(b, cap, "%.0f MB", bytes / 1e6);
    return b;
}

static const char *rate(char *b, size_t cap, double t)
{
    if (!isfinite(t) || t <= 0)
        snprintf(b, cap, "-");
    else if (t >= 100)
        snprintf(b, cap, "%.0f", t);
    else if (t >= 10)
        snprintf(b, cap, "%.1f", t);
    else
        snprintf(b, cap, "%.2f", t);
    return b;
}

static const char *count(char *b, size_t cap, double x)
{
    if (!isfinite(x))
        snprintf(b, cap, "never");
    else if (x >= 1e9)
        snprintf(b, cap, "%.2f G", x / 1e9);
    else if (x >= 1e6)
        snprintf(b, cap, "%.2f M", x / 1e6);
    else if (x >= 1e4)
        snprintf(b, cap, "%.0f k", x / 1e3);
    else
        snprintf(b, cap, "%.0f", x);
    return b;
}

static const char *money(char *b, size_t cap, const plan_prices *p, double x)
{
    bool usd = !strcmp(p->currency, "USD");
    if (!isfinite(x))
        snprintf(b, cap, "-");
    else if (fabs(x) >= 1000)
        snprintf(b, cap, usd ? "$%.0f" : "%.0f %s", x, p->currency);
    else
        snprintf(b, cap, usd ? "$%.2f" : "%.2f %s", x, p->currency);
    return b;
}

/* A text table: cells in rows, printed with columns padded to fit. */
#define TBL_COLS 14
#define TBL_ROWS 400
typedef struct tbl {
    int ncol, nrow;
    char cell[TBL_ROWS][TBL_COLS][40];
    bool right[TBL_COLS];
} tbl;

static void tbl_row(tbl *t, const char *const *cells)
{
    if (t->nrow >= TBL_ROWS)
        return;
    for (int c = 0; c < t->ncol; c++)
        snprintf(t->cell[t->nrow][c], sizeof t->cell[0][0], "%s", cells[c] ? cells[c] : "");
    t->nrow++;
}

static void tbl_print(const tbl *t)
{
    int w[TBL_COLS] = {0};
    for (int r = 0; r < t->nrow; r++)
        for (int c = 0; c < t->ncol; c++) {
            int l = (int)strlen(t->cell[r][c]);
            w[c] = l > w[c] ? l : w[c];
        }
    for (int r = 0; r < t->nrow; r++) {
        for (int c = 0; c < t->ncol; c++)
            printf(c ? "  %*s" : "  %-*s", t->right[c] && c ? w[c] : -w[c], t->cell[r][c]);
        printf("\n");
        if (r == 0) {
            for (int c = 0; c < t->ncol; c++) {
                printf("  ");
                for (int i = 0; i < w[c]; i++)
                    putchar('-');
            }
            printf("\n");
        }
    }
}

/* ---- models and hardware ---- */

typedef struct pmodel {
    plan_model m;
    char quant[16];      /* the quant planned ("file" for a GGUF) */
    char file_type[16];  /* a GGUF's main matrix type ("q4_0"), for the calibrated efficiency */
    bool from_file;
} pmodel;

static bool looks_like_file(const char *s)
{
    size_t l = strlen(s);
    return strchr(s, '/') || (l > 5 && !strcasecmp(s + l - 5, ".gguf"));
}

static int load_models(const plan_opts *o, pmodel *pm, int *n)
{
    *n = 0;
    for (int i = 0; i < o->n_models; i++) {
        pmodel *p = &pm[(*n)++];
        memset(p, 0, sizeof *p);
        const plan_model *c = looks_like_file(o->models[i]) ? NULL : plan_catalog_find(o->models[i]);
        if (c) {
            p->m = *c;
            snprintf(p->quant, sizeof p->quant, "%s", o->quant);
            snprintf(p->file_type, sizeof p->file_type, "%s", o->quant);
            continue;
        }
        if (!looks_like_file(o->models[i])) {
            int nc;
            const plan_model *cat = plan_catalog(&nc);
            fprintf(stderr, "sov plan: '%s' is neither a catalogue model nor a .gguf file (catalogue:", o->models[i]);
            for (int k = 0; k < nc; k++)
                fprintf(stderr, " %s", cat[k].id);
            fprintf(stderr, ")\n");
            return 2;
        }
        int rc = plan_gguf_model(o->models[i], &p->m, p->file_type, sizeof p->file_type);
        if (rc) {
            fprintf(stderr, "sov plan: %s\n", err_msg());
            return 1;
        }
        p->from_file = true;
        snprintf(p->quant, sizeof p->quant, "file");
    }
    return 0;
}

typedef struct hwset {
    plan_hw *file;      /* the profiles of the data file (plan_hw_free) */
    int n_file;
    plan_hw all[MAX_HW];/* the file's and `this` */
    int n_all;
    int sel[MAX_HW];    /* the ones to show: indexes into all */
    int n_sel;
    bool have_this, this_calibrated;
    plan_calib calib;   /* valid when this_calibrated */
    char calib_path[512];
} hwset;

/* The current machine: its calibration when one is stored, else measured now. */
static int load_this(const plan_opts *o, hwset *h, bool measure)
{
    char buf[512];
    const char *path = o->calib ? o->calib : plan_calib_default_path(buf, sizeof buf);
    if (path) {
        snprintf(h->calib_path, sizeof h->calib_path, "%s", path);
        int rc = plan_calib_load(path, &h->calib);
        if (rc == 0) {
            h->all[h->n_all++] = h->calib.hw;
            h->have_this = h->this_calibrated = true;
            return 0;
        }
        if (rc != SOV_ENOTFOUND) {
            fprintf(stderr, "sov plan: %s\n", err_msg());
            return 1;
        }
    }
    if (!measure)
        return 0;
    plan_hw t;
    if (plan_hw_this(&t)) {
        fprintf(stderr, "sov plan: measuring this machine: %s\n", err_msg());
        return 1;
    }
    h->all[h->n_all++] = t;
    h->have_this = true;
    return 0;
}

static int load_hw(const plan_opts *o, hwset *h)
{
    char buf[512];
    const char *path = o->hw_file ? o->hw_file : plan_hw_default_path(buf, sizeof buf);
    if (!path || plan_hw_load(path, &h->file, &h->n_file)) {
        fprintf(stderr, "sov plan: %s\n", path ? err_msg() : "hardware file path too long");
        return 1;
    }
    for (int i = 0; i < h->n_file && h->n_all < MAX_HW - 1; i++)
        h->all[h->n_all++] = h->file[i];
    bool want_this = o->hw_list && strstr(o->hw_list, "this");
    int rc = load_this(o, h, want_this);
    if (rc)
        return rc;
    if (!o->hw_list) {
        for (int i = 0; i < h->n_all; i++)
            h->sel[h->n_sel++] = i;
        return 0;
    }
    char list[512];
    snprintf(list, sizeof list, "%s", o->hw_list);
    char *save = NULL;
    for (char *id = strtok_r(list, ",", &save); id; id = strtok_r(NULL, ",", &save)) {
        int k = -1;
        for (int i = 0; i < h->n_all; i++)
            if (!strcmp(h->all[i].id, id))
                k = i;
        if (k < 0) {
            fprintf(stderr, "sov plan: --hw: no profile '%s' in %s (", id, path);
            for (int i = 0; i < h->n_all; i++)
                fprintf(stderr, "%s%s", i ? " " : "", h->all[i].id);
            fprintf(stderr, "%s)\n", h->have_this ? "" : " this");
            return 2;
        }
        if (h->n_sel < MAX_HW)
            h->sel[h->n_sel++] = k;
    }
    return 0;
}

static const plan_hw *hw_find(const hwset *h, const char *id)
{
    for (int i = 0; i < h->n_all; i++)
        if (!strcmp(h->all[i].id, id))
            return &h->all[i];
    return NULL;
}

/* hw with the efficiency that applies to model p: a calibrated `this`
 * uses the efficiency measured for the model's quant. */
static plan_hw hw_for(const hwset *h, const plan_hw *hw, const pmodel *p)
{
    plan_hw x = *hw;
    if (h->this_calibrated && !strcmp(hw->id, "this"))
        x.eff_decode = plan_calib_eff(&h->calib, p->file_type);
    return x;
}

/* ---- one prediction ---- */

typedef struct pred {
    plan_fit fit;
    plan_speed sp;
    double eff;
    bool calibrated;
} pred;

static pred predict(const plan_opts *o, const hwset *h, const pmodel *p, const plan_hw *hw0)
{
    pred r;
    plan_hw hw = hw_for(h, hw0, p);
    double res = o->reserve_gb >= 0 ? o->reserve_gb * 1e9 : -1;
    r.fit = plan_fit_of(&p->m, p->quant, o->ctx, o->parallel, o->kv_bpe, &hw, res);
    r.sp = plan_speed_of(&p->m, p->quant, (double)o->ctx / 2.0, o->parallel, o->kv_bpe, &hw);
    r.eff = hw.eff_decode;
    r.calibrated = hw.calibrated;
    return r;
}

static json_t *pred_json(const pmodel *p, const plan_hw *hw, const pred *r, const plan_opts *o)
{
    json_t *e = json_object();
    if (!e)
        return NULL;
    jset(e, "model", json_string(p->m.id));
    jset(e, "hw", json_string(hw->id));
    jset(e, "quant", json_string(p->from_file ? p->file_type : p->quant));
    jset(e, "from_file", json_boolean(p->from_file));
    jset(e, "ctx", json_integer(o->ctx));
    jset(e, "n_seq", json_integer(o->parallel));
    jset(e, "fits", json_boolean(r->fit.fits));
    jset(e, "weights_bytes", jnum(r->fit.weights));
    jset(e, "kv_bytes", jnum(r->fit.kv));
    jset(e, "overhead_bytes", jnum(r->fit.overhead));
    jset(e, "total_bytes", jnum(r->fit.total));
    jset(e, "usable_bytes", jnum(r->fit.usable));
    jset(e, "bytes_token", jnum(r->sp.bytes_token));
    jset(e, "decode_bound", jnum(r->sp.decode_bound));
    jset(e, "decode", jnum(r->sp.decode));
    jset(e, "eff_decode", jnum(r->eff));
    jset(e, "calibrated", json_boolean(r->calibrated));
    jset(e, "prefill_bound", jnum(r->sp.prefill_bound));
    jset(e, "prefill", jnum(r->sp.prefill));
    jset(e, "batch_bound", jnum(r->sp.batch_bound));
    jset(e, "batch", jnum(r->sp.batch));
    jset(e, "compute_bound", json_boolean(r->sp.compute_bound));
    return e;
}

static json_t *hw_json(const plan_hw *h)
{
    json_t *e = json_object();
    if (!e)
        return NULL;
    jset(e, "id", json_string(h->id));
    jset(e, "name", json_string(h->name));
    jset(e, "mem_bytes", jnum(h->mem_bytes));
    jset(e, "bw", jnum(h->bw));
    jset(e, "flops_f16", jnum(h->flops_f16));
    jset(e, "flops_int8", jnum(h->flops_int8));
    jset(e, "flops_int4", jnum(h->flops_int4));
    jset(e, "watts_load", jnum(h->watts_load));
    jset(e, "watts_idle", jnum(h->watts_idle));
    jset(e, "price", jnum(h->price));
    jset(e, "price_hour", jnum(h->price_hour));
    jset(e, "reserve_bytes", jnum(h->reserve_bytes));
    jset(e, "eff_decode", jnum(h->eff_decode));
    jset(e, "eff_prefill", jnum(h->eff_prefill));
    jset(e, "calibrated", json_boolean(h->calibrated));
    jset(e, "source", json_string(h->source));
    return e;
}

static json_t *model_json(const pmodel *p)
{
    const plan_model *m = &p->m;
    json_t *e = json_object();
    if (!e)
        return NULL;
    jset(e, "id", json_string(m->id));
    jset(e, "from_file", json_boolean(p->from_file));
    jset(e, "quant", json_string(p->from_file ? p->file_type : p->quant));
    jset(e, "params", jnum(m->params));
    jset(e, "params_active", jnum(m->params_active));
    jset(e, "n_layer", json_integer(m->n_layer));
    jset(e, "d_model", json_integer(m->d_model));
    jset(e, "n_head", json_integer(m->n_head));
    jset(e, "n_head_kv", json_integer(m->n_head_kv));
    jset(e, "d_head", json_integer(m->d_head));
    jset(e, "d_ff", json_integer(m->d_ff));
    jset(e, "n_vocab", json_integer(m->n_vocab));
    jset(e, "n_expert", json_integer(m->n_expert));
    jset(e, "n_expert_used", json_integer(m->n_expert_used));
    jset(e, "ctx_train", json_integer(m->ctx_train));
    if (p->from_file) {
        jset(e, "file_bytes", jnum(m->file_bytes));
        jset(e, "file_active_bytes", jnum(m->file_active_bytes));
    }
    return e;
}

/* ---- the sections ---- */

static void print_settings(const plan_opts *o)
{
    printf("settings: context %lld positions (speeds read the KV of %lld), %lld sequence%s, KV %s (%.4g bytes per "
           "element)\n",
           o->ctx, o->ctx / 2, o->parallel, o->parallel == 1 ? "" : "s", o->kv_name, o->kv_bpe);
}

/* Which hardware holds the model at which quant: the total memory at each
 * quant the engine knows, against each profile's usable memory. */
static void print_quant_fit(const plan_opts *o, const hwset *h, const pmodel *p, tbl *t)
{
    static const char *const quants[] = {"f16", "q8_0", "q6_k", "q5_k_m", "q4_k_m", "q4_0", "q3_k_m", "q2_k"};
    memset(t, 0, sizeof *t);
    t->ncol = 2 + h->n_sel;
    if (t->ncol > TBL_COLS)
        t->ncol = TBL_COLS;
    for (int c = 1; c < t->ncol; c++)
        t->right[c] = true;
    const char *row[TBL_COLS];
    row[0] = "quant";
    row[1] = "needs";
    for (int c = 2; c < t->ncol; c++)
        row[c] = h->all[h->sel[c - 2]].id;
    tbl_row(t, row);
    static char cells[TBL_COLS][24];
    for (size_t k = 0; k < sizeof quants / sizeof quants[0]; k++) {
        pmodel q = *p;
        snprintf(q.quant, sizeof q.quant, "%s", quants[k]);
        row[0] = quants[k];
        for (int c = 2; c < t->ncol; c++) {
            pred r = predict(o, h, &q, &h->all[h->sel[c - 2]]);
            if (c == 2)
                gb(cells[1], sizeof cells[1], r.fit.total);
            snprintf(cells[c], sizeof cells[c], "%s", r.fit.fits ? "fits" : "-");
            row[c] = cells[c];
        }
        row[1] = cells[1];
        tbl_row(t, row);
    }
    printf("\n%s at each quant: weights + KV + runtime, and where it fits\n", p->m.id);
    tbl_print(t);
}

static void print_model(const plan_opts *o, const hwset *h, const pmodel *p)
{
    const plan_model *m = &p->m;
    char b1[24], b2[24], b3[24], b4[24], b5[24], b6[24], b7[24];
    printf("\n%s: %.2fB parameters, %.2fB read per token; %lld layers, %lld wide, %lld/%lld heads", m->id,
           m->params / 1e9, m->params_active / 1e9, (long long)m->n_layer, (long long)m->d_model,
           (long long)m->n_head, (long long)m->n_head_kv);
    if (m->n_expert > 0)
        printf(", %lld of %lld experts", (long long)m->n_expert_used, (long long)m->n_expert);
    if (p->from_file)
        printf("; file %s (%s), %s read per token", gb(b1, sizeof b1, m->file_bytes), p->file_type,
               gb(b2, sizeof b2, m->file_active_bytes));
    else
        printf("; %s at %.2f bits per weight", p->quant, plan_quant_bpw(p->quant) * 8);
    printf("; KV %.0f KB per position\n", plan_kv_bytes_pos(m, o->kv_bpe) / 1e3);
    tbl *t = calloc(1, sizeof *t);
    if (!t)
        return;
    t->ncol = 11;
    for (int c = 1; c < t->ncol; c++)
        t->right[c] = true;
    const char *hdr[] = {"hardware", "weights", "KV", "total", "usable", "fits", "bound t/s", "eff", "expected t/s",
                         o->parallel > 1 ? "batch t/s" : "prefill t/s", "how"};
    tbl_row(t, hdr);
    for (int i = 0; i < h->n_sel; i++) {
        const plan_hw *hw = &h->all[h->sel[i]];
        pred r = predict(o, h, p, hw);
        char eff[16];
        snprintf(eff, sizeof eff, "%.2f", r.eff);
        const char *row[] = {hw->id,
                             gb(b1, sizeof b1, r.fit.weights),
                             gb(b2, sizeof b2, r.fit.kv),
                             gb(b3, sizeof b3, r.fit.total),
                             gb(b4, sizeof b4, r.fit.usable),
                             r.fit.fits ? "yes" : "NO",
                             rate(b5, sizeof b5, r.sp.decode_bound),
                             eff,
                             r.fit.fits ? rate(b6, sizeof b6, r.sp.decode) : "-",
                             r.fit.fits ? rate(b7, sizeof b7, o->parallel > 1 ? r.sp.batch : r.sp.prefill) : "-",
                             r.calibrated ? "calibrated" : "assumed"};
        tbl_row(t, row);
    }
    tbl_print(t);
    if (!p->from_file)
        print_quant_fit(o, h, p, t);
    free(t);
}

static void print_how(void)
{
    printf("\nhow: weights = params x bytes per weight; KV = ctx x sequences x 2 x layers x kv heads x head width x "
           "KV bytes;\n"
           "     bound = bandwidth / (active params x bytes per weight + KV of ctx/2 positions), capped by compute /\n"
           "     (2 x active params); expected = bound x efficiency (assumed, or calibrated on this machine with\n"
           "     `sov plan --calibrate`); prefill = compute / (2 x active params) x prefill efficiency\n");
}

static void print_matrix(const plan_opts *o, const hwset *h)
{
    int nc;
    const plan_model *cat = plan_catalog(&nc);
    printf("\ndecode tok/s expected for one stream at %s (\"-\": does not fit; the memory it needs in brackets)\n",
           o->quant);
    tbl *t = calloc(1, sizeof *t);
    if (!t)
        return;
    t->ncol = 1 + h->n_sel + 1;
    if (t->ncol > TBL_COLS)
        t->ncol = TBL_COLS;
    for (int c = 1; c < t->ncol; c++)
        t->right[c] = true;
    const char *row[TBL_COLS];
    row[0] = "model";
    row[1] = "needs";
    for (int c = 2; c < t->ncol; c++)
        row[c] = h->all[h->sel[c - 2]].id;
    tbl_row(t, row);
    static char cells[TBL_COLS][24];
    for (int i = 0; i < nc; i++) {
        pmodel p = {.m = cat[i]};
        snprintf(p.quant, sizeof p.quant, "%s", o->quant);
        snprintf(p.file_type, sizeof p.file_type, "%s", o->quant);
        row[0] = cat[i].id;
        pred r0 = predict(o, h, &p, &h->all[h->sel[0]]);
        gb(cells[1], sizeof cells[1], r0.fit.total);
        row[1] = cells[1];
        for (int c = 2; c < t->ncol; c++) {
            pred r = predict(o, h, &p, &h->all[h->sel[c - 2]]);
            if (r.fit.fits)
                rate(cells[c], sizeof cells[c], r.sp.decode);
            else
                snprintf(cells[c], sizeof cells[c], "-");
            row[c] = cells[c];
        }
        tbl_row(t, row);
    }
    tbl_print(t);
    free(t);
}

static void print_list(const hwset *h)
{
    int nc;
    const plan_model *cat = plan_catalog(&nc);
    printf("catalogue (params counted from each model's published config):\n");
    for (int i = 0; i < nc; i++) {
        const plan_model *m = &cat[i];
        printf("  %-20s %7.1fB params, %6.1fB read per token, %3lld layers, %5lld wide, %3lld/%-3lld heads", m->id,
               m->params / 1e9, m->params_active / 1e9, (long long)m->n_layer, (long long)m->d_model,
               (long long)m->n_head, (long long)m->n_head_kv);
        if (m->n_expert > 0)
            printf(", %lld of %lld experts", (long long)m->n_expert_used, (long long)m->n_expert);
        printf("\n");
    }
    printf("\nhardware:\n");
    for (int i = 0; i < h->n_all; i++) {
        const plan_hw *w = &h->all[i];
        printf("  %-18s %s\n  %-18s %.0f GB, %.0f GB/s, %.1f TFLOPS f16, %.0f W load, ", w->id, w->name, "",
               w->mem_bytes / 1e9, w->bw / 1e9, w->flops_f16 / 1e12, w->watts_load);
        if (w->price_hour > 0)
            printf("$%.2f an hour", w->price_hour);
        else
            printf("$%.0f", w->price);
        printf(", efficiency %.2f (%s)\n  %-18s source: %s\n", w->eff_decode,
               w->calibrated ? "calibrated" : "assumed", "", w->source);
    }
    printf("\nquants:");
    for (const char *const *q = plan_quants(); *q; q++)
        printf(" %s (%.2f)", *q, plan_quant_bpw(*q) * 8);
    printf("   (bits per weight)\n");
}

/* The report's inputs for model p (the charts: the machines selected). */
static int report_in(const plan_opts *o, const hwset *h, const pmodel *p, plan_hw *shown, plan_report_in *in)
{
    const plan_hw *a = hw_find(h, o->a), *b = hw_find(h, o->b), *c = hw_find(h, o->cloud);
    const char *miss = !a ? o->a : !b ? o->b : !c ? o->cloud : NULL;
    if (miss) {
        fprintf(stderr, "sov plan: no hardware profile '%s' (--a / --b / --cloud)\n", miss);
        return 2;
    }
    int nh = 0;
    for (int i = 0; i < h->n_sel; i++)
        shown[nh++] = h->all[h->sel[i]];
    *in = (plan_report_in){.hw = shown,
                           .n_hw = nh,
                           .a = a,
                           .b = b,
                           .cloud = c,
                           .eff_this = h->this_calibrated ? plan_calib_eff(&h->calib, p->file_type) : 0,
                           .model = &p->m,
                           .model_quant = p->quant,
                           .model_quant_name = p->from_file ? p->file_type : p->quant,
                           .quant = o->quant,
                           .ctx = o->ctx,
                           .n_seq = o->parallel,
                           .kv_bpe = o->kv_bpe,
                           .reserve_bytes = o->reserve_gb >= 0 ? o->reserve_gb * 1e9 : -1,
                           .prices = &o->prices,
                           .price_sources = o->price_src};
    return 0;
}

static void print_options(const plan_opts *o, const pmodel *p, const plan_option *opt)
{
    char b[8][24];
    printf("\n%s %s, %lld stream%s each, generating %.0f %% of the day, side by side:\n", p->m.id,
           p->from_file ? p->file_type : p->quant, o->parallel, o->parallel == 1 ? "" : "s", 100 * o->prices.duty);
    tbl *t = calloc(1, sizeof *t);
    if (!t)
        return;
    t->ncol = 7;
    for (int c = 1; c < t->ncol; c++)
        t->right[c] = true;
    const char *hdr[] = {"option", "tok/s", "tokens/day", "upfront", "running/day", "cloud API/day", "payback"};
    tbl_row(t, hdr);
    for (int i = 0; i < 4; i++) {
        const plan_option *x = &opt[i];
        if (isfinite(x->payback_days))
            snprintf(b[6], sizeof b[6], x->upfront > 0 ? "%.0f days" : "rented", x->payback_days);
        else
            snprintf(b[6], sizeof b[6], "never");
        const char *row[] = {x->name,
                             x->fits ? rate(b[0], sizeof b[0], x->tok_s) : "no fit",
                             count(b[1], sizeof b[1], x->tokens_day),
                             money(b[2], sizeof b[2], &o->prices, x->upfront),
                             money(b[3], sizeof b[3], &o->prices, x->per_day),
                             money(b[4], sizeof b[4], &o->prices, x->cloud_day),
                             x->fits ? b[6] : "-"};
        tbl_row(t, row);
    }
    tbl_print(t);
    free(t);
    printf("  running/day: electricity (owned) or rent x 24; cloud API/day: what the same tokens cost at the API\n"
           "  prices; payback = upfront / (cloud API/day - running/day)\n");
    for (int i = 0; i < 3; i++)
        printf("  %s\n", o->price_src[i]);
}

static void print_verdicts(const plan_verdict *v, int n)
{
    for (int i = 0; i < n; i++) {
        const char *mark = v[i].kind == PLAN_V_OK ? "ok" : v[i].kind == PLAN_V_POSSIBLE ? "??" : "XX";
        printf("\n[%s] \"%s\"\n     %s: %s\n", mark, v[i].claim, v[i].verdict, v[i].correct);
        const char *s = v[i].arithmetic;
        while (*s) {
            const char *e = strchr(s, '\n');
            int l = e ? (int)(e - s) : (int)strlen(s);
            printf("       %.*s\n", l, s);
            s += l + (e ? 1 : 0);
        }
    }
}

static json_t *options_json(const plan_option *opt, int n)
{
    json_t *a = json_array();
    for (int i = 0; a && i < n; i++) {
        json_t *e = json_object();
        jset(e, "name", json_string(opt[i].name));
        jset(e, "fits", json_boolean(opt[i].fits));
        jset(e, "tok_s", jnum(opt[i].tok_s));
        jset(e, "tokens_day", jnum(opt[i].tokens_day));
        jset(e, "upfront", jnum(opt[i].upfront));
        jset(e, "per_day", jnum(opt[i].per_day));
        jset(e, "cloud_day", jnum(opt[i].cloud_day));
        jset(e, "payback_days", jnum(opt[i].payback_days));
        jpush(a, e);
    }
    return a;
}

static json_t *verdicts_json(const plan_verdict *v, int n)
{
    json_t *a = json_array();
    for (int i = 0; a && i < n; i++) {
        json_t *e = json_object();
        jset(e, "claim", json_string(v[i].claim));
        jset(e, "verdict", json_string(v[i].verdict));
        jset(e, "kind", json_integer(v[i].kind));
        jset(e, "correct", json_string(v[i].correct));
        jset(e, "arithmetic", json_string(v[i].arithmetic));
        jpush(a, e);
    }
    return a;
}

/* ---- --calibrate ---- */

static int run_calibrate(const plan_opts *o)
{
    char pbuf[512], cbuf[512];
    const char *path = o->calib ? o->calib : plan_calib_default_path(pbuf, sizeof pbuf);
    const char *cache = o->cache ? o->cache : plan_calib_default_cache(cbuf, sizeof cbuf);
    if (!path || !cache) {
        fprintf(stderr, "sov plan: no calibration path (set SOV_PLAN_CALIB / SOV_CACHE or HOME)\n");
        return 1;
    }
    plan_calib_opts co = {.cache_dir = cache, .threads = (int)o->threads, .progress = stderr};
    plan_calib c;
    if (plan_calibrate(&co, &c) || plan_calib_save(path, &c)) {
        fprintf(stderr, "sov plan: calibration: %s\n", err_msg());
        return 1;
    }
    if (o->json) {
        json_t *root = json_object();
        jset(root, "calibration_file", json_string(path));
        jset(root, "hw", hw_json(&c.hw));
        json_t *q = json_array();
        for (int i = 0; i < c.n_quant; i++) {
            json_t *e = json_object();
            jset(e, "quant", json_string(c.q[i].quant));
            jset(e, "model", json_string(c.q[i].model));
            jset(e, "tok_s", jnum(c.q[i].tok_s));
            jset(e, "bytes_token", jnum(c.q[i].bytes_token));
            jset(e, "bw", jnum(c.q[i].bw));
            jset(e, "eff", jnum(c.q[i].eff));
            jpush(q, e);
        }
        jset(root, "quants", q);
        int rc = json_dumpf(root, stdout, JSON_INDENT(2)) || json_bad;
        printf("\n");
        json_decref(root);
        return rc ? 1 : 0;
    }
    plan_calib_print(stdout, &c);
    printf("stored in %s; `sov plan --hw this` predicts with it\n", path);
    return 0;
}

/* ---- main ---- */

int cmd_plan(int argc, char **argv)
{
    plan_opts *o = calloc(1, sizeof *o);
    pmodel *pm = calloc(MAX_MODELS, sizeof *pm);
    hwset *h = calloc(1, sizeof *h);
    plan_verdict *v = calloc(MAX_CHECKS + 16, sizeof *v);
    json_t *root = NULL;
    int ret = 1, n_models = 0, n_v = 0;
    if (!o || !pm || !h || !v) {
        fprintf(stderr, "sov plan: out of memory\n");
        goto done;
    }
    int prc = parse(argc, argv, o);
    if (prc) {
        ret = prc == 1 ? 0 : prc;
        goto done;
    }
    if (o->calibrate) {
        ret = run_calibrate(o);
        goto done;
    }
    if ((ret = load_models(o, pm, &n_models)) || (ret = load_hw(o, h)))
        goto done;
    ret = 1;
    if (o->list && !o->json) {
        print_list(h);
        ret = 0;
        goto done;
    }

    /* the report's model: the first one named, else the 70B */
    pmodel rep = {0};
    if (n_models > 0)
        rep = pm[0];
    else {
        rep.m = *plan_catalog_find(REPORT_MODEL);
        snprintf(rep.quant, sizeof rep.quant, "%s", o->quant);
        snprintf(rep.file_type, sizeof rep.file_type, "%s", o->quant);
    }
    plan_option opt[4];
    plan_report_in rin;
    plan_hw shown[MAX_HW];
    bool with_options = o->report || n_models > 0 || o->html;
    if (with_options) {
        if ((ret = report_in(o, h, &rep, shown, &rin)))
            goto done;
        plan_report_options(&rin, opt);
    }
    ret = 1;

    /* claims */
    double rtt = -1;
    char rtt_how[256] = "";
    bool link_claim = o->report;
    for (int i = 0; i < o->n_checks; i++)
        link_claim |= strstr(o->checks[i], "ms") != NULL;
    if (link_claim) {
        int rc = o->rtt_url ? plan_rtt_url(o->rtt_url, RTT_N / 4, &rtt) : plan_rtt_loopback(RTT_N, &rtt);
        if (rc) {
            fprintf(stderr, "sov plan: round trip: %s\n", err_msg());
            goto done;
        }
        if (o->rtt_url)
            snprintf(rtt_how, sizeof rtt_how, "GET %s on a kept-alive connection, median of %d", o->rtt_url,
                     RTT_N / 4);
        else
            snprintf(rtt_how, sizeof rtt_how,
                     "TCP over loopback here, median of %d; a switch hop adds ~10-50 us: measure a real link with "
                     "--rtt-url http://BOX:PORT/health",
                     RTT_N);
    }
    plan_check_ctx cx = {.hw = h->all,
                         .n_hw = h->n_all,
                         .prices = &o->prices,
                         .kv_bpe = o->kv_bpe,
                         .ctx = o->ctx,
                         .hw_a = o->a,
                         .hw_b = o->b,
                         .rtt_s = rtt,
                         .rtt_how = rtt_how,
                         /* a 2,000-token prompt as chat JSON (~4 B a token) and 500 tokens streamed as
                          * SSE chunks of ~160 B */
                         .req_bytes = 8192,
                         .resp_bytes = 500 * 160};
    for (int i = 0; i < o->n_checks; i++) {
        if (plan_check(&cx, o->checks[i], &v[n_v])) {
            fprintf(stderr, "sov plan: --check \"%s\": %s\n", o->checks[i], err_msg());
            ret = 2;
            goto done;
        }
        n_v++;
    }
    if (o->report) {
        for (const char *const *c = plan_report_claims(); *c && n_v < MAX_CHECKS + 16; c++) {
            if (plan_check(&cx, *c, &v[n_v]) == 0)
                n_v++;
            else
                fprintf(stderr, "sov plan: report claim \"%s\": %s\n", *c, err_msg());
        }
    }

    bool claims_only = o->n_checks > 0 && !o->report && n_models == 0;
    if (o->json) {
        root = json_object();
        json_t *s = json_object();
        jset(s, "quant", json_string(o->quant));
        jset(s, "ctx", json_integer(o->ctx));
        jset(s, "n_seq", json_integer(o->parallel));
        jset(s, "kv_type", json_string(o->kv_name));
        jset(s, "kv_bpe", jnum(o->kv_bpe));
        json_t *pr = json_object();
        jset(pr, "currency", json_string(o->prices.currency));
        jset(pr, "in_per_m", jnum(o->prices.in_per_m));
        jset(pr, "out_per_m", jnum(o->prices.out_per_m));
        jset(pr, "in_out_ratio", jnum(o->prices.in_out_ratio));
        jset(pr, "tariff_kwh", jnum(o->prices.tariff_kwh));
        jset(pr, "duty", jnum(o->prices.duty));
        jset(pr, "amortize_months", jnum(o->prices.amortize_months));
        json_t *srcs = json_array();
        for (int i = 0; i < 3; i++)
            jpush(srcs, json_string(o->price_src[i]));
        jset(pr, "sources", srcs);
        jset(s, "prices", pr);
        jset(root, "settings", s);
        json_t *jh = json_array(), *jm = json_array(), *jp = json_array();
        for (int i = 0; i < h->n_sel; i++)
            jpush(jh, hw_json(&h->all[h->sel[i]]));
        jset(root, "hardware", jh);
        int nc;
        const plan_model *cat = plan_catalog(&nc);
        int nm = n_models > 0 ? n_models : nc;
        for (int k = 0; k < nm; k++) {
            pmodel cp = {0};
            const pmodel *p = &pm[k];
            if (n_models == 0) {
                cp.m = cat[k];
                snprintf(cp.quant, sizeof cp.quant, "%s", o->quant);
                snprintf(cp.file_type, sizeof cp.file_type, "%s", o->quant);
                p = &cp;
            }
            jpush(jm, model_json(p));
            for (int i = 0; i < h->n_sel; i++) {
                const plan_hw *hw = &h->all[h->sel[i]];
                pred r = predict(o, h, p, hw);
                jpush(jp, pred_json(p, hw, &r, o));
            }
        }
        jset(root, "models", jm);
        jset(root, "predictions", jp);
        if (with_options) {
            jset(root, "options_model", json_string(rep.m.id));
            jset(root, "options", options_json(opt, 4));
        }
        if (n_v)
            jset(root, "verdicts", verdicts_json(v, n_v));
        if (rtt >= 0) {
            jset(root, "rtt_s", jnum(rtt));
            jset(root, "rtt_how", json_string(rtt_how));
        }
    } else if (claims_only) {
        print_verdicts(v, n_v);
    } else {
        print_settings(o);
        if (h->have_this)
            printf("this machine: %s%s\n", h->this_calibrated ? "calibrated, " : "measured now (assumed efficiency; "
                                                                                 "`sov plan --calibrate` measures it), ",
                   h->this_calibrated ? h->calib_path : "");
        if (n_models == 0)
            print_matrix(o, h);
        for (int k = 0; k < n_models; k++)
            print_model(o, h, &pm[k]);
        print_how();
        if (with_options)
            print_options(o, &rep, opt);
        if (n_v) {
            printf("\nclaims:\n");
            print_verdicts(v, n_v);
        }
    }

    if (o->html) {
        FILE *f = fopen(o->html, "w");
        if (!f) {
            fprintf(stderr, "sov plan: cannot create %s\n", o->html);
            goto done;
        }
        rin.verdicts = v;
        rin.n_verdicts = n_v;
        int rc = plan_report_html(f, &rin);
        if (fclose(f) && !rc)
            rc = err_set(SOV_EIO, "writing %s failed", o->html);
        if (rc) {
            fprintf(stderr, "sov plan: %s: %s\n", o->html, err_msg());
            goto done;
        }
        if (!o->json)
            printf("\nwrote %s\n", o->html);
    }
    if (root) {
        if (json_dumpf(root, stdout, JSON_INDENT(2)) || json_bad) {
            fprintf(stderr, "sov plan: cannot write the JSON output\n");
            goto done;
        }
        printf("\n");
    }
    ret = 0;
    /* a claim judged wrong makes --check exit 3, so scripts can test claims */
    for (int i = 0; i < o->n_checks && i < n_v; i++)
        if (v[i].kind == PLAN_V_WRONG)
            ret = 3;
done:
    json_decref(root);
    if (h)
        plan_hw_free(h->file);
    free(o);
    free(pm);
    free(h);
    free(v);
    return ret;
}
