/* test_gguf_mutate: robustness of the GGUF / model / tokenizer loaders.
 *
 * Shared GGUF files are walked with an independent structure walker (not
 * the parser under test), then corrupted in thousands of deterministic ways:
 * truncation, bit/byte flips aimed at the header, the metadata (KV) region
 * and the tensor-info region, absurd u64 counts/lengths/dims/offsets,
 * invalid or other type fields, general.alignment values, duplicate names,
 * dropped / reordered / added records, hyperparameter values, token texts,
 * types, scores and merges, and tensor offsets at the data-section edges.
 *
 * Every variant is copied into a malloc'd buffer of exactly its size (so
 * ASan sees any over-read) and pushed through gguf_open_mem ->
 * model_from_gguf (-> forward_new + forward_decode) or vocab_load (->
 * vocab_encode + vocab_piece). Each step must succeed or fail with a
 * negative code and a non-empty message; LeakSanitizer checks that nothing
 * leaks. Where the outcome is known (a truncation before the last needed
 * byte, a duplicate name, an offset past the end, a reordering that keeps
 * the file valid, ...) the test also checks that it is the right one.
 *
 * SOV_MUT_TRACE=1 prints every variant before it runs; on a crash the
 * variant being run is printed. */
#include "t.h"

#include "base/err.h"
#include "base/file.h"
#include "engine/forward.h"
#include "format/gguf.h"
#include "engine/model.h"
#include "tok/vocab.h"

#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define MUT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MUT_ASAN 1
#endif
#endif
#ifdef MUT_ASAN
#include <sanitizer/common_interface_defs.h>
#endif

/* ---------------------------------------------------------------- PRNG */

static uint64_t rng_state;

static uint64_t rnd(void) /* splitmix64 */
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t below(uint64_t n) { return n ? rnd() % n : 0; }

static void seed_from(const char *s)
{
    uint64_t h = 0x243f6a8885a308d3ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    rng_state = h;
}

/* ---------------------------------------------------- little-endian I/O */

static uint32_t ld32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t ld64(const uint8_t *p) { return ld32(p) | (uint64_t)ld32(p + 4) << 32; }
static void st32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static void st64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i)); }

/* ------------------------------------------------- independent walker */

/* Classes of fields whose offsets the walker records. */
enum fclass {
    C_NT, C_NKV, C_KEYLEN, C_STRLEN, C_ACOUNT, C_ASTRLEN, C_NAMELEN, C_DIM, C_TOFF, /* u64 */
    C_VERSION, C_VTYPE, C_ETYPE, C_NDIMS, C_TTYPE,                                 /* u32 */
    C_N
};
static const char *const class_name[C_N] = {"n_tensors", "n_kv", "key length", "string length", "array count",
                                            "array string length", "tensor name length", "dimension",
                                            "tensor offset", "version", "value type", "array element type",
                                            "n_dims", "tensor type"};
static int class_width(int c) { return c < C_VERSION ? 8 : 4; }

typedef struct vec64 {
    uint64_t *v;
    size_t n, cap;
} vec64;

static void push64(vec64 *a, uint64_t x)
{
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 64;
        a->v = realloc(a->v, a->cap * sizeof *a->v);
        if (!a->v)
            abort();
    }
    a->v[a->n++] = x;
}

typedef struct kvrec {
    uint64_t start, end; /* the whole record */
    uint64_t key_len;    /* key bytes at start + 8 */
    uint64_t type_off;   /* u32 value type */
    uint32_t type;
    uint64_t val_off;    /* value (arrays: the 12-byte header) */
    uint32_t etype;      /* arrays */
    uint64_t n;
    size_t first_elem;   /* string arrays: index into layout.elems */
} kvrec;

typedef struct tirec {
    uint64_t start, end, name_len, ndims_off, type_off, offset_off;
    uint32_t ndims, type;
    uint64_t offset, nbytes;
} tirec;

typedef struct layout {
    char name[64];
    const uint8_t *p;
    uint64_t size;
    uint32_t version;
    uint64_t n_tensors, n_kv;
    kvrec *kv;
    tirec *ti;
    vec64 elems;          /* offsets of the length fields of string-array elements */
    vec64 fields[C_N];
    uint64_t kv_end, ti_end, align, data_off, data_size, need_end;
    int kv_align;         /* index of general.alignment, -1 if absent */
    bool orig_model, orig_vocab;
} layout;

typedef struct walker {
    const uint8_t *p;
    uint64_t n, pos;
    bool bad;
} walker;

static uint64_t w64(walker *w)
{
    if (w->bad || w->n - w->pos < 8) {
        w->bad = true;
        return 0;
    }
    w->pos += 8;
    return ld64(w->p + w->pos - 8);
}

static uint32_t w32(walker *w)
{
    if (w->bad || w->n - w->pos < 4) {
        w->bad = true;
        return 0;
    }
    w->pos += 4;
    return ld32(w->p + w->pos - 4);
}

static void wskip(walker *w, uint64_t k)
{
    if (w->bad || w->n - w->pos < k)
        w->bad = true;
    else
        w->pos += k;
}

static uint64_t scalar_size(uint32_t t)
{
    static const uint8_t sz[13] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    return t < 13 ? sz[t] : 0;
}

static void walk_value(layout *L, walker *w, uint32_t type, int depth)
{
    if (w->bad || depth > 8) {
        w->bad = true;
        return;
    }
    if (type == GGUF_STRING) {
        push64(&L->fields[C_STRLEN], w->pos);
        wskip(w, w64(w));
    } else if (type == GGUF_ARRAY) {
        push64(&L->fields[C_ETYPE], w->pos);
        uint32_t et = w32(w);
        push64(&L->fields[C_ACOUNT], w->pos);
        uint64_t n = w64(w);
        if (et == GGUF_STRING || et == GGUF_ARRAY) {
            for (uint64_t i = 0; i < n && !w->bad; i++) {
                if (et == GGUF_STRING) {
                    push64(&L->elems, w->pos);
                    push64(&L->fields[C_ASTRLEN], w->pos);
                    wskip(w, w64(w));
                } else {
                    walk_value(L, w, GGUF_ARRAY, depth + 1);
                }
            }
        } else if (scalar_size(et) && n <= w->n / scalar_size(et)) {
            wskip(w, n * scalar_size(et));
        } else {
            w->bad = true;
        }
    } else if (scalar_size(type)) {
        wskip(w, scalar_size(type));
    } else {
        w->bad = true;
    }
}

static bool key_is(const layout *L, uint64_t i, const char *s)
{
    size_t n = strlen(s);
    return L->kv[i].key_len == n && memcmp(L->p + L->kv[i].start + 8, s, n) == 0;
}

static int64_t find_key(const layout *L, const char *s)
{
    for (uint64_t i = 0; i < L->n_kv; i++)
        if (key_is(L, i, s))
            return (int64_t)i;
    return -1;
}

