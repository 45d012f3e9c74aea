/* gram: the matcher and the token mask (see gram.h; the parser is gbnf.c).
 *
 * A matcher state is a set of pushdown stacks. A stack is a chain of nodes
 * (element, parent): the element to match next in some alternative, and the
 * frame to return to when that alternative ends (NULL at the top level).
 * Nodes are hash-consed per state: one node per (element, parent), so equal
 * stacks are the same pointer and a set of stacks is a set of pointers.
 * Every stack of a state has a GBNF_CHARSET element on top, or is the empty
 * stack (the grammar is complete there). Expanding a reference pushes a
 * frame for the element after it, except when that is the end of the
 * alternative (a tail call: the child returns straight to the parent), so
 * right recursion such as ws ::= " " ws | keeps stacks flat. Expansion marks
 * the nodes it visits (epoch stamps), which deduplicates the result and
 * keeps ambiguous nullable rules from taking exponential time.
 *
 * Bytes become code points by UTF-8 decoding. While a character is
 * incomplete, the state keeps the interval of code points it can still
 * become and only the stacks whose character set meets that interval.
 *
 * Nodes live in chunked arenas. gram_accept_bytes adds to the state's arena;
 * when it has grown to several times what the live stacks use, the live
 * stacks are copied to a fresh arena (compaction), so memory stays bounded
 * over long generations. gram_mask works in a scratch arena and table that
 * are reset on every call, on top of the state's (read-only then); within a
 * call, each stack's successor set is computed once and cached in the node
 * (tagged with the call's number), so the trie walk is a loop of character
 * set tests and pointer unions.
 *
 * The walk also skips whole subtrees: at a node between characters, if
 * every character that occurs below leads the current set of stacks to one
 * same next set, and so on for as many characters as the longest piece
 * below has (or until a set repeats), then no byte below can tell the
 * tokens apart and all of them are allowed (no invalid UTF-8 below either).
 * Inside a JSON string, in a bounded repetition or in (letter | digit)*
 * that holds for most of the vocabulary. The sets met in one call are kept
 * as lsets with their characters grouped by the stacks that take them. */
#include "gram.h"

#include <stdlib.h>
#include <string.h>

#include "../base/err.h"
#include "gbnf.h"

#define CHUNK0 256
#define CHUNK_MAX 65536
#define COMPACT_MIN 32768 /* nodes an arena may hold before compaction is considered */

typedef struct gnode gnode;
struct gnode {
    gnode *parent;   /* frame to return to; NULL: the top level */
    int32_t elem;    /* next element (GBNF_CHARSET or GBNF_REF); -1: the empty stack */
    uint32_t mark;   /* visit stamp (gram_state.epoch) */
    uint32_t cache;  /* gram_mask call (gram_state.mask_id) for which succ is valid */
    int32_t n_succ;  /* successor stacks after matching this top's character */
    uint32_t succ;   /* ... at gram_state.succ.v[succ ..] */
    uint32_t hid;    /* hash of (elem, parent), for hashing sets of stacks */
};

typedef struct {
    gnode **chunk;
    int32_t n_chunk, cap_chunk;
    int32_t cur;   /* chunk in use */
    uint32_t used; /* nodes used in it */
    size_t total;  /* nodes handed out since the last reset */
} arena;

typedef struct {
    gnode **slot; /* open addressing, linear probing */
    size_t cap, n;
} ntab;

typedef struct {
    gnode **v;
    size_t n, cap;
} nvec;

/* UTF-8 decoding: need continuation bytes to come, bits so far; the
 * character will be one of [lo, hi]. need == 0: between characters. */
typedef struct {
    uint32_t need, bits, lo, hi;
} u8s;

typedef struct {
    size_t off, n; /* stacks at lv_set.v[off .. off + n) */
    u8s u;
    uint32_t h;  /* sum of the stacks' hid */
    int32_t lk;  /* between characters: the lset of these stacks if known
                  * (-1 not yet); inside a character: that of the level
                  * where it started */
} level;

/* A set of stacks met in a gram_mask call (lset), its characters grouped
 * by the subset of its stacks that take them (lgroup): all characters of a
 * group lead to the same next set. */
typedef struct {
    uint64_t bytes[2]; /* ASCII characters of the group */
    uint64_t m;        /* bit j: stack j of the set takes them */
    bool hi;           /* every code point from U+0080 is of the group */
    bool has_h;        /* nh, nn known */
    uint32_t nh, nn;   /* hid sum and size of the next set */
    int32_t next;      /* lset after one of them; -1 not known yet, -2 none */
} lgroup;

typedef struct {
    uint32_t h, n, off; /* stacks: lpool.v[off .. off + n) */
    uint32_t g0, ng;    /* groups: lgrp[g0 .. g0 + ng) */
    int32_t chain;      /* next lset in the same hash bucket */
    uint8_t grp[129];   /* group of each ASCII character, [128] of those
                         * from U+0080; NO_GRP: none takes it */
} lset;

#define NO_GRP 0xFF

#define MAX_LSETS 256
#define MAX_LSET_STACKS 64
#define LHASH 1024

struct gram_state {
    const gram *g;
    nvec set; /* the open stacks, distinct */
    u8s u;
    gnode empty; /* the empty stack */
    arena main, scr;
    ntab tab, stab; /* nodes of main / of scr (gram_mask only) */
    bool in_mask;
    uint32_t epoch, mask_id;
    size_t compact_at;
    nvec work;         /* expansion worklist */
    nvec ta, tb;       /* gram_accept_bytes' sets */
    nvec succ;         /* successor lists (gram_mask) */
    nvec lv_set;       /* the sets of the trie walk, level after level */
    level *lv;
    size_t cap_lv;
    lset *lsets;    /* (gram_mask) sets met, for skipping subtrees */
    int32_t n_lsets, cap_lsets;
    int32_t *lhash; /* LHASH buckets, allocated by the first gram_mask */
    nvec lpool, tset;
    lgroup *lgrp;
    uint32_t n_lgrp, cap_lgrp;
};

typedef struct {
    uint32_t end;   /* index after this node's subtree (pre-order layout) */
    uint32_t tok0;  /* tokens whose piece ends here: tok[tok0 .. tok0 + ntok) */
    uint32_t ntok;
    uint32_t depth; /* bytes from the root: this node's byte is piece[depth - 1] */
    uint32_t big;   /* index in gtrie.big for nodes with a large subtree, else NO_BIG */
    uint8_t byte;
} tnode;

#define NO_BIG UINT32_MAX
#define BIG_MIN 4 /* nodes below, for a tbig entry */

