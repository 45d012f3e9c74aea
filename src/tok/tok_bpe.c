/* tok_bpe: byte-level BPE tokenizer (GPT-2 family). */
#include "tok_bpe.h"
#include "tok_heap.h"

#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "../base/err.h"

#define MAX_RE 6

/* ---- pre-tokenizer regexes (public facts from the models' tokenizer configs) ---- */

#define RE_GPT2 "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)"
#define RE_LLAMA3_HEAD "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
#define RE_LLAMA3_TAIL "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_LLAMA3 RE_LLAMA3_HEAD "\\p{N}{1,3}" RE_LLAMA3_TAIL
#define RE_QWEN2 RE_LLAMA3_HEAD "\\p{N}" RE_LLAMA3_TAIL
#define RE_CJK "[\\x{4e00}-\\x{9fa5}\\x{800}-\\x{4e00}\\x{ac00}-\\x{d7ff}]+"
#define RE_PORO " ?[^(\\s|.,!?\\x{2026}\\x{3002}\\x{ff0c}\\x{3001}\\x{964}\\x{6d4}\\x{60c})]+"

/* DeepSeek LLM: "\s?" then a class of cased letters (Latin, Greek, Cyrillic,
 * Armenian, Georgian, Cherokee, ... ranges as in its tokenizer.json). */
#define RE_DS_LLM_LETTERS                                                                              \
    "\\s?[A-Za-z\\x{b5}\\x{c0}-\\x{d6}\\x{d8}-\\x{f6}\\x{f8}-\\x{1ba}\\x{1bc}-\\x{1bf}\\x{1c4}-"        \
    "\\x{293}\\x{295}-\\x{2af}\\x{370}-\\x{373}\\x{376}\\x{377}\\x{37b}-\\x{37d}\\x{37f}\\x{386}"       \
    "\\x{388}-\\x{38a}\\x{38c}\\x{38e}-\\x{3a1}\\x{3a3}-\\x{3f5}\\x{3f7}-\\x{481}\\x{48a}-\\x{52f}"     \
    "\\x{531}-\\x{556}\\x{10a0}-\\x{10c5}\\x{13a0}-\\x{13f5}\\x{13f8}-\\x{13fd}\\x{1c90}-\\x{1cba}"     \
    "\\x{1cbd}-\\x{1cbf}\\x{1d00}-\\x{1d2b}\\x{1d6b}-\\x{1d77}\\x{1d79}-\\x{1d9a}\\x{1e00}-\\x{1f15}"   \
    "\\x{1f18}-\\x{1f1d}\\x{1f20}-\\x{1f45}\\x{1f48}-\\x{1f4d}\\x{1f50}-\\x{1f57}\\x{1f59}\\x{1f5b}"    \
    "\\x{1f5d}\\x{1f5f}-\\x{1f7d}\\x{1f80}-\\x{1fb4}\\x{1fb6}-\\x{1fbc}\\x{1fbe}\\x{1fc2}-\\x{1fc4}"    \
    "\\x{1fc6}-\\x{1fcc}\\x{1fd0}-\\x{1fd3}\\x{1fd6}-\\x{1fdb}\\x{1fe0}-\\x{1fec}\\x{1ff2}-\\x{1ff4}"   \
    "\\x{1ff6}-\\x{1ffc}\\x{2102}\\x{2107}\\x{210a}-\\x{2113}\\x{2115}\\x{2119}-\\x{211d}\\x{2124}"    \
    "\\x{2126}\\x{2128}\\x{212a}-\\x{212d}\\x{212f}-\\x{2134}\\x{2139}\\x{213c}-\\x{213f}"              \
    "\\x{2145}-\\x{2149}\\x{214e}\\x{2183}\\x{2184}\\x{2c00}-\\x{2c7b}\\x{2c7e}-\\x{2ce4}"              \
    "\\x{2ceb}-\\x{2cee}\\x{2cf2}\\x{2cf3}\\x{a640}-\\x{a66d}\\x{a680}-\\x{a69b}\\x{a722}-\\x{a76f}"    \
    "\\x{a771}-\\x{a787}\\x{a78b}-\\x{a78e}\\x{ab70}-\\x{abbf}\\x{fb00}-\\x{fb06}\\x{fb13}-\\x{fb17}"  \
    "\\x{ff21}-\\x{ff3a}\\x{ff41}-\\x{ff5a}\\x{10400}-\\x{1044f}\\x{104b0}-\\x{104d3}"                 \
    "\\x{104d8}-\\x{104fb}\\x{10c80}-\\x{10cb2}\\x{10cc0}-\\x{10cf2}\\x{118a0}-\\x{118df}"             \
    "\\x{1e900}-\\x{1e943}]+"