/* Walks the original file; returns false if it is not the GGUF we expect. */
static bool walk(layout *L)
{
    walker w = {L->p, L->size, 0, false};
    if (L->size < 24 || memcmp(L->p, "GGUF", 4) != 0)
        return false;
    w.pos = 4;
    push64(&L->fields[C_VERSION], 4);
    L->version = w32(&w);
    push64(&L->fields[C_NT], 8);
    L->n_tensors = w64(&w);
    push64(&L->fields[C_NKV], 16);
    L->n_kv = w64(&w);
    if (L->n_kv > L->size / 13 || L->n_tensors > L->size / 32)
        return false;
    L->kv = calloc(L->n_kv + 1, sizeof *L->kv);
    L->ti = calloc(L->n_tensors + 1, sizeof *L->ti);
    L->kv_align = -1;
    L->align = 32;
    for (uint64_t i = 0; i < L->n_kv && !w.bad; i++) {
        kvrec *k = &L->kv[i];
        k->start = w.pos;
        push64(&L->fields[C_KEYLEN], w.pos);
        k->key_len = w64(&w);
        wskip(&w, k->key_len);
        k->type_off = w.pos;
        push64(&L->fields[C_VTYPE], w.pos);
        k->type = w32(&w);
        k->val_off = w.pos;
        k->first_elem = L->elems.n;
        if (k->type == GGUF_ARRAY && !w.bad && w.n - w.pos >= 12) {
            k->etype = ld32(L->p + w.pos);
            k->n = ld64(L->p + w.pos + 4);
        }
        walk_value(L, &w, k->type, 0);
        k->end = w.pos;
        if (!w.bad && key_is(L, i, "general.alignment")) {
            L->kv_align = (int)i;
            L->align = k->type == GGUF_UINT64 ? ld64(L->p + k->val_off) : ld32(L->p + k->val_off);
        }
    }
    L->kv_end = w.pos;
    for (uint64_t i = 0; i < L->n_tensors && !w.bad; i++) {
        tirec *t = &L->ti[i];
        t->start = w.pos;
        push64(&L->fields[C_NAMELEN], w.pos);
        t->name_len = w64(&w);
        wskip(&w, t->name_len);
        t->ndims_off = w.pos;
        push64(&L->fields[C_NDIMS], w.pos);
        t->ndims = w32(&w);
        if (t->ndims > 4)
            w.bad = true;
        for (uint32_t d = 0; d < t->ndims && !w.bad; d++) {
            push64(&L->fields[C_DIM], w.pos);
            w64(&w);
        }
        t->type_off = w.pos;
        push64(&L->fields[C_TTYPE], w.pos);
        t->type = w32(&w);
        t->offset_off = w.pos;
        push64(&L->fields[C_TOFF], w.pos);
        t->offset = w64(&w);
        t->end = w.pos;
    }
    L->ti_end = w.pos;
    L->data_off = (L->ti_end + L->align - 1) / L->align * L->align;
    L->data_size = L->data_off <= L->size ? L->size - L->data_off : 0;
    return !w.bad && L->align && (L->align & (L->align - 1)) == 0;
}

/* ------------------------------------------------------ image builder */

typedef struct buf {
    uint8_t *p;
    size_t n, cap;
} buf;

static void put(buf *b, const void *s, size_t n)
{
    if (b->n + n > b->cap) {
        size_t c = b->cap ? b->cap : 4096;
        while (c < b->n + n)
            c *= 2;
        b->p = realloc(b->p, c);
        if (!b->p)
            abort();
        b->cap = c;
    }
    if (n)
        memcpy(b->p + b->n, s, n);
    b->n += n;
}

static void put32(buf *b, uint32_t v) { uint8_t t[4]; st32(t, v); put(b, t, 4); }
static void put64(buf *b, uint64_t v) { uint8_t t[8]; st64(t, v); put(b, t, 8); }
static void putstr(buf *b, const void *s, uint64_t n) { put64(b, n); put(b, s, (size_t)n); }

/* A KV record with key `key`, value type vt and raw value bytes. */
static void mk_kv(buf *b, const char *key, uint32_t vt, const void *val, size_t vlen)
{
    putstr(b, key, strlen(key));
    put32(b, vt);
    put(b, val, vlen);
}

/* Rebuilds a whole file from the original's records. The callbacks are
 * expressed as an edit list applied while copying. */
enum edit_op {
    E_NONE,
    E_DROP_KV,    /* i */
    E_DUP_KV,     /* append a copy of kv i */
    E_RENAME_KV,  /* kv i gets kv j's key */
    E_REPLACE_KV, /* kv i replaced by raw record */
    E_ADD_KV,     /* raw record appended */
    E_SWAP_KV,    /* kv i <-> kv j */
    E_REVERSE_KV,
    E_DROP_TI,
    E_DUP_TI,
    E_RENAME_TI,
    E_ADD_TI,     /* raw tensor info appended */
    E_REVERSE_TI,
    E_SET_STR,    /* string value of kv i := raw */
};

typedef struct edit {
    int op;
    uint64_t i, j;
    const uint8_t *raw;
    size_t raw_len;
    uint64_t pad_align; /* alignment of the data section in the new image (0: the original's) */
} edit;

static void put_kv(buf *b, const layout *L, uint64_t i) { put(b, L->p + L->kv[i].start, L->kv[i].end - L->kv[i].start); }
static void put_ti(buf *b, const layout *L, uint64_t i) { put(b, L->p + L->ti[i].start, L->ti[i].end - L->ti[i].start); }

static void build(buf *b, const layout *L, const edit *e)
{
    b->n = 0;
    uint64_t nkv = L->n_kv, nti = L->n_tensors;
    if (e->op == E_DROP_KV) nkv--;
    if (e->op == E_DUP_KV || e->op == E_ADD_KV) nkv++;
    if (e->op == E_DROP_TI) nti--;
    if (e->op == E_DUP_TI || e->op == E_ADD_TI) nti++;
    put(b, L->p, 8); /* magic, version */
    put64(b, nti);
    put64(b, nkv);
    for (uint64_t k = 0; k < L->n_kv; k++) {
        uint64_t i = k;
        if (e->op == E_REVERSE_KV)
            i = L->n_kv - 1 - k;
        else if (e->op == E_SWAP_KV && k == e->i)
            i = e->j;
        else if (e->op == E_SWAP_KV && k == e->j)
            i = e->i;
        if (e->op == E_DROP_KV && i == e->i)
            continue;
        if (e->op == E_REPLACE_KV && i == e->i) {
            put(b, e->raw, e->raw_len);
        } else if (e->op == E_RENAME_KV && i == e->i) {
            putstr(b, L->p + L->kv[e->j].start + 8, L->kv[e->j].key_len);
            put(b, L->p + L->kv[i].type_off, L->kv[i].end - L->kv[i].type_off);
        } else if (e->op == E_SET_STR && i == e->i) {
            put(b, L->p + L->kv[i].start, L->kv[i].type_off + 4 - L->kv[i].start);
            putstr(b, e->raw, e->raw_len);
        } else {
            put_kv(b, L, i);
        }
    }
    if (e->op == E_DUP_KV)
        put_kv(b, L, e->i);
    if (e->op == E_ADD_KV)
        put(b, e->raw, e->raw_len);
    for (uint64_t k = 0; k < L->n_tensors; k++) {
        uint64_t i = e->op == E_REVERSE_TI ? L->n_tensors - 1 - k : k;
        if (e->op == E_DROP_TI && i == e->i)
            continue;
        if (e->op == E_RENAME_TI && i == e->i) {
            putstr(b, L->p + L->ti[e->j].start + 8, L->ti[e->j].name_len);
            put(b, L->p + L->ti[i].ndims_off, L->ti[i].end - L->ti[i].ndims_off);
        } else {
            put_ti(b, L, i);
        }
    }
    if (e->op == E_DUP_TI)
        put_ti(b, L, e->i);
    if (e->op == E_ADD_TI)
        put(b, e->raw, e->raw_len);
    uint64_t a = e->pad_align ? e->pad_align : L->align;
    static const uint8_t zero[64];
    while (b->n % a)
        put(b, zero, a - b->n % a < sizeof zero ? a - b->n % a : sizeof zero);
    if (L->data_off < L->size)
        put(b, L->p + L->data_off, L->size - L->data_off);
}

/* ------------------------------------------------------ running a variant */

enum expect {
    EX_ANY,    /* a clean error or a valid load */
    EX_REJECT, /* gguf_open_mem must fail */
    EX_GGUF,   /* gguf_open_mem must succeed */
    EX_SAME,   /* parses, and loads as model / tokenizer exactly like the original */
};

enum kind {
    K_TRUNC, K_FLIP_HDR, K_FLIP_KV, K_FLIP_TI, K_ABSURD, K_TYPES, K_ALIGN, K_DUPS, K_RECORDS, K_HPARAMS,
    K_TOKENS, K_OFFSETS, K_N
};
static const char *const kind_name[K_N] = {
    "truncation", "header flips", "KV-region flips", "tensor-info flips", "absurd u64 fields", "type fields",
    "general.alignment", "duplicate names", "dropped/reordered/added records", "hyperparameter values",
    "token texts/types/scores/merges", "tensor offsets at data edges"};

