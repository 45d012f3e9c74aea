/* schema: JSON Schema -> GBNF. See schema.h for what is matched. */
#include "schema.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/err.h"
#include "../base/sbuf.h"

/* ---- growable text ---- */

/* ---- code point sets ---- */

#define MAX_CP 0x10FFFFu

typedef struct {
    uint32_t *r; /* pairs lo, hi inclusive */
    size_t n, cap;
    bool oom;
} cpset;

static void cs_add(cpset *c, uint32_t lo, uint32_t hi)
{
    if (c->oom || lo > hi)
        return;
    if (c->n + 1 > c->cap) {
        size_t nc = c->cap ? c->cap * 2 : 8;
        uint32_t *q = realloc(c->r, nc * 2 * sizeof *q);
        if (!q) {
            c->oom = true;
            return;
        }
        c->r = q;
        c->cap = nc;
    }
    c->r[2 * c->n] = lo;
    c->r[2 * c->n + 1] = hi;
    c->n++;
}

static int cmp_pair(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Sorts and merges; removes surrogates. */
static void cs_norm(cpset *c)
{
    if (c->oom || !c->n)
        return;
    qsort(c->r, c->n, 2 * sizeof(uint32_t), cmp_pair);
    size_t w = 0;
    for (size_t i = 0; i < c->n; i++) {
        uint32_t lo = c->r[2 * i], hi = c->r[2 * i + 1];
        if (w && lo <= c->r[2 * w - 1] + 1) {
            if (hi > c->r[2 * w - 1])
                c->r[2 * w - 1] = hi;
        } else {
            c->r[2 * w] = lo;
            c->r[2 * w + 1] = hi;
            w++;
        }
    }
    c->n = w;
    /* cut out D800..DFFF */
    for (size_t i = 0; i < c->n; i++) {
        uint32_t lo = c->r[2 * i], hi = c->r[2 * i + 1];
        if (hi < 0xD800 || lo > 0xDFFF)
            continue;
        if (lo >= 0xD800 && hi <= 0xDFFF) {
            memmove(c->r + 2 * i, c->r + 2 * i + 2, (c->n - i - 1) * 2 * sizeof(uint32_t));
            c->n--;
            i--;
        } else if (lo < 0xD800 && hi > 0xDFFF) {
            c->r[2 * i + 1] = 0xD7FF;
            cs_add(c, 0xE000, hi);
            cs_norm(c);
            return;
        } else if (lo < 0xD800) {
            c->r[2 * i + 1] = 0xD7FF;
        } else {
            c->r[2 * i] = 0xE000;
        }
    }
}

/* c := complement of c over [0, MAX_CP] (c normalized). */
static void cs_negate(cpset *c)
{
    cpset o = { 0 };
    uint32_t next = 0;
    for (size_t i = 0; i < c->n; i++) {
        if (c->r[2 * i] > next)
            cs_add(&o, next, c->r[2 * i] - 1);
        next = c->r[2 * i + 1] + 1;
    }
    if (next <= MAX_CP)
        cs_add(&o, next, MAX_CP);
    o.oom |= c->oom;
    free(c->r);
    *c = o;
    cs_norm(c);
}

static bool cs_has(const cpset *c, uint32_t cp)
{
    for (size_t i = 0; i < c->n; i++)
        if (cp >= c->r[2 * i] && cp <= c->r[2 * i + 1])
            return true;
    return false;
}

static void cs_free(cpset *c)
{
    free(c->r);
    memset(c, 0, sizeof *c);
}

static void put_cls_cp(sbuf *s, uint32_t cp)
{
    if (cp < 0x80 && isalnum((int)cp))
        sb_printf(s, "%c", (char)cp);
    else if (cp < 0x100)
        sb_printf(s, "\\x%02X", cp);
    else if (cp < 0x10000)
        sb_printf(s, "\\u%04X", cp);
    else
        sb_printf(s, "\\U%08X", cp);
}

/* The JSON spelling (inside a string) of one code point of c, as a GBNF
 * group: raw characters, plus the one escape each of '"', '\' and the
 * control characters needs. Returns false when c is empty. */
static bool cs_emit(sbuf *s, const cpset *c)
{
    if (!c->n)
        return false;
    sb_puts(s, "(");
    bool any = false;
    /* raw part: c minus 0..1F, '"', '\' */
    sbuf cls = { 0 };
    for (size_t i = 0; i < c->n; i++) {
        uint32_t lo = c->r[2 * i], hi = c->r[2 * i + 1];
        uint32_t cuts[3][2] = { { 0, 0x1F }, { '"', '"' }, { '\\', '\\' } };
        /* subtract cuts from [lo,hi] piecewise */
        uint32_t a = lo;
        while (a <= hi) {
            bool moved = false;
            for (int k = 0; k < 3; k++)
                if (a >= cuts[k][0] && a <= cuts[k][1]) {
                    a = cuts[k][1] + 1;
                    moved = true;
                }
            if (moved)
                continue;
            uint32_t b = hi;
            for (int k = 0; k < 3; k++)
                if (cuts[k][0] > a && cuts[k][0] <= b)
                    b = cuts[k][0] - 1;
            put_cls_cp(&cls, a);
            if (b > a) {
                sb_puts(&cls, "-");
                put_cls_cp(&cls, b);
            }
            if (b == MAX_CP)
                break;
            a = b + 1;
        }
    }
    if (cls.len) {
        sb_printf(s, "[%s]", cls.p);
        any = true;
    }
    sb_free(&cls);
    if (cs_has(c, '"')) {
        sb_printf(s, "%s\"\\\\\\\"\"", any ? " | " : "");
        any = true;
    }
    if (cs_has(c, '\\')) {
        sb_printf(s, "%s\"\\\\\\\\\"", any ? " | " : "");
        any = true;
    }
    for (uint32_t cp = 0; cp < 0x20; cp++) {
        if (!cs_has(c, cp))
            continue;
        const char *sh = cp == '\b' ? "b" : cp == '\f' ? "f" : cp == '\n' ? "n" : cp == '\r' ? "r" : cp == '\t' ? "t" : NULL;
        if (sh)
            sb_printf(s, "%s\"\\\\%s\"", any ? " | " : "", sh);
        else
            sb_printf(s, "%s\"\\\\u00%02x\"", any ? " | " : "", cp);
        any = true;
    }
    sb_puts(s, ")");
    return true;
}

/* GBNF literal of the bytes t[0..n) */
static void put_lit(sbuf *s, const char *t, size_t n)
{
    sb_puts(s, "\"");
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)t[i];
        if (ch == '"' || ch == '\\')
            sb_printf(s, "\\%c", ch);
        else if (ch < 0x20 || ch == 0x7F)
            sb_printf(s, "\\x%02X", ch);
        else
            sb_putn(s, (const char *)&ch, 1);
    }
    sb_puts(s, "\"");
}

static void put_lits(sbuf *s, const char *t) { put_lit(s, t, strlen(t)); }

/* ---- UTF-8 ---- */

static int utf8_dec(const unsigned char *p, size_t n, uint32_t *cp)
{
    if (!n)
        return 0;
    if (p[0] < 0x80) {
        *cp = p[0];
        return 1;
    }
    int len = p[0] >= 0xF0 ? 4 : p[0] >= 0xE0 ? 3 : p[0] >= 0xC0 ? 2 : 0;
    if (!len || (size_t)len > n)
        return -1;
    uint32_t v = p[0] & (0x3F >> (len - 1));
    for (int k = 1; k < len; k++) {
        if ((p[k] & 0xC0) != 0x80)
            return -1;
        v = v << 6 | (p[k] & 0x3F);
    }
    *cp = v;
    return len;
}

