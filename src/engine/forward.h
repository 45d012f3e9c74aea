/* forward: the llama-family forward pass over a batch of tokens.
 *
 * A forward context owns the KV cache (n_ctx positions for each of n_seq
 * sequences) and the scratch buffers for a batch of tokens; nothing is
 * allocated per token. */
#ifndef SOV_FORWARD_H
#define SOV_FORWARD_H

#include <stdint.h>

#include "../base/pool.h"
#include "model.h"

typedef struct forward forward;

/* A batch: token[i] at position pos[i] of sequence seq[i]; logits[i] != 0
 * asks for the logits after that token. Tokens are evaluated in order, and a
 * token attends to positions 0..pos[i] of its sequence, which must have been
 * evaluated before (earlier in this batch or in an earlier call). */
typedef struct forward_batch {
    int32_t n;
    const int32_t *token;
    const int32_t *pos;
    const int32_t *seq;    /* NULL: all sequence 0 */
    const int8_t *logits;  /* NULL: only the last token */
} forward_batch;

/* Creates a context for model m (borrowed: must outlive it) with a KV cache
 * of n_ctx positions x n_seq sequences, computing on pool p (borrowed; NULL
 * runs single-threaded). Errors: SOV_EINVAL, SOV_ENOMEM. */
int forward_new(forward **out, const model *m, int32_t n_ctx, int32_t n_seq, pool *p);

void forward_free(forward *f);

/* Evaluates the batch, in chunks of at most the batch size (forward_set_batch)
 * as matrix-matrix products; a chunk also ends where a sequence's position
 * does not increase, so the result equals evaluating the tokens in order.
 * Errors: SOV_EINVAL / SOV_ERANGE (token id, sequence or position out of
 * range; the message names which; nothing is evaluated), SOV_ENOMEM. */
int forward_decode(forward *f, const forward_batch *b);

/* Sets how many tokens one chunk of forward_decode evaluates together (the
 * scratch is sized for it; default min(512, n_ctx)). Results do not depend on
 * it: every output value is computed the same way at any batch size.
 * Errors: SOV_EINVAL (n_batch outside 1..65536), SOV_ENOMEM (the context is
 * then unusable until a successful call). */
int forward_set_batch(forward *f, int32_t n_batch);

int32_t forward_batch_size(const forward *f);

/* Name of the kernel table this context computes with ("avx512", "avx2",
 * "ref"; static storage). */
const char *forward_kernels(const forward *f);

/* Logits (n_vocab floats) of the k-th batch entry that asked for logits in
 * the last forward_decode; valid until the next call. NULL if k is out of range. */
const float *forward_logits(const forward *f, int32_t k);

int32_t forward_n_ctx(const forward *f);

#endif