#define RE_DS_LLM_PUNCT "\\s?[!-/:-~\\x{ff01}-\\x{ff0f}\\x{ff1a}-\\x{ff5e}\\x{2018}-\\x{201f}\\x{3000}-\\x{3002}]+"

typedef struct pre_set {
    const char *names; /* '|'-separated tokenizer.ggml.pre values */
    const char *re[MAX_RE];
    bool ignore_merges; /* a word that is a whole token is emitted as is */
    bool add_bos;
} pre_set;

static const pre_set pre_sets[] = {
    {"default",
     {"[\\p{P}\\$\\+<=>\\^~\\|]+", RE_GPT2, "\\p{N}+", "[0-9][0-9][0-9]"},
     false, false},
    {"gpt-2|mpt|olmo|jais|phi-2|jina-es|jina-de|jina-v2-es|jina-v2-de|roberta-bpe", {RE_GPT2}, false, false},
    {"starcoder|refact|command-r|smollm|codeshell|exaone|minerva-7b", {"\\p{N}", RE_GPT2}, false, false},
    {"falcon", {"[\\p{P}\\$\\+<=>\\^~\\|`]+", RE_GPT2, "[0-9][0-9][0-9]"}, false, false},
    {"deepseek-llm",
     {"[\\r\\n]", RE_DS_LLM_LETTERS, RE_DS_LLM_PUNCT, "\\s+$", RE_CJK, "\\p{N}+"},
     false, true},
    {"deepseek-coder", {"[\\r\\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", RE_CJK, "\\p{N}"}, false, true},
    {"deepseek-v3",
     {"\\p{N}{1,3}", "[\\x{4e00}-\\x{9fa5}\\x{3040}-\\x{309f}\\x{30a0}-\\x{30ff}]+",
      "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\\r\\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+|"
      " ?[\\p{P}\\p{S}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
     false, true},
    {"llama3|llama-v3|llama-bpe|falcon3|pixtral", {RE_LLAMA3}, true, true},
    {"dbrx|smaug-bpe", {RE_LLAMA3}, false, false},
    {"qwen2|deepseek-r1-qwen|stablelm2|megrez", {RE_QWEN2}, false, false},
    {"poro-chat|bloom|gpt3-finnish", {RE_PORO}, false, false},
    {"viking", {RE_PORO, "\\p{N}"}, false, false},
};

static bool name_in(const char *names, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = names;;) {
        const char *e = strchr(p, '|');
        size_t k = e ? (size_t)(e - p) : strlen(p);
        if (k == n && memcmp(p, name, n) == 0)
            return true;
        if (!e)
            return false;
        p = e + 1;
    }
}

/* ---- GPT-2 byte <-> unicode table ----
 * Printable bytes 0x21-0x7e, 0xa1-0xac, 0xae-0xff map to the same code
 * point; the other 68 bytes map, in byte order, to U+0100.. U+0143. */
static uint32_t cp_of_byte(unsigned b)
{
    if ((b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae))
        return b;
    if (b <= 0x20)
        return 0x100 + b;
    if (b >= 0x7f && b <= 0xa0)
        return 0x100 + 33 + (b - 0x7f);
    return 0x100 + 67; /* 0xad */
}

static int byte_of_cp(uint32_t cp)
{
    if ((cp >= 0x21 && cp <= 0x7e) || (cp >= 0xa1 && cp <= 0xac) || (cp >= 0xae && cp <= 0xff))
        return (int)cp;
    if (cp >= 0x100 && cp < 0x100 + 68) {
        uint32_t k = cp - 0x100;
        if (k < 33)
            return (int)k;
        if (k < 67)
            return (int)(0x7f + k - 33);
        return 0xad;
    }
    return -1;
}

size_t bpe_decode_text(const char *s, size_t n, char *buf, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        size_t cl = tok_utf8_len(c);
        if (cl > n - i)
            cl = n - i;
        int b = -1;
        if (cl == 1)
            b = byte_of_cp(c);
        else if (cl == 2 && ((unsigned char)s[i + 1] & 0xc0) == 0x80)
            b = byte_of_cp(((uint32_t)(c & 0x1f) << 6) | ((unsigned char)s[i + 1] & 0x3f));
        if (b >= 0) {
            if (o < cap)
                buf[o] = (char)b;
            o++;
        } else {
            for (size_t k = 0; k < cl; k++, o++)
                if (o < cap)
                    buf[o] = s[i + k];
        }
        i += cl;
    }
    return o;
}

