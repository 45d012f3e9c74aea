/* kvpage + prefix: the paged KV block pool and the radix tree of cached
 * prefixes over it.
 *
 * Directed tests: eviction order is LRU among evictable blocks (pinned
 * ones skipped, a free block always preferred, a block referenced again
 * goes to the most recent end); the tree evicts leaves only, a parent never
 * before its children, also across branches; kvpage_alloc returns -1
 * exactly when kvpage_available is 0, including when unreferenced cached
 * parents of referenced children remain; argument errors; prefix_free
 * hands the tree's blocks back; the hash table under heavy sibling counts
 * with random deletions (backward shift) and reinsertion; contract
 * violations abort; the same seed gives the same run.
 *
 * Randomized simulation: sequences over one pool and tree (start = match
 * the prompt, then allocate and write the rest; extend; fork sharing
 * blocks; rewind; publish full blocks; finish; when an allocation fails,
 * preempt a random other sequence), tokens drawn from a few block patterns
 * of a small alphabet so prefixes really repeat. The test keeps its own
 * model (refcounts from the sequences' block tables, the records of what
 * was inserted and not evicted, the LRU order, the KV "content" of every
 * block: a running hash of the tokens up to each position written there)
 * and after every step checks the pool and tree against it. Some runs keep
 * only 2 or 3 bits of the tree's block hash (prefix_test_hash_bits), so
 * different blocks collide and only the full token compare tells them
 * apart. SOV_KVPAGE_STEPS sets the steps per run (default 200000, 50000
 * under sanitizers). */
#include "t.h"

#include "base/err.h"
#include "engine/kvpage.h"
#include "server/prefix.h"

#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- rng (splitmix64) ---- */

static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static uint64_t rng_s;
static uint64_t rnd(void) { return mix(rng_s++); }
static int32_t rn(int32_t n) { return n > 0 ? (int32_t)(rnd() % (uint64_t)n) : 0; }

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- eviction log for directed tests ---- */

typedef struct {
    int32_t n, b[1024];
} evlog;

static void log_evict(void *ctx, int32_t b)
{
    evlog *l = ctx;
    if (l->n < 1024)
        l->b[l->n++] = b;
}

/* ---- directed tests ---- */

static void test_lru_order(void)
{
    kvpage *p = NULL;
    bool ok = kvpage_new(&p, 8) == 0;
    evlog lg = {0};
    if (!t_check(ok, "kvpage_new 8", "%s", err_msg()))
        return;
    kvpage_on_evict(p, log_evict, &lg);
    for (int32_t i = 0; i < 8; i++)
        ok &= kvpage_alloc(p) == i && kvpage_refs(p, i) == 1 && !kvpage_cached(p, i);
    ok &= kvpage_alloc(p) == -1 && kvpage_available(p) == 0;
    t_check(ok, "lru: a new pool hands out blocks 0..n-1 in order, then -1", "failed");
    for (int32_t i = 0; i < 8; i++)
        kvpage_set_cached(p, i, true);
    const int32_t order[8] = {3, 1, 7, 0, 5, 2, 6, 4};
    for (int i = 0; i < 8; i++)
        kvpage_unref(p, order[i]);
    int32_t lru[8];
    ok = kvpage_lru(p, lru, 8) == 8 && !memcmp(lru, order, sizeof lru);
    kvpage_stats st = kvpage_stat(p);
    ok &= st.cached == 8 && st.free == 0 && st.used == 0 && kvpage_available(p) == 8 && kvpage_check(p) == 0;
    t_check(ok, "lru: released cached blocks line up least recent first", "cached %d free %d", st.cached, st.free);
    kvpage_set_evictable(p, 1, false);
    kvpage_set_evictable(p, 0, false);
    kvpage_ref(p, 7); /* in use again: off the list; back at the most recent end */
    ok = kvpage_available(p) == 5 && kvpage_refs(p, 7) == 1 && kvpage_stat(p).cached == 7;
    kvpage_unref(p, 7);
    const int32_t want[6] = {3, 5, 2, 6, 4, 7};
    int32_t got[6];
    for (int i = 0; i < 6; i++) {
        ok &= kvpage_available(p) == 6 - i;
        got[i] = kvpage_alloc(p);
        ok &= got[i] >= 0 && kvpage_refs(p, got[i]) == 1 && !kvpage_cached(p, got[i]) && kvpage_check(p) == 0;
    }
    ok &= !memcmp(got, want, sizeof got) && lg.n == 6 && !memcmp(lg.b, want, sizeof want);
    ok &= kvpage_alloc(p) == -1 && kvpage_available(p) == 0 && kvpage_stat(p).cached == 2 && lg.n == 6;
    t_check(ok, "lru: eviction goes least recent first, skipping pinned blocks; callback first",
            "got %d %d %d %d %d %d, %d callbacks", got[0], got[1], got[2], got[3], got[4], got[5], lg.n);
    kvpage_set_evictable(p, 0, true);
    ok = kvpage_available(p) == 1 && kvpage_alloc(p) == 0 && kvpage_alloc(p) == -1;
    st = kvpage_stat(p);
    ok &= st.evictions == 7 && st.used == 7 && st.cached == 1 && st.free == 0 && kvpage_check(p) == 0;
    t_check(ok, "lru: a block made evictable again can go; stats", "evictions %lld", (long long)st.evictions);
    /* a free block is preferred to any cached one */
    kvpage_unref(p, 3); /* uncached: free */
    kvpage_set_cached(p, 5, true);
    kvpage_unref(p, 5); /* cached, least recent evictable */
    ok = kvpage_available(p) == 2 && kvpage_alloc(p) == 3 && kvpage_stat(p).evictions == 7;
    ok &= kvpage_alloc(p) == 5 && kvpage_stat(p).evictions == 8;
    /* unmarking a cached unreferenced block frees it */
    kvpage_set_cached(p, 5, true);
    kvpage_unref(p, 5);
    kvpage_set_cached(p, 5, false);
    st = kvpage_stat(p);
    ok &= st.free == 1 && st.cached == 1 && kvpage_check(p) == 0 && kvpage_alloc(p) == 5 && st.evictions == 8;
    t_check(ok, "lru: a free block goes before any cached one; unmarking frees", "failed");
    kvpage_free(p);
}

/* alloc n blocks for tokens tk[0..n*bt) as one sequence, insert them; the
 * caller keeps the references. */
