/* Unit tests of the calibration file of `sov plan` (src/plan/calib.c): save
 * and load round trip, errors of bad files (code and FILE:LINE), what save
 * refuses, the default paths and their environment variables, the
 * efficiency lookup and its fallbacks, the summary. The measurement itself
 * (plan_calibrate) is checked end to end by tests/test_plan_calib.sh; here
 * only its refusal of bad options. */
#include "t.h"

#include "base/err.h"
#include "plan/calib.h"

#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmp_dir[128];

static bool close_rel(double a, double b) { return fabs(a - b) <= 1e-9 * fabs(b); }

static void sample(plan_calib *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->hw.id, sizeof c->hw.id, "this");
    snprintf(c->hw.name, sizeof c->hw.name, "Test CPU @ 3.00GHz, 2 threads (calibrated)");
    snprintf(c->hw.source, sizeof c->hw.source, "calibrated: bw median of 20 runs; fp32 FMA");
    c->hw.mem_bytes = 25.27607194e9;
    c->hw.bw = 36.51031626e9;
    c->hw.flops_f16 = 466.0130904e9;
    c->hw.flops_int8 = 1864.052362e9;
    c->hw.reserve_bytes = 2.527607194e9;
    c->hw.eff_decode = 0.8531758434;
    c->hw.eff_prefill = 0.2760128708;
    c->hw.calibrated = true;
    c->threads = 2;
    snprintf(c->cpu, sizeof c->cpu, "Test CPU @ 3.00GHz");
    snprintf(c->isa, sizeof c->isa, "avx512");
    snprintf(c->when, sizeof c->when, "2025-01-31T12:00:00Z");
    static const char *const qs[] = {"q4_0", "q8_0", "q4_k_m", "q6_k"};
    static const double eff[] = {0.876, 0.908, 0.83, 0.741};
    for (int i = 0; i < 4; i++) {
        plan_calib_quant *q = &c->q[c->n_quant++];
        snprintf(q->quant, sizeof q->quant, "%s", qs[i]);
        snprintf(q->model, sizeof q->model, "tinyllama-1.1b seed 1");
        q->tok_s = 56.10843778 / (i + 1);
        q->bytes_token = 583695488.0 * (i + 1) + 0.5;
        q->bw = 37.38817062e9 - i * 1e8;
        q->eff = eff[i];
    }
}

static bool same(const plan_calib *a, const plan_calib *b, char *why, size_t cap)
{
    const plan_hw *x = &a->hw, *y = &b->hw;
#define NUM(f) if (!close_rel(x->f, y->f)) { snprintf(why, cap, #f " %.12g != %.12g", x->f, y->f); return false; }
    NUM(mem_bytes) NUM(bw) NUM(flops_f16) NUM(flops_int8) NUM(reserve_bytes) NUM(eff_decode) NUM(eff_prefill)
#undef NUM
#define STR(s) if (strcmp(a->s, b->s)) { snprintf(why, cap, #s " \"%.40s\" != \"%.40s\"", a->s, b->s); return false; }
    STR(hw.id) STR(hw.name) STR(hw.source) STR(cpu) STR(isa) STR(when)
    if (a->threads != b->threads || a->n_quant != b->n_quant || x->calibrated != y->calibrated) {
        snprintf(why, cap, "threads %d/%d quants %d/%d calibrated %d/%d", a->threads, b->threads, a->n_quant,
                 b->n_quant, x->calibrated, y->calibrated);
        return false;
    }
    for (int i = 0; i < a->n_quant; i++) {
        STR(q[i].quant) STR(q[i].model)
        const plan_calib_quant *p = &a->q[i], *q = &b->q[i];
        if (!close_rel(p->tok_s, q->tok_s) || !close_rel(p->bytes_token, q->bytes_token) || !close_rel(p->bw, q->bw) ||
            !close_rel(p->eff, q->eff)) {
            snprintf(why, cap, "quant %s figures", p->quant);
            return false;
        }
    }
#undef STR
    return true;
}