static void put_utf8(sbuf *s, uint32_t cp)
{
    char b[4];
    int n;
    if (cp < 0x80) {
        b[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        b[0] = (char)(0xC0 | cp >> 6);
        b[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        b[0] = (char)(0xE0 | cp >> 12);
        b[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        b[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        b[0] = (char)(0xF0 | cp >> 18);
        b[1] = (char)(0x80 | (cp >> 12 & 0x3F));
        b[2] = (char)(0x80 | (cp >> 6 & 0x3F));
        b[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    sb_putn(s, b, (size_t)n);
}

/* The JSON spelling of one code point (in a string) as a GBNF literal. */
static void put_json_cp(sbuf *s, uint32_t cp)
{
    cpset one = { 0 };
    cs_add(&one, cp, cp);
    if (cp >= 0x20 && cp != '"' && cp != '\\') {
        sbuf t = { 0 };
        put_utf8(&t, cp);
        if (t.oom)
            s->oom = true;
        else
            put_lit(s, t.p, t.len);
        sb_free(&t);
    } else {
        cs_emit(s, &one);
    }
    cs_free(&one);
}

/* ---- the builder ---- */

typedef struct {
    const json_t *target;
    int id;
} memo;

typedef struct {
    const json_t *root;
    bool strict;
    const char *pfx;
    sbuf out;
    int next_id;
    memo *memo;
    size_t n_memo, cap_memo;
    json_t **owned;
    size_t n_owned, cap_owned;
    char **strs;
    size_t n_strs, cap_strs;
    int depth;
} B;

static int oom(void) { return err_set(SOV_ENOMEM, "json schema: out of memory"); }

static char *keep_str(B *b, char *s)
{
    if (!s)
        return NULL;
    if (b->n_strs == b->cap_strs) {
        size_t c = b->cap_strs ? b->cap_strs * 2 : 32;
        char **q = realloc(b->strs, c * sizeof *q);
        if (!q) {
            free(s);
            return NULL;
        }
        b->strs = q;
        b->cap_strs = c;
    }
    b->strs[b->n_strs++] = s;
    return s;
}

static json_t *keep_json(B *b, json_t *j)
{
    if (!j)
        return NULL;
    if (b->n_owned == b->cap_owned) {
        size_t c = b->cap_owned ? b->cap_owned * 2 : 16;
        json_t **q = realloc(b->owned, c * sizeof *q);
        if (!q) {
            json_decref(j);
            return NULL;
        }
        b->owned = q;
        b->cap_owned = c;
    }
    b->owned[b->n_owned++] = j;
    return j;
}

/* path + "/" + seg (JSON pointer escaped) */
static const char *pjoin(B *b, const char *path, const char *seg)
{
    sbuf s = { 0 };
    sb_puts(&s, path);
    sb_puts(&s, "/");
    for (const char *p = seg; *p; p++) {
        if (*p == '~')
            sb_puts(&s, "~0");
        else if (*p == '/')
            sb_puts(&s, "~1");
        else
            sb_putn(&s, p, 1);
    }
    if (s.oom) {
        sb_free(&s);
        return NULL;
    }
    return keep_str(b, s.p);
}

static const char *pjoin_i(B *b, const char *path, const char *seg, size_t i)
{
    char t[64];
    snprintf(t, sizeof t, "%s/%zu", seg, i);
    sbuf s = { 0 };
    sb_printf(&s, "%s/%s", path, t);
    if (s.oom) {
        sb_free(&s);
        return NULL;
    }
    return keep_str(b, s.p);
}

#define NEED(x)                                                                                                        \
    do {                                                                                                               \
        if (!(x)) {                                                                                                    \
            rc = oom();                                                                                                \
            goto fail;                                                                                                 \
        }                                                                                                              \
    } while (0)

/* Emits rule `pfx r<id> ::= body`. */
static int emit_rule(B *b, int id, const char *body)
{
    sb_printf(&b->out, "%sr%d ::= %s\n", b->pfx, id, body);
    return b->out.oom ? oom() : 0;
}

static const char *ANNOT[] = { "title", "description", "$schema", "$id", "$comment", "examples", "default",
                               "deprecated", "readOnly", "writeOnly", "$defs", "definitions", NULL };
static const char *KNOWN[] = { "type", "enum", "const", "properties", "required", "additionalProperties", "items",
                               "prefixItems", "additionalItems", "minItems", "maxItems", "minLength", "maxLength",
                               "pattern", "format", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
                               "anyOf", "oneOf", "allOf", "$ref", "propertyNames", "minProperties",
                               "maxProperties", NULL };

static bool in_list(const char *const *l, const char *k)
{
    for (; *l; l++)
        if (!strcmp(*l, k))
            return true;
    return false;
}

static int refuse(B *b, const char *path, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* In strict mode an error "json schema: WHAT at PATH"; else 0 (dropped). */
static int refuse(B *b, const char *path, const char *fmt, ...)
{
    if (!b->strict)
        return 0;
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return err_set(SOV_EINVAL, "json schema: %s at %s", msg, path);
}

static int bad(const char *path, const char *what, const char *kw)
{
    return err_set(SOV_EINVAL, "json schema: '%s' %s at %s", kw, what, path);
}

static int gen(B *b, const json_t *s, const char *path, int *id);
static int gen_body(B *b, const json_t *s, const char *path, sbuf *body, bool *never);

/* ---- $ref ---- */

static int resolve(B *b, const char *ref, const char *path, const json_t **out, const char **tpath)
{
    if (ref[0] != '#')
        return err_set(SOV_EINVAL, "json schema: non-local $ref '%s' at %s", ref, path);
    const json_t *cur = b->root;
    const char *p = ref + 1;
    if (*p && *p != '/')
        return err_set(SOV_EINVAL, "json schema: unresolvable $ref '%s' at %s (anchors are not supported)", ref, path);
    char seg[256];
    while (*p == '/') {
        p++;
        size_t n = 0;
        while (*p && *p != '/') {
            char ch = *p++;
            if (ch == '~' && (*p == '0' || *p == '1'))
                ch = *p++ == '0' ? '~' : '/';
            else if (ch == '%' && isxdigit((unsigned char)p[0]) && isxdigit((unsigned char)p[1])) {
                char h[3] = { p[0], p[1], 0 };
                ch = (char)strtol(h, NULL, 16);
                p += 2;
            }
            if (n + 1 < sizeof seg)
                seg[n++] = ch;
        }
        seg[n] = 0;
        if (json_is_object(cur))
            cur = json_object_get(cur, seg);
        else if (json_is_array(cur)) {
            char *e;
            long k = strtol(seg, &e, 10);
            cur = (*seg && !*e && k >= 0) ? json_array_get(cur, (size_t)k) : NULL;
        } else
            cur = NULL;
        if (!cur)
            return err_set(SOV_EINVAL, "json schema: unresolvable $ref '%s' at %s", ref, path);
    }
    if (!json_is_object(cur) && !json_is_boolean(cur))
        return err_set(SOV_EINVAL, "json schema: $ref '%s' at %s is not a schema", ref, path);
    *out = cur;
    *tpath = ref;
    return 0;
}

/* The rule of a $ref target (memoized: recursion refers to the same rule). */
static int gen_ref(B *b, const json_t *t, const char *tpath, int *id)
{
    int rc = 0;
    sbuf body = { 0 };
    for (size_t i = 0; i < b->n_memo; i++)
        if (b->memo[i].target == t) {
            *id = b->memo[i].id;
            return 0;
        }
    if (b->n_memo == b->cap_memo) {
        size_t c = b->cap_memo ? b->cap_memo * 2 : 8;
        memo *q = realloc(b->memo, c * sizeof *q);
        NEED(q);
        b->memo = q;
        b->cap_memo = c;
    }
    int my = b->next_id++;
    b->memo[b->n_memo].target = t;
    b->memo[b->n_memo].id = my;
    b->n_memo++;
    bool never = false;
    if ((rc = gen_body(b, t, tpath, &body, &never)))
        goto fail;
    if (never) {
        rc = err_set(SOV_EINVAL, "json schema: no value can match the schema at %s", tpath);
        goto fail;
    }
    NEED(!body.oom);
    if ((rc = emit_rule(b, my, body.p)))
        goto fail;
    *id = my;
fail:
    sb_free(&body);
    return rc;
}

/* ---- allOf merging ---- */

static bool is_annot(const char *k) { return in_list(ANNOT, k); }

static json_t *type_list(const json_t *t)
{
    json_t *a = json_array();
    if (!a)
        return NULL;
    if (json_is_string(t))
        json_array_append(a, (json_t *)t);
    else if (json_is_array(t))
        json_array_extend(a, (json_t *)t);
    return a;
}

static bool arr_has_str(const json_t *a, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v) if (json_is_string(v) && !strcmp(json_string_value(v), s)) return true;
    return false;
}

static bool arr_has(const json_t *a, const json_t *x)
{
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v) if (json_equal(v, x)) return true;
    return false;
}

static int merge_into(B *b, json_t *acc, const json_t *sub, const char *path, bool *never);

/* Merges sub (resolving a $ref in it) into acc. */
static int merge_into(B *b, json_t *acc, const json_t *sub, const char *path, bool *never)
{
    int rc = 0;
    if (++b->depth > 64) {
        b->depth--;
        return err_set(SOV_EINVAL, "json schema: allOf/$ref nest too deep at %s", path);
    }
    if (json_is_true(sub))
        goto out;
    if (json_is_false(sub)) {
        *never = true;
        goto out;
    }
    if (!json_is_object(sub)) {
        rc = err_set(SOV_EINVAL, "json schema: a schema must be an object or a boolean at %s", path);
        goto out;
    }
    const json_t *ref = json_object_get(sub, "$ref");
    if (ref) {
        const json_t *t;
        const char *tp;
        if (!json_is_string(ref)) {
            rc = bad(path, "must be a string", "$ref");
            goto out;
        }
        if ((rc = resolve(b, json_string_value(ref), path, &t, &tp)) || (rc = merge_into(b, acc, t, tp, never)))
            goto out;
    }
    const json_t *all = json_object_get(sub, "allOf");
    if (all) {
        if (!json_is_array(all)) {
            rc = bad(path, "must be an array", "allOf");
            goto out;
        }
        size_t i;
        json_t *v;
        json_array_foreach(all, i, v)
        {
            const char *p = pjoin_i(b, path, "allOf", i);
            if (!p) {
                rc = oom();
                goto out;
            }
            if ((rc = merge_into(b, acc, v, p, never)))
                goto out;
        }
    }
    /* additionalProperties applies to the properties of its own schema:
     * exact only where the other side adds no property it would forbid */
    {
        const json_t *ap_a = json_object_get(acc, "additionalProperties");
        const json_t *ap_s = json_object_get(sub, "additionalProperties");
        const json_t *pa = json_object_get(acc, "properties"), *ps = json_object_get(sub, "properties");
        bool inexact = false;
        const char *pk;
        json_t *pv;
        if (ap_a && !json_is_true(ap_a) && json_is_object(ps))
            json_object_foreach((json_t *)ps, pk, pv) inexact |= !json_object_get(pa, pk);
        if (ap_s && !json_is_true(ap_s) && json_is_object(pa))
            json_object_foreach((json_t *)pa, pk, pv) inexact |= !json_object_get(ps, pk);
        if (inexact && (rc = refuse(b, path, "allOf cannot merge 'additionalProperties' exactly")))
            goto out;
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)sub, k, v)
    {
        if (is_annot(k) || !strcmp(k, "$ref") || !strcmp(k, "allOf"))
            continue;
        json_t *a = json_object_get(acc, k);
        if (!a) {
            if (json_object_set(acc, k, v)) {
                rc = oom();
                goto out;
            }
            continue;
        }
        if (json_equal(a, v))
            continue;
        json_t *m = NULL;
        if (!strcmp(k, "properties") && json_is_object(a) && json_is_object(v)) {
            m = json_deep_copy(a);
            const char *pk;
            json_t *pv;
            json_object_foreach(v, pk, pv)
            {
                json_t *o = json_object_get(m, pk);
                if (o && !json_equal(o, pv))
                    json_object_set_new(m, pk, json_pack("{s:[OO]}", "allOf", o, pv));
                else if (!o)
                    json_object_set(m, pk, pv);
            }
        } else if (!strcmp(k, "required") && json_is_array(a) && json_is_array(v)) {
            m = json_copy(a);
            size_t i;
            json_t *x;
            json_array_foreach(v, i, x) if (m && !arr_has(m, x)) json_array_append(m, x);
        } else if (!strcmp(k, "enum") && json_is_array(a) && json_is_array(v)) {
            m = json_array();
            size_t i;
            json_t *x;
            json_array_foreach(a, i, x) if (m && arr_has(v, x)) json_array_append(m, x);
        } else if (!strcmp(k, "type")) {
            json_t *ta = type_list(a), *tv = type_list(v);
            m = json_array();
            size_t i;
            json_t *x;
            if (ta && tv && m)
                json_array_foreach(ta, i, x)
                {
                    const char *n = json_string_value(x);
                    if (!n)
                        continue;
                    if (arr_has_str(tv, n))
                        json_array_append(m, x);
                    else if (!strcmp(n, "integer") && arr_has_str(tv, "number"))
                        json_array_append(m, x);
                    else if (!strcmp(n, "number") && arr_has_str(tv, "integer") && !arr_has_str(m, "integer"))
                        json_array_append_new(m, json_string("integer"));
                }
            json_decref(ta);
            json_decref(tv);
        } else if (json_is_number(a) && json_is_number(v) &&
                   (!strcmp(k, "minimum") || !strcmp(k, "minLength") || !strcmp(k, "minItems") ||
                    !strcmp(k, "exclusiveMinimum"))) {
            m = json_number_value(a) >= json_number_value(v) ? json_incref(a) : json_incref(v);
        } else if (json_is_number(a) && json_is_number(v) &&
                   (!strcmp(k, "maximum") || !strcmp(k, "maxLength") || !strcmp(k, "maxItems") ||
                    !strcmp(k, "exclusiveMaximum"))) {
            m = json_number_value(a) <= json_number_value(v) ? json_incref(a) : json_incref(v);
        } else {
            if ((rc = refuse(b, path, "allOf cannot merge '%s' exactly", k)))
                goto out;
            continue;
        }
        if (!m || json_object_set_new(acc, k, m)) {
            rc = oom();
            goto out;
        }
    }
out:
    b->depth--;
    return rc;
}

/* ---- integer ranges ---- */

static int ndig(uint64_t x)
{
    int n = 1;
    while (x >= 10) {
        x /= 10;
        n++;
    }
    return n;
}

static uint64_t pow10u(int k)
{
    uint64_t p = 1;
    while (k-- > 0)
        p *= 10;
    return p;
}

/* Same-length decimal strings lo <= hi (n digits each): a GBNF sequence. */
static void rng_same(sbuf *s, const char *lo, const char *hi, int n)
{
    if (n == 0)
        return;
    if (lo[0] == hi[0]) {
        sb_printf(s, "\"%c\" ", lo[0]);
        rng_same(s, lo + 1, hi + 1, n - 1);
        return;
    }
    bool lo0 = true, hi9 = true;
    for (int i = 1; i < n; i++) {
        lo0 &= lo[i] == '0';
        hi9 &= hi[i] == '9';
    }
    char a = lo[0], z = hi[0];
    sb_puts(s, "(");
    bool any = false;
    if (!lo0) {
        char nines[32];
        memset(nines, '9', (size_t)n - 1);
        sb_printf(s, "\"%c\" ", a);
        rng_same(s, lo + 1, nines, n - 1);
        a++;
        any = true;
    }
    char zl = z;
    if (!hi9)
        zl--;
    if (a <= zl) {
        sb_printf(s, "%s[%c-%c]", any ? " | " : "", a, zl);
        if (n > 1)
            sb_printf(s, " [0-9]{%d}", n - 1);
        sb_puts(s, " ");
        any = true;
    }
    if (!hi9) {
        char zeros[32];
        memset(zeros, '0', (size_t)n - 1);
        sb_printf(s, "%s\"%c\" ", any ? " | " : "", z);
        rng_same(s, zeros, hi + 1, n - 1);
    }
    sb_puts(s, ") ");
}

/* Non-negative integers in [a, b] without leading zeros, as alternatives
 * per digit count; after each, suffix(k) where k is the digit count
 * (frac digits allowed: F = 15 - k for numbers; -1 for integers). */
static void rng_nonneg(sbuf *s, uint64_t a, uint64_t b, int numfrac, bool *any)
{
    for (int k = ndig(a); k <= ndig(b); k++) {
        uint64_t lo = k == ndig(a) ? a : pow10u(k - 1);
        uint64_t hi = k == ndig(b) ? b : pow10u(k) - 1;
        char ls[32], hs[32];
        snprintf(ls, sizeof ls, "%0*llu", k, (unsigned long long)lo);
        snprintf(hs, sizeof hs, "%0*llu", k, (unsigned long long)hi);
        sb_puts(s, *any ? " | (" : "(");
        rng_same(s, ls, hs, k);
        if (numfrac >= 0) {
            int f = numfrac - k;
            if (f > 0)
                sb_printf(s, "(\".\" [0-9]{1,%d})?", f);
        }
        sb_puts(s, ")");
        *any = true;
    }
}

/* Integers in [lo, hi] (lo <= hi), as a GBNF group. */
static void int_range(sbuf *s, int64_t lo, int64_t hi)
{
    bool any = false;
    sb_puts(s, "(");
    if (lo < 0) {
        uint64_t a = hi < 0 ? (uint64_t)(-(hi + 1)) + 1 : 1;
        uint64_t z = (uint64_t)(-(lo + 1)) + 1;
        sb_puts(s, "\"-\" (");
        bool any2 = false;
        rng_nonneg(s, a, z, -1, &any2);
        sb_puts(s, ")");
        any = true;
    }
    if (hi >= 0) {
        if (any)
            sb_puts(s, " | (");
        else
            sb_puts(s, "(");
        bool any2 = false;
        rng_nonneg(s, lo > 0 ? (uint64_t)lo : 0, (uint64_t)hi, -1, &any2);
        sb_puts(s, ")");
    }
    sb_puts(s, ")");
}

/* Magnitudes m with a (<|<=) m (<|<=) b, a <= b integers >= 0, no exponent,
 * up to 15 significant digits; pos: whether "0" alone may appear. Appends
 * alternatives; *any tracks whether one was written. */
static void mag_range(sbuf *s, uint64_t a, uint64_t b, bool ain, bool bin, bool *any)
{
    int fa = 15 - ndig(a), fb = 15 - ndig(b);
    if (a == b) {
        if (ain && bin) {
            sb_printf(s, "%s(\"%llu\"", *any ? " | " : "", (unsigned long long)a);
            if (fa > 0)
                sb_printf(s, " (\".\" \"0\"{1,%d})?", fa);
            sb_puts(s, ")");
            *any = true;
        }
        return;
    }
    /* integer part a */
    if (ain || fa > 0) {
        sb_printf(s, "%s(\"%llu\"", *any ? " | " : "", (unsigned long long)a);
        *any = true;
        if (fa > 0) {
            if (ain)
                sb_printf(s, " (\".\" [0-9]{1,%d})?", fa);
            else
                sb_printf(s, " \".\" \"0\"{0,%d} [1-9] [0-9]{0,%d}", fa - 1, fa - 1);
        }
        sb_puts(s, ")");
    }
    if (b - a >= 2)
        rng_nonneg(s, a + 1, b - 1, 15, any);
    if (bin) {
        sb_printf(s, "%s(\"%llu\"", *any ? " | " : "", (unsigned long long)b);
        *any = true;
        if (fb > 0)
            sb_printf(s, " (\".\" \"0\"{1,%d})?", fb);
        sb_puts(s, ")");
    }
}

/* ---- regex ---- */

typedef struct {
    B *b;
    const char *src;
    const unsigned char *p, *e;
    const char *path;
    int rc;
} R;

#define INF_LEN (-1L)

static long len_add(long a, long b) { return a < 0 || b < 0 ? INF_LEN : a + b; }
static long len_mul(long a, long k) { return k < 0 ? (a == 0 ? 0 : INF_LEN) : a < 0 ? INF_LEN : a * k; }

static int re_err(R *r, const char *what)
{
    if (!r->rc)
        r->rc = err_set(SOV_EINVAL, "json schema: pattern '%s' at %s: %s", r->src, r->path, what);
    return r->rc;
}

static int re_unsup(R *r, const char *what)
{
    if (!r->rc)
        r->rc = err_set(SOV_EINVAL, "json schema: pattern '%s' at %s: unsupported %s", r->src, r->path, what);
    return r->rc;
}

static bool re_more(R *r) { return r->p < r->e; }

static uint32_t re_next(R *r)
{
    uint32_t cp = 0;
    int n = utf8_dec(r->p, (size_t)(r->e - r->p), &cp);
    if (n <= 0) {
        re_err(r, "invalid UTF-8");
        r->p = r->e;
        return 0;
    }
    r->p += n;
    return cp;
}

static void cs_space(cpset *c)
{
    static const uint32_t ws[][2] = { { 9, 13 }, { 32, 32 }, { 0xA0, 0xA0 }, { 0x1680, 0x1680 }, { 0x2000, 0x200A },
                                      { 0x2028, 0x2029 }, { 0x202F, 0x202F }, { 0x205F, 0x205F }, { 0x3000, 0x3000 },
                                      { 0xFEFF, 0xFEFF } };
    for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++)
        cs_add(c, ws[i][0], ws[i][1]);
}

static int hexn(R *r, int n, uint32_t *v)
{
    *v = 0;
    for (int i = 0; i < n; i++) {
        if (!re_more(r) || !isxdigit(*r->p))
            return re_err(r, "bad hex escape");
        char h[2] = { (char)*r->p++, 0 };
        *v = *v * 16 + (uint32_t)strtol(h, NULL, 16);
    }
    return 0;
}

/* After a backslash: a class escape into c (*single = -1) or one code
 * point (*single). in_class: inside [ ]. */
static int re_escape(R *r, cpset *c, int64_t *single, bool in_class)
{
    *single = -1;
    if (!re_more(r))
        return re_err(r, "a backslash at the end");
    uint32_t e = re_next(r);
    cpset t = { 0 };
    switch (e) {
    case 'd': case 'D': cs_add(&t, '0', '9'); break;
    case 'w': case 'W':
        cs_add(&t, 'a', 'z');
        cs_add(&t, 'A', 'Z');
        cs_add(&t, '0', '9');
        cs_add(&t, '_', '_');
        break;
    case 's': case 'S': cs_space(&t); break;
    case 't': *single = '\t'; return 0;
    case 'n': *single = '\n'; return 0;
    case 'r': *single = '\r'; return 0;
    case 'v': *single = '\v'; return 0;
    case 'f': *single = '\f'; return 0;
    case '0':
        if (re_more(r) && isdigit(*r->p))
            return re_unsup(r, "octal escape");
        *single = 0;
        return 0;
    case 'b':
        if (in_class) {
            *single = '\b';
            return 0;
        }
        return re_unsup(r, "\\b (word boundary)");
    case 'B': return re_unsup(r, "\\B (word boundary)");
    case 'p': case 'P': return re_unsup(r, "\\p{..} (Unicode property)");
    case 'k': return re_unsup(r, "\\k (backreference)");
    case 'c': {
        if (!re_more(r) || !isalpha(*r->p))
            return re_err(r, "bad \\c escape");
        *single = *r->p++ % 32;
        return 0;
    }
    case 'x': {
        uint32_t v;
        if (hexn(r, 2, &v))
            return r->rc;
        *single = v;
        return 0;
    }
    case 'u': {
        uint32_t v;
        if (re_more(r) && *r->p == '{') {
            r->p++;
            v = 0;
            int n = 0;
            while (re_more(r) && isxdigit(*r->p) && n < 8) {
                char h[2] = { (char)*r->p++, 0 };
                v = v * 16 + (uint32_t)strtol(h, NULL, 16);
                n++;
            }
            if (!n || !re_more(r) || *r->p != '}' || v > MAX_CP)
                return re_err(r, "bad \\u{..} escape");
            r->p++;
        } else if (hexn(r, 4, &v))
            return r->rc;
        if (v >= 0xD800 && v <= 0xDFFF)
            return re_unsup(r, "surrogate escape");
        *single = v;
        return 0;
    }
    default:
        if (e >= '1' && e <= '9')
            return re_unsup(r, "backreference");
        if (strchr("^$\\.*+?()[]{}|/-", (int)e) && e) {
            *single = e;
            return 0;
        }
        return re_err(r, "unknown escape");
    }
    cs_norm(&t);
    if (e == 'D' || e == 'W' || e == 'S')
        cs_negate(&t);
    for (size_t i = 0; i < t.n; i++)
        cs_add(c, t.r[2 * i], t.r[2 * i + 1]);
    bool o = t.oom;
    cs_free(&t);
    if (o)
        r->rc = oom();
    return r->rc;
}

static int re_class(R *r, cpset *c)
{
    bool neg = false;
    if (re_more(r) && *r->p == '^') {
        neg = true;
        r->p++;
    }
    for (;;) {
        if (!re_more(r))
            return re_err(r, "unterminated [");
        if (*r->p == ']') {
            r->p++;
            break;
        }
        int64_t lo;
        uint32_t cp = re_next(r);
        if (cp == '\\') {
            if (re_escape(r, c, &lo, true))
                return r->rc;
            if (lo < 0)
                continue;
        } else
            lo = cp;
        if (re_more(r) && *r->p == '-' && r->p + 1 < r->e && r->p[1] != ']') {
            r->p++;
            int64_t hi;
            uint32_t c2 = re_next(r);
            if (c2 == '\\') {
                if (re_escape(r, c, &hi, true))
                    return r->rc;
                if (hi < 0)
                    return re_err(r, "a class in a range");
            } else
                hi = c2;
            if (hi < lo)
                return re_err(r, "range out of order");
            cs_add(c, (uint32_t)lo, (uint32_t)hi);
        } else
            cs_add(c, (uint32_t)lo, (uint32_t)lo);
    }
    cs_norm(c);
    if (neg)
        cs_negate(c);
    return 0;
}

static int re_alt(R *r, sbuf *s, int depth, long *mn, long *mx, bool *end_anchor);

/* One atom with its quantifier; *stop when at '|' ')' or end. */
static int re_atom(R *r, sbuf *s, int depth, long *mn, long *mx)
{
    sbuf a = { 0 };
    long amn = 1, amx = 1;
    uint32_t cp = re_next(r);
    if (r->rc)
        goto fail;
    if (cp == '(') {
        if (re_more(r) && *r->p == '?') {
            r->p++;
            if (re_more(r) && *r->p == ':')
                r->p++;
            else if (re_more(r) && *r->p == '<' && r->p + 1 < r->e && r->p[1] != '=' && r->p[1] != '!') {
                while (re_more(r) && *r->p != '>')
                    r->p++;
                if (!re_more(r)) {
                    re_err(r, "bad group name");
                    goto fail;
                }
                r->p++;
            } else {
                re_unsup(r, "lookaround or group flag");
                goto fail;
            }
        }
        sb_puts(&a, "(");
        bool ea = false;
        if (re_alt(r, &a, depth + 1, &amn, &amx, &ea))
            goto fail;
        if (!re_more(r) || *r->p != ')') {
            re_err(r, "unbalanced (");
            goto fail;
        }
        r->p++;
        sb_puts(&a, ")");
    } else if (cp == '[' || cp == '.' || cp == '\\') {
        cpset c = { 0 };
        int64_t single = -1;
        if (cp == '[')
            re_class(r, &c);
        else if (cp == '.') {
            cs_add(&c, 0, MAX_CP);
            cs_norm(&c);
            cpset nl = { 0 };
            cs_add(&nl, '\n', '\n');
            cs_add(&nl, '\r', '\r');
            cs_add(&nl, 0x2028, 0x2029);
            cs_norm(&nl);
            cs_negate(&nl);
            cs_free(&c);
            c = nl;
        } else {
            re_escape(r, &c, &single, false);
            if (single >= 0)
                cs_add(&c, (uint32_t)single, (uint32_t)single);
            cs_norm(&c);
        }
        if (!r->rc && c.oom)
            r->rc = oom();
        if (!r->rc && !cs_emit(&a, &c))
            re_err(r, "an empty class");
        cs_free(&c);
        if (r->rc)
            goto fail;
    } else if (cp == '*' || cp == '+' || cp == '?' || cp == '{') {
        re_err(r, "nothing to repeat");
        goto fail;
    } else if (cp == ')' || cp == ']' || cp == '}') {
        re_err(r, "unbalanced bracket");
        goto fail;
    } else if (cp == '^' || cp == '$') {
        re_unsup(r, "anchor inside the pattern");
        goto fail;
    } else {
        put_json_cp(&a, cp);
    }
    /* quantifier */
    long qmin = 1, qmax = 1;
    bool q = false;
    if (re_more(r)) {
        unsigned char ch = *r->p;
        if (ch == '*' || ch == '+' || ch == '?') {
            r->p++;
            qmin = ch == '+';
            qmax = ch == '?' ? 1 : INF_LEN;
            q = true;
        } else if (ch == '{') {
            const unsigned char *save = r->p;
            r->p++;
            char *end;
            if (!re_more(r) || !isdigit(*r->p)) {
                r->p = save;
                re_err(r, "bad {");
                goto fail;
            }
            qmin = strtol((const char *)r->p, &end, 10);
            r->p = (const unsigned char *)end;
            qmax = qmin;
            if (re_more(r) && *r->p == ',') {
                r->p++;
                if (re_more(r) && isdigit(*r->p)) {
                    qmax = strtol((const char *)r->p, &end, 10);
                    r->p = (const unsigned char *)end;
                } else
                    qmax = INF_LEN;
            }
            if (!re_more(r) || *r->p != '}') {
                re_err(r, "bad {m,n}");
                goto fail;
            }
            r->p++;
            if (qmax >= 0 && qmax < qmin) {
                re_err(r, "{m,n} out of order");
                goto fail;
            }
            if (qmin > 1000 || qmax > 1000) {
                re_unsup(r, "repetition count over 1000");
                goto fail;
            }
            q = true;
        }
        if (q && re_more(r) && *r->p == '?')
            r->p++; /* lazy: same language */
        if (q && re_more(r) && (*r->p == '*' || *r->p == '+' || *r->p == '?' || *r->p == '{')) {
            re_err(r, "nothing to repeat");
            goto fail;
        }
    }
    if (a.oom) {
        r->rc = oom();
        goto fail;
    }
    if (!q) {
        sb_puts(s, a.p);
    } else if (qmax == 0) {
        /* x{0}: matches the empty string */
    } else {
        sb_printf(s, "(%s)", a.p);
        if (qmin == 0 && qmax < 0)
            sb_puts(s, "*");
        else if (qmin == 1 && qmax < 0)
            sb_puts(s, "+");
        else if (qmin == 0 && qmax == 1)
            sb_puts(s, "?");
        else if (qmax < 0)
            sb_printf(s, "{%ld,}", qmin);
        else if (qmin == qmax)
            sb_printf(s, "{%ld}", qmin);
        else
            sb_printf(s, "{%ld,%ld}", qmin, qmax);
    }
    sb_puts(s, " ");
    *mn = len_add(*mn, len_mul(amn, qmin));
    *mx = len_add(*mx, len_mul(amx, qmax));
    goto done;
fail:
    if (!r->rc)
        r->rc = oom();
done:
    sb_free(&a);
    return r->rc;
}

/* Alternatives until ')' or end. At depth 0, '$' ending a branch sets
 * *end_anchor (all branches must agree: else refused). */
static int re_alt(R *r, sbuf *s, int depth, long *mn, long *mx, bool *end_anchor)
{
    long gmn = -2, gmx = 0;
    bool first = true;
    sb_puts(s, "(");
    for (;;) {
        long bmn = 0, bmx = 0;
        if (!first)
            sb_puts(s, " | ");
        sb_puts(s, "\"\" ");
        while (re_more(r) && *r->p != '|' && *r->p != ')') {
            if (depth == 0 && *r->p == '$' && (r->p + 1 == r->e || r->p[1] == '|')) {
                r->p++;
                *end_anchor = true;
                break;
            }
            if (re_atom(r, s, depth, &bmn, &bmx))
                return r->rc;
        }
        gmn = gmn == -2 ? bmn : (bmn < gmn ? bmn : gmn);
        gmx = first ? bmx : (gmx < 0 || bmx < 0 ? INF_LEN : (bmx > gmx ? bmx : gmx));
        first = false;
        if (re_more(r) && *r->p == '|') {
            r->p++;
            continue;
        }
        break;
    }
    sb_puts(s, ")");
    *mn = len_add(*mn, gmn);
    *mx = len_add(*mx, gmx);
    return 0;
}

/* pattern -> GBNF for a whole JSON string (quotes included). */
static int regex_gbnf(B *b, const char *pat, const char *path, sbuf *s, long *mn, long *mx)
{
    R r = { .b = b, .src = pat, .p = (const unsigned char *)pat, .path = path };
    r.e = r.p + strlen(pat);
    sb_puts(s, "\"\\\"\" (");
    bool first = true;
    long gmn = -2, gmx = 0;
    /* top-level branches, each with its own anchors */
    for (;;) {
        bool sa = false, ea = false;
        long bmn = 0, bmx = 0;
        if (re_more(&r) && *r.p == '^') {
            r.p++;
            sa = true;
        }
        if (!first)
            sb_puts(s, " | ");
        sb_puts(s, "(");
        if (!sa)
            sb_printf(s, "%skchar* ", b->pfx);
        sb_puts(s, "\"\" ");
        while (re_more(&r) && *r.p != '|') {
            if (*r.p == ')') {
                re_err(&r, "unbalanced )");
                break;
            }
            if (*r.p == '$' && (r.p + 1 == r.e || r.p[1] == '|')) {
                r.p++;
                ea = true;
                break;
            }
            if (re_atom(&r, s, 1, &bmn, &bmx))
                break;
        }
        if (r.rc)
            return r.rc;
        if (!ea)
            sb_printf(s, " %skchar*", b->pfx);
        sb_puts(s, ")");
        if (!sa || !ea)
            bmx = INF_LEN;
        gmn = gmn == -2 ? bmn : (bmn < gmn ? bmn : gmn);
        gmx = first ? bmx : (gmx < 0 || bmx < 0 ? INF_LEN : (bmx > gmx ? bmx : gmx));
        first = false;
        if (re_more(&r) && *r.p == '|') {
            r.p++;
            continue;
        }
        break;
    }
    sb_puts(s, ") \"\\\"\"");
    *mn = gmn;
    *mx = gmx;
    return s->oom ? oom() : 0;
}

/* ---- formats ---- */

static const char *format_gbnf(const char *f, long *mn, long *mx)
{
#define DATE                                                                                                           \
    "([0-9]{4} \"-\" ((\"0\" [13578] | \"1\" [02]) \"-\" (\"0\" [1-9] | [12] [0-9] | \"3\" [01]) | (\"0\" [469] | "  \
    "\"11\") \"-\" (\"0\" [1-9] | [12] [0-9] | \"30\") | \"02-\" (\"0\" [1-9] | \"1\" [0-9] | \"2\" [0-8])) | "       \
    "([0-9] [0-9] (\"0\" [48] | [2468] [048] | [13579] [26]) | ([02468] [048] | [13579] [26]) \"00\") \"-02-29\")"
#define TIME                                                                                                           \
    "([01] [0-9] | \"2\" [0-3]) \":\" [0-5] [0-9] \":\" [0-5] [0-9] (\".\" [0-9]{1,3})? (\"Z\" | [+-] ([01] [0-9] | " \
    "\"2\" [0-3]) \":\" [0-5] [0-9])"
    if (!strcmp(f, "date")) {
        *mn = *mx = 10;
        return DATE;
    }
    if (!strcmp(f, "time")) {
        *mn = 9;
        *mx = 18;
        return TIME;
    }
    if (!strcmp(f, "date-time")) {
        *mn = 20;
        *mx = 29;
        return DATE " \"T\" " TIME;
    }
    if (!strcmp(f, "uuid")) {
        *mn = *mx = 36;
        return "[0-9a-f]{8} \"-\" [0-9a-f]{4} \"-\" [0-9a-f]{4} \"-\" [0-9a-f]{4} \"-\" [0-9a-f]{12}";
    }
    if (!strcmp(f, "ipv4")) {
        *mn = 7;
        *mx = 15;
        return "((\"25\" [0-5] | \"2\" [0-4] [0-9] | \"1\" [0-9] [0-9] | [1-9]? [0-9]) \".\"){3} (\"25\" [0-5] | \"2\" "
               "[0-4] [0-9] | \"1\" [0-9] [0-9] | [1-9]? [0-9])";
    }
    return NULL;
#undef DATE
#undef TIME
}

/* ---- JSON literals (enum/const) ---- */

static int put_json_lit(B *b, sbuf *s, const json_t *v)
{
    if (json_is_object(v)) {
        sb_puts(s, "\"{\" ");
        const char *k;
        json_t *x;
        bool first = true;
        json_object_foreach((json_t *)v, k, x)
        {
            if (!first)
                sb_printf(s, "\",\" %ssp ", b->pfx);
            first = false;
            json_t *ks = json_string(k);
            char *d = ks ? json_dumps(ks, JSON_ENCODE_ANY) : NULL;
            json_decref(ks);
            if (!d)
                return oom();
            put_lits(s, d);
            free(d);
            sb_printf(s, " \":\" %ssp ", b->pfx);
            int rc = put_json_lit(b, s, x);
            if (rc)
                return rc;
        }
        sb_puts(s, " \"}\"");
    } else if (json_is_array(v)) {
        sb_puts(s, "\"[\" ");
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x)
        {
            if (i)
                sb_printf(s, " \",\" %ssp ", b->pfx);
            int rc = put_json_lit(b, s, x);
            if (rc)
                return rc;
        }
        sb_puts(s, " \"]\"");
    } else if (json_is_real(v)) {
        double d = json_real_value(v);
        char t[64];
        for (int p = 1; p <= 17; p++) {
            snprintf(t, sizeof t, "%.*g", p, d);
            if (strtod(t, NULL) == d)
                break;
        }
        put_lits(s, t);
    } else {
        char *d = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
        if (!d)
            return oom();
        put_lits(s, d);
        free(d);
    }
    return s->oom ? oom() : 0;
}

static bool type_ok(const json_t *v, const char *t)
{
    if (!strcmp(t, "null"))
        return json_is_null(v);
    if (!strcmp(t, "boolean"))
        return json_is_boolean(v);
    if (!strcmp(t, "string"))
        return json_is_string(v);
    if (!strcmp(t, "array"))
        return json_is_array(v);
    if (!strcmp(t, "object"))
        return json_is_object(v);
    if (!strcmp(t, "number"))
        return json_is_number(v);
    if (!strcmp(t, "integer"))
        return json_is_integer(v) || (json_is_real(v) && floor(json_real_value(v)) == json_real_value(v));
    return false;
}

/* ---- types ---- */

enum { T_NULL = 1, T_BOOL = 2, T_INT = 4, T_NUM = 8, T_STR = 16, T_ARR = 32, T_OBJ = 64, T_ALL = 127 };

static int type_bit(const char *t)
{
    static const char *n[] = { "null", "boolean", "integer", "number", "string", "array", "object" };
    for (int i = 0; i < 7; i++)
        if (!strcmp(t, n[i]))
            return 1 << i;
    return 0;
}

static int get_count(const json_t *s, const char *k, const char *path, long *v, bool *has)
{
    const json_t *x = json_object_get(s, k);
    *has = x != NULL;
    if (!x)
        return 0;
    if (json_is_real(x) && floor(json_real_value(x)) == json_real_value(x) && json_real_value(x) >= 0 &&
        json_real_value(x) < 1e9) {
        *v = (long)json_real_value(x);
        return 0;
    }
    if (!json_is_integer(x) || json_integer_value(x) < 0)
        return bad(path, "must be a non-negative integer", k);
    *v = json_integer_value(x) > 1000000000 ? 1000000000 : (long)json_integer_value(x);
    return 0;
}

static int gen_string(B *b, const json_t *s, const char *path, sbuf *o, bool *never)
{
    int rc;
    long mnl = 0, mxl = -1;
    bool hmn, hmx;
    if ((rc = get_count(s, "minLength", path, &mnl, &hmn)) || (rc = get_count(s, "maxLength", path, &mxl, &hmx)))
        return rc;
    if (!hmx)
        mxl = -1;
    const json_t *fmt = json_object_get(s, "format"), *pat = json_object_get(s, "pattern");
    if (fmt && !json_is_string(fmt))
        return bad(path, "must be a string", "format");
    if (pat && !json_is_string(pat))
        return bad(path, "must be a string", "pattern");
    long fmn = 0, fmx = 0;
    const char *fg = fmt ? format_gbnf(json_string_value(fmt), &fmn, &fmx) : NULL;
    if (fmt && !fg && (rc = refuse(b, path, "unsupported format '%s'", json_string_value(fmt))))
        return rc;
    sbuf pg = { 0 };
    long pmn = 0, pmx = 0;
    if (pat && (rc = regex_gbnf(b, json_string_value(pat), path, &pg, &pmn, &pmx))) {
        sb_free(&pg);
        return rc;
    }
    if (fg && pat) {
        if ((rc = refuse(b, path, "'format' together with 'pattern' is not supported"))) {
            sb_free(&pg);
            return rc;
        }
        sb_free(&pg);
        pat = NULL;
    }
    if (fg || pat) {
        long a = fg ? fmn : pmn, z = fg ? fmx : pmx;
        bool inside = a >= mnl && (mxl < 0 || (z >= 0 && z <= mxl));
        if (!inside && (rc = refuse(b, path, "'%s' together with minLength/maxLength is not supported",
                                    fg ? "format" : "pattern"))) {
            sb_free(&pg);
            return rc;
        }
        if (fg)
            sb_printf(o, "\"\\\"\" %s \"\\\"\"", fg);
        else
            sb_puts(o, pg.p);
        sb_free(&pg);
        return o->oom ? oom() : 0;
    }
    if (mxl >= 0 && mnl > mxl)
        return err_set(SOV_EINVAL, "json schema: 'minLength' > 'maxLength' at %s", path);
    (void)never;
    if (mxl < 0)
        sb_printf(o, "\"\\\"\" %schar{%ld,} \"\\\"\"", b->pfx, mnl);
    else if (mxl == 0)
        sb_puts(o, "\"\\\"\\\"\"");
    else
        sb_printf(o, "\"\\\"\" %schar{%ld,%ld} \"\\\"\"", b->pfx, mnl, mxl);
    return o->oom ? oom() : 0;
}

#define INT15 999999999999999LL
#define INT18 999999999999999999LL

/* Reads the numeric bounds. lo/hi: integer bounds (inclusive or not),
 * frac: a bound is not an integer. */
typedef struct {
    bool has_lo, has_hi, lo_in, hi_in, frac, big;
    double lo, hi;
} bounds;

static int get_bounds(B *b, const json_t *s, const char *path, bounds *bd)
{
    memset(bd, 0, sizeof *bd);
    const char *ks[4] = { "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum" };
    const json_t *v[4];
    for (int i = 0; i < 4; i++) {
        v[i] = json_object_get(s, ks[i]);
        if (v[i] && !json_is_number(v[i]) && !(i >= 2 && json_is_boolean(v[i])))
            return bad(path, "must be a number", ks[i]);
    }
    bd->lo_in = bd->hi_in = true;
    if (v[0]) {
        bd->has_lo = true;
        bd->lo = json_number_value(v[0]);
        if (json_is_true(v[2]))
            bd->lo_in = false;
    }
    if (v[1]) {
        bd->has_hi = true;
        bd->hi = json_number_value(v[1]);
        if (json_is_true(v[3]))
            bd->hi_in = false;
    }
    if (v[2] && json_is_number(v[2])) {
        double e = json_number_value(v[2]);
        if (!bd->has_lo || e >= bd->lo) {
            bd->has_lo = true;
            bd->lo = e;
            bd->lo_in = false;
        }
    }
    if (v[3] && json_is_number(v[3])) {
        double e = json_number_value(v[3]);
        if (!bd->has_hi || e <= bd->hi) {
            bd->has_hi = true;
            bd->hi = e;
            bd->hi_in = false;
        }
    }
    if (v[0] && v[1] && json_number_value(v[0]) > json_number_value(v[1]))
        return err_set(SOV_EINVAL, "json schema: 'minimum' > 'maximum' at %s", path);
    if (bd->has_lo && bd->has_hi && (bd->lo > bd->hi || (bd->lo == bd->hi && !(bd->lo_in && bd->hi_in))))
        return err_set(SOV_EINVAL, "json schema: no number between the bounds at %s", path);
    (void)b;
    return 0;
}

static int gen_integer(B *b, const json_t *s, const char *path, sbuf *o, bool *never)
{
    bounds bd;
    int rc = get_bounds(b, s, path, &bd);
    if (rc)
        return rc;
    if (!bd.has_lo && !bd.has_hi) {
        sb_printf(o, "%sint", b->pfx);
        return o->oom ? oom() : 0;
    }
    long long lim = INT15;
    double lo = -1e300, hi = 1e300;
    if (bd.has_lo) {
        lo = bd.lo_in ? ceil(bd.lo) : floor(bd.lo) + 1;
        if (fabs(lo) > (double)INT15)
            lim = INT18;
        if (fabs(lo) > 9.99999999999999e17) {
            if ((rc = refuse(b, path, "an integer bound beyond 18 digits")))
                return rc;
            lo = lo < 0 ? -1e300 : lo;
        }
    }
    if (bd.has_hi) {
        hi = bd.hi_in ? floor(bd.hi) : ceil(bd.hi) - 1;
        if (fabs(hi) > (double)INT15)
            lim = INT18;
        if (fabs(hi) > 9.99999999999999e17) {
            if ((rc = refuse(b, path, "an integer bound beyond 18 digits")))
                return rc;
            hi = hi > 0 ? 1e300 : hi;
        }
    }
    int64_t l = lo < (double)-lim ? -lim : (int64_t)lo;
    int64_t h = hi > (double)lim ? lim : (int64_t)hi;
    /* exact integer bounds from jansson where present */
    const json_t *mi = json_object_get(s, "minimum"), *ma = json_object_get(s, "maximum");
    if (json_is_integer(mi) && bd.lo_in && !json_is_number(json_object_get(s, "exclusiveMinimum")) &&
        llabs(json_integer_value(mi)) <= lim)
        l = json_integer_value(mi);
    if (json_is_integer(ma) && bd.hi_in && !json_is_number(json_object_get(s, "exclusiveMaximum")) &&
        llabs(json_integer_value(ma)) <= lim)
        h = json_integer_value(ma);
    if (l > h) {
        *never = true;
        return 0;
    }
    int_range(o, l, h);
    return o->oom ? oom() : 0;
}

static int gen_number(B *b, const json_t *s, const char *path, sbuf *o, bool *never)
{
    bounds bd;
    int rc = get_bounds(b, s, path, &bd);
    if (rc)
        return rc;
    if (!bd.has_lo && !bd.has_hi) {
        sb_printf(o, "%snumber", b->pfx);
        return o->oom ? oom() : 0;
    }
    double lo = -(double)INT15, hi = (double)INT15;
    bool lin = true, hin = true;
    if (bd.has_lo) {
        lo = bd.lo;
        lin = bd.lo_in;
        if (floor(lo) != lo) {
            if ((rc = refuse(b, path, "a fractional bound of a number")))
                return rc;
            lo = floor(lo);
            lin = true;
        }
        if (lo < -(double)INT15 || lo > (double)INT15) {
            if ((rc = refuse(b, path, "a number bound beyond 15 digits")))
                return rc;
            lo = lo < 0 ? -(double)INT15 : lo;
        }
    }
    if (bd.has_hi) {
        hi = bd.hi;
        hin = bd.hi_in;
        if (floor(hi) != hi) {
            if ((rc = refuse(b, path, "a fractional bound of a number")))
                return rc;
            hi = ceil(hi);
            hin = true;
        }
        if (hi > (double)INT15 || hi < -(double)INT15) {
            if ((rc = refuse(b, path, "a number bound beyond 15 digits")))
                return rc;
            hi = hi > 0 ? (double)INT15 : hi;
        }
    }
    if (lo > (double)INT15 || hi < -(double)INT15 || lo > hi || (lo == hi && !(lin && hin))) {
        *never = true;
        return 0;
    }
    int64_t l = (int64_t)lo, h = (int64_t)hi;
    bool any = false;
    sb_puts(o, "(");
    if (l < 0) {
        /* negative values: magnitudes in (max(0,-h) .. -l] */
        uint64_t a = h < 0 ? (uint64_t)(-h) : 0;
        bool ain = h < 0 ? hin : false;
        sbuf t = { 0 };
        bool any2 = false;
        mag_range(&t, a, (uint64_t)(-l), ain, lin, &any2);
        if (any2)
            sb_printf(o, "\"-\" (%s)", t.p);
        if (t.oom)
            o->oom = true;
        sb_free(&t);
        any = any2;
    }
    if (h > 0 || (h == 0 && hin)) {
        uint64_t a = l > 0 ? (uint64_t)l : 0;
        bool ain = l >= 0 ? lin : true;
        sbuf t = { 0 };
        bool any2 = false;
        mag_range(&t, a, (uint64_t)h, ain, hin, &any2);
        if (any2)
            sb_printf(o, "%s(%s)", any ? " | " : "", t.p);
        if (t.oom)
            o->oom = true;
        sb_free(&t);
        any |= any2;
    }
    sb_puts(o, ")");
    if (!any)
        *never = true;
    return o->oom ? oom() : 0;
}

/* ---- arrays ---- */

static int gen_array(B *b, const json_t *s, const char *path, sbuf *o, bool *never)
{
    int rc = 0;
    long mn = 0, mx = -1;
    bool hmn, hmx;
    int *el = NULL;
    sbuf tail = { 0 };
    if ((rc = get_count(s, "minItems", path, &mn, &hmn)) || (rc = get_count(s, "maxItems", path, &mx, &hmx)))
        return rc;
    if (!hmx)
        mx = -1;
    if (mx >= 0 && mn > mx)
        return err_set(SOV_EINVAL, "json schema: 'minItems' > 'maxItems' at %s", path);
    const json_t *pre = json_object_get(s, "prefixItems"), *items = json_object_get(s, "items");
    const char *ipath = pjoin(b, path, "items");
    const char *ppath = "prefixItems";
    NEED(ipath);
    if (json_is_array(items)) { /* draft 7 tuple */
        if (pre && (rc = refuse(b, path, "both 'prefixItems' and an 'items' array")))
            return rc;
        pre = items;
        ppath = "items";
        items = json_object_get(s, "additionalItems");
        ipath = pjoin(b, path, "additionalItems");
        NEED(ipath);
    }
    if (pre && !json_is_array(pre))
        return bad(path, "must be an array", "prefixItems");
    if (items && !json_is_object(items) && !json_is_boolean(items))
        return bad(path, "must be a schema", "items");
    size_t k = pre ? json_array_size(pre) : 0;
    el = calloc(k + 1, sizeof *el);
    NEED(el);
    for (size_t j = 0; j < k; j++) {
        const char *p = pjoin_i(b, path, ppath, j);
        NEED(p);
        if ((rc = gen(b, json_array_get(pre, j), p, &el[j])))
            goto fail;
        if (el[j] < 0) {
            if ((long)j < mn) {
                *never = true;
                goto fail;
            }
            if (mx < 0 || (long)j < mx)
                mx = (long)j;
            k = j;
            break;
        }
    }
    int it = -1;
    if (!items || json_is_true(items)) {
        it = -2; /* generic value */
    } else if ((rc = gen(b, items, ipath, &it)))
        goto fail;
    if (it == -1 && (mx < 0 || mx > (long)k))
        mx = (long)k;
    if (mx >= 0 && mn > mx) {
        *never = true;
        goto fail;
    }
    char iname[64];
    if (it == -2)
        snprintf(iname, sizeof iname, "%svalue", b->pfx);
    else
        snprintf(iname, sizeof iname, "%sr%d", b->pfx, it);
    /* build from the back: the rest after j elements */
    /* uniform tail after max(k,1) elements */
    size_t j0 = k > 0 ? k : 1;
    if (mx < 0 || mx > (long)j0) {
        long a = mn - (long)j0 > 0 ? mn - (long)j0 : 0;
        if (mx < 0)
            sb_printf(&tail, "(\",\" %ssp %s){%ld,}", b->pfx, iname, a);
        else
            sb_printf(&tail, "(\",\" %ssp %s){%ld,%ld}", b->pfx, iname, a, mx - (long)j0);
    }
    for (size_t j = j0; j-- > 1;) {
        if (mx >= 0 && (long)j >= mx)
            continue;
        sbuf t = { 0 };
        if ((long)j < mn)
            sb_printf(&t, "\",\" %ssp %sr%d %s", b->pfx, b->pfx, el[j], tail.p ? tail.p : "");
        else
            sb_printf(&t, "(\",\" %ssp %sr%d %s)?", b->pfx, b->pfx, el[j], tail.p ? tail.p : "");
        sb_free(&tail);
        tail = t;
        NEED(!tail.oom);
    }
    if (mx == 0) {
        sb_puts(o, "\"[\" \"]\"");
    } else {
        char first[64];
        if (k > 0)
            snprintf(first, sizeof first, "%sr%d", b->pfx, el[0]);
        else
            snprintf(first, sizeof first, "%s", iname);
        if (mn >= 1)
            sb_printf(o, "\"[\" %s %s \"]\"", first, tail.p ? tail.p : "");
        else
            sb_printf(o, "\"[\" (%s %s)? \"]\"", first, tail.p ? tail.p : "");
    }
    NEED(!o->oom);
fail:
    free(el);
    sb_free(&tail);
    return rc;
}

/* ---- objects ---- */

typedef struct {
    const char *key;
    int id;
    bool req;
} prop;

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Key content (no quotes) not in keys[0..n) (sorted, all sharing the first
 * d bytes): a rule id. Keys compared as UTF-8 byte strings; branches by
 * code point. */
static int key_not_in(B *b, const char **keys, size_t n, size_t d, long cd, long kmn, long kmx, int *id)
{
    int rc = 0;
    sbuf body = { 0 };
    cpset used = { 0 };
    bool term = false, any = false;
    *id = -1;
    size_t i = 0;
    while (i < n) {
        const unsigned char *k = (const unsigned char *)keys[i];
        size_t len = strlen(keys[i]);
        if (len == d) {
            term = true;
            i++;
            continue;
        }
        uint32_t cp;
        int cl = utf8_dec(k + d, len - d, &cp);
        if (cl <= 0) {
            rc = err_set(SOV_EINVAL, "json schema: a property name is not UTF-8");
            goto fail;
        }
        size_t j = i + 1;
        while (j < n && strlen(keys[j]) >= d + (size_t)cl && !memcmp(keys[j] + d, k + d, (size_t)cl))
            j++;
        cs_add(&used, cp, cp);
        int sub = -1;
        if ((kmx < 0 || cd + 1 <= kmx) &&
            (rc = key_not_in(b, keys + i, j - i, d + (size_t)cl, cd + 1, kmn, kmx, &sub)))
            goto fail;
        if (sub >= 0) {
            sb_puts(&body, any ? " | " : "");
            put_json_cp(&body, cp);
            sb_printf(&body, " %sr%d", b->pfx, sub);
            any = true;
        }
        i = j;
    }
    cs_norm(&used);
    cs_negate(&used);
    NEED(!used.oom);
    /* a different code point here, then any rest (within the lengths) */
    if (kmx < 0 || cd + 1 <= kmx) {
        long lo = kmn - cd - 1 > 0 ? kmn - cd - 1 : 0;
        sb_puts(&body, any ? " | " : "");
        cs_emit(&body, &used);
        if (kmx < 0)
            sb_printf(&body, " %skchar{%ld,}", b->pfx, lo);
        else if (kmx - cd - 1 > 0)
            sb_printf(&body, " %skchar{%ld,%ld}", b->pfx, lo, kmx - cd - 1);
        any = true;
    }
    bool can_end = !term && cd >= kmn;
    if (!any && !can_end)
        goto fail; /* no new key from here */
    sbuf r = { 0 };
    if (!any)
        sb_puts(&r, "\"\"");
    else
        sb_printf(&r, "(%s)%s", body.p, can_end ? "?" : "");
    if (r.oom || body.oom) {
        sb_free(&r);
        rc = oom();
        goto fail;
    }
    *id = b->next_id++;
    rc = emit_rule(b, *id, r.p);
    sb_free(&r);
fail:
    cs_free(&used);
    sb_free(&body);
    return rc;
}

static int gen_object(B *b, const json_t *s, const char *path, sbuf *o, bool *never)
{
    int rc = 0;
    prop *ps = NULL;
    const char **keys = NULL;
    char **tr = NULL, **fr = NULL;
    size_t n = 0, nk = 0;
    const json_t *props = json_object_get(s, "properties"), *req = json_object_get(s, "required");
    const json_t *ap = json_object_get(s, "additionalProperties");
    if (props && !json_is_object(props))
        return bad(path, "must be an object", "properties");
    if (req && !json_is_array(req))
        return bad(path, "must be an array", "required");
    if (ap && !json_is_object(ap) && !json_is_boolean(ap))
        return bad(path, "must be a schema", "additionalProperties");
    size_t np = props ? json_object_size(props) : 0, nr = req ? json_array_size(req) : 0;
    ps = calloc(np + nr + 1, sizeof *ps);
    keys = calloc(np + nr + 1, sizeof *keys);
    NEED(ps && keys);
    size_t i;
    json_t *v;
    json_array_foreach(req, i, v) if (!json_is_string(v))
    {
        rc = bad(path, "must list strings", "required");
        goto fail;
    }
    const char *pk;
    const char *pp = pjoin(b, path, "properties");
    NEED(pp);
    json_object_foreach((json_t *)props, pk, v)
    {
        const char *p = pjoin(b, pp, pk);
        NEED(p);
        int id = -1;
        if ((rc = gen(b, v, p, &id)))
            goto fail;
        bool r = req && arr_has_str(req, pk);
        keys[nk++] = pk;
        if (id < 0) {
            if (r) {
                *never = true;
                goto fail;
            }
            continue;
        }
        ps[n++] = (prop){ pk, id, r };
    }
    /* required names without a schema of their own */
    int apid = -2; /* -2 generic, -1 none */
    if (ap && json_is_false(ap))
        apid = -1;
    else if (ap && !json_is_true(ap)) {
        const char *p = pjoin(b, path, "additionalProperties");
        NEED(p);
        if ((rc = gen(b, ap, p, &apid)))
            goto fail;
    }
    json_array_foreach(req, i, v)
    {
        const char *rk = json_string_value(v);
        if (props && json_object_get(props, rk))
            continue;
        bool dup = false;
        for (size_t j = 0; j < n; j++)
            dup |= !strcmp(ps[j].key, rk);
        if (dup)
            continue;
        if (apid == -1) {
            *never = true;
            goto fail;
        }
        keys[nk++] = rk;
        ps[n++] = (prop){ rk, apid, true };
    }
    /* propertyNames: only minLength/maxLength, for the extra keys */
    long kmn = 0, kmx = -1;
    bool hkn = false, hkx = false;
    char kxs[32] = "";
    const json_t *pn = json_object_get(s, "propertyNames");
    if (pn) {
        const char *p = pjoin(b, path, "propertyNames");
        NEED(p);
        if (!json_is_object(pn)) {
            rc = bad(path, "must be a schema object", "propertyNames");
            goto fail;
        }
        json_object_foreach((json_t *)pn, pk, v)
        {
            if (strcmp(pk, "minLength") && strcmp(pk, "maxLength") && !is_annot(pk) &&
                !(!strcmp(pk, "type") && json_is_string(v) && !strcmp(json_string_value(v), "string")) &&
                (rc = refuse(b, p, "unsupported keyword '%s' (propertyNames takes minLength/maxLength)", pk)))
                goto fail;
        }
        if ((rc = get_count(pn, "minLength", p, &kmn, &hkn)) || (rc = get_count(pn, "maxLength", p, &kmx, &hkx)))
            goto fail;
        if (!hkx)
            kmx = -1;
        if (kmx >= 0 && kmn > kmx) {
            rc = err_set(SOV_EINVAL, "json schema: 'minLength' > 'maxLength' at %s", p);
            goto fail;
        }
        if (kmx >= 0)
            snprintf(kxs, sizeof kxs, "%ld", kmx);
    }
    /* extras: X = key ":" sp value */
    char xs[256] = "";
    if (apid != -1) {
        char vname[64];
        if (apid == -2)
            snprintf(vname, sizeof vname, "%svalue", b->pfx);
        else
            snprintf(vname, sizeof vname, "%sr%d", b->pfx, apid);
        if (nk == 0) {
            if (hkn || hkx)
                snprintf(xs, sizeof xs, "\"\\\"\" %skchar{%ld,%s} \"\\\"\" \":\" %ssp %s", b->pfx, kmn, kxs, b->pfx,
                         vname);
            else
                snprintf(xs, sizeof xs, "%sstring \":\" %ssp %s", b->pfx, b->pfx, vname);
        } else {
            qsort(keys, nk, sizeof *keys, cmp_str);
            int kid;
            if ((rc = key_not_in(b, keys, nk, 0, 0, kmn, kmx, &kid)))
                goto fail;
            if (kid >= 0)
                snprintf(xs, sizeof xs, "\"\\\"\" %sr%d \"\\\"\" \":\" %ssp %s", b->pfx, kid, b->pfx, vname);
        }
    }
    tr = calloc(n + 1, sizeof *tr);
    fr = calloc(n + 1, sizeof *fr);
    NEED(tr && fr);
    {
        sbuf t = { 0 }, f = { 0 };
        /* minProperties/maxProperties: exact where the count of known
         * members is fixed (all required) */
        long pmn = 0, pmx = -1, xlo = 0, xhi = -1;
        bool hpn, hpx;
        size_t nreq = 0;
        for (size_t j = 0; j < n; j++)
            nreq += ps[j].req;
        if ((rc = get_count(s, "minProperties", path, &pmn, &hpn)) ||
            (rc = get_count(s, "maxProperties", path, &pmx, &hpx)))
            goto fail;
        if (!hpx)
            pmx = -1;
        if (pmx >= 0 && pmn > pmx) {
            rc = err_set(SOV_EINVAL, "json schema: 'minProperties' > 'maxProperties' at %s", path);
            goto fail;
        }
        if (pmn > 0 || pmx >= 0) {
            if ((pmx >= 0 && pmx < (long)nreq) || (!*xs && pmn > (long)n)) {
                *never = true;
                goto fail;
            }
            if (nreq != n && (*xs || pmn > (long)nreq || (pmx >= 0 && pmx < (long)n))) {
                if ((rc = refuse(b, path, "'minProperties'/'maxProperties' with optional properties")))
                    goto fail;
            } else if (*xs) {
                xlo = pmn - (long)n > 0 ? pmn - (long)n : 0;
                xhi = pmx >= 0 ? pmx - (long)n : -1;
            }
        }
        if (*xs && xhi != 0) {
            char r1[48], r2[48];
            if (xhi < 0) {
                snprintf(r1, sizeof r1, "{%ld,}", xlo);
                snprintf(r2, sizeof r2, "{%ld,}", xlo > 0 ? xlo - 1 : 0);
            } else {
                snprintf(r1, sizeof r1, "{%ld,%ld}", xlo, xhi);
                snprintf(r2, sizeof r2, "{%ld,%ld}", xlo > 0 ? xlo - 1 : 0, xhi - 1);
            }
            sb_printf(&t, "(\",\" %ssp %s)%s", b->pfx, xs, r1);
            sb_printf(&f, "(%s (\",\" %ssp %s)%s)%s", xs, b->pfx, xs, r2, xlo > 0 ? "" : "?");
        }
        tr[n] = t.p ? t.p : strdup("");
        fr[n] = f.p ? f.p : strdup("");
        NEED(tr[n] && fr[n] && !t.oom && !f.oom);
    }
    for (size_t j = n; j-- > 0;) {
        sbuf kv = { 0 }, body = { 0 };
        json_t *ks = json_string(ps[j].key);
        char *d = ks ? json_dumps(ks, JSON_ENCODE_ANY) : NULL;
        json_decref(ks);
        NEED(d);
        put_lits(&kv, d);
        free(d);
        sb_printf(&kv, " \":\" %ssp %sr%d", b->pfx, b->pfx, ps[j].id);
        NEED(!kv.oom);
        /* T_j */
        if (ps[j].req)
            sb_printf(&body, "\",\" %ssp %s %s", b->pfx, kv.p, tr[j + 1]);
        else
            sb_printf(&body, "(\",\" %ssp %s)? %s", b->pfx, kv.p, tr[j + 1]);
        int tid = b->next_id++;
        if (!body.oom)
            rc = emit_rule(b, tid, body.p);
        sb_free(&body);
        char nm[64];
        snprintf(nm, sizeof nm, "%sr%d", b->pfx, tid);
        /* F_j */
        if (ps[j].req)
            sb_printf(&body, "%s %s", kv.p, tr[j + 1]);
        else if (!*fr[j + 1])
            sb_printf(&body, "(%s %s)?", kv.p, tr[j + 1]);
        else
            sb_printf(&body, "(%s %s | %s)", kv.p, tr[j + 1], fr[j + 1]);
        int fid = b->next_id++;
        if (!rc && !body.oom)
            rc = emit_rule(b, fid, body.p);
        bool bo = body.oom || kv.oom;
        sb_free(&body);
        sb_free(&kv);
        if (rc)
            goto fail;
        NEED(!bo);
        tr[j] = strdup(nm);
        snprintf(nm, sizeof nm, "%sr%d", b->pfx, fid);
        fr[j] = strdup(nm);
        NEED(tr[j] && fr[j]);
    }
    sb_printf(o, "\"{\" %s \"}\"", fr[0]);
    NEED(!o->oom);
fail:
    if (tr)
        for (size_t j = 0; j <= n; j++)
            free(tr[j]);
    if (fr)
        for (size_t j = 0; j <= n; j++)
            free(fr[j]);
    free(tr);
    free(fr);
    free(ps);
    free(keys);
    return rc;
}

/* ---- schemas ---- */

static bool has_constraints(const json_t *s)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)s, k, v) if (!is_annot(k)) return true;
    return false;
}

