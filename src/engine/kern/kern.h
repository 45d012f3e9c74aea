/* kern: per-type compute kernels behind an ops table.
 *
 * kern_ref.c is the scalar reference ("the truth"); faster implementations
 * fill the same table and are checked against it by tests. kern_best()
 * picks the fastest table the CPU supports, at run time. */
#ifndef SOV_KERN_H
#define SOV_KERN_H

#include <stdbool.h>
#include <stdint.h>

#include "../../format/ttype.h"

/* dst[0..n) = dequantize(src); n is a multiple of the type's block size. */
typedef void (*kern_dequant_fn)(const void *src, float *dst, int64_t n);

/* returns sum_i W[i] * x[i] over one row of n elements stored as the type. */
typedef float (*kern_dot_fn)(const void *w, const float *x, int64_t n);

/* ---- Activation (x) formats ----
 * Before a row of activations meets weight rows in a gemm it is converted
 * once into the x format of the weight type (kern_xfmt): floats stay floats
 * for F32/F16/BF16 weights; for quantized weights x is quantized to 8 bits so
 * the inner products run in integers, as fast CPU engines do. */
enum kern_xfmt {
    KX_F32 = 0,  /* k floats */
    KX_Q8_32 = 1, /* k/32 kx_q8_32 blocks: for Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 */
    KX_Q8_K = 2, /* k/256 kx_q8_k blocks (the GGUF Q8_K layout): for the k-quants */
    KX_COUNT
};

/* x[i] ~= d * qs[i]; d = max|x| / 127; sum = sum of qs (for formats with an
 * offset or a min). */
typedef struct kx_q8_32 {
    float d;
    int32_t sum;
    int8_t qs[32];
} kx_q8_32;

/* x[i] ~= d * qs[i]; d = max|x| / 127; bsums[j] = sum of qs[16j .. 16j+16). */
typedef struct kx_q8_k {
    float d;
    int8_t qs[256];
    int16_t bsums[16];
} kx_q8_k;

/* dst = x[0..k) in format fmt (k a multiple of the format's block). Every
 * implementation must produce the same bytes as the reference: d = amax/127
 * (amax = max |x[i]|), id = d ? 1/d : 0, qs[i] = nearest-even(x[i] * id),
 * computed in float. */
typedef void (*kern_quant_x_fn)(const float *x, void *dst, int64_t k);

/* out[c * ldo + r] = W[r, 0..k) . X[c, 0..k)   for r < nr, c < nc.
 * W: nr weight rows of the table's type, row_bytes apart. X: nc activation
 * rows in kern_xfmt(type), x_bytes apart (kern_x_row_bytes). k: a multiple
 * of the type's block size. Deterministic: the value written for (r, c) has
 * the same bits whatever nr, nc, and where (r, c) sits in the call, so the
 * results depend neither on the thread split nor on the batch size. */
typedef void (*kern_gemm_fn)(const void *W, uint64_t row_bytes, const void *X, uint64_t x_bytes, float *out,
                             int64_t ldo, int64_t k, int64_t nr, int64_t nc);

/* ---- The x8 weight layout (32-element block types: Q4_0 Q4_1 Q5_0 Q5_1 Q8_0)
 * A row of k elements is nb = k/32 blocks of B bytes; a UNIT is 4 blocks
 * (U = 4B bytes), a row has nu = nb/4 whole units and a tail of nt = nb%4
 * blocks. Rows go in groups of 8 that keep their 8 * row_bytes of memory;
 * inside a group the rows' units are interleaved:
 *   unit u < nu of row r   at  u * 8U + r * U
 *   the tail of row r      at  nu * 8U + r * nt * B
 * so a matrix-vector product reads each group front to back in one stream
 * instead of 8 (the hardware prefetchers follow one stream; they lose 8
 * short ones). Blocks themselves are unchanged. gemm_x8 computes exactly
 * the values gemm computes on the plain layout, bit for bit. */

