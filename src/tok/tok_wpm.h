/* tok_wpm: WordPiece tokenization as used by BERT uncased models
 * (tokenizer.ggml.model = "bert"). Internal to the engine, used by vocab.c.
 *
 * Token texts follow llama.cpp's GGUF convention: a piece that starts a word
 * is stored with a U+2581 prefix ("▁hello"), a continuation piece is stored
 * bare ("hrer", which is "##hrer" in the original BERT vocab.txt).
 *
 * Normalization (BERT uncased, done with libunistring): invalid UTF-8 bytes,
 * U+0000, U+FFFD and format/control/private-use characters are dropped
 * (tab, LF and CR count as whitespace); CJK ideographs become words of their
 * own; the text is lowercased (full case mapping), decomposed (NFD) and its
 * non-spacing marks (category Mn) removed; whitespace (category Z, tab, LF,
 * CR) separates words, and every punctuation character (category P, or ASCII
 * !"#$%&'()*+,-./:;<=>?@[\]^_`{|}~) is a word of its own. Characters that
 * are unassigned in libunistring's Unicode tables are kept (they may be newer
 * characters; they end up as [UNK]). */
#ifndef SOV_TOK_WPM_H
#define SOV_TOK_WPM_H

#include <stddef.h>
#include <stdint.h>

#include "tok_spm.h"

/* Words longer than this many characters (after normalization) give unk. */
#define WPM_MAX_WORD_CHARS 100

/* What WordPiece needs from the vocabulary. */
typedef struct wpm_vocab {
    const tok_map *map; /* text -> id over all tokens */
    int32_t unk;        /* token for words with no tokenization, or -1 */
    size_t max_piece;   /* longest token text in bytes (bounds the search) */
} wpm_vocab;

/* Tokenizes one raw text fragment text[0..len) (no special tokens in it) and
 * appends the ids to out: each word is split greedily into the longest
 * matching piece first, then the longest matching continuation piece, and so
 * on; a word that cannot be split that way, or that is longer than
 * WPM_MAX_WORD_CHARS characters, becomes the single token unk. Errors:
 * SOV_ENOMEM, SOV_EFORMAT (a word needs unk and the vocab has none). */
int wpm_encode(const wpm_vocab *w, const char *text, size_t len, tok_ids *out);

#endif
