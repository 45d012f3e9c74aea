/* hw: hardware profiles (see hw.h).
 *
 * As in src/router/config.c, libinih splits key = value lines (stripping
 * whitespace and ';' inline comments) while our own line reader counts
 * lines, strips leading whitespace (no inih continuation lines), refuses
 * lines longer than inih's buffer and reads the [section] headers itself
 * (inih reports no empty sections and truncates long names). The first
 * error found is the one reported: sections are checked for missing keys
 * when the next header (or the end of the file) is reached, before any key
 * of a later line is seen, so the first error is also the earliest. */
#include "hw.h"

#include "../engine/kern/kern.h"

#include "../base/cpupeak.h"
#include "../base/err.h"
#include "../base/iniline.h"
#include "../base/membw.h"
#include "../base/pool.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum {
    K_NAME, K_MEM, K_BW, K_F16, K_INT8, K_INT4, K_WLOAD, K_WIDLE, K_PRICE, K_PRICE_H,
    K_RESERVE, K_EFF_D, K_EFF_P, K_SOURCE, K_N
};
static const char *const keys[K_N] = {
    "name", "mem_gb", "bw_gbs", "tflops_f16", "tflops_int8", "tflops_int4", "watts_load",
    "watts_idle", "price", "price_hour", "reserve_gb", "eff_decode", "eff_prefill", "source",
};

typedef struct parser {
    const char *path;
    const char *data;
    size_t len, pos;
    int line;             /* of the line last handed to inih */
    bool stop;            /* the reader hit something fatal */
    plan_hw *hw;
    int n, cap;
    int *hw_line;         /* header line of each profile */
    int cur;              /* profile being read (-1: none, or its header was bad) */
    bool in_bad;          /* inside a section whose header was refused */
    int kline[K_N];       /* line of each key of the current profile (0: not given) */
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

/* End of the current profile: required keys. */
static void close_section(parser *p)
{
    if (p->cur < 0)
        return;
    const plan_hw *h = &p->hw[p->cur];
    static const int req[] = {K_NAME, K_MEM, K_BW};
    for (size_t i = 0; i < sizeof req / sizeof req[0]; i++)
        if (!p->kline[req[i]])
            fail(p, SOV_EINVAL, p->hw_line[p->cur], "[hw.%s] %s: missing (required)", h->id, keys[req[i]]);
    p->cur = -1;
}

static bool id_ok(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr("._-", *s))
            return false;
    return true;
}

