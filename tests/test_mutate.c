/* Mutation test for the loaders: the shared GGUF files are corrupted in many
 * ways (truncation, byte flips in the header / metadata / tensor-info
 * regions, absurd counts, lengths, offsets and dimensions, invalid type
 * fields) and every variant must end in a clean error (negative code and a
 * message) or a valid load. A valid load is then used: the model evaluates a
 * token, the tokenizer encodes and decodes a string. Each variant lives in a
 * malloc'd buffer of exactly its size, so under ASan any over-read is caught;
 * LeakSanitizer checks nothing leaks. Deterministic (fixed seed). */
#include "t.h"

#include "base/err.h"
#include "base/file.h"
#include "engine/forward.h"
#include "engine/gguf.h"
#include "engine/model.h"
#include "engine/vocab.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng = 0x5eed5eed12345ull;
static uint64_t rnd(void)
{
    uint64_t z = (rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static uint64_t below(uint64_t n) { return n ? rnd() % n : 0; }

/* Offsets of interesting fields in the original file. */
typedef struct fields {
    uint64_t *u64; size_t n64, cap64; /* counts, lengths, dims, offsets */
    uint64_t *u32; size_t n32, cap32; /* type fields */
    uint64_t kv_start, ti_start, ti_end, data_start, size;
} fields;

static void add(uint64_t **a, size_t *n, size_t *cap, uint64_t v)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 256;
        *a = realloc(*a, *cap * sizeof **a);
    }
    (*a)[(*n)++] = v;
}

static void value_fields(fields *f, const gguf *g, const gguf_value *v)
{
    if (v->type == GGUF_STRING)
        add(&f->u64, &f->n64, &f->cap64, (uint64_t)((const uint8_t *)v->v.str.ptr - g->base) - 8);
    if (v->type != GGUF_ARRAY)
        return;
    /* the array header is 12 bytes before its data; find it from the first element */
    const uint8_t *first = v->v.arr.raw;
    if (v->v.arr.type == GGUF_STRING && v->v.arr.n)
        first = (const uint8_t *)v->v.arr.strs[0].ptr - 8;
    if (first) {
        add(&f->u32, &f->n32, &f->cap32, (uint64_t)(first - g->base) - 12);
        add(&f->u64, &f->n64, &f->cap64, (uint64_t)(first - g->base) - 8);
    }
    if (v->v.arr.type == GGUF_STRING)
        for (uint64_t i = 0; i < v->v.arr.n && i < 64; i++)
            add(&f->u64, &f->n64, &f->cap64, (uint64_t)((const uint8_t *)v->v.arr.strs[i].ptr - g->base) - 8);
}

static int find_fields(fields *f, const uint8_t *data, size_t size)
{
    gguf *g = NULL;
    if (gguf_open_mem(&g, data, size))
        return -1;
    memset(f, 0, sizeof *f);
    f->size = size;
    add(&f->u32, &f->n32, &f->cap32, 4);  /* version */
    add(&f->u64, &f->n64, &f->cap64, 8);  /* n_tensors */
    add(&f->u64, &f->n64, &f->cap64, 16); /* n_kv */
    f->kv_start = 24;
    for (uint64_t i = 0; i < g->n_kv; i++) {
        const gguf_kv *kv = &g->kv[i];
        uint64_t key_off = (uint64_t)((const uint8_t *)kv->key.ptr - g->base);
        add(&f->u64, &f->n64, &f->cap64, key_off - 8);
        add(&f->u32, &f->n32, &f->cap32, key_off + kv->key.len);
        value_fields(f, g, &kv->val);
    }
    f->ti_start = g->n_tensors ? (uint64_t)((const uint8_t *)g->tensors[0].name.ptr - g->base) - 8 : g->data_offset;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const gguf_tensor *t = &g->tensors[i];
        uint64_t o = (uint64_t)((const uint8_t *)t->name.ptr - g->base);
        add(&f->u64, &f->n64, &f->cap64, o - 8);  /* name length */
        o += t->name.len;
        add(&f->u32, &f->n32, &f->cap32, o);      /* n_dims */
        o += 4;
        for (uint32_t d = 0; d < t->n_dims; d++, o += 8)
            add(&f->u64, &f->n64, &f->cap64, o); /* ne[d] */
        add(&f->u32, &f->n32, &f->cap32, o);      /* type */
        add(&f->u64, &f->n64, &f->cap64, o + 4);  /* offset */
        f->ti_end = o + 12;
    }
    if (!g->n_tensors)
        f->ti_end = f->ti_start;
    f->data_start = g->data_offset;
    gguf_close(g);
    return 0;
}

