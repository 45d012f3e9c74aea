/* ttype: tensor element types as numbered by GGUF/ggml, with block geometry. */
#ifndef SOV_TTYPE_H
#define SOV_TTYPE_H

#include <stdbool.h>
#include <stdint.h>

enum sov_type {
    SOV_F32 = 0,
    SOV_F16 = 1,
    SOV_Q4_0 = 2,
    SOV_Q4_1 = 3,
    SOV_Q5_0 = 6,
    SOV_Q5_1 = 7,
    SOV_Q8_0 = 8,
    SOV_Q8_1 = 9,
    SOV_Q2_K = 10,
    SOV_Q3_K = 11,
    SOV_Q4_K = 12,
    SOV_Q5_K = 13,
    SOV_Q6_K = 14,
    SOV_Q8_K = 15,
    SOV_BF16 = 30,
    SOV_TYPE_COUNT = 31 /* array bound for per-type tables */
};

#define QK_K 256 /* super-block size of the k-quants */

typedef struct ttype_traits {
    const char *name;  /* "q4_0" ... */
    int32_t blck;      /* elements per block */
    int32_t size;      /* bytes per block */
    bool supported;    /* sov can dequantize and compute with it */
} ttype_traits;

/* Traits of type t, or NULL if t is not a known GGUF type id. */
const ttype_traits *ttype_get(uint32_t t);

/* Name of t ("q4_k"), or "unknown". */
const char *ttype_name(uint32_t t);

/* Bytes for n elements of type t into *out. Returns 0, or SOV_EFORMAT if t is
 * unknown, n is not a multiple of the block size, or the size overflows. */
int ttype_nbytes(uint32_t t, int64_t n, uint64_t *out);

/* Type id for a name as printed by ttype_name (case-insensitive); -1 if none. */
int ttype_from_name(const char *name);

#endif
