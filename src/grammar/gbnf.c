/* gbnf: the GBNF parser and compiler (see gbnf.h).
 *
 * Syntax (llama.cpp's grammars/README.md): rules `name ::= alternatives`,
 * names [a-zA-Z0-9_-]+; alternatives separated by `|`; a sequence holds
 * "literals", [classes] ([^...] negated, a-z ranges), `.`, rule names,
 * ( groups ), each optionally followed by * + ? {m} {m,} {m,n}. Escapes in
 * literals and classes: \n \r \t \\ \" \' \[ \] \xHH \uHHHH \UHHHHHHHH; other
 * characters are raw UTF-8. `#` comments run to the end of the line. A rule
 * runs on across lines until a line that starts the next one (`name ::=`).
 *
 * Parsing builds rules of alternatives of element runs (pseq); compiling
 * flattens them, computes which rules can match the empty string and
 * refuses left recursion (a rule that can reach itself without consuming a
 * character), which would make the matcher's stacks grow without end. */
#include "gbnf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/err.h"

#define MAX_REP 100000       /* largest repetition bound */
#define MAX_ELEMS (1 << 24)  /* elements in all, while parsing */
#define MAX_CP 0x10FFFFu

typedef struct {
    gbnf_elem *e;
    int32_t *off; /* source offset of each element, for messages */
    int32_t n, cap;
} pseq;

typedef struct {
    pseq *alt;
    int32_t n_alt, cap_alt;
    const char *name; /* into the source; NULL for generated rules */
    int32_t name_len;
    int32_t owner;   /* generated: the named rule it belongs to; named: itself */
    int32_t gen_k;   /* generated: its number within the owner */
    int32_t def_off; /* named: offset of the definition, -1 while undefined */
    int32_t ref_off; /* named: offset of the first reference */
} prule;

typedef struct {
    const char *s;
    size_t len, pos;
    prule *r;
    int32_t n_r, cap_r;
    int32_t *named; /* ids of the named rules, for lookup */
    int32_t n_named, cap_named;
    int32_t cur;    /* named rule being parsed */
    int32_t n_gen;  /* rules generated for it so far */
    gbnf_cset *cs;
    int32_t n_cs, cap_cs;
    uint32_t *rng;
    size_t n_rng, cap_rng; /* uint32 values (2 per range) */
    uint32_t *tmp;         /* ranges of the class being parsed */
    size_t n_tmp, cap_tmp;
    int32_t dot_cs; /* the cset of `.`, -1 until needed */
    int64_t n_elems;
} pctx;

__attribute__((format(printf, 3, 4))) static int perr(const pctx *c, size_t off, const char *fmt, ...)
{
    int line = 1, col = 1;
    for (size_t i = 0; i < off && i < c->len; i++) {
        if (c->s[i] == '\n') {
            line++;
            col = 1;
        } else if (((unsigned char)c->s[i] & 0xC0) != 0x80) {
            col++;
        }
    }
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return err_set(SOV_EINVAL, "grammar %d:%d: %s", line, col, msg);
}

static int nomem(void) { return err_set(SOV_ENOMEM, "grammar: out of memory"); }

static bool is_word(int ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-' ||
           ch == '_';
}

static bool is_digit(int ch) { return ch >= '0' && ch <= '9'; }

/* Position after blanks and comments from p, and after newlines when nl. */
static size_t skip_at(const pctx *c, size_t p, bool nl)
{
    while (p < c->len) {
        char ch = c->s[p];
        if (ch == ' ' || ch == '\t' || ch == '\r' || (ch == '\n' && nl)) {
            p++;
        } else if (ch == '#') {
            while (p < c->len && c->s[p] != '\n')
                p++;
        } else {
            break;
        }
    }
    return p;
}

/* Whether a rule definition `name ::=` starts at p. */
static bool at_rule_start(const pctx *c, size_t p)
{
    size_t q = p;
    while (q < c->len && is_word((unsigned char)c->s[q]))
        q++;
    if (q == p)
        return false;
    q = skip_at(c, q, false);
    return q + 3 <= c->len && memcmp(c->s + q, "::=", 3) == 0;
}

static int grow(void **p, int64_t *cap, int64_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    int64_t nc = *cap ? *cap : 8;
    while (nc < need)
        nc *= 2;
    void *q = realloc(*p, (size_t)nc * elem);
    if (!q)
        return nomem();
    *p = q;
    *cap = nc;
    return 0;
}