typedef struct kstat {
    int n, rejected, gguf_only, model, vocab_only, bad, wrong;
    char first_bad[3][400];
    int n_bad_kept;
    char sample[2][200];
    int n_sample;
} kstat;

static kstat kstats[K_N];
static int n_variants;
static char cur_desc[512];
static bool trace;

typedef struct result {
    bool gguf_ok, model_ok, vocab_ok;
    char why[300]; /* non-empty: unclean */
} result;

static void why(result *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void why(result *r, const char *fmt, ...)
{
    if (r->why[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->why, sizeof r->why, fmt, ap);
    va_end(ap);
}

static void err_reset(void) { err_set(SOV_OK, "%s", ""); }

/* A failure must be a negative code with a message. */
static bool clean_fail(result *r, const char *what, int rc)
{
    if (rc >= 0) {
        why(r, "%s returned %d (expected 0 or a negative code)", what, rc);
        return false;
    }
    if (!err_msg()[0]) {
        why(r, "%s failed with %d but left no message", what, rc);
        return false;
    }
    return true;
}

static const char *const texts[] = {
    "Hello world! It's 2024, na\xc3\xafve caf\xc3\xa9 \xe6\x9d\xb1\xe4\xba\xac <s></s><|endoftext|>\n\t  end",
    "\xe2\x96\x81\xe2\x96\x81 <0x41> \xff\xfe\xc3 bad utf8 \xed\xa0\x80 \xf4\x90\x80\x80 12345678 ...!!",
    "",
};

static void use_vocab(const vocab *v, result *r)
{
    int32_t n = vocab_n_tokens(v);
    if (n <= 0) {
        why(r, "vocab has %d tokens", n);
        return;
    }
    int32_t bos = vocab_bos(v), eos = vocab_eos(v);
    if (bos < -1 || bos >= n || eos < -1 || eos >= n) {
        why(r, "special ids out of range: bos %d eos %d n %d", bos, eos, n);
        return;
    }
    (void)vocab_model_name(v);
    if (!vocab_pre_name(v))
        why(r, "vocab_pre_name is NULL");
    for (size_t t = 0; t < sizeof texts / sizeof texts[0]; t++) {
        for (int mode = 0; mode < 2; mode++) {
            int32_t *ids = NULL;
            size_t nid = 0;
            err_reset();
            int rc = vocab_encode(v, texts[t], strlen(texts[t]), mode == 0, mode == 0, &ids, &nid);
            if (rc != 0) {
                clean_fail(r, "vocab_encode", rc);
                free(ids);
                continue;
            }
            char small[8];
            for (size_t i = 0; i < nid; i++) {
                if (ids[i] < 0 || ids[i] >= n) {
                    why(r, "vocab_encode produced id %d outside 0..%d", ids[i], n - 1);
                    break;
                }
                int32_t prev = i ? ids[i - 1] : -1;
                int k = vocab_piece(v, prev, ids[i], small, sizeof small);
                if (k < 0) {
                    why(r, "vocab_piece(%d) failed: %s", ids[i], err_msg());
                    break;
                }
                if ((size_t)k > sizeof small) {
                    char *big = malloc((size_t)k);
                    int k2 = big ? vocab_piece(v, prev, ids[i], big, (size_t)k) : k;
                    if (k2 != k)
                        why(r, "vocab_piece(%d) gave %d then %d bytes", ids[i], k, k2);
                    free(big);
                }
                (void)vocab_is_eog(v, ids[i]);
            }
            free(ids);
        }
    }
    /* pieces of a few ids, including the edges */
    int32_t probe[] = {0, n - 1, n / 2, bos, eos, (int32_t)below((uint64_t)n), (int32_t)below((uint64_t)n)};
    char pb[64];
    for (size_t i = 0; i < sizeof probe / sizeof probe[0]; i++) {
        if (probe[i] < 0)
            continue;
        size_t len = 0;
        const char *s = vocab_token_text(v, probe[i], &len);
        if (!s && len)
            why(r, "vocab_token_text(%d) NULL with length %zu", probe[i], len);
        int k = vocab_piece(v, -1, probe[i], pb, sizeof pb);
        if (k < 0)
            why(r, "vocab_piece(%d) failed: %s", probe[i], err_msg());
        (void)vocab_is_eog(v, probe[i]);
    }
    err_reset();
    int k = vocab_piece(v, -1, n, pb, sizeof pb);
    if (k >= 0 || !err_msg()[0])
        why(r, "vocab_piece(n_vocab=%d) returned %d (expected an error)", n, k);
}

static void use_model(const model *m, result *r)
{
    forward *f = NULL;
    err_reset();
    int rc = forward_new(&f, m, 8, 1, NULL);
    if (rc != 0) {
        why(r, "forward_new failed on a validated model: %d %s", rc, err_msg());
        return;
    }
    int32_t tok[2] = {0, 0}, pos[2] = {0, 1};
    if (m->vocab && vocab_bos(m->vocab) >= 0)
        tok[0] = vocab_bos(m->vocab);
    tok[1] = m->hp.n_vocab - 1;
    forward_batch b = {.n = 2, .token = tok, .pos = pos};
    err_reset();
    rc = forward_decode(f, &b);
    if (rc != 0)
        why(r, "forward_decode failed on a validated model: %d %s", rc, err_msg());
    else if (!forward_logits(f, 0))
        why(r, "no logits after forward_decode");
    int32_t badtok = m->hp.n_vocab, p2 = 2;
    forward_batch bb = {.n = 1, .token = &badtok, .pos = &p2};
    err_reset();
    rc = forward_decode(f, &bb);
    if (rc >= 0 || !err_msg()[0])
        why(r, "forward_decode accepted token %d (n_vocab %d)", badtok, m->hp.n_vocab);
    (void)model_weight_bytes(m);
    forward_free(f);
}

static void chain(const uint8_t *img, size_t n, bool own, result *r, char *msg, size_t msgcap)
{
    memset(r, 0, sizeof *r);
    msg[0] = 0;
    gguf *g = (gguf *)(uintptr_t)1;
    err_reset();
    int rc = gguf_open_mem(&g, img, n);
    if (rc != 0) {
        if (clean_fail(r, "gguf_open_mem", rc))
            snprintf(msg, msgcap, "%s", err_msg());
        if (g)
            why(r, "gguf_open_mem failed but left *out non-NULL");
        return;
    }
    if (!g) {
        why(r, "gguf_open_mem succeeded with *out NULL");
        return;
    }
    r->gguf_ok = true;
    model *m = (model *)(uintptr_t)1;
    err_reset();
    rc = model_from_gguf(&m, g, own);
    if (rc == 0) {
        r->model_ok = true;
        if (!m) {
            why(r, "model_from_gguf succeeded with *out NULL");
            if (!own)
                gguf_close(g);
            return;
        }
        use_model(m, r);
        if (m->vocab) {
            r->vocab_ok = true;
            use_vocab(m->vocab, r);
        }
        model_free(m);
        if (!own)
            gguf_close(g);
        return;
    }
    if (clean_fail(r, "model_from_gguf", rc))
        snprintf(msg, msgcap, "%s", err_msg());
    if (m)
        why(r, "model_from_gguf failed but left *out non-NULL");
    if (own) { /* the model closed g: parse again for the tokenizer */
        g = NULL;
        if (gguf_open_mem(&g, img, n) != 0) {
            why(r, "the image parsed once and then not: %s", err_msg());
            return;
        }
    }
    vocab *v = (vocab *)(uintptr_t)1;
    err_reset();
    rc = vocab_load(&v, g);
    if (rc == 0) {
        if (!v) {
            why(r, "vocab_load succeeded with *out NULL");
        } else {
            r->vocab_ok = true;
            use_vocab(v, r);
            vocab_free(v);
        }
    } else {
        clean_fail(r, "vocab_load", rc);
        if (v)
            why(r, "vocab_load failed but left *out non-NULL");
    }
    gguf_close(g);
}

static const layout *cur_layout;

/* Copies img[0..n) into an exact-size heap buffer and runs the chain. */
static void variant(int kind, const uint8_t *img, size_t n, int expect, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void variant(int kind, const uint8_t *img, size_t n, int expect, const char *fmt, ...)
{
    const layout *L = cur_layout;
    int len = snprintf(cur_desc, sizeof cur_desc, "%s: %s: ", L->name, kind_name[kind]);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cur_desc + len, sizeof cur_desc - (size_t)len, fmt, ap);
    va_end(ap);
    if (trace) {
        fprintf(stderr, "variant %d: %s\n", n_variants, cur_desc);
        fflush(stderr);
    }
    uint8_t *b = malloc(n ? n : 1);
    if (!b)
        abort();
    if (n)
        memcpy(b, img, n);
    result r;
    char msg[200];
    chain(b, n, (n_variants & 1) != 0, &r, msg, sizeof msg);
    if (n && memcmp(b, img, n) != 0)
        why(&r, "the loaders wrote into the (const) file image");
    free(b);
    n_variants++;

    kstat *k = &kstats[kind];
    k->n++;
    if (!r.gguf_ok)
        k->rejected++;
    else if (r.model_ok)
        k->model++;
    else if (r.vocab_ok)
        k->vocab_only++;
    else
        k->gguf_only++;
    if (!r.why[0]) {
        if (expect == EX_REJECT && r.gguf_ok)
            why(&r, "expected gguf_open_mem to reject it, but it parsed");
        else if ((expect == EX_GGUF || expect == EX_SAME) && !r.gguf_ok)
            why(&r, "expected a valid parse, got: %s", msg);
        else if (expect == EX_SAME && (r.model_ok != L->orig_model || r.vocab_ok != L->orig_vocab))
            why(&r, "expected the original's outcome (model %d, tokenizer %d), got model %d tokenizer %d: %s",
                L->orig_model, L->orig_vocab, r.model_ok, r.vocab_ok, msg);
        if (r.why[0])
            k->wrong++;
    }
    if (r.why[0]) {
        k->bad++;
        if (k->n_bad_kept < 3)
            snprintf(k->first_bad[k->n_bad_kept++], sizeof k->first_bad[0], "[%.220s] %.170s", cur_desc, r.why);
    } else if (msg[0] && k->n_sample < 2 && k->n % 7 == 3) {
        snprintf(k->sample[k->n_sample++], sizeof k->sample[0], "%s", msg);
    }
    cur_desc[0] = 0; /* a sanitizer report from here on (a leak at exit) is not this variant's */
}

/* Crash reporting: name the variant that was running. */
static void print_crash_variant(void)
{
    static const char pre[] = "FAIL crash while running variant: ";
    static const char other[] = "FAIL sanitizer report or crash outside any variant (a leak found at exit? see the "
                                "stack above; SOV_MUT_TRACE=1 lists the variants)\n";
    if (!cur_desc[0]) {
        if (write(2, other, sizeof other - 1) < 0 || write(1, other, sizeof other - 1) < 0)
            return;
        return;
    }
    if (write(2, pre, sizeof pre - 1) < 0 || write(2, cur_desc, strlen(cur_desc)) < 0 || write(2, "\n", 1) < 0)
        return;
    if (write(1, pre, sizeof pre - 1) < 0 || write(1, cur_desc, strlen(cur_desc)) < 0 || write(1, "\n", 1) < 0)
        return;
}

static void on_signal(int sig)
{
    print_crash_variant();
    signal(sig, SIG_DFL);
    raise(sig);
}

/* ------------------------------------------------------ the mutations */

static uint64_t pick_field(const layout *L, int c) { return L->fields[c].v[below(L->fields[c].n)]; }

static void flip_some(uint8_t *w, uint64_t at, uint64_t size)
{
    if (at < size)
        w[at] ^= (uint8_t)(1 + below(255));
}

/* Truncation: every length through the header, a stride through the
 * metadata and tensor infos, every record boundary sampled, the data
 * section sampled. Shorter than the last needed byte must be rejected;
 * from there on the file must load as the original did. */
static void m_trunc(const layout *L)
{
    vec64 cuts = {0};
    for (uint64_t c = 0; c < 64 && c < L->size; c++)
        push64(&cuts, c);
    uint64_t span = L->ti_end > 64 ? L->ti_end - 64 : 0;
    for (int i = 0; i < 70 && span; i++)
        push64(&cuts, 64 + span * (uint64_t)i / 70 + below(span / 70 + 1));
    for (int i = 0; i < 10 && L->n_kv; i++) {
        const kvrec *k = &L->kv[below(L->n_kv)];
        push64(&cuts, k->start - 1);
        push64(&cuts, k->start);
        push64(&cuts, k->type_off + 2);
        push64(&cuts, k->end - 1);
    }
    for (int i = 0; i < 6 && L->n_tensors; i++) {
        const tirec *t = &L->ti[below(L->n_tensors)];
        push64(&cuts, t->start);
        push64(&cuts, t->type_off);
        push64(&cuts, t->end - 1);
    }
    uint64_t edges[] = {L->kv_end - 1, L->kv_end, L->ti_end - 1, L->ti_end, L->data_off - 1, L->data_off,
                        L->need_end - 1, L->need_end, L->size - 1};
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++)
        push64(&cuts, edges[i]);
    for (int i = 0; i < 15 && L->need_end > L->data_off; i++)
        push64(&cuts, L->data_off + below(L->size - L->data_off));
    for (size_t i = 0; i < cuts.n; i++) {
        uint64_t c = cuts.v[i];
        if (c >= L->size)
            continue;
        variant(K_TRUNC, L->p, (size_t)c, c < L->need_end ? EX_REJECT : EX_SAME, "truncated to %llu of %llu bytes",
                (unsigned long long)c, (unsigned long long)L->size);
    }
    free(cuts.v);
}

static void m_flip_hdr(const layout *L, uint8_t *w)
{
    for (int bit = 0; bit < 24 * 8; bit++) {
        w[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        int ex = bit < 32 ? EX_REJECT : EX_ANY; /* magic */
        variant(K_FLIP_HDR, w, L->size, ex, "flip bit %d of byte %d", bit % 8, bit / 8);
        w[bit / 8] = L->p[bit / 8];
    }
    for (int i = 0; i < 20; i++) {
        int nb = 2 + (int)below(3);
        for (int k = 0; k < nb; k++)
            w[4 + below(20)] = (uint8_t)rnd();
        uint64_t nt = ld64(w + 8), nkv = ld64(w + 16);
        int ex = (nt >= L->size || nkv >= L->size) ? EX_REJECT : EX_ANY;
        variant(K_FLIP_HDR, w, L->size, ex, "random bytes in version/counts: v %u nt %llu nkv %llu", ld32(w + 4),
                (unsigned long long)nt, (unsigned long long)nkv);
        memcpy(w, L->p, 24);
    }
}

/* Byte flips in [lo, hi): half aimed at the structural fields of the
 * region (lengths, types, counts, dims, offsets), half anywhere. */
static void m_flip_region(const layout *L, uint8_t *w, int kind, uint64_t lo, uint64_t hi, const int *classes,
                          int n_classes, int count)
{
    if (hi <= lo)
        return;
    for (int i = 0; i < count; i++) {
        uint64_t touched[4];
        int nt = 1 + (i % 2 ? (int)below(4) : 0);
        for (int k = 0; k < nt; k++) {
            uint64_t at;
            int c = classes[below((uint64_t)n_classes)];
            if (i % 4 < 2 && L->fields[c].n)
                at = pick_field(L, c) + below((uint64_t)class_width(c));
            else
                at = lo + below(hi - lo);
            touched[k] = at;
            flip_some(w, at, L->size);
        }
        variant(kind, w, L->size, EX_ANY, "%d byte(s) changed, first at offset %llu (%02x -> %02x)", nt,
                (unsigned long long)touched[0], L->p[touched[0]], w[touched[0]]);
        for (int k = 0; k < nt; k++)
            w[touched[k]] = L->p[touched[k]];
    }
}

/* u64 counts, lengths, dims and offsets set to absurd values. */
static void m_absurd(const layout *L, uint8_t *w)
{
    const uint64_t S = L->size;
    for (int c = C_NT; c <= C_TOFF; c++) {
        if (!L->fields[c].n)
            continue;
        int nf = c == C_NT || c == C_NKV ? 1 : 2;
        for (int f = 0; f < nf; f++) {
            uint64_t at = pick_field(L, c), orig = ld64(L->p + at);
            uint64_t vals[] = {0, 1, 2, 1ull << 31, 0xffffffffull, 1ull << 32, 1ull << 63, UINT64_MAX,
                               S - 1, S, S + 1, orig - 1, orig + 1};
            for (size_t k = 0; k < sizeof vals / sizeof vals[0]; k++) {
                uint64_t v = vals[k];
                int ex = EX_ANY;
                if (c == C_DIM)
                    ex = v >= (1ull << 32) ? EX_REJECT : EX_ANY;
                else if (v >= S)
                    ex = EX_REJECT; /* no count, length or offset can reach past the file */
                if (v == orig)
                    ex = EX_SAME;
                st64(w + at, v);
                variant(K_ABSURD, w, S, ex, "%s at offset %llu: %llu -> %llu", class_name[c], (unsigned long long)at,
                        (unsigned long long)orig, (unsigned long long)v);
                memcpy(w + at, L->p + at, 8);
            }
        }
    }
}

/* Version, value types, array element types, n_dims and tensor types set
 * to other valid and invalid values. */
static void m_types(const layout *L, uint8_t *w)
{
    const uint32_t vals[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 30, 31, 39,
                             64, 255, 0x03000000u, 0x7fffffffu, 0x80000000u, 0xffffffffu};
    const size_t nv = sizeof vals / sizeof vals[0];
    for (int c = C_VERSION; c <= C_TTYPE; c++) {
        if (!L->fields[c].n)
            continue;
        int nf = c == C_VERSION ? 1 : 3;
        for (int f = 0; f < nf; f++) {
            uint64_t at = pick_field(L, c);
            uint32_t orig = ld32(L->p + at);
            for (size_t k = 0; k < nv; k++) {
                uint32_t v = vals[k];
                if (c != C_VERSION && below(3) != 0) /* a third of the values for the other fields */
                    continue;
                int ex = EX_ANY;
                if (c == C_VERSION)
                    ex = v == 2 || v == 3 ? EX_SAME : EX_REJECT;
                else if (c == C_VTYPE || c == C_ETYPE)
                    ex = v > GGUF_FLOAT64 ? EX_REJECT : EX_ANY;
                else if (c == C_NDIMS)
                    ex = v == 0 || v > 4 ? EX_REJECT : EX_ANY;
                else if (c == C_TTYPE)
                    ex = v >= 64 ? EX_REJECT : EX_ANY;
                if (v == orig)
                    ex = EX_SAME;
                st32(w + at, v);
                variant(K_TYPES, w, L->size, ex, "%s at offset %llu: %u -> %u", class_name[c], (unsigned long long)at,
                        orig, v);
                memcpy(w + at, L->p + at, 4);
            }
        }
    }
}

static bool all_offsets_aligned(const layout *L, uint64_t a)
{
    for (uint64_t i = 0; i < L->n_tensors; i++)
        if (L->ti[i].offset % a)
            return false;
    return true;
}

/* general.alignment replaced (or added) with many values and types; the
 * data section is re-padded to the new alignment when it is valid. */
static void m_align(const layout *L, buf *out)
{
    struct { uint32_t type; uint64_t v; } cases[] = {
        {GGUF_UINT32, 1}, {GGUF_UINT32, 2}, {GGUF_UINT32, 8}, {GGUF_UINT32, 16}, {GGUF_UINT32, 32},
        {GGUF_UINT32, 64}, {GGUF_UINT32, 256}, {GGUF_UINT32, 4096}, {GGUF_UINT32, 1u << 20},
        {GGUF_UINT32, 0}, {GGUF_UINT32, 3}, {GGUF_UINT32, 24}, {GGUF_UINT32, 48}, {GGUF_UINT32, 1u << 21},
        {GGUF_UINT32, 0x80000000u}, {GGUF_UINT32, 0xffffffffu},
        {GGUF_UINT64, 32}, {GGUF_UINT64, 0}, {GGUF_UINT64, 1ull << 63}, {GGUF_UINT64, UINT64_MAX},
        {GGUF_INT32, 32}, {GGUF_INT32, (uint32_t)-32}, {GGUF_UINT8, 32}, {GGUF_FLOAT32, 0x42000000u /* 32.0f */},
        {GGUF_STRING, 32}, {GGUF_BOOL, 1}, {GGUF_ARRAY, 32},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t val[64];
        size_t vlen = 0;
        uint32_t t = cases[i].type;
        uint64_t v = cases[i].v;
        if (t == GGUF_UINT32 || t == GGUF_INT32 || t == GGUF_FLOAT32) {
            st32(val, (uint32_t)v);
            vlen = 4;
        } else if (t == GGUF_UINT64) {
            st64(val, v);
            vlen = 8;
        } else if (t == GGUF_UINT8 || t == GGUF_BOOL) {
            val[0] = (uint8_t)v;
            vlen = 1;
        } else if (t == GGUF_STRING) {
            st64(val, 2);
            memcpy(val + 8, "32", 2);
            vlen = 10;
        } else { /* array of one u32 */
            st32(val, GGUF_UINT32);
            st64(val + 4, 1);
            st32(val + 12, (uint32_t)v);
            vlen = 16;
        }
        buf rec = {0};
        mk_kv(&rec, "general.alignment", t, val, vlen);
        bool pow2 = v && (v & (v - 1)) == 0 && v <= (1u << 20);
        int ex = EX_ANY;
        uint64_t pad = 0;
        if (t == GGUF_UINT32) {
            if (pow2) {
                pad = v;
                ex = all_offsets_aligned(L, v) ? EX_SAME : EX_REJECT;
            } else {
                ex = EX_REJECT;
            }
        } else if ((t == GGUF_UINT64 || t == GGUF_INT32) && !pow2) {
            ex = EX_REJECT; /* 0, negative, 2^63, 2^64-1: never an alignment */
        }
        edit e = {.op = L->kv_align >= 0 ? E_REPLACE_KV : E_ADD_KV, .i = (uint64_t)(L->kv_align >= 0 ? L->kv_align : 0),
                  .raw = rec.p, .raw_len = rec.n, .pad_align = pad};
        build(out, L, &e);
        variant(K_ALIGN, out->p, out->n, ex, "general.alignment = %llu as %s (%s)", (unsigned long long)v,
                gguf_vtype_name(t), L->kv_align >= 0 ? "replaced" : "added");
        free(rec.p);
    }
}

static void m_dups(const layout *L, buf *out)
{
    for (int i = 0; i < 4 && L->n_kv >= 2; i++) {
        uint64_t a = below(L->n_kv), b = (a + 1 + below(L->n_kv - 1)) % L->n_kv;
        edit e = {.op = E_RENAME_KV, .i = a, .j = b};
        build(out, L, &e);
        variant(K_DUPS, out->p, out->n, EX_REJECT, "metadata key #%llu renamed to key #%llu's name",
                (unsigned long long)a, (unsigned long long)b);
    }
    for (int i = 0; i < 3 && L->n_kv; i++) {
        edit e = {.op = E_DUP_KV, .i = below(L->n_kv)};
        build(out, L, &e);
        variant(K_DUPS, out->p, out->n, EX_REJECT, "metadata key #%llu appended again", (unsigned long long)e.i);
    }
    for (int i = 0; i < 3 && L->n_tensors >= 2; i++) {
        uint64_t a = below(L->n_tensors), b = (a + 1 + below(L->n_tensors - 1)) % L->n_tensors;
        edit e = {.op = E_RENAME_TI, .i = a, .j = b};
        build(out, L, &e);
        variant(K_DUPS, out->p, out->n, EX_REJECT, "tensor #%llu renamed to tensor #%llu's name",
                (unsigned long long)a, (unsigned long long)b);
    }
    for (int i = 0; i < 3 && L->n_tensors; i++) {
        edit e = {.op = E_DUP_TI, .i = below(L->n_tensors)};
        build(out, L, &e);
        variant(K_DUPS, out->p, out->n, EX_REJECT, "tensor info #%llu appended again", (unsigned long long)e.i);
    }
}

static void m_records(const layout *L, buf *out)
{
    edit e = {.op = E_REVERSE_KV};
    build(out, L, &e);
    variant(K_RECORDS, out->p, out->n, EX_SAME, "metadata in reverse order");
    if (L->n_tensors >= 2) {
        e = (edit){.op = E_REVERSE_TI};
        build(out, L, &e);
        variant(K_RECORDS, out->p, out->n, EX_SAME, "tensor infos in reverse order");
    }
    for (int i = 0; i < 3 && L->n_kv >= 2; i++) {
        e = (edit){.op = E_SWAP_KV, .i = below(L->n_kv), .j = below(L->n_kv)};
        build(out, L, &e);
        variant(K_RECORDS, out->p, out->n, EX_SAME, "metadata #%llu and #%llu swapped", (unsigned long long)e.i,
                (unsigned long long)e.j);
    }
    const char *keys[] = {"general.architecture", "tokenizer.ggml.model", "tokenizer.ggml.tokens",
                          "tokenizer.ggml.merges", "tokenizer.ggml.scores", "tokenizer.ggml.token_type",
                          "llama.block_count", "llama.attention.head_count", "llama.attention.head_count_kv",
                          "llama.feed_forward_length", "llama.rope.dimension_count", "tokenizer.ggml.pre"};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        int64_t i = find_key(L, keys[k]);
        if (i < 0)
            continue;
        e = (edit){.op = E_DROP_KV, .i = (uint64_t)i};
        build(out, L, &e);
        variant(K_RECORDS, out->p, out->n, EX_GGUF, "metadata '%s' dropped", keys[k]);
    }
    for (int i = 0; i < 4 && L->n_kv; i++) {
        e = (edit){.op = E_DROP_KV, .i = below(L->n_kv)};
        build(out, L, &e);
        variant(K_RECORDS, out->p, out->n, EX_GGUF, "metadata #%llu dropped", (unsigned long long)e.i);
    }
    for (int i = 0; i < 4 && L->n_tensors; i++) {
        e = (edit){.op = E_DROP_TI, .i = below(L->n_tensors)};
        build(out, L, &e);
        variant(K_RECORDS, out->p, out->n, EX_GGUF, "tensor info #%llu dropped", (unsigned long long)e.i);
    }
    /* unknown extra metadata: a u32, a nested array, an empty key */
    buf rec = {0};
    uint8_t v4[4];
    st32(v4, 7);
    mk_kv(&rec, "sov.mutate.extra", GGUF_UINT32, v4, 4);
    e = (edit){.op = E_ADD_KV, .raw = rec.p, .raw_len = rec.n};
    build(out, L, &e);
    variant(K_RECORDS, out->p, out->n, EX_SAME, "unknown u32 key added");
    rec.n = 0;
    buf nest = {0};
    put32(&nest, GGUF_ARRAY);
    put64(&nest, 3);
    for (int k = 0; k < 3; k++) {
        put32(&nest, GGUF_UINT8);
        put64(&nest, (uint64_t)k);
        for (int b = 0; b < k; b++)
            put(&nest, "x", 1);
    }
    mk_kv(&rec, "sov.mutate.nested", GGUF_ARRAY, nest.p, nest.n);
    e = (edit){.op = E_ADD_KV, .raw = rec.p, .raw_len = rec.n};
    build(out, L, &e);
    variant(K_RECORDS, out->p, out->n, EX_SAME, "unknown nested array key added");
    rec.n = 0;
    mk_kv(&rec, "", GGUF_UINT32, v4, 4);
    e = (edit){.op = E_ADD_KV, .raw = rec.p, .raw_len = rec.n};
    build(out, L, &e);
    variant(K_RECORDS, out->p, out->n, EX_ANY, "key with an empty name added");
    /* an extra f32 tensor of 32 elements at offset 0 */
    rec.n = 0;
    putstr(&rec, "sov.mutate.extra", 16);
    put32(&rec, 1);
    put64(&rec, 32);
    put32(&rec, 0);
    put64(&rec, 0);
    e = (edit){.op = E_ADD_TI, .raw = rec.p, .raw_len = rec.n};
    build(out, L, &e);
    variant(K_RECORDS, out->p, out->n, L->data_size >= 128 ? EX_SAME : EX_REJECT, "unknown f32[32] tensor added");
    free(rec.p);
    free(nest.p);
}

/* Scalar metadata values (hyperparameters, token ids, flags) set to edge
 * values; string values replaced. The structure stays valid. */
static void m_hparams(const layout *L, uint8_t *w, buf *out)
{
    for (uint64_t i = 0; i < L->n_kv; i++) {
        const kvrec *k = &L->kv[i];
        uint64_t at = k->val_off;
        uint32_t t = k->type;
        if (t == GGUF_STRING) {
            static const char *strs[] = {"llama", "mistral", "qwen2", "gpt2", "", "x", "llama\0x", "none",
                                         "linear", "gpt-2", "llama-bpe"};
            static const size_t lens[] = {5, 7, 5, 4, 0, 1, 7, 4, 6, 5, 9};
            for (size_t s = 0; s < sizeof strs / sizeof strs[0]; s++) {
                if (s >= 7 && !(key_is(L, i, "tokenizer.ggml.pre") || key_is(L, i, "llama.rope.scaling.type")))
                    continue;
                edit e = {.op = E_SET_STR, .i = i, .raw = (const uint8_t *)strs[s], .raw_len = lens[s]};
                build(out, L, &e);
                variant(K_HPARAMS, out->p, out->n, EX_GGUF, "string '%.*s' := '%s'", (int)k->key_len,
                        (const char *)L->p + k->start + 8, strs[s]);
            }
            char big[300];
            memset(big, 'a', sizeof big);
            edit e = {.op = E_SET_STR, .i = i, .raw = (const uint8_t *)big, .raw_len = sizeof big};
            build(out, L, &e);
            variant(K_HPARAMS, out->p, out->n, EX_GGUF, "string '%.*s' := 300 x 'a'", (int)k->key_len,
                    (const char *)L->p + k->start + 8);
            continue;
        }
        uint64_t sz = scalar_size(t);
        if (!sz || t == GGUF_ARRAY)
            continue;
        uint64_t orig = sz == 8 ? ld64(L->p + at) : sz == 4 ? ld32(L->p + at) : sz == 2 ? (uint64_t)(L->p[at] | L->p[at + 1] << 8) : L->p[at];
        uint64_t vals[16];
        int nv = 0;
        if (t == GGUF_BOOL) {
            vals[nv++] = 0; vals[nv++] = 1; vals[nv++] = 2; vals[nv++] = 255;
        } else if (t == GGUF_FLOAT32) {
            float fv[] = {0.0f, -1.0f, NAN, INFINITY, -INFINITY, 1e-45f, 1e-30f, 1e30f, 3.4e38f};
            for (size_t j = 0; j < sizeof fv / sizeof fv[0]; j++) {
                uint32_t u;
                memcpy(&u, &fv[j], 4);
                vals[nv++] = u;
            }
        } else if (t == GGUF_FLOAT64) {
            double dv[] = {0.0, -1.0, NAN, INFINITY, 1e-320, 1e300, 1e-300};
            for (size_t j = 0; j < sizeof dv / sizeof dv[0]; j++)
                memcpy(&vals[nv++], &dv[j], 8);
        } else {
            uint64_t iv[] = {0, 1, 2, 3, orig - 1, orig + 1, orig * 2, UINT64_MAX, 1ull << (8 * sz - 1),
                             (1ull << (8 * sz - 1)) - 1, 4096, 1u << 20, 1u << 24};
            for (size_t j = 0; j < sizeof iv / sizeof iv[0]; j++)
                if (j < 10 || sz >= 4)
                    vals[nv++] = iv[j];
        }
        for (int j = 0; j < nv; j++) {
            for (uint64_t b = 0; b < sz; b++)
                w[at + b] = (uint8_t)(vals[j] >> (8 * b));
            int ex = t == GGUF_BOOL && (vals[j] & 0xff) > 1 ? EX_ANY : EX_GGUF;
            variant(K_HPARAMS, w, L->size, ex, "'%.*s' (%s) := 0x%llx", (int)k->key_len,
                    (const char *)L->p + k->start + 8, gguf_vtype_name(t), (unsigned long long)vals[j]);
            memcpy(w + at, L->p + at, (size_t)sz);
        }
    }
}

/* Element e (index into layout.elems) of a string array: length and bytes. */
static uint64_t elem_len(const layout *L, size_t e) { return ld64(L->p + L->elems.v[e]); }
static uint64_t elem_off(const layout *L, size_t e) { return L->elems.v[e] + 8; }

/* Token texts, token types, scores and merges changed in place. */
static void m_tokens(const layout *L, uint8_t *w)
{
    int64_t tk = find_key(L, "tokenizer.ggml.tokens");
    if (tk < 0 || L->kv[tk].type != GGUF_ARRAY || L->kv[tk].etype != GGUF_STRING || !L->kv[tk].n)
        return;
    const kvrec *K = &L->kv[tk];
    const size_t e0 = K->first_elem, n = (size_t)K->n;
    /* random bytes over a token's text */
    for (int i = 0; i < 12; i++) {
        size_t e = e0 + below(n);
        uint64_t len = elem_len(L, e), off = elem_off(L, e);
        for (uint64_t b = 0; b < len; b++)
            w[off + b] = (uint8_t)rnd();
        variant(K_TOKENS, w, L->size, EX_GGUF, "token %zu's %llu bytes randomized", e - e0, (unsigned long long)len);
        memcpy(w + off, L->p + off, (size_t)len);
    }
    /* a token's text made equal to another token's (duplicate texts) */
    for (int i = 0, done = 0; i < 400 && done < 6; i++) {
        size_t a = e0 + below(n), b = e0 + below(n);
        if (a == b || elem_len(L, a) != elem_len(L, b))
            continue;
        uint64_t len = elem_len(L, a);
        memcpy(w + elem_off(L, a), L->p + elem_off(L, b), (size_t)len);
        variant(K_TOKENS, w, L->size, EX_GGUF, "token %zu's text := token %zu's", a - e0, b - e0);
        memcpy(w + elem_off(L, a), L->p + elem_off(L, a), (size_t)len);
        done++;
    }
    /* special byte-token spellings and U+2581 / NUL fills */
    const char *six[] = {"<0x41>", "<0xG1>", "<0x0a>", "<0x\xff\xff>"};
    for (int i = 0, done = 0; i < 2000 && done < 4; i++) {
        size_t e = e0 + below(n);
        if (elem_len(L, e) != 6)
            continue;
        memcpy(w + elem_off(L, e), six[done], 6);
        variant(K_TOKENS, w, L->size, EX_GGUF, "token %zu's text := '%s'", e - e0, six[done]);
        memcpy(w + elem_off(L, e), L->p + elem_off(L, e), 6);
        done++;
    }
    for (int i = 0; i < 6; i++) {
        size_t e = e0 + below(n);
        uint64_t len = elem_len(L, e), off = elem_off(L, e);
        for (uint64_t b = 0; b < len; b++)
            w[off + b] = i % 3 == 0 ? 0 : i % 3 == 1 ? (uint8_t)"\xe2\x96\x81"[b % 3] : (uint8_t)' ';
        variant(K_TOKENS, w, L->size, EX_GGUF, "token %zu's text filled with %s", e - e0,
                i % 3 == 0 ? "NULs" : i % 3 == 1 ? "U+2581" : "spaces");
        memcpy(w + off, L->p + off, (size_t)len);
    }
    /* token types */
    int64_t tt = find_key(L, "tokenizer.ggml.token_type");
    if (tt >= 0 && L->kv[tt].type == GGUF_ARRAY && scalar_size(L->kv[tt].etype) == 4 && L->kv[tt].n) {
        const kvrec *T = &L->kv[tt];
        uint64_t base = T->val_off + 12;
        const uint32_t tv[] = {0, 1, 2, 3, 4, 5, 6, 7, 0xffffffffu, 255, 0x7fffffffu};
        for (size_t i = 0; i < sizeof tv / sizeof tv[0]; i++) {
            uint64_t at = base + 4 * below(T->n);
            st32(w + at, tv[i]);
            variant(K_TOKENS, w, L->size, EX_GGUF, "token_type[%llu] := %d", (unsigned long long)((at - base) / 4),
                    (int32_t)tv[i]);
            memcpy(w + at, L->p + at, 4);
        }
        const uint32_t all[] = {3, 6, 2, 4};
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
            for (uint64_t j = 0; j < T->n; j++)
                st32(w + base + 4 * j, all[i]);
            variant(K_TOKENS, w, L->size, EX_GGUF, "every token_type := %u", all[i]);
            memcpy(w + base, L->p + base, (size_t)(4 * T->n));
        }
    }
    /* scores */
    int64_t sc = find_key(L, "tokenizer.ggml.scores");
    if (sc >= 0 && L->kv[sc].type == GGUF_ARRAY && L->kv[sc].etype == GGUF_FLOAT32 && L->kv[sc].n) {
        const kvrec *S = &L->kv[sc];
        uint64_t base = S->val_off + 12;
        const float fv[] = {NAN, INFINITY, -INFINITY, 3.4e38f, -3.4e38f, 1e-45f};
        for (size_t i = 0; i < sizeof fv / sizeof fv[0]; i++) {
            uint64_t at = base + 4 * below(S->n);
            memcpy(w + at, &fv[i], 4);
            variant(K_TOKENS, w, L->size, EX_GGUF, "scores[%llu] := %g", (unsigned long long)((at - base) / 4),
                    (double)fv[i]);
            memcpy(w + at, L->p + at, 4);
        }
        for (uint64_t j = 0; j < S->n; j++)
            memcpy(w + base + 4 * j, &fv[0], 4);
        variant(K_TOKENS, w, L->size, EX_GGUF, "every score := NaN");
        memcpy(w + base, L->p + base, (size_t)(4 * S->n));
    }
    /* merges */
    int64_t mg = find_key(L, "tokenizer.ggml.merges");
    if (mg >= 0 && L->kv[mg].type == GGUF_ARRAY && L->kv[mg].etype == GGUF_STRING && L->kv[mg].n) {
        const kvrec *M = &L->kv[mg];
        for (int i = 0; i < 9; i++) {
            size_t e = M->first_elem + below(M->n);
            uint64_t len = elem_len(L, e), off = elem_off(L, e);
            if (i < 6) {
                for (uint64_t b = 0; b < len; b++)
                    w[off + b] = (uint8_t)rnd();
            } else {
                for (uint64_t b = 0; b < len; b++)
                    if (w[off + b] == ' ')
                        w[off + b] = 'x';
            }
            variant(K_TOKENS, w, L->size, EX_GGUF, "merge %zu %s", e - M->first_elem,
                    i < 6 ? "randomized" : "without its space");
            memcpy(w + off, L->p + off, (size_t)len);
        }
    }
}

