/* kern_tiles: the tile instances and the tile driver shared by kern_avx2.c
 * and kern_avx512.c (included once by each, after they define):
 *   tile(T, R, C, W, rb, X, xb, out, ldo, k)  one R x C tile of kind T
 *   tile_x8(T, R, C, G, r8, rb, X, xb, out, ldo, k)
 *                              the same over x8 weights (quantized kinds):
 *                              G the 8-row group, r8 the first row in it
 *   FT1 FTM FTC / QT1 QTM QTC  tile shapes of the float / quantized kinds:
 *                              a column alone uses up to *T1 rows x 1,
 *                              otherwise up to *TM rows x *TC columns.
 * and optionally
 *   TILE_PREP_Q                the quantized kinds' tiles of several
 *                              columns read x prepared by prep_q below,
 *                              which uses the file's XG_BLOCKS (kx_q8_32
 *                              blocks a group), x_group_n(T, p, nb) (the
 *                              group of nb blocks at p), x_store and
 *                              xg_bytes (its stored form, as the tiles
 *                              read it); TILE_PREP_BYTES the room it gets
 *                              (default 64)
 * It defines gemm_f32 .. gemm_q8_0 and gemm_x8_q4_0 .. gemm_x8_q8_0 (static)
 * over those tiles. Every output
 * value is computed by one tile with the same instruction sequence in every
 * shape, so the results do not depend on nr, nc or where (r, c) sits. */
#if !defined(FT1) || !defined(FTM) || !defined(FTC) || !defined(QT1) || !defined(QTM) || !defined(QTC)
#error "define the tile shapes before including kern_tiles.h"
#endif

typedef void (*tile_fn)(const unsigned char *W, uint64_t rb, const unsigned char *X, uint64_t xb, float *out,
                        int64_t ldo, int64_t k);

/* Prepares cw x rows (X, xb bytes apart, k elements) for the tiles of
 * several columns of a kind, which then read buf (*pb bytes a row) instead
 * of X; returns false, writing nothing, if they need more than cap bytes
 * (the driver then uses one-column tiles, which read X itself). The tiles
 * must compute from the prepared rows exactly what they would from X. */
typedef bool (*tile_prep_fn)(const unsigned char *X, uint64_t xb, int cw, int64_t k, unsigned char *buf, uint64_t cap,
                             uint64_t *pb);
#ifdef TILE_PREP_Q
// buf[c][g] = x group g of X row c in the stored form, c < cw (a tile_prep_fn with the kind in front)
static inline __attribute__((always_inline)) bool prep_q(int T, const unsigned char *X, uint64_t xb, int cw, int64_t k,
                                                         unsigned char *buf, uint64_t cap, uint64_t *pb)
{
    const int64_t nblk = k / 32, ng = (nblk + XG_BLOCKS - 1) / XG_BLOCKS;
    const uint64_t gx = XG_BLOCKS * sizeof(kx_q8_32), gs = (uint64_t)xg_bytes(T), row = (uint64_t)ng * gs;
    if (row * (uint64_t)cw > cap)
        return false;
    for (int c = 0; c < cw; c++)
        for (int64_t g = 0; g < ng; g++) {
            int nb = nblk - g * XG_BLOCKS < XG_BLOCKS ? (int)(nblk - g * XG_BLOCKS) : XG_BLOCKS;
            xgrp v = x_group_n(T, X + (uint64_t)c * xb + (uint64_t)g * gx, nb);
            x_store(T, buf + (uint64_t)c * row + (uint64_t)g * gs, &v);
        }
    *pb = row;
    return true;
}

#define PREP_FN(T)                                                                                           \
    static bool prep_##T(const unsigned char *X, uint64_t xb, int cw, int64_t k, unsigned char *buf,         \
                         uint64_t cap, uint64_t *pb)                                                        \
    {                                                                                                        \
        return prep_q(T, X, xb, cw, k, buf, cap, pb);                                                        \
    }
PREP_FN(Q40)
PREP_FN(Q41)
PREP_FN(Q50)
PREP_FN(Q51)
PREP_FN(Q80)
#define prep_F32 NULL
#define prep_F16 NULL
#define prep_BF16 NULL
#define KIND_PREP(T) prep_##T
#else
#define KIND_PREP(T) NULL
#endif
#ifndef TILE_PREP_BYTES
#define TILE_PREP_BYTES 64
#endif

/* column tile [c, c + *cw) of X: where the tiles read it (prepared into buf
 * when the kind has a prep and *cw > 1; *cw drops to 1 if it does not fit) */
static const unsigned char *tile_cols(tile_prep_fn prep, const unsigned char *x, uint64_t xb, int64_t c, int *cw,
                                      int64_t k, unsigned char *buf, uint64_t *xbc)
{
    const unsigned char *xc = x + (uint64_t)c * xb;
    *xbc = xb;
    if (*cw > 1 && prep) {
        if (prep(xc, xb, *cw, k, buf, TILE_PREP_BYTES, xbc))
            return buf;
        *cw = 1;
    }
    return xc;
}