/* What lies below a node with a large subtree: the ASCII bytes (asc), any
 * byte from 0x80 (hi), any token that is not valid UTF-8 (bad), the longest
 * piece (maxd); its tokens are tok[k0 .. k1) (those ending at the node
 * first). */
typedef struct {
    uint64_t asc[2];
    uint32_t k0, k1;
    uint32_t maxd;
    bool hi, bad;
} tbig;

typedef struct {
    tnode *node;
    uint32_t n;
    int32_t *tok;
    uint32_t n_tok;
    uint32_t max_depth;
    tbig *big;
    uint32_t n_big;
} gtrie;

enum { TV_EOG = 1, TV_DIFF = 2 };

struct gram_vocab {
    const vocab *v;
    int32_t n, bos;
    uint8_t *flags;        /* TV_* per token */
    char *blob;            /* all pieces */
    uint32_t *off, *len;   /* piece after an ordinary token */
    uint32_t *soff, *slen; /* piece at the start / after BOS */
    int32_t *eog;
    int32_t n_eog;
    gtrie norm;  /* pieces of the tokens that are not EOG, non-empty */
    gtrie start; /* start pieces of the TV_DIFF tokens, non-empty */
};

static int nomem(void) { return err_set(SOV_ENOMEM, "grammar: out of memory"); }

/* ---- storage ---- */

static uint32_t chunk_size(int32_t i) { return i >= 8 ? CHUNK_MAX : (uint32_t)CHUNK0 << i; }

static gnode *arena_alloc(arena *a)
{
    if (a->n_chunk == 0 || a->used == chunk_size(a->cur)) {
        int32_t next = a->n_chunk == 0 ? 0 : a->cur + 1;
        if (next >= a->n_chunk) {
            if (a->n_chunk == a->cap_chunk) {
                int32_t nc = a->cap_chunk ? a->cap_chunk * 2 : 16;
                gnode **c = realloc(a->chunk, (size_t)nc * sizeof *c);
                if (!c)
                    return NULL;
                a->chunk = c;
                a->cap_chunk = nc;
            }
            gnode *c = malloc(chunk_size(next) * sizeof *c);
            if (!c)
                return NULL;
            a->chunk[a->n_chunk++] = c;
        }
        a->cur = next;
        a->used = 0;
    }
    a->total++;
    return &a->chunk[a->cur][a->used++];
}

static void arena_reset(arena *a)
{
    a->cur = 0;
    a->used = 0;
    a->total = 0;
}

static void arena_free(arena *a)
{
    for (int32_t i = 0; i < a->n_chunk; i++)
        free(a->chunk[i]);
    free(a->chunk);
    memset(a, 0, sizeof *a);
}

/* Clears the marks (and, with cache, the successor tags) of a's nodes. */
static void arena_unmark(arena *a, bool cache)
{
    if (a->n_chunk == 0)
        return;
    for (int32_t i = 0; i <= a->cur; i++) {
        uint32_t n = i < a->cur ? chunk_size(i) : a->used;
        for (uint32_t k = 0; k < n; k++) {
            if (cache)
                a->chunk[i][k].cache = 0;
            else
                a->chunk[i][k].mark = 0;
        }
    }
}

static inline size_t nhash(int32_t e, const gnode *p)
{
    uint64_t h = (uint64_t)(uintptr_t)p * 0x9E3779B97F4A7C15ull ^ (uint64_t)(uint32_t)e * 0xC2B2AE3D27D4EB4Full;
    h ^= h >> 29;
    h *= 0xBF58476D1CE4E5B9ull;
    h ^= h >> 32;
    return (size_t)h;
}

static inline gnode *ntab_find(const ntab *t, int32_t e, const gnode *p, size_t h)
{
    if (!t->cap)
        return NULL;
    for (size_t i = h & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
        gnode *n = t->slot[i];
        if (!n)
            return NULL;
        if (n->elem == e && n->parent == p)
            return n;
    }
}

/* Inserts n (absent from t); grows t first, so a failure leaves t as it was. */
static int ntab_put(ntab *t, gnode *n, size_t h)
{
    if (2 * (t->n + 1) > t->cap) {
        size_t nc = t->cap ? 2 * t->cap : 1024;
        gnode **s = calloc(nc, sizeof *s);
        if (!s)
            return nomem();
        for (size_t i = 0; i < t->cap; i++) {
            gnode *x = t->slot[i];
            if (!x)
                continue;
            size_t j = nhash(x->elem, x->parent) & (nc - 1);
            while (s[j])
                j = (j + 1) & (nc - 1);
            s[j] = x;
        }
        free(t->slot);
        t->slot = s;
        t->cap = nc;
    }
    size_t i = h & (t->cap - 1);
    while (t->slot[i])
        i = (i + 1) & (t->cap - 1);
    t->slot[i] = n;
    t->n++;
    return 0;
}

/* Empties t; a table much larger than its last use shrinks. */
static void ntab_clear(ntab *t)
{
    if (t->cap > 4096 && t->n * 16 < t->cap) {
        gnode **s = calloc(t->cap / 4, sizeof *s);
        if (s) {
            free(t->slot);
            t->slot = s;
            t->cap /= 4;
            t->n = 0;
            return;
        }
    }
    if (t->cap)
        memset(t->slot, 0, t->cap * sizeof *t->slot);
    t->n = 0;
}

static void ntab_free(ntab *t)
{
    free(t->slot);
    memset(t, 0, sizeof *t);
}

static int nvec_reserve(nvec *a, size_t need)
{
    if (need <= a->cap)
        return 0;
    size_t nc = a->cap ? a->cap : 64;
    while (nc < need)
        nc *= 2;
    gnode **v = realloc(a->v, nc * sizeof *v);
    if (!v)
        return nomem();
    a->v = v;
    a->cap = nc;
    return 0;
}

static inline int nvec_push(nvec *a, gnode *x)
{
    if (a->n == a->cap) {
        int rc = nvec_reserve(a, a->n + 1);
        if (rc)
            return rc;
    }
    a->v[a->n++] = x;
    return 0;
}

/* Pointer -> pointer map, for copying stacks between arenas. */
typedef struct {
    const gnode **key;
    gnode **val;
    size_t cap, n;
} pmap;

static inline size_t phash(const gnode *p) { return nhash(0x5bd1e995, p); }

static gnode *pmap_get(const pmap *m, const gnode *k)
{
    if (!m->cap)
        return NULL;
    for (size_t i = phash(k) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (!m->key[i])
            return NULL;
        if (m->key[i] == k)
            return m->val[i];
    }
}