#define GROW(ptr, cap, need)                                                                                         \
    do {                                                                                                             \
        int64_t cap64_ = (cap);                                                                                      \
        int rc_ = grow((void **)&(ptr), &cap64_, (int64_t)(need), sizeof *(ptr));                                    \
        if (rc_)                                                                                                     \
            return rc_;                                                                                              \
        (cap) = (__typeof__(cap))cap64_;                                                                             \
    } while (0)

static int seq_push(pctx *c, pseq *q, int32_t type, int32_t arg, size_t off)
{
    if (c->n_elems >= MAX_ELEMS)
        return perr(c, off, "grammar too large (over %d elements after expanding repetitions)", MAX_ELEMS);
    if (q->n == q->cap) {
        int32_t nc = q->cap ? q->cap * 2 : 8;
        gbnf_elem *e = realloc(q->e, (size_t)nc * sizeof *e);
        if (!e)
            return nomem();
        q->e = e;
        int32_t *o = realloc(q->off, (size_t)nc * sizeof *o);
        if (!o)
            return nomem();
        q->off = o;
        q->cap = nc;
    }
    q->e[q->n] = (gbnf_elem){type, arg};
    q->off[q->n] = (int32_t)off;
    q->n++;
    c->n_elems++;
    return 0;
}

static void seq_free(pseq *q)
{
    free(q->e);
    free(q->off);
    memset(q, 0, sizeof *q);
}

/* Moves q into rule r's alternatives (q is empty afterwards). */
static int rule_add_alt(pctx *c, int32_t r, pseq *q)
{
    prule *R = &c->r[r];
    GROW(R->alt, R->cap_alt, R->n_alt + 1);
    R->alt[R->n_alt++] = *q;
    memset(q, 0, sizeof *q);
    return 0;
}

static int rule_new(pctx *c, int32_t *id)
{
    GROW(c->r, c->cap_r, c->n_r + 1);
    prule *R = &c->r[c->n_r];
    memset(R, 0, sizeof *R);
    R->def_off = -1;
    R->ref_off = -1;
    R->owner = c->n_r;
    *id = c->n_r++;
    return 0;
}

static int rule_gen(pctx *c, int32_t *id)
{
    int rc = rule_new(c, id);
    if (rc)
        return rc;
    c->r[*id].owner = c->cur;
    c->r[*id].gen_k = ++c->n_gen;
    return 0;
}

/* The named rule `name`, created (undefined) on first sight. */
static int rule_named(pctx *c, const char *name, int32_t len, int32_t *id)
{
    for (int32_t i = 0; i < c->n_named; i++) {
        const prule *R = &c->r[c->named[i]];
        if (R->name_len == len && memcmp(R->name, name, (size_t)len) == 0) {
            *id = c->named[i];
            return 0;
        }
    }
    int rc = rule_new(c, id);
    if (rc)
        return rc;
    c->r[*id].name = name;
    c->r[*id].name_len = len;
    GROW(c->named, c->cap_named, c->n_named + 1);
    c->named[c->n_named++] = *id;
    return 0;
}

/* A label for rule r in messages: its name, or owner~k for generated ones. */
static void rule_label(const pctx *c, int32_t r, char *buf, size_t cap)
{
    const prule *R = &c->r[r];
    if (R->name)
        snprintf(buf, cap, "%.*s", (int)R->name_len, R->name);
    else
        snprintf(buf, cap, "%.*s~%d", (int)c->r[R->owner].name_len, c->r[R->owner].name, (int)R->gen_k);
}

static int cmp_range(const void *a, const void *b)
{
    const uint32_t *x = a, *y = b;
    return x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : (x[1] < y[1] ? -1 : x[1] > y[1]);
}

/* Adds the set of ranges c->tmp (pairs; sorted and merged here), negated
 * when neg, as a new cset; *idx = -1 when the set is empty. */
