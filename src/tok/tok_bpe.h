/* tok_bpe: byte-level BPE (GPT-2 style) with merge ranks and a pre-tokenizer
 * (one or more PCRE2 regexes chosen by tokenizer.ggml.pre). Internal to the
 * engine, used by vocab.c. */
#ifndef SOV_TOK_BPE_H
#define SOV_TOK_BPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../format/gguf.h"
#include "tok_spm.h"

typedef struct bpe_vocab bpe_vocab;

/* Builds the BPE state: merge-rank table from `merges` (array of "left right"
 * strings; the first occurrence of a pair keeps its rank) and the regexes for
 * pre-tokenizer `pre`: "default" is llama.cpp's legacy default set; NULL (no
 * tokenizer.ggml.pre in the file) is the plain GPT-2 regex, the byte-level
 * default of HF tokenizers (gpt-neox, ...). `map` (token text
 * -> id) must outlive *out. unk: id for unencodable pieces, or -1.
 * Errors: SOV_EUNSUPPORTED (unknown pre name), SOV_EFORMAT (malformed merge),
 * SOV_ENOMEM. */
int bpe_create(bpe_vocab **out, const tok_map *map, const gguf_value *merges, const char *pre, int32_t unk);
void bpe_destroy(bpe_vocab *b);

/* Whether this pre-tokenizer's models add BOS when the GGUF does not say. */
bool bpe_default_add_bos(const bpe_vocab *b);

/* Tokenizes raw text[0..len) (one fragment, no special tokens) and appends
 * ids to out. Errors: SOV_ENOMEM, SOV_EFORMAT (a piece with no token and no
 * unk), SOV_EINVAL (regex engine failure). */
int bpe_encode(const bpe_vocab *b, const char *text, size_t len, tok_ids *out);

/* Raw bytes of byte-level token text s[0..n) (each char of the GPT-2
 * byte<->unicode table becomes its byte; other chars are copied as UTF-8).
 * Writes at most cap bytes to buf; returns the full byte count. */
size_t bpe_decode_text(const char *s, size_t n, char *buf, size_t cap);

#endif