static bool all_zero(const plan_calib *c)
{
    const unsigned char *p = (const unsigned char *)c;
    for (size_t i = 0; i < sizeof *c; i++)
        if (p[i])
            return false;
    return true;
}

/* Entries of dir whose name contains part. */
static int count_entries(const char *dir, const char *part)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strstr(e->d_name, part))
            n++;
    if (d)
        closedir(d);
    return n;
}

static void test_round_trip(void)
{
    plan_calib c, r;
    sample(&c);
    char path[256];
    snprintf(path, sizeof path, "%s/a/b/plan-calibration.ini", tmp_dir);
    int rc = plan_calib_save(path, &c);
    if (!t_check(rc == 0, "save: into missing parent directories", "rc %d: %s", rc, err_msg()))
        return;
    char dir[256];
    snprintf(dir, sizeof dir, "%s/a/b", tmp_dir);
    t_check(count_entries(dir, ".tmp") == 0 && count_entries(dir, "plan-calibration.ini") == 1,
            "save: the file renamed into place, no temporary left", "%d tmp files", count_entries(dir, ".tmp"));
    memset(&r, 0x55, sizeof r);
    rc = plan_calib_load(path, &r);
    char why[256] = "";
    t_check(rc == 0 && same(&c, &r, why, sizeof why), "load: round trip of every figure", "rc %d %s %s", rc,
            rc ? err_msg() : "", why);
    t_check(rc == 0 && !strcmp(r.hw.id, "this") && r.hw.calibrated, "load: id this, calibrated", "id %s", r.hw.id);

    /* save over an existing file, fewer quants: the old content is gone */
    c.n_quant = 1;
    rc = plan_calib_save(path, &c);
    int rc2 = plan_calib_load(path, &r);
    t_check(rc == 0 && rc2 == 0 && r.n_quant == 1 && !strcmp(r.q[0].quant, "q4_0"), "save: replaces the file",
            "rc %d %d n %d", rc, rc2, r.n_quant);

    /* optional strings left empty are not written and read back empty; name gets a default */
    sample(&c);
    c.cpu[0] = c.isa[0] = c.hw.name[0] = c.hw.source[0] = c.q[0].model[0] = 0;
    rc = plan_calib_save(path, &c);
    rc2 = plan_calib_load(path, &r);
    t_check(rc == 0 && rc2 == 0 && !r.cpu[0] && !r.isa[0] && !r.q[0].model[0] && !r.hw.source[0] &&
                !strcmp(r.hw.name, "this machine (calibrated)"),
            "load: optional strings absent; default name", "rc %d %d name \"%s\": %s", rc, rc2, r.hw.name,
            err_msg());
}

static void test_save_refuses(void)
{
    char path[256];
    snprintf(path, sizeof path, "%s/refused.ini", tmp_dir);
    static const char *const cases[] = {
        "cpu with a newline", "source with an inline comment", "trailing blank", "eff 0", "eff_decode above 2",
        "unknown quant", "upper-case quant", "quant twice", "no time", "bandwidth 0", "threads 0",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        plan_calib c;
        sample(&c);
        switch (i) {
        case 0: snprintf(c.cpu, sizeof c.cpu, "a\nb = c"); break;
        case 1: snprintf(c.hw.source, sizeof c.hw.source, "measured ; lost"); break;
        case 2: snprintf(c.q[1].model, sizeof c.q[1].model, "model "); break;
        case 3: c.q[2].eff = 0; break;
        case 4: c.hw.eff_decode = 2.5; break;
        case 5: snprintf(c.q[0].quant, sizeof c.q[0].quant, "q9_9"); break;
        case 6: snprintf(c.q[0].quant, sizeof c.q[0].quant, "Q4_0"); break;
        case 7: snprintf(c.q[1].quant, sizeof c.q[1].quant, "q4_0"); break;
        case 8: c.when[0] = 0; break;
        case 9: c.hw.bw = 0; break;
        default: c.threads = 0; break;
        }
        int rc = plan_calib_save(path, &c);
        char name[96];
        snprintf(name, sizeof name, "save refuses: %s", cases[i]);
        t_check(rc == SOV_EINVAL && access(path, F_OK) != 0, name, "rc %d", rc);
    }
    plan_calib c;
    sample(&c);
    char bad[256];
    snprintf(bad, sizeof bad, "%s/file/below-a-file.ini", tmp_dir);
    char filedir[256]; /* a file where the parent directory should be */
    snprintf(filedir, sizeof filedir, "%s/file", tmp_dir);
    FILE *f = fopen(filedir, "w");
    if (f)
        fclose(f);
    int rc = plan_calib_save(bad, &c);
    t_check(rc == SOV_EIO && strstr(err_msg(), "not a directory"), "save: a parent that is a file -> SOV_EIO",
            "rc %d: %s", rc, err_msg());
}

