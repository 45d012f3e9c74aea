/* calib: `sov plan --calibrate` (see calib.h).
 *
 * The file is read as src/plan/hw.c reads hardware.ini: libinih splits the
 * key = value lines while our own line reader counts lines, strips blanks,
 * refuses lines longer than inih's buffer and parses the [section]
 * headers itself (inih reports no empty sections), so every error names
 * its line, and the first error found is the earliest. */
#include "calib.h"

#include "../base/cpupeak.h"
#include "../base/err.h"
#include "../base/iniline.h"
#include "../base/file.h"
#include "../base/membw.h"
#include "../base/pool.h"
#include "../engine/bench.h"
#include "../engine/kern/kern.h"
#include "../engine/kv.h"
#include "../format/gguf.h"
#include "../quant/quant.h"
#include "../quant/synth.h"
#include "hw.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <ini.h>
#include <math.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define CALIB_SHAPE "tinyllama-1.1b"
#define CALIB_VERSION 1
#define EFF_MAX 1.0   /* eff_decode, the quants' eff: a share of the bandwidth */
#define EFF_P_MAX 1.0 /* eff_prefill: a share of the int8 peak */

/* The calibration quants, in the order measured; the first also gets the
 * pp run of eff_prefill. */
static const char *const calib_quants[] = {"q4_0", "q8_0", "q4_k_m", "q6_k"};
#define N_CALIB_QUANTS ((int)(sizeof calib_quants / sizeof calib_quants[0]))
_Static_assert(N_CALIB_QUANTS <= PLAN_CALIB_MAX_QUANT, "too many calibration quants");

/* ---- default paths ------------------------------------------------------- */

static const char *home_dir(void)
{
    const char *h = getenv("HOME");
    if (h && *h)
        return h;
    struct passwd *pw = getpwuid(getuid());
    return pw && pw->pw_dir && *pw->pw_dir ? pw->pw_dir : NULL;
}

/* buf = a + b, or NULL when it does not fit. */
static const char *join2(char *buf, size_t cap, const char *a, const char *b)
{
    if (!buf || cap == 0)
        return NULL;
    int k = snprintf(buf, cap, "%s%s", a, b);
    return k < 0 || (size_t)k >= cap ? NULL : buf;
}

/* env (when set and not empty) + env_tail; else xdg (when absolute) + xdg_tail; else home + home_tail. */
static const char *xdg_path(char *buf, size_t cap, const char *env, const char *env_tail, const char *xdg,
                            const char *xdg_tail, const char *home_tail)
{
    const char *e = getenv(env);
    if (e && *e)
        return join2(buf, cap, e, env_tail);
    const char *x = getenv(xdg);
    if (x && x[0] == '/')
        return join2(buf, cap, x, xdg_tail);
    const char *h = home_dir();
    return h ? join2(buf, cap, h, home_tail) : NULL;
}

const char *plan_calib_default_path(char *buf, size_t cap)
{
    return xdg_path(buf, cap, "SOV_PLAN_CALIB", "", "XDG_DATA_HOME", "/sov/plan-calibration.ini",
                    "/.local/share/sov/plan-calibration.ini");
}

const char *plan_calib_default_cache(char *buf, size_t cap)
{
    return xdg_path(buf, cap, "SOV_CACHE", "/plan", "XDG_CACHE_HOME", "/sov/plan", "/.cache/sov/plan");
}

/* ---- files ----------------------------------------------------------------- */

/* Creates dir and its missing parents (0755). Errors: SOV_EIO. */
static int mkdir_p(const char *dir)
{
    char p[4096];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof p)
        return err_set(SOV_EIO, "%s: bad directory name", dir);
    memcpy(p, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (p[i] != '/' && p[i] != 0)
            continue;
        char c = p[i];
        p[i] = 0;
        struct stat st;
        if (mkdir(p, 0755) && errno != EEXIST)
            return err_set(SOV_EIO, "cannot create %s: %s", p, strerror(errno));
        if (stat(p, &st) || !S_ISDIR(st.st_mode))
            return err_set(SOV_EIO, "%s: not a directory", p);
        p[i] = c;
    }
    return 0;
}

/* The directory part of path ("." for a bare name) into buf. */
static void dir_of(const char *path, char *buf, size_t cap)
{
    const char *sl = strrchr(path, '/');
    if (!sl)
        snprintf(buf, cap, ".");
    else if (sl == path)
        snprintf(buf, cap, "/");
    else
        snprintf(buf, cap, "%.*s", (int)(sl - path), path);
}

/* ---- plan_calib_eff --------------------------------------------------------- */

/* "q4_k_m" / "q4_k_s" / "q4_k_l" -> "q4_k" (lower case); other names as they are. */
static void base_quant(const char *q, char *out, size_t cap)
{
    size_t n = strlen(q);
    if (n >= cap)
        n = cap - 1;
    for (size_t i = 0; i < n; i++)
        out[i] = (char)tolower((unsigned char)q[i]);
    out[n] = 0;
    if (n > 4 && out[n - 2] == '_' && strchr("sml", out[n - 1]) && out[n - 3] == 'k' && out[n - 4] == '_')
        out[n - 2] = 0;
}

