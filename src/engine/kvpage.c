#include "kvpage.h"

#include "../base/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

enum { F_CACHED = 1, F_EVICTABLE = 2 };

/* Lists are circular through two sentinel entries after the blocks:
 * FREE(p) = n heads the free list, LRU(p) = n + 1 the LRU list, whose
 * next is the least recently released block and prev the most recent. */
struct kvpage {
    int32_t n;
    int32_t *refs;      /* [n] */
    int32_t *prev, *next; /* [n + 2] */
    uint8_t *flags;     /* [n] F_* */
    int32_t n_free, n_used, n_cached;
    int32_t n_evictable; /* cached (refcount 0) blocks with F_EVICTABLE */
    int64_t evictions;
    kvpage_evict_fn fn;
    void *ctx;
};

#define FREE(p) ((p)->n)
#define LRU(p) ((p)->n + 1)

/* A caller broke a contract (kvpage.h): report and abort. */
__attribute__((noreturn, format(printf, 1, 2)))
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("kvpage: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

static inline void check_block(const kvpage *p, int32_t b, const char *what)
{
    if (b < 0 || b >= p->n)
        die("%s: block %d out of range [0, %d)", what, b, p->n);
}

static inline void unlink_block(kvpage *p, int32_t b)
{
    p->next[p->prev[b]] = p->next[b];
    p->prev[p->next[b]] = p->prev[b];
}

/* Inserts b right after entry `at` (a sentinel or a block). */
static inline void link_after(kvpage *p, int32_t at, int32_t b)
{
    p->prev[b] = at;
    p->next[b] = p->next[at];
    p->prev[p->next[at]] = b;
    p->next[at] = b;
}

int kvpage_new(kvpage **out, int32_t n_blocks)
{
    *out = NULL;
    if (n_blocks < 1 || n_blocks > (1 << 30))
        return err_set(SOV_EINVAL, "kvpage: %d blocks (must be 1 .. 2^30)", n_blocks);
    kvpage *p = calloc(1, sizeof *p);
    if (!p)
        goto fail;
    p->n = n_blocks;
    p->refs = calloc((size_t)n_blocks, sizeof *p->refs);
    p->prev = malloc(sizeof *p->prev * ((size_t)n_blocks + 2));
    p->next = malloc(sizeof *p->next * ((size_t)n_blocks + 2));
    p->flags = malloc((size_t)n_blocks);
    if (!p->refs || !p->prev || !p->next || !p->flags)
        goto fail;
    p->prev[FREE(p)] = p->next[FREE(p)] = FREE(p);
    p->prev[LRU(p)] = p->next[LRU(p)] = LRU(p);
    for (int32_t b = n_blocks - 1; b >= 0; b--) {
        p->flags[b] = F_EVICTABLE;
        link_after(p, FREE(p), b);
    }
    p->n_free = n_blocks;
    *out = p;
    return 0;
fail:
    kvpage_free(p);
    return err_set(SOV_ENOMEM, "kvpage: cannot allocate the tables of %d blocks", n_blocks);
}

void kvpage_free(kvpage *p)
{
    if (!p)
        return;
    free(p->refs);
    free(p->prev);
    free(p->next);
    free(p->flags);
    free(p);
}

void kvpage_on_evict(kvpage *p, kvpage_evict_fn fn, void *ctx)
{
    p->fn = fn;
    p->ctx = fn ? ctx : NULL;
}

int32_t kvpage_alloc(kvpage *p)
{
    int32_t b;
    if (p->n_free > 0) {
        b = p->next[FREE(p)];
        unlink_block(p, b);
        p->n_free--;
    } else if (p->n_evictable > 0) {
        /* least recent first, past the pinned ones; n_evictable > 0 means
         * one is on the list */
        b = p->next[LRU(p)];
        while (b < p->n && !(p->flags[b] & F_EVICTABLE))
            b = p->next[b];
        if (b >= p->n)
            die("%d evictable blocks counted, none on the LRU list", p->n_evictable);
        unlink_block(p, b);
        p->flags[b] = 0;
        p->n_cached--;
        p->n_evictable--;
        p->evictions++;
        if (p->fn)
            p->fn(p->ctx, b);
    } else {
        return -1;
    }
    p->refs[b] = 1;
    p->flags[b] = F_EVICTABLE;
    p->n_used++;
    return b;
}

int32_t kvpage_available(const kvpage *p)
{
    return p->n_free + p->n_evictable;
}

void kvpage_ref(kvpage *p, int32_t b)
{
    check_block(p, b, "ref");
    if (p->refs[b] == 0) {
        if (!(p->flags[b] & F_CACHED))
            die("ref of free block %d", b);
        unlink_block(p, b);
        p->n_cached--;
        if (p->flags[b] & F_EVICTABLE)
            p->n_evictable--;
        p->n_used++;
    } else if (p->refs[b] == INT32_MAX) {
        die("refcount of block %d overflows", b);
    }
    p->refs[b]++;
}

void kvpage_unref(kvpage *p, int32_t b)
{
    check_block(p, b, "unref");
    if (p->refs[b] <= 0)
        die("unref of block %d with refcount 0", b);
    if (--p->refs[b] > 0)
        return;
    p->n_used--;
    if (p->flags[b] & F_CACHED) {
        link_after(p, p->prev[LRU(p)], b); /* most recent end */
        p->n_cached++;
        if (p->flags[b] & F_EVICTABLE)
            p->n_evictable++;
    } else {
        link_after(p, FREE(p), b);
        p->n_free++;
    }
}

void kvpage_set_cached(kvpage *p, int32_t b, bool cached)
{
    check_block(p, b, "set_cached");
    bool was = p->flags[b] & F_CACHED;
    if (cached == was)
        return;
    if (cached) {
        if (p->refs[b] == 0)
            die("set_cached on free block %d", b);
        p->flags[b] |= F_CACHED;
        return;
    }
    p->flags[b] &= (uint8_t)~F_CACHED;
    if (p->refs[b] > 0)
        return;
    unlink_block(p, b);
    p->n_cached--;
    if (p->flags[b] & F_EVICTABLE)
        p->n_evictable--;
    link_after(p, FREE(p), b);
    p->n_free++;
}

void kvpage_set_evictable(kvpage *p, int32_t b, bool ok)
{
    check_block(p, b, "set_evictable");
    bool was = p->flags[b] & F_EVICTABLE;
    if (ok == was)
        return;
    if (ok)
        p->flags[b] |= F_EVICTABLE;
    else
        p->flags[b] &= (uint8_t)~F_EVICTABLE;
    if ((p->flags[b] & F_CACHED) && p->refs[b] == 0)
        p->n_evictable += ok ? 1 : -1;
}

int32_t kvpage_refs(const kvpage *p, int32_t b)
{
    check_block(p, b, "refs");
    return p->refs[b];
}

bool kvpage_cached(const kvpage *p, int32_t b)
{
    check_block(p, b, "cached");
    return p->flags[b] & F_CACHED;
}

bool kvpage_evictable(const kvpage *p, int32_t b)
{
    check_block(p, b, "evictable");
    return p->flags[b] & F_EVICTABLE;
}

kvpage_stats kvpage_stat(const kvpage *p)
{
    return (kvpage_stats){.total = p->n, .free = p->n_free, .used = p->n_used,
                          .cached = p->n_cached, .evictions = p->evictions};
}

int32_t kvpage_lru(const kvpage *p, int32_t *out, int32_t cap)
{
    int32_t k = 0;
    for (int32_t b = p->next[LRU(p)]; b != LRU(p) && k < p->n; b = p->next[b], k++)
        if (k < cap)
            out[k] = b;
    return k;
}

/* Walks the list headed by sentinel s: every entry a block in the state
 * the list holds (refcount 0, cached == want_cached), links consistent,
 * back at s after exactly `count` blocks. *n_ev counts F_EVICTABLE ones. */
static int check_list(const kvpage *p, int32_t s, bool want_cached, int32_t count, int32_t *n_ev,
                      const char *name)
{
    int32_t at = s, k = 0;
    *n_ev = 0;
    for (;;) {
        int32_t nx = p->next[at];
        if (nx < 0 || nx > p->n + 1 || p->prev[nx] != at)
            return err_set(SOV_EFORMAT, "kvpage: %s list broken after entry %d", name, at);
        if (nx == s)
            break;
        if (nx >= p->n)
            return err_set(SOV_EFORMAT, "kvpage: %s list reaches the other sentinel", name);
        if (++k > count)
            return err_set(SOV_EFORMAT, "kvpage: %s list longer than its count %d", name, count);
        if (p->refs[nx] != 0 || (bool)(p->flags[nx] & F_CACHED) != want_cached)
            return err_set(SOV_EFORMAT, "kvpage: block %d (refcount %d, flags %u) on the %s list", nx,
                           p->refs[nx], p->flags[nx], name);
        if (p->flags[nx] & F_EVICTABLE)
            ++*n_ev;
        at = nx;
    }
    if (k != count)
        return err_set(SOV_EFORMAT, "kvpage: %s list has %d blocks, counter says %d", name, k, count);
    return 0;
}

int kvpage_check(const kvpage *p)
{
    int32_t n_free = 0, n_used = 0, n_cached = 0, ev, ev_cached;
    for (int32_t b = 0; b < p->n; b++) {
        if (p->refs[b] < 0)
            return err_set(SOV_EFORMAT, "kvpage: block %d has refcount %d", b, p->refs[b]);
        if (p->flags[b] & ~(F_CACHED | F_EVICTABLE))
            return err_set(SOV_EFORMAT, "kvpage: block %d has flags %u", b, p->flags[b]);
        if (p->refs[b] > 0)
            n_used++;
        else if (p->flags[b] & F_CACHED)
            n_cached++;
        else
            n_free++;
    }
    if (n_free != p->n_free || n_used != p->n_used || n_cached != p->n_cached)
        return err_set(SOV_EFORMAT, "kvpage: counters free %d used %d cached %d, recount %d %d %d", p->n_free,
                       p->n_used, p->n_cached, n_free, n_used, n_cached);
    int rc = check_list(p, FREE(p), false, n_free, &ev, "free");
    if (!rc)
        rc = check_list(p, LRU(p), true, n_cached, &ev_cached, "LRU");
    if (rc)
        return rc;
    if (ev_cached != p->n_evictable)
        return err_set(SOV_EFORMAT, "kvpage: %d evictable cached blocks, counter says %d", ev_cached,
                       p->n_evictable);
    return 0;
}