/* Tensor offsets moved to the edges of the data section. */
static void m_offsets(const layout *L, uint8_t *w)
{
    if (!L->n_tensors)
        return;
    const uint64_t A = L->align, D = L->data_size;
    for (int s = 0; s < 6; s++) {
        uint64_t i = s == 0 ? 0 : s == 1 ? L->n_tensors - 1 : below(L->n_tensors);
        const tirec *t = &L->ti[i];
        uint64_t nb = t->nbytes, other = L->ti[below(L->n_tensors)].offset;
        uint64_t last = D >= nb ? (D - nb) / A * A : 0;
        uint64_t vals[] = {0, last, D >= nb ? D - nb + 1 : 1, last + A, D, other, t->offset + A,
                           t->offset - A, UINT64_MAX - A + 1, (UINT64_MAX - nb) / A * A};
        for (size_t k = 0; k < sizeof vals / sizeof vals[0]; k++) {
            uint64_t o = vals[k];
            bool ok = o % A == 0 && o <= D && nb <= D - o;
            st64(w + t->offset_off, o);
            variant(K_OFFSETS, w, L->size, ok ? EX_SAME : EX_REJECT, "tensor #%llu (%llu bytes) offset %llu -> %llu (data %llu)",
                    (unsigned long long)i, (unsigned long long)nb, (unsigned long long)t->offset,
                    (unsigned long long)o, (unsigned long long)D);
            memcpy(w + t->offset_off, L->p + t->offset_off, 8);
        }
    }
}