double plan_calib_eff(const plan_calib *c, const char *quant)
{
    if (!c)
        return PLAN_HW_EFF_DECODE;
    if (!quant)
        return c->hw.eff_decode;
    for (int i = 0; i < c->n_quant; i++)
        if (!strcasecmp(c->q[i].quant, quant))
            return c->q[i].eff;
    char want[32], have[32];
    base_quant(quant, want, sizeof want);
    for (int i = 0; i < c->n_quant; i++) {
        base_quant(c->q[i].quant, have, sizeof have);
        if (!strcmp(have, want))
            return c->q[i].eff;
    }
    return c->hw.eff_decode;
}

/* ---- save --------------------------------------------------------------------- */

/* Whether s reads back unchanged as an inih value: printable, no blank at
 * either end, no ';' or '#' after a blank (inline comment). */
static bool value_ok(const char *s)
{
    size_t n = strlen(s);
    if (n && (isspace((unsigned char)s[0]) || isspace((unsigned char)s[n - 1])))
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 || ch == 0x7f)
            return false;
        if ((ch == ';' || ch == '#') && (i == 0 || isspace((unsigned char)s[i - 1])))
            return false;
    }
    return true;
}

static bool eff_ok(double e) { return isfinite(e) && e > 0 && e <= EFF_MAX; }
static bool eff_p_ok(double e) { return isfinite(e) && e > 0 && e <= EFF_P_MAX; }
static bool pos_ok(double v) { return isfinite(v) && v > 0; }

static bool quant_name_ok(const char *q)
{
    if (!*q || plan_quant_bpw(q) < 0)
        return false;
    for (; *q; q++)
        if (!islower((unsigned char)*q) && !isdigit((unsigned char)*q) && *q != '_')
            return false;
    return true;
}

/* Refuses what plan_calib_load would refuse. */
static int check_calib(const plan_calib *c)
{
    const plan_hw *h = &c->hw;
    const char *strs[] = {c->when, c->cpu, c->isa, h->name, h->source};
    const char *names[] = {"when", "cpu", "isa", "name", "source"};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        if (!value_ok(strs[i]))
            return err_set(SOV_EINVAL, "plan_calib_save: %s \"%.60s\" would not read back", names[i], strs[i]);
    if (!c->when[0])
        return err_set(SOV_EINVAL, "plan_calib_save: no time");
    if (c->threads < 1 || c->threads > 4096 || !pos_ok(h->mem_bytes) || !pos_ok(h->bw) || !eff_ok(h->eff_decode) ||
        !eff_p_ok(h->eff_prefill) || !isfinite(h->flops_f16) || h->flops_f16 < 0 || !isfinite(h->flops_int8) || h->flops_int8 < 0 ||
        !isfinite(h->reserve_bytes) ||
        h->reserve_bytes < 0 || c->n_quant < 0 || c->n_quant > PLAN_CALIB_MAX_QUANT)
        return err_set(SOV_EINVAL, "plan_calib_save: a figure out of range (threads %d, mem %g, bw %g, eff %g / %g, "
                                   "%d quants)",
                       c->threads, h->mem_bytes, h->bw, h->eff_decode, h->eff_prefill, c->n_quant);
    for (int i = 0; i < c->n_quant; i++) {
        const plan_calib_quant *q = &c->q[i];
        if (!quant_name_ok(q->quant) || !value_ok(q->model))
            return err_set(SOV_EINVAL, "plan_calib_save: quant %d: bad name \"%.20s\" or model \"%.60s\"", i,
                           q->quant, q->model);
        for (int j = 0; j < i; j++)
            if (!strcmp(c->q[j].quant, q->quant))
                return err_set(SOV_EINVAL, "plan_calib_save: quant %s twice", q->quant);
        if (!pos_ok(q->tok_s) || !pos_ok(q->bytes_token) || !pos_ok(q->bw) || !eff_ok(q->eff))
            return err_set(SOV_EINVAL, "plan_calib_save: quant %s: a figure out of range", q->quant);
    }
    return 0;
}