static int pmap_put(pmap *m, const gnode *k, gnode *v)
{
    if (2 * (m->n + 1) > m->cap) {
        size_t nc = m->cap ? 2 * m->cap : 256;
        const gnode **nk = calloc(nc, sizeof *nk);
        gnode **nv = calloc(nc, sizeof *nv);
        if (!nk || !nv) {
            free(nk);
            free(nv);
            return nomem();
        }
        for (size_t i = 0; i < m->cap; i++) {
            if (!m->key[i])
                continue;
            size_t j = phash(m->key[i]) & (nc - 1);
            while (nk[j])
                j = (j + 1) & (nc - 1);
            nk[j] = m->key[i];
            nv[j] = m->val[i];
        }
        free(m->key);
        free(m->val);
        m->key = nk;
        m->val = nv;
        m->cap = nc;
    }
    size_t i = phash(k) & (m->cap - 1);
    while (m->key[i])
        i = (i + 1) & (m->cap - 1);
    m->key[i] = k;
    m->val[i] = v;
    m->n++;
    return 0;
}

/* ---- stacks ---- */

/* The node (e, p): from the state's table, else (in gram_mask) from the
 * scratch table; created where the current operation allocates. NULL: out
 * of memory. */
static gnode *intern(gram_state *s, int32_t e, gnode *p)
{
    size_t h = nhash(e, p);
    gnode *n = ntab_find(&s->tab, e, p, h);
    if (n)
        return n;
    ntab *t = &s->tab;
    arena *a = &s->main;
    if (s->in_mask) {
        if ((n = ntab_find(&s->stab, e, p, h)))
            return n;
        t = &s->stab;
        a = &s->scr;
    }
    if (!(n = arena_alloc(a)))
        return NULL;
    *n = (gnode){p, e, 0, 0, 0, 0, (uint32_t)(h >> 32) | 1};
    if (ntab_put(t, n, h))
        return NULL;
    return n;
}

static void new_epoch(gram_state *s)
{
    if (++s->epoch == 0) { /* wrapped: clear every stamp */
        arena_unmark(&s->main, false);
        arena_unmark(&s->scr, false);
        s->empty.mark = 0;
        s->epoch = 1;
    }
}

/* Queues the stack (e, p) for expansion; an END pops to p. */
static inline int push_pair(gram_state *s, int32_t e, gnode *p)
{
    gnode *n;
    if (s->g->el[e].type == GBNF_END)
        n = p ? p : &s->empty;
    else if (!(n = intern(s, e, p)))
        return nomem();
    return nvec_push(&s->work, n);
}

/* Expands the queued stacks until each has a character set on top (or is
 * empty), adding those not yet stamped with the current epoch to out. */
static int run_work(gram_state *s, nvec *out)
{
    const gram *g = s->g;
    uint32_t E = s->epoch;
    int rc = 0;
    while (s->work.n) {
        gnode *n = s->work.v[--s->work.n];
        if (n->mark == E)
            continue;
        n->mark = E;
        if (n == &s->empty || g->el[n->elem].type == GBNF_CHARSET) {
            if ((rc = nvec_push(out, n)))
                break;
            continue;
        }
        int32_t r = g->el[n->elem].arg, nx = n->elem + 1;
        gnode *ret = n->parent; /* tail call when the reference ends its alternative */
        if (g->el[nx].type != GBNF_END && !(ret = intern(s, nx, n->parent))) {
            rc = nomem();
            break;
        }
        for (int32_t a = g->rule_alt[r]; a < g->rule_alt[r + 1]; a++)
            if ((rc = push_pair(s, g->alt_first[a], ret)))
                break;
        if (rc)
            break;
    }
    s->work.n = 0;
    return rc;
}

static inline const gbnf_cset *top_cs(const gram *g, const gnode *n) { return &g->cs[g->el[n->elem].arg]; }

/* UTF-8: the state after byte b. Returns 1 with *cp when a character is
 * complete, 0 when it is still partial (*v says what it can become), -1
 * when b cannot continue valid UTF-8 (stray continuation byte, overlong
 * form, surrogate, beyond U+10FFFF). */
static inline int u8_step(u8s u, unsigned b, u8s *v, uint32_t *cp)
{
    uint32_t lo, hi;
    if (u.need == 0) {
        if (b < 0x80) {
            *cp = b;
            *v = (u8s){0, 0, 0, 0};
            return 1;
        }
        if ((b & 0xE0) == 0xC0)
            u.need = 1, u.bits = b & 0x1F, lo = 0x80, hi = 0x7FF;
        else if ((b & 0xF0) == 0xE0)
            u.need = 2, u.bits = b & 0x0F, lo = 0x800, hi = 0xFFFF;
        else if ((b & 0xF8) == 0xF0)
            u.need = 3, u.bits = b & 0x07, lo = 0x10000, hi = 0x10FFFF;
        else
            return -1;
    } else {
        if ((b & 0xC0) != 0x80)
            return -1;
        u.need--;
        u.bits = (u.bits << 6) | (b & 0x3F);
        lo = u.lo, hi = u.hi;
    }
    uint32_t sh = 6 * u.need;
    uint32_t rlo = u.bits << sh, rhi = rlo | ((1u << sh) - 1);
    if (rlo > lo)
        lo = rlo;
    if (rhi < hi)
        hi = rhi;
    if (lo >= 0xD800 && lo <= 0xDFFF)
        lo = 0xE000;
    if (hi >= 0xD800 && hi <= 0xDFFF)
        hi = 0xD7FF;
    if (lo > hi)
        return -1;
    if (u.need == 0) {
        *cp = u.bits;
        *v = (u8s){0, 0, 0, 0};
        return 1;
    }
    u.lo = lo;
    u.hi = hi;
    *v = u;
    return 0;
}

/* The stacks after byte b from src (state u) into dst (state *v), expanding
 * directly in the state's arena. dst empty: b cannot follow (*bad_utf8 when
 * it is not valid UTF-8 here). */
static int step_accept(gram_state *s, const nvec *src, u8s u, unsigned b, nvec *dst, u8s *v, bool *bad_utf8)
{
    const gram *g = s->g;
    uint32_t cp;
    dst->n = 0;
    int k = u8_step(u, b, v, &cp);
    *bad_utf8 = k < 0;
    if (k < 0)
        return 0;
    int rc;
    if (k == 0) {
        if ((rc = nvec_reserve(dst, src->n)))
            return rc;
        for (size_t i = 0; i < src->n; i++) {
            gnode *t = src->v[i];
            if (t != &s->empty && gbnf_cset_meets(g, top_cs(g, t), v->lo, v->hi))
                dst->v[dst->n++] = t;
        }
        return 0;
    }
    new_epoch(s);
    s->work.n = 0;
    for (size_t i = 0; i < src->n; i++) {
        gnode *t = src->v[i];
        if (t != &s->empty && gbnf_cset_has(g, top_cs(g, t), cp) && (rc = push_pair(s, t->elem + 1, t->parent))) {
            s->work.n = 0;
            return rc;
        }
    }
    return run_work(s, dst);
}