/* ------------------------------------------------------------- driver */

static bool check_walker(layout *L)
{
    gguf *g = NULL;
    if (gguf_open_mem(&g, L->p, L->size) != 0)
        return t_check(false, "walker", "%s: the original does not parse: %s", L->name, err_msg());
    bool ok = g->n_kv == L->n_kv && g->n_tensors == L->n_tensors && g->data_offset == L->data_off &&
              g->alignment == L->align;
    for (uint64_t i = 0; ok && i < L->n_kv; i++)
        ok = (uint64_t)((const uint8_t *)g->kv[i].key.ptr - L->p) == L->kv[i].start + 8 &&
             g->kv[i].val.type == L->kv[i].type;
    L->need_end = L->n_tensors ? L->data_off : L->ti_end;
    for (uint64_t i = 0; ok && i < L->n_tensors; i++) {
        ok = (uint64_t)((const uint8_t *)g->tensors[i].name.ptr - L->p) == L->ti[i].start + 8 &&
             g->tensors[i].offset == L->ti[i].offset && g->tensors[i].type == L->ti[i].type;
        L->ti[i].nbytes = g->tensors[i].nbytes;
        uint64_t end = L->data_off + L->ti[i].offset + L->ti[i].nbytes;
        if (end > L->need_end)
            L->need_end = end;
    }
    gguf_close(g);
    char name[120];
    snprintf(name, sizeof name, "walker agrees with the parser on %s", L->name);
    return t_check(ok, name, "record offsets or counts differ");
}