static int32_t seq_insert(kvpage *p, prefix *tr, const int32_t *tk, int32_t nb, int32_t bt, int32_t *blk)
{
    for (int32_t i = 0; i < nb; i++)
        blk[i] = kvpage_alloc(p);
    return prefix_insert(tr, tk, nb * bt, blk);
}

static void test_parent_child(void)
{
    kvpage *p = NULL;
    prefix *tr = NULL;
    bool ok = kvpage_new(&p, 4) == 0 && prefix_new(&tr, p, 2) == 0;
    if (!t_check(ok, "tree: new", "%s", err_msg()))
        goto out;
    /* one chain of 4 blocks, released root first: the root is least recent */
    const int32_t tk[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    int32_t blk[4];
    ok = seq_insert(p, tr, tk, 4, 2, blk) == 4 && prefix_stat(tr).nodes == 4;
    for (int i = 0; i < 3; i++)
        ok &= !kvpage_evictable(p, blk[i]);
    ok &= kvpage_evictable(p, blk[3]);
    if (!t_check(ok, "tree: inserting a child pins its parent", "%s", err_msg()))
        goto out;
    for (int i = 0; i < 4; i++)
        kvpage_unref(p, blk[i]);
    ok &= kvpage_available(p) == 1 && kvpage_stat(p).cached == 4 && prefix_check(tr) == 0;
    for (int i = 3; i >= 0; i--) {
        int32_t b = kvpage_alloc(p);
        ok &= b == blk[i] && !prefix_node(tr, b, NULL, NULL, NULL, NULL) && prefix_stat(tr).nodes == i;
        ok &= prefix_peek(tr, tk, 8, NULL) == i && prefix_check(tr) == 0 && kvpage_check(p) == 0;
        ok &= kvpage_available(p) == (i > 0);
    }
    t_check(ok, "tree: a chain is evicted leaf first although its root is least recent", "%s", err_msg());
    for (int i = 0; i < 4; i++)
        kvpage_unref(p, i);
    prefix_free(tr);
    tr = NULL;
    kvpage_free(p);
    p = NULL;

    /* branches: x-y-z and x-w, released x, w, y, z: evicted w, z, y, x */
    ok = kvpage_new(&p, 5) == 0 && prefix_new(&tr, p, 1) == 0;
    const int32_t s1[3] = {10, 11, 12}, s2[2] = {10, 13};
    int32_t b1[3], b2[2];
    ok &= seq_insert(p, tr, s1, 3, 1, b1) == 3;
    ok &= prefix_match(tr, s2, 2, b2) == 1 && b2[0] == b1[0] && kvpage_refs(p, b1[0]) == 2;
    b2[1] = kvpage_alloc(p);
    ok &= prefix_insert(tr, s2, 2, b2) == 1;
    int32_t par = -2, dep = -2, nch = -2;
    const int32_t *ntk = NULL;
    ok &= prefix_node(tr, b2[1], &par, &dep, &nch, &ntk) && par == b1[0] && dep == 1 && nch == 0 && ntk[0] == 13;
    ok &= prefix_node(tr, b1[0], &par, &dep, &nch, NULL) && par == -1 && dep == 0 && nch == 2;
    kvpage_unref(p, b1[0]);
    kvpage_unref(p, b1[0]);
    kvpage_unref(p, b2[1]);
    kvpage_unref(p, b1[1]);
    kvpage_unref(p, b1[2]);
    const int32_t want[4] = {b2[1], b1[2], b1[1], b1[0]};
    ok &= kvpage_alloc(p) == 4; /* the free one first */
    for (int i = 0; i < 4; i++)
        ok &= kvpage_alloc(p) == want[i] && prefix_check(tr) == 0;
    ok &= kvpage_alloc(p) == -1 && prefix_stat(tr).nodes == 0 && prefix_stat(tr).evicted == 4;
    t_check(ok, "tree: across branches, least recent evictable leaf first, parents after their children",
            "%s", err_msg());
out:
    prefix_free(tr);
    kvpage_free(p);
}

static void test_available(void)
{
    kvpage *p = NULL;
    prefix *tr = NULL;
    bool ok = kvpage_new(&p, 4) == 0 && prefix_new(&tr, p, 1) == 0;
    if (!t_check(ok, "available: new", "%s", err_msg()))
        goto out;
    /* S: a(1) b(2) inserted. T: its own copy a2 of (1), c(3) inserted under a */
    const int32_t s[2] = {1, 2}, tt[2] = {1, 3};
    int32_t bs[2], bt[2];
    ok &= seq_insert(p, tr, s, 2, 1, bs) == 2;
    ok &= seq_insert(p, tr, tt, 2, 1, bt) == 1; /* a2 is not inserted: (1) is in the tree */
    ok &= !prefix_node(tr, bt[0], NULL, NULL, NULL, NULL);
    int32_t par = -2;
    ok &= prefix_node(tr, bt[1], &par, NULL, NULL, NULL) && par == bs[0];
    kvpage_unref(p, bs[0]);
    kvpage_unref(p, bs[1]);
    /* a: unreferenced, pinned (children b, c); b evictable */
    ok &= kvpage_available(p) == 1 && kvpage_alloc(p) == bs[1];
    kvpage_stats st = kvpage_stat(p);
    ok &= kvpage_available(p) == 0 && st.cached == 1 && kvpage_alloc(p) == -1;
    t_check(ok, "available: 0 and alloc -1 while an unreferenced parent of a referenced child stays cached",
            "available %d cached %d", kvpage_available(p), st.cached);
    kvpage_unref(p, bt[1]); /* c: cached, evictable */
    ok = kvpage_available(p) == 1 && kvpage_alloc(p) == bt[1];
    ok &= kvpage_available(p) == 1 && kvpage_alloc(p) == bs[0]; /* a lost its last child */
    ok &= kvpage_available(p) == 0 && kvpage_alloc(p) == -1 && prefix_stat(tr).nodes == 0;
    st = kvpage_stat(p);
    ok &= st.used == 4 && st.free == 0 && st.cached == 0 && prefix_check(tr) == 0 && kvpage_check(p) == 0;
    t_check(ok, "available: evicting the last child makes the parent evictable", "failed");
out:
    prefix_free(tr);
    kvpage_free(p);
}

static void test_errors(void)
{
    kvpage *p = (kvpage *)1;
    bool ok = kvpage_new(&p, 0) == SOV_EINVAL && !p && *err_msg();
    ok &= kvpage_new(&p, -5) == SOV_EINVAL && !p;
    t_check(ok, "errors: kvpage_new rejects < 1 block", "failed");
    prefix *tr = (prefix *)1;
    ok = prefix_new(&tr, NULL, 4) == SOV_EINVAL && !tr;
    if (kvpage_new(&p, 6) != 0) {
        t_check(false, "errors: kvpage_new 6", "%s", err_msg());
        return;
    }
    ok &= prefix_new(&tr, p, 0) == SOV_EINVAL && !tr;
    t_check(ok, "errors: prefix_new rejects no pool and bt < 1", "failed");
    ok = prefix_new(&tr, p, 2) == 0 && prefix_test_hash_bits(tr, 65) == SOV_EINVAL;
    const int32_t tk[6] = {1, 2, 3, 4, 5, 6};
    int32_t blk[3] = {kvpage_alloc(p), kvpage_alloc(p), kvpage_alloc(p)};
    ok &= prefix_insert(tr, tk, 4, blk) == 2;
    int32_t other[3] = {kvpage_alloc(p), blk[0], 99};
    const int32_t tk2[6] = {7, 8, 3, 4, 5, 6};
    ok &= prefix_insert(tr, tk2, 4, other) == SOV_EINVAL && strstr(err_msg(), "another prefix");
    ok &= prefix_stat(tr).nodes == 3 && prefix_check(tr) == 0; /* (7 8) went in before the error */
    const int32_t tk3[4] = {9, 9, 9, 9};
    int32_t far[2] = {6, 0};
    ok &= prefix_insert(tr, tk3, 4, far) == SOV_EINVAL && strstr(err_msg(), "range");
    int32_t unref[2] = {5, 0}; /* block 5: free */
    ok &= prefix_insert(tr, tk3, 2, unref) == SOV_EINVAL && strstr(err_msg(), "not referenced");
    ok &= prefix_insert(tr, tk, 1, blk) == 0 && prefix_match(tr, tk, 1, NULL) == 0; /* < one block */
    ok &= prefix_stat(tr).nodes == 3 && prefix_check(tr) == 0 && kvpage_check(p) == 0;
    ok &= prefix_test_hash_bits(tr, 8) == SOV_EINVAL; /* not empty */
    t_check(ok, "errors: prefix_insert rejects foreign, out-of-range and unreferenced blocks", "%s", err_msg());
    kvpage_unref(p, blk[0]);
    kvpage_unref(p, blk[1]);
    /* blk[0], blk[1] cached (unreferenced), blk[2] referenced never inserted, other[0] referenced node */
    kvpage_stats st = kvpage_stat(p);
    ok = st.cached == 2 && st.used == 2;
    prefix_free(tr);
    st = kvpage_stat(p);
    ok &= st.cached == 0 && st.free == 4 && st.used == 2 && !kvpage_cached(p, other[0]) && kvpage_check(p) == 0;
    kvpage_unref(p, other[0]);
    kvpage_unref(p, blk[2]);
    ok &= kvpage_stat(p).free == 6 && kvpage_alloc(p) >= 0 && kvpage_stat(p).evictions == 0;
    t_check(ok, "errors: prefix_free hands the tree's blocks back to the pool", "failed");
    kvpage_free(p);
}

/* Many siblings under one parent and under a few parents, unreferenced in
 * random order, evicted a random number at a time, reinserted: peek finds
 * exactly the live ones after every round. */
static void test_hash_table(int bits)
{
    enum { N = 1024, ROUNDS = 60 };
    kvpage *p = NULL;
    prefix *tr = NULL;
    static int32_t tok_of[N];     /* the node's token, or -1: no node */
    static int32_t parent_tok[N]; /* its parent's token, 0: a first block */
    bool ok = kvpage_new(&p, N) == 0 && prefix_new(&tr, p, 1) == 0 && prefix_test_hash_bits(tr, bits) == 0;
    if (!t_check(ok, "hash: new", "%s", err_msg()))
        goto out;
    const char *why = NULL;
#define H(c, msg) do { if (!(c) && !why) why = (msg); } while (0)
    rng_s = 77;
    for (int32_t i = 0; i < N; i++)
        tok_of[i] = -1;
    int32_t next_tok = 1;
    for (int r = 0; r < ROUNDS && !why; r++) {
        /* insert as many new 1- or 2-token sequences as the pool allows, each
         * in a fresh block (2-token ones share the first token's node) */
        int32_t held[N], nh = 0;
        for (;;) {
            int32_t tk[2], blk[2], nb;
            if (rn(3) == 0 || next_tok < 8) {
                tk[0] = next_tok++;
                nb = 1;
            } else {
                tk[0] = 1 + rn(8);
                tk[1] = next_tok++;
                nb = 2;
                if (prefix_match(tr, tk, 1, blk) != 1) {
                    nb = 1; /* parent gone: insert it alone */
                    tk[0] = tk[1];
                } else {
                    held[nh++] = blk[0];
                }
            }
            int32_t b = kvpage_available(p) ? kvpage_alloc(p) : -1;
            if (b < 0)
                break;
            blk[nb - 1] = b;
            int32_t added = prefix_insert(tr, tk, nb, blk);
            H(added == 1, "an insert did not add its one node");
            held[nh++] = b;
            /* (an allocation that evicted b handed b back to us) */
            tok_of[b] = nb == 1 ? tk[0] : tk[1];
            parent_tok[b] = nb == 1 ? 0 : tk[0];
            if (nh >= N - 8)
                break;
        }
        /* release in random order */
        for (int32_t i = nh - 1; i > 0; i--) {
            int32_t j = rn(i + 1), x = held[i];
            held[i] = held[j];
            held[j] = x;
        }
        for (int32_t i = 0; i < nh; i++)
            kvpage_unref(p, held[i]);
        /* evict some */
        int32_t k = rn(N / 2);
        for (int32_t i = 0; i < k; i++) {
            int32_t b = kvpage_alloc(p);
            if (b < 0)
                break;
            tok_of[b] = -1;
            kvpage_unref(p, b);
        }
        H(prefix_check(tr) == 0, "prefix_check failed");
        H(kvpage_check(p) == 0, "kvpage_check failed");
        /* every live node found, every evicted one not */
        int32_t live = 0;
        for (int32_t b = 0; b < N && !why; b++) {
            int32_t got[2];
            bool node = prefix_node(tr, b, NULL, NULL, NULL, NULL);
            if (tok_of[b] < 0) {
                H(!node, "an evicted block is still a node");
                continue;
            }
            H(node, "a block is no longer a node without being evicted");
            live++;
            if (parent_tok[b] == 0) {
                int32_t q[1] = {tok_of[b]};
                H(prefix_peek(tr, q, 1, got) == 1 && got[0] == b, "a first block is not found");
            } else {
                int32_t q[2] = {parent_tok[b], tok_of[b]};
                H(prefix_peek(tr, q, 2, got) == 2 && got[1] == b, "a second block is not found");
            }
        }
        H(live == prefix_stat(tr).nodes, "node count differs");
        int32_t q[2] = {1000000, 1};
        H(prefix_peek(tr, q, 2, NULL) == 0, "a token never inserted is found");
    }
    char name[128];
    snprintf(name, sizeof name, "hash: %d-bit hash, siblings found after random deletions and reinsertions "
             "(%d rounds, %d blocks)", bits, ROUNDS, N);
    t_check(!why, name, "%s (%s)", why ? why : "", err_msg());
#undef H
out:
    prefix_free(tr);
    kvpage_free(p);
}

/* Runs fn in a child process; true when it died of SIGABRT. */
static bool aborts(void (*fn)(void))
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        return false;
    if (pid == 0) {
        if (!freopen("/dev/null", "w", stderr))
            _exit(3);
        fn();
        _exit(0);
    }
    int st = 0;
    if (waitpid(pid, &st, 0) != pid)
        return false;
    return WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT;
}