/* Copies the stacks src[0..n) (nodes of another arena; their empty stack
 * is old_empty) into s's arena and table, the copies into dst. */
static int transplant(gram_state *s, gnode *const *src, size_t n, const gnode *old_empty, nvec *dst)
{
    pmap m = {0};
    nvec chain = {0};
    int rc = 0;
    dst->n = 0;
    if ((rc = nvec_reserve(dst, n)))
        goto out;
    for (size_t i = 0; i < n; i++) {
        const gnode *t = src[i];
        if (t == old_empty) {
            dst->v[dst->n++] = &s->empty;
            continue;
        }
        chain.n = 0;
        const gnode *x = t;
        gnode *np = NULL;
        while (x && !(np = pmap_get(&m, x))) {
            if ((rc = nvec_push(&chain, (gnode *)x)))
                goto out;
            x = x->parent;
        }
        for (size_t k = chain.n; k-- > 0;) {
            const gnode *o = chain.v[k];
            gnode *nn = intern(s, o->elem, np);
            if (!nn) {
                rc = nomem();
                goto out;
            }
            if ((rc = pmap_put(&m, o, nn)))
                goto out;
            np = nn;
        }
        dst->v[dst->n++] = np;
    }
out:
    free(m.key);
    free(m.val);
    free(chain.v);
    return rc;
}

/* Copies the live stacks to a fresh arena when the current one has grown
 * well beyond them. A failure only leaves the old arena in use. */
static void maybe_compact(gram_state *s)
{
    if (s->main.total <= s->compact_at)
        return;
    arena old_a = s->main;
    ntab old_t = s->tab;
    memset(&s->main, 0, sizeof s->main);
    memset(&s->tab, 0, sizeof s->tab);
    if (transplant(s, s->set.v, s->set.n, &s->empty, &s->ta)) {
        arena_free(&s->main);
        ntab_free(&s->tab);
        s->main = old_a;
        s->tab = old_t;
        s->compact_at = 2 * s->main.total;
        return;
    }
    nvec t = s->set;
    s->set = s->ta;
    s->ta = t;
    arena_free(&old_a);
    ntab_free(&old_t);
    s->compact_at = 4 * s->main.total > COMPACT_MIN ? 4 * s->main.total : COMPACT_MIN;
}

/* ---- public: grammar and matcher ---- */

int gram_parse(gram **out, const char *src, size_t len) { return gbnf_compile(out, src, len); }

void gram_free(gram *g) { gbnf_free(g); }

int gram_n_rules(const gram *g) { return g ? g->n_rules : 0; }

static gram_state *state_alloc(const gram *g)
{
    gram_state *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->g = g;
    s->empty.elem = -1;
    s->empty.hid = 0x2545F491;
    s->compact_at = COMPACT_MIN;
    return s;
}

int gram_state_new(gram_state **out, const gram *g)
{
    *out = NULL;
    int rc;
    gram_state *s = state_alloc(g);
    if (!s)
        return nomem();
    new_epoch(s);
    for (int32_t a = g->rule_alt[g->root]; a < g->rule_alt[g->root + 1]; a++)
        if ((rc = push_pair(s, g->alt_first[a], NULL)))
            goto fail;
    if ((rc = run_work(s, &s->set)))
        goto fail;
    *out = s;
    return 0;
fail:
    gram_state_free(s);
    return rc;
}

void gram_state_free(gram_state *s)
{
    if (!s)
        return;
    arena_free(&s->main);
    arena_free(&s->scr);
    ntab_free(&s->tab);
    ntab_free(&s->stab);
    free(s->set.v);
    free(s->work.v);
    free(s->ta.v);
    free(s->tb.v);
    free(s->succ.v);
    free(s->lv_set.v);
    free(s->lv);
    free(s->lpool.v);
    free(s->tset.v);
    free(s->lgrp);
    free(s->lsets);
    free(s->lhash);
    free(s);
}

int gram_state_clone(gram_state **out, const gram_state *s)
{
    *out = NULL;
    gram_state *d = state_alloc(s->g);
    if (!d)
        return nomem();
    d->u = s->u;
    int rc = transplant(d, s->set.v, s->set.n, &s->empty, &d->set);
    if (rc) {
        gram_state_free(d);
        return rc;
    }
    *out = d;
    return 0;
}

int gram_accept_bytes(gram_state *s, const char *p, size_t n)
{
    if (n == 0)
        return 0;
    const nvec *src = &s->set;
    nvec *dst = &s->ta;
    u8s u = s->u, v;
    for (size_t i = 0; i < n; i++) {
        bool bad;
        unsigned b = (unsigned char)p[i];
        int rc = step_accept(s, src, u, b, dst, &v, &bad);
        if (rc)
            return rc;
        if (dst->n == 0) {
            if (bad)
                return err_set(SOV_EINVAL, "grammar: byte %zu of %zu (0x%02X) is not valid UTF-8 here", i + 1, n, b);
            return err_set(SOV_EINVAL, "grammar: byte %zu of %zu (0x%02X) does not continue the grammar", i + 1, n,
                           b);
        }
        u = v;
        src = dst;
        dst = dst == &s->ta ? &s->tb : &s->ta;
    }
    nvec *res = (nvec *)src, t = s->set;
    s->set = *res;
    *res = t;
    s->u = u;
    maybe_compact(s);
    return 0;
}

bool gram_can_end(const gram_state *s)
{
    if (s->u.need)
        return false;
    for (size_t i = 0; i < s->set.n; i++)
        if (s->set.v[i] == &s->empty)
            return true;
    return false;
}

bool gram_done(const gram_state *s)
{
    return s->u.need == 0 && s->set.n == 1 && s->set.v[0] == &s->empty;
}

/* ---- the mask ---- */

/* t's successor stacks (after its character matched), cached for this
 * gram_mask call. */
static int compute_succ(gram_state *s, gnode *t)
{
    new_epoch(s);
    s->work.n = 0;
    size_t off = s->succ.n;
    int rc = push_pair(s, t->elem + 1, t->parent);
    if (!rc)
        rc = run_work(s, &s->succ);
    if (rc) {
        s->work.n = 0;
        s->succ.n = off;
        return rc;
    }
    t->succ = (uint32_t)off;
    t->n_succ = (int32_t)(s->succ.n - off);
    t->cache = s->mask_id;
    return 0;
}

/* Level `to` = level `from` after byte b; its stacks are appended to
 * lv_set (which must end where from's do). */
