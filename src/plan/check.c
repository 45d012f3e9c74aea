/* check: verdicts on claims in plain words (see check.h for the forms). */
#include "check.h"

#include "../base/err.h"
#include "catalog.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_NUMS 16
#define TOL 0.05       /* arithmetic claims: right within 5 % */
#define DAYS_MONTH 30.44

/* ---- formatting ---- */

static void addf(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void addf(char *buf, size_t cap, const char *fmt, ...)
{
    size_t n = strlen(buf);
    if (n + 1 >= cap)
        return;
    if (n > 0) {
        buf[n++] = '\n';
        buf[n] = 0;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + n, cap - n, fmt, ap);
    va_end(ap);
}

#define LINE(v, ...) addf((v)->arithmetic, sizeof (v)->arithmetic, __VA_ARGS__)

/* 432000 -> "432,000"; >= 1e7 -> "13.0 million" */
static const char *fmt_count(char *b, size_t cap, double x)
{
    if (!isfinite(x)) {
        snprintf(b, cap, "%s", x > 0 ? "never" : "-");
        return b;
    }
    if (fabs(x) >= 1e9)
        snprintf(b, cap, "%.2f billion", x / 1e9);
    else if (fabs(x) >= 1e7)
        snprintf(b, cap, "%.1f million", x / 1e6);
    else {
        char t[32];
        snprintf(t, sizeof t, "%.0f", fabs(x));
        size_t n = strlen(t), o = 0;
        if (x < 0 && o + 1 < cap)
            b[o++] = '-';
        for (size_t i = 0; i < n && o + 2 < cap; i++) {
            if (i > 0 && (n - i) % 3 == 0)
                b[o++] = ',';
            b[o++] = t[i];
        }
        b[o] = 0;
    }
    return b;
}

/* money: "$4.32", "$1,234", "$32,874" */
static const char *fmt_money(char *b, size_t cap, const char *cur, double x)
{
    const char *sym = !strcmp(cur, "USD") ? "$" : "";
    if (!isfinite(x))
        snprintf(b, cap, "-");
    else if (fabs(x) < 100) {
        if (*sym)
            snprintf(b, cap, "%s%.2f", sym, x);
        else
            snprintf(b, cap, "%.2f %s", x, cur);
    } else {
        char c[28];
        fmt_count(c, sizeof c, x);
        if (*sym)
            snprintf(b, cap, "%s%s", sym, c);
        else
            snprintf(b, cap, "%s %s", c, cur);
    }
    return b;
}

static const char *fmt_days(char *b, size_t cap, double d)
{
    if (!isfinite(d))
        snprintf(b, cap, "never");
    else if (d < 10)
        snprintf(b, cap, "%.1f days", d);
    else
        snprintf(b, cap, "%.0f days", d);
    return b;
}

static void set_verdict(plan_verdict *v, int kind, const char *word)
{
    v->kind = kind;
    snprintf(v->verdict, sizeof v->verdict, "%s", word);
}

/* ---- reading the claim ---- */

typedef struct num {
    double lo, hi;     /* a single figure: lo == hi */
    bool dollar, lt;   /* "$..."; "< ..." / "under" / "less than" before it */
    bool used;         /* taken by another figure (the 1,000 of "per 1,000 tokens") */
    char unit[24];     /* the word after it ("tok/s", "days", "b" for 70b, "gbe") */
    const char *after; /* the text after the unit */
} num;

typedef struct claim {
    char s[512];       /* lower-cased, dashes normalized, model / hw / quant words blanked */
    num n[MAX_NUMS];
    int nn;
    const plan_model *model;
    char quant[16];
    bool quant_stated;
    const plan_hw *hw[2];
    size_t hw_at[2];   /* where each was named */
    int nhw;
    bool hybrid;
    size_t hybrid_at;
} claim;

static bool word_ch(char c) { return isalnum((unsigned char)c) || c == '_' || c == '.' || c == '-' || c == '/'; }

/* Blanks s[at .. at+len) so numbers inside names are not read as figures. */
static void blank(char *s, size_t at, size_t len) { memset(s + at, ' ', len); }

/* Finds word w in s as a whole word (bounded by non-word characters). */
static char *find_word(char *s, const char *w)
{
    size_t n = strlen(w);
    for (char *p = strstr(s, w); p; p = strstr(p + 1, w)) {
        bool left = p == s || !word_ch(p[-1]) || p[-1] == '/';
        char r = p[n];
        bool right = !word_ch(r) || ((r == '.' || r == '-' || r == '/') && !word_ch(p[n + 1]));
        if (left && right)
            return p;
    }
    return NULL;
}

static double mult_word(const char **pp)
{
    const char *p = *pp;
    while (*p == ' ')
        p++;
    static const struct {
        const char *w;
        double m;
    } words[] = {{"thousand", 1e3}, {"million", 1e6}, {"billion", 1e9}};
    for (size_t i = 0; i < 3; i++) {
        size_t n = strlen(words[i].w);
        if (!strncmp(p, words[i].w, n) && !isalpha((unsigned char)p[n])) {
            *pp = p + n;
            return words[i].m;
        }
    }
    return 1.0;
}

/* One number at *pp: digits with thousands commas and a fraction, and an
 * immediate k / m suffix (1k, 13m); b (70b) is left as the unit. */
static bool read_number(const char **pp, double *x, char *unit, size_t ucap)
{
    const char *p = *pp;
    if (!isdigit((unsigned char)*p) && !(*p == '.' && isdigit((unsigned char)p[1])))
        return false;
    char digits[64];
    size_t o = 0;
    while ((isdigit((unsigned char)*p) || *p == '.' ||
            (*p == ',' && isdigit((unsigned char)p[1]) && isdigit((unsigned char)p[2]) &&
             isdigit((unsigned char)p[3]) && !isdigit((unsigned char)p[4]))) &&
           o + 1 < sizeof digits) {
        if (*p != ',')
            digits[o++] = *p;
        p++;
    }
    digits[o] = 0;
    *x = strtod(digits, NULL);
    unit[0] = 0;
    size_t u = 0;
    while (isalpha((unsigned char)p[u]) && u + 1 < ucap)
        u++;
    if (u == 1 && (p[0] == 'k' || p[0] == 'm')) {
        *x *= p[0] == 'k' ? 1e3 : 1e6;
        p++;
    } else if (u > 0) {
        memcpy(unit, p, u);
        unit[u] = 0;
        p += u;
    }
    *pp = p;
    return true;
}

static void scan_numbers(claim *c)
{
    const char *p = c->s;
    while (*p && c->nn < MAX_NUMS) {
        bool start = (isdigit((unsigned char)*p) || *p == '$') && (p == c->s || !isalnum((unsigned char)p[-1]));
        if (!start) {
            p++;
            continue;
        }
        num *n = &c->n[c->nn];
        memset(n, 0, sizeof *n);
        const char *before = p;
        if (*p == '$') {
            n->dollar = true;
            p++;
        }
        double a;
        char unit[24];
        if (!read_number(&p, &a, unit, sizeof unit)) {
            p = before + 1;
            continue;
        }
        /* "<", "under", "less than", "below" just before it */
        const char *q = before;
        while (q > c->s && q[-1] == ' ')
            q--;
        if (q > c->s && q[-1] == '<')
            n->lt = true;
        static const char *const lts[] = {"under", "less than", "below", "at most", "up to"};
        for (size_t i = 0; i < 5; i++) {
            size_t l = strlen(lts[i]);
            if ((size_t)(q - c->s) >= l && !strncmp(q - l, lts[i], l))
                n->lt = true;
        }
        double b = a;
        const char *r = p;
        while (*r == ' ')
            r++;
        if (!unit[0] && (*r == '-' || !strncmp(r, "to ", 3))) {
            r += *r == '-' ? 1 : 3;
            while (*r == ' ')
                r++;
            if (*r == '$')
                r++;
            char u2[24];
            double bb;
            const char *t = r;
            if (read_number(&t, &bb, u2, sizeof u2)) {
                b = bb;
                p = t;
                memcpy(unit, u2, sizeof unit);
            }
        }
        double m = mult_word(&p);
        a *= m;
        b *= m;
        n->lo = a < b ? a : b;
        n->hi = a < b ? b : a;
        if (!unit[0]) {
            const char *t = p;
            while (*t == ' ')
                t++;
            size_t u = 0;
            while (t[u] && (isalpha((unsigned char)t[u]) || t[u] == '/') && u + 1 < sizeof n->unit)
                u++;
            memcpy(n->unit, t, u);
            n->unit[u] = 0;
            p = t + u;
        } else {
            memcpy(n->unit, unit, sizeof n->unit);
        }
        n->after = p;
        c->nn++;
    }
}

static bool unit_is(const num *n, const char *const *units)
{
    for (; *units; units++)
        if (!strcmp(n->unit, *units))
            return true;
    return false;
}

static bool after_starts(const num *n, const char *w)
{
    const char *p = n->after;
    while (*p == ' ')
        p++;
    return !strncmp(p, w, strlen(w));
}

static const char *const RATE_UNITS[] = {"tok/s", "t/s", "tokens/s", "token/s", "tps", NULL};
static const char *const TOKEN_UNITS[] = {"tokens", "token", "tok", NULL};

static num *find_rate(claim *c)
{
    for (int i = 0; i < c->nn; i++) {
        num *n = &c->n[i];
        if (n->used || n->dollar)
            continue;
        if (unit_is(n, RATE_UNITS) ||
            (unit_is(n, TOKEN_UNITS) && (after_starts(n, "per second") || after_starts(n, "a second"))))
            return n;
    }
    return NULL;
}

static num *find_unit(claim *c, const char *const *units, bool dollar)
{
    for (int i = 0; i < c->nn; i++)
        if (!c->n[i].used && c->n[i].dollar == dollar && unit_is(&c->n[i], units))
            return &c->n[i];
    return NULL;
}

/* "$0.01-0.03 per 1,000 tokens" (or "/1k tokens", "per token", "per million
 * tokens"): money per token; marks the quantity's number used. */
static bool find_token_price(claim *c, double *lo, double *hi)
{
    for (int i = 0; i < c->nn; i++) {
        num *n = &c->n[i];
        if (!n->dollar || n->used)
            continue;
        const char *p = n->after;
        while (*p == ' ')
            p++;
        bool per = false;
        if (!strncmp(n->unit, "per", 3) && !n->unit[3])
            per = true, p = n->after;
        else if (!strcmp(n->unit, "/"))
            per = true;
        else if (!n->unit[0] && (*p == '/' || !strncmp(p, "per ", 4)))
            per = true, p += *p == '/' ? 1 : 4;
        if (!per)
            continue;
        while (*p == ' ')
            p++;
        double qty = 1;
        if (i + 1 < c->nn && c->n[i + 1].after > p && !c->n[i + 1].dollar &&
            unit_is(&c->n[i + 1], TOKEN_UNITS) && (size_t)(strstr(p, "token") - p) < 24) {
            qty = c->n[i + 1].lo;
            c->n[i + 1].used = true;
        } else if (!strncmp(p, "million", 7)) {
            qty = 1e6;
        } else if (!strncmp(p, "thousand", 8)) {
            qty = 1e3;
        } else if (strncmp(p, "token", 5)) {
            continue;
        }
        if (qty <= 0)
            continue;
        *lo = n->lo / qty;
        *hi = n->hi / qty;
        n->used = true;
        return true;
    }
    return false;
}

static const struct {
    const char *w, *q;
} QUANT_ALIASES[] = {{"q4", "q4_k_m"}, {"q8", "q8_0"}, {"q5", "q5_k_m"}, {"q6", "q6_k"}, {"q3", "q3_k_m"},
                     {"q2", "q2_k"},   {"fp16", "f16"}, {"fp32", "f32"}, {"int8", "q8_0"}, {"int4", "q4_0"}};

/* The quant named in s (blanked), or q4_k_m. */
static void find_quant(claim *c)
{
    snprintf(c->quant, sizeof c->quant, "q4_k_m");
    for (char *p = c->s; *p; p++) {
        if (p != c->s && word_ch(p[-1]))
            continue;
        size_t n = 0;
        while (p[n] && (isalnum((unsigned char)p[n]) || p[n] == '_'))
            n++;
        if (n == 0 || n >= 16)
            continue;
        char w[16];
        memcpy(w, p, n);
        w[n] = 0;
        const char *q = NULL;
        for (size_t i = 0; i < sizeof QUANT_ALIASES / sizeof QUANT_ALIASES[0]; i++)
            if (!strcmp(w, QUANT_ALIASES[i].w))
                q = QUANT_ALIASES[i].q;
        if (!q && plan_quant_bpw(w) > 0)
            q = w;
        if (q) {
            snprintf(c->quant, sizeof c->quant, "%s", q);
            c->quant_stated = true;
            blank(c->s, (size_t)(p - c->s), n);
            return;
        }
    }
}

const plan_model *plan_check_model(const char *word)
{
    const plan_model *m = plan_catalog_find(word);
    if (m)
        return m;
    char *end;
    double b = strtod(word, &end);
    if (end == word || (*end != 'b' && *end != 'B') || end[1] || !(b > 0))
        return NULL;
    int n;
    const plan_model *cat = plan_catalog(&n);
    const plan_model *best = NULL;
    for (int i = 0; i < n; i++) {
        if (cat[i].n_expert > 0)
            continue;
        if (!best || fabs(cat[i].params / 1e9 - b) < fabs(best->params / 1e9 - b))
            best = &cat[i];
    }
    /* a size far from every dense entry names none of them */
    if (best && fabs(best->params / 1e9 - b) > 0.15 * b)
        return NULL;
    return best;
}

static void find_model(claim *c)
{
    int n;
    const plan_model *cat = plan_catalog(&n);
    size_t best_len = 0;
    char *at = NULL;
    for (int i = 0; i < n; i++) {
        char *p = find_word(c->s, cat[i].id);
        size_t l = strlen(cat[i].id);
        if (p && l > best_len) {
            c->model = &cat[i], at = p, best_len = l;
        }
    }
    if (c->model) {
        blank(c->s, (size_t)(at - c->s), best_len);
        return;
    }
    /* a size: "70b", "70 b", "8x7b" */
    if ((at = find_word(c->s, "8x7b"))) {
        c->model = plan_catalog_find("mixtral-8x7b");
        blank(c->s, (size_t)(at - c->s), 4);
        return;
    }
    for (char *p = c->s; *p; p++) {
        if (!isdigit((unsigned char)*p) || (p != c->s && (isalnum((unsigned char)p[-1]) || p[-1] == '.')))
            continue;
        char *e = p;
        while (isdigit((unsigned char)*e) || *e == '.')
            e++;
        if (*e != 'b' || isalnum((unsigned char)e[1]))
            continue;
        char w[24];
        size_t l = (size_t)(e - p) + 1;
        if (l >= sizeof w)
            continue;
        memcpy(w, p, l);
        w[l] = 0;
        const plan_model *m = plan_check_model(w);
        if (m) {
            c->model = m;
            blank(c->s, (size_t)(p - c->s), l);
            return;
        }
    }
}

static void find_hw(claim *c, const plan_check_ctx *x)
{
    char *h = find_word(c->s, "hybrid");
    if (h) {
        c->hybrid = true;
        c->hybrid_at = (size_t)(h - c->s);
        blank(c->s, (size_t)(h - c->s), 6);
    }
    for (int pass = 0; pass < 2 && c->nhw < 2; pass++) {
        for (int i = 0; i < x->n_hw && c->nhw < 2; i++) {
            const plan_hw *hw = &x->hw[i];
            if (c->nhw == 1 && c->hw[0] == hw)
                continue;
            if (pass == 0) {
                char *p = find_word(c->s, hw->id);
                if (p) {
                    c->hw_at[c->nhw] = (size_t)(p - c->s);
                    c->hw[c->nhw++] = hw;
                    blank(c->s, (size_t)(p - c->s), strlen(hw->id));
                }
                continue;
            }
            /* a part of an id ("spark", "4090", "h100") no other profile has */
            char id[48];
            snprintf(id, sizeof id, "%s", hw->id);
            char *save = NULL;
            for (char *tok = strtok_r(id, "-", &save); tok; tok = strtok_r(NULL, "-", &save)) {
                if (strlen(tok) < 3 || !strcmp(tok, "box") || !strcmp(tok, "max") || !strcmp(tok, "this"))
                    continue;
                int owners = 0;
                for (int j = 0; j < x->n_hw; j++) {
                    char other[52];
                    snprintf(other, sizeof other, "-%s-", x->hw[j].id);
                    char pat[52];
                    snprintf(pat, sizeof pat, "-%s-", tok);
                    owners += strstr(other, pat) != NULL;
                }
                char *p = owners == 1 ? find_word(c->s, tok) : NULL;
                if (p) {
                    c->hw_at[c->nhw] = (size_t)(p - c->s);
                    c->hw[c->nhw++] = hw;
                    blank(c->s, (size_t)(p - c->s), strlen(tok));
                    break;
                }
            }
        }
    }
}

static int read_claim(claim *c, const plan_check_ctx *x, const char *text)
{
    memset(c, 0, sizeof *c);
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p && o + 1 < sizeof c->s; p++) {
        if (p[0] == 0xe2 && p[1] == 0x80 && (p[2] == 0x93 || p[2] == 0x94)) { /* en / em dash */
            c->s[o++] = '-';
            p += 2;
        } else if (p[0] == 0xe2 && p[1] == 0x89 && p[2] == 0xa4) { /* <= */
            c->s[o++] = '<';
            p += 2;
        } else if (p[0] == 0xc2 && p[1] == 0xa0) {
            c->s[o++] = ' ';
            p += 1;
        } else {
            c->s[o++] = (char)tolower(*p);
        }
    }
    c->s[o] = 0;
    find_hw(c, x);
    find_model(c);
    find_quant(c);
    scan_numbers(c);
    return 0;
}