static void bad_unref(void)
{
    kvpage *p = NULL;
    if (kvpage_new(&p, 2))
        return;
    int32_t b = kvpage_alloc(p);
    kvpage_unref(p, b);
    kvpage_unref(p, b);
}

static void bad_ref(void)
{
    kvpage *p = NULL;
    if (kvpage_new(&p, 2))
        return;
    kvpage_ref(p, 1); /* free */
}

static void bad_range(void)
{
    kvpage *p = NULL;
    if (kvpage_new(&p, 2))
        return;
    kvpage_set_cached(p, 2, true);
}

static void test_aborts(void)
{
    bool ok = aborts(bad_unref) && aborts(bad_ref) && aborts(bad_range);
    t_check(ok, "contract violations abort (double unref, ref of a free block, block out of range)", "failed");
}

/* ---- randomized simulation ---- */

#define MAXSEQ 64
#define MAXB 32
#define MAXBT 32
#define MAXTOK (MAXB * MAXBT)
#define NPAT 6

typedef struct {
    bool live;
    int32_t n_tok, nb;
    int32_t tok[MAXTOK];
    uint64_t ph[MAXTOK]; /* running hash of tok[0..p]: the "KV" at p */
    int32_t blk[MAXB];
    int32_t plan[MAXB]; /* pattern of each block's tokens */
} seq;