/* A copy of s without the keys listed. */
static json_t *without(B *b, const json_t *s, const char *k1, const char *k2)
{
    json_t *c = json_copy((json_t *)s);
    if (!c)
        return NULL;
    json_object_del(c, k1);
    if (k2)
        json_object_del(c, k2);
    return keep_json(b, c);
}

static int gen_body(B *b, const json_t *s, const char *path, sbuf *o, bool *never)
{
    int rc = 0;
    if (json_is_true(s)) {
        sb_printf(o, "%svalue", b->pfx);
        return o->oom ? oom() : 0;
    }
    if (json_is_false(s)) {
        *never = true;
        return 0;
    }
    if (!json_is_object(s))
        return err_set(SOV_EINVAL, "json schema: a schema must be an object or a boolean at %s", path);
    if (++b->depth > 200) {
        b->depth--;
        return err_set(SOV_EINVAL, "json schema: nested too deep at %s", path);
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)s, k, v)
    {
        if (!in_list(KNOWN, k) && !is_annot(k) && (rc = refuse(b, path, "unsupported keyword '%s'", k)))
            goto out;
    }
    const json_t *ref = json_object_get(s, "$ref");
    const json_t *all = json_object_get(s, "allOf");
    const json_t *any = json_object_get(s, "anyOf"), *one = json_object_get(s, "oneOf");
    if (ref && !json_is_string(ref)) {
        rc = bad(path, "must be a string", "$ref");
        goto out;
    }
    if (ref || all) {
        const json_t *rest = ref ? without(b, s, "$ref", NULL) : s;
        NEED(rest);
        if (ref && !all && !has_constraints(rest)) {
            const json_t *t;
            const char *tp;
            int id = -1;
            if ((rc = resolve(b, json_string_value(ref), path, &t, &tp)) || (rc = gen_ref(b, t, tp, &id)))
                goto out;
            sb_printf(o, "%sr%d", b->pfx, id);
            NEED(!o->oom);
            goto out;
        }
        /* merge everything (the $ref target, allOf members, siblings) */
        json_t *m = keep_json(b, json_object());
        NEED(m);
        bool nv = false;
        json_t *sib = json_copy((json_t *)s);
        NEED(sib);
        json_object_del(sib, "$ref");
        json_object_del(sib, "allOf");
        if (ref) {
            const json_t *t;
            const char *tp;
            if ((rc = resolve(b, json_string_value(ref), path, &t, &tp)) || (rc = merge_into(b, m, t, tp, &nv))) {
                json_decref(sib);
                goto out;
            }
        }
        if (all) {
            if (!json_is_array(all)) {
                json_decref(sib);
                rc = bad(path, "must be an array", "allOf");
                goto out;
            }
            size_t i;
            json_array_foreach(all, i, v)
            {
                const char *p = pjoin_i(b, path, "allOf", i);
                if (!p || (rc = merge_into(b, m, v, p ? p : path, &nv))) {
                    json_decref(sib);
                    rc = rc ? rc : oom();
                    goto out;
                }
            }
        }
        rc = merge_into(b, m, sib, path, &nv);
        json_decref(sib);
        if (rc)
            goto out;
        if (nv) {
            *never = true;
            goto out;
        }
        rc = gen_body(b, m, path, o, never);
        goto out;
    }
    if (any || one) {
        const char *kw = any ? "anyOf" : "oneOf";
        const json_t *list = any ? any : one;
        if (any && one && (rc = refuse(b, path, "both 'anyOf' and 'oneOf'")))
            goto out;
        if (!json_is_array(list) || !json_array_size(list)) {
            rc = bad(path, "must be a non-empty array", kw);
            goto out;
        }
        const json_t *rest = without(b, s, "anyOf", "oneOf");
        NEED(rest);
        bool sib = has_constraints(rest);
        bool first = true;
        size_t i;
        sb_puts(o, "(");
        json_array_foreach(list, i, v)
        {
            const char *p = pjoin_i(b, path, kw, i);
            NEED(p);
            int id = -1;
            if (sib) {
                json_t *m = keep_json(b, json_object());
                NEED(m);
                bool nv = false;
                if ((rc = merge_into(b, m, rest, path, &nv)) || (rc = merge_into(b, m, v, p, &nv)))
                    goto out;
                if (nv)
                    continue;
                if ((rc = gen(b, m, p, &id)))
                    goto out;
            } else if ((rc = gen(b, v, p, &id)))
                goto out;
            if (id < 0)
                continue;
            sb_printf(o, "%s%sr%d", first ? "" : " | ", b->pfx, id);
            first = false;
        }
        sb_puts(o, ")");
        NEED(!o->oom);
        if (first)
            *never = true;
        goto out;
    }
    /* type */
    int types = T_ALL;
    const json_t *ty = json_object_get(s, "type");
    if (ty) {
        types = 0;
        if (json_is_string(ty)) {
            types = type_bit(json_string_value(ty));
            if (!types) {
                rc = err_set(SOV_EINVAL, "json schema: unknown type '%s' at %s", json_string_value(ty), path);
                goto out;
            }
        } else if (json_is_array(ty)) {
            size_t i;
            json_array_foreach(ty, i, v)
            {
                int t = json_is_string(v) ? type_bit(json_string_value(v)) : 0;
                if (!t) {
                    rc = bad(path, "lists an unknown type", "type");
                    goto out;
                }
                types |= t;
            }
        } else {
            rc = bad(path, "must be a string or an array", "type");
            goto out;
        }
    }
    /* bounds are checked whatever the type */
    {
        bounds bd;
        long a, z;
        bool h1, h2;
        if ((rc = get_bounds(b, s, path, &bd)))
            goto out;
        if ((rc = get_count(s, "minLength", path, &a, &h1)) || (rc = get_count(s, "maxLength", path, &z, &h2)))
            goto out;
        if (h1 && h2 && a > z) {
            rc = err_set(SOV_EINVAL, "json schema: 'minLength' > 'maxLength' at %s", path);
            goto out;
        }
        if ((rc = get_count(s, "minItems", path, &a, &h1)) || (rc = get_count(s, "maxItems", path, &z, &h2)))
            goto out;
        if (h1 && h2 && a > z) {
            rc = err_set(SOV_EINVAL, "json schema: 'minItems' > 'maxItems' at %s", path);
            goto out;
        }
    }
    const json_t *en = json_object_get(s, "enum"), *co = json_object_get(s, "const");
    if (en || co) {
        if (en && !json_is_array(en)) {
            rc = bad(path, "must be an array", "enum");
            goto out;
        }
        json_object_foreach((json_t *)s, k, v)
        {
            if (strcmp(k, "enum") && strcmp(k, "const") && strcmp(k, "type") && !is_annot(k) &&
                (rc = refuse(b, path, "'%s' together with enum/const is not supported", k)))
                goto out;
        }
        static const char *tn[] = { "null", "boolean", "integer", "number", "string", "array", "object" };
        bool first = true;
        sb_puts(o, "(");
        size_t n = en ? json_array_size(en) : 1;
        for (size_t i = 0; i < n; i++) {
            const json_t *x = en ? json_array_get(en, i) : co;
            if (en && co && !json_equal(x, co))
                continue;
            bool ok = false;
            for (int t = 0; t < 7; t++)
                ok |= (types & (1 << t)) && type_ok(x, tn[t]);
            if (!ok)
                continue;
            if (!first)
                sb_puts(o, " | ");
            first = false;
            sb_puts(o, "(");
            if ((rc = put_json_lit(b, o, x)))
                goto out;
            sb_puts(o, ")");
        }
        sb_puts(o, ")");
        NEED(!o->oom);
        if (first)
            *never = true;
        goto out;
    }
    bool first = true;
    sb_puts(o, "(");
    for (int t = 0; t < 7; t++) {
        int bit = 1 << t;
        if (!(types & bit) || (bit == T_INT && (types & T_NUM)))
            continue;
        sbuf a = { 0 };
        bool nv = false;
        switch (bit) {
        case T_NULL: sb_puts(&a, "\"null\""); break;
        case T_BOOL: sb_puts(&a, "(\"true\" | \"false\")"); break;
        case T_INT: rc = gen_integer(b, s, path, &a, &nv); break;
        case T_NUM: rc = gen_number(b, s, path, &a, &nv); break;
        case T_STR: rc = gen_string(b, s, path, &a, &nv); break;
        case T_ARR: rc = gen_array(b, s, path, &a, &nv); break;
        case T_OBJ: rc = gen_object(b, s, path, &a, &nv); break;
        }
        if (!rc && a.oom)
            rc = oom();
        if (!rc && !nv && a.p) {
            sb_printf(o, "%s%s", first ? "" : " | ", a.p);
            first = false;
        }
        sb_free(&a);
        if (rc)
            goto out;
    }
    sb_puts(o, ")");
    NEED(!o->oom);
    if (first)
        *never = true;