/* ---- the verdicts ---- */

static double expected_ctx(const plan_check_ctx *x) { return x->ctx > 0 ? (double)x->ctx / 2.0 : 0.0; }

/* Speed claim: model quant on hw at rate. */
static int check_speed(const plan_check_ctx *x, claim *c, const num *rate, plan_verdict *v)
{
    const plan_model *m = c->model;
    const plan_hw *h = c->hw[0];
    const char *q = c->quant;
    double bpw = plan_quant_bpw(q);
    plan_fit f = plan_fit_of(m, q, x->ctx, 1, x->kv_bpe, h, -1);
    plan_speed s0 = plan_speed_of(m, q, 0, 1, x->kv_bpe, h);
    double ca = expected_ctx(x);
    plan_speed s = plan_speed_of(m, q, ca, 1, x->kv_bpe, h);
    char b1[48];
    if (!c->quant_stated)
        LINE(v, "no quant named: read as q4_k_m (%.2f bits per weight)", bpw * 8);
    else if (!strcmp(q, "q4_k_m"))
        LINE(v, "Q4 read as q4_k_m, the usual 4-bit mix (%.2f bits per weight; q4_0: %.2f)", bpw * 8,
             plan_quant_bpw("q4_0") * 8);
    if (m->n_expert > 0)
        LINE(v, "%s is a mixture of experts: %.1fB of %.1fB parameters are read per token (%lld of %lld experts "
                "per layer)", m->id, m->params_active / 1e9, m->params / 1e9,
             (long long)(m->n_expert_used + m->n_shared_expert), (long long)(m->n_expert + m->n_shared_expert));
    LINE(v, "weights read per token: %.2fB parameters x %.3f bytes = %.1f GB", m->params_active / 1e9, bpw,
         m->params_active * bpw / 1e9);
    LINE(v, "bound: %.0f GB/s / %.1f GB = %.2f tok/s with an empty context", h->bw / 1e9, s0.bytes_token / 1e9,
         s0.decode_bound);
    LINE(v, "at %.0f positions of context the KV adds %.2f GB a token: %.2f tok/s bound, x %.2f efficiency "
            "(%s) = %.2f tok/s expected", ca, (s.bytes_token - s0.bytes_token) / 1e9, s.decode_bound,
         h->eff_decode, h->calibrated ? "calibrated" : "assumed", s.decode);
    if (!f.fits) {
        LINE(v, "memory: %.1f GB weights + %.1f GB KV (%lld positions) + %.1f GB runtime = %.1f GB > %.1f GB usable",
             f.weights / 1e9, f.kv / 1e9, (long long)x->ctx, f.overhead / 1e9, f.total / 1e9, f.usable / 1e9);
        set_verdict(v, PLAN_V_WRONG, "impossible");
        snprintf(v->correct, sizeof v->correct, "%s %s does not fit in %s: it needs %.1f GB, %.1f GB are usable",
                 m->id, q, h->id, f.total / 1e9, f.usable / 1e9);
        return 0;
    }
    double claim = rate->hi;
    snprintf(b1, sizeof b1, rate->lo < rate->hi ? "%g-%g" : "%g", rate->lo, rate->hi);
    if (claim > s0.decode_bound * 1.0005) {
        set_verdict(v, PLAN_V_WRONG, "impossible");
        snprintf(v->correct, sizeof v->correct,
                 "at most %.2f tok/s (the bandwidth bound); %.2f tok/s expected; %.2f tok/s would need %.0f GB/s",
                 s0.decode_bound, s.decode, claim, claim * s0.bytes_token / 1e9);
        if (rate->lo < rate->hi && rate->lo <= s0.decode_bound)
            LINE(v, "the low end, %g tok/s, is under the bound: it needs %.0f %% of the bandwidth", rate->lo,
                 100.0 * rate->lo * s0.bytes_token / h->bw);
    } else if (claim > s.decode * 1.0005) {
        set_verdict(v, PLAN_V_POSSIBLE, "possible");
        snprintf(v->correct, sizeof v->correct,
                 "%s tok/s is under the %.2f tok/s bound but needs %.0f %% of the bandwidth; %.2f tok/s expected",
                 b1, s0.decode_bound, 100.0 * claim * s0.bytes_token / h->bw, s.decode);
    } else {
        set_verdict(v, PLAN_V_OK, "plausible");
        snprintf(v->correct, sizeof v->correct, "%s tok/s is within the %.2f tok/s expected (bound %.2f tok/s)", b1,
                 s.decode, s0.decode_bound);
    }
    return 0;
}