static int mask_step(gram_state *s, const level *from, unsigned b, level *to)
{
    const gram *g = s->g;
    uint32_t cp;
    int rc;
    to->off = s->lv_set.n;
    to->n = 0;
    int k = u8_step(from->u, b, &to->u, &cp);
    if (k < 0)
        return 0;
    if (k == 0) {
        if ((rc = nvec_reserve(&s->lv_set, s->lv_set.n + from->n)))
            return rc;
        gnode **v = s->lv_set.v;
        size_t m = s->lv_set.n;
        uint32_t h = 0;
        for (size_t i = 0; i < from->n; i++) {
            gnode *t = v[from->off + i];
            if (t != &s->empty && gbnf_cset_meets(g, top_cs(g, t), to->u.lo, to->u.hi)) {
                v[m++] = t;
                h += t->hid;
            }
        }
        to->n = m - to->off;
        to->h = h;
        s->lv_set.n = m;
        return 0;
    }
    size_t need = 0;
    for (size_t i = 0; i < from->n; i++) {
        gnode *t = s->lv_set.v[from->off + i];
        if (t == &s->empty || !gbnf_cset_has(g, top_cs(g, t), cp))
            continue;
        if (t->cache != s->mask_id && (rc = compute_succ(s, t)))
            return rc;
        need += (size_t)t->n_succ;
    }
    if (!need)
        return 0;
    if ((rc = nvec_reserve(&s->lv_set, s->lv_set.n + need)))
        return rc;
    new_epoch(s);
    uint32_t E = s->epoch;
    gnode **v = s->lv_set.v, **sv = s->succ.v;
    size_t m = s->lv_set.n;
    uint32_t h = 0;
    for (size_t i = 0; i < from->n; i++) {
        gnode *t = v[from->off + i];
        if (t == &s->empty || !gbnf_cset_has(g, top_cs(g, t), cp))
            continue;
        for (int32_t j = 0; j < t->n_succ; j++) {
            gnode *x = sv[t->succ + (uint32_t)j];
            if (x->mark != E) {
                x->mark = E;
                v[m++] = x;
                h += x->hid;
            }
        }
    }
    to->n = m - to->off;
    to->h = h;
    s->lv_set.n = m;
    return 0;
}

/* The lset holding exactly the stacks v[0..n) (hid sum h), or -1. */
static int32_t lset_find(gram_state *s, gnode *const *v, size_t n, uint32_t h)
{
    for (int32_t k = s->lhash[h & (LHASH - 1)]; k >= 0; k = s->lsets[k].chain) {
        const lset *e = &s->lsets[k];
        if (e->h != h || e->n != n)
            continue;
        new_epoch(s);
        uint32_t E = s->epoch;
        for (size_t j = 0; j < n; j++)
            v[j]->mark = E;
        bool same = true;
        for (uint32_t j = 0; j < e->n && same; j++)
            same = s->lpool.v[e->off + j]->mark == E;
        if (same)
            return k;
    }
    return -1;
}

/* A new lset for the stacks v[0..n) (not from lpool); *k = -1 when the
 * set is too large or the table full. */
static int lset_make(gram_state *s, gnode *const *v, size_t n, uint32_t h, int32_t *k)
{
    const gram *g = s->g;
    *k = -1;
    if (s->n_lsets == MAX_LSETS || n > MAX_LSET_STACKS)
        return 0;
    int rc;
    if (s->n_lsets == s->cap_lsets) {
        int32_t nc = s->cap_lsets ? 2 * s->cap_lsets : 16;
        lset *p = realloc(s->lsets, (size_t)nc * sizeof *p);
        if (!p)
            return nomem();
        s->lsets = p;
        s->cap_lsets = nc;
    }
    if ((rc = nvec_reserve(&s->lpool, s->lpool.n + n)))
        return rc;
    if (s->cap_lgrp - s->n_lgrp < 129) {
        uint32_t nc = s->cap_lgrp ? 2 * s->cap_lgrp : 1024;
        lgroup *p = realloc(s->lgrp, nc * sizeof *p);
        if (!p)
            return nomem();
        s->lgrp = p;
        s->cap_lgrp = nc;
    }
    lset *e = &s->lsets[s->n_lsets];
    e->h = h;
    e->n = (uint32_t)n;
    e->off = (uint32_t)s->lpool.n;
    e->g0 = s->n_lgrp;
    e->ng = 0;
    memcpy(s->lpool.v + s->lpool.n, v, n * sizeof *v);
    s->lpool.n += n;
    lgroup *G = s->lgrp + e->g0;
    uint64_t M[129];
    memset(M, 0, sizeof M);
    bool hi_ok = true;
    for (size_t j = 0; j < n; j++) {
        if (v[j] == &s->empty)
            continue;
        const gbnf_cset *c = top_cs(g, v[j]);
        uint64_t bit = (uint64_t)1 << j;
        for (int w = 0; w < 2; w++)
            for (uint64_t r = c->ascii[w]; r; r &= r - 1)
                M[64 * w + __builtin_ctzll(r)] |= bit;
        if (c->hi == GBNF_HI_ALL)
            M[128] |= bit;
        else if (c->hi == GBNF_HI_SOME)
            hi_ok = false;
    }
    if (!hi_ok)
        M[128] = 0;
    uint32_t q = 0;
    for (uint32_t b = 0; b <= 128; b++) {
        uint64_t m = M[b];
        e->grp[b] = NO_GRP;
        if (!m)
            continue;
        if (q >= e->ng || G[q].m != m) {
            q = 0;
            while (q < e->ng && G[q].m != m)
                q++;
            if (q == e->ng) {
                G[q] = (lgroup){{0, 0}, m, false, false, 0, 0, -1};
                e->ng++;
            }
        }
        if (b < 128)
            G[q].bytes[b >> 6] |= (uint64_t)1 << (b & 63);
        else
            G[q].hi = true;
        e->grp[b] = (uint8_t)q;
    }
    s->n_lgrp += e->ng;
    uint32_t bucket = h & (LHASH - 1);
    e->chain = s->lhash[bucket];
    s->lhash[bucket] = s->n_lsets;
    *k = s->n_lsets++;
    return 0;
}

/* The set after a character of group q of lset k into tset; its hid sum
 * and size into the group. */