static char bad_path[256];

/* Writes text as the calibration file and loads it. */
static int load_text(const char *text, plan_calib *out)
{
    snprintf(bad_path, sizeof bad_path, "%s/bad.ini", tmp_dir);
    FILE *f = fopen(bad_path, "w");
    if (!f)
        return 1;
    fputs(text, f);
    fclose(f);
    return plan_calib_load(bad_path, out);
}

#define CAL_OK                                                                                                       \
    "[calibration]\nversion = 1\nwhen = 2025-01-31T12:00:00Z\nthreads = 2\nmem_gb = 25\nbw_gbs = 36.5\n"             \
    "eff_decode = 0.9\neff_prefill = 0.7\n"
#define Q_OK "tok_s = 56\nbytes_token = 583695488\nbw_gbs = 37\neff = 0.88\n"

static void test_load_ok(void)
{
    plan_calib c;
    /* BOM, CRLF, comments, blanks, indentation, only the required keys */
    int rc = load_text("\xEF\xBB\xBF; comment\r\n\r\n[calibration]\r\n  version = 1\r\nwhen = 2025-01-31T12:00:00Z\r\n"
                       "threads = 2 ; inline\r\nmem_gb = 25\r\nbw_gbs = 36.5\r\neff_decode = 0.9\r\n"
                       "eff_prefill = 0.25\r\n# other comment\r\n[ quant.q4_0 ]\r\n" Q_OK,
                       &c);
    t_check(rc == 0 && c.threads == 2 && c.hw.bw == 36.5e9 && c.hw.mem_bytes == 25e9 && c.hw.eff_prefill == 0.25 &&
                c.n_quant == 1 && !strcmp(c.q[0].quant, "q4_0") && c.q[0].bw == 37e9 && c.q[0].eff == 0.88 &&
                c.hw.flops_f16 == 0 && c.hw.reserve_bytes == 0 && !strcmp(c.when, "2025-01-31T12:00:00Z"),
            "load: minimal file (BOM, CRLF, comments, only the required keys)", "rc %d: %s", rc, err_msg());
    rc = load_text(CAL_OK, &c);
    t_check(rc == 0 && c.n_quant == 0 && plan_calib_eff(&c, "q4_0") == 0.9, "load: no quant section",
            "rc %d: %s", rc, err_msg());
}

