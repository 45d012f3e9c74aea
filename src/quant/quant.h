/* quant: float rows -> GGUF tensor types, the inverse of the reference
 * dequantizers in kern/kern_ref.c (which define the block layouts).
 *
 * Every quantizer works on one row of n floats (n a multiple of the type's
 * block size) and is deterministic: the same input gives the same bytes,
 * whatever thread runs it. Scales are chosen by a small search (candidate
 * scales around the max-based one, each refined by least squares on its
 * rounded codes, the best kept); the k-quants then quantize the per-sub-block
 * scales/mins against the super-block d/dmin and refine d/dmin by least
 * squares over the super-block. Inputs must be finite; huge values are
 * clamped to what the f16 block scales can express.
 *
 * Also here: the quantization "mixes" (q4_k_m, ...) that pick a type per
 * tensor, shared by `sov quantize` and `sov synth`. */
#ifndef SOV_QUANT_H
#define SOV_QUANT_H

#include <stdbool.h>
#include <stdint.h>

#include "../base/pool.h"

/* True if quant_row can produce `type`: F32 F16 BF16 Q8_0 Q4_0 Q4_1 Q5_0
 * Q5_1 Q4_K Q5_K Q6_K. */
bool quant_supported(uint32_t type);

/* dst = type-encoding of x[0..n)   (n / blck blocks of ttype_get(type)->size bytes)
 * n must be a multiple of the block size. dst must hold the encoded row
 * (ttype_nbytes). Errors: SOV_EINVAL (type not quant_supported, bad n). */
int quant_row(uint32_t type, const float *x, void *dst, int64_t n);

/* Produces row `row` (n floats) of a matrix into out. Must be safe to call
 * from several threads at once for different rows. */
typedef void (*quant_src_fn)(void *ctx, int64_t row, float *out, int64_t n);

/* dst[r] = quant_row(type, src(r))   for r < n_rows; rows of n_cols elements
 * are stored back to back (row r at r * row_bytes). Rows are handed out to
 * the threads of p (NULL: the calling thread only) in small chunks; the
 * bytes do not depend on the thread count. Errors: SOV_EINVAL (type, n_cols
 * not a multiple of the block size), SOV_ENOMEM. */
int quant_rows(pool *p, uint32_t type, int64_t n_rows, int64_t n_cols, quant_src_fn src, void *ctx, void *dst);

/* ---- per-tensor type choice ---- */

/* A target of `sov quantize` / `sov synth --type`: one type everywhere, or a
 * mix. Mixes (q4_k_m, q5_k_m) use `base` everywhere except output.weight
 * and, on "more bits" layers (quant_more_bits), attn_v.weight and
 * ffn_down.weight, which get `more`. */
typedef struct quant_mix {
    const char *name; /* "q4_k_m" */
    uint32_t base;    /* type of 2-D weights */
    uint32_t more;    /* type of the more-bits tensors (== base for single types) */
    uint32_t ftype;   /* general.file_type: llama.cpp's LLAMA_FTYPE number */
} quant_mix;

/* The mix called `name` (case-insensitive: f32 f16 bf16 q8_0 q4_0 q4_1 q5_0
 * q5_1 q4_k q5_k q6_k q4_k_m q5_k_m), or NULL. */
const quant_mix *quant_mix_find(const char *name);

/* The accepted names, comma separated (static string, for messages). */
const char *quant_mix_names(void);

/* llama.cpp's "more bits" layers for attn_v / ffn_down of the _M mixes:
 * i < n/8 || i >= 7n/8 || (i - n/8) % 3 == 2 (integer division). */
bool quant_more_bits(int64_t layer, int64_t n_layer);

/* Type a tensor gets under mix m, before the row-length fallback: F32 for
 * 1-D tensors (norms, biases); for the rest, m->more for output.weight and
 * for blk.N.attn_v.weight / blk.N.ffn_down.weight when quant_more_bits(N,
 * n_layer), else m->base. name: the GGUF tensor name. */
uint32_t quant_pick_type(const quant_mix *m, const char *name, uint32_t n_dims, int64_t n_layer);

/* A type that can hold rows of ne0 elements, starting from `want`: want
 * itself if ne0 is a multiple of its block size; else the k-quants fall back
 * to a 32-element format of similar precision (q4_k -> q5_0, q5_k -> q5_1,
 * q6_k -> q8_0, as llama.cpp does), and a 32-element format (or a k-quant
 * whose fallback does not fit either) falls back to f16. */
uint32_t quant_fit_type(uint32_t want, int64_t ne0);

#endif
