/* gram: grammar-constrained sampling. Grammars in GBNF, the notation of
 * llama.cpp's .gbnf files (rule ::= alternatives; "literal" with escapes,
 * [a-z] / [^"\\] classes, . any character, ( ) groups, * + ? {m} {m,} {m,n}
 * repetitions, # comments; the start rule is `root`).
 *
 * A compiled grammar (gram) is immutable and may be shared by threads. A
 * matcher (gram_state) follows one generation: the set of pushdown stacks
 * that the bytes so far leave open, plus an incomplete UTF-8 character.
 * gram_vocab is a byte trie of a vocabulary's token pieces, built once per
 * vocabulary, so that gram_mask walks the trie with the matcher instead of
 * every token one by one.
 *
 * Text is matched as Unicode code points decoded from UTF-8; a token may end
 * inside a character (the rest must come with the next tokens) and may span
 * several grammar elements and rules. Invalid UTF-8 never matches. */
#ifndef SOV_GRAM_H
#define SOV_GRAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../tok/vocab.h"

typedef struct gram gram;
typedef struct gram_state gram_state;
typedef struct gram_vocab gram_vocab;

/* Compiles GBNF text src[0..len) with start rule `root`. Errors: SOV_EINVAL
 * with err_msg() "grammar LINE:COL: what" (syntax, undefined rule, missing
 * root, left recursion, empty character class...), SOV_ENOMEM. */
int gram_parse(gram **out, const char *src, size_t len);
void gram_free(gram *g);

/* Number of rules after compilation (repetitions and groups become rules of
 * their own), for diagnostics. */
int gram_n_rules(const gram *g);

/* A matcher at the start of g (borrowed; must outlive it). Errors:
 * SOV_ENOMEM. */
int gram_state_new(gram_state **out, const gram *g);
void gram_state_free(gram_state *s);

/* A copy of s (same grammar, same position). Errors: SOV_ENOMEM. */
int gram_state_clone(gram_state **out, const gram_state *s);

/* Advances s over the bytes p[0..n). Returns 0, or SOV_EINVAL when the
 * bytes cannot continue the grammar (s unchanged then), SOV_ENOMEM. */
int gram_accept_bytes(gram_state *s, const char *p, size_t n);

/* Whether the text so far is a whole sentence of the grammar (no pending
 * UTF-8 bytes): end of generation is allowed here. */
bool gram_can_end(const gram_state *s);

/* Whether nothing more can follow (every open stack is complete): the
 * generation should end now. */
bool gram_done(const gram_state *s);

/* The trie of v's token pieces (v borrowed; must outlive it). Pieces are
 * vocab_piece(v, prev, id, ...) with prev a token that is not BOS; the
 * tokens whose piece differs right after BOS (or at the very start), such as
 * SPM's leading space, are kept apart too. End-of-generation tokens
 * (vocab_is_eog) and tokens with empty pieces are noted. Errors: SOV_ENOMEM. */
int gram_vocab_new(gram_vocab **out, const vocab *v);
void gram_vocab_free(gram_vocab *tv);

/* allowed[0..n_vocab) = 1 for every token that may come next in s, 0 for the
 * others: a token is allowed when its whole piece continues the grammar;
 * end-of-generation tokens only where gram_can_end; other empty-piece
 * (control) tokens never. prev: the token before (its piece rules apply as
 * in vocab_piece; -1 at the start). Does not change s. Returns the number
 * of allowed tokens (0: nothing can continue: the grammar is stuck), or
 * SOV_ENOMEM. */
int gram_mask(gram_state *s, const gram_vocab *tv, int32_t prev, uint8_t *allowed);

/* Advances s over token tok's piece (after prev, as gram_mask); an
 * end-of-generation token is accepted where gram_can_end and leaves s as
 * it is. Returns 0, SOV_EINVAL (not allowed here; s unchanged), SOV_ENOMEM. */
int gram_accept_token(gram_state *s, const gram_vocab *tv, int32_t prev, int32_t tok);

#endif
