/* tok_spm: SentencePiece-style tokenizer and shared tokenizer helpers. */
#include "tok_spm.h"
#include "tok_heap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../base/err.h"

uint64_t tok_hash(uint64_t h, const void *s, size_t n)
{
    const unsigned char *p = s;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static uint64_t mix(uint64_t h)
{
    h ^= h >> 31;
    h *= 0x7fb5d329728ea185ULL;
    h ^= h >> 27;
    return h;
}

int tok_map_build(tok_map *m, const gguf_str *keys, int32_t n)
{
    memset(m, 0, sizeof *m);
    uint64_t cap = 16;
    while (cap < (uint64_t)n * 2)
        cap <<= 1;
    m->slot = malloc(cap * sizeof *m->slot);
    if (!m->slot)
        return err_set(SOV_ENOMEM, "vocab: out of memory for token map (%llu slots)", (unsigned long long)cap);
    memset(m->slot, 0xff, cap * sizeof *m->slot);
    m->mask = cap - 1;
    m->keys = keys;
    for (int32_t id = 0; id < n; id++) {
        gguf_str k = keys[id];
        uint64_t i = mix(tok_hash(TOK_HASH_INIT, k.ptr, k.len)) & m->mask;
        for (;;) {
            int32_t o = m->slot[i];
            if (o < 0) {
                m->slot[i] = id;
                break;
            }
            if (keys[o].len == k.len && memcmp(keys[o].ptr, k.ptr, k.len) == 0) {
                m->slot[i] = id; /* duplicate text: the later id wins */
                break;
            }
            i = (i + 1) & m->mask;
        }
    }
    return 0;
}

void tok_map_free(tok_map *m)
{
    if (!m)
        return;
    free(m->slot);
    memset(m, 0, sizeof *m);
}

int32_t tok_map_find(const tok_map *m, const char *s, size_t n)
{
    if (!m->slot)
        return -1;
    uint64_t i = mix(tok_hash(TOK_HASH_INIT, s, n)) & m->mask;
    for (;;) {
        int32_t o = m->slot[i];
        if (o < 0)
            return -1;
        if (m->keys[o].len == n && memcmp(m->keys[o].ptr, s, n) == 0)
            return o;
        i = (i + 1) & m->mask;
    }
}

int tok_ids_push(tok_ids *o, int32_t id)
{
    if (o->n == o->cap) {
        size_t nc = o->cap ? o->cap * 2 : 64;
        int32_t *nv = realloc(o->v, nc * sizeof *nv);
        if (!nv)
            return err_set(SOV_ENOMEM, "vocab: out of memory for %zu token ids", nc);
        o->v = nv;
        o->cap = nc;
    }
    o->v[o->n++] = id;
    return 0;
}

/* ---- SPM merging ---- */

typedef struct sym {
    int32_t prev, next;
    size_t start, len; /* len 0: merged away */
} sym;

static int try_add(const spm_vocab *s, const char *buf, sym *sy, tok_heap *h, int32_t l, int32_t r)
{
    if (l < 0 || r < 0)
        return 0;
    size_t n = sy[l].len + sy[r].len;
    int32_t id = tok_map_find(s->map, buf + sy[l].start, n);
    if (id < 0)
        return 0;
    tok_pair b = {-(double)s->scores[id], l, r, n};
    return tok_heap_push(h, b);
}

static int emit_bytes(const spm_vocab *s, const char *p, size_t n, tok_ids *out)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        int32_t id = s->byte_id[c] >= 0 ? s->byte_id[c] : s->unk;
        if (id < 0)
            return err_set(SOV_EFORMAT, "vocab: byte 0x%02x has no token and there is no unknown token", c);
        int rc = tok_ids_push(out, id);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int spm_encode(const spm_vocab *s, const char *text, size_t len, bool space_prefix, tok_ids *out)
{
    int rc = 0;
    char *buf = NULL;
    sym *sy = NULL;
    tok_heap h = {0};
    size_t in = len + (space_prefix ? 1 : 0);
    if (in == 0)
        return 0;
    if (in > SIZE_MAX / (3 * sizeof *sy))
        return err_set(SOV_ENOMEM, "vocab: text of %zu bytes is too long", len);
    buf = malloc(in * 3);
    sy = malloc(in * 3 * sizeof *sy); /* one symbol per escaped byte at most */
    if (!buf || !sy) {
        rc = err_set(SOV_ENOMEM, "vocab: out of memory for %zu bytes of text", len);
        goto fail;
    }
    size_t n = 0;
    if (space_prefix) {
        memcpy(buf, "\xe2\x96\x81", 3);
        n = 3;
    }
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') {
            memcpy(buf + n, "\xe2\x96\x81", 3);
            n += 3;
        } else {
            buf[n++] = text[i];
        }
    }
    int32_t ns = 0;
    for (size_t off = 0; off < n;) {
        /* one UTF-8 character; a malformed sequence ends at the first byte
         * that is no continuation byte, so the U+2581 of an escaped space
         * is never swallowed by a stray lead byte */
        size_t cl = tok_utf8_len((unsigned char)buf[off]), k = 1;
        while (k < cl && off + k < n && ((unsigned char)buf[off + k] & 0xc0) == 0x80)
            k++;
        cl = k;
        sy[ns].prev = ns - 1;
        sy[ns].next = ns + 1;
        sy[ns].start = off;
        sy[ns].len = cl;
        ns++;
        off += cl;
    }
    sy[ns - 1].next = -1;
    for (int32_t i = 1; i < ns; i++)
        if ((rc = try_add(s, buf, sy, &h, i - 1, i)) < 0)
            goto fail;
    while (h.n > 0) {
        tok_pair b = tok_heap_pop(&h);
        sym *l = &sy[b.left], *r = &sy[b.right];
        if (l->len == 0 || r->len == 0 || l->len + r->len != b.size)
            continue;
        l->len += r->len;
        r->len = 0;
        l->next = r->next;
        if (r->next >= 0)
            sy[r->next].prev = b.left;
        if ((rc = try_add(s, buf, sy, &h, l->prev, b.left)) < 0)
            goto fail;
        if ((rc = try_add(s, buf, sy, &h, b.left, l->next)) < 0)
            goto fail;
    }
    for (int32_t i = 0; i >= 0; i = sy[i].next) {
        const char *p = buf + sy[i].start;
        int32_t id = tok_map_find(s->map, p, sy[i].len);
        if (id >= 0)
            rc = tok_ids_push(out, id);
        else
            rc = emit_bytes(s, p, sy[i].len, out);
        if (rc < 0)
            goto fail;
    }
    rc = 0;
fail:
    tok_heap_free(&h);
    free(sy);
    free(buf);
    return rc;
}
