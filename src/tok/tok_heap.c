#include "tok_heap.h"

#include "../base/err.h"

#include <stdbool.h>
#include <stdlib.h>

static bool before(const tok_pair *a, const tok_pair *b)
{
    if (a->key != b->key)
        return a->key < b->key;
    return a->left < b->left;
}

int tok_heap_push(tok_heap *h, tok_pair x)
{
    if (h->n == h->cap) {
        size_t nc = h->cap ? h->cap * 2 : 64;
        tok_pair *nb = realloc(h->b, nc * sizeof *nb);
        if (!nb)
            return err_set(SOV_ENOMEM, "vocab: out of memory for the merge queue");
        h->b = nb;
        h->cap = nc;
    }
    size_t i = h->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!before(&x, &h->b[p]))
            break;
        h->b[i] = h->b[p];
        i = p;
    }
    h->b[i] = x;
    return 0;
}

tok_pair tok_heap_pop(tok_heap *h)
{
    tok_pair top = h->b[0];
    tok_pair last = h->b[--h->n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const tok_pair *best = &last;
        if (l < h->n && before(&h->b[l], best)) {
            m = l;
            best = &h->b[l];
        }
        if (r < h->n && before(&h->b[r], best))
            m = r;
        if (m == i)
            break;
        h->b[i] = h->b[m];
        i = m;
    }
    if (h->n > 0)
        h->b[i] = last;
    return top;
}

void tok_heap_free(tok_heap *h)
{
    free(h->b);
    h->b = NULL;
    h->n = h->cap = 0;
}