out:
fail:
    b->depth--;
    return rc;
}

static int gen(B *b, const json_t *s, const char *path, int *id)
{
    sbuf body = { 0 };
    bool never = false;
    int my = b->next_id++;
    int rc = gen_body(b, s, path, &body, &never);
    if (!rc && !never && body.oom)
        rc = oom();
    if (!rc && !never)
        rc = emit_rule(b, my, body.p);
    sb_free(&body);
    *id = never ? -1 : my;
    return rc;
}

/* ---- entry points ---- */

#define BASE_RULES(P)                                                                                                  \
    P "sp ::= \" \"?\n" P "hex ::= [0-9a-fA-F]\n" P "char ::= [^\"\\\\\\x00-\\x1F] | \"\\\\\" ([\"\\\\/bfnrt] | "     \
      "\"u\" ([0-9a-cA-Ce-fE-F] " P "hex{3} | [dD] [0-7] " P "hex{2}))\n" P "string ::= \"\\\"\" " P "char* "           \
      "\"\\\"\"\n" P "int ::= \"0\" | \"-\"? [1-9] [0-9]{0,14}\n" P "number ::= \"-\"? (\"0\" | [1-9] [0-9]{0,14}) "  \
      "(\".\" [0-9]{1,15})? ([eE] [+-]? [0-9]{1,2})?\n" P "value ::= " P "object | " P "array | " P "string | " P      \
      "number | \"true\" | \"false\" | \"null\"\n" P "object ::= \"{\" (" P "string \":\" " P "sp " P "value (\",\" " \
      P "sp " P "string \":\" " P "sp " P "value)*)? \"}\"\n" P "array ::= \"[\" (" P "value (\",\" " P "sp " P        \
      "value)*)? \"]\"\n"

