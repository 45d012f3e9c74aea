/* gbnf: GBNF text -> the compiled grammar that the matcher (gram.c) runs.
 * Private to src/grammar.
 *
 * A compiled grammar is flat: rule r's alternatives are
 * alt_first[rule_alt[r] .. rule_alt[r + 1]); each alternative is a run of
 * elements el[alt_first[a] ..] ending in a GBNF_END element. An element is a
 * character set (one code point of a literal, a [class], or `.`) or a
 * reference to a rule. Groups and repetitions are rules of their own:
 * x* -> R ::= x R | ; x+ -> x R ; x? -> R ::= x | ; x{m,n} -> m copies of x,
 * then n - m nested optionals (x (x (x)?)?)?, one rule each. */
#ifndef SOV_GBNF_H
#define SOV_GBNF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gram.h"

enum { GBNF_END = 0, GBNF_CHARSET = 1, GBNF_REF = 2 };

typedef struct {
    int32_t type; /* GBNF_* */
    int32_t arg;  /* GBNF_CHARSET: index into cs; GBNF_REF: rule id */
} gbnf_elem;

enum { GBNF_HI_NONE = 0, GBNF_HI_ALL = 1, GBNF_HI_SOME = 2 };

/* A set of code points: sorted, disjoint, non-adjacent ranges
 * rng[2 * r0 + 2k] .. rng[2 * r0 + 2k + 1] (inclusive), k < nr, negation
 * already applied; ascii: bit c set when code point c < 128 is in the set;
 * hi: GBNF_HI_* whether it holds none, all or some of the code points
 * from U+0080 that UTF-8 can encode (surrogates aside). */
typedef struct {
    uint64_t ascii[2];
    uint32_t r0, nr;
    uint32_t hi;
} gbnf_cset;

struct gram {
    gbnf_elem *el;
    int32_t n_el;
    gbnf_cset *cs;
    int32_t n_cs;
    uint32_t *rng; /* range bounds, pairs */
    int32_t *alt_first; /* n_alts: first element of each alternative */
    int32_t *rule_alt;  /* n_rules + 1 */
    int32_t n_alts, n_rules;
    int32_t root;
};

/* Compiles src[0..len) into *out (caller frees with gbnf_free). Errors:
 * SOV_EINVAL with err_msg() "grammar LINE:COL: what", SOV_ENOMEM. */
int gbnf_compile(gram **out, const char *src, size_t len);
void gbnf_free(gram *g);

/* Whether code point cp is in c. */
static inline bool gbnf_cset_has(const gram *g, const gbnf_cset *c, uint32_t cp)
{
    if (cp < 128)
        return (c->ascii[cp >> 6] >> (cp & 63)) & 1;
    const uint32_t *r = g->rng + 2 * (size_t)c->r0;
    uint32_t lo = 0, hi = c->nr;
    while (lo < hi) { /* first range whose upper bound is >= cp */
        uint32_t mid = (lo + hi) / 2;
        if (r[2 * mid + 1] < cp)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < c->nr && r[2 * lo] <= cp;
}

/* Whether c holds some code point of [lo, hi]. */
static inline bool gbnf_cset_meets(const gram *g, const gbnf_cset *c, uint32_t lo, uint32_t hi)
{
    const uint32_t *r = g->rng + 2 * (size_t)c->r0;
    uint32_t a = 0, b = c->nr;
    while (a < b) {
        uint32_t mid = (a + b) / 2;
        if (r[2 * mid + 1] < lo)
            a = mid + 1;
        else
            b = mid;
    }
    return a < c->nr && r[2 * a] <= hi;
}

#endif