#define TILE_FN(T, R, C)                                                                                     \
    static void t_##T##_##R##_##C(const unsigned char *W, uint64_t rb, const unsigned char *X, uint64_t xb, \
                                  float *out, int64_t ldo, int64_t k)                                       \
    {                                                                                                        \
        tile(T, R, C, W, rb, X, xb, out, ldo, k);                                                            \
    }
#define TILE_ENT(T, R, C) [R][C] = t_##T##_##R##_##C,
#define ROWS(M, T, C, N) ROWS_I(M, T, C, N) /* expands N first */
#define ROWS_I(M, T, C, N) ROWS_##N(M, T, C)
#define ROWS_1(M, T, C) M(T, 1, C)
#define ROWS_2(M, T, C) ROWS_1(M, T, C) M(T, 2, C)
#define ROWS_3(M, T, C) ROWS_2(M, T, C) M(T, 3, C)
#define ROWS_4(M, T, C) ROWS_3(M, T, C) M(T, 4, C)
#define ROWS_5(M, T, C) ROWS_4(M, T, C) M(T, 5, C)
#define ROWS_6(M, T, C) ROWS_5(M, T, C) M(T, 6, C)
#define ROWS_7(M, T, C) ROWS_6(M, T, C) M(T, 7, C)
#define ROWS_8(M, T, C) ROWS_7(M, T, C) M(T, 8, C)
#define COLS(M, T, NM, NC) COLS_I(M, T, NM, NC)
#define COLS_I(M, T, NM, NC) COLS_##NC(M, T, NM)
#define COLS_2(M, T, NM) ROWS(M, T, 2, NM)
#define COLS_3(M, T, NM) COLS_2(M, T, NM) ROWS(M, T, 3, NM)
#define COLS_4(M, T, NM) COLS_3(M, T, NM) ROWS(M, T, 4, NM)
#define COLS_5(M, T, NM) COLS_4(M, T, NM) ROWS(M, T, 5, NM)
#define COLS_6(M, T, NM) COLS_5(M, T, NM) ROWS(M, T, 6, NM)
#define ALL_TILES(M, T, N1, NM, NC) ROWS(M, T, 1, N1) COLS(M, T, NM, NC)
#define KIND(T, N1, NM, NC)                                                                                  \
    ALL_TILES(TILE_FN, T, N1, NM, NC)                                                                        \
    static const tiling tiles_##T = {N1, NM, NC, {ALL_TILES(TILE_ENT, T, N1, NM, NC)}, KIND_PREP(T)};

typedef struct {
    int n1, nm, nc;
    tile_fn fn[9][7]; /* [rows][cols] */
    tile_prep_fn prep;
} tiling;

typedef void (*tile_x8_fn)(const unsigned char *G, int r8, uint64_t rb, const unsigned char *X, uint64_t xb,
                           float *out, int64_t ldo, int64_t k);
#define TILE_X8_FN(T, R, C)                                                                                  \
    static void x_##T##_##R##_##C(const unsigned char *G, int r8, uint64_t rb, const unsigned char *X,       \
                                  uint64_t xb, float *out, int64_t ldo, int64_t k)                          \
    {                                                                                                        \
        tile_x8(T, R, C, G, r8, rb, X, xb, out, ldo, k);                                                     \
    }
#define TILE_X8_ENT(T, R, C) [R][C] = x_##T##_##R##_##C,
#define KIND_X8(T, N1, NM, NC)                                                                               \
    ALL_TILES(TILE_X8_FN, T, N1, NM, NC)                                                                     \
    static const tiling_x8 tiles_x8_##T = {N1, NM, NC, {ALL_TILES(TILE_X8_ENT, T, N1, NM, NC)}, KIND_PREP(T)};

typedef struct {
    int n1, nm, nc;
    tile_x8_fn fn[9][7]; /* [rows][cols] */
    tile_prep_fn prep;
} tiling_x8;

KIND(F32, FT1, FTM, FTC)
KIND(F16, FT1, FTM, FTC)
KIND(BF16, FT1, FTM, FTC)
KIND(Q40, QT1, QTM, QTC)
KIND(Q41, QT1, QTM, QTC)
KIND(Q50, QT1, QTM, QTC)
KIND(Q51, QT1, QTM, QTC)
KIND(Q80, QT1, QTM, QTC)
KIND_X8(Q40, QT1, QTM, QTC)
KIND_X8(Q41, QT1, QTM, QTC)
KIND_X8(Q50, QT1, QTM, QTC)
KIND_X8(Q51, QT1, QTM, QTC)
KIND_X8(Q80, QT1, QTM, QTC)

/* Walks the output in tiles. With several column blocks, rows go in chunks
 * of ~256 KiB of weights so a chunk stays in L2 while every column block
 * passes over it. */