static void header(parser *p, const char *s)
{
    close_section(p);
    p->in_bad = true;
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
    const char *b = s + 1;
    while (b < end && isspace((unsigned char)*b))
        b++;
    const char *e = end;
    while (e > b && isspace((unsigned char)e[-1]))
        e--;
    char label[128]; /* a copy: inih parses the line after us */
    snprintf(label, sizeof label, "%.*s", (int)(e - b), b);
    b = label;
    if (strncmp(b, "hw.", 3)) {
        fail(p, SOV_EINVAL, p->line, "[%.60s] unknown section (expected [hw.ID])", b);
        return;
    }
    const char *id = b + 3;
    if (!id_ok(id, sizeof p->hw[0].id - 1)) {
        fail(p, SOV_EINVAL, p->line, "[%.60s] bad profile id (1 to %zu of A-Z a-z 0-9 . _ -)", b,
             sizeof p->hw[0].id - 1);
        return;
    }
    for (int i = 0; i < p->n; i++)
        if (!strcmp(p->hw[i].id, id)) {
            fail(p, SOV_EINVAL, p->line, "[hw.%s] duplicate profile (first at line %d)", id, p->hw_line[i]);
            return;
        }
    if (p->n == p->cap) {
        int cap = p->cap ? p->cap * 2 : 8;
        plan_hw *hw = realloc(p->hw, (size_t)cap * sizeof *hw);
        if (hw)
            p->hw = hw;
        int *hl = realloc(p->hw_line, (size_t)cap * sizeof *hl);
        if (hl)
            p->hw_line = hl;
        if (!hw || !hl) {
            p->err = 0; /* out of memory wins over any earlier error */
            fail(p, SOV_ENOMEM, 0, "out of memory");
            p->stop = true;
            return;
        }
        p->cap = cap;
    }
    plan_hw *h = &p->hw[p->n];
    memset(h, 0, sizeof *h);
    snprintf(h->id, sizeof h->id, "%.*s", (int)sizeof h->id - 1, id); /* id_ok checked the length */
    h->eff_decode = PLAN_HW_EFF_DECODE;
    h->eff_prefill = PLAN_HW_EFF_PREFILL;
    p->hw_line[p->n] = p->line;
    p->cur = p->n++;
    p->in_bad = false;
    memset(p->kline, 0, sizeof p->kline);
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
    if (*str == '[') {
        header(p, str);
        if (p->stop)
            return NULL;
    } else if (*str && *str != ';' && *str != '#' && !strpbrk(str, "=:")) {
        fail(p, SOV_EFORMAT, p->line, "expected [hw.ID] or key = value");
    }
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

static int handler(void *user, const char *section, const char *name, const char *value)
{
    (void)section; /* the reader keeps the real one */
    parser *p = user;
    if (p->stop)
        return 1;
    if (p->cur < 0) {
        if (!p->in_bad)
            fail(p, SOV_EINVAL, p->line, "%s: key outside any [hw.ID] section", name);
        return 1;
    }
    plan_hw *h = &p->hw[p->cur];
    int k = 0;
    while (k < K_N && strcmp(keys[k], name))
        k++;
    if (k == K_N) {
        fail(p, SOV_EINVAL, p->line, "[hw.%s] %s: unknown key", h->id, name);
        return 1;
    }
    if (p->kline[k]) {
        fail(p, SOV_EINVAL, p->line, "[hw.%s] %s: duplicate key (first at line %d)", h->id, name, p->kline[k]);
        return 1;
    }
    p->kline[k] = p->line;
    const char *v = value ? value : "";
    if (k == K_NAME || k == K_SOURCE) {
        char *dst = k == K_NAME ? h->name : h->source;
        size_t cap = k == K_NAME ? sizeof h->name : sizeof h->source;
        if (!*v)
            fail(p, SOV_EINVAL, p->line, "[hw.%s] %s: empty", h->id, name);
        else if (strlen(v) >= cap)
            fail(p, SOV_EINVAL, p->line, "[hw.%s] %s: longer than %zu characters", h->id, name, cap - 1);
        else
            snprintf(dst, cap, "%s", v);
        return 1;
    }
    double d;
    if (!num_of(v, &d)) {
        fail(p, SOV_EINVAL, p->line, "[hw.%s] %s: not a number: \"%.40s\"", h->id, name, v);
        return 1;
    }
    if (d < 0 || ((k == K_MEM || k == K_BW) && d <= 0) || ((k == K_EFF_D || k == K_EFF_P) && (d <= 0 || d > 1))) {
        fail(p, SOV_EINVAL, p->line, "[hw.%s] %s: out of range: %g (%s)", h->id, name, d,
             k == K_EFF_D || k == K_EFF_P ? "0 < eff <= 1" : k == K_MEM || k == K_BW ? "> 0" : ">= 0");
        return 1;
    }
    switch (k) {
    case K_MEM: h->mem_bytes = d * 1e9; break;
    case K_BW: h->bw = d * 1e9; break;
    case K_F16: h->flops_f16 = d * 1e12; break;
    case K_INT8: h->flops_int8 = d * 1e12; break;
    case K_INT4: h->flops_int4 = d * 1e12; break;
    case K_WLOAD: h->watts_load = d; break;
    case K_WIDLE: h->watts_idle = d; break;
    case K_PRICE: h->price = d; break;
    case K_PRICE_H: h->price_hour = d; break;
    case K_RESERVE: h->reserve_bytes = d * 1e9; break;
    case K_EFF_D: h->eff_decode = d; break;
    case K_EFF_P: h->eff_prefill = d; break;
    default: break;
    }
    return 1;
}

static int read_all(const char *path, char **out, size_t *len)
{
    *out = NULL;
    char *buf = NULL;
    int rc;
    FILE *f = fopen(path, "rb");
    if (!f)
        return err_set(SOV_EIO, "%s: cannot read: %s", path, strerror(errno));
    size_t cap = 0, n = 0;
    for (;;) {
        if (n == cap) {
            if (cap >= ((size_t)16 << 20)) {
                rc = err_set(SOV_EFORMAT, "%s: too large for a hardware profile file", path);
                goto fail;
            }
            cap = cap ? cap * 2 : 8192;
            char *nb = realloc(buf, cap);
            if (!nb) {
                rc = err_set(SOV_ENOMEM, "%s: out of memory", path);
                goto fail;
            }
            buf = nb;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        rc = err_set(SOV_EIO, "%s: cannot read", path);
        goto fail;
    }
    fclose(f);
    *out = buf;
    *len = n;
    return 0;
fail:
    free(buf);
    fclose(f);
    return rc;
}

int plan_hw_load(const char *path, plan_hw **out, int *n)
{
    if (out)
        *out = NULL;
    if (n)
        *n = 0;
    if (!path || !*path || !out || !n)
        return err_set(SOV_EINVAL, "plan_hw_load: no file name");
    parser p = {.path = path, .cur = -1};
    char *data = NULL;
    size_t len = 0;
    int rc = read_all(path, &data, &len);
    if (rc)
        return rc;
    p.data = data;
    p.len = len;
    int r = ini_parse_stream(reader, &p, handler, &p);
    if (r == -2)
        fail(&p, SOV_ENOMEM, 0, "out of memory");
    else if (r > 0)
        fail(&p, SOV_EFORMAT, r, "syntax error");
    if (!p.stop)
        close_section(&p);
    if (!p.err && p.n == 0)
        fail(&p, SOV_EINVAL, 0, "no [hw.ID] section");
    if (p.err) {
        rc = err_set(p.err, "%s", p.msg);
        goto fail;
    }
    free(data);
    free(p.hw_line);
    *out = p.hw;
    *n = p.n;
    return 0;
fail:
    free(data);
    free(p.hw_line);
    free(p.hw);
    return rc;
}

const plan_hw *plan_hw_find(const plan_hw *hw, int n, const char *id)
{
    if (!hw || !id)
        return NULL;
    for (int i = 0; i < n; i++)
        if (!strcmp(hw[i].id, id))
            return &hw[i];
    return NULL;
}

void plan_hw_free(plan_hw *hw) { free(hw); }

/* ---- default path ---------------------------------------------------------- */

static const char *put(char *buf, size_t cap, const char *fmt, const char *a)
{
    int k = snprintf(buf, cap, fmt, a);
    return k < 0 || (size_t)k >= cap ? NULL : buf;
}

const char *plan_hw_default_path(char *buf, size_t cap)
{
    if (!buf || cap == 0)
        return NULL;
    const char *env = getenv("SOV_DATA");
    if (env && *env)
        return put(buf, cap, "%s/plan/hardware.ini", env);
    char exe[4096];
    ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (k > 0) {
        exe[k] = 0;
        char *sl = strrchr(exe, '/'); /* .../build/sov -> .../build */
        if (sl) {
            *sl = 0;
            sl = strrchr(exe, '/'); /* .../build -> ... */
            if (sl) {
                *sl = 0;
                if (put(buf, cap, "%s/data/plan/hardware.ini", exe) && access(buf, R_OK) == 0)
                    return buf;
            }
        }
    }
    return put(buf, cap, "%s", "data/plan/hardware.ini");
}

/* ---- this machine ---------------------------------------------------------- */

static int mem_total(double *bytes)
{
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f)
        return err_set(SOV_EIO, "/proc/meminfo: cannot read: %s", strerror(errno));
    char line[256];
    unsigned long long kb = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "MemTotal: %llu kB", &kb) == 1)
            break;
    fclose(f);
    if (!kb)
        return err_set(SOV_EIO, "/proc/meminfo: no MemTotal");
    *bytes = (double)kb * 1024.0;
    return 0;
}