typedef struct {
    kvpage *pg;
    prefix *tr;
    int32_t n, bt, maxb, alpha;
    int32_t pat[NPAT][MAXBT];
    seq s[MAXSEQ];
    int32_t *refs;     /* [n] references the live sequences hold */
    uint64_t *content; /* [n * bt] "KV" written at each position of each block; 0 garbage */
    bool *rec;         /* [n] block holds a tree node (inserted, not evicted) */
    int32_t *rec_depth, *rec_parent, *rec_nchild; /* [n] */
    int32_t *rec_tok;  /* [n * MAXTOK] the node's whole prefix */
    uint64_t *rec_ph;  /* [n * bt] the node's content */
    int32_t n_rec;
    int32_t *lru, n_lru; /* unreferenced nodes, least recently released first */
    int32_t *tmp, *tmp2; /* [n] */
    int32_t *own_seq, *own_idx; /* [n] */
    int64_t evictions, allocs, alloc_fail, preempts, cows, lookups, hit_blocks, inserted, abandoned;
    uint64_t digest;
    bool bad;
    char err[512];
    int64_t step;
} sim;

#define EXPECT(S, c, ...)                                                                    \
    do {                                                                                    \
        if (!(c) && !(S)->bad) {                                                            \
            (S)->bad = true;                                                                \
            int k_ = snprintf((S)->err, sizeof (S)->err, "step %lld line %d: ", (long long)(S)->step, \
                              __LINE__);                                                    \
            snprintf((S)->err + k_, sizeof (S)->err - (size_t)k_, __VA_ARGS__);             \
        }                                                                                   \
    } while (0)

static void sim_free(sim *S)
{
    prefix_free(S->tr);
    kvpage_free(S->pg);
    free(S->refs);
    free(S->content);
    free(S->rec);
    free(S->rec_depth);
    free(S->rec_parent);
    free(S->rec_nchild);
    free(S->rec_tok);
    free(S->rec_ph);
    free(S->lru);
    free(S->tmp);
    free(S->tmp2);
    free(S->own_seq);
    free(S->own_idx);
    free(S);
}

static sim *sim_new(int32_t n, int32_t bt, int hash_bits, uint64_t seed)
{
    sim *S = calloc(1, sizeof *S);
    if (!S)
        return NULL;
    S->n = n;
    S->bt = bt;
    S->maxb = n < MAXB ? n : MAXB;
    S->alpha = bt == 1 ? 5 : 3;
    size_t un = (size_t)n;
    S->refs = calloc(un, sizeof *S->refs);
    S->content = calloc(un * (size_t)bt, sizeof *S->content);
    S->rec = calloc(un, sizeof *S->rec);
    S->rec_depth = calloc(un, sizeof(int32_t));
    S->rec_parent = calloc(un, sizeof(int32_t));
    S->rec_nchild = calloc(un, sizeof(int32_t));
    S->rec_tok = calloc(un * MAXTOK, sizeof(int32_t));
    S->rec_ph = calloc(un * (size_t)bt, sizeof(uint64_t));
    S->lru = calloc(un, sizeof(int32_t));
    S->tmp = calloc(un, sizeof(int32_t));
    S->tmp2 = calloc(un, sizeof(int32_t));
    S->own_seq = calloc(un, sizeof(int32_t));
    S->own_idx = calloc(un, sizeof(int32_t));
    if (!S->refs || !S->content || !S->rec || !S->rec_depth || !S->rec_parent || !S->rec_nchild ||
        !S->rec_tok || !S->rec_ph || !S->lru || !S->tmp || !S->tmp2 || !S->own_seq || !S->own_idx ||
        kvpage_new(&S->pg, n) || prefix_new(&S->tr, S->pg, bt) || prefix_test_hash_bits(S->tr, hash_bits)) {
        sim_free(S);
        return NULL;
    }
    rng_s = seed * 0x1234567ull;
    /* patterns 1 and 2 differ from 0 only in their last / first token */
    for (int k = 0; k < NPAT; k++)
        for (int j = 0; j < bt; j++)
            S->pat[k][j] = (int32_t)(mix((uint64_t)k * 1000 + (uint64_t)j) % (uint64_t)S->alpha);
    for (int j = 0; j < bt; j++)
        S->pat[1][j] = S->pat[2][j] = S->pat[0][j];
    S->pat[1][bt - 1] = (S->pat[0][bt - 1] + 1) % S->alpha;
    S->pat[2][0] = (S->pat[0][0] + 1) % S->alpha;
    return S;
}