static void drive(const tiling *t, const void *W, uint64_t rb, const void *X, uint64_t xb, float *out,
                  int64_t ldo, int64_t k, int64_t nr, int64_t nc)
{
    _Alignas(64) unsigned char xbuf[TILE_PREP_BYTES];
    const unsigned char *w = W, *x = X;
    int64_t chunk = nr;
    if (nc > t->nc) {
        chunk = (int64_t)((256u << 10) / (rb ? rb : 1));
        chunk = chunk < t->nm ? t->nm : chunk - chunk % t->nm; /* whole tiles */
    }
    for (int64_t r0 = 0; r0 < nr; r0 += chunk) {
        int64_t r1 = nr - r0 < chunk ? nr : r0 + chunk;
        for (int64_t c = 0; c < nc;) {
            int cw = nc - c >= t->nc ? t->nc : (int)(nc - c);
            uint64_t xbc;
            const unsigned char *xc = tile_cols(t->prep, x, xb, c, &cw, k, xbuf, &xbc);
            int rt = cw == 1 ? t->n1 : t->nm;
            for (int64_t r = r0; r < r1; r += rt) {
                int rh = r1 - r < rt ? (int)(r1 - r) : rt;
                t->fn[rh][cw](w + (uint64_t)r * rb, rb, xc, xbc, out + c * ldo + r, ldo, k);
            }
            c += cw;
        }
    }
}

/* drive over x8 weights (nr a multiple of 8, W at a group): the same walk,
 * with tiles cut where an 8-row group ends (a tile reads one group) */
static void drive_x8(const tiling_x8 *t, const void *W, uint64_t rb, const void *X, uint64_t xb, float *out,
                     int64_t ldo, int64_t k, int64_t nr, int64_t nc)
{
    _Alignas(64) unsigned char xbuf[TILE_PREP_BYTES];
    const unsigned char *w = W, *x = X;
    int64_t chunk = nr;
    if (nc > t->nc) {
        chunk = (int64_t)((256u << 10) / (rb ? rb : 1));
        chunk = chunk < 8 ? 8 : chunk - chunk % 8; /* whole groups */
    }
    for (int64_t r0 = 0; r0 < nr; r0 += chunk) {
        int64_t r1 = nr - r0 < chunk ? nr : r0 + chunk;
        for (int64_t c = 0; c < nc;) {
            int cw = nc - c >= t->nc ? t->nc : (int)(nc - c);
            uint64_t xbc;
            const unsigned char *xc = tile_cols(t->prep, x, xb, c, &cw, k, xbuf, &xbc);
            int rt = cw == 1 ? t->n1 : t->nm;
            for (int64_t r = r0; r < r1;) {
                int r8 = (int)(r % 8), rh = 8 - r8 < rt ? 8 - r8 : rt;
                t->fn[rh][cw](w + (uint64_t)(r - r8) * rb, r8, rb, xc, xbc, out + c * ldo + r, ldo, k);
                r += rh;
            }
            c += cw;
        }
    }
}

#define GEMM_X8(NAME, T)                                                                                    \
    static void gemm_x8_##NAME(const void *W, uint64_t rb, const void *X, uint64_t xb, float *out,          \
                               int64_t ldo, int64_t k, int64_t nr, int64_t nc)                              \
    {                                                                                                       \
        drive_x8(&tiles_x8_##T, W, rb, X, xb, out, ldo, k, nr, nc);                                          \
    }
// out[c*ldo + r] = W[r,k] . X[c,k], W q4_0 in the x8 layout, X q8_32
GEMM_X8(q4_0, Q40)
// out[c*ldo + r] = W[r,k] . X[c,k], W q4_1 in the x8 layout, X q8_32
GEMM_X8(q4_1, Q41)
// out[c*ldo + r] = W[r,k] . X[c,k], W q5_0 in the x8 layout, X q8_32
GEMM_X8(q5_0, Q50)
// out[c*ldo + r] = W[r,k] . X[c,k], W q5_1 in the x8 layout, X q8_32
GEMM_X8(q5_1, Q51)
// out[c*ldo + r] = W[r,k] . X[c,k], W q8_0 in the x8 layout, X q8_32
GEMM_X8(q8_0, Q80)

#define GEMM(NAME, T)                                                                                       \
    static void gemm_##NAME(const void *W, uint64_t rb, const void *X, uint64_t xb, float *out, int64_t ldo, \
                            int64_t k, int64_t nr, int64_t nc)                                              \
    {                                                                                                       \
        drive(&tiles_##T, W, rb, X, xb, out, ldo, k, nr, nc);                                                \
    }
// out[c*ldo + r] = W[r,k] . X[c,k], W f32
GEMM(f32, F32)
// out[c*ldo + r] = W[r,k] . X[c,k], W f16
GEMM(f16, F16)
// out[c*ldo + r] = W[r,k] . X[c,k], W bf16
GEMM(bf16, BF16)
// out[c*ldo + r] = W[r,k] . X[c,k], W q4_0, X q8_32
GEMM(q4_0, Q40)
// out[c*ldo + r] = W[r,k] . X[c,k], W q4_1, X q8_32
GEMM(q4_1, Q41)
// out[c*ldo + r] = W[r,k] . X[c,k], W q5_0, X q8_32
GEMM(q5_0, Q50)
// out[c*ldo + r] = W[r,k] . X[c,k], W q5_1, X q8_32
GEMM(q5_1, Q51)
// out[c*ldo + r] = W[r,k] . X[c,k], W q8_0, X q8_32
GEMM(q8_0, Q80)
