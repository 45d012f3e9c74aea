/* Unit tests of the plan report (src/plan/html.c) and its chart writer
 * (src/plan/svg.c): number formatting, nice axis bounds, label spreading;
 * the report on the catalogue is well-formed (every element closed and
 * nested, every '&' an entity), has its three charts and tables, escapes
 * every text (a claim with <script>&"), marks the payback points; edge
 * cases: no options, a model that fits nowhere, no hardware and no
 * models, an unknown quant, a write error (/dev/full gives SOV_EIO). */
#include "t.h"

#include "base/err.h"
#include "plan/catalog.h"
#include "plan/html.h"
#include "plan/svg.h"

#include <ctype.h>
#include <math.h>
#include <string.h>

static plan_hw hw_make(const char *id, double mem, double bw, double price, double price_hour)
{
    plan_hw h;
    memset(&h, 0, sizeof h);
    snprintf(h.id, sizeof h.id, "%s", id);
    snprintf(h.name, sizeof h.name, "test machine %s", id);
    snprintf(h.source, sizeof h.source, "test figures for %s", id);
    h.mem_bytes = mem;
    h.bw = bw;
    h.flops_f16 = 100e12;
    h.watts_load = 150;
    h.watts_idle = 15;
    h.price = price;
    h.price_hour = price_hour;
    h.reserve_bytes = 8e9;
    h.eff_decode = 0.7;
    h.eff_prefill = 0.4;
    return h;
}

/* The report of in as a string (malloc'd) and plan_html_write's code in *rc. */
static char *render(const plan_html_in *in, int *rc)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) {
        *rc = -999;
        return NULL;
    }
    *rc = plan_html_write(f, in);
    fclose(f);
    return buf;
}

static int count(const char *s, const char *needle)
{
    int n = 0;
    size_t k = strlen(needle);
    for (const char *p = s; (p = strstr(p, needle)); p += k)
        n++;
    return n;
}

/* Checks s is well-formed markup: tags nest and close (or self-close),
 * attribute values are quoted, '&' starts an entity, no '<' or '>' in
 * text. Returns NULL or what is wrong (static). */
static const char *well_formed(const char *s)
{
    static char why[200];
    char stack[64][32];
    int depth = 0;
    const char *p = s;
    if (!strncmp(p, "<!DOCTYPE html>", 15))
        p += 15;
    for (; *p; p++) {
        if (*p == '&') {
            const char *q = p + 1;
            if (*q == '#')
                q++;
            while (isalnum((unsigned char)*q))
                q++;
            if (*q != ';' || q == p + 1) {
                snprintf(why, sizeof why, "bare '&' at offset %ld: %.40s", (long)(p - s), p);
                return why;
            }
            continue;
        }
        if (*p == '>') {
            snprintf(why, sizeof why, "bare '>' at offset %ld: %.40s", (long)(p - s), p);
            return why;
        }
        if (*p != '<')
            continue;
        bool close = p[1] == '/';
        const char *n = p + 1 + close;
        size_t nl = 0;
        while (isalnum((unsigned char)n[nl]) || n[nl] == '-' || n[nl] == ':')
            nl++;
        if (nl == 0 || nl >= 32) {
            snprintf(why, sizeof why, "bad tag at offset %ld: %.40s", (long)(p - s), p);
            return why;
        }
        /* the tag's end, skipping quoted attribute values (which hold no '<' either) */
        const char *q = n + nl;
        while (*q && *q != '>') {
            if (*q == '<') {
                snprintf(why, sizeof why, "'<' inside a tag at offset %ld", (long)(q - s));
                return why;
            }
            if (*q == '=' && q[1] != '"') {
                snprintf(why, sizeof why, "unquoted attribute at offset %ld: %.40s", (long)(q - s), q - 10);
                return why;
            }
            if (*q == '"') {
                q++;
                while (*q && *q != '"') {
                    if (*q == '<') {
                        snprintf(why, sizeof why, "'<' in an attribute at offset %ld", (long)(q - s));
                        return why;
                    }
                    q++;
                }
            }
            if (*q)
                q++;
        }
        if (!*q)
            return "unterminated tag";
        bool self = q[-1] == '/';
        if (close) {
            if (depth == 0 || strlen(stack[depth - 1]) != nl || strncmp(stack[depth - 1], n, nl)) {
                snprintf(why, sizeof why, "</%.*s> closes <%s> at offset %ld", (int)nl, n,
                         depth ? stack[depth - 1] : "(nothing)", (long)(p - s));
                return why;
            }
            depth--;
        } else if (!self) {
            if (depth == 64)
                return "nested too deep";
            snprintf(stack[depth], sizeof stack[depth], "%.*s", (int)nl, n);
            depth++;
            if (nl == 5 && !strncmp(n, "style", 5)) { /* CSS: no markup until </style> */
                const char *e = strstr(q, "</style>");
                if (!e)
                    return "unterminated <style>";
                for (const char *c = q + 1; c < e; c++)
                    if (*c == '<' || *c == '&')
                        return "'<' or '&' in the CSS";
                q = e - 1;
            }
        }
        p = q;
    }
    if (depth) {
        snprintf(why, sizeof why, "<%s> never closed (%d open)", stack[depth - 1], depth);
        return why;
    }
    return NULL;
}