/* ---- state ---- */

struct bpe_vocab {
    const tok_map *map;
    const gguf_str *merges; /* rank = index */
    uint32_t *split;        /* byte position of the separating space */
    int32_t *slot;          /* merge rank or -1 */
    uint64_t mask;
    pcre2_code *re[MAX_RE];
    int n_re;
    bool ignore_merges, add_bos;
    int32_t unk;
};

static uint64_t mix(uint64_t h)
{
    h ^= h >> 31;
    h *= 0x7fb5d329728ea185ULL;
    h ^= h >> 27;
    return h;
}

static int32_t merge_find(const bpe_vocab *b, const char *l, size_t ll, const char *r, size_t rl)
{
    uint64_t h = tok_hash(TOK_HASH_INIT, l, ll);
    h = tok_hash(h, " ", 1);
    h = mix(tok_hash(h, r, rl));
    for (uint64_t i = h & b->mask;; i = (i + 1) & b->mask) {
        int32_t k = b->slot[i];
        if (k < 0)
            return -1;
        const gguf_str *m = &b->merges[k];
        if (b->split[k] == ll && m->len == ll + 1 + rl && memcmp(m->ptr, l, ll) == 0 &&
            memcmp(m->ptr + ll + 1, r, rl) == 0)
            return k;
    }
}

int bpe_create(bpe_vocab **out, const tok_map *map, const gguf_value *merges, const char *pre, int32_t unk)
{
    int rc = 0;
    *out = NULL;
    const pre_set *ps = NULL;
    if (!pre) /* no tokenizer.ggml.pre: HF's ByteLevel default (GPT-2 regex), as gpt-neox uses */
        pre = "gpt-2";
    for (size_t i = 0; i < sizeof pre_sets / sizeof pre_sets[0]; i++)
        if (name_in(pre_sets[i].names, pre))
            ps = &pre_sets[i];
    if (!ps)
        return err_set(SOV_EUNSUPPORTED, "vocab: BPE pre-tokenizer '%s' (tokenizer.ggml.pre) is not supported", pre);
    if (merges->v.arr.n > INT32_MAX)
        return err_set(SOV_EFORMAT, "vocab: %llu merges", (unsigned long long)merges->v.arr.n);

    bpe_vocab *b = calloc(1, sizeof *b);
    if (!b)
        return err_set(SOV_ENOMEM, "vocab: out of memory");
    b->map = map;
    b->unk = unk;
    b->ignore_merges = ps->ignore_merges;
    b->add_bos = ps->add_bos;
    b->merges = merges->v.arr.strs;
    uint32_t nm = (uint32_t)merges->v.arr.n;
    uint64_t cap = 16;
    while (cap < (uint64_t)nm * 2)
        cap <<= 1;
    b->mask = cap - 1;
    b->slot = malloc(cap * sizeof *b->slot);
    b->split = malloc((nm ? nm : 1) * sizeof *b->split);
    if (!b->slot || !b->split) {
        rc = err_set(SOV_ENOMEM, "vocab: out of memory for %u merges", nm);
        goto fail;
    }
    memset(b->slot, 0xff, cap * sizeof *b->slot);
    for (uint32_t k = 0; k < nm; k++) {
        const gguf_str *m = &b->merges[k];
        const char *sp = m->len > 1 ? memchr(m->ptr + 1, ' ', m->len - 1) : NULL;
        if (!sp || m->len > UINT32_MAX) {
            rc = err_set(SOV_EFORMAT, "vocab: merge %u is not of the form 'left right'", k);
            goto fail;
        }
        b->split[k] = (uint32_t)(sp - m->ptr);
        uint64_t i = mix(tok_hash(TOK_HASH_INIT, m->ptr, m->len)) & b->mask;
        for (;; i = (i + 1) & b->mask) {
            int32_t o = b->slot[i];
            if (o < 0) {
                b->slot[i] = (int32_t)k;
                break;
            }
            if (b->merges[o].len == m->len && b->split[o] == b->split[k] &&
                memcmp(b->merges[o].ptr, m->ptr, m->len) == 0)
                break; /* duplicate: the first (lowest rank) stays */
        }
    }
    for (int i = 0; i < MAX_RE && ps->re[i]; i++) {
        int ec;
        PCRE2_SIZE eo;
        b->re[i] = pcre2_compile((PCRE2_SPTR)ps->re[i], PCRE2_ZERO_TERMINATED,
                                 PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF | PCRE2_DOLLAR_ENDONLY, &ec, &eo,
                                 NULL);
        if (!b->re[i]) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(ec, msg, sizeof msg);
            rc = err_set(SOV_EUNSUPPORTED, "vocab: pre-tokenizer '%s' regex %d does not compile at %zu: %s", pre, i,
                         (size_t)eo, (const char *)msg);
            goto fail;
        }
        pcre2_jit_compile(b->re[i], PCRE2_JIT_COMPLETE); /* optional speed-up; interpreter otherwise */
        b->n_re = i + 1;
    }
    *out = b;
    return 0;