static int lset_union(gram_state *s, int32_t k, uint32_t q)
{
    int rc;
    uint32_t gi = s->lsets[k].g0 + q;
    uint64_t m = s->lgrp[gi].m;
    uint32_t off = s->lsets[k].off;
    for (uint64_t r = m; r; r &= r - 1) {
        gnode *t = s->lpool.v[off + (uint32_t)__builtin_ctzll(r)];
        if (t->cache != s->mask_id && (rc = compute_succ(s, t)))
            return rc;
    }
    new_epoch(s);
    uint32_t E = s->epoch, h = 0;
    s->tset.n = 0;
    for (uint64_t r = m; r; r &= r - 1) {
        const gnode *t = s->lpool.v[off + (uint32_t)__builtin_ctzll(r)];
        for (int32_t j = 0; j < t->n_succ; j++) {
            gnode *x = s->succ.v[t->succ + (uint32_t)j];
            if (x->mark != E) {
                x->mark = E;
                h += x->hid;
                if ((rc = nvec_push(&s->tset, x)))
                    return rc;
            }
        }
    }
    s->lgrp[gi].nh = h;
    s->lgrp[gi].nn = (uint32_t)s->tset.n;
    s->lgrp[gi].has_h = true;
    return 0;
}

/* *next = the lset after a character of group q of lset k (-1: none). */
static int lset_next(gram_state *s, int32_t k, uint32_t q, int32_t *next)
{
    int rc;
    uint32_t gi = s->lsets[k].g0 + q;
    if (s->lgrp[gi].next != -1) {
        *next = s->lgrp[gi].next < 0 ? -1 : s->lgrp[gi].next;
        return 0;
    }
    if ((rc = lset_union(s, k, q)))
        return rc;
    uint32_t h = s->lgrp[gi].nh;
    int32_t nk = lset_find(s, s->tset.v, s->tset.n, h);
    if (nk < 0 && (rc = lset_make(s, s->tset.v, s->tset.n, h, &nk)))
        return rc;
    s->lgrp[gi].next = nk >= 0 ? nk : -2;
    *next = nk;
    return 0;
}

/* *all = whether every token below node b is allowed from level l (between
 * characters): no token there is invalid UTF-8, and for each of the next
 * maxd characters, all characters that occur below lead the set of
 * stacks to one same set (which holds when a set keeps itself, as inside a
 * string, and in bounded repetitions such as [a-z]{0,100}). */
static int subtree_all(gram_state *s, const tbig *b, level *l, uint32_t d, bool *all)
{
    *all = false;
    if (b->bad)
        return 0;
    int32_t k = l->lk;
    int rc;
    if (k < 0) {
        gnode *const *v = s->lv_set.v + l->off;
        k = lset_find(s, v, l->n, l->h);
        if (k < 0 && (rc = lset_make(s, v, l->n, l->h, &k)))
            return rc;
        if (k < 0)
            return 0;
        l->lk = k;
    }
    for (uint32_t step = 0; step < d; step++) {
        /* the groups that characters below fall in must all lead to the
         * same set: compared by hash first, then as lsets */
        uint64_t cov0 = 0, cov1 = 0;
        bool hic = false, first = true;
        uint32_t ch = 0, cn = 0;
        for (uint32_t q = 0; q < s->lsets[k].ng; q++) {
            const lgroup *G = &s->lgrp[s->lsets[k].g0 + q];
            if (!(G->bytes[0] & b->asc[0]) && !(G->bytes[1] & b->asc[1]) && !(b->hi && G->hi))
                continue;
            cov0 |= G->bytes[0];
            cov1 |= G->bytes[1];
            hic |= G->hi;
            if (!G->has_h && (rc = lset_union(s, k, q)))
                return rc;
            G = &s->lgrp[s->lsets[k].g0 + q];
            if (first) {
                ch = G->nh, cn = G->nn, first = false;
            } else if (G->nh != ch || G->nn != cn) {
                return 0;
            }
        }
        if ((b->asc[0] & ~cov0) || (b->asc[1] & ~cov1) || (b->hi && !hic) || first)
            return 0;
        int32_t common = -1;
        for (uint32_t q = 0; q < s->lsets[k].ng; q++) {
            const lgroup *G = &s->lgrp[s->lsets[k].g0 + q];
            if (!(G->bytes[0] & b->asc[0]) && !(G->bytes[1] & b->asc[1]) && !(b->hi && G->hi))
                continue;
            int32_t nx;
            if ((rc = lset_next(s, k, q, &nx)))
                return rc;
            if (nx < 0 || (common >= 0 && nx != common))
                return 0;
            common = nx;
        }
        if (common == k) /* a fixed point: the same for any length */
            break;
        k = common;
    }
    *all = true;
    return 0;
}

/* Walks trie tr from the state's stacks, setting allowed[] for the tokens
 * whose piece continues them (those flagged TV_DIFF skipped when skip). */
static int walk(gram_state *s, const gtrie *tr, const uint8_t *flags, bool skip, uint8_t *allowed, int *count)
{
    if (tr->n == 0)
        return 0;
    if (s->cap_lv < (size_t)tr->max_depth + 1) {
        level *l = realloc(s->lv, ((size_t)tr->max_depth + 1) * sizeof *l);
        if (!l)
            return nomem();
        s->lv = l;
        s->cap_lv = (size_t)tr->max_depth + 1;
    }
    int rc;
    s->lv_set.n = 0;
    if ((rc = nvec_reserve(&s->lv_set, s->set.n)))
        return rc;
    if (s->set.n)
        memcpy(s->lv_set.v, s->set.v, s->set.n * sizeof *s->set.v);
    s->lv_set.n = s->set.n;
    uint32_t h0 = 0;
    for (size_t k = 0; k < s->set.n; k++)
        h0 += s->set.v[k]->hid;
    s->lv[0] = (level){0, s->set.n, s->u, h0, -1};
    for (uint32_t i = 0; i < tr->n;) {
        const tnode *nd = &tr->node[i];
        const level *from = &s->lv[nd->depth - 1];
        level *to = &s->lv[nd->depth];
        s->lv_set.n = from->off + from->n;
        if ((rc = mask_step(s, from, nd->byte, to)))
            return rc;
        if (to->n == 0) {
            i = nd->end;
            continue;
        }
        /* the lset of the new level, when the one before knows it */
        to->lk = from->lk;
        if (to->u.need == 0) {
            uint8_t q = from->lk < 0 ? NO_GRP : s->lsets[from->lk].grp[from->u.need ? 128 : nd->byte];
            to->lk = q == NO_GRP ? -1 : s->lgrp[s->lsets[from->lk].g0 + q].next;
            if (to->lk < 0)
                to->lk = -1;
        }
        for (uint32_t k = 0; k < nd->ntok; k++) {
            int32_t t = tr->tok[nd->tok0 + k];
            if (skip && (flags[t] & TV_DIFF))
                continue;
            allowed[t] = 1;
            (*count)++;
        }
        /* where the set cannot tell the characters below apart, all tokens
         * below are in */
        if (nd->big != NO_BIG && to->u.need == 0) {
            const tbig *b = &tr->big[nd->big];
            bool all;
            if ((rc = subtree_all(s, b, to, b->maxd - nd->depth, &all)))
                return rc;
            if (all) {
                for (uint32_t k = b->k0 + nd->ntok; k < b->k1; k++) {
                    int32_t t = tr->tok[k];
                    if (skip && (flags[t] & TV_DIFF))
                        continue;
                    allowed[t] = 1;
                    (*count)++;
                }
                i = nd->end;
                continue;
            }
        }
        i++;
    }
    return 0;
}