int plan_calib_save(const char *path, const plan_calib *c)
{
    if (!path || !*path || !c)
        return err_set(SOV_EINVAL, "plan_calib_save: no file name");
    int rc = check_calib(c);
    if (rc)
        return rc;
    char dir[4096], tmp[4200];
    dir_of(path, dir, sizeof dir);
    if ((rc = mkdir_p(dir)))
        return rc;
    int k = snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    if (k < 0 || (size_t)k >= sizeof tmp)
        return err_set(SOV_EINVAL, "%s: file name too long", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return err_set(SOV_EIO, "cannot create %s: %s", tmp, strerror(errno));
    const plan_hw *h = &c->hw;
    fprintf(f, "; sov plan --calibrate: this machine measured with sov's own bench code\n");
    fprintf(f, "; decode tok/s = bw_gbs x eff (of the quant, else eff_decode) / bytes per token\n");
    fprintf(f, "[calibration]\n");
    fprintf(f, "version = %d\n", CALIB_VERSION);
    fprintf(f, "when = %s\n", c->when);
    if (c->cpu[0])
        fprintf(f, "cpu = %s\n", c->cpu);
    if (c->isa[0])
        fprintf(f, "isa = %s\n", c->isa);
    fprintf(f, "threads = %d\n", c->threads);
    if (h->name[0])
        fprintf(f, "name = %s\n", h->name);
    fprintf(f, "mem_gb = %.10g\n", h->mem_bytes / 1e9);
    fprintf(f, "bw_gbs = %.10g\n", h->bw / 1e9);
    fprintf(f, "tflops_f16 = %.10g\n", h->flops_f16 / 1e12);
    fprintf(f, "tflops_int8 = %.10g\n", h->flops_int8 / 1e12);
    fprintf(f, "reserve_gb = %.10g\n", h->reserve_bytes / 1e9);
    fprintf(f, "eff_decode = %.10g\n", h->eff_decode);
    fprintf(f, "eff_prefill = %.10g\n", h->eff_prefill);
    if (h->source[0])
        fprintf(f, "source = %s\n", h->source);
    for (int i = 0; i < c->n_quant; i++) {
        const plan_calib_quant *q = &c->q[i];
        fprintf(f, "\n[quant.%s]\n", q->quant);
        if (q->model[0])
            fprintf(f, "model = %s\n", q->model);
        fprintf(f, "tok_s = %.10g\n", q->tok_s);
        fprintf(f, "bytes_token = %.10g\n", q->bytes_token);
        fprintf(f, "bw_gbs = %.10g\n", q->bw / 1e9);
        fprintf(f, "eff = %.10g\n", q->eff);
    }
    bool ok = !ferror(f);
    ok = fflush(f) == 0 && ok;
    ok = fsync(fileno(f)) == 0 && ok;
    ok = fclose(f) == 0 && ok;
    if (!ok) {
        rc = err_set(SOV_EIO, "cannot write %s: %s", tmp, strerror(errno));
        unlink(tmp);
        return rc;
    }
    if (rename(tmp, path)) {
        rc = err_set(SOV_EIO, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
        unlink(tmp);
        return rc;
    }
    return 0;
}

/* ---- load ----------------------------------------------------------------------- */

enum { C_VERSION, C_WHEN, C_CPU, C_ISA, C_THREADS, C_NAME, C_MEM, C_BW, C_TFLOPS, C_TFLOPS8, C_RESERVE, C_EFF_D,
       C_EFF_P, C_SOURCE, C_N };
static const char *const ckeys[C_N] = {"version", "when",   "cpu",        "isa",        "threads",
                                       "name",    "mem_gb", "bw_gbs",     "tflops_f16", "tflops_int8", "reserve_gb",
                                       "eff_decode", "eff_prefill", "source"};
static const bool creq[C_N] = {[C_VERSION] = true, [C_WHEN] = true,  [C_THREADS] = true, [C_MEM] = true,
                               [C_BW] = true,      [C_EFF_D] = true, [C_EFF_P] = true};

enum { Q_MODEL, Q_TOK_S, Q_BYTES, Q_BW, Q_EFF, Q_N };
static const char *const qkeys[Q_N] = {"model", "tok_s", "bytes_token", "bw_gbs", "eff"};
static const bool qreq[Q_N] = {[Q_TOK_S] = true, [Q_BYTES] = true, [Q_BW] = true, [Q_EFF] = true};

enum { S_NONE, S_CAL, S_QUANT, S_BAD };

typedef struct parser {
    const char *path;
    const char *data;
    size_t len, pos;
    int line;           /* of the line last handed to inih */
    bool stop;          /* the reader hit something fatal */
    plan_calib *c;
    int sect;           /* S_*: the section being read */
    char label[64];     /* its name, for messages */
    int sect_line;      /* its header line */
    int cal_line;       /* header line of [calibration] (0: not seen) */
    int q_line[PLAN_CALIB_MAX_QUANT];
    int kline[C_N];     /* line of each key of the current section (0: not given) */
    int err;
    char msg[512];
} parser;

__attribute__((format(printf, 4, 5)))
static void fail(parser *p, int code, int line, const char *fmt, ...)
{
    if (p->err)
        return;
    va_list ap;
    va_start(ap, fmt);
    ini_line_vmsg(p->msg, sizeof p->msg, p->path, line, fmt, ap);
    va_end(ap);
    p->err = code;
}

/* End of the current section: its required keys. */
static void close_section(parser *p)
{
    if (p->sect == S_CAL || p->sect == S_QUANT) {
        const bool *req = p->sect == S_CAL ? creq : qreq;
        const char *const *keys = p->sect == S_CAL ? ckeys : qkeys;
        int nk = p->sect == S_CAL ? C_N : Q_N;
        for (int k = 0; k < nk; k++)
            if (req[k] && !p->kline[k])
                fail(p, SOV_EINVAL, p->sect_line, "[%s] %s: missing (required)", p->label, keys[k]);
    }
    p->sect = S_NONE;
}

static void header(parser *p, const char *s)
{
    close_section(p);
    p->sect = S_BAD;
    const char *end = strchr(s, ']');
    if (!end) {
        fail(p, SOV_EFORMAT, p->line, "section header without ']'");
        return;
    }
    const char *rest = end + 1;
    while (isspace((unsigned char)*rest))
        rest++;
    if (*rest && *rest != ';' && *rest != '#') {
        fail(p, SOV_EFORMAT, p->line, "unexpected text after the section header");
        return;
    }
    const char *b = s + 1, *e = end;
    while (b < e && isspace((unsigned char)*b))
        b++;
    while (e > b && isspace((unsigned char)e[-1]))
        e--;
    char label[128]; /* a copy: inih parses the line after us */
    snprintf(label, sizeof label, "%.*s", (int)(e - b), b);
    snprintf(p->label, sizeof p->label, "%.60s", label);
    memset(p->kline, 0, sizeof p->kline);
    p->sect_line = p->line;
    if (!strcmp(label, "calibration")) {
        if (p->cal_line) {
            fail(p, SOV_EINVAL, p->line, "[calibration] duplicate section (first at line %d)", p->cal_line);
            return;
        }
        p->cal_line = p->line;
        p->sect = S_CAL;
        return;
    }
    if (strncmp(label, "quant.", 6)) {
        fail(p, SOV_EINVAL, p->line, "[%.60s] unknown section (expected [calibration] or [quant.NAME])", label);
        return;
    }
    const char *q = label + 6;
    plan_calib *c = p->c;
    if (strlen(q) >= sizeof c->q[0].quant || !quant_name_ok(q)) {
        fail(p, SOV_EINVAL, p->line, "[%.60s] unknown quant (lower case, one of sov plan's quant names)", label);
        return;
    }
    for (int i = 0; i < c->n_quant; i++)
        if (!strcmp(c->q[i].quant, q)) {
            fail(p, SOV_EINVAL, p->line, "[%s] duplicate section (first at line %d)", label, p->q_line[i]);
            return;
        }
    if (c->n_quant == PLAN_CALIB_MAX_QUANT) {
        fail(p, SOV_EINVAL, p->line, "[%s] more than %d quants", label, PLAN_CALIB_MAX_QUANT);
        return;
    }
    p->q_line[c->n_quant] = p->line;
    snprintf(c->q[c->n_quant].quant, sizeof c->q[0].quant, "%.*s", (int)sizeof c->q[0].quant - 1, q);
    c->n_quant++;
    p->sect = S_QUANT;
}

/* inih's line reader: one line of the file per call. */
static char *reader(char *str, int num, void *stream)
{
    parser *p = stream;
    if (p->stop)
        return NULL;
    int r = ini_line_next(p->data, p->len, &p->pos, &p->line, str, num);
    if (r == INI_LINE_END)
        return NULL;
    if (r != INI_LINE_OK) {
        if (r == INI_LINE_NUL)
            fail(p, SOV_EFORMAT, p->line, "NUL byte in the line");
        else
            fail(p, SOV_EFORMAT, p->line, "line longer than %d characters", num - 3);
        p->stop = true;
        return NULL;
    }
    size_t n = strlen(str);
    if (*str == '[')
        header(p, str);
    else if (*str && *str != ';' && *str != '#' && !strpbrk(str, "=:"))
        fail(p, SOV_EFORMAT, p->line, "expected [section] or key = value");
    ini_line_finish(str, n);
    return str;
}

static bool num_of(const char *v, double *out)
{
    if (!v || !*v)
        return false;
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (errno || *end || !isfinite(d))
        return false;
    *out = d;
    return true;
}

static void put_str(parser *p, const char *key, const char *v, char *dst, size_t cap)
{
    if (strlen(v) >= cap)
        fail(p, SOV_EINVAL, p->line, "[%s] %s: longer than %zu characters", p->label, key, cap - 1);
    else
        snprintf(dst, cap, "%s", v);
}

static void cal_key(parser *p, int k, const char *v)
{
    plan_calib *c = p->c;
    plan_hw *h = &c->hw;
    switch (k) {
    case C_WHEN:
        if (!*v)
            fail(p, SOV_EINVAL, p->line, "[calibration] when: empty");
        put_str(p, ckeys[k], v, c->when, sizeof c->when);
        return;
    case C_CPU: put_str(p, ckeys[k], v, c->cpu, sizeof c->cpu); return;
    case C_ISA: put_str(p, ckeys[k], v, c->isa, sizeof c->isa); return;
    case C_NAME: put_str(p, ckeys[k], v, h->name, sizeof h->name); return;
    case C_SOURCE: put_str(p, ckeys[k], v, h->source, sizeof h->source); return;
    default: break;
    }
    double d;
    if (!num_of(v, &d)) {
        fail(p, SOV_EINVAL, p->line, "[calibration] %s: not a number: \"%.40s\"", ckeys[k], v);
        return;
    }
    const char *range = NULL;
    switch (k) {
    case C_VERSION:
        if (d != CALIB_VERSION)
            range = "only version 1 is known";
        break;
    case C_THREADS:
        if (d != floor(d) || d < 1 || d > 4096)
            range = "an integer 1 to 4096";
        else
            c->threads = (int)d;
        break;
    case C_MEM: if (d > 0) h->mem_bytes = d * 1e9; else range = "> 0"; break;
    case C_BW: if (d > 0) h->bw = d * 1e9; else range = "> 0"; break;
    case C_TFLOPS: if (d >= 0) h->flops_f16 = d * 1e12; else range = ">= 0"; break;
    case C_TFLOPS8: if (d >= 0) h->flops_int8 = d * 1e12; else range = ">= 0"; break;
    case C_RESERVE: if (d >= 0) h->reserve_bytes = d * 1e9; else range = ">= 0"; break;
    case C_EFF_D: if (eff_ok(d)) h->eff_decode = d; else range = "0 < eff <= 1"; break;
    case C_EFF_P: if (eff_p_ok(d)) h->eff_prefill = d; else range = "0 < eff_prefill <= 1"; break;
    default: break;
    }
    if (range)
        fail(p, SOV_EINVAL, p->line, "[calibration] %s: out of range: %g (%s)", ckeys[k], d, range);
}

static void quant_key(parser *p, int k, const char *v)
{
    plan_calib_quant *q = &p->c->q[p->c->n_quant - 1];
    if (k == Q_MODEL) {
        put_str(p, qkeys[k], v, q->model, sizeof q->model);
        return;
    }
    double d;
    if (!num_of(v, &d)) {
        fail(p, SOV_EINVAL, p->line, "[%s] %s: not a number: \"%.40s\"", p->label, qkeys[k], v);
        return;
    }
    bool ok = k == Q_EFF ? eff_ok(d) : d > 0;
    if (!ok) {
        fail(p, SOV_EINVAL, p->line, "[%s] %s: out of range: %g (%s)", p->label, qkeys[k], d,
             k == Q_EFF ? "0 < eff <= 2" : "> 0");
        return;
    }
    switch (k) {
    case Q_TOK_S: q->tok_s = d; break;
    case Q_BYTES: q->bytes_token = d; break;
    case Q_BW: q->bw = d * 1e9; break;
    default: q->eff = d; break;
    }
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
    (void)section; /* the reader keeps the real one */
    parser *p = user;
    if (p->stop || p->err)
        return 1;
    if (p->sect == S_BAD)
        return 1; /* its header was already refused */
    if (p->sect == S_NONE) {
        fail(p, SOV_EINVAL, p->line, "%s: key outside any section", name);
        return 1;
    }
    const char *const *keys = p->sect == S_CAL ? ckeys : qkeys;
    int nk = p->sect == S_CAL ? C_N : Q_N, k = 0;
    while (k < nk && strcmp(keys[k], name))
        k++;
    if (k == nk) {
        fail(p, SOV_EINVAL, p->line, "[%s] %s: unknown key", p->label, name);
        return 1;
    }
    if (p->kline[k]) {
        fail(p, SOV_EINVAL, p->line, "[%s] %s: duplicate key (first at line %d)", p->label, name, p->kline[k]);
        return 1;
    }
    p->kline[k] = p->line;
    if (p->sect == S_CAL)
        cal_key(p, k, value ? value : "");
    else
        quant_key(p, k, value ? value : "");
    return 1;
}

int plan_calib_load(const char *path, plan_calib *out)
{
    if (!path || !*path || !out)
        return err_set(SOV_EINVAL, "plan_calib_load: no file name");
    memset(out, 0, sizeof *out);
    struct stat st;
    if (stat(path, &st)) {
        if (errno == ENOENT)
            return err_set(SOV_ENOTFOUND, "%s: no calibration file (run sov plan --calibrate)", path);
        return err_set(SOV_EIO, "%s: cannot read: %s", path, strerror(errno));
    }
    if (!S_ISREG(st.st_mode))
        return err_set(SOV_EIO, "%s: not a regular file", path);
    if (st.st_size > (1 << 20))
        return err_set(SOV_EFORMAT, "%s: too large for a calibration file", path);
    char *data = NULL;
    size_t len = 0;
    int rc = file_read_all(path, &data, &len);
    if (rc)
        return rc;
    parser p = {.path = path, .data = data, .len = len, .c = out};
    int r = ini_parse_stream(reader, &p, handler, &p);
    if (r == -2)
        fail(&p, SOV_ENOMEM, 0, "out of memory");
    else if (r > 0)
        fail(&p, SOV_EFORMAT, r, "syntax error");
    if (!p.stop)
        close_section(&p);
    if (!p.cal_line)
        fail(&p, SOV_EINVAL, 0, "no [calibration] section");
    free(data);
    if (p.err) {
        memset(out, 0, sizeof *out);
        return err_set(p.err, "%s", p.msg);
    }
    plan_hw *h = &out->hw;
    snprintf(h->id, sizeof h->id, "this");
    if (!h->name[0])
        snprintf(h->name, sizeof h->name, "this machine (calibrated)");
    h->calibrated = true;
    return 0;
}

/* ---- plan_calibrate --------------------------------------------------------- */

static void say(const plan_calib_opts *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(const plan_calib_opts *o, const char *fmt, ...)
{
    if (!o->progress)
        return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(o->progress, fmt, ap);
    va_end(ap);
    fflush(o->progress);
}

/* The CPU's model name from /proc/cpuinfo, made safe for the INI file
 * (control characters and ';' / '#' become blanks, blanks squeezed). */
static void cpu_model(char *out, size_t cap)
{
    snprintf(out, cap, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        char *c;
        if (strncmp(line, "model name", 10) || !(c = strchr(line, ':')))
            continue;
        size_t n = 0;
        for (c++; *c && n + 1 < cap; c++) {
            char ch = (unsigned char)*c < 0x20 || *c == 0x7f || *c == ';' || *c == '#' ? ' ' : *c;
            if (ch == ' ' && (n == 0 || out[n - 1] == ' '))
                continue;
            out[n++] = ch;
        }
        while (n && out[n - 1] == ' ')
            n--;
        out[n] = 0;
        if (!n)
            snprintf(out, cap, "unknown CPU");
        break;
    }
    fclose(f);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median of v[0..n) (n >= 1; sorts v). */
static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Whether the GGUF at path is the calibration model: shape, seed and file type. */
static bool cached_ok(const char *path, const quant_mix *mix)
{
    gguf *g = NULL;
    if (access(path, R_OK) || gguf_open(&g, path))
        return false;
    gguf_str shape;
    int64_t seed = -1, ftype = -1;
    bool ok = !gguf_get_str(g, "sov.synth.shape", &shape) && shape.len == strlen(CALIB_SHAPE) &&
              !memcmp(shape.ptr, CALIB_SHAPE, shape.len) && !gguf_get_i64(g, "sov.synth.seed", &seed) &&
              seed == PLAN_CALIB_SEED && !gguf_get_i64(g, "general.file_type", &ftype) &&
              ftype == (int64_t)mix->ftype;
    gguf_close(g);
    return ok;
}

/* Removes "<name>.part.PID*" files in dir left by calibrations that died
 * while synthesizing (PID no longer running). */
static void remove_stale_parts(const char *dir, const char *name)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    size_t nl = strlen(name);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, name, nl) || strncmp(e->d_name + nl, ".part.", 6))
            continue;
        char *end;
        long pid = strtol(e->d_name + nl + 6, &end, 10);
        if (end == e->d_name + nl + 6 || pid <= 0 || (*end && *end != '.'))
            continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        char *full = file_path_join(dir, e->d_name);
        if (full)
            unlink(full);
        free(full);
    }
    closedir(d);
}

