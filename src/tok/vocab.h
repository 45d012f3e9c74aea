/* vocab: tokenizer loaded from GGUF metadata (tokenizer.ggml.*).
 *
 * Supports tokenizer.ggml.model = "llama" (SentencePiece-style, tok_spm.c),
 * "gpt2" (byte-level BPE with merges, tok_bpe.c) and "bert" (BERT uncased
 * WordPiece, tok_wpm.c; BOS/EOS default to [CLS]/[SEP], both added). The vocab keeps
 * pointers into the gguf's mapping: the gguf must outlive the vocab. */
#ifndef SOV_VOCAB_H
#define SOV_VOCAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../format/gguf.h"

typedef struct vocab vocab;

enum vocab_kind { VOCAB_SPM = 1, VOCAB_BPE = 2, VOCAB_WPM = 3 };

/* Loads the tokenizer described by g's metadata into *out (owned by caller,
 * vocab_free). Errors: SOV_ENOTFOUND (no tokenizer metadata), SOV_EFORMAT
 * (inconsistent arrays, bad ids), SOV_EUNSUPPORTED (other tokenizer models,
 * unknown pre-tokenizer), SOV_ENOMEM. */
int vocab_load(vocab **out, const gguf *g);
void vocab_free(vocab *v);

int vocab_kind_of(const vocab *v);         /* enum vocab_kind */
const char *vocab_model_name(const vocab *v); /* "llama" / "gpt2" / "bert" */
const char *vocab_pre_name(const vocab *v);   /* tokenizer.ggml.pre or "default" */
int32_t vocab_n_tokens(const vocab *v);
int32_t vocab_bos(const vocab *v);         /* -1 if none */
int32_t vocab_eos(const vocab *v);         /* -1 if none */
bool vocab_add_bos(const vocab *v);        /* tokenizer.ggml.add_bos_token (or model default) */
bool vocab_add_eos(const vocab *v);
bool vocab_is_eog(const vocab *v, int32_t id); /* end of generation (eos, eot, ...) */

/* Token text exactly as stored in the vocab (not NUL-terminated: *len). */
const char *vocab_token_text(const vocab *v, int32_t id, size_t *len);

/* Tokenizes text[0..len) as llama.cpp's llama_tokenize does. add_special:
 * add BOS/EOS according to the vocab's flags. Special-token text in the input
 * maps to its token (longest text first): user-defined tokens always,
 * control and unknown ones only with parse_special (token classes follow
 * llama.cpp: from tokenizer.ggml.token_type, with end-of-generation and FIM
 * texts made control). Whitespace next to a special token is kept, except
 * where llama.cpp strips it by model name: general.name containing
 * phi-3/phi3 drops the whitespace after every special token but <unk>, <s>
 * and <|endoftext|>; jina-v2 / nomic-bert-moe / modern-bert vocabs drop it
 * before <mask> / [MASK]. SPM vocabs that add a space prefix prepend ' ' to
 * each run of text that starts the input or follows a special token.
 * *ids is malloc'd (caller frees), *n_ids its count.
 * Errors: SOV_ENOMEM, SOV_EFORMAT (unencodable input). */
int vocab_encode(const vocab *v, const char *text, size_t len, bool add_special,
                 bool parse_special, int32_t **ids, size_t *n_ids);

/* Bytes of token `id` as it appears in generated text: SPM U+2581 -> space,
 * <0xNN> -> the raw byte, BPE byte-level unicode -> the raw bytes, WordPiece
 * word-initial piece -> a space then the piece (no space when prev is BOS or
 * -1), WordPiece continuation piece -> the piece, control tokens
 * (BOS/EOS/...) -> nothing. WordPiece text is normalized (lowercased, accents
 * stripped), so its pieces give that text, not the input. If `prev` is the BOS token (or -1 meaning
 * start of text) and the vocab adds a space prefix (SPM), one leading space
 * is dropped. Writes at most cap bytes to buf; returns the number of bytes of
 * the piece (may be > cap: call again with a bigger buffer), or SOV_EINVAL
 * for an id out of range. Bytes of a UTF-8 character split across tokens
 * come out exactly, so concatenating pieces reproduces the text. */
int vocab_piece(const vocab *v, int32_t prev, int32_t id, char *buf, size_t cap);

#endif
