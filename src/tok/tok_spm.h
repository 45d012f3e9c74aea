/* tok_spm: SentencePiece-style tokenization (highest-score pair merging)
 * plus the small helpers shared by the tokenizers (internal to the engine,
 * used by vocab.c and tok_bpe.c):
 *   tok_map  - open-addressing hash table from token text to id,
 *   tok_ids  - growable id vector.
 * Nothing here owns token text: strings point into the gguf mapping. */
#ifndef SOV_TOK_SPM_H
#define SOV_TOK_SPM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../format/gguf.h"

/* 64-bit FNV-1a style hash of n bytes, continuing from state h (start with
 * TOK_HASH_INIT). Streaming: hashing "ab" equals hashing "a" then "b". */
#define TOK_HASH_INIT 0xcbf29ce484222325ULL
uint64_t tok_hash(uint64_t h, const void *s, size_t n);

/* Text -> id map over an array of n strings (the token texts). */
typedef struct tok_map {
    int32_t *slot;        /* id or -1; capacity mask+1 (power of two) */
    uint64_t mask;
    const gguf_str *keys; /* keys[id] is the text of id */
} tok_map;

/* Builds the map over keys[0..n). When texts repeat, the highest id wins.
 * Returns 0 or SOV_ENOMEM. tok_map_free releases it (zeroed map is fine). */
int tok_map_build(tok_map *m, const gguf_str *keys, int32_t n);
void tok_map_free(tok_map *m);

/* Id whose text is exactly s[0..n), or -1. */
int32_t tok_map_find(const tok_map *m, const char *s, size_t n);

/* Growable vector of token ids. */
typedef struct tok_ids {
    int32_t *v;
    size_t n, cap;
} tok_ids;

/* Appends id; 0 or SOV_ENOMEM. */
int tok_ids_push(tok_ids *o, int32_t id);

/* Number of bytes of the UTF-8 sequence starting with lead byte c, judged
 * from the lead byte only (1 for ASCII and stray continuation bytes). */
static inline size_t tok_utf8_len(unsigned char c)
{
    static const unsigned char t[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return t[c >> 4];
}

/* What the SPM algorithm needs from the vocabulary. */
typedef struct spm_vocab {
    const tok_map *map;    /* text -> id over all tokens */
    const float *scores;   /* n scores */
    int32_t n;
    int32_t byte_id[256];  /* token for raw byte b (<0xNN> or the 1-byte text), or -1 */
    int32_t unk;           /* unknown token or -1 */
    bool add_space_prefix; /* prepend ' ' to each raw fragment that starts the text or follows a special token */
} spm_vocab;

/* Tokenizes one raw text fragment text[0..len) and appends the ids to out.
 * If space_prefix, a ' ' is prepended; all spaces become U+2581 before the
 * merging. Characters that are no token fall back to byte tokens, then to
 * unk. Errors: SOV_ENOMEM, SOV_EFORMAT (a byte with neither byte token nor
 * unk token). */
int spm_encode(const spm_vocab *s, const char *text, size_t len, bool space_prefix, tok_ids *out);

#endif