static int check_fit(const plan_check_ctx *x, claim *c, bool says_fits, plan_verdict *v)
{
    const plan_model *m = c->model;
    const plan_hw *h = c->hw[0];
    plan_fit f = plan_fit_of(m, c->quant, x->ctx, 1, x->kv_bpe, h, -1);
    if (!c->quant_stated)
        LINE(v, "no quant named: read as q4_k_m");
    LINE(v, "%.2fB parameters x %.3f bytes = %.1f GB weights; KV %lld positions x %.0f KB = %.1f GB; runtime %.1f GB",
         m->params / 1e9, plan_quant_bpw(c->quant), f.weights / 1e9, (long long)x->ctx,
         plan_kv_bytes_pos(m, x->kv_bpe) / 1e3, f.kv / 1e9, f.overhead / 1e9);
    LINE(v, "total %.1f GB against %.1f GB memory - %.1f GB reserve = %.1f GB usable", f.total / 1e9, h->mem_bytes / 1e9,
         (h->mem_bytes - f.usable) / 1e9, f.usable / 1e9);
    bool right = f.fits == says_fits;
    set_verdict(v, right ? PLAN_V_OK : PLAN_V_WRONG, right ? "right" : "wrong");
    snprintf(v->correct, sizeof v->correct, "%s %s %s in %s: %.1f GB needed, %.1f GB usable", m->id, c->quant,
             f.fits ? "fits" : "does not fit", h->id, f.total / 1e9, f.usable / 1e9);
    return 0;
}