int gram_mask(gram_state *s, const gram_vocab *tv, int32_t prev, uint8_t *allowed)
{
    memset(allowed, 0, (size_t)tv->n);
    bool start = prev < 0 || prev == tv->bos;
    s->in_mask = true;
    if (++s->mask_id == 0) {
        arena_unmark(&s->main, true);
        s->mask_id = 1;
    }
    arena_reset(&s->scr);
    ntab_clear(&s->stab);
    s->succ.n = 0;
    s->n_lsets = 0;
    s->lpool.n = 0;
    s->n_lgrp = 0;
    if (!s->lhash && !(s->lhash = malloc(LHASH * sizeof *s->lhash))) {
        s->in_mask = false;
        return nomem();
    }
    memset(s->lhash, 0xff, LHASH * sizeof *s->lhash);
    int count = 0;
    int rc = walk(s, &tv->norm, tv->flags, start, allowed, &count);
    if (!rc && start)
        rc = walk(s, &tv->start, tv->flags, false, allowed, &count);
    s->in_mask = false;
    if (rc) {
        memset(allowed, 0, (size_t)tv->n);
        return rc;
    }
    if (gram_can_end(s))
        for (int32_t i = 0; i < tv->n_eog; i++) {
            allowed[tv->eog[i]] = 1;
            count++;
        }
    return count;
}

int gram_accept_token(gram_state *s, const gram_vocab *tv, int32_t prev, int32_t tok)
{
    if (tok < 0 || tok >= tv->n)
        return err_set(SOV_EINVAL, "grammar: token id %d out of range (n_vocab %d)", tok, tv->n);
    if (tv->flags[tok] & TV_EOG) {
        if (gram_can_end(s))
            return 0;
        return err_set(SOV_EINVAL, "grammar: end-of-generation token %d before the grammar is complete", tok);
    }
    bool start = (prev < 0 || prev == tv->bos) && (tv->flags[tok] & TV_DIFF);
    uint32_t off = start ? tv->soff[tok] : tv->off[tok], len = start ? tv->slen[tok] : tv->len[tok];
    if (len == 0)
        return err_set(SOV_EINVAL, "grammar: token %d has no text, never allowed by a grammar", tok);
    int rc = gram_accept_bytes(s, tv->blob + off, len);
    if (rc == SOV_EINVAL)
        return err_set(SOV_EINVAL, "grammar: token %d (\"%.*s\") does not continue the grammar", tok,
                       (int)(len > 40 ? 40 : len), tv->blob + off);
    return rc;
}

/* ---- the vocabulary trie ---- */

typedef struct {
    const char *p;
    uint32_t len;
    int32_t id;
} tentry;