static void free_layout(layout *L)
{
    free(L->kv);
    free(L->ti);
    free(L->elems.v);
    for (int c = 0; c < C_N; c++)
        free(L->fields[c].v);
}

static void mutate_file(const char *rel, bool want_model)
{
    layout L;
    memset(&L, 0, sizeof L);
    const char *slash = strrchr(rel, '/');
    snprintf(L.name, sizeof L.name, "%s", slash ? slash + 1 : rel);
    file_map fm;
    if (file_map_open(&fm, t_shared(rel)) != 0) {
        t_check(false, rel, "cannot open: %s", err_msg());
        return;
    }
    uint8_t *orig = malloc(fm.size);
    memcpy(orig, fm.data, fm.size);
    L.p = orig;
    L.size = fm.size;
    file_unmap(&fm);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    seed_from(L.name);
    char name[160];
    snprintf(name, sizeof name, "walk %s", L.name);
    if (!t_check(walk(&L), name, "the structure walker could not follow the original") || !check_walker(&L)) {
        free_layout(&L);
        free(orig);
        return;
    }
    result r;
    char msg[200];
    snprintf(cur_desc, sizeof cur_desc, "%s: the original", L.name);
    chain(orig, L.size, false, &r, msg, sizeof msg);
    cur_desc[0] = 0;
    L.orig_model = r.model_ok;
    L.orig_vocab = r.vocab_ok;
    snprintf(name, sizeof name, "original %s loads as %s", L.name, want_model ? "a model" : "a tokenizer");
    t_check(!r.why[0] && r.vocab_ok && (!want_model || r.model_ok), name, "%s %s", r.why, msg);
    cur_layout = &L;
    int before = n_variants;

    uint8_t *w = malloc(L.size);
    memcpy(w, orig, L.size);
    buf out = {0};
    m_trunc(&L);
    m_flip_hdr(&L, w);
    static const int kv_classes[] = {C_KEYLEN, C_VTYPE, C_STRLEN, C_ETYPE, C_ACOUNT, C_ASTRLEN};
    static const int ti_classes[] = {C_NAMELEN, C_NDIMS, C_DIM, C_TTYPE, C_TOFF};
    m_flip_region(&L, w, K_FLIP_KV, 24, L.kv_end, kv_classes, 6, 120);
    if (L.n_tensors)
        m_flip_region(&L, w, K_FLIP_TI, L.kv_end, L.ti_end, ti_classes, 5, 100);
    m_absurd(&L, w);
    m_types(&L, w);
    m_align(&L, &out);
    m_dups(&L, &out);
    m_records(&L, &out);
    m_hparams(&L, w, &out);
    m_tokens(&L, w);
    m_offsets(&L, w);
    if (memcmp(w, orig, L.size) != 0)
        t_check(false, "mutation buffer restored", "%s: a mutation was not undone", L.name);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("INFO %-28s %5d variants in %.1f s (%llu bytes: header 24, metadata %llu, tensor infos %llu, data from %llu)\n",
           L.name, n_variants - before, (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec),
           (unsigned long long)L.size, (unsigned long long)(L.kv_end - 24), (unsigned long long)(L.ti_end - L.kv_end),
           (unsigned long long)L.data_off);
    fflush(stdout);
    cur_layout = NULL;
    free(out.p);
    free(w);
    free_layout(&L);
    free(orig);
}