/* The calibration model of quant in dir, synthesized unless it is there. */
static int ensure_model(const plan_calib_opts *o, const char *dir, const char *quant, pool *pl, char *path,
                        size_t cap)
{
    const quant_mix *mix = quant_mix_find(quant);
    const synth_shape *shape = synth_shape_find(CALIB_SHAPE);
    if (!mix || !shape)
        return err_set(SOV_EINVAL, "calibration model %s %s unknown to this build", CALIB_SHAPE, quant);
    char name[128];
    snprintf(name, sizeof name, "%s-%s-seed%d.gguf", CALIB_SHAPE, quant, PLAN_CALIB_SEED);
    int k = snprintf(path, cap, "%s/%s", dir, name);
    if (k < 0 || (size_t)k >= cap)
        return err_set(SOV_EINVAL, "%s: cache path too long", dir);
    if (cached_ok(path, mix))
        return 0;
    remove_stale_parts(dir, name);
    char part[4200];
    k = snprintf(part, sizeof part, "%s.part.%ld", path, (long)getpid());
    if (k < 0 || (size_t)k >= sizeof part)
        return err_set(SOV_EINVAL, "%s: cache path too long", dir);
    say(o, "  synthesizing %s %s (seed %d) into %s (once; 5 to 15 s)\n", CALIB_SHAPE, quant, PLAN_CALIB_SEED,
             path);
    synth_opts so = {.mix = mix, .seed = PLAN_CALIB_SEED, .pool = pl, .quiet = true};
    if (o->progress == stderr) /* a bar under the progress lines, when they go to a terminal */
        so.prog = progress_new("  synthesizing", 0, PROGRESS_BYTES);
    int rc = synth_write(shape, part, &so);
    progress_done(so.prog);
    if (rc)
        return rc;
    if (rename(part, path)) {
        rc = err_set(SOV_EIO, "cannot rename %s to %s: %s", part, path, strerror(errno));
        unlink(part);
        return rc;
    }
    return 0;
}