static double duty_of(const plan_check_ctx *x) { return x->prices->duty < 0 ? 0 : x->prices->duty > 1 ? 1 : x->prices->duty; }

static int check_tokens_day(claim *c, const num *rate, const num *day, plan_verdict *v)
{
    (void)c;
    double want = rate->lo * 86400.0, want_hi = rate->hi * 86400.0;
    char a[40], b[40];
    LINE(v, "%g tok/s x 86,400 s a day = %s tokens a day (generating around the clock)", rate->lo,
         fmt_count(a, sizeof a, want));
    bool right = day->lo >= want * (1 - TOL) && day->hi <= want_hi * (1 + TOL);
    set_verdict(v, right ? PLAN_V_OK : PLAN_V_WRONG, right ? "right" : "wrong");
    if (right)
        snprintf(v->correct, sizeof v->correct, "%s tokens a day", fmt_count(a, sizeof a, want));
    else {
        double r = day->hi / want_hi;
        snprintf(v->correct, sizeof v->correct, "%s tokens a day, not %s (%.1fx %s)", fmt_count(a, sizeof a, want),
                 fmt_count(b, sizeof b, day->hi), r >= 1 ? r : 1 / r, r >= 1 ? "too many" : "too few");
        if (r > 1)
            LINE(v, "%s tokens a day would take %.1f tok/s", b, day->hi / 86400.0);
    }
    return 0;
}