static int cset_add(pctx *c, bool neg, int32_t *idx)
{
    size_t n = c->n_tmp / 2;
    uint32_t *t = c->tmp;
    if (n)
        qsort(t, n, 2 * sizeof *t, cmp_range);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (m && t[2 * i] <= t[2 * m - 1] + 1) {
            if (t[2 * i + 1] > t[2 * m - 1])
                t[2 * m - 1] = t[2 * i + 1];
        } else {
            t[2 * m] = t[2 * i];
            t[2 * m + 1] = t[2 * i + 1];
            m++;
        }
    }
    GROW(c->rng, c->cap_rng, c->n_rng + 2 * m + 2);
    size_t r0 = c->n_rng;
    if (neg) {
        uint32_t next = 0; /* lowest code point not yet covered */
        for (size_t i = 0; i < m; i++) {
            if (t[2 * i] > next) {
                c->rng[c->n_rng++] = next;
                c->rng[c->n_rng++] = t[2 * i] - 1;
            }
            next = t[2 * i + 1] + 1;
        }
        if (next <= MAX_CP) {
            c->rng[c->n_rng++] = next;
            c->rng[c->n_rng++] = MAX_CP;
        }
    } else {
        if (m)
            memcpy(c->rng + r0, t, 2 * m * sizeof *t);
        c->n_rng += 2 * m;
    }
    size_t nr = (c->n_rng - r0) / 2;
    if (nr == 0) {
        *idx = -1;
        return 0;
    }
    GROW(c->cs, c->cap_cs, c->n_cs + 1);
    gbnf_cset *s = &c->cs[c->n_cs];
    memset(s, 0, sizeof *s);
    s->r0 = (uint32_t)(r0 / 2);
    s->nr = (uint32_t)nr;
    bool any_hi = false, lo_part = false, hi_part = false; /* [80, D7FF] and [E000, 10FFFF] covered */
    for (size_t i = 0; i < nr; i++) {
        uint32_t lo = c->rng[r0 + 2 * i], hi = c->rng[r0 + 2 * i + 1];
        for (uint32_t cp = lo; cp <= hi && cp < 128; cp++)
            s->ascii[cp >> 6] |= (uint64_t)1 << (cp & 63);
        if (hi >= 0x80 && !(lo >= 0xD800 && hi <= 0xDFFF))
            any_hi = true;
        if (lo <= 0x80 && hi >= 0xD7FF)
            lo_part = true;
        if (lo <= 0xE000 && hi >= MAX_CP)
            hi_part = true;
    }
    s->hi = lo_part && hi_part ? GBNF_HI_ALL : any_hi ? GBNF_HI_SOME : GBNF_HI_NONE;
    *idx = c->n_cs++;
    return 0;
}

static int tmp_push(pctx *c, uint32_t lo, uint32_t hi)
{
    GROW(c->tmp, c->cap_tmp, c->n_tmp + 2);
    c->tmp[c->n_tmp++] = lo;
    c->tmp[c->n_tmp++] = hi;
    return 0;
}

static int cset_single(pctx *c, uint32_t cp, int32_t *idx)
{
    c->n_tmp = 0;
    int rc = tmp_push(c, cp, cp);
    return rc ? rc : cset_add(c, false, idx);
}