/* ---- The r16 weight layout (Q4_0, Q8_0, Q4_K, Q6_K)
 * Rows go in groups of 16 that keep their 16 * row_bytes of memory; inside a
 * group the 16 rows' blocks are stored block by block: block b of the group
 * fills S = 16B bytes at b * S (B the block's bytes). A block has nf f16
 * fields (Q4_0, Q8_0: d; Q4_K: d, dmin; Q6_K: d, its last 2 bytes); they
 * go first, and the rest of the block, in order, is taken as 32-bit words
 * (Q4_0: the 16 code bytes, 4 words; Q8_0: the 32 codes plus 128 as
 * unsigned bytes, 8 words; Q4_K: scales[12] then qs[128], 35 words; Q6_K:
 * ql[128] qh[64] scales[16], 52 words; kern_r16_form):
 *   byte 32f + 2r + j     byte j of f16 field f of row r   (f < nf, j < 2)
 *   byte 32nf + 64t + 4r + j   byte j of word t of row r   (j < 4)
 * i.e. word t of the 16 rows side by side (one 64-byte vector). A
 * matrix-vector product then keeps one row per 32-bit lane, and with an x
 * word broadcast to every lane needs no shuffles.
 * gemm_r16 computes, for every (r, c) and every table, exactly the sequence
 * below (so its results match across tables, nr, nc and threads bit for
 * bit, but not those of gemm on the plain layout, which sums in another
 * order). acc = 0; then for each block in order:
 *   Q4_0, Q8_0: i   = sum_j q[j] * x.qs[j]   (exact; q the signed code:
 *                                            nibble - 8, or the Q8_0 byte)
 *               acc = fmaf((float)i, d * x.d, acc)
 *   Q4_K:       I   = 16 * sum_s sc[s] * sum_{j in sub-block s} q[j] * x.qs[j]
 *               M   = sum_s m[s] * (x.bsums[2s] + x.bsums[2s + 1])   (exact)
 *               acc = fmaf((float)I, (d * x.d) * 0.0625f, acc)
 *               acc = fmaf((float)M, -(dmin * x.d), acc)
 *   Q6_K:       I   = sum_s sc[s] * sum_{j in sub-block s} (q[j] - 32) * x.qs[j]
 *               acc = fmaf((float)I, d * x.d, acc)
 * (d, dmin: the f16 fields as floats; sc, m: the sub-block scales (Q4_K
 * 6-bit, 8 of 32 elements; Q6_K int8, 16 of 16) and mins; the factor 16
 * lets a kernel take high nibbles as 16 q without a shift.) out = acc. */

/* ---- KV cache tiles (f16, q8_0; engine/kv.h lays the cache out)
 * The KV cache holds keys and values as f32 (read directly by attn.c), as
 * IEEE halves (f16), or as q8_0: int8 codes q with f16 scales s, value =
 * q * s (one float product), one scale per token and per chunk of
 * KERN_KV_CHUNK consecutive elements of one head: a head of hd elements
 * has nch = ceil(hd / 32) chunks, the last one hd - 32 (nch - 1) long (hd 8:
 * one chunk of 8). A chunk never spans two tokens, so a token's codes and
 * scales depend on that token's row alone.
 * Keys of one head, a tile of KERN_KV_TILE = 32 positions: element d of key
 * t at k[d * 32 + t] (transposed); q8_0 scale of chunk c of key t at
 * ks[c * 32 + t]. Values of one head: element d of position t at
 * v[t * vst + d]; q8_0 scale of chunk c at vs[t * sst + c].
 * The decoders are exact (a half converted, or one product code * scale),
 * so every table produces the reference's bits. */
#define KERN_KV_TILE 32
#define KERN_KV_CHUNK 32

// dst[d * 32 + t] = K(t, d) for d < hd, t < 32: f16 half(k[d*32 + t]); q8_0 k[d*32 + t] * half(ks[(d/32)*32 + t])
// (f16 ignores ks)
typedef void (*kern_kv_k_fn)(const void *k, const uint16_t *ks, int64_t hd, float *dst);