static int cmp_entry(const void *a, const void *b)
{
    const tentry *x = a, *y = b;
    uint32_t m = x->len < y->len ? x->len : y->len;
    int c = m ? memcmp(x->p, y->p, m) : 0;
    if (c)
        return c;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* Whether p[0..n) is valid UTF-8, a partial last character allowed. */
static bool utf8_prefix_ok(const char *p, uint32_t n)
{
    u8s u = {0, 0, 0, 0}, v;
    uint32_t cp;
    for (uint32_t i = 0; i < n; i++) {
        if (u8_step(u, (unsigned char)p[i], &v, &cp) < 0)
            return false;
        u = v;
    }
    return true;
}

/* Builds a pre-order trie of the pieces e[0..n) (sorted here): a node's
 * subtree is [i, end), children in byte order, so a walk is one loop; the
 * tokens of a subtree are a run of tok[]. Nodes with large subtrees get a
 * tbig summary of what lies below them. */
static int trie_build(gtrie *t, tentry *e, uint32_t n)
{
    memset(t, 0, sizeof *t);
    if (n == 0)
        return 0;
    int rc = 0;
    qsort(e, n, sizeof *e, cmp_entry);
    uint32_t maxlen = 0;
    size_t total = 0;
    for (uint32_t k = 0; k < n; k++) {
        if (e[k].len > maxlen)
            maxlen = e[k].len;
        total += e[k].len;
    }
    uint32_t *path = NULL, *parent = NULL, *kc = NULL;
    uint64_t *asc = NULL;
    uint32_t *maxd = NULL;
    uint8_t *fl = NULL; /* 1: a byte from 0x80 below, 2: a bad token below, 4: a bad token ends here */
    if (total > UINT32_MAX - 1) {
        rc = err_set(SOV_ENOMEM, "grammar: vocabulary pieces too large (%zu bytes)", total);
        goto fail;
    }
    path = malloc(((size_t)maxlen + 1) * sizeof *path);
    parent = malloc(total * sizeof *parent);
    kc = malloc(total * sizeof *kc);
    asc = calloc(2 * total, sizeof *asc);
    fl = calloc(total, 1);
    maxd = malloc(total * sizeof *maxd);
    t->node = malloc(total * sizeof *t->node); /* at most one node per byte */
    t->tok = malloc((size_t)n * sizeof *t->tok);
    if (!path || !parent || !kc || !asc || !fl || !maxd || !t->node || !t->tok) {
        rc = nomem();
        goto fail;
    }
    uint32_t pl = 0, nn = 0;
    for (uint32_t k = 0; k < n; k++) {
        uint32_t lcp = 0;
        if (k > 0) {
            uint32_t m = e[k].len < e[k - 1].len ? e[k].len : e[k - 1].len;
            while (lcp < m && e[k].p[lcp] == e[k - 1].p[lcp])
                lcp++;
        }
        while (pl > lcp)
            t->node[path[--pl]].end = nn;
        for (uint32_t d = lcp; d < e[k].len; d++) {
            t->node[nn] = (tnode){0, 0, 0, d + 1, NO_BIG, (uint8_t)e[k].p[d]};
            parent[nn] = pl ? path[pl - 1] : UINT32_MAX;
            kc[nn] = k;
            maxd[nn] = d + 1;
            path[pl++] = nn++;
        }
        uint32_t last = path[e[k].len - 1];
        if (t->node[last].ntok == 0)
            t->node[last].tok0 = k;
        t->node[last].ntok++;
        if (!utf8_prefix_ok(e[k].p, e[k].len))
            fl[last] |= 4;
        t->tok[k] = e[k].id;
    }
    while (pl > 0)
        t->node[path[--pl]].end = nn;
    t->n = nn;
    t->n_tok = n;
    t->max_depth = maxlen;
    uint32_t n_big = 0;
    for (uint32_t i = nn; i-- > 0;) { /* children come after their parent */
        uint32_t p = parent[i];
        const tnode *nd = &t->node[i];
        if (p != UINT32_MAX) {
            asc[2 * p] |= asc[2 * i];
            asc[2 * p + 1] |= asc[2 * i + 1];
            if (nd->byte < 0x80)
                asc[2 * p + (nd->byte >> 6)] |= (uint64_t)1 << (nd->byte & 63);
            fl[p] |= (fl[i] & 1) | (nd->byte >= 0x80 ? 1 : 0) | (fl[i] & 6 ? 2 : 0);
            if (maxd[i] > maxd[p])
                maxd[p] = maxd[i];
        }
        n_big += nd->end - i - 1 >= BIG_MIN;
    }
    t->big = malloc((n_big ? n_big : 1) * sizeof *t->big);
    if (!t->big) {
        rc = nomem();
        goto fail;
    }
    for (uint32_t i = 0; i < nn; i++) {
        tnode *nd = &t->node[i];
        if (nd->end - i - 1 < BIG_MIN)
            continue;
        tbig *b = &t->big[t->n_big];
        b->asc[0] = asc[2 * i];
        b->asc[1] = asc[2 * i + 1];
        b->hi = fl[i] & 1;
        b->bad = fl[i] & 2;
        b->k0 = kc[i];
        b->maxd = maxd[i];
        b->k1 = nd->end < nn ? kc[nd->end] : n;
        nd->big = t->n_big++;
    }
    tnode *shrunk = realloc(t->node, (nn ? nn : 1) * sizeof *t->node);
    if (shrunk)
        t->node = shrunk;
    goto out;
fail:
    free(t->node);
    free(t->tok);
    free(t->big);
    memset(t, 0, sizeof *t);
out:
    free(path);
    free(parent);
    free(kc);
    free(asc);
    free(fl);
    free(maxd);
    return rc;
}

static void trie_free(gtrie *t)
{
    free(t->node);
    free(t->tok);
    free(t->big);
    memset(t, 0, sizeof *t);
}

/* Appends token id's piece after prev to tv->blob; *len its length. */
static int add_piece(gram_vocab *tv, size_t *cap_blob, size_t *n_blob, int32_t prev, int32_t id, uint32_t *len)
{
    for (;;) {
        size_t room = *cap_blob - *n_blob;
        int r = vocab_piece(tv->v, prev, id, tv->blob + *n_blob, room);
        if (r < 0)
            return r;
        if ((size_t)r <= room) {
            *n_blob += (size_t)r;
            *len = (uint32_t)r;
            return 0;
        }
        size_t nc = *cap_blob * 2;
        while (nc - *n_blob < (size_t)r)
            nc *= 2;
        if (nc > UINT32_MAX)
            return err_set(SOV_ENOMEM, "grammar: vocabulary pieces too large");
        char *b = realloc(tv->blob, nc);
        if (!b)
            return nomem();
        tv->blob = b;
        *cap_blob = nc;
    }
}

int gram_vocab_new(gram_vocab **out, const vocab *v)
{
    *out = NULL;
    int rc = 0;
    tentry *ent = NULL;
    gram_vocab *tv = calloc(1, sizeof *tv);
    if (!tv)
        return nomem();
    tv->v = v;
    tv->n = vocab_n_tokens(v);
    tv->bos = vocab_bos(v);
    int32_t n = tv->n;
    int32_t prev = (tv->bos == 0 && n > 1) ? 1 : 0; /* any token but BOS */
    size_t cap_blob = 4096 + (size_t)n * 8, n_blob = 0;
    tv->blob = malloc(cap_blob);
    tv->flags = calloc((size_t)n + 1, 1);
    tv->off = malloc(((size_t)n + 1) * sizeof *tv->off);
    tv->len = malloc(((size_t)n + 1) * sizeof *tv->len);
    tv->soff = malloc(((size_t)n + 1) * sizeof *tv->soff);
    tv->slen = malloc(((size_t)n + 1) * sizeof *tv->slen);
    tv->eog = malloc(((size_t)n + 1) * sizeof *tv->eog);
    ent = malloc(((size_t)n + 1) * sizeof *ent);
    if (!tv->blob || !tv->flags || !tv->off || !tv->len || !tv->soff || !tv->slen || !tv->eog || !ent) {
        rc = nomem();
        goto fail;
    }
    for (int32_t id = 0; id < n; id++) {
        if (vocab_is_eog(v, id)) {
            tv->flags[id] |= TV_EOG;
            tv->eog[tv->n_eog++] = id;
        }
        tv->off[id] = (uint32_t)n_blob;
        if ((rc = add_piece(tv, &cap_blob, &n_blob, prev, id, &tv->len[id])))
            goto fail;
        tv->soff[id] = (uint32_t)n_blob;
        if ((rc = add_piece(tv, &cap_blob, &n_blob, -1, id, &tv->slen[id])))
            goto fail;
        if (tv->slen[id] == tv->len[id] && memcmp(tv->blob + tv->off[id], tv->blob + tv->soff[id], tv->len[id]) == 0) {
            n_blob = tv->soff[id]; /* the same piece: keep one copy */
            tv->soff[id] = tv->off[id];
        } else {
            tv->flags[id] |= TV_DIFF;
        }
    }
    uint32_t m = 0;
    for (int32_t id = 0; id < n; id++)
        if (!(tv->flags[id] & TV_EOG) && tv->len[id])
            ent[m++] = (tentry){tv->blob + tv->off[id], tv->len[id], id};
    if ((rc = trie_build(&tv->norm, ent, m)))
        goto fail;
    m = 0;
    for (int32_t id = 0; id < n; id++)
        if ((tv->flags[id] & (TV_EOG | TV_DIFF)) == TV_DIFF && tv->slen[id])
            ent[m++] = (tentry){tv->blob + tv->soff[id], tv->slen[id], id};
    if ((rc = trie_build(&tv->start, ent, m)))
        goto fail;
    free(ent);
    *out = tv;
    return 0;
fail:
    free(ent);
    gram_vocab_free(tv);
    return rc;
}

void gram_vocab_free(gram_vocab *tv)
{
    if (!tv)
        return;
    trie_free(&tv->norm);
    trie_free(&tv->start);
    free(tv->blob);
    free(tv->flags);
    free(tv->off);
    free(tv->len);
    free(tv->soff);
    free(tv->slen);
    free(tv->eog);
    free(tv);
}