static void test_load_errors(void)
{
    plan_calib c;
    char missing[256];
    snprintf(missing, sizeof missing, "%s/none/plan-calibration.ini", tmp_dir);
    memset(&c, 1, sizeof c);
    int rc = plan_calib_load(missing, &c);
    t_check(rc == SOV_ENOTFOUND && all_zero(&c), "load: missing file -> SOV_ENOTFOUND, out zeroed", "rc %d", rc);
    rc = plan_calib_load(tmp_dir, &c);
    t_check(rc == SOV_EIO, "load: a directory -> SOV_EIO", "rc %d: %s", rc, err_msg());

    static char nine[2048];
    size_t n = (size_t)snprintf(nine, sizeof nine, "%s", CAL_OK);
    static const char *const qn[] = {"f32", "f16", "bf16", "q8_0", "q6_k", "q5_0", "q5_1", "q4_0", "q4_1"};
    for (int i = 0; i < 9; i++)
        n += (size_t)snprintf(nine + n, sizeof nine - n, "[quant.%s]\n" Q_OK, qn[i]);
    static char longline[600];
    snprintf(longline, sizeof longline, CAL_OK "source = %0300d\n", 7);

    struct {
        const char *name, *text;
        int code, line;
        const char *msg;
    } cases[] = {
        {"key before any section", "version = 1\n" CAL_OK, SOV_EINVAL, 1, "outside any section"},
        {"unknown section", CAL_OK "[hw.this]\nname = x\n", SOV_EINVAL, 9, "unknown section"},
        {"unknown key", CAL_OK "colour = red\n", SOV_EINVAL, 9, "[calibration] colour: unknown key"},
        {"unknown quant key", CAL_OK "[quant.q4_0]\n" Q_OK "speed = 3\n", SOV_EINVAL, 14, "[quant.q4_0] speed"},
        {"duplicate key", CAL_OK "bw_gbs = 30\n", SOV_EINVAL, 9, "duplicate key (first at line 6)"},
        {"not a number", "[calibration]\nversion = 1\nwhen = x\nthreads = 2\nmem_gb = lots\n", SOV_EINVAL, 5,
         "not a number"},
        {"eff out of range", CAL_OK "[quant.q8_0]\ntok_s = 1\nbytes_token = 1\nbw_gbs = 1\neff = 2.5\n", SOV_EINVAL,
         13, "out of range"},
        {"eff_decode 0", "[calibration]\neff_decode = 0\n", SOV_EINVAL, 2, "out of range"},
        {"eff_prefill above 1", "[calibration]\neff_prefill = 1.5\n", SOV_EINVAL, 2, "out of range"},
        {"negative bandwidth", "[calibration]\nbw_gbs = -1\n", SOV_EINVAL, 2, "out of range"},
        {"threads not an integer", "[calibration]\nthreads = 1.5\n", SOV_EINVAL, 2, "integer"},
        {"unknown version", "[calibration]\nversion = 2\n", SOV_EINVAL, 2, "version"},
        {"missing required key", "[calibration]\nversion = 1\nwhen = x\nthreads = 2\nmem_gb = 1\n"
                                 "eff_decode = 0.9\neff_prefill = 0.5\n",
         SOV_EINVAL, 1, "[calibration] bw_gbs: missing"},
        {"quant missing eff", CAL_OK "[quant.q4_0]\ntok_s = 1\nbytes_token = 1\nbw_gbs = 1\n", SOV_EINVAL, 9,
         "[quant.q4_0] eff: missing"},
        {"empty quant section", CAL_OK "[quant.q4_0]\n", SOV_EINVAL, 9, "tok_s: missing"},
        {"unknown quant", CAL_OK "[quant.q9_9]\n" Q_OK, SOV_EINVAL, 9, "unknown quant"},
        {"upper-case quant", CAL_OK "[quant.Q4_0]\n" Q_OK, SOV_EINVAL, 9, "unknown quant"},
        {"quant twice", CAL_OK "[quant.q4_0]\n" Q_OK "[quant.q4_0]\n" Q_OK, SOV_EINVAL, 14,
         "duplicate section (first at line 9)"},
        {"calibration twice", CAL_OK "[calibration]\n", SOV_EINVAL, 9, "duplicate section"},
        {"more quants than fit", nine, SOV_EINVAL, 49, "more than 8 quants"},
        {"no calibration section", "[quant.q4_0]\n" Q_OK, SOV_EINVAL, 0, "no [calibration] section"},
        {"empty file", "", SOV_EINVAL, 0, "no [calibration] section"},
        {"line without =", CAL_OK "just words\n", SOV_EFORMAT, 9, "expected [section] or key = value"},
        {"header without ]", "[calibration\n", SOV_EFORMAT, 1, "without ']'"},
        {"text after header", "[calibration] x\n", SOV_EFORMAT, 1, "after the section header"},
        {"line too long", longline, SOV_EFORMAT, 9, "longer than"},
        {"string too long", "[calibration]\nisa = avx512-with-a-very-long-name\n", SOV_EINVAL, 2,
         "longer than 23"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memset(&c, 1, sizeof c);
        rc = load_text(cases[i].text, &c);
        char want[300], name[96];
        if (cases[i].line > 0)
            snprintf(want, sizeof want, "%s:%d: ", bad_path, cases[i].line);
        else
            snprintf(want, sizeof want, "%s: ", bad_path);
        const char *m = err_msg();
        bool ok = rc == cases[i].code && !strncmp(m, want, strlen(want)) && strstr(m, cases[i].msg) &&
                  !strchr(m, '\n') && all_zero(&c);
        snprintf(name, sizeof name, "load error: %s", cases[i].name);
        t_check(ok, name, "rc %d (want %d), \"%s\" (want \"%s...%s\"), out %s", rc, cases[i].code, m, want,
                cases[i].msg, all_zero(&c) ? "zeroed" : "NOT zeroed");
    }
}

static void test_paths(void)
{
    char buf[512];
    const char *home = getenv("HOME");
    char saved_home[512];
    snprintf(saved_home, sizeof saved_home, "%s", home ? home : "");
    unsetenv("SOV_PLAN_CALIB");
    unsetenv("XDG_DATA_HOME");
    unsetenv("SOV_CACHE");
    unsetenv("XDG_CACHE_HOME");
    setenv("HOME", "/h/me", 1);
    const char *p = plan_calib_default_path(buf, sizeof buf);
    t_check(p == buf && !strcmp(buf, "/h/me/.local/share/sov/plan-calibration.ini"), "path: $HOME/.local/share",
            "%s", p ? p : "NULL");
    setenv("XDG_DATA_HOME", "/xdg/data", 1);
    p = plan_calib_default_path(buf, sizeof buf);
    t_check(p && !strcmp(p, "/xdg/data/sov/plan-calibration.ini"), "path: $XDG_DATA_HOME", "%s", p ? p : "NULL");
    setenv("XDG_DATA_HOME", "relative/dir", 1);
    p = plan_calib_default_path(buf, sizeof buf);
    t_check(p && !strcmp(p, "/h/me/.local/share/sov/plan-calibration.ini"), "path: a relative XDG_DATA_HOME is ignored",
            "%s", p ? p : "NULL");
    setenv("SOV_PLAN_CALIB", "/etc/x.ini", 1);
    p = plan_calib_default_path(buf, sizeof buf);
    t_check(p && !strcmp(p, "/etc/x.ini"), "path: $SOV_PLAN_CALIB wins", "%s", p ? p : "NULL");
    setenv("SOV_PLAN_CALIB", "", 1);
    p = plan_calib_default_path(buf, sizeof buf);
    t_check(p && !strcmp(p, "/h/me/.local/share/sov/plan-calibration.ini"), "path: an empty SOV_PLAN_CALIB is ignored",
            "%s", p ? p : "NULL");
    p = plan_calib_default_path(buf, 20);
    t_check(p == NULL, "path: too long for the buffer -> NULL", "%s", p ? p : "NULL");

    p = plan_calib_default_cache(buf, sizeof buf);
    t_check(p && !strcmp(p, "/h/me/.cache/sov/plan"), "cache: $HOME/.cache/sov/plan", "%s", p ? p : "NULL");
    setenv("XDG_CACHE_HOME", "/xdg/cache", 1);
    p = plan_calib_default_cache(buf, sizeof buf);
    t_check(p && !strcmp(p, "/xdg/cache/sov/plan"), "cache: $XDG_CACHE_HOME/sov/plan", "%s", p ? p : "NULL");
    setenv("SOV_CACHE", "/var/sov", 1);
    p = plan_calib_default_cache(buf, sizeof buf);
    t_check(p && !strcmp(p, "/var/sov/plan"), "cache: $SOV_CACHE/plan wins", "%s", p ? p : "NULL");
    p = plan_calib_default_cache(buf, 10);
    t_check(p == NULL, "cache: too long for the buffer -> NULL", "%s", p ? p : "NULL");
    unsetenv("SOV_PLAN_CALIB");
    unsetenv("XDG_DATA_HOME");
    unsetenv("SOV_CACHE");
    unsetenv("XDG_CACHE_HOME");
    if (saved_home[0])
        setenv("HOME", saved_home, 1);
}

static void test_eff(void)
{
    plan_calib c;
    sample(&c);
    t_check(plan_calib_eff(&c, "q4_0") == 0.876 && plan_calib_eff(&c, "q8_0") == 0.908, "eff: a measured quant",
            "%g %g", plan_calib_eff(&c, "q4_0"), plan_calib_eff(&c, "q8_0"));
    t_check(plan_calib_eff(&c, "Q8_0") == 0.908, "eff: case-insensitive", "%g", plan_calib_eff(&c, "Q8_0"));
    t_check(plan_calib_eff(&c, "q4_k") == 0.83 && plan_calib_eff(&c, "q4_k_s") == 0.83 &&
                plan_calib_eff(&c, "Q4_K_M") == 0.83,
            "eff: q4_k and q4_k_s share q4_k_m's figure", "%g %g", plan_calib_eff(&c, "q4_k"),
            plan_calib_eff(&c, "q4_k_s"));
    t_check(plan_calib_eff(&c, "f16") == c.hw.eff_decode && plan_calib_eff(&c, "q5_k_m") == c.hw.eff_decode &&
                plan_calib_eff(&c, NULL) == c.hw.eff_decode,
            "eff: a quant not measured -> eff_decode", "%g", plan_calib_eff(&c, "f16"));
    t_check(plan_calib_eff(&c, "q6_k_m") == 0.741, "eff: q6_k_m -> q6_k", "%g", plan_calib_eff(&c, "q6_k_m"));
    c.n_quant = 0;
    t_check(plan_calib_eff(&c, "q4_0") == c.hw.eff_decode, "eff: no quants -> eff_decode", "%g",
            plan_calib_eff(&c, "q4_0"));
}

static void test_print(void)
{
    plan_calib c;
    sample(&c);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!t_check(f != NULL, "print: memstream", "none"))
        return;
    plan_calib_print(f, &c);
    fclose(f);
    bool ok = buf && strstr(buf, "| q4_0 ") && strstr(buf, "| q6_k ") && strstr(buf, "0.876") &&
              strstr(buf, "tinyllama-1.1b seed 1") && strstr(buf, "36.51 GB/s") && strstr(buf, "eff_decode") &&
              strstr(buf, "eff_prefill") && strstr(buf, "Test CPU") && strstr(buf, "2025-01-31T12:00:00Z") &&
              strstr(buf, "bytes per token");
    int rows = 0;
    for (const char *p = buf; p && (p = strstr(p, "\n| q")); p++)
        rows += p[4] != 'u'; /* not the "| quant" header */
    t_check(ok && rows == 4, "print: machine, a row per quant, the formulas", "%d rows:\n%s", rows, buf ? buf : "");
    free(buf);
}

static void test_calibrate_options(void)
{
    plan_calib c;
    plan_calib_opts bad[] = {{.threads = -1}, {.reps = 33}, {.n_gen = -2}, {.n_gen = 5000}};
    int okc = 0;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&c, 1, sizeof c);
        if (plan_calibrate(&bad[i], &c) == SOV_EINVAL && all_zero(&c))
            okc++;
    }
    t_check(okc == 4 && plan_calibrate(NULL, &c) == SOV_EINVAL, "calibrate: bad options -> SOV_EINVAL, nothing run",
            "%d of 4", okc);
}

int main(void)
{
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/test_plan_calib_%d", (int)getpid());
    mkdir(tmp_dir, 0755);
    test_round_trip();
    test_save_refuses();
    test_load_ok();
    test_load_errors();
    test_paths();
    test_eff();
    test_print();
    test_calibrate_options();
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_dir);
    if (system(cmd) != 0)
        printf("INFO could not remove %s\n", tmp_dir);
    return t_done();
}