/* The electricity a day of hw (0 without one) at the prices' duty cycle. */
static double power_day(const plan_check_ctx *x, const plan_hw *h)
{
    if (!h)
        return 0;
    plan_econ e = plan_econ_of(0, h, x->prices);
    return e.power_day;
}

static int check_payback(const plan_check_ctx *x, claim *c, plan_verdict *v)
{
    const char *cur = x->prices->currency;
    char a[40], b[40], d1[32], d2[32];
    /* the figures: machine price, rate, price per token, claimed days */
    num *days = find_unit(c, (const char *const[]){"days", "day", NULL}, false);
    double plo = 0, phi = 0;
    bool has_price = find_token_price(c, &plo, &phi);
    num *price = NULL;
    for (int i = 0; i < c->nn; i++)
        if (c->n[i].dollar && !c->n[i].used)
            price = &c->n[i];
    const plan_hw *h = c->hw[0];
    double machine = price ? price->lo : h ? h->price : 0;
    if (!days || !(machine > 0))
        return err_set(SOV_EINVAL, "a payback claim needs the days and the machine's price (\"$3,200\") or a "
                                   "hardware profile with a price");
    num *rate = find_rate(c);
    double tok_s;
    if (rate)
        tok_s = rate->lo;
    else if (c->model && h) {
        plan_speed s = plan_speed_of(c->model, c->quant, expected_ctx(x), 1, x->kv_bpe, h);
        tok_s = s.decode;
        LINE(v, "%s %s on %s: %.2f tok/s expected (one stream)", c->model->id, c->quant, h->id, tok_s);
    } else {
        return err_set(SOV_EINVAL, "a payback claim needs a speed (\"at 5 tok/s\") or a model and hardware");
    }
    if (!has_price) {
        plo = phi = (x->prices->out_per_m + x->prices->in_out_ratio * x->prices->in_per_m) / 1e6;
        LINE(v, "no token price named: %s per 1M output tokens + %g x %s per 1M input tokens (the price inputs)",
             fmt_money(a, sizeof a, cur, x->prices->out_per_m), x->prices->in_out_ratio,
             fmt_money(b, sizeof b, cur, x->prices->in_per_m));
    }
    double tday = tok_s * 86400.0 * duty_of(x);
    double pw = power_day(x, h);
    LINE(v, "%g tok/s x 86,400 s%s = %s tokens a day", tok_s, duty_of(x) < 1 ? " x duty" : "",
         fmt_count(a, sizeof a, tday));
    LINE(v, "at %s-%s per 1,000 tokens that is %s-%s a day", fmt_money(a, sizeof a, cur, plo * 1e3),
         fmt_money(b, sizeof b, cur, phi * 1e3), fmt_money(d1, sizeof d1, cur, tday * plo),
         fmt_money(d2, sizeof d2, cur, tday * phi));
    if (h)
        LINE(v, "less %s a day of electricity (%s, %.0f W under load)", fmt_money(a, sizeof a, cur, pw), h->id,
             h->watts_load);
    else
        LINE(v, "electricity not counted (no hardware named)");
    double sav_hi = tday * phi - pw, sav_lo = tday * plo - pw;
    double dlo = sav_hi > 0 ? machine / sav_hi : INFINITY, dhi = sav_lo > 0 ? machine / sav_lo : INFINITY;
    LINE(v, "%s / the saving a day = %s to %s", fmt_money(a, sizeof a, cur, machine), fmt_days(d1, sizeof d1, dlo),
         fmt_days(d2, sizeof d2, dhi));
    bool right = days->lo >= dlo * (1 - 2 * TOL) && days->hi <= dhi * (1 + 2 * TOL);
    set_verdict(v, right ? PLAN_V_OK : PLAN_V_WRONG, right ? "right" : "wrong");
    if (dlo == dhi)
        snprintf(v->correct, sizeof v->correct, "pays back in %s", fmt_days(d1, sizeof d1, dlo));
    else
        snprintf(v->correct, sizeof v->correct, "pays back in %s to %s", fmt_days(d1, sizeof d1, dlo),
                 fmt_days(d2, sizeof d2, dhi));
    if (!right && days->lo > 0) {
        double need = (machine / days->lo + pw) / phi / 86400.0;
        LINE(v, "%g days would take %s tokens a day (%.0f tok/s)", days->lo,
             fmt_count(a, sizeof a, need * 86400.0), need);
    }
    return 0;
}