typedef struct stats {
    int variants, loaded_gguf, loaded_model, loaded_vocab, rejected, bad;
    char sample[4][200];
    int n_sample;
} stats;

/* Loads one variant through the whole chain; returns false on an unclean outcome. */
static bool try_variant(const uint8_t *img, size_t n, stats *st)
{
    st->variants++;
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) {
        st->bad++;
        return false;
    }
    memcpy(buf, img, n);
    bool ok = true;
    gguf *g = NULL;
    model *m = NULL;
    vocab *v = NULL;
    forward *fw = NULL;
    int32_t *ids = NULL;
    int rc = gguf_open_mem(&g, buf, n);
    if (rc) {
        ok = rc < 0 && err_msg()[0];
        goto out;
    }
    st->loaded_gguf++;
    rc = model_from_gguf(&m, g, false);
    if (rc == 0) {
        st->loaded_model++;
        int32_t tok = 0, pos = 0;
        forward_batch b = {.n = 1, .token = &tok, .pos = &pos};
        rc = forward_new(&fw, m, 8, 1, NULL);
        if (rc == 0)
            rc = forward_decode(fw, &b);
        ok = rc == 0 || (rc < 0 && err_msg()[0]);
        goto out;
    }
    ok = rc < 0 && err_msg()[0];
    rc = vocab_load(&v, g);
    if (rc == 0) {
        st->loaded_vocab++;
        size_t nid = 0;
        const char *text = "Hello world, \xc3\xa9t\xc3\xa9 123 <s>";
        rc = vocab_encode(v, text, strlen(text), true, true, &ids, &nid);
        char piece[256];
        for (size_t i = 0; rc == 0 && i < nid; i++) {
            int pn = vocab_piece(v, i ? ids[i - 1] : -1, ids[i], piece, sizeof piece);
            if (pn < 0 && !err_msg()[0])
                ok = false;
        }
        if (rc < 0 && !err_msg()[0])
            ok = false;
    } else if (rc > 0 || !err_msg()[0]) {
        ok = false;
    }
out:
    if (rc < 0 && st->n_sample < 4 && (st->variants % 97) == 0)
        snprintf(st->sample[st->n_sample++], sizeof st->sample[0], "%s", err_msg());
    if (!m && !v)
        st->rejected++; /* neither a model nor a tokenizer came out of it */
    free(ids);
    vocab_free(v);
    forward_free(fw);
    model_free(m);
    gguf_close(g);
    free(buf);
    if (!ok)
        st->bad++;
    return ok;
}

static const uint64_t absurd64[] = {0, 1, 2, 0x7fffffffull, 0x80000000ull, 0xffffffffull, 0x100000000ull,
                                    1ull << 62, 1ull << 63, UINT64_MAX, UINT64_MAX - 1};
static const uint32_t absurd32[] = {0, 1, 2, 3, 5, 7, 8, 9, 10, 12, 13, 14, 15, 16, 30, 31, 39, 255,
                                    0x7fffffff, 0xffffffffu};