int main(void)
{
    trace = getenv("SOV_MUT_TRACE") && atoi(getenv("SOV_MUT_TRACE")) > 0;
    int sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        signal(sigs[i], on_signal);
#ifdef MUT_ASAN
    __sanitizer_set_death_callback(print_crash_variant);
#endif
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    const struct { const char *rel; bool model; } files[] = {
        {"models/stories260K.gguf", true},
        {"models/llama-2-tiny-random.gguf", true},
        {"models/quant/mini256-q4_k_m.gguf", true},
        {"vocab/ggml-vocab-gpt-2.gguf", false},
        {"vocab/ggml-vocab-llama-spm.gguf", false},
        {"vocab/ggml-vocab-falcon.gguf", false},
        {"vocab/ggml-vocab-bert-bge.gguf", false}, /* WordPiece */
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        mutate_file(files[i].rel, files[i].model);

    int total = 0, loaded = 0, rejected = 0, bad = 0;
    for (int k = 0; k < K_N; k++) {
        kstat *s = &kstats[k];
        char name[120];
        snprintf(name, sizeof name, "mutate %s: every variant ends cleanly as expected", kind_name[k]);
        t_check(s->n > 0 && s->bad == 0, name, "%d of %d variants failed (%d with the wrong outcome); first: %s%s%s%s%s",
                s->bad, s->n, s->wrong, s->n ? s->first_bad[0] : "none run", s->n_bad_kept > 1 ? " | " : "",
                s->n_bad_kept > 1 ? s->first_bad[1] : "", s->n_bad_kept > 2 ? " | " : "",
                s->n_bad_kept > 2 ? s->first_bad[2] : "");
        printf("INFO %-34s %5d variants: %5d rejected by gguf, %4d parsed only, %4d tokenizer only, %4d full model\n",
               kind_name[k], s->n, s->rejected, s->gguf_only, s->vocab_only, s->model);
        for (int j = 0; j < s->n_sample; j++)
            printf("INFO     e.g. \"%s\"\n", s->sample[j]);
        total += s->n;
        loaded += s->vocab_only + s->model;
        rejected += s->rejected + s->gguf_only;
        bad += s->bad;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    t_check(total >= 2000, "mutate: at least 2000 variants", "only %d", total);
    printf("INFO total %d variants: %d loaded (model or tokenizer), %d rejected cleanly, %d failures, %.1f s\n", total,
           loaded, rejected, bad, (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec));
    return t_done();
}