static void make_plan(int32_t *plan, int32_t from)
{
    for (int32_t i = from; i < MAXB; i++)
        plan[i] = rn(100) < 55 ? 0 : rn(NPAT);
}

/* Token at position p of a sequence with this plan: the pattern's, or now
 * and then a random one (a unique block). */
static int32_t plan_tok(sim *S, const int32_t *plan, int32_t p)
{
    if (rn(80) == 0)
        return rn(S->alpha);
    return S->pat[plan[p / S->bt]][p % S->bt];
}

static uint64_t tok_ph(uint64_t prev, int32_t tok)
{
    return mix(prev ^ ((uint64_t)(uint32_t)tok * 0xff51afd7ed558ccdull)) | 1;
}

static void lru_remove(sim *S, int32_t b)
{
    for (int32_t i = 0; i < S->n_lru; i++)
        if (S->lru[i] == b) {
            memmove(S->lru + i, S->lru + i + 1, sizeof *S->lru * (size_t)(S->n_lru - i - 1));
            S->n_lru--;
            return;
        }
    EXPECT(S, false, "model: block %d not on the LRU list", b);
}

/* The model's side of a reference the pool already took. */
static void model_ref(sim *S, int32_t b)
{
    if (S->refs[b] == 0) {
        EXPECT(S, S->rec[b], "model: reference on block %d, neither referenced nor a node", b);
        lru_remove(S, b);
    }
    S->refs[b]++;
}

static void sim_unref(sim *S, int32_t b)
{
    EXPECT(S, S->refs[b] > 0, "model: unref of unreferenced block %d", b);
    if (S->bad)
        return;
    kvpage_unref(S->pg, b);
    if (--S->refs[b] == 0 && S->rec[b])
        S->lru[S->n_lru++] = b;
}

static void seq_finish(sim *S, int si)
{
    seq *s = &S->s[si];
    for (int32_t i = 0; i < s->nb; i++)
        sim_unref(S, s->blk[i]);
    s->live = false;
    s->nb = s->n_tok = 0;
}

/* Brute-force longest match over the model's records. */
static int32_t bf_match(sim *S, const int32_t *tk, int32_t n, int32_t *out)
{
    int32_t k = 0, bt = S->bt;
    for (int32_t nq = n / bt; k < nq; k++) {
        int32_t found = -1;
        for (int32_t b = 0; b < S->n; b++)
            if (S->rec[b] && S->rec_depth[b] == k &&
                !memcmp(S->rec_tok + (size_t)b * MAXTOK, tk, sizeof *tk * (size_t)(k + 1) * (size_t)bt)) {
                EXPECT(S, found < 0, "model: blocks %d and %d hold the same prefix", found, b);
                found = b;
            }
        if (found < 0)
            break;
        out[k] = found;
    }
    return k;
}

/* kvpage_alloc for sequence self, checked against the model's prediction;
 * preempts random other sequences while it fails. -1: nothing left. */
static int32_t sim_alloc(sim *S, int self)
{
    for (;;) {
        int32_t n_free = 0, n_ev = 0, victim = -1;
        for (int32_t b = 0; b < S->n; b++)
            n_free += S->refs[b] == 0 && !S->rec[b];
        for (int32_t i = 0; i < S->n_lru; i++)
            if (S->rec_nchild[S->lru[i]] == 0) {
                if (victim < 0)
                    victim = S->lru[i];
                n_ev++;
            }
        int32_t avail = kvpage_available(S->pg);
        EXPECT(S, avail == n_free + n_ev, "available %d, model %d free + %d evictable", avail, n_free, n_ev);
        kvpage_stats k0 = kvpage_stat(S->pg);
        prefix_stats p0 = prefix_stat(S->tr);
        int32_t b = kvpage_alloc(S->pg);
        kvpage_stats k1 = kvpage_stat(S->pg);
        prefix_stats p1 = prefix_stat(S->tr);
        S->digest = mix(S->digest ^ (uint64_t)(uint32_t)b);
        if (n_free > 0) {
            EXPECT(S, b >= 0 && b < S->n && S->refs[b] == 0 && !S->rec[b], "alloc gave %d, not a free block", b);
            EXPECT(S, k1.evictions == k0.evictions && p1.evicted == p0.evicted, "alloc evicted with free blocks");
        } else if (n_ev > 0) {
            EXPECT(S, b == victim, "alloc gave %d, the least recent evictable block is %d", b, victim);
            EXPECT(S, k1.evictions == k0.evictions + 1 && p1.evicted == p0.evicted + 1 && p1.nodes == p0.nodes - 1,
                   "eviction not counted");
            EXPECT(S, !prefix_node(S->tr, b, NULL, NULL, NULL, NULL), "evicted block %d still a node", b);
            if (S->bad)
                return -1;
            S->rec[b] = false;
            S->n_rec--;
            if (S->rec_parent[b] >= 0)
                S->rec_nchild[S->rec_parent[b]]--;
            lru_remove(S, b);
            S->evictions++;
        } else {
            EXPECT(S, b == -1, "alloc gave %d with nothing free or evictable", b);
        }
        if (S->bad)
            return -1;
        if (b >= 0) {
            EXPECT(S, kvpage_refs(S->pg, b) == 1 && !kvpage_cached(S->pg, b) && kvpage_evictable(S->pg, b),
                   "allocated block %d: refcount %d", b, kvpage_refs(S->pg, b));
            S->refs[b] = 1;
            memset(S->content + (size_t)b * S->bt, 0, sizeof *S->content * (size_t)S->bt);
            S->allocs++;
            return b;
        }
        EXPECT(S, avail == 0, "alloc failed with %d available", avail);
        S->alloc_fail++;
        int cand = 0;
        for (int i = 0; i < MAXSEQ; i++)
            cand += S->s[i].live && i != self;
        if (!cand)
            return -1;
        int pick = rn(cand);
        for (int i = 0; i < MAXSEQ; i++)
            if (S->s[i].live && i != self && pick-- == 0) {
                seq_finish(S, i);
                S->preempts++;
                break;
            }
    }
}