fail:
    bpe_destroy(b);
    return rc;
}

void bpe_destroy(bpe_vocab *b)
{
    if (!b)
        return;
    for (int i = 0; i < b->n_re; i++)
        pcre2_code_free(b->re[i]);
    free(b->slot);
    free(b->split);
    free(b);
}

bool bpe_default_add_bos(const bpe_vocab *b) { return b->add_bos; }

/* ---- pre-tokenization ---- */

typedef struct span {
    size_t off, len;
} span;

typedef struct spans {
    span *s;
    size_t n, cap;
} spans;

static int spans_push(spans *a, size_t off, size_t len)
{
    if (a->n == a->cap) {
        size_t nc = a->cap ? a->cap * 2 : 64;
        span *ns = realloc(a->s, nc * sizeof *ns);
        if (!ns)
            return err_set(SOV_ENOMEM, "vocab: out of memory for pre-tokenizer pieces");
        a->s = ns;
        a->cap = nc;
    }
    a->s[a->n++] = (span){off, len};
    return 0;
}

/* Refines *cur with regex re: in every piece, matches and the gaps between
 * them become pieces. */
static int split_re(const pcre2_code *re, pcre2_match_data *md, const char *text, spans *cur, spans *nxt)
{
    int rc;
    nxt->n = 0;
    for (size_t i = 0; i < cur->n; i++) {
        const char *sub = text + cur->s[i].off;
        size_t len = cur->s[i].len, base = cur->s[i].off, pos = 0, last = 0;
        while (pos < len) {
            int r = pcre2_match(re, (PCRE2_SPTR)sub, len, pos, 0, md, NULL);
            if (r == PCRE2_ERROR_NOMATCH)
                break;
            if (r < 0) {
                PCRE2_UCHAR msg[160];
                pcre2_get_error_message(r, msg, sizeof msg);
                return err_set(SOV_EFORMAT, "vocab: pre-tokenizer regex failed: %s", (const char *)msg);
            }
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            size_t ms = ov[0], me = ov[1];
            if (me <= ms) { /* empty match: step over one character */
                pos = ms + tok_utf8_len((unsigned char)sub[ms]);
                continue;
            }
            if (ms > last && (rc = spans_push(nxt, base + last, ms - last)) < 0)
                return rc;
            if ((rc = spans_push(nxt, base + ms, me - ms)) < 0)
                return rc;
            last = pos = me;
        }
        if (last < len && (rc = spans_push(nxt, base + last, len - last)) < 0)
            return rc;
    }
    spans t = *cur;
    *cur = *nxt;
    *nxt = t;
    return 0;
}

/* ---- merging ---- */

typedef struct sym {
    int32_t prev, next;
    uint32_t start, len;
} sym;

typedef struct work {
    char *buf; /* byte-level text of the current word */
    size_t buf_cap;
    sym *sy;
    size_t sy_cap;
    tok_heap h;
} work;

static int try_add(const bpe_vocab *b, work *w, int32_t l, int32_t r)
{
    if (l < 0 || r < 0)
        return 0;
    const sym *a = &w->sy[l], *c = &w->sy[r];
    int32_t rank = merge_find(b, w->buf + a->start, a->len, w->buf + c->start, c->len);
    if (rank < 0)
        return 0;
    tok_pair g = {(double)rank, l, r, (size_t)a->len + c->len};
    return tok_heap_push(&w->h, g);
}