static int check_bill(const plan_check_ctx *x, claim *c, plan_verdict *v)
{
    const char *cur = x->prices->currency;
    char a[40], b[40], d1[40], d2[40];
    num *calls = find_unit(c, (const char *const[]){"calls", "requests", NULL}, false);
    double plo = 0, phi = 0;
    bool has_price = find_token_price(c, &plo, &phi);
    num *per_call = NULL;
    for (int i = 0; i < c->nn; i++)
        if (!c->n[i].used && !c->n[i].dollar && unit_is(&c->n[i], TOKEN_UNITS) && after_starts(&c->n[i], "per call"))
            per_call = &c->n[i];
    num *bill = NULL;
    for (int i = 0; i < c->nn; i++)
        if (c->n[i].dollar && !c->n[i].used)
            bill = &c->n[i];
    if (!calls || !bill)
        return err_set(SOV_EINVAL, "a monthly bill claim needs the calls a month and the bill (\"$1,000\")");
    double k = per_call ? per_call->lo : 1000;
    if (!per_call)
        LINE(v, "no tokens per call named: 1,000 assumed");
    if (!has_price) {
        plo = phi = (x->prices->out_per_m + x->prices->in_out_ratio * x->prices->in_per_m) /
                    (1 + x->prices->in_out_ratio) / 1e6;
        LINE(v, "no token price named: the price inputs' blend, %s per 1M tokens",
             fmt_money(a, sizeof a, cur, plo * 1e6));
    }
    double tokens = calls->lo * k;
    LINE(v, "%s calls x %s tokens = %s tokens a month", fmt_count(a, sizeof a, calls->lo), fmt_count(b, sizeof b, k),
         fmt_count(d1, sizeof d1, tokens));
    double lo = tokens * plo, hi = tokens * phi;
    LINE(v, "x %s-%s per 1,000 tokens = %s-%s a month", fmt_money(a, sizeof a, cur, plo * 1e3),
         fmt_money(b, sizeof b, cur, phi * 1e3), fmt_money(d1, sizeof d1, cur, lo), fmt_money(d2, sizeof d2, cur, hi));
    double tps = tokens / (DAYS_MONTH * 86400.0);
    LINE(v, "to make those tokens locally takes %.1f tok/s around the clock (%s tokens / (30.44 x 86,400 s))", tps,
         fmt_count(a, sizeof a, tokens));
    bool right = bill->lo >= lo * (1 - TOL) && bill->hi <= hi * (1 + TOL);
    set_verdict(v, right ? PLAN_V_OK : PLAN_V_WRONG, right ? "right" : "wrong");
    if (lo == hi)
        snprintf(v->correct, sizeof v->correct, "%s a month; %.1f tok/s to make them locally",
                 fmt_money(d1, sizeof d1, cur, lo), tps);
    else
        snprintf(v->correct, sizeof v->correct, "%s-%s a month; %.1f tok/s to make them locally",
                 fmt_money(d1, sizeof d1, cur, lo), fmt_money(d2, sizeof d2, cur, hi), tps);
    return 0;
}

