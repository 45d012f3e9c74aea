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
 * several grammar elements and rules. Invalid UTF-8 never matches (stray
 * continuation bytes, overlong forms, surrogates, beyond U+10FFFF).
 *
 * Syntax details: rule names are [a-zA-Z0-9_-]+; a rule runs on across
 * lines until a line that starts the next one (`name ::=`); literal and
 * class escapes are \n \r \t \\ \" \' \[ \] \xHH \uHHHH \UHHHHHHHH; in a
 * class, '-' first or last is itself; an empty alternative matches the
 * empty string (`a ::= "x" |` is an optional "x"); a repetition applies to
 * the last literal, class, `.`, name or group; bounds are at most 100000.
 * Refused: undefined or twice-defined rules, no `root`, empty classes and
 * left recursion (a rule that can reach itself without consuming a
 * character, also through rules that can match empty, e.g. ("a"?)*).
 *
 * Threads: a gram and a gram_vocab are read-only after creation and may be
 * shared; a gram_state belongs to one thread at a time (gram_mask uses
 * scratch memory inside it). */
#ifndef SOV_GRAM_H
#define SOV_GRAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../tok/vocab.h"

typedef struct gram gram;
typedef struct gram_state gram_state;
typedef struct gram_vocab gram_vocab;

/* Compiles GBNF text src[0..len) (not NUL-terminated; src is not kept)
 * with start rule `root` into *out (caller frees with gram_free; NULL on
 * error). Errors: SOV_EINVAL with err_msg() "grammar LINE:COL: what"
 * (syntax, undefined rule, missing root, left recursion, empty character
 * class, bad repetition bounds...; LINE and COL count from 1, COL in
 * characters), SOV_ENOMEM. */
int gram_parse(gram **out, const char *src, size_t len);
void gram_free(gram *g); /* NULL is fine */

/* Number of rules after compilation (repetitions and groups become rules of
 * their own), for diagnostics. */
int gram_n_rules(const gram *g);

/* A matcher at the start of g into *out (caller frees with
 * gram_state_free; g borrowed, must outlive it). Errors: SOV_ENOMEM. */
int gram_state_new(gram_state **out, const gram *g);
void gram_state_free(gram_state *s); /* NULL is fine */

/* A copy of s (same grammar, same position, own memory) into *out. Errors:
 * SOV_ENOMEM. */
int gram_state_clone(gram_state **out, const gram_state *s);

/* Advances s over the bytes p[0..n) (all or nothing). Returns 0, or
 * SOV_EINVAL when the bytes cannot continue the grammar or are not valid
 * UTF-8 (s unchanged then; err_msg() names the byte), SOV_ENOMEM (s
 * unchanged). Memory stays bounded by what the open stacks need, however
 * long the generation. */
int gram_accept_bytes(gram_state *s, const char *p, size_t n);

/* Whether the text so far is a whole sentence of the grammar (no pending
 * UTF-8 bytes): end of generation is allowed here. */
bool gram_can_end(const gram_state *s);

/* Whether nothing more can follow (every open stack is complete): the
 * generation should end now. */
bool gram_done(const gram_state *s);

/* The trie of v's token pieces into *out (caller frees with
 * gram_vocab_free; v borrowed, must outlive it). Pieces are
 * vocab_piece(v, prev, id, ...) with prev a token that is not BOS; the
 * tokens whose piece differs right after BOS (or at the very start), such as
 * SPM's leading space, get a second trie of those start pieces. End-of-
 * generation tokens (vocab_is_eog) and tokens with empty pieces are noted.
 * Errors: SOV_ENOMEM, errors of vocab_piece. */
int gram_vocab_new(gram_vocab **out, const vocab *v);
void gram_vocab_free(gram_vocab *tv); /* NULL is fine */

/* allowed[0..n_vocab) = 1 for every token that may come next in s, 0 for the
 * others: a token is allowed when its whole piece continues the grammar
 * (exactly when gram_accept_token would take it); end-of-generation tokens
 * only where gram_can_end; other empty-piece (control) tokens never. prev:
 * the token before (its piece rules apply as in vocab_piece: start pieces
 * for prev -1 or BOS). Does not change s's position (it uses scratch memory
 * inside s). Returns the number of allowed tokens (0: nothing can continue:
 * the grammar is stuck), or SOV_ENOMEM (allowed all 0 then).
 * Cost: a walk of the trie that stops where the grammar refuses a byte, and
 * skips whole subtrees where the state cannot change (inside a string);
 * measured with a JSON grammar and a 32000-token vocabulary: 5-20 us in
 * structural places, ~100 us inside a string (tests/test_gram.c INFO). */
int gram_mask(gram_state *s, const gram_vocab *tv, int32_t prev, uint8_t *allowed);

/* Advances s over token tok's piece (after prev, as gram_mask); an
 * end-of-generation token is accepted where gram_can_end and leaves s as
 * it is. Returns 0, SOV_EINVAL (not allowed here, empty piece, or tok out
 * of range; s unchanged), SOV_ENOMEM. */
int gram_accept_token(gram_state *s, const gram_vocab *tv, int32_t prev, int32_t tok);

#endif
