/* kvpage: the block pool of a paged KV cache. The cache is cut into
 * n_blocks blocks of KV_TILE positions; a sequence holds a block table (its
 * blocks in position order) and one reference on each entry. This module
 * only does the bookkeeping: which blocks are free, which are referenced
 * and how often, and which hold KV the prefix tree (server/prefix.h) can
 * hand out again.
 *
 * Every block is in exactly one state:
 *   free        refcount 0, not cached: on the free list
 *   used        refcount > 0 (cached or not): on no list
 *   cached      refcount 0, cached: on the LRU list, least recently
 *               released first
 * A cached block may be evicted (reused for new KV) when nobody references
 * it and the tree said it may go (kvpage_set_evictable: a tree node whose
 * children are still cached must stay, or they could never be matched).
 *
 * Both lists are intrusive doubly linked lists over block indices (int32
 * arrays made once in kvpage_new), so every call is O(1), except that
 * kvpage_alloc, when no block is free, walks the LRU list from its least
 * recent end to the first evictable block: that walk skips the cached
 * blocks the tree pinned (interior nodes), so it costs at most the number
 * of cached blocks older than the victim, and nothing when there is no
 * evictable block (counted). Nothing is allocated after kvpage_new.
 *
 * Not thread-safe: one thread (the scheduler's) owns a pool and its tree.
 * Calls that name a block b require 0 <= b < n_blocks and the state the
 * call documents; a violation is a bug in the caller (like a double free)
 * and aborts with a message on stderr rather than corrupting the lists. */
#ifndef SOV_KVPAGE_H
#define SOV_KVPAGE_H

#include <stdbool.h>
#include <stdint.h>

typedef struct kvpage kvpage;

/* Creates a pool of n_blocks blocks, all free; *out owned by the caller
 * (kvpage_free). The free list starts in block order (the first allocations
 * return 0, 1, 2, ...); freed blocks go to its front and are reused first.
 * Errors: SOV_EINVAL (n_blocks < 1 or above 2^30), SOV_ENOMEM. */
int kvpage_new(kvpage **out, int32_t n_blocks);

/* Frees the pool; NULL is fine. A tree over it must be freed first. */
void kvpage_free(kvpage *p);

/* Called by kvpage_alloc when it evicts cached block `block` for reuse,
 * before the block is handed out, so the prefix tree forgets it. At that
 * point the block is already off the LRU list and no longer cached; the
 * callback may call kvpage_set_evictable on other blocks (a parent that
 * lost its last child) but must not call kvpage_alloc or touch `block`. */
typedef void (*kvpage_evict_fn)(void *ctx, int32_t block);

/* Sets the eviction callback (one per pool; fn NULL: none). ctx is
 * borrowed and passed to fn. Set by prefix_new, cleared by prefix_free. */
void kvpage_on_evict(kvpage *p, kvpage_evict_fn fn, void *ctx);

/* A block for new KV, returned with refcount 1, not cached, evictable: the
 * front of the free list, else the least recently released cached block
 * that kvpage_set_evictable allows (the eviction callback runs first, the
 * eviction is counted). Returns -1, changing nothing, exactly when
 * kvpage_available is 0 (every block referenced or pinned). */
int32_t kvpage_alloc(kvpage *p);

/* Free blocks + cached blocks evictable now. kvpage_alloc fails exactly
 * when this is 0. It is a lower bound on how many allocations in a row
 * succeed: evicting a leaf can make its parent evictable. O(1). */
int32_t kvpage_available(const kvpage *p);

/* Takes a reference on b, which must be used or cached (not free). A
 * cached block with refcount 0 leaves the LRU list (it is in use again). */
void kvpage_ref(kvpage *p, int32_t b);

/* Drops a reference on b (refcount must be > 0). At 0 a cached block joins
 * the LRU list as its most recent entry; an uncached one becomes free (front
 * of the free list). */
void kvpage_unref(kvpage *p, int32_t b);

/* Marks whether b holds KV the prefix tree can hand out again. Marking
 * requires b used or already cached; unmarking a cached block with
 * refcount 0 frees it (off the LRU list, onto the free list); unmarking a
 * used block only clears the mark. */
void kvpage_set_cached(kvpage *p, int32_t b, bool cached);

/* Whether cached block b may be evicted (the tree clears it while b's node
 * has children). Any block; kvpage_alloc resets it to true on the block it
 * returns. */
void kvpage_set_evictable(kvpage *p, int32_t b, bool ok);

/* Refcount of b. */
int32_t kvpage_refs(const kvpage *p, int32_t b);

/* The marks of b (kvpage_set_cached, kvpage_set_evictable). */
bool kvpage_cached(const kvpage *p, int32_t b);
bool kvpage_evictable(const kvpage *p, int32_t b);

/* used = refcount > 0; cached = refcount 0 and cached; free + used + cached
 * == total. evictions counts the cached blocks kvpage_alloc reused. */
typedef struct kvpage_stats {
    int32_t total, free, used, cached;
    int64_t evictions;
} kvpage_stats;

kvpage_stats kvpage_stat(const kvpage *p);

/* Writes the LRU list, least recent first, to out[0..min(cap, cached));
 * returns the number of cached blocks. O(cached); for tests and debugging. */
int32_t kvpage_lru(const kvpage *p, int32_t *out, int32_t cap);

/* Checks the pool's internal consistency: both lists well linked, each
 * block on the list its state says, the counters equal to a recount.
 * Returns 0, or SOV_EFORMAT with a message naming the first defect. O(n);
 * for tests and debugging. */
int kvpage_check(const kvpage *p);

#endif