/* What one side of a cost comparison costs over days. */
static double side_cost(const plan_check_ctx *x, const plan_hw *const *hw, int n, double days, plan_verdict *v,
                        const char *label)
{
    const char *cur = x->prices->currency;
    char a[40], b[40], t[40];
    double total = 0;
    for (int i = 0; i < n; i++) {
        const plan_hw *h = hw[i];
        if (h->price_hour > 0 && !(h->price > 0)) {
            double rent = h->price_hour * 24.0 * days;
            LINE(v, "%s: %s rented at %s an hour x 24 x %.0f days = %s", label, h->id,
                 fmt_money(a, sizeof a, cur, h->price_hour), days, fmt_money(b, sizeof b, cur, rent));
            total += rent;
        } else {
            double pw = power_day(x, h) * days;
            char tt[40];
            LINE(v, "%s: %s %s + electricity %s (%.0f W load / %.0f W idle at %s per kWh, %.0f days) = %s", label,
                 h->id, fmt_money(a, sizeof a, cur, h->price), fmt_money(b, sizeof b, cur, pw), h->watts_load,
                 h->watts_idle, fmt_money(t, sizeof t, cur, x->prices->tariff_kwh), days,
                 fmt_money(tt, sizeof tt, cur, h->price + pw));
            total += h->price + pw;
        }
    }
    return total;
}

static const plan_hw *hw_by_id(const plan_check_ctx *x, const char *id)
{
    for (int i = 0; id && i < x->n_hw; i++)
        if (!strcmp(x->hw[i].id, id))
            return &x->hw[i];
    return NULL;
}

static int check_tco(const plan_check_ctx *x, claim *c, bool says_less, plan_verdict *v)
{
    const char *cur = x->prices->currency;
    char a[40], b[40];
    num *mo = find_unit(c, (const char *const[]){"months", "month", "years", "year", NULL}, false);
    if (!mo)
        return err_set(SOV_EINVAL, "a cost comparison needs a time (\"over 18 months\")");
    double days = mo->lo * (mo->unit[0] == 'y' ? 365.25 : DAYS_MONTH);
    /* two sides in the order named: [0] is said to cost less (or more) than [1] */
    const plan_hw *side[2][2];
    int ns[2];
    const char *name[2];
    size_t at[2];
    int k = 0;
    if (c->hybrid) {
        const plan_hw *a = hw_by_id(x, x->hw_a), *b2 = hw_by_id(x, x->hw_b);
        if (!a || !b2)
            return err_set(SOV_EINVAL, "the hybrid's machines (%s, %s) are not among the profiles",
                           x->hw_a ? x->hw_a : "?", x->hw_b ? x->hw_b : "?");
        if (c->nhw < 1)
            return err_set(SOV_EINVAL, "a cost comparison with the hybrid needs the other side (a profile id)");
        side[k][0] = a, side[k][1] = b2, ns[k] = 2, name[k] = "hybrid", at[k] = c->hybrid_at, k++;
        side[k][0] = c->hw[0], ns[k] = 1, name[k] = c->hw[0]->id, at[k] = c->hw_at[0], k++;
    } else {
        if (c->nhw < 2)
            return err_set(SOV_EINVAL, "a cost comparison needs two sides (\"hybrid\" or profile ids)");
        for (; k < 2; k++)
            side[k][0] = c->hw[k], ns[k] = 1, name[k] = c->hw[k]->id, at[k] = c->hw_at[k];
    }
    int l = at[0] <= at[1] ? 0 : 1, r = 1 - l;
    double lc = side_cost(x, side[l], ns[l], days, v, name[l]);
    double rc = side_cost(x, side[r], ns[r], days, v, name[r]);
    bool less = lc < rc;
    bool ok = less == says_less;
    set_verdict(v, ok ? PLAN_V_OK : PLAN_V_WRONG, ok ? "right" : "wrong");
    snprintf(v->correct, sizeof v->correct, "over %.0f days: %s %s against %s %s (%s)", days, name[l],
             fmt_money(a, sizeof a, cur, lc), name[r], fmt_money(b, sizeof b, cur, rc), less ? "less" : "more");
    LINE(v, "electricity at a duty cycle of %.0f %% (the price inputs)", 100 * duty_of(x));
    return 0;
}

