/* Unit tests of the hardware profiles (src/plan/hw.c): the shipped
 * data/plan/hardware.ini, errors of bad files, the default path and the
 * measured profile of this machine. Run from the repository root. */
#include "t.h"

#include "base/err.h"
#include "plan/hw.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SHIPPED "data/plan/hardware.ini"

static void test_shipped(void)
{
    plan_hw *hw = NULL;
    int n = 0;
    int rc = plan_hw_load(SHIPPED, &hw, &n);
    if (!t_check(rc == 0 && hw && n >= 6, "shipped: " SHIPPED " loads", "rc %d n %d: %s", rc, n, err_msg()))
        return;
    static const char *const want[] = {"ryzen-ai-max-395", "dgx-spark", "rtx-4090-box",
                                       "apple-m3-ultra", "apple-m4-max", "cloud-h100"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        t_check(plan_hw_find(hw, n, want[i]) != NULL, "shipped: has a profile", "%s missing", want[i]);
    int bad = 0;
    char which[128] = "";
    for (int i = 0; i < n; i++) {
        const plan_hw *h = &hw[i];
        bool ok = h->name[0] && h->source[0] && h->mem_bytes > 0 && h->bw > 0 && h->eff_decode > 0 &&
                  h->eff_decode <= 1 && h->eff_prefill > 0 && h->eff_prefill <= 1 && !h->calibrated &&
                  h->reserve_bytes < h->mem_bytes && (h->price > 0) != (h->price_hour > 0);
        if (!ok) {
            bad++;
            snprintf(which, sizeof which, "%s", h->id);
        }
    }
    t_check(bad == 0, "shipped: every profile has name, mem, bw, source, eff in (0,1], a price or an hourly price",
            "%d bad, e.g. %s", bad, which);
    const plan_hw *r = plan_hw_find(hw, n, "ryzen-ai-max-395");
    t_check(r && r->bw == 8000e6 * 32 && r->bw == 256e9, "shipped: ryzen-ai-max-395 bw = 8000e6 x 32 B = 256e9",
            "%g", r ? r->bw : -1);
    t_check(r && r->mem_bytes == 128e9, "shipped: ryzen-ai-max-395 128 GB", "%g", r ? r->mem_bytes : -1);
    t_check(r && fabs(r->flops_f16 - 59.4e12) < 1e6, "shipped: TFLOPS converted to flop/s", "%g",
            r ? r->flops_f16 : -1);
    const plan_hw *d = plan_hw_find(hw, n, "dgx-spark");
    t_check(d && d->bw == 273e9 && d->mem_bytes == 128e9, "shipped: dgx-spark 273e9 B/s, 128 GB", "%g",
            d ? d->bw : -1);
    const plan_hw *g = plan_hw_find(hw, n, "rtx-4090-box");
    t_check(g && g->bw == 1008e9 && g->mem_bytes == 24e9, "shipped: rtx-4090-box 1008e9 B/s, 24 GB", "%g",
            g ? g->bw : -1);
    const plan_hw *c = plan_hw_find(hw, n, "cloud-h100");
    t_check(c && c->price == 0 && c->price_hour > 0 && c->bw == 3350e9, "shipped: cloud-h100 rented, 3.35 TB/s",
            "price %g/h", c ? c->price_hour : -1);
    t_check(!plan_hw_find(hw, n, "nope") && !plan_hw_find(NULL, 0, "x"), "find: unknown id -> NULL", "found");
    plan_hw_free(hw);
}

static char tmp_path[64];

/* Writes text to a temporary file and loads it; returns rc, the message in msg. */
static int load_text(const char *text, char *msg, size_t cap, int *n_out)
{
    snprintf(tmp_path, sizeof tmp_path, "/tmp/test_plan_hw_%d.ini", (int)getpid());
    FILE *f = fopen(tmp_path, "w");
    if (!f)
        return 1;
    fputs(text, f);
    fclose(f);
    plan_hw *hw = NULL;
    int n = -1;
    int rc = plan_hw_load(tmp_path, &hw, &n);
    snprintf(msg, cap, "%s", rc ? err_msg() : "");
    if (n_out)
        *n_out = n;
    if (rc && (hw || n != 0))
        rc = 999; /* an error must leave nothing behind */
    plan_hw_free(hw);
    unlink(tmp_path);
    return rc;
}

/* The error names the file and line, and contains each of the needles. */
static void bad_file(const char *what, const char *text, int code, int line, const char *n1, const char *n2)
{
    char msg[600], want[128];
    int rc = load_text(text, msg, sizeof msg, NULL);
    snprintf(want, sizeof want, "%s:%d: ", tmp_path, line);
    bool ok = rc == code && !strncmp(msg, want, strlen(want)) && (!n1 || strstr(msg, n1)) &&
              (!n2 || strstr(msg, n2)) && !strchr(msg, '\n');
    char name[160];
    snprintf(name, sizeof name, "bad file: %s", what);
    t_check(ok, name, "rc %d (want %d), msg \"%s\" (want %s... %s %s)", rc, code, msg, want, n1 ? n1 : "",
            n2 ? n2 : "");
}

#define OK_HEAD "[hw.a]\nname = A\nmem_gb = 1\nbw_gbs = 2\n"

static void test_bad(void)
{
    char msg[600];
    int n = 0;
    int rc = load_text("# c\n; c\n\n  [hw.a]  ; x\n  name = A box ; comment\nmem_gb = 1.5\r\nbw_gbs = 2e1\n"
                       "source = s\n[hw.b]\nname=B\nmem_gb=3\nbw_gbs=4\neff_decode = 1\n",
                       msg, sizeof msg, &n);
    t_check(rc == 0 && n == 2, "good: comments, indentation, CRLF, two profiles", "rc %d n %d: %s", rc, n, msg);

    bad_file("unknown key", OK_HEAD "bw_gb = 3\n", SOV_EINVAL, 5, "[hw.a] bw_gb", "unknown key");
    bad_file("bad number", OK_HEAD "tflops_f16 = 12x\n", SOV_EINVAL, 5, "[hw.a] tflops_f16", "not a number");
    bad_file("empty number", OK_HEAD "price =\n", SOV_EINVAL, 5, "[hw.a] price", "not a number");
    bad_file("negative", OK_HEAD "watts_load = -3\n", SOV_EINVAL, 5, "[hw.a] watts_load", "out of range");
    bad_file("eff above 1", OK_HEAD "eff_decode = 1.5\n", SOV_EINVAL, 5, "[hw.a] eff_decode", "out of range");
    bad_file("zero bw", "[hw.a]\nname = A\nmem_gb = 1\nbw_gbs = 0\n", SOV_EINVAL, 4, "[hw.a] bw_gbs", "out of range");
    bad_file("missing bw", "\n[hw.a]\nname = A\nmem_gb = 1\n[hw.b]\nname = B\nmem_gb = 1\nbw_gbs = 1\n", SOV_EINVAL,
             2, "[hw.a] bw_gbs", "missing");
    bad_file("missing mem (last section)", OK_HEAD "[hw.b]\nname = B\nbw_gbs = 1\n", SOV_EINVAL, 5,
             "[hw.b] mem_gb", "missing");
    bad_file("missing name", "[hw.a]\nmem_gb = 1\nbw_gbs = 2\n", SOV_EINVAL, 1, "[hw.a] name", "missing");
    bad_file("duplicate id", OK_HEAD "[hw.b]\nname = B\nmem_gb = 1\nbw_gbs = 1\n[hw.a]\nname = A2\n", SOV_EINVAL, 9,
             "[hw.a]", "duplicate profile (first at line 1)");
    bad_file("duplicate key", OK_HEAD "mem_gb = 2\n", SOV_EINVAL, 5, "[hw.a] mem_gb", "duplicate key (first at line 3)");
    bad_file("unknown section", OK_HEAD "[model.x]\nname = y\n", SOV_EINVAL, 5, "[model.x]", "unknown section");
    bad_file("bad id", "[hw.a b]\nname = A\n", SOV_EINVAL, 1, "[hw.a b]", "bad profile id");
    bad_file("key outside a section", "name = A\n" OK_HEAD, SOV_EINVAL, 1, "name", "outside");
    bad_file("not key = value", OK_HEAD "what is this\n", SOV_EFORMAT, 5, "expected", NULL);
    bad_file("header without ]", "[hw.a\n", SOV_EFORMAT, 1, "without ']'", NULL);
    char longline[400];
    memset(longline, 'x', sizeof longline);
    memcpy(longline, "# ", 2);
    longline[sizeof longline - 2] = '\n';
    longline[sizeof longline - 1] = 0;
    char text[600];
    snprintf(text, sizeof text, OK_HEAD "%s", longline);
    bad_file("line too long", text, SOV_EFORMAT, 5, "longer than", NULL);
    char src[300];
    memset(src, 's', sizeof src);
    src[sizeof src - 1] = 0;
    snprintf(text, sizeof text, OK_HEAD "source = %.170s\n", src);
    bad_file("source too long", text, SOV_EINVAL, 5, "[hw.a] source", "longer than");
    /* the first error is the one reported */
    bad_file("first error wins", OK_HEAD "foo = 1\nmem_gb = x\n", SOV_EINVAL, 5, "foo", NULL);

    rc = load_text("# nothing\n", msg, sizeof msg, NULL);
    t_check(rc == SOV_EINVAL && strstr(msg, "no [hw.ID] section"), "bad file: no profile", "rc %d: %s", rc, msg);
    plan_hw *hw = NULL;
    n = 7;
    rc = plan_hw_load("/nonexistent/hardware.ini", &hw, &n);
    t_check(rc == SOV_EIO && !hw && n == 0 && strstr(err_msg(), "/nonexistent/hardware.ini"),
            "bad file: missing file -> SOV_EIO naming it", "rc %d: %s", rc, err_msg());
}

static void test_default_path(void)
{
    char buf[1024];
    const char *old = getenv("SOV_DATA");
    char *saved = old ? strdup(old) : NULL;
    setenv("SOV_DATA", "/opt/sov-data", 1);
    const char *p = plan_hw_default_path(buf, sizeof buf);
    t_check(p && !strcmp(p, "/opt/sov-data/plan/hardware.ini"), "default path: $SOV_DATA/plan/hardware.ini", "%s",
            p ? p : "NULL");
    t_check(plan_hw_default_path(buf, 8) == NULL, "default path: too small a buffer -> NULL", "fit");
    unsetenv("SOV_DATA");
    p = plan_hw_default_path(buf, sizeof buf);
    /* the test binary is BUILD/tests/test_plan_hw: no data/ under BUILD, so ./data */
    t_check(p && (!strcmp(p, SHIPPED) || strstr(p, "/data/plan/hardware.ini")) && access(p, R_OK) == 0,
            "default path: without SOV_DATA, a readable data/plan/hardware.ini", "%s", p ? p : "NULL");
    if (saved) {
        setenv("SOV_DATA", saved, 1);
        free(saved);
    }
}

static void test_this(void)
{
    plan_hw h;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = plan_hw_this(&h);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    if (!t_check(rc == 0, "this: measured", "rc %d: %s", rc, err_msg()))
        return;
    printf("# this: %s | mem %.1f GB, bw %.1f GB/s, fp32 %.1f GFLOPS, %.2f s | %s\n", h.name, h.mem_bytes / 1e9,
           h.bw / 1e9, h.flops_f16 / 1e9, s, h.source);
    t_check(!strcmp(h.id, "this") && h.name[0] && h.source[0], "this: id, name, source", "%s / %s", h.id, h.name);
    t_check(h.mem_bytes > 0 && h.bw > 0 && h.flops_f16 > 0, "this: positive memory, bandwidth and flops",
            "mem %g bw %g flops %g", h.mem_bytes, h.bw, h.flops_f16);
    t_check(h.bw < 1e13 && h.mem_bytes < 1e14, "this: plausible magnitudes", "bw %g mem %g", h.bw, h.mem_bytes);
    t_check(!h.calibrated && h.eff_decode == PLAN_HW_EFF_DECODE && h.eff_prefill == PLAN_HW_EFF_PREFILL,
            "this: eff defaults, not calibrated", "%g %g", h.eff_decode, h.eff_prefill);
    t_check(s < 30, "this: quick", "%.1f s", s);
    t_check(plan_hw_measure(&h, 1000, 1) == SOV_EINVAL, "this: a buffer below 1 MiB is refused", "accepted");
}

int main(void)
{
    test_shipped();
    test_bad();
    test_default_path();
    test_this();
    return t_done();
}