/* Appends token tok to sequence si: a new block at a block start; else
 * writes into the last block, copying it first if it is shared (refcount
 * > 1) or cached. false: no block could be had. */
static bool seq_write(sim *S, int si, int32_t tok)
{
    seq *s = &S->s[si];
    int32_t p = s->n_tok, bt = S->bt, bi = p / bt;
    uint64_t ph = tok_ph(p ? s->ph[p - 1] : 0x5eed, tok);
    if (p % bt == 0) {
        int32_t b = sim_alloc(S, si);
        if (b < 0)
            return false;
        s->blk[bi] = b;
        s->nb = bi + 1;
    } else {
        int32_t x = s->blk[bi];
        bool shared = kvpage_refs(S->pg, x) > 1 || kvpage_cached(S->pg, x);
        EXPECT(S, shared == (S->refs[x] > 1 || S->rec[x]), "block %d: pool and model disagree on sharing", x);
        if (shared) {
            int32_t y = sim_alloc(S, si);
            if (y < 0)
                return false;
            memcpy(S->content + (size_t)y * bt, S->content + (size_t)x * bt,
                   sizeof *S->content * (size_t)(p % bt));
            s->blk[bi] = y;
            sim_unref(S, x);
            S->cows++;
        }
    }
    S->content[(size_t)s->blk[bi] * bt + p % bt] = ph;
    s->tok[p] = tok;
    s->ph[p] = ph;
    s->n_tok++;
    return true;
}

static int free_seq(sim *S)
{
    for (int i = 0; i < MAXSEQ; i++)
        if (!S->s[i].live)
            return i;
    return -1;
}

static int pick_live(sim *S)
{
    int cand = 0;
    for (int i = 0; i < MAXSEQ; i++)
        cand += S->s[i].live;
    if (!cand)
        return -1;
    int pick = rn(cand);
    for (int i = 0; i < MAXSEQ; i++)
        if (S->s[i].live && pick-- == 0)
            return i;
    return -1;
}

/* A prompt-like token string of length 1..maxb*bt (shorter ones likelier). */
static int32_t make_tokens(sim *S, int32_t *plan, int32_t *tk)
{
    int32_t max = S->maxb * S->bt;
    int32_t L = 1 + (rn(2) ? rn(max) : rn(1 + rn(max)));
    make_plan(plan, 0);
    for (int32_t p = 0; p < L; p++)
        tk[p] = plan_tok(S, plan, p);
    return L;
}

static void check_match(sim *S, const int32_t *tk, int32_t nq, int32_t k, const int32_t *got)
{
    int32_t want[MAXB];
    int32_t kw = bf_match(S, tk, nq, want);
    EXPECT(S, k == kw, "match of %d tokens gave %d blocks, brute force %d", nq, k, kw);
    for (int32_t i = 0; i < k && i < kw; i++)
        EXPECT(S, got[i] == want[i], "match block %d is %d, brute force %d", i, got[i], want[i]);
    S->digest = mix(S->digest ^ (uint64_t)k);
}

static void op_start(sim *S)
{
    int si = free_seq(S);
    if (si < 0)
        return;
    seq *s = &S->s[si];
    int32_t tk[MAXTOK];
    int32_t L = make_tokens(S, s->plan, tk);
    int32_t nq = rn(2) ? L : L - 1; /* L - 1: keep the last token to evaluate */
    int32_t got[MAXB];
    int32_t k = prefix_match(S->tr, tk, nq, got);
    S->lookups++;
    S->hit_blocks += k;
    check_match(S, tk, nq, k, got);
    if (S->bad)
        return;
    s->live = true;
    for (int32_t i = 0; i < k; i++) {
        model_ref(S, got[i]);
        s->blk[i] = got[i];
    }
    s->nb = k;
    s->n_tok = 0;
    uint64_t ph = 0x5eed;
    for (int32_t p = 0; p < k * S->bt; p++) {
        s->tok[p] = tk[p];
        s->ph[p] = ph = tok_ph(ph, tk[p]);
    }
    s->n_tok = k * S->bt;
    for (int32_t p = k * S->bt; p < L && !S->bad; p++)
        if (!seq_write(S, si, tk[p])) {
            seq_finish(S, si);
            S->abandoned++;
            return;
        }
}

static void op_extend(sim *S)
{
    int si = pick_live(S);
    if (si < 0)
        return;
    seq *s = &S->s[si];
    int32_t max = S->maxb * S->bt;
    if (s->n_tok >= max) {
        seq_finish(S, si);
        return;
    }
    int32_t m = 1 + rn(2 * S->bt);
    if (m > max - s->n_tok)
        m = max - s->n_tok;
    for (int32_t i = 0; i < m && !S->bad; i++)
        if (!seq_write(S, si, plan_tok(S, s->plan, s->n_tok))) {
            seq_finish(S, si);
            S->abandoned++;
            return;
        }
}

static void op_fork(sim *S)
{
    int a = pick_live(S), bi = free_seq(S);
    if (a < 0 || bi < 0)
        return;
    seq *src = &S->s[a], *d = &S->s[bi];
    int32_t m = 1 + rn(src->n_tok);
    int32_t nb = (m + S->bt - 1) / S->bt;
    memcpy(d->tok, src->tok, sizeof *d->tok * (size_t)m);
    memcpy(d->ph, src->ph, sizeof *d->ph * (size_t)m);
    memcpy(d->plan, src->plan, sizeof d->plan);
    make_plan(d->plan, nb); /* diverges after what it shares */
    for (int32_t i = 0; i < nb; i++) {
        kvpage_ref(S->pg, src->blk[i]);
        model_ref(S, src->blk[i]);
        d->blk[i] = src->blk[i];
    }
    d->nb = nb;
    d->n_tok = m;
    d->live = true;
}

static void op_rewind(sim *S)
{
    int si = pick_live(S);
    if (si < 0 || S->s[si].n_tok < 2)
        return;
    seq *s = &S->s[si];
    int32_t m = 1 + rn(s->n_tok - 1);
    int32_t nb = (m + S->bt - 1) / S->bt;
    for (int32_t i = nb; i < s->nb; i++)
        sim_unref(S, s->blk[i]);
    s->nb = nb;
    s->n_tok = m;
}