int plan_calibrate(const plan_calib_opts *o, plan_calib *out)
{
    if (!o || !out)
        return err_set(SOV_EINVAL, "plan_calibrate: no options");
    memset(out, 0, sizeof *out);
    const int n_gen = o->n_gen ? o->n_gen : PLAN_CALIB_N_GEN, reps = o->reps ? o->reps : PLAN_CALIB_REPS;
    if (o->threads < 0 || o->threads > 512 || n_gen < 1 || n_gen > 1024 || reps < 1 || reps > BENCH_MAX_REPS)
        return err_set(SOV_EINVAL, "plan_calibrate: threads %d (0 to 512), tokens %d (1 to 1024), runs %d (1 to %d)",
                       o->threads, n_gen, reps, BENCH_MAX_REPS);
    const int threads = o->threads ? o->threads : pool_cpu_count();
    char cache[4096];
    const char *dir = o->cache_dir;
    if (!dir && !(dir = plan_calib_default_cache(cache, sizeof cache)))
        return err_set(SOV_EIO, "no cache directory for the calibration models (set SOV_CACHE)");

    pool *pl = NULL;
    membw *bwb = NULL;
    bench_model_result *br = NULL;
    double all_bw[N_CALIB_QUANTS * BENCH_MAX_REPS];
    int n_bw = 0, rc;
    plan_hw *h = &out->hw;

    say(o, "calibrating this machine: memory, read bandwidth, fp32 peak...\n");
    if ((rc = plan_hw_this(h)))
        goto fail;
    const double bw_this = h->bw;
    if ((rc = pool_new(&pl, threads)))
        goto fail;
    cpu_peak_info ci;
    cpu_peak_info_get(&ci);
    double fma = 0;
    const char *fk = "?";
    if ((rc = cpu_fma_measure(pl, 3, &fma, &fk)))
        goto fail;
    const double theory = cpu_peak_theory_gflops(&ci, threads), peak = (theory > fma ? theory : fma) * 1e9;
    /* the quantized matrix kernels compute in int8: their peak bounds pp on q4_0 */
    const double peak8 = peak * plan_hw_int8_per_fp32();
    unsigned long long bw_bytes = 512ull << 20;
    if (h->mem_bytes / 8 < (double)bw_bytes)
        bw_bytes = (unsigned long long)(h->mem_bytes / 8);
    if ((rc = membw_new(&bwb, bw_bytes < (1ull << 20) ? 1ull << 20 : bw_bytes)))
        goto fail;
    if (!(br = malloc(sizeof *br))) {
        rc = err_set(SOV_ENOMEM, "out of memory");
        goto fail;
    }
    if ((rc = mkdir_p(dir)))
        goto fail;
    say(o, "  %.1f GB, %.1f GB/s (all %d CPUs), fp32 peak %.0f GFLOP/s, int8 %.0f GOP/s at %d thread%s; models in "
                "%s\n",
             h->mem_bytes / 1e9, bw_this / 1e9, pool_cpu_count(), peak / 1e9, peak8 / 1e9, threads,
             threads == 1 ? "" : "s", dir);

    double eff_p = 0, pp_tps = 0, eff_q[N_CALIB_QUANTS];
    for (int qi = 0; qi < N_CALIB_QUANTS; qi++) {
        const char *quant = calib_quants[qi];
        char path[4352];
        if ((rc = ensure_model(o, dir, quant, pl, path, sizeof path)))
            goto fail;
        say(o, "  %s: %d runs of tg%d%s...\n", quant, reps, n_gen, qi == 0 ? " and pp" : "");
        bench_model_opts bo = {.n_pp = qi == 0 ? PLAN_CALIB_N_PP : 0, .n_gen = n_gen, .reps = reps,
                               .kv_type = KV_F32, .bw = bwb};
        if ((rc = bench_model(path, pl, &bo, br)))
            goto fail;
        double eff[BENCH_MAX_REPS], sorted[BENCH_MAX_REPS];
        for (int r = 0; r < reps; r++) {
            double bw = br->tg_bw[r] * 1e9;
            eff[r] = bw > 0 ? br->tg_runs[r] * br->tg_bytes_token / bw : 0;
            sorted[r] = eff[r];
            all_bw[n_bw++] = bw;
        }
        qsort(sorted, (size_t)reps, sizeof sorted[0], cmp_double);
        const double mid = sorted[(reps - 1) / 2]; /* a real run: the lower middle one */
        int m = 0;
        while (m < reps - 1 && eff[m] != mid)
            m++;
        plan_calib_quant *q = &out->q[out->n_quant++];
        snprintf(q->quant, sizeof q->quant, "%s", quant);
        snprintf(q->model, sizeof q->model, "%s seed %d", CALIB_SHAPE, PLAN_CALIB_SEED);
        q->tok_s = br->tg_runs[m];
        q->bytes_token = br->tg_bytes_token;
        q->bw = br->tg_bw[m] * 1e9;
        q->eff = eff[m];
        eff_q[qi] = q->eff;
        if (!eff_ok(q->eff)) {
            rc = err_set(SOV_ERANGE, "%s: eff %.3f out of range (0, %g]: the measurement failed", quant, q->eff,
                         EFF_MAX);
            goto fail;
        }
        say(o, "  %s: %.2f tok/s x %.1f MB/token / %.2f GB/s = eff %.3f (median of %d runs, %.3f to %.3f)\n",
                 quant, q->tok_s, q->bytes_token / 1e6, q->bw / 1e9, q->eff, reps, sorted[0], sorted[reps - 1]);
        if (qi == 0) {
            double pr[BENCH_MAX_REPS];
            memcpy(pr, br->pp_runs, sizeof pr);
            pp_tps = median(pr, reps);
            eff_p = peak8 > 0 ? pp_tps * br->pp_flops_token / peak8 : 0;
            say(o, "  pp%d on %s: %.1f tok/s x %.2f GFLOP/token / %.0f GOP/s (int8 peak) = eff_prefill %.3f\n",
                     PLAN_CALIB_N_PP, quant, pp_tps, br->pp_flops_token / 1e9, peak8 / 1e9, eff_p);
        }
    }
    if (!eff_p_ok(eff_p)) {
        rc = err_set(SOV_ERANGE, "eff_prefill %.3f out of range (0, %g]: the measurement failed", eff_p, EFF_P_MAX);
        goto fail;
    }

    h->bw = median(all_bw, n_bw);
    h->flops_f16 = peak;
    h->flops_int8 = peak8;
    h->eff_decode = median(eff_q, N_CALIB_QUANTS);
    h->eff_prefill = eff_p;
    h->calibrated = true;
    out->threads = threads;
    cpu_model(out->cpu, sizeof out->cpu);
    snprintf(out->isa, sizeof out->isa, "%s", kern_best()->name);
    const char *ths = threads == 1 ? "" : "s";
    snprintf(h->name, sizeof h->name, "%.60s, %d thread%s (calibrated)", out->cpu, threads, ths);
    snprintf(h->source, sizeof h->source,
             "calibrated: bw median of %d membw runs after tg (plan_hw_this %.1f GB/s); fp32 %s at %d thread%s",
             n_bw, bw_this / 1e9, theory > fma ? "table" : "FMA", threads, ths);
    time_t t = time(NULL);
    struct tm tm;
    if (!gmtime_r(&t, &tm) || !strftime(out->when, sizeof out->when, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(out->when, sizeof out->when, "unknown");
    free(br);
    membw_free(bwb);
    pool_free(pl);
    return 0;
fail:
    free(br);
    membw_free(bwb);
    pool_free(pl);
    memset(out, 0, sizeof *out);
    return rc;
}

/* ---- print ------------------------------------------------------------------- */

void plan_calib_print(FILE *f, const plan_calib *c)
{
    if (!f || !c)
        return;
    const plan_hw *h = &c->hw;
    fprintf(f, "calibration of this machine, %s: %s, %s kernels, %d thread%s\n", c->when[0] ? c->when : "?",
            c->cpu[0] ? c->cpu : "?", c->isa[0] ? c->isa : "?", c->threads, c->threads == 1 ? "" : "s");
    fprintf(f, "memory %.1f GB, read bandwidth %.2f GB/s, fp32 peak %.0f GFLOP/s, int8 peak %.0f GOP/s\n",
            h->mem_bytes / 1e9, h->bw / 1e9, h->flops_f16 / 1e9, h->flops_int8 / 1e9);
    if (h->source[0])
        fprintf(f, "(%s)\n", h->source);
    fprintf(f, "\n| %-7s | %-24s | %8s | %8s | %6s | %6s |\n", "quant", "model", "tok/s", "MB/token", "GB/s", "eff");
    fprintf(f, "| ------- | ------------------------ | -------: | -------: | -----: | -----: |\n");
    for (int i = 0; i < c->n_quant; i++) {
        const plan_calib_quant *q = &c->q[i];
        fprintf(f, "| %-7s | %-24.24s | %8.2f | %8.1f | %6.2f | %6.3f |\n", q->quant, q->model[0] ? q->model : "-",
                q->tok_s, q->bytes_token / 1e6, q->bw / 1e9, q->eff);
    }
    fprintf(f, "\neff = tok/s x bytes read per token / read bandwidth measured right after the run\n"
               "      (each quant: its run of median eff)\n");
    fprintf(f, "eff_decode  = %.3f (median of the quants' eff; used for a quant not measured)\n", h->eff_decode);
    fprintf(f, "eff_prefill = %.3f (pp tok/s x matrix flops per token / int8 peak)\n", h->eff_prefill);
    fprintf(f, "sov plan --hw this: decode tok/s = %.2f GB/s x eff(quant) / bytes per token of the model\n",
            h->bw / 1e9);
}
