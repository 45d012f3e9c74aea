/* synth: llama GGUF files with seeded random weights in the shape of real
 * models, for benchmarks and tests without downloading weights.
 *
 * Every weight is a pure function of (seed, tensor name, row, column), so
 * the bytes do not depend on the thread count. Matrices are normal-ish
 * (Irwin-Hall sum of four uniforms) with std 0.02, norm weights 1 + 0.02 *
 * the same noise; output.weight is separate (not tied). Tensors are
 * generated and quantized while the file is written, one at a time. */
#ifndef SOV_SYNTH_H
#define SOV_SYNTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../base/pool.h"
#include "../base/progress.h"
#include "quant.h"

typedef struct synth_shape {
    const char *name;     /* "tinyllama-1.1b" */
    const char *desc;     /* one line for --help */
    int64_t n_embd, n_layer, n_head, n_head_kv, n_ff, n_vocab, n_ctx;
    double rope_base, rms_eps;
    bool test_only;       /* a small shape for tests, not a real model */
} synth_shape;

/* The known shapes (static storage) and their count in *n. */
const synth_shape *synth_shapes(size_t *n);

/* The shape called name, or NULL. */
const synth_shape *synth_shape_find(const char *name);

typedef struct synth_opts {
    const quant_mix *mix;   /* tensor types (quant_mix_find); NULL: f16 */
    const char *vocab_path; /* GGUF whose tokenizer.* metadata is copied; NULL: built-in byte vocab */
    uint64_t seed;
    pool *pool;             /* threads (NULL: calling thread only) */
    bool quiet;             /* nothing on stderr */
    progress *prog;         /* bar (NULL: none): reset to the tensor bytes, moved per tensor */
} synth_opts;

/* out[0..n) = the synthetic values of row `row` of tensor `name`
 * (std * noise + mean), a pure function of (seed, name, row, column). */
void synth_row(uint64_t seed, const char *name, int64_t row, float mean, float std, float *out, int64_t n);

/* Writes the model to out_path (via "<out_path>.tmp", renamed when complete,
 * so a failure leaves nothing). Tokenizer: with vocab_path, every
 * tokenizer.* key of that GGUF; a token list shorter than the shape's
 * n_vocab is padded with control tokens "<|synth_pad_N|>" (score 0, type 3;
 * said on stderr), a longer one is an error. Without it, a built-in
 * SentencePiece-style vocab: <unk> <s> </s>, the 256 byte tokens <0xNN>,
 * then padding as above. Errors: SOV_EINVAL (longer vocab, bad shape),
 * SOV_ENOTFOUND (vocab file without tokenizer.ggml.tokens), SOV_EIO,
 * SOV_EFORMAT, SOV_ENOMEM. */
int synth_write(const synth_shape *shape, const char *out_path, const synth_opts *opts);

#endif