// dst[t * hd + d] = V(t, d) for t < nt, d < hd: f16 half(v[t*vst + d]); q8_0 v[t*vst + d] * half(vs[t*sst + d/32])
// (strides in elements: halves / int8 codes and halves; f16 ignores vs)
typedef void (*kern_kv_v_fn)(const void *v, int64_t vst, const uint16_t *vs, int64_t sst, int64_t hd, int64_t nt,
                             float *dst);

/* Stores one token's row x[n_head * hd] (n_head heads of hd elements): the
 * code of element i = h * hd + d at dst[i * es] (f16: half(x), round to
 * nearest even; q8_0: int8), the q8_0 scale of chunk j = h * nch + c at
 * ds[j * ss] (f16 ignores ds). q8_0 per chunk: d = amax / 127 (amax =
 * max |x|, NaN ignored), s = half(d) (saturated at 65504), id = s ? 1 / s
 * : 0, q = nearest-even(min(max(x * id, -127), 127)) in float: the codes
 * are rounded against the scale that is stored. Every implementation must
 * produce the reference's bytes for finite x. */
typedef void (*kern_kv_put_fn)(const float *x, int64_t n_head, int64_t hd, void *dst, int64_t es, uint16_t *ds,
                               int64_t ss);

/* Attention over one tile of 32 keys: the two dot-product steps of attn.c
 * for heads g < G of one query, side by side in q [G][hd] and o [G][hd];
 * keys kT [hd][32] (transposed, as the cache holds them); value rows v
 * [nt], vst floats apart; scores and weights s, p [G][32]. Two variants
 * with one sequence each: attn_scores / attn_axpy multiply and add in
 * separate roundings (the f32 cache, read in place: the sequence attn.c
 * has always used, so its results keep their bits), attn_scores_fma /
 * attn_axpy_fma fuse them, fma(a, b, c) rounded once as fmaf (the f16 /
 * q8_0 caches, decoded first). Every table produces the reference's bits. */
// s[g*32 + t] = ((a0 + a1) + (a2 + a3)) * scale, a_r = sum over d = r, r+4, .. < hd in order from 0 of
// q[g*hd + d] * kT[d*32 + t]: a_r = a_r + q k (attn_scores) or fma(q, k, a_r) (attn_scores_fma)   (g < G, t < 32)
typedef void (*kern_attn_scores_fn)(const float *q, int64_t G, const float *kT, int64_t hd, float scale, float *s);

// o[g*hd + d] = x after x = o[g*hd + d] * c[g], then for t = 0 .. nt-1 in order x = x + p[g*32 + t] * v[t*vst + d]
// (attn_axpy) or x = fma(p[g*32 + t], v[t*vst + d], x) (attn_axpy_fma)   (g < G, d < hd)
typedef void (*kern_attn_axpy_fn)(float *o, const float *c, const float *p, int64_t G, const float *v, int64_t vst,
                                  int64_t hd, int64_t nt);

/* kinds of row layout a weight matrix can have in memory */
enum kern_layout {
    KL_PLAIN = 0, /* as in the GGUF file */
    KL_X8 = 1,    /* the x8 layout above */
    KL_R16 = 2,   /* the r16 layout above */
};

typedef struct kern_ops {
    const char *name;
    kern_dequant_fn dequant[SOV_TYPE_COUNT]; /* NULL where the type is unsupported */
    kern_dot_fn dot[SOV_TYPE_COUNT];         /* float x; the semantic reference */
    kern_quant_x_fn quant_x[KX_COUNT];
    kern_gemm_fn gemm[SOV_TYPE_COUNT];
    /* gemm over weights in the x8 layout: W starts an 8-row group and nr is
     * a multiple of 8; NULL where the table has none (use gemm on plain
     * weights then) */
    kern_gemm_fn gemm_x8[SOV_TYPE_COUNT];
    /* gemm over weights in the r16 layout: W starts a 16-row group and nr
     * is a multiple of 16; NULL where the table has none */
    kern_gemm_fn gemm_r16[SOV_TYPE_COUNT];
    /* rows gemm_r16 reads side by side for one column (a multiple of 16;
     * 0: no preference): callers that split rows keep to multiples of it,
     * so no tile is cut short */
    int r16_rows[SOV_TYPE_COUNT];
    /* KV cache (above): store one token's row; decode a key tile / value rows */
    kern_kv_put_fn kv_put_f16, kv_put_q8_0;
    kern_kv_k_fn kv_k_f16, kv_k_q8_0;
    kern_kv_v_fn kv_v_f16, kv_v_q8_0;
    /* attention over a tile (above): separate roundings (f32 cache), fused (f16 / q8_0) */
    kern_attn_scores_fn attn_scores, attn_scores_fma;
    kern_attn_axpy_fn attn_axpy, attn_axpy_fma;
} kern_ops;