/* A number that is not one ("nan", "inf") printed into the markup. */
static bool has_nonnumber(const char *s)
{
    static const char *const bad[] = {"nan", "inf"};
    for (int b = 0; b < 2; b++) {
        for (const char *p = s; (p = strcasestr(p, bad[b])); p += 3) {
            char before = p > s ? p[-1] : ' ', after = p[3];
            if (strchr("\" ,->(=", before) && strchr("\" ,<)", after))
                return true;
        }
    }
    return false;
}

static void test_num(void)
{
    static const struct {
        double v;
        int kind;
        const char *prefix, *unit, *want;
    } cases[] = {
        {1234, SVG_GROUPED, "$", NULL, "$1,234"},
        {1234567, SVG_GROUPED, NULL, NULL, "1,234,567"},
        {-98765, SVG_GROUPED, "$", NULL, "-$98,765"},
        {4.567, SVG_GROUPED, "$", NULL, "$4.57"},
        {0, SVG_GROUPED, "$", NULL, "$0"},
        {100, SVG_GROUPED, NULL, NULL, "100"},
        {3.4e6, SVG_SI, NULL, NULL, "3.4 M"},
        {1234, SVG_SI, NULL, NULL, "1.23 k"},
        {999.7, SVG_SI, NULL, NULL, "1 k"},
        {40e9, SVG_SI, NULL, "B", "40 GB"},
        {500, SVG_SI, NULL, "B", "500 B"},
        {4.52, SVG_SI, NULL, NULL, "4.52"},
        {0, SVG_SI, NULL, NULL, "0"},
        {2.5e12, SVG_SI, NULL, "B", "2.5 TB"},
        {NAN, SVG_SI, NULL, "B", "n/a"},
        {INFINITY, SVG_GROUPED, "$", NULL, "n/a"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[64], name[96];
        svg_num(buf, sizeof buf, cases[i].v, cases[i].kind, cases[i].prefix, cases[i].unit);
        snprintf(name, sizeof name, "svg_num %g -> %s", cases[i].v, cases[i].want);
        t_check(!strcmp(buf, cases[i].want), name, "got \"%s\"", buf);
    }
    char small[4];
    svg_num(small, sizeof small, 1234567, SVG_GROUPED, "$", NULL);
    t_check(strlen(small) == 3, "svg_num truncates to the buffer", "\"%s\"", small);
}

static void test_nice(void)
{
    double lo = 3e9, hi = 4.2e11;
    svg_nice(&lo, &hi, true);
    t_check(lo == 2e9 && hi == 5e11, "svg_nice log: 3e9..4.2e11 -> 2e9..5e11", "%g..%g", lo, hi);
    lo = 0, hi = 1095;
    svg_nice(&lo, &hi, false);
    t_check(lo == 0 && hi == 1200, "svg_nice linear: 0..1095 -> 0..1200", "%g..%g", lo, hi);
    lo = 5, hi = 5;
    svg_nice(&lo, &hi, true);
    t_check(lo > 0 && hi > lo, "svg_nice log: an empty range is widened", "%g..%g", lo, hi);
    lo = -3, hi = 0;
    svg_nice(&lo, &hi, true);
    t_check(lo > 0 && hi > lo, "svg_nice log: non-positive bounds become positive", "%g..%g", lo, hi);
}

static void test_spread(void)
{
    double p[5] = {50, 10, 12, 11, 99};
    svg_spread(p, 5, 5, 0, 100);
    double s[5];
    memcpy(s, p, sizeof s);
    bool ok = p[1] == 10 && p[3] == 15 && p[2] == 20 && p[0] == 50 && p[4] == 99;
    t_check(ok, "svg_spread: close labels pushed apart in order, far ones kept", "%g %g %g %g %g", p[0], p[1],
            p[2], p[3], p[4]);
    double q[3] = {98, 99, 100};
    svg_spread(q, 3, 6, 0, 100);
    t_check(q[2] == 100 && q[1] == 94 && q[0] == 88, "svg_spread: pushed back from the upper bound", "%g %g %g",
            q[0], q[1], q[2]);
}

static plan_hw hw4[4];
static plan_option opts[4];
static plan_verdict verd[2];
static plan_prices prices;
static const char *srcs[3];

static plan_html_in base_in(void)
{
    hw4[0] = hw_make("uma-256", 128e9, 256e9, 2000, 0);
    hw4[1] = hw_make("spark-273", 128e9, 273e9, 4000, 0);
    hw4[2] = hw_make("dgpu-24", 24e9, 1008e9, 3000, 0);
    hw4[3] = hw_make("rent-80", 80e9, 3350e9, 0, 2.5);
    plan_prices_default(&prices, srcs);
    memset(opts, 0, sizeof opts);
    /* payback = 2000 / (5.5 - 0.5) = 400 days */
    opts[0] = (plan_option){.name = "uma-256", .fits = true, .tok_s = 4.4, .tokens_day = 380160, .upfront = 2000,
                            .per_day = 0.5, .cloud_day = 5.5, .payback_days = 400};
    /* payback 10000 / (3 - 1) = 5000 days: beyond the chart */
    opts[1] = (plan_option){.name = "spark-273", .fits = true, .tok_s = 2.4, .tokens_day = 207360, .upfront = 10000,
                            .per_day = 1, .cloud_day = 3, .payback_days = 5000};
    opts[2] = (plan_option){.name = "dgpu-24", .fits = false, .upfront = 3000, .per_day = 0.4,
                            .payback_days = INFINITY};
    opts[3] = (plan_option){.name = "rent-80", .fits = true, .tok_s = 60, .tokens_day = 5184000, .upfront = 0,
                            .per_day = 60, .cloud_day = 64.8, .payback_days = 0};
    memset(verd, 0, sizeof verd);
    snprintf(verd[0].claim, sizeof verd[0].claim, "70B at 50 tok/s <script>alert(1)</script>&\"x\"");
    verd[0].kind = PLAN_V_WRONG;
    snprintf(verd[0].verdict, sizeof verd[0].verdict, "impossible");
    snprintf(verd[0].correct, sizeof verd[0].correct, "at most 6.4 tok/s");
    snprintf(verd[0].arithmetic, sizeof verd[0].arithmetic, "bound = 273 GB/s / 42.6 GB = 6.4 tok/s\nline <2>");
    snprintf(verd[1].claim, sizeof verd[1].claim, "8B at 30 tok/s");
    verd[1].kind = PLAN_V_OK;
    snprintf(verd[1].verdict, sizeof verd[1].verdict, "plausible");
    int nc;
    const plan_model *cat = plan_catalog(&nc);
    return (plan_html_in){.title = "plan <test> & \"report\"",
                          .generated = "test footer <ok>",
                          .hw = hw4,
                          .n_hw = 4,
                          .models = cat,
                          .n_models = nc,
                          .quant = "q4_k_m",
                          .ctx = 8192,
                          .n_seq = 1,
                          .kv_bpe = 2,
                          .reserve_bytes = -1,
                          .prices = &prices,
                          .price_sources = srcs,
                          .options = opts,
                          .n_options = 4,
                          .options_model = "llama-3.1-70b q4_k_m",
                          .horizon_days = 1095,
                          .verdicts = verd,
                          .n_verdicts = 2};
}

static void test_report(void)
{
    plan_html_in in = base_in();
    int rc;
    char *s = render(&in, &rc);
    if (!t_check(rc == 0 && s, "report: written", "rc %d: %s", rc, err_msg())) {
        free(s);
        return;
    }
    const char *why = well_formed(s);
    t_check(!why, "report: well-formed markup", "%s", why ? why : "");
    t_check(count(s, "<svg") == 3 && count(s, "</svg>") == 3, "report: three SVG charts", "%d <svg, %d </svg>",
            count(s, "<svg"), count(s, "</svg>"));
    const char *ids[] = {"id=\"chart-speed\"", "id=\"chart-fit\"", "id=\"chart-cost\""};
    for (int i = 0; i < 3; i++)
        t_check(count(s, ids[i]) == 1, ids[i], "found %d times", count(s, ids[i]));
    t_check(!has_nonnumber(s), "report: no nan / inf printed", "found one");
    t_check(!strstr(s, "src=") && !strstr(s, "href=") && !strstr(s, "url(http") && !strstr(s, "@import"),
            "report: no external resource", "found src= / href= / url(http / @import");
    t_check(!strstr(s, "<script"), "report: the claim's <script> is escaped", "raw <script in the page");
    t_check(strstr(s, "70B at 50 tok/s &lt;script&gt;alert(1)&lt;/script&gt;&amp;&quot;x&quot;") != NULL,
            "report: the claim text escaped as &lt; &amp; &quot;", "escaped claim not found");
    t_check(strstr(s, "<title>plan &lt;test&gt; &amp; &quot;report&quot;</title>") != NULL,
            "report: the title escaped", "escaped title not found");
    t_check(strstr(s, "line &lt;2&gt;</pre>") != NULL, "report: arithmetic lines in a <pre>, escaped",
            "not found");
    t_check(strstr(s, "class=\"v2\">impossible<") && strstr(s, "class=\"v0\">plausible<"),
            "report: verdict words coloured by kind", "v2 impossible / v0 plausible not found");
    t_check(count(s, "payback 400 days") == 1, "report: the payback point of uma-256 labelled",
            "\"payback 400 days\" found %d times", count(s, "payback 400 days"));
    t_check(strstr(s, "spark-273 after 5,000 days") != NULL, "report: a payback beyond the chart noted",
            "not found");
    t_check(strstr(s, "the model does not fit: dgpu-24.") != NULL, "report: an option that does not fit left out "
            "with a note", "note not found");
    t_check(strstr(s, "<td class=\"n\">400 days</td>") && strstr(s, "rented: $60.00 a day against $64.80"),
            "report: options table: payback days, rented", "cells not found");
    t_check(strstr(s, "$2,000") && strstr(s, "$10,000"), "report: money grouped ($2,000)", "not found");
    /* 405B at q4_k_m (~245 GB) fits none of the 128/24/80 GB machines */
    t_check(strstr(s, "llama-3.1-405b</td>") && count(s, "fits nowhere") >= 1,
            "report: the fit table marks a model that fits nowhere", "%d", count(s, "fits nowhere"));
    t_check(count(s, "<circle") >= 40, "report: the speed chart has a point per model and machine",
            "%d circles", count(s, "<circle"));
    t_check(strstr(s, "test footer &lt;ok&gt;</footer>") != NULL, "report: footer", "not found");
    t_check(strstr(s, "OpenAI gpt-4o list price") != NULL, "report: price sources listed", "not found");
    free(s);
}

static void test_edges(void)
{
    plan_html_in in = base_in();
    in.n_options = 0;
    in.options = NULL;
    int rc;
    char *s = render(&in, &rc);
    t_check(rc == 0 && s && strstr(s, "no options to compare") && strstr(s, "id=\"chart-cost\"") &&
                !well_formed(s),
            "zero options: an empty cost chart with a note", "rc %d", rc);
    free(s);

    /* one model, too big for every machine */
    in = base_in();
    plan_model big = *plan_catalog_find("deepseek-v3-671b");
    snprintf(big.id, sizeof big.id, "huge-one");
    in.models = &big;
    in.n_models = 1;
    s = render(&in, &rc);
    t_check(rc == 0 && s && strstr(s, "<tr class=\"nowhere\"><td class=\"id\">huge-one</td>") && strstr(s, "fits nowhere") &&
                count(s, "<td class=\"no\"") == 4 && !well_formed(s),
            "a model that fits nowhere: every cell a cross, 'fits nowhere'", "rc %d", rc);
    t_check(s && count(s, "fill=\"#ffffff\"><title>huge-one on") == 4,
            "a model that fits nowhere: rings, not filled points, on the speed chart", "%d rings",
            s ? count(s, "fill=\"#ffffff\"><title>huge-one on") : -1);
    free(s);

    in = base_in();
    in.n_hw = 0;
    in.hw = NULL;
    in.n_models = 0;
    in.models = NULL;
    in.n_verdicts = 0;
    in.verdicts = NULL;
    in.prices = NULL;
    in.price_sources = NULL;
    in.title = NULL;
    in.generated = NULL;
    s = render(&in, &rc);
    t_check(rc == 0 && s && count(s, "<svg") == 3 && strstr(s, "no models to chart") &&
                strstr(s, "No claims checked.") && !well_formed(s) && !has_nonnumber(s),
            "no hardware, no models, no claims, default prices", "rc %d %s", rc, s ? well_formed(s) : "");
    free(s);

    in = base_in();
    in.quant = "q9_z";
    s = render(&in, &rc);
    t_check(rc == SOV_EINVAL && strstr(err_msg(), "q9_z"), "an unknown quant: SOV_EINVAL", "rc %d: %s", rc,
            err_msg());
    free(s);
    in = base_in();
    in.n_models = 3;
    in.models = NULL;
    s = render(&in, &rc);
    t_check(rc == SOV_EINVAL, "a NULL array with a count: SOV_EINVAL", "rc %d", rc);
    free(s);
    t_check(plan_html_write(stdout, NULL) == SOV_EINVAL, "NULL input: SOV_EINVAL", "%s", err_msg());

    FILE *f = fopen("/dev/full", "w");
    if (!f) {
        t_check(false, "a write error gives SOV_EIO", "cannot open /dev/full");
        return;
    }
    in = base_in();
    rc = plan_html_write(f, &in);
    fclose(f);
    t_check(rc == SOV_EIO && strstr(err_msg(), "writing"), "a write error (/dev/full) gives SOV_EIO", "rc %d: %s",
            rc, err_msg());
}

int main(void)
{
    test_num();
    test_nice();
    test_spread();
    test_report();
    test_edges();
    return t_done();
}