static void cpu_name(char *out, size_t cap)
{
    snprintf(out, cap, "this machine");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10))
            continue;
        char *c = strchr(line, ':');
        if (!c)
            break;
        c++;
        while (isspace((unsigned char)*c))
            c++;
        size_t n = strlen(c);
        while (n && isspace((unsigned char)c[n - 1]))
            c[--n] = 0;
        if (n)
            snprintf(out, cap, "%s", c);
        break;
    }
    fclose(f);
}

double plan_hw_int8_per_fp32(void)
{
    const char *k = kern_best()->name;
    return !strcmp(k, "avx512") ? 4.0 : !strcmp(k, "avx2") ? 2.0 : 1.0;
}

int plan_hw_measure(plan_hw *out, unsigned long long bw_bytes, int passes)
{
    if (!out || passes < 1)
        return err_set(SOV_EINVAL, "plan_hw_measure: bad arguments");
    memset(out, 0, sizeof *out);
    pool *pl = NULL;
    membw *b = NULL;
    int rc;
    double mem;
    if ((rc = mem_total(&mem)))
        goto fail;
    int threads = pool_cpu_count();
    if ((rc = pool_new(&pl, threads)))
        goto fail;
    if ((rc = membw_new(&b, bw_bytes)))
        goto fail;
    membw_result bw;
    if ((rc = membw_measure(b, pl, passes, NULL, &bw)))
        goto fail;
    double fma = 0;
    const char *fk = "?";
    if ((rc = cpu_fma_measure(pl, passes, &fma, &fk)))
        goto fail;
    cpu_peak_info ci;
    cpu_peak_info_get(&ci);
    double theory = cpu_peak_theory_gflops(&ci, threads);
    double gflops = theory > fma ? theory : fma;

    snprintf(out->id, sizeof out->id, "this");
    char model[64];
    cpu_name(model, sizeof model);
    snprintf(out->name, sizeof out->name, "%.44s, %d threads, %.12s kernels (this machine)", model, threads,
             kern_best()->name);
    out->mem_bytes = mem;
    out->bw = bw.gbps * 1e9;
    out->flops_f16 = gflops * 1e9;
    out->flops_int8 = out->flops_f16 * plan_hw_int8_per_fp32();
    out->reserve_bytes = 0.1 * mem;
    out->eff_decode = PLAN_HW_EFF_DECODE;
    out->eff_prefill = PLAN_HW_EFF_PREFILL;
    out->calibrated = false;
    snprintf(out->source, sizeof out->source,
             "measured: MemTotal; membw %s %.0f MiB x%d; fp32 %s (FMA %.0f, table %.0f GFLOPS), int8 x%.0f; "
             "reserve assumed",
             bw.kernel, (double)membw_bytes(b) / (1 << 20), passes, theory > fma ? "table" : "FMA", fma, theory,
             plan_hw_int8_per_fp32());
    membw_free(b);
    pool_free(pl);
    return 0;
fail:
    membw_free(b);
    pool_free(pl);
    memset(out, 0, sizeof *out);
    return rc;
}

int plan_hw_this(plan_hw *out)
{
    double mem = 0;
    int rc = mem_total(&mem);
    if (rc)
        return rc;
    unsigned long long bytes = 512ull << 20;
    if (mem / 8 < (double)bytes)
        bytes = (unsigned long long)(mem / 8);
    if (bytes < (1ull << 20))
        bytes = 1ull << 20;
    return plan_hw_measure(out, bytes, 3);
}