static void op_publish(sim *S)
{
    int si = pick_live(S);
    if (si < 0)
        return;
    seq *s = &S->s[si];
    int32_t bt = S->bt, n = s->n_tok - (rn(4) == 0 ? rn(bt + 1) : 0);
    if (n < 0)
        n = 0;
    /* expected: the first block without a record starts the new nodes */
    int32_t have[MAXB];
    int32_t k = bf_match(S, s->tok, n, have);
    int32_t nb = n / bt;
    for (int32_t i = k; i < nb; i++)
        EXPECT(S, !S->rec[s->blk[i]], "model: block %d of sequence %d already holds another prefix", s->blk[i], si);
    if (S->bad)
        return;
    int32_t added = prefix_insert(S->tr, s->tok, n, s->blk);
    EXPECT(S, added == nb - k, "insert of %d blocks added %d, expected %d (%s)", nb, added, nb - k,
           added < 0 ? err_msg() : "");
    if (S->bad)
        return;
    for (int32_t i = k; i < nb; i++) {
        int32_t b = s->blk[i];
        S->rec[b] = true;
        S->n_rec++;
        S->rec_depth[b] = i;
        S->rec_parent[b] = i == 0 ? -1 : (i == k ? have[k - 1] : s->blk[i - 1]);
        S->rec_nchild[b] = 0;
        if (S->rec_parent[b] >= 0)
            S->rec_nchild[S->rec_parent[b]]++;
        memcpy(S->rec_tok + (size_t)b * MAXTOK, s->tok, sizeof *s->tok * (size_t)(i + 1) * (size_t)bt);
        memcpy(S->rec_ph + (size_t)b * bt, s->ph + (size_t)i * bt, sizeof *s->ph * (size_t)bt);
        S->inserted++;
    }
    S->digest = mix(S->digest ^ (uint64_t)added);
}

/* No side effects: peek equals the brute force. */
static void op_peek(sim *S)
{
    int32_t tk[MAXTOK], plan[MAXB], got[MAXB];
    int32_t L = make_tokens(S, plan, tk);
    prefix_stats p0 = prefix_stat(S->tr);
    int32_t k = prefix_peek(S->tr, tk, L, got);
    check_match(S, tk, L, k, got);
    prefix_stats p1 = prefix_stat(S->tr);
    EXPECT(S, !memcmp(&p0, &p1, sizeof p0), "peek changed the statistics");
}

/* A match whose references go again at once, in random order. */
static void op_match_release(sim *S)
{
    int32_t tk[MAXTOK], plan[MAXB], got[MAXB];
    int32_t L = make_tokens(S, plan, tk);
    int32_t k = prefix_match(S->tr, tk, L, got);
    S->lookups++;
    S->hit_blocks += k;
    check_match(S, tk, L, k, got);
    if (S->bad)
        return;
    for (int32_t i = 0; i < k; i++)
        model_ref(S, got[i]);
    for (int32_t i = k - 1; i > 0; i--) {
        int32_t j = rn(i + 1), x = got[i];
        got[i] = got[j];
        got[j] = x;
    }
    for (int32_t i = 0; i < k; i++)
        sim_unref(S, got[i]);
}

/* Every invariant, against the model. */
static void check_all(sim *S)
{
    int32_t n = S->n, bt = S->bt;
    EXPECT(S, kvpage_check(S->pg) == 0, "kvpage_check: %s", err_msg());
    EXPECT(S, prefix_check(S->tr) == 0, "prefix_check: %s", err_msg());
    /* refcounts = references of the live sequences; a block at one index
     * in every sequence holding it; each sequence's "KV" intact */
    int32_t *cnt = S->tmp;
    memset(cnt, 0, sizeof *cnt * (size_t)n);
    for (int32_t b = 0; b < n; b++)
        S->own_seq[b] = -1;
    for (int i = 0; i < MAXSEQ && !S->bad; i++) {
        seq *s = &S->s[i];
        if (!s->live)
            continue;
        EXPECT(S, s->n_tok >= 1 && s->nb == (s->n_tok + bt - 1) / bt, "sequence %d: %d tokens in %d blocks", i,
               s->n_tok, s->nb);
        for (int32_t j = 0; j < s->nb && !S->bad; j++) {
            int32_t b = s->blk[j];
            EXPECT(S, b >= 0 && b < n, "sequence %d holds block %d", i, b);
            if (S->bad)
                return;
            cnt[b]++;
            if (S->own_seq[b] < 0) {
                S->own_seq[b] = i;
                S->own_idx[b] = j;
            } else {
                EXPECT(S, S->own_idx[b] == j && S->own_seq[b] != i,
                       "block %d at index %d of sequence %d and index %d of sequence %d", b, S->own_idx[b],
                       S->own_seq[b], j, i);
            }
        }
        for (int32_t j = 0; j < s->nb && !S->bad; j++) {
            int32_t b = s->blk[j], len = s->n_tok - j * bt < bt ? s->n_tok - j * bt : bt;
            EXPECT(S, !memcmp(S->content + (size_t)b * bt, s->ph + (size_t)j * bt, sizeof *s->ph * (size_t)len),
                   "sequence %d block %d (%d): holds other KV", i, j, b);
        }
    }
    int32_t n_free = 0, n_used = 0, n_cached = 0;
    for (int32_t b = 0; b < n && !S->bad; b++) {
        EXPECT(S, cnt[b] == S->refs[b], "model: block %d held %d times, refcount %d", b, cnt[b], S->refs[b]);
        EXPECT(S, kvpage_refs(S->pg, b) == S->refs[b], "block %d: refcount %d, held %d times", b,
               kvpage_refs(S->pg, b), S->refs[b]);
        EXPECT(S, kvpage_cached(S->pg, b) == S->rec[b], "block %d: cached %d, node in the model %d", b,
               kvpage_cached(S->pg, b), S->rec[b]);
        if (S->refs[b] > 0)
            n_used++;
        else if (S->rec[b])
            n_cached++;
        else
            n_free++;
        int32_t par, dep, nch;
        const int32_t *tk;
        bool node = prefix_node(S->tr, b, &par, &dep, &nch, &tk);
        EXPECT(S, node == S->rec[b], "block %d: node %d, model %d", b, node, S->rec[b]);
        if (!node || S->bad)
            continue;
        EXPECT(S, par == S->rec_parent[b] && dep == S->rec_depth[b] && nch == S->rec_nchild[b],
               "node %d: parent %d depth %d children %d, model %d %d %d", b, par, dep, nch, S->rec_parent[b],
               S->rec_depth[b], S->rec_nchild[b]);
        EXPECT(S, !memcmp(tk, S->rec_tok + (size_t)b * MAXTOK + (size_t)dep * bt, sizeof *tk * (size_t)bt),
               "node %d: tokens differ from the inserted ones", b);
        EXPECT(S, kvpage_evictable(S->pg, b) == (nch == 0), "node %d with %d children: evictable %d", b, nch,
               kvpage_evictable(S->pg, b));
        EXPECT(S, !memcmp(S->content + (size_t)b * bt, S->rec_ph + (size_t)b * bt, sizeof *S->content * (size_t)bt),
               "node %d: its KV was overwritten", b);
        /* a node whose parent went would be unreachable */
        EXPECT(S, par < 0 || S->rec[par], "node %d lives under evicted parent %d", b, par);
    }
    kvpage_stats st = kvpage_stat(S->pg);
    EXPECT(S, st.total == n && st.free == n_free && st.used == n_used && st.cached == n_cached &&
                  st.free + st.used + st.cached == st.total,
           "stats total %d free %d used %d cached %d, model %d %d %d", st.total, st.free, st.used, st.cached, n_free,
           n_used, n_cached);
    int32_t nl = kvpage_lru(S->pg, S->tmp2, n);
    EXPECT(S, nl == S->n_lru && !memcmp(S->tmp2, S->lru, sizeof *S->lru * (size_t)S->n_lru),
           "LRU list (%d blocks) differs from the model's (%d)", nl, S->n_lru);
    prefix_stats ps = prefix_stat(S->tr);
    EXPECT(S, ps.nodes == S->n_rec && ps.inserted == S->inserted && ps.evicted == S->evictions &&
                  st.evictions == S->evictions && ps.lookups == S->lookups && ps.hit_blocks == S->hit_blocks,
           "tree stats nodes %d inserted %lld evicted %lld lookups %lld hits %lld, model %d %lld %lld %lld %lld",
           ps.nodes, (long long)ps.inserted, (long long)ps.evicted, (long long)ps.lookups, (long long)ps.hit_blocks,
           S->n_rec, (long long)S->inserted, (long long)S->evictions, (long long)S->lookups,
           (long long)S->hit_blocks);
}