static void mutate_file(const char *rel, int per_kind, stats *kinds)
{
    char *raw = NULL;
    size_t size = 0;
    file_map fm;
    if (file_map_open(&fm, t_shared(rel)) != 0) {
        t_check(false, rel, "cannot open: %s", err_msg());
        return;
    }
    raw = malloc(fm.size);
    memcpy(raw, fm.data, fm.size);
    size = fm.size;
    file_unmap(&fm);
    const uint8_t *orig = (const uint8_t *)raw;
    fields f;
    if (find_fields(&f, orig, size) != 0) {
        t_check(false, rel, "original does not parse: %s", err_msg());
        free(raw);
        return;
    }
    uint8_t *w = malloc(size);
    uint64_t meta_end = f.ti_end + 64 < size ? f.ti_end + 64 : size;

    /* 0: truncation: every byte of the first 512, spread over the metadata, a sample of the data */
    for (uint64_t c = 0; c < 512 && c < size; c += (c < 64 ? 1 : 3))
        try_variant(orig, c, &kinds[0]);
    for (int i = 0; i < per_kind; i++)
        try_variant(orig, (size_t)below(meta_end), &kinds[0]);
    uint64_t edges[] = {f.ti_start, f.ti_end, f.data_start - 1, f.data_start, size - 1};
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++)
        if (edges[i] < size)
            try_variant(orig, (size_t)edges[i], &kinds[0]);
    for (int i = 0; i < 20 && f.data_start < size; i++)
        try_variant(orig, (size_t)(f.data_start + below(size - f.data_start)), &kinds[0]);

    /* 1: random byte flips in header / KV / tensor-info regions */
    for (int i = 0; i < per_kind; i++) {
        memcpy(w, orig, size);
        int nflip = 1 + (int)below(3);
        for (int k = 0; k < nflip; k++) {
            uint64_t region = below(3), at;
            if (region == 0)
                at = below(24);
            else if (region == 1)
                at = f.kv_start + below(f.ti_start - f.kv_start);
            else
                at = f.ti_start + below(f.ti_end - f.ti_start + 1);
            if (at < size)
                w[at] ^= (uint8_t)(1u << below(8)) | (uint8_t)(below(2) ? rnd() : 0);
        }
        try_variant(w, size, &kinds[1]);
    }

    /* 2: absurd u64 counts, lengths, dimensions and offsets */
    for (int i = 0; i < per_kind && f.n64; i++) {
        memcpy(w, orig, size);
        uint64_t at = f.u64[below(f.n64)], val;
        uint64_t pick = below(sizeof absurd64 / sizeof absurd64[0] + 3);
        if (pick < sizeof absurd64 / sizeof absurd64[0])
            val = absurd64[pick];
        else
            val = size + below(64) - 32; /* near the file size */
        if (at + 8 <= size)
            memcpy(w + at, &val, 8);
        try_variant(w, size, &kinds[2]);
    }

    /* 3: invalid or other type fields (version, value types, array element types, n_dims, tensor types) */
    for (int i = 0; i < per_kind && f.n32; i++) {
        memcpy(w, orig, size);
        uint64_t at = f.u32[below(f.n32)];
        uint32_t val = absurd32[below(sizeof absurd32 / sizeof absurd32[0])];
        if (at + 4 <= size)
            memcpy(w + at, &val, 4);
        try_variant(w, size, &kinds[3]);
    }

    /* 4: structural: string bytes turned into other strings (duplicate names), spans of zeros / 0xff */
    for (int i = 0; i < per_kind / 2; i++) {
        memcpy(w, orig, size);
        uint64_t at = f.kv_start + below(f.ti_end - f.kv_start + 1);
        uint64_t len = 1 + below(24);
        uint8_t fill = below(2) ? 0x00 : 0xff;
        for (uint64_t k = 0; k < len && at + k < size; k++)
            w[at + k] = fill;
        try_variant(w, size, &kinds[4]);
    }
    free(w);
    free(f.u64);
    free(f.u32);
    free(raw);
}

int main(void)
{
    const char *files[] = {"models/stories260K.gguf", "models/llama-2-tiny-random.gguf",
                           "models/quant/mini256-q4_k_m.gguf", "vocab/ggml-vocab-gpt-2.gguf",
                           "vocab/ggml-vocab-llama-spm.gguf"};
    const char *kind_names[] = {"truncation", "byte flips", "absurd u64 fields", "type fields", "zero/0xff spans"};
    enum { KINDS = 5 };
    stats kinds[KINDS] = {0};
    int per_kind = 250;
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        mutate_file(files[i], per_kind, kinds);
    int total = 0, bad = 0, loaded = 0;
    for (int k = 0; k < KINDS; k++) {
        char name[80];
        snprintf(name, sizeof name, "mutation %s: every variant clean", kind_names[k]);
        t_check(kinds[k].bad == 0 && kinds[k].variants > 0, name, "%d of %d variants ended uncleanly",
                kinds[k].bad, kinds[k].variants);
        printf("INFO %-18s %5d variants: %4d parsed as GGUF, %4d loaded as model, %4d as tokenizer only, %4d rejected\n",
               kind_names[k], kinds[k].variants, kinds[k].loaded_gguf, kinds[k].loaded_model,
               kinds[k].loaded_vocab, kinds[k].rejected);
        for (int s = 0; s < kinds[k].n_sample && s < 2; s++)
            printf("INFO   e.g. %s\n", kinds[k].sample[s]);
        total += kinds[k].variants;
        bad += kinds[k].bad;
        loaded += kinds[k].loaded_model + kinds[k].loaded_vocab;
    }
    t_check(total >= 2000, "at least 2000 variants", "only %d", total);
    printf("INFO total %d variants, %d usable loads, %d unclean\n", total, loaded, bad);
    return t_done();
}
