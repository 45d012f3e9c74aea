#include "prefix.h"

#include "../base/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Nodes are indexed by block id 0..n-1; ROOT(t) = n is the empty prefix. */
struct prefix {
    kvpage *pg;
    int32_t bt, n;
    int32_t *parent;   /* [n] parent node (ROOT for a first block); -1: no node */
    int32_t *depth;    /* [n] blocks before the node's */
    int32_t *n_child;  /* [n + 1] */
    uint64_t *hash;    /* [n] tok_hash of the node's tokens */
    int32_t *tok;      /* [n * bt] the node's tokens */
    int32_t *tab;      /* [mask + 1] node ids, -1 empty */
    uint32_t mask;
    uint64_t hash_keep; /* bits of tok_hash kept (all but in tests) */
    int32_t *scratch;  /* [n + 1] for prefix_check */
    bool registered;   /* made in full: the pool calls on_evict */
    prefix_stats st;
};

#define ROOT(t) ((t)->n)

static inline uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

/* Two token ids per multiply; the final mix spreads every bit. */
static uint64_t tok_hash(const prefix *t, const int32_t *tk)
{
    int32_t bt = t->bt, i = 0;
    uint64_t h = 0x243f6a8885a308d3ull ^ (uint64_t)bt;
    for (; i + 1 < bt; i += 2) {
        h ^= (uint64_t)(uint32_t)tk[i] | (uint64_t)(uint32_t)tk[i + 1] << 32;
        h *= 0x9fb21c651e98df25ull;
        h ^= h >> 29;
    }
    if (i < bt) {
        h ^= (uint32_t)tk[i];
        h *= 0x9fb21c651e98df25ull;
    }
    return mix64(h) & t->hash_keep;
}

static inline uint32_t home(const prefix *t, int32_t parent, uint64_t h)
{
    return (uint32_t)mix64(h ^ ((uint64_t)(uint32_t)parent * 0x9e3779b97f4a7c15ull)) & t->mask;
}

/* The child of `parent` whose tokens are tk (hash h), or -1. */
static int32_t find(const prefix *t, int32_t parent, uint64_t h, const int32_t *tk)
{
    for (uint32_t i = home(t, parent, h);; i = (i + 1) & t->mask) {
        int32_t x = t->tab[i];
        if (x < 0)
            return -1;
        if (t->parent[x] == parent && t->hash[x] == h &&
            !memcmp(t->tok + (size_t)x * t->bt, tk, sizeof *tk * (size_t)t->bt))
            return x;
    }
}

/* The table is at most half full, so a free slot is always found. */
static void tab_insert(prefix *t, int32_t x)
{
    uint32_t i = home(t, t->parent[x], t->hash[x]);
    while (t->tab[i] >= 0)
        i = (i + 1) & t->mask;
    t->tab[i] = x;
}

/* Removes node x (present) and shifts back the entries after it that would
 * otherwise be cut off from their home slot. */
static void tab_remove(prefix *t, int32_t x)
{
    uint32_t i = home(t, t->parent[x], t->hash[x]);
    while (t->tab[i] != x)
        i = (i + 1) & t->mask;
    for (uint32_t j = i;;) {
        j = (j + 1) & t->mask;
        int32_t y = t->tab[j];
        if (y < 0)
            break;
        uint32_t k = home(t, t->parent[y], t->hash[y]);
        /* y may move to the hole at i unless its home lies in (i, j] */
        bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
        if (!stays) {
            t->tab[i] = y;
            i = j;
        }
    }
    t->tab[i] = -1;
}

static void on_evict(void *ctx, int32_t b)
{
    prefix *t = ctx;
    if (b < 0 || b >= t->n || t->parent[b] < 0)
        return; /* not ours (the pool's user marked it cached itself) */
    if (t->n_child[b]) { /* only the tree sets its blocks' evictable marks */
        fprintf(stderr, "prefix: block %d evicted while its node has %d children\n", b, t->n_child[b]);
        abort();
    }
    tab_remove(t, b);
    int32_t p = t->parent[b];
    t->parent[b] = -1;
    if (--t->n_child[p] == 0 && p != ROOT(t))
        kvpage_set_evictable(t->pg, p, true);
    t->st.nodes--;
    t->st.evicted++;
}