/* True if `type` has an x8 layout (the 32-element block types). */
bool kern_x8_type(uint32_t type);

/* Rewrites W (nr rows of k elements of `type`, row_bytes apart, contiguous)
 * from the plain layout to the x8 layout, in place. nr must be a multiple
 * of 8 and k of 32. Errors: SOV_EINVAL (type without an x8 layout, nr or k
 * not a multiple, row_bytes not the type's row size), SOV_ENOMEM. */
int kern_x8_pack(uint32_t type, void *W, uint64_t row_bytes, int64_t nr, int64_t k);

/* True if `type` has an r16 layout (Q4_0, Q8_0, Q4_K, Q6_K). */
bool kern_r16_type(uint32_t type);

/* The r16 form of a kern_r16_type: *nf f16 fields at block byte offsets
 * fo[0 .. *nf), then *nw words from block byte *w0 on, stored xor *flip
 * (0x80 for Q8_0: its codes + 128, else 0). */
void kern_r16_form(uint32_t type, int *nf, int fo[2], int *w0, int *nw, unsigned char *flip);

/* Rewrites W (nr rows of k elements of `type`, row_bytes apart, contiguous)
 * from the plain layout to the r16 layout, in place. nr must be a multiple
 * of 16 and k of 32. Errors: SOV_EINVAL (type without an r16 layout, nr or
 * k not a multiple, row_bytes not the type's row size), SOV_ENOMEM. */
int kern_r16_pack(uint32_t type, void *W, uint64_t row_bytes, int64_t nr, int64_t k);

/* The x format that weights of `type` take (a fixed table, the same for every
 * ops table). */
uint32_t kern_xfmt(uint32_t type);

/* Bytes of one x row of k elements in fmt, rounded up to 64 so rows stay
 * 64-byte aligned in a 64-byte aligned buffer. */
uint64_t kern_x_row_bytes(uint32_t fmt, int64_t k);

/* The scalar reference table (static storage). */
const kern_ops *kern_ref_ops(void);

/* The best table for this CPU (static storage; chosen once, thread-safe):
 * avx512 (F, BW, VL, DQ, VNNI) > avx2 (AVX2, FMA, F16C) > ref. The environment
 * variable SOV_KERN=ref|avx2|avx512 forces a table if the CPU supports it. */
const kern_ops *kern_best(void);

/* The table called `name` ("ref", "avx2", "avx512") if this CPU supports it,
 * else NULL. */
const kern_ops *kern_by_name(const char *name);

/* Fill hooks of the SIMD files: each sets the entries it implements in a
 * table that starts as a copy of the reference. Called once, only on CPUs
 * with the instruction sets of the file. */
void kern_avx2_fill(kern_ops *o);    /* kern_avx2.c: float and 32-blocks */
void kern_avx2_k_fill(kern_ops *o);  /* kern_avx2_k.c: k-quants */
void kern_avx512_fill(kern_ops *o);  /* kern_avx512.c */
void kern_avx512_k_fill(kern_ops *o); /* kern_avx512_k.c */
void kern_avx512_r16_fill(kern_ops *o); /* kern_avx512_r16.c: the r16 layout */
void kern_avx2_kv_fill(kern_ops *o);   /* kern_avx2_kv.c: KV cache tile decoders */
void kern_avx512_kv_fill(kern_ops *o); /* kern_avx512_kv.c */

#endif