static int hexval(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Reads one character at c->pos (an escape or a raw UTF-8 character). */
static int parse_char(pctx *c, uint32_t *cp)
{
    size_t p = c->pos;
    const unsigned char *s = (const unsigned char *)c->s;
    if (s[p] == '\\') {
        if (p + 1 >= c->len)
            return perr(c, p, "incomplete escape at the end of the input");
        int e = s[p + 1];
        int digits = 0;
        switch (e) {
        case 'n': *cp = '\n'; break;
        case 'r': *cp = '\r'; break;
        case 't': *cp = '\t'; break;
        case '\\': case '"': case '\'': case '[': case ']': *cp = (uint32_t)e; break;
        case 'x': digits = 2; break;
        case 'u': digits = 4; break;
        case 'U': digits = 8; break;
        default:
            if (e >= 0x20 && e < 0x7F)
                return perr(c, p, "unknown escape '\\%c'", e);
            return perr(c, p, "unknown escape (backslash, then byte 0x%02X)", e);
        }
        c->pos = p + 2;
        if (digits) {
            uint32_t v = 0;
            for (int k = 0; k < digits; k++) {
                int h = c->pos < c->len ? hexval(s[c->pos]) : -1;
                if (h < 0)
                    return perr(c, p, "'\\%c' needs %d hex digits", e, digits);
                v = v * 16 + (uint32_t)h;
                c->pos++;
            }
            if (v > MAX_CP)
                return perr(c, p, "code point U+%X is beyond U+10FFFF", v);
            *cp = v;
        }
        return 0;
    }
    uint32_t b0 = s[p];
    if (b0 < 0x80) {
        *cp = b0;
        c->pos = p + 1;
        return 0;
    }
    int n;
    uint32_t v, min;
    if ((b0 & 0xE0) == 0xC0) {
        n = 1, v = b0 & 0x1F, min = 0x80;
    } else if ((b0 & 0xF0) == 0xE0) {
        n = 2, v = b0 & 0x0F, min = 0x800;
    } else if ((b0 & 0xF8) == 0xF0) {
        n = 3, v = b0 & 0x07, min = 0x10000;
    } else {
        return perr(c, p, "invalid UTF-8 (byte 0x%02X)", b0);
    }
    for (int k = 1; k <= n; k++) {
        if (p + (size_t)k >= c->len || (s[p + k] & 0xC0) != 0x80)
            return perr(c, p, "invalid UTF-8 (truncated character)");
        v = (v << 6) | (s[p + k] & 0x3F);
    }
    if (v < min || v > MAX_CP || (v >= 0xD800 && v <= 0xDFFF))
        return perr(c, p, "invalid UTF-8 (overlong, surrogate or beyond U+10FFFF)");
    *cp = v;
    c->pos = p + (size_t)n + 1;
    return 0;
}

static int parse_literal(pctx *c, pseq *q)
{
    size_t p0 = c->pos++;
    for (;;) {
        if (c->pos >= c->len)
            return perr(c, p0, "unterminated literal");
        if (c->s[c->pos] == '"') {
            c->pos++;
            return 0;
        }
        size_t off = c->pos;
        uint32_t cp;
        int32_t idx;
        int rc = parse_char(c, &cp);
        if (!rc)
            rc = cset_single(c, cp, &idx);
        if (!rc)
            rc = seq_push(c, q, GBNF_CHARSET, idx, off);
        if (rc)
            return rc;
    }
}

static int parse_class(pctx *c, pseq *q)
{
    size_t p0 = c->pos++;
    bool neg = false;
    if (c->pos < c->len && c->s[c->pos] == '^') {
        neg = true;
        c->pos++;
    }
    c->n_tmp = 0;
    for (;;) {
        if (c->pos >= c->len)
            return perr(c, p0, "unterminated character class");
        if (c->s[c->pos] == ']') {
            c->pos++;
            break;
        }
        uint32_t lo, hi;
        int rc = parse_char(c, &lo);
        if (rc)
            return rc;
        hi = lo;
        if (c->pos + 1 < c->len && c->s[c->pos] == '-' && c->s[c->pos + 1] != ']') {
            size_t roff = c->pos++;
            if ((rc = parse_char(c, &hi)))
                return rc;
            if (hi < lo)
                return perr(c, roff, "bad range in character class: U+%04X-U+%04X (end before start)", lo, hi);
        }
        if ((rc = tmp_push(c, lo, hi)))
            return rc;
    }
    int32_t idx;
    int rc = cset_add(c, neg, &idx);
    if (rc)
        return rc;
    if (idx < 0)
        return perr(c, p0, "empty character class (matches nothing)");
    return seq_push(c, q, GBNF_CHARSET, idx, p0);
}

/* Appends x[0..n) (elements and offsets) to q. */
static int seq_append(pctx *c, pseq *q, const gbnf_elem *x, const int32_t *xo, int32_t n)
{
    for (int32_t i = 0; i < n; i++) {
        int rc = seq_push(c, q, x[i].type, x[i].arg, (size_t)xo[i]);
        if (rc)
            return rc;
    }
    return 0;
}

/* Replaces the item q[item..q->n) by its repetition min..max times (max -1:
 * unbounded). */
static int repeat(pctx *c, pseq *q, int32_t item, int64_t min, int64_t max, size_t off)
{
    int32_t n = q->n - item;
    if (n == 0)
        return 0; /* repeating nothing is nothing */
    int rc = 0;
    pseq x = {0}, a = {0};
    if ((rc = seq_append(c, &x, q->e + item, q->off + item, n)))
        goto out;
    q->n = item;
    int64_t copies = max < 0 ? min + 1 : max;
    if (n > 1 && copies > 2) { /* copy one reference, not the whole run */
        int32_t w;
        if ((rc = rule_gen(c, &w)) || (rc = rule_add_alt(c, w, &x)) || (rc = seq_push(c, &x, GBNF_REF, w, off)))
            goto out;
    }
    for (int64_t k = 0; k < min; k++)
        if ((rc = seq_append(c, q, x.e, x.off, x.n)))
            goto out;
    if (max < 0) { /* R ::= x R | */
        int32_t r;
        if ((rc = rule_gen(c, &r)) || (rc = seq_append(c, &a, x.e, x.off, x.n)) ||
            (rc = seq_push(c, &a, GBNF_REF, r, off)) || (rc = rule_add_alt(c, r, &a)) ||
            (rc = rule_add_alt(c, r, &a)) || (rc = seq_push(c, q, GBNF_REF, r, off)))
            goto out;
    } else if (max > min) { /* O_1 ::= x | ; O_k ::= x O_k-1 | */
        int32_t prev = -1;
        for (int64_t k = 0; k < max - min; k++) {
            int32_t r;
            if ((rc = rule_gen(c, &r)) || (rc = seq_append(c, &a, x.e, x.off, x.n)))
                goto out;
            if (prev >= 0 && (rc = seq_push(c, &a, GBNF_REF, prev, off)))
                goto out;
            if ((rc = rule_add_alt(c, r, &a)) || (rc = rule_add_alt(c, r, &a)))
                goto out;
            prev = r;
        }
        rc = seq_push(c, q, GBNF_REF, prev, off);
    }
out:
    seq_free(&x);
    seq_free(&a);
    return rc;
}

static int parse_int(pctx *c, size_t off, int64_t *v)
{
    if (c->pos >= c->len || !is_digit((unsigned char)c->s[c->pos]))
        return perr(c, off, "expected a number in repetition bounds");
    int64_t x = 0;
    while (c->pos < c->len && is_digit((unsigned char)c->s[c->pos])) {
        x = x * 10 + (c->s[c->pos++] - '0');
        if (x > MAX_REP)
            return perr(c, off, "repetition bound over %d", MAX_REP);
    }
    *v = x;
    return 0;
}

static int parse_postfix(pctx *c, pseq *q, int32_t item)
{
    size_t off = c->pos;
    char ch = c->s[c->pos++];
    int64_t min, max;
    if (ch == '*') {
        min = 0, max = -1;
    } else if (ch == '+') {
        min = 1, max = -1;
    } else if (ch == '?') {
        min = 0, max = 1;
    } else { /* { m } { m , } { m , n } */
        int rc;
        c->pos = skip_at(c, c->pos, false);
        if ((rc = parse_int(c, off, &min)))
            return rc;
        c->pos = skip_at(c, c->pos, false);
        max = min;
        if (c->pos < c->len && c->s[c->pos] == ',') {
            c->pos = skip_at(c, c->pos + 1, false);
            max = -1;
            if (c->pos < c->len && is_digit((unsigned char)c->s[c->pos])) {
                if ((rc = parse_int(c, off, &max)))
                    return rc;
                c->pos = skip_at(c, c->pos, false);
            }
        }
        if (c->pos >= c->len || c->s[c->pos] != '}')
            return perr(c, off, "expected '}' to close the repetition bounds");
        c->pos++;
        if (max >= 0 && max < min)
            return perr(c, off, "bad repetition bounds {%lld,%lld}: the maximum is below the minimum", (long long)min,
                        (long long)max);
    }
    return repeat(c, q, item, min, max, off);
}

static int parse_alts(pctx *c, int32_t rule, int depth, size_t open_off);

/* One alternative into q; stops before `|`, `)`, the end of the input or
 * (at depth 0) the next rule. */
static int parse_seq(pctx *c, pseq *q, int depth, size_t open_off)
{
    int32_t item = -1; /* start of the last item, for postfix operators */
    for (;;) {
        size_t p = skip_at(c, c->pos, false);
        if (p < c->len && c->s[p] == '\n') {
            size_t p2 = skip_at(c, p, true);
            if (p2 >= c->len || at_rule_start(c, p2)) {
                if (depth > 0)
                    return perr(c, open_off, "unclosed '('");
                c->pos = p2;
                return 0;
            }
            p = p2;
        }
        c->pos = p;
        if (p >= c->len) {
            if (depth > 0)
                return perr(c, open_off, "unclosed '('");
            return 0;
        }
        unsigned char ch = (unsigned char)c->s[p];
        if (ch == '|' || ch == ')')
            return 0;
        int rc;
        if (ch == '*' || ch == '+' || ch == '?' || ch == '{') {
            if (item < 0)
                return perr(c, p, "'%c' without an element before it", ch);
            if ((rc = parse_postfix(c, q, item)))
                return rc;
            continue;
        }
        item = q->n;
        if (ch == '"') {
            rc = parse_literal(c, q);
        } else if (ch == '[') {
            rc = parse_class(c, q);
        } else if (ch == '.') {
            c->pos++;
            rc = 0;
            if (c->dot_cs < 0) {
                c->n_tmp = 0;
                if (!(rc = tmp_push(c, 0, MAX_CP)))
                    rc = cset_add(c, false, &c->dot_cs);
            }
            if (!rc)
                rc = seq_push(c, q, GBNF_CHARSET, c->dot_cs, p);
        } else if (ch == '(') {
            int32_t r;
            c->pos++;
            if ((rc = rule_gen(c, &r)) || (rc = parse_alts(c, r, depth + 1, p)))
                return rc;
            if (c->pos >= c->len || c->s[c->pos] != ')')
                return perr(c, p, "unclosed '('");
            c->pos++;
            rc = seq_push(c, q, GBNF_REF, r, p);
        } else if (is_word(ch)) {
            size_t e = p;
            while (e < c->len && is_word((unsigned char)c->s[e]))
                e++;
            int32_t r;
            if ((rc = rule_named(c, c->s + p, (int32_t)(e - p), &r)))
                return rc;
            if (c->r[r].ref_off < 0)
                c->r[r].ref_off = (int32_t)p;
            c->pos = e;
            rc = seq_push(c, q, GBNF_REF, r, p);
        } else if (ch == ':' && p + 2 < c->len && memcmp(c->s + p, "::=", 3) == 0) {
            return perr(c, p, "unexpected '::=' (a rule definition must start a line)");
        } else if (ch >= 0x20 && ch < 0x7F) {
            return perr(c, p, "unexpected character '%c'", ch);
        } else {
            return perr(c, p, "unexpected byte 0x%02X", ch);
        }
        if (rc)
            return rc;
    }
}

static int parse_alts(pctx *c, int32_t rule, int depth, size_t open_off)
{
    for (;;) {
        pseq q = {0};
        int rc = parse_seq(c, &q, depth, open_off);
        if (!rc)
            rc = rule_add_alt(c, rule, &q);
        seq_free(&q);
        if (rc)
            return rc;
        if (c->pos < c->len && c->s[c->pos] == '|') {
            c->pos++;
            continue;
        }
        return 0;
    }
}

static int parse_rules(pctx *c)
{
    for (;;) {
        c->pos = skip_at(c, c->pos, true);
        if (c->pos >= c->len)
            return 0;
        size_t off = c->pos, e = off;
        while (e < c->len && is_word((unsigned char)c->s[e]))
            e++;
        if (e == off) {
            unsigned char ch = (unsigned char)c->s[off];
            if (ch == ')')
                return perr(c, off, "unexpected ')'");
            return perr(c, off, "expected a rule name");
        }
        c->pos = skip_at(c, e, false);
        if (c->pos + 3 > c->len || memcmp(c->s + c->pos, "::=", 3) != 0)
            return perr(c, c->pos, "expected '::=' after the rule name '%.*s'", (int)(e - off), c->s + off);
        c->pos += 3;
        int32_t r;
        int rc = rule_named(c, c->s + off, (int32_t)(e - off), &r);
        if (rc)
            return rc;
        if (c->r[r].def_off >= 0) {
            int line = 1;
            for (int32_t i = 0; i < c->r[r].def_off; i++)
                line += c->s[i] == '\n';
            return perr(c, off, "rule '%.*s' defined twice (first on line %d)", (int)(e - off), c->s + off, line);
        }
        c->r[r].def_off = (int32_t)off;
        c->cur = r;
        c->n_gen = 0;
        if ((rc = parse_alts(c, r, 0, 0)))
            return rc;
        if (c->pos < c->len && c->s[c->pos] == ')')
            return perr(c, c->pos, "unexpected ')'");
    }
}

/* Flattens the parsed rules into g; *el_off gets each element's source
 * offset. */
static int flatten(pctx *c, gram *g, int32_t **el_off)
{
    int64_t n_alts = 0, n_el = 0;
    for (int32_t r = 0; r < c->n_r; r++) {
        n_alts += c->r[r].n_alt;
        for (int32_t a = 0; a < c->r[r].n_alt; a++)
            n_el += c->r[r].alt[a].n + 1;
    }
    if (n_el > INT32_MAX / 2)
        return perr(c, 0, "grammar too large");
    g->el = malloc((size_t)n_el * sizeof *g->el);
    *el_off = malloc((size_t)n_el * sizeof **el_off);
    g->alt_first = malloc((size_t)(n_alts ? n_alts : 1) * sizeof *g->alt_first);
    g->rule_alt = malloc((size_t)(c->n_r + 1) * sizeof *g->rule_alt);
    if (!g->el || !*el_off || !g->alt_first || !g->rule_alt)
        return nomem();
    int32_t ka = 0, ke = 0;
    for (int32_t r = 0; r < c->n_r; r++) {
        g->rule_alt[r] = ka;
        for (int32_t a = 0; a < c->r[r].n_alt; a++) {
            const pseq *q = &c->r[r].alt[a];
            g->alt_first[ka++] = ke;
            if (q->n) {
                memcpy(g->el + ke, q->e, (size_t)q->n * sizeof *q->e);
                memcpy(*el_off + ke, q->off, (size_t)q->n * sizeof *q->off);
            }
            ke += q->n;
            g->el[ke] = (gbnf_elem){GBNF_END, 0};
            (*el_off)[ke] = -1;
            ke++;
        }
    }
    g->rule_alt[c->n_r] = ka;
    g->n_alts = ka;
    g->n_el = ke;
    g->n_rules = c->n_r;
    return 0;
}

/* nul[r] = whether rule r matches the empty string: an alternative of
 * references only, each to a nullable rule, makes its rule nullable. */
static int nullable(const gram *g, bool *nul)
{
    int rc = 0;
    int32_t *cnt = calloc((size_t)g->n_alts + 1, sizeof *cnt); /* refs not yet known nullable, -1: has a char */
    int32_t *alt_rule = malloc(((size_t)g->n_alts + 1) * sizeof *alt_rule);
    int32_t *occ0 = calloc((size_t)g->n_rules + 1, sizeof *occ0);
    int32_t *occ = malloc(((size_t)g->n_el + 1) * sizeof *occ);
    int32_t *queue = malloc(((size_t)g->n_rules + 1) * sizeof *queue);
    if (!cnt || !alt_rule || !occ0 || !occ || !queue) {
        rc = nomem();
        goto out;
    }
    for (int32_t r = 0; r < g->n_rules; r++)
        for (int32_t a = g->rule_alt[r]; a < g->rule_alt[r + 1]; a++) {
            alt_rule[a] = r;
            for (int32_t e = g->alt_first[a]; g->el[e].type != GBNF_END; e++) {
                if (g->el[e].type == GBNF_CHARSET) {
                    cnt[a] = -1;
                    break;
                }
                cnt[a]++;
            }
        }
    /* occurrences of each rule in alternatives that might be nullable (CSR) */
    for (int32_t a = 0; a < g->n_alts; a++)
        if (cnt[a] > 0)
            for (int32_t e = g->alt_first[a]; g->el[e].type != GBNF_END; e++)
                occ0[g->el[e].arg + 1]++;
    for (int32_t r = 0; r < g->n_rules; r++)
        occ0[r + 1] += occ0[r];
    for (int32_t a = 0; a < g->n_alts; a++)
        if (cnt[a] > 0)
            for (int32_t e = g->alt_first[a]; g->el[e].type != GBNF_END; e++)
                occ[occ0[g->el[e].arg]++] = a;
    for (int32_t r = g->n_rules; r > 0; r--) /* restore the starts */
        occ0[r] = occ0[r - 1];
    occ0[0] = 0;
    int32_t qh = 0, qt = 0;
    for (int32_t a = 0; a < g->n_alts; a++)
        if (cnt[a] == 0 && !nul[alt_rule[a]]) {
            nul[alt_rule[a]] = true;
            queue[qt++] = alt_rule[a];
        }
    while (qh < qt) {
        int32_t r = queue[qh++];
        for (int32_t k = occ0[r]; k < occ0[r + 1]; k++) {
            int32_t a = occ[k];
            if (--cnt[a] == 0 && !nul[alt_rule[a]]) {
                nul[alt_rule[a]] = true;
                queue[qt++] = alt_rule[a];
            }
        }
    }
out:
    free(cnt);
    free(alt_rule);
    free(occ0);
    free(occ);
    free(queue);
    return rc;
}

/* Refuses a rule that can reach itself through references at the start of
 * an alternative or after nullable elements only (iterative DFS). */
static int left_recursion(pctx *c, const gram *g, const bool *nul, const int32_t *el_off)
{
    typedef struct {
        int32_t r, a, e; /* rule, current alternative, current element */
    } frame;
    int rc = 0;
    uint8_t *color = calloc((size_t)g->n_rules + 1, 1); /* 0 new, 1 on the path, 2 done */
    frame *st = malloc(((size_t)g->n_rules + 1) * sizeof *st);
    if (!color || !st) {
        rc = nomem();
        goto out;
    }
    for (int32_t r0 = 0; r0 < g->n_rules; r0++) {
        if (color[r0])
            continue;
        int32_t sp = 0;
        st[sp++] = (frame){r0, g->rule_alt[r0], g->rule_alt[r0] < g->rule_alt[r0 + 1] ? g->alt_first[g->rule_alt[r0]] : -1};
        color[r0] = 1;
        while (sp > 0) {
            frame *f = &st[sp - 1];
            if (f->a >= g->rule_alt[f->r + 1]) {
                color[f->r] = 2;
                sp--;
                continue;
            }
            const gbnf_elem *el = &g->el[f->e];
            if (el->type != GBNF_REF) { /* a character or the end: next alternative */
                f->a++;
                f->e = f->a < g->rule_alt[f->r + 1] ? g->alt_first[f->a] : -1;
                continue;
            }
            int32_t t = el->arg, at = f->e;
            /* move past this reference now, or to the next alternative if it cannot be empty */
            if (nul[t]) {
                f->e++;
            } else {
                f->a++;
                f->e = f->a < g->rule_alt[f->r + 1] ? g->alt_first[f->a] : -1;
            }
            if (color[t] == 1) {
                char path[300], lab[80];
                size_t pl = 0;
                int32_t from = 0;
                while (st[from].r != t)
                    from++;
                path[0] = 0;
                for (int32_t k = from; k < sp && pl < sizeof path - 90; k++) {
                    rule_label(c, st[k].r, lab, sizeof lab);
                    pl += (size_t)snprintf(path + pl, sizeof path - pl, "%s -> ", lab);
                }
                rule_label(c, t, lab, sizeof lab);
                snprintf(path + pl, sizeof path - pl, "%s", lab);
                rc = perr(c, (size_t)el_off[at],
                          "left recursion: rule '%s' can reach itself without consuming a character (%s)", lab, path);
                goto out;
            }
            if (color[t] == 0) {
                color[t] = 1;
                st[sp++] = (frame){t, g->rule_alt[t], g->rule_alt[t] < g->rule_alt[t + 1] ? g->alt_first[g->rule_alt[t]] : -1};
            }
        }
    }
out:
    free(color);
    free(st);
    return rc;
}

void gbnf_free(gram *g)
{
    if (!g)
        return;
    free(g->el);
    free(g->cs);
    free(g->rng);
    free(g->alt_first);
    free(g->rule_alt);
    free(g);
}

int gbnf_compile(gram **out, const char *src, size_t len)
{
    *out = NULL;
    int rc;
    pctx c;
    memset(&c, 0, sizeof c);
    c.s = src ? src : "";
    c.len = src ? len : 0;
    c.dot_cs = -1;
    c.cur = -1;
    gram *g = calloc(1, sizeof *g);
    int32_t *el_off = NULL;
    bool *nul = NULL;
    if (!g) {
        rc = nomem();
        goto fail;
    }
    if (c.len > (size_t)INT32_MAX / 2) {
        rc = err_set(SOV_EINVAL, "grammar 1:1: grammar text too large (%zu bytes)", c.len);
        goto fail;
    }
    if ((rc = parse_rules(&c)))
        goto fail;
    for (int32_t i = 0; i < c.n_named; i++) {
        const prule *R = &c.r[c.named[i]];
        if (R->def_off < 0) {
            rc = perr(&c, (size_t)R->ref_off, "undefined rule '%.*s'", (int)R->name_len, R->name);
            goto fail;
        }
    }
    g->root = -1;
    for (int32_t i = 0; i < c.n_named; i++) {
        const prule *R = &c.r[c.named[i]];
        if (R->name_len == 4 && memcmp(R->name, "root", 4) == 0)
            g->root = c.named[i];
    }
    if (g->root < 0) {
        rc = perr(&c, 0, "missing root rule (the start rule is 'root')");
        goto fail;
    }
    if ((rc = flatten(&c, g, &el_off)))
        goto fail;
    nul = calloc((size_t)g->n_rules + 1, sizeof *nul);
    if (!nul) {
        rc = nomem();
        goto fail;
    }
    if ((rc = nullable(g, nul)) || (rc = left_recursion(&c, g, nul, el_off)))
        goto fail;
    g->cs = c.cs;
    g->n_cs = c.n_cs;
    g->rng = c.rng;
    c.cs = NULL;
    c.rng = NULL;
    *out = g;
    g = NULL;
    rc = 0;
fail:
    gbnf_free(g);
    free(el_off);
    free(nul);
    for (int32_t r = 0; r < c.n_r; r++) {
        for (int32_t a = 0; a < c.r[r].n_alt; a++)
            seq_free(&c.r[r].alt[a]);
        free(c.r[r].alt);
    }
    free(c.r);
    free(c.named);
    free(c.cs);
    free(c.rng);
    free(c.tmp);
    return rc;
}