static int push_piece(const bpe_vocab *b, const char *p, size_t n, tok_ids *out)
{
    int32_t id = tok_map_find(b->map, p, n);
    if (id >= 0)
        return tok_ids_push(out, id);
    /* not a token: fall back to its characters, then unk */
    for (size_t i = 0; i < n;) {
        size_t cl = tok_utf8_len((unsigned char)p[i]);
        if (cl > n - i)
            cl = n - i;
        id = tok_map_find(b->map, p + i, cl);
        if (id < 0)
            id = b->unk;
        if (id < 0)
            return err_set(SOV_EFORMAT, "vocab: text piece '%.*s' has no token and there is no unknown token",
                           (int)n, p);
        int rc = tok_ids_push(out, id);
        if (rc < 0)
            return rc;
        i += cl;
    }
    return 0;
}

static int bpe_word(const bpe_vocab *b, work *w, const char *text, size_t len, tok_ids *out)
{
    int rc;
    if (len > UINT32_MAX / 2)
        return err_set(SOV_EFORMAT, "vocab: pre-tokenized piece of %zu bytes is too long", len);
    if (w->buf_cap < len * 2) {
        char *nb = realloc(w->buf, len * 2);
        if (!nb)
            return err_set(SOV_ENOMEM, "vocab: out of memory");
        w->buf = nb;
        w->buf_cap = len * 2;
    }
    if (w->sy_cap < len) {
        sym *ns = realloc(w->sy, len * sizeof *ns);
        if (!ns)
            return err_set(SOV_ENOMEM, "vocab: out of memory");
        w->sy = ns;
        w->sy_cap = len;
    }
    size_t n = 0;
    int32_t ns = 0;
    for (size_t i = 0; i < len; i++) {
        uint32_t cp = cp_of_byte((unsigned char)text[i]);
        sym *s = &w->sy[ns];
        s->prev = ns - 1;
        s->next = ns + 1;
        s->start = (uint32_t)n;
        if (cp < 0x80) {
            w->buf[n++] = (char)cp;
        } else {
            w->buf[n++] = (char)(0xc0 | (cp >> 6));
            w->buf[n++] = (char)(0x80 | (cp & 0x3f));
        }
        s->len = (uint32_t)n - s->start;
        ns++;
    }
    w->sy[ns - 1].next = -1;
    if (b->ignore_merges) {
        int32_t id = tok_map_find(b->map, w->buf, n);
        if (id >= 0)
            return tok_ids_push(out, id);
    }
    w->h.n = 0;
    for (int32_t i = 1; i < ns; i++)
        if ((rc = try_add(b, w, i - 1, i)) < 0)
            return rc;
    while (w->h.n > 0) {
        tok_pair g = tok_heap_pop(&w->h);
        sym *l = &w->sy[g.left], *r = &w->sy[g.right];
        if (l->len == 0 || r->len == 0 || l->len + r->len != g.size)
            continue;
        l->len += r->len;
        r->len = 0;
        l->next = r->next;
        if (r->next >= 0)
            w->sy[r->next].prev = g.left;
        if ((rc = try_add(b, w, l->prev, g.left)) < 0 || (rc = try_add(b, w, g.left, l->next)) < 0)
            return rc;
    }
    for (int32_t i = 0; i >= 0; i = w->sy[i].next)
        if ((rc = push_piece(b, w->buf + w->sy[i].start, w->sy[i].len, out)) < 0)
            return rc;
    return 0;
}

int bpe_encode(const bpe_vocab *b, const char *text, size_t len, tok_ids *out)
{
    int rc = 0;
    spans cur = {0}, nxt = {0};
    work w = {0};
    pcre2_match_data *md = NULL;
    if (len == 0)
        return 0;
    md = pcre2_match_data_create(1, NULL);
    if (!md) {
        rc = err_set(SOV_ENOMEM, "vocab: out of memory for regex match data");
        goto fail;
    }
    if ((rc = spans_push(&cur, 0, len)) < 0)
        goto fail;
    for (int i = 0; i < b->n_re; i++)
        if ((rc = split_re(b->re[i], md, text, &cur, &nxt)) < 0)
            goto fail;
    for (size_t i = 0; i < cur.n; i++)
        if ((rc = bpe_word(b, &w, text + cur.s[i].off, cur.s[i].len, out)) < 0)
            goto fail;
    rc = 0;
fail:
    pcre2_match_data_free(md);
    free(cur.s);
    free(nxt.s);
    free(w.buf);
    free(w.sy);
    tok_heap_free(&w.h);
    return rc;
}