int prefix_new(prefix **out, kvpage *pg, int32_t bt)
{
    *out = NULL;
    if (!pg || bt < 1 || bt > 65536)
        return err_set(SOV_EINVAL, "prefix: need a pool and 1 .. 65536 tokens per block (got %d)", bt);
    int32_t n = kvpage_stat(pg).total;
    prefix *t = calloc(1, sizeof *t);
    if (!t)
        goto fail;
    t->pg = pg;
    t->bt = bt;
    t->n = n;
    uint32_t cap = 2;
    while (cap < 2u * (uint32_t)n)
        cap <<= 1;
    t->mask = cap - 1;
    t->hash_keep = ~0ull;
    t->parent = malloc(sizeof *t->parent * (size_t)n);
    t->depth = calloc((size_t)n, sizeof *t->depth);
    t->n_child = calloc((size_t)n + 1, sizeof *t->n_child);
    t->hash = calloc((size_t)n, sizeof *t->hash);
    t->tok = calloc((size_t)n * (size_t)bt, sizeof *t->tok);
    t->tab = malloc(sizeof *t->tab * (size_t)cap);
    t->scratch = malloc(sizeof *t->scratch * ((size_t)n + 1));
    if (!t->parent || !t->depth || !t->n_child || !t->hash || !t->tok || !t->tab || !t->scratch)
        goto fail;
    memset(t->parent, 0xff, sizeof *t->parent * (size_t)n);
    memset(t->tab, 0xff, sizeof *t->tab * (size_t)cap);
    kvpage_on_evict(pg, on_evict, t);
    t->registered = true;
    *out = t;
    return 0;
fail:
    prefix_free(t);
    return err_set(SOV_ENOMEM, "prefix: cannot allocate the tree for %d blocks of %d tokens", n, bt);
}

void prefix_free(prefix *t)
{
    if (!t)
        return;
    if (t->registered) {
        for (int32_t b = 0; b < t->n; b++)
            if (t->parent[b] >= 0) {
                kvpage_set_evictable(t->pg, b, true);
                kvpage_set_cached(t->pg, b, false);
            }
        kvpage_on_evict(t->pg, NULL, NULL);
    }
    free(t->parent);
    free(t->depth);
    free(t->n_child);
    free(t->hash);
    free(t->tok);
    free(t->tab);
    free(t->scratch);
    free(t);
}

int32_t prefix_peek(const prefix *t, const int32_t *tokens, int32_t n, int32_t *blocks)
{
    int32_t cur = ROOT(t), k = 0;
    for (int32_t nb = n / t->bt; k < nb; k++) {
        const int32_t *tk = tokens + (size_t)k * t->bt;
        int32_t x = find(t, cur, tok_hash(t, tk), tk);
        if (x < 0)
            break;
        if (blocks)
            blocks[k] = x;
        cur = x;
    }
    return k;
}

int32_t prefix_match(prefix *t, const int32_t *tokens, int32_t n, int32_t *blocks)
{
    int32_t k = prefix_peek(t, tokens, n, blocks);
    for (int32_t i = 0; i < k; i++)
        kvpage_ref(t->pg, blocks[i]);
    t->st.lookups++;
    t->st.hit_blocks += k;
    return k;
}

int32_t prefix_insert(prefix *t, const int32_t *tokens, int32_t n, const int32_t *blocks)
{
    int32_t cur = ROOT(t), added = 0;
    for (int32_t i = 0, nb = n / t->bt; i < nb; i++) {
        const int32_t *tk = tokens + (size_t)i * t->bt;
        uint64_t h = tok_hash(t, tk);
        int32_t x = find(t, cur, h, tk);
        if (x >= 0) {
            cur = x;
            continue;
        }
        int32_t b = blocks[i];
        if (b < 0 || b >= t->n)
            return err_set(SOV_EINVAL, "prefix_insert: block %d (entry %d) out of range", b, i);
        if (t->parent[b] >= 0)
            return err_set(SOV_EINVAL, "prefix_insert: block %d (entry %d) already holds another prefix", b, i);
        if (kvpage_refs(t->pg, b) < 1)
            return err_set(SOV_EINVAL, "prefix_insert: block %d (entry %d) is not referenced", b, i);
        t->parent[b] = cur;
        t->depth[b] = cur == ROOT(t) ? 0 : t->depth[cur] + 1;
        t->hash[b] = h;
        t->n_child[b] = 0;
        memcpy(t->tok + (size_t)b * t->bt, tk, sizeof *tk * (size_t)t->bt);
        tab_insert(t, b);
        if (t->n_child[cur]++ == 0 && cur != ROOT(t))
            kvpage_set_evictable(t->pg, cur, false);
        kvpage_set_cached(t->pg, b, true);
        kvpage_set_evictable(t->pg, b, true);
        t->st.nodes++;
        t->st.inserted++;
        added++;
        cur = b;
    }
    return added;
}