static void sim_step(sim *S)
{
    int r = rn(100);
    if (pick_live(S) < 0)
        r = 0;
    if (r < 14)
        op_start(S);
    else if (r < 40)
        op_extend(S);
    else if (r < 48)
        op_fork(S);
    else if (r < 62)
        op_publish(S);
    else if (r < 72) {
        int si = pick_live(S);
        if (si >= 0)
            seq_finish(S, si);
    }
    else if (r < 79)
        op_rewind(S);
    else if (r < 90)
        op_peek(S);
    else
        op_match_release(S);
}

typedef struct {
    int32_t n, bt, hash_bits;
    uint64_t seed;
} sim_cfg;

static int64_t total_steps;
static double total_s;

/* Runs one configuration; returns the digest of its allocations and
 * matches (0 on failure). */
static uint64_t run_sim(sim_cfg c, int64_t steps, bool report)
{
    char name[160];
    snprintf(name, sizeof name, "random: %d blocks, %d tokens per block, %d-bit hash, seed %llu, %lld steps", c.n,
             c.bt, c.hash_bits, (unsigned long long)c.seed, (long long)steps);
    sim *S = sim_new(c.n, c.bt, c.hash_bits, c.seed);
    if (!S) {
        t_check(false, name, "setup failed: %s", err_msg());
        return 0;
    }
    double t0 = now_s();
    for (S->step = 0; S->step < steps && !S->bad; S->step++) {
        sim_step(S);
        if (!S->bad)
            check_all(S);
    }
    double dt = now_s() - t0;
    /* at the end every sequence finishes: everything is free or cached */
    for (int i = 0; i < MAXSEQ && !S->bad; i++)
        if (S->s[i].live)
            seq_finish(S, i);
    if (!S->bad)
        check_all(S);
    kvpage_stats st = kvpage_stat(S->pg);
    EXPECT(S, st.used == 0 && st.free + st.cached == c.n, "after all finished: %d used", st.used);
    uint64_t d = S->bad ? 0 : S->digest | 1;
    if (report) {
        t_check(!S->bad, name, "%s", S->err);
        printf("INFO kvpage %d x %d hash %d seed %llu: %.2f s, %lld allocs (%lld failed), %lld evictions, %lld preempts, "
               "%lld copy-on-write, %lld abandoned, %lld lookups hitting %lld blocks, %lld nodes inserted\n",
               c.n, c.bt, c.hash_bits, (unsigned long long)c.seed, dt, (long long)S->allocs, (long long)S->alloc_fail,
               (long long)S->evictions, (long long)S->preempts, (long long)S->cows, (long long)S->abandoned,
               (long long)S->lookups, (long long)S->hit_blocks, (long long)S->inserted);
        total_steps += S->step;
        total_s += dt;
    }
    sim_free(S);
    return d;
}

int main(void)
{
    test_lru_order();
    test_parent_child();
    test_available();
    test_errors();
    test_hash_table(64);
    test_hash_table(2);
    test_aborts();

    int64_t steps = getenv("SOV_SANITIZED") ? 50000 : 200000;
    const char *env = getenv("SOV_KVPAGE_STEPS");
    if (env && atoll(env) > 0)
        steps = atoll(env);
    const sim_cfg cfg[] = {
        {8, 32, 64, 1},   {8, 32, 64, 2},   {8, 1, 64, 3},   {16, 4, 2, 4},    {32, 32, 64, 5},  {64, 2, 64, 6},
        {128, 8, 3, 7},   {256, 32, 64, 8}, {512, 32, 64, 9}, {512, 4, 2, 10},
    };
    for (size_t i = 0; i < sizeof cfg / sizeof cfg[0]; i++)
        run_sim(cfg[i], steps, true);
    printf("INFO kvpage random: %lld steps in %.2f s\n", (long long)total_steps, total_s);

    sim_cfg dc = {64, 4, 64, 99};
    uint64_t d1 = run_sim(dc, 20000, false), d2 = run_sim(dc, 20000, false);
    t_check(d1 && d1 == d2, "deterministic: the same seed gives the same allocations and matches",
            "%llx vs %llx", (unsigned long long)d1, (unsigned long long)d2);
    return t_done();
}
