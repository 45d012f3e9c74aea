/* prefix: the radix tree of cached prompt prefixes over a kvpage pool, by
 * full blocks. A node is one full block of bt token ids following its
 * parent's tokens (the root is the empty prefix), and holds the KV block
 * computed for exactly that prefix: K/V at a position depend only on the
 * tokens up to it, so any sequence starting with the same tokens can use
 * the block instead of computing it. Partial blocks are never shared.
 *
 * Storage: nodes are indexed by their block id (a block holds at most one
 * node), so all node arrays are made once for the pool's n_blocks and the
 * eviction callback finds its node in O(1). Children are found through one
 * open-addressing hash table (linear probing, at most half full, deletion
 * by backward shift, so no tombstones) keyed by (parent node, 64-bit hash
 * of the child's bt tokens), each hit confirmed by comparing all bt tokens.
 * A lookup step costs O(bt) plus a short probe; nothing is allocated after
 * prefix_new.
 *
 * Eviction: the tree keeps a node's block evictable in the pool exactly
 * while the node has no children (kvpage_set_evictable), so the pool evicts
 * leaves only; the eviction callback removes the node, and a parent that
 * lost its last child becomes evictable again (only the tree may change
 * the evictable mark of its blocks: evicting a node that still has children
 * aborts with a message). Blocks in the tree are
 * marked cached: they stay in the pool with refcount 0 after their users
 * release them, on the pool's LRU list.
 *
 * A sequence must never write into a block it shares: one with refcount
 * above 1 or one that is cached (kvpage_cached: the tree may hand it out).
 * It copies the block first (copy-on-write).
 *
 * Not thread-safe; the pool's owner thread owns the tree too. */
#ifndef SOV_PREFIX_H
#define SOV_PREFIX_H

#include <stdbool.h>
#include <stdint.h>

#include "../engine/kvpage.h"

typedef struct prefix prefix;

/* An empty tree over pool pg (borrowed: it must outlive the tree) with
 * blocks of bt tokens (KV_TILE for the engine's cache); registers the
 * tree's eviction callback on pg (kvpage_on_evict). *out owned by the
 * caller (prefix_free). Errors: SOV_EINVAL (pg NULL, bt < 1 or above
 * 65536), SOV_ENOMEM. */
int prefix_new(prefix **out, kvpage *pg, int32_t bt);

/* Frees the tree; NULL is fine. Its blocks are unmarked in the pool (the
 * unreferenced ones become free) and the eviction callback is cleared. */
void prefix_free(prefix *t);

/* The longest chain of tree nodes matching tokens[0..n) by full blocks:
 * writes their block ids to blocks[] (capacity n / bt) and takes one
 * reference on each (kvpage_ref; the caller owns those references and
 * drops them with kvpage_unref). A referenced block is off the pool's LRU
 * list; when its last reference goes it rejoins it as most recent, so
 * matched blocks count as the most recently used. Returns how many (0 ..
 * n / bt). Counted in prefix_stat (lookups, hit_blocks). */
int32_t prefix_match(prefix *t, const int32_t *tokens, int32_t n, int32_t *blocks);

/* prefix_match without side effects: no references, no statistics, no
 * change of LRU order; blocks may be NULL. What a match would give now. */
int32_t prefix_peek(const prefix *t, const int32_t *tokens, int32_t n, int32_t *blocks);

/* Publishes the full blocks of a sequence: tokens[0..n) whose KV is in
 * blocks[0..n/bt), on each of which the caller holds a reference. Where the
 * tree already has a node for the same tokens, that node stays and the
 * caller's block is not inserted (it keeps using its own copy); the walk
 * continues below the tree's node. Each other block becomes a node (marked
 * cached and evictable, its parent no longer evictable) and stays in the
 * tree after the caller's references go. Returns how many nodes were added
 * (0 .. n / bt). Errors: SOV_EINVAL when a block to insert is out of range,
 * unreferenced, or already a node for another prefix (the blocks do not
 * belong to these tokens); the nodes added before it stay. (The node
 * storage is preallocated, so SOV_ENOMEM cannot happen.) */
int32_t prefix_insert(prefix *t, const int32_t *tokens, int32_t n, const int32_t *blocks);

/* nodes: now in the tree; lookups: prefix_match calls; hit_blocks: blocks
 * they returned; inserted, evicted: nodes added / removed by eviction. */
typedef struct prefix_stats {
    int32_t nodes;
    int64_t lookups, hit_blocks, inserted, evicted;
} prefix_stats;

prefix_stats prefix_stat(const prefix *t);

/* The node holding block b, for tests and debugging: returns false when b
 * is in no node; else sets (each pointer may be NULL) *parent to the
 * parent's block (-1: b is a first block), *depth to the number of blocks
 * before it, *n_child to its children, and *tokens to its bt tokens
 * (borrowed, valid until the node goes). */
bool prefix_node(const prefix *t, int32_t b, int32_t *parent, int32_t *depth, int32_t *n_child,
                 const int32_t **tokens);

/* For tests of the full token compare: keeps only the low `bits` bits
 * (0 .. 64; 64 = all, the default) of every block hash, so different
 * blocks collide (and crowd the same table slots). Only on an empty tree.
 * Errors: SOV_EINVAL (bits out of range, tree not empty). */
int prefix_test_hash_bits(prefix *t, int bits);

/* Checks the tree's internal consistency: every node reachable from the
 * hash table under its parent, hashes, depths and child counts right, the
 * table holding nothing else, and in the pool every node's block cached
 * and evictable exactly when it has no children. Returns 0, or SOV_EFORMAT
 * with a message naming the first defect. O(n_blocks * bt); for tests. */
int prefix_check(const prefix *t);

#endif