int prefix_test_hash_bits(prefix *t, int bits)
{
    if (bits < 0 || bits > 64 || t->st.nodes)
        return err_set(SOV_EINVAL, "prefix_test_hash_bits: %d bits on a tree of %d nodes", bits, t->st.nodes);
    t->hash_keep = bits == 64 ? ~0ull : (1ull << bits) - 1;
    return 0;
}

prefix_stats prefix_stat(const prefix *t)
{
    return t->st;
}

bool prefix_node(const prefix *t, int32_t b, int32_t *parent, int32_t *depth, int32_t *n_child,
                 const int32_t **tokens)
{
    if (b < 0 || b >= t->n || t->parent[b] < 0)
        return false;
    if (parent)
        *parent = t->parent[b] == ROOT(t) ? -1 : t->parent[b];
    if (depth)
        *depth = t->depth[b];
    if (n_child)
        *n_child = t->n_child[b];
    if (tokens)
        *tokens = t->tok + (size_t)b * t->bt;
    return true;
}

int prefix_check(const prefix *t)
{
    int32_t *cnt = t->scratch, nodes = 0;
    memset(cnt, 0, sizeof *cnt * ((size_t)t->n + 1));
    for (int32_t b = 0; b < t->n; b++) {
        int32_t p = t->parent[b];
        if (p < 0)
            continue;
        nodes++;
        if (p > t->n || p == b || (p < t->n && t->parent[p] < 0))
            return err_set(SOV_EFORMAT, "prefix: node %d has parent %d, not a node", b, p);
        if (t->depth[b] != (p == ROOT(t) ? 0 : t->depth[p] + 1))
            return err_set(SOV_EFORMAT, "prefix: node %d at depth %d under parent %d", b, t->depth[b], p);
        const int32_t *tk = t->tok + (size_t)b * t->bt;
        if (t->hash[b] != tok_hash(t, tk))
            return err_set(SOV_EFORMAT, "prefix: node %d has a stale hash", b);
        if (find(t, p, t->hash[b], tk) != b)
            return err_set(SOV_EFORMAT, "prefix: node %d is not found under its parent", b);
        cnt[p]++;
        if (!kvpage_cached(t->pg, b))
            return err_set(SOV_EFORMAT, "prefix: node %d's block is not cached", b);
    }
    if (nodes != t->st.nodes)
        return err_set(SOV_EFORMAT, "prefix: %d nodes, counter says %d", nodes, t->st.nodes);
    for (int32_t b = 0; b <= t->n; b++) {
        if (b < t->n && t->parent[b] < 0)
            continue;
        if (cnt[b] != t->n_child[b])
            return err_set(SOV_EFORMAT, "prefix: node %d has %d children, counter says %d", b, cnt[b],
                           t->n_child[b]);
        if (b < t->n && kvpage_evictable(t->pg, b) != (cnt[b] == 0))
            return err_set(SOV_EFORMAT, "prefix: node %d with %d children is %sevictable", b, cnt[b],
                           cnt[b] ? "" : "not ");
    }
    int32_t in_tab = 0;
    for (uint32_t i = 0; i <= t->mask; i++) {
        int32_t x = t->tab[i];
        if (x < 0)
            continue;
        if (x >= t->n || t->parent[x] < 0)
            return err_set(SOV_EFORMAT, "prefix: table slot %u holds %d, not a node", i, x);
        in_tab++;
    }
    if (in_tab != nodes)
        return err_set(SOV_EFORMAT, "prefix: table holds %d entries for %d nodes", in_tab, nodes);
    return 0;
}