static int check_link(const plan_check_ctx *x, claim *c, plan_verdict *v)
{
    num *link = find_unit(c, (const char *const[]){"gbe", "gb/s", "gbit/s", "gbps", "gbit", "g", NULL}, false);
    num *ms = find_unit(c, (const char *const[]){"ms", NULL}, false);
    if (!ms)
        return err_set(SOV_EINVAL, "a link claim needs a time (\"< 1 ms\")");
    double gbps = link ? link->lo : 10;
    double bytes = x->req_bytes + x->resp_bytes;
    double wire = bytes * 8.0 / (gbps * 1e9);
    LINE(v, "(%.0f B request + %.0f B streamed response) x 8 / %g Gb/s = %.3f ms on the wire", x->req_bytes,
         x->resp_bytes, gbps, wire * 1e3);
    double total = wire;
    if (x->rtt_s >= 0) {
        total += x->rtt_s;
        LINE(v, "+ one round trip %.3f ms (%s)", x->rtt_s * 1e3, x->rtt_how ? x->rtt_how : "measured");
        LINE(v, "a new connection adds a second round trip for the TCP handshake: %.3f ms", (wire + 2 * x->rtt_s) * 1e3);
    } else {
        LINE(v, "round trip not measured: the figure is the wire time only");
    }
    bool ok = total * 1e3 < ms->hi;
    set_verdict(v, ok ? PLAN_V_OK : PLAN_V_WRONG, ok ? "right" : "wrong");
    snprintf(v->correct, sizeof v->correct, "the link adds %.3f ms per request%s", total * 1e3,
             x->rtt_s >= 0 ? "" : " (wire time; round trip not measured)");
    return 0;
}

static bool has(const claim *c, const char *w) { return strstr(c->s, w) != NULL; }

int plan_check(const plan_check_ctx *x, const char *text, plan_verdict *v)
{
    memset(v, 0, sizeof *v);
    snprintf(v->claim, sizeof v->claim, "%s", text ? text : "");
    set_verdict(v, PLAN_V_UNKNOWN, "unknown");
    if (!text || !*text)
        return err_set(SOV_EINVAL, "empty claim");
    claim c;
    read_claim(&c, x, text);
    int rc;
    num *rate = find_rate(&c);
    if (has(&c, " ms") && (find_unit(&c, (const char *const[]){"gbe", "gb/s", "gbit/s", "gbps", NULL}, false) ||
                           has(&c, "link") || has(&c, "network"))) {
        rc = check_link(x, &c, v);
    } else if (has(&c, "calls") || has(&c, "requests a month") || has(&c, "requests per month")) {
        rc = check_bill(x, &c, v);
    } else if ((has(&c, "less") || has(&c, "cheaper") || has(&c, "more") || has(&c, "dearer")) &&
               (has(&c, "month") || has(&c, "year")) && (c.hybrid || c.nhw >= 2)) {
        rc = check_tco(x, &c, has(&c, "less") || has(&c, "cheaper"), v);
    } else if (has(&c, "pays") || has(&c, "payback") || has(&c, "pay back") || has(&c, "pay for itself") ||
               has(&c, "pay off")) {
        rc = check_payback(x, &c, v);
    } else if (rate && (find_unit(&c, (const char *const[]){"tokens/day", NULL}, false) ||
                        has(&c, "per day") || has(&c, "a day") || has(&c, "/day"))) {
        num *day = NULL;
        for (int i = 0; i < c.nn; i++)
            if (&c.n[i] != rate && !c.n[i].dollar &&
                (unit_is(&c.n[i], TOKEN_UNITS) || !strcmp(c.n[i].unit, "tokens/day")))
                day = &c.n[i];
        if (!day)
            return err_set(SOV_EINVAL, "a tokens-a-day claim needs the tokens (\"13 million tokens per day\")");
        rc = check_tokens_day(&c, rate, day, v);
    } else if (rate) {
        if (!c.model)
            return err_set(SOV_EINVAL, "a speed claim needs a model (a catalogue id or a size such as 70B)");
        if (c.nhw < 1)
            return err_set(SOV_EINVAL, "a speed claim needs the hardware (a profile id, such as ryzen-ai-max-395)");
        rc = check_speed(x, &c, rate, v);
    } else if (c.model && c.nhw >= 1 && (has(&c, "fit") || has(&c, "run") || has(&c, "hold"))) {
        bool neg = has(&c, "not") || has(&c, "n't") || has(&c, "cannot");
        rc = check_fit(x, &c, !neg, v);
    } else {
        return err_set(SOV_EINVAL,
                       "cannot read the claim: say a speed (\"70B Q4 on ryzen-ai-max-395 at 8 tok/s\"), a fit "
                       "(\"... fits on ...\"), tokens a day, a payback, a monthly bill, a cost comparison over "
                       "months or a link time in ms");
    }
    if (rc) {
        set_verdict(v, PLAN_V_UNKNOWN, "unknown");
        return rc;
    }
    return 0;
}

const char *const *plan_report_claims(void)
{
    static const char *const claims[] = {
        "70B Q4 on ryzen-ai-max-395 at 5-8 tok/s",
        "70B Q4 on dgx-spark at 5-8 tok/s",
        "5 tok/s is roughly 13 million tokens per day",
        "a $3,200 machine at 5 tok/s pays for itself in 8-25 days at $0.01-0.03 per 1,000 tokens",
        "100,000 calls a month at 1,000 tokens per call cost $1,000-3,000 a month at $0.01-0.03 per 1,000 tokens",
        "the hybrid costs less than cloud-h100 over 18 months",
        "the 10 GbE link adds < 1 ms per request",
        NULL,
    };
    return claims;
}
