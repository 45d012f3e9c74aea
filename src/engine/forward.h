/* forward: the llama-family forward pass over a batch of tokens.
 *
 * A forward context owns the KV cache (blocks of KV_TILE positions, mapped
 * to the n_seq sequences of up to n_ctx positions by block tables; kv.h)
 * and the scratch buffers for a batch of tokens; nothing is allocated per
 * token. */
#ifndef SOV_FORWARD_H
#define SOV_FORWARD_H

#include <stdint.h>

#include "../base/pool.h"
#include "kv.h"
#include "model.h"

typedef struct forward forward;

/* A batch: token[i] at position pos[i] of sequence seq[i]; logits[i] != 0
 * asks for the logits after that token. Tokens are evaluated in order, and a
 * token attends to positions 0..pos[i] of its sequence, which must have been
 * evaluated before (earlier in this batch or in an earlier call), and every
 * tile of its sequence up to pos[i] must be mapped to a KV block. */
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

/* forward_new with a KV cache of n_blocks blocks of KV_TILE positions shared
 * by the n_seq sequences (each up to n_ctx positions) through block tables
 * that start unmapped (forward_map); n_blocks 0 is forward_new's fixed
 * region per sequence. Errors: as forward_new. */
int forward_new_paged(forward **out, const model *m, int32_t n_ctx, int32_t n_seq, int32_t n_blocks, pool *p);

/* forward_new_paged with a KV cache of element type kv_type (enum kv_type,
 * kv.h: KV_F32, KV_F16 or KV_Q8_0); forward_new and forward_new_paged make
 * KV_F32. K and V are converted (f16) or quantized (q8_0) as each token is
 * stored and decoded exactly when attention reads them; each type gives the
 * same bits for any thread count, batch size and block placement (KV_F32
 * the same bits as before types existed). Errors: as forward_new, and
 * SOV_EINVAL for an unknown type. */
int forward_new_kv(forward **out, const model *m, int32_t n_ctx, int32_t n_seq, int32_t n_blocks, int kv_type,
                   pool *p);

/* The element type of the context's KV cache (enum kv_type). */
int forward_kv_type(const forward *f);

void forward_free(forward *f);

/* Maps tile `tile` (positions tile*KV_TILE ..) of sequence seq to KV block
 * `block` (-1 unmaps it). Blocks may be shared by sequences (the same
 * prefix): a position's K/V depend only on the tokens up to it, so results
 * are the same as with a private copy. Errors: SOV_EINVAL (out of range). */
int forward_map(forward *f, int32_t seq, int32_t tile, int32_t block);

/* Copies the K and V of every layer of block src into block dst (copy on
 * write), in any KV type (q8_0: codes and scales). Errors: SOV_EINVAL (out
 * of range). */
int forward_copy_block(forward *f, int32_t dst, int32_t src);

/* KV blocks of the context. */
int32_t forward_n_blocks(const forward *f);

/* Evaluates the batch, in chunks of at most the batch size (forward_set_batch)
 * as matrix-matrix products; a chunk also ends where a sequence's position
 * does not increase, so the result equals evaluating the tokens in order.
 * Errors: SOV_EINVAL / SOV_ERANGE (token id, sequence or position out of
 * range; the message names which; nothing is evaluated), SOV_ENOMEM. */
int forward_decode(forward *f, const forward_batch *b);

/* Bytes of the working buffers of a forward pass for model hp with batch
 * n_batch (forward_set_batch), n_threads threads and logits for n_logits
 * rows per call (the KV cache not included): what sov info estimates. */
uint64_t forward_scratch_bytes(const model_hparams *hp, int32_t n_batch, int n_threads, int32_t n_logits);

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