const char *schema_json_gbnf(void)
{
    return "root ::= object\n" BASE_RULES("");
}

int schema_to_gbnf_rules(const json_t *schema, bool strict, const char *prefix, char **out)
{
    int rc = 0;
    B b = { 0 };
    *out = NULL;
    if (!prefix)
        prefix = "";
    for (const char *p = prefix; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-')
            return err_set(SOV_EINVAL, "json schema: bad rule prefix '%s'", prefix);
    if (strlen(prefix) > 40)
        return err_set(SOV_EINVAL, "json schema: rule prefix too long");
    if (!schema)
        return err_set(SOV_EINVAL, "json schema: no schema");
    b.root = schema;
    b.strict = strict;
    b.pfx = prefix;
    int id = -1;
    if ((rc = gen(&b, schema, "#", &id)))
        goto fail;
    if (id < 0) {
        rc = err_set(SOV_EINVAL, "json schema: no value can match the schema at #");
        goto fail;
    }
    sbuf all = { 0 };
    sb_printf(&all, "%sroot ::= %sr%d\n", prefix, prefix, id);
    sb_puts(&all, b.out.p);
    /* base rules with the prefix */
    {
        const char *base = BASE_RULES("@");
        for (const char *p = base; *p; p++) {
            if (*p == '@')
                sb_puts(&all, prefix);
            else
                sb_putn(&all, p, 1);
        }
    }
    sb_printf(&all, "%skchar ::= ", prefix);
    {
        cpset c = { 0 };
        cs_add(&c, 0, MAX_CP);
        cs_norm(&c);
        cs_emit(&all, &c);
        if (c.oom)
            all.oom = true;
        cs_free(&c);
    }
    sb_puts(&all, "\n");
    if (all.oom) {
        sb_free(&all);
        rc = oom();
        goto fail;
    }
    *out = all.p;
fail:
    sb_free(&b.out);
    for (size_t i = 0; i < b.n_owned; i++)
        json_decref(b.owned[i]);
    free(b.owned);
    for (size_t i = 0; i < b.n_strs; i++)
        free(b.strs[i]);
    free(b.strs);
    free(b.memo);
    return rc;
}

int schema_to_gbnf(const json_t *schema, bool strict, char **out)
{
    return schema_to_gbnf_rules(schema, strict, "", out);
}
