/* tok_heap: the priority queue of candidate merges shared by the SPM and BPE
 * tokenizers. Lower key pops first; ties pop the leftmost pair first. */
#ifndef SOV_TOK_HEAP_H
#define SOV_TOK_HEAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct tok_pair {
    double key;          /* SPM: -score, BPE: merge rank */
    int32_t left, right; /* symbol indices */
    size_t size;         /* combined byte length when queued (stale check) */
} tok_pair;

typedef struct tok_heap {
    tok_pair *b;
    size_t n, cap;
} tok_heap;

/* Adds x. Errors: SOV_ENOMEM (the heap is unchanged). */
int tok_heap_push(tok_heap *h, tok_pair x);

/* Removes and returns the first pair; caller ensures h->n > 0. */
tok_pair tok_heap_pop(tok_heap *h);

/* Frees the storage and empties the heap. */
void tok_heap_free(tok_heap *h);

#endif
