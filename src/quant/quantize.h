/* quantize: GGUF file -> GGUF file with its weights in another type/mix.
 *
 * All metadata is copied (general.file_type set for the mix,
 * general.quantization_version 2 when a quantized type is used). Each
 * tensor's type is chosen by quant_pick_type + quant_fit_type: 2-D (and
 * larger) tensors get the mix's type, 1-D tensors F32, and rows whose length
 * does not fit a type's block fall back (reported on stderr unless quiet).
 * Tensors already in their target type are copied byte for byte; the rest
 * are dequantized row by row with the reference kernels and requantized,
 * in parallel over rows, while the file is written (memory: one tensor). */
#ifndef SOV_QUANTIZE_H
#define SOV_QUANTIZE_H

#include <stdbool.h>
#include <stdint.h>

#include "../base/pool.h"
#include "../base/progress.h"
#include "quant.h"
#include "../format/ttype.h"

typedef struct quantize_opts {
    const quant_mix *mix; /* target (quant_mix_find) */
    pool *pool;           /* threads for the rows (NULL: calling thread only) */
    bool quiet;           /* no fallback lines on stderr */
    progress *prog;       /* bar (NULL: none): reset to the bytes to requantize, moved per tensor */
} quantize_opts;

typedef struct quantize_stats {
    uint64_t n_tensors;
    uint64_t count[SOV_TYPE_COUNT];  /* output tensors per type */
    uint64_t bytes_in, bytes_out;    /* tensor data before / after */
    uint64_t n_fallback;             /* tensors that could not take their type */
    uint64_t n_copied;               /* tensors copied unchanged */
} quantize_stats;

/* Writes in_path quantized per opts to out_path. The file is written to
 * "<out_path>.tmp" and renamed over out_path only when complete, so a
 * failure leaves no (partial) output. stats (may be NULL) receives the
 * summary. Errors: SOV_EINVAL (no mix), SOV_EIO, SOV_EFORMAT (unreadable
 * input), SOV_EUNSUPPORTED (a tensor type sov cannot dequantize), SOV_ENOMEM. */
int quantize_gguf(const char *in_path, const char *out_path, const quantize_opts *opts, quantize_stats *stats);

#endif
