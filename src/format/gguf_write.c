#include "gguf_write.h"

#include "../base/err.h"
#include "ttype.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define W_MAX_NEST 8 /* nested array depth accepted by gguf_w_set_value (reader's limit) */

typedef struct wbuf {
    uint8_t *p;
    size_t len, cap;
} wbuf;

typedef struct wkv {
    char *key;
    uint32_t type;  /* enum gguf_vtype */
    uint8_t *enc;   /* encoded payload (after the type field) */
    size_t enc_len;
} wkv;

enum { SRC_PTR = 0, SRC_OWNED = 1, SRC_FN = 2 };

typedef struct wtensor {
    char *name;
    uint32_t type, n_dims;
    int64_t ne[GGUF_MAX_DIMS];
    uint64_t nbytes, offset;
    int src;
    const void *data; /* SRC_PTR / SRC_OWNED */
    gguf_fill_fn fill;
    void *ctx;
} wtensor;

struct gguf_writer {
    wkv *kv;
    size_t n_kv, cap_kv;
    wtensor *t;
    size_t n_t, cap_t;
    uint64_t alignment;
};

/* ---- byte buffer ---------------------------------------------------------- */

static int wb_reserve(wbuf *b, size_t extra)
{
    if (extra > SIZE_MAX - b->len)
        return err_set(SOV_ENOMEM, "out of memory (value too large)");
    if (b->len + extra <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + extra)
        cap = cap > SIZE_MAX / 2 ? b->len + extra : cap * 2;
    uint8_t *np = realloc(b->p, cap);
    if (!np)
        return err_set(SOV_ENOMEM, "out of memory");
    b->p = np;
    b->cap = cap;
    return 0;
}

static int wb_put(wbuf *b, const void *src, size_t n)
{
    int rc = wb_reserve(b, n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->p + b->len, src, n);
    b->len += n;
    return 0;
}

static int wb_le(wbuf *b, uint64_t v, int nbytes)
{
    uint8_t tmp[8];
    for (int i = 0; i < nbytes; i++)
        tmp[i] = (uint8_t)(v >> (8 * i));
    return wb_put(b, tmp, (size_t)nbytes);
}

static int wb_str(wbuf *b, const char *s, uint64_t len)
{
    int rc = wb_le(b, len, 8);
    return rc ? rc : wb_put(b, s, (size_t)len);
}

/* ---- metadata ------------------------------------------------------------- */

static wkv *kv_find(const gguf_writer *w, const char *key)
{
    for (size_t i = 0; i < w->n_kv; i++)
        if (!strcmp(w->kv[i].key, key))
            return &w->kv[i];
    return NULL;
}

static bool is_pow2_align(uint64_t a) { return a && (a & (a - 1)) == 0 && a <= (1u << 20); }

/* Stores key -> (type, encoded payload), taking ownership of b->p on success
 * and freeing it on failure. */
static int kv_put(gguf_writer *w, const char *key, uint32_t type, wbuf *b)
{
    int rc;
    if (!key || !*key) {
        rc = err_set(SOV_EINVAL, "gguf writer: empty metadata key");
        goto fail;
    }
    bool is_align = !strcmp(key, "general.alignment");
    uint64_t align = 0;
    if (is_align) {
        if (type != GGUF_UINT32 || b->len != 4) {
            rc = err_set(SOV_EINVAL, "gguf writer: general.alignment must be uint32 (got %s)", gguf_vtype_name(type));
            goto fail;
        }
        align = (uint64_t)b->p[0] | (uint64_t)b->p[1] << 8 | (uint64_t)b->p[2] << 16 | (uint64_t)b->p[3] << 24;
        if (!is_pow2_align(align)) {
            rc = err_set(SOV_EINVAL, "gguf writer: general.alignment %" PRIu64 " is not a power of two in 1..1M", align);
            goto fail;
        }
    }
    wkv *e = kv_find(w, key);
    if (e) {
        free(e->enc);
    } else {
        if (w->n_kv == w->cap_kv) {
            size_t nc = w->cap_kv ? w->cap_kv * 2 : 32;
            wkv *nk = realloc(w->kv, nc * sizeof *nk);
            if (!nk) {
                rc = err_set(SOV_ENOMEM, "out of memory");
                goto fail;
            }
            w->kv = nk;
            w->cap_kv = nc;
        }
        char *k = strdup(key);
        if (!k) {
            rc = err_set(SOV_ENOMEM, "out of memory");
            goto fail;
        }
        e = &w->kv[w->n_kv++];
        e->key = k;
    }
    e->type = type;
    e->enc = b->p;
    e->enc_len = b->len;
    b->p = NULL;
    b->len = b->cap = 0;
    if (is_align)
        w->alignment = align;
    return 0;
fail:
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
    return rc;
}

static int set_scalar(gguf_writer *w, const char *key, uint32_t type, uint64_t bits)
{
    wbuf b = {0};
    int rc = wb_le(&b, bits, (int)gguf_vtype_size(type));
    if (rc) {
        free(b.p);
        return rc;
    }
    return kv_put(w, key, type, &b);
}

int gguf_w_set_u8(gguf_writer *w, const char *key, uint8_t v) { return set_scalar(w, key, GGUF_UINT8, v); }
int gguf_w_set_i8(gguf_writer *w, const char *key, int8_t v) { return set_scalar(w, key, GGUF_INT8, (uint8_t)v); }
int gguf_w_set_u16(gguf_writer *w, const char *key, uint16_t v) { return set_scalar(w, key, GGUF_UINT16, v); }
int gguf_w_set_i16(gguf_writer *w, const char *key, int16_t v) { return set_scalar(w, key, GGUF_INT16, (uint16_t)v); }
int gguf_w_set_u32(gguf_writer *w, const char *key, uint32_t v) { return set_scalar(w, key, GGUF_UINT32, v); }
int gguf_w_set_i32(gguf_writer *w, const char *key, int32_t v) { return set_scalar(w, key, GGUF_INT32, (uint32_t)v); }
int gguf_w_set_u64(gguf_writer *w, const char *key, uint64_t v) { return set_scalar(w, key, GGUF_UINT64, v); }
int gguf_w_set_i64(gguf_writer *w, const char *key, int64_t v) { return set_scalar(w, key, GGUF_INT64, (uint64_t)v); }
int gguf_w_set_bool(gguf_writer *w, const char *key, bool v) { return set_scalar(w, key, GGUF_BOOL, v ? 1 : 0); }

int gguf_w_set_f32(gguf_writer *w, const char *key, float v)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    return set_scalar(w, key, GGUF_FLOAT32, u);
}

int gguf_w_set_f64(gguf_writer *w, const char *key, double v)
{
    uint64_t u;
    memcpy(&u, &v, 8);
    return set_scalar(w, key, GGUF_FLOAT64, u);
}

int gguf_w_set_strn(gguf_writer *w, const char *key, const char *s, size_t len)
{
    if (!s && len)
        return err_set(SOV_EINVAL, "gguf writer: NULL string for '%s'", key ? key : "");
    wbuf b = {0};
    int rc = wb_str(&b, s, len);
    if (rc) {
        free(b.p);
        return rc;
    }
    return kv_put(w, key, GGUF_STRING, &b);
}

int gguf_w_set_str(gguf_writer *w, const char *key, const char *s)
{
    if (!s)
        return err_set(SOV_EINVAL, "gguf writer: NULL string for '%s'", key ? key : "");
    return gguf_w_set_strn(w, key, s, strlen(s));
}

/* Appends n host-order scalars of type et from data to b as little-endian. */
static int enc_scalars(wbuf *b, uint32_t et, const void *data, uint64_t n)
{
    size_t es = gguf_vtype_size(et);
    if (n > SIZE_MAX / es)
        return err_set(SOV_ENOMEM, "out of memory (array too large)");
    int rc = wb_reserve(b, (size_t)(n * es));
    if (rc)
        return rc;
    const uint8_t *p = data;
    for (uint64_t i = 0; i < n; i++, p += es) {
        uint64_t bits = 0;
        switch (es) {
        case 1: bits = p[0]; break;
        case 2: { uint16_t x; memcpy(&x, p, 2); bits = x; break; }
        case 4: { uint32_t x; memcpy(&x, p, 4); bits = x; break; }
        default: memcpy(&bits, p, 8); break;
        }
        if (et == GGUF_BOOL && bits > 1)
            return err_set(SOV_EINVAL, "gguf writer: bool array element %" PRIu64 " is %u, not 0 or 1", i, p[0]);
        wb_le(b, bits, (int)es); /* cannot fail: reserved above */
    }
    return 0;
}

int gguf_w_set_arr(gguf_writer *w, const char *key, uint32_t elem_type, const void *data, uint64_t n)
{
    if (!gguf_vtype_size(elem_type))
        return err_set(SOV_EINVAL, "gguf writer: '%s': array element type %s is not a scalar type",
                       key ? key : "", gguf_vtype_name(elem_type));
    if (n && !data)
        return err_set(SOV_EINVAL, "gguf writer: '%s': NULL array data", key ? key : "");
    wbuf b = {0};
    int rc;
    if ((rc = wb_le(&b, elem_type, 4)) || (rc = wb_le(&b, n, 8)) || (rc = enc_scalars(&b, elem_type, data, n))) {
        free(b.p);
        return rc;
    }
    return kv_put(w, key, GGUF_ARRAY, &b);
}

int gguf_w_set_arr_str(gguf_writer *w, const char *key, const char *const *strs, const size_t *lens, uint64_t n)
{
    if (n && !strs)
        return err_set(SOV_EINVAL, "gguf writer: '%s': NULL string array", key ? key : "");
    wbuf b = {0};
    int rc;
    if ((rc = wb_le(&b, GGUF_STRING, 4)) || (rc = wb_le(&b, n, 8)))
        goto fail;
    for (uint64_t i = 0; i < n; i++) {
        size_t len = lens ? lens[i] : (strs[i] ? strlen(strs[i]) : 0);
        if (!strs[i] && len) {
            rc = err_set(SOV_EINVAL, "gguf writer: '%s': NULL string #%" PRIu64, key ? key : "", i);
            goto fail;
        }
        if ((rc = wb_str(&b, strs[i], len)))
            goto fail;
    }
    return kv_put(w, key, GGUF_ARRAY, &b);
fail:
    free(b.p);
    return rc;
}

/* Encodes the payload of a reader value (no type field) into b. */
static int enc_value(wbuf *b, const gguf_value *v, int depth)
{
    int rc;
    switch (v->type) {
    case GGUF_UINT8: case GGUF_UINT16: case GGUF_UINT32: case GGUF_UINT64:
        return wb_le(b, v->v.u64, (int)gguf_vtype_size(v->type));
    case GGUF_INT8: case GGUF_INT16: case GGUF_INT32: case GGUF_INT64:
        return wb_le(b, (uint64_t)v->v.i64, (int)gguf_vtype_size(v->type));
    case GGUF_FLOAT32: {
        float f = (float)v->v.f64;
        uint32_t u;
        memcpy(&u, &f, 4);
        return wb_le(b, u, 4);
    }
    case GGUF_FLOAT64: {
        uint64_t u;
        memcpy(&u, &v->v.f64, 8);
        return wb_le(b, u, 8);
    }
    case GGUF_BOOL:
        return wb_le(b, v->v.b ? 1 : 0, 1);
    case GGUF_STRING:
        if (!v->v.str.ptr && v->v.str.len)
            return err_set(SOV_EINVAL, "gguf writer: NULL string value");
        return wb_str(b, v->v.str.ptr, v->v.str.len);
    case GGUF_ARRAY: {
        uint32_t et = v->v.arr.type;
        uint64_t n = v->v.arr.n;
        if (depth >= W_MAX_NEST)
            return err_set(SOV_EINVAL, "gguf writer: arrays nested deeper than %d", W_MAX_NEST);
        if (et >= GGUF_VTYPE_COUNT)
            return err_set(SOV_EINVAL, "gguf writer: invalid array element type %u", et);
        if ((rc = wb_le(b, et, 4)) || (rc = wb_le(b, n, 8)))
            return rc;
        size_t es = gguf_vtype_size(et);
        if (es) {
            if (n && !v->v.arr.raw)
                return err_set(SOV_EINVAL, "gguf writer: array without data");
            if (n > SIZE_MAX / es)
                return err_set(SOV_ENOMEM, "out of memory (array too large)");
            if (et == GGUF_BOOL)
                for (uint64_t i = 0; i < n; i++)
                    if (v->v.arr.raw[i] > 1)
                        return err_set(SOV_EINVAL, "gguf writer: bool array element %" PRIu64 " is not 0 or 1", i);
            return wb_put(b, v->v.arr.raw, (size_t)(n * es)); /* raw is already little-endian */
        }
        if (n && ((et == GGUF_STRING && !v->v.arr.strs) || (et == GGUF_ARRAY && !v->v.arr.vals)))
            return err_set(SOV_EINVAL, "gguf writer: array without elements");
        for (uint64_t i = 0; i < n; i++) {
            if (et == GGUF_STRING) {
                gguf_str s = v->v.arr.strs[i];
                if (!s.ptr && s.len)
                    return err_set(SOV_EINVAL, "gguf writer: NULL string element");
                rc = wb_str(b, s.ptr, s.len);
            } else {
                if (v->v.arr.vals[i].type != GGUF_ARRAY)
                    return err_set(SOV_EINVAL, "gguf writer: nested array element is not an array");
                rc = enc_value(b, &v->v.arr.vals[i], depth + 1);
            }
            if (rc)
                return rc;
        }
        return 0;
    }
    default:
        return err_set(SOV_EINVAL, "gguf writer: invalid value type %u", v->type);
    }
}

int gguf_w_set_value(gguf_writer *w, const char *key, const gguf_value *v)
{
    wbuf b = {0};
    int rc = enc_value(&b, v, 0);
    if (rc) {
        free(b.p);
        return err_set(rc, "'%s': %s", key ? key : "", err_msg());
    }
    return kv_put(w, key, v->type, &b);
}

int gguf_w_copy_kv(gguf_writer *w, const gguf *g, const char *key)
{
    const gguf_value *v = gguf_get(g, key);
    if (!v)
        return err_set(SOV_ENOTFOUND, "metadata key '%s' not found", key);
    return gguf_w_set_value(w, key, v);
}

int gguf_w_copy_all_kv(gguf_writer *w, const gguf *g)
{
    char *key = NULL;
    int rc = 0;
    for (uint64_t i = 0; i < g->n_kv; i++) {
        gguf_str k = g->kv[i].key;
        if (gguf_str_eq(k, "general.alignment"))
            continue;
        if (memchr(k.ptr, 0, (size_t)k.len)) {
            rc = err_set(SOV_EINVAL, "gguf writer: metadata key #%" PRIu64 " contains a NUL byte", i);
            goto fail;
        }
        key = malloc((size_t)k.len + 1);
        if (!key) {
            rc = err_set(SOV_ENOMEM, "out of memory");
            goto fail;
        }
        gguf_str_copy(k, key, (size_t)k.len + 1);
        if ((rc = gguf_w_set_value(w, key, &g->kv[i].val)))
            goto fail;
        free(key);
        key = NULL;
    }
    return 0;
fail:
    free(key);
    return rc;
}

void gguf_w_remove(gguf_writer *w, const char *key)
{
    wkv *e = kv_find(w, key);
    if (!e)
        return;
    if (!strcmp(key, "general.alignment"))
        w->alignment = GGUF_DEFAULT_ALIGNMENT;
    size_t i = (size_t)(e - w->kv);
    free(e->key);
    free(e->enc);
    memmove(&w->kv[i], &w->kv[i + 1], (w->n_kv - i - 1) * sizeof *w->kv);
    w->n_kv--;
}

bool gguf_w_has(const gguf_writer *w, const char *key) { return kv_find(w, key) != NULL; }

int gguf_w_set_alignment(gguf_writer *w, uint32_t alignment)
{
    if (!is_pow2_align(alignment))
        return err_set(SOV_EINVAL, "gguf writer: alignment %u is not a power of two in 1..1M", alignment);
    return gguf_w_set_u32(w, "general.alignment", alignment);
}

uint64_t gguf_w_n_kv(const gguf_writer *w) { return w->n_kv; }
uint64_t gguf_w_n_tensors(const gguf_writer *w) { return w->n_t; }

/* ---- tensors -------------------------------------------------------------- */

static int add_tensor(gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims, const int64_t *ne,
                      uint64_t nbytes, const wtensor *src)
{
    if (!name || !*name)
        return err_set(SOV_EINVAL, "gguf writer: empty tensor name");
    if (n_dims < 1 || n_dims > GGUF_MAX_DIMS || !ne)
        return err_set(SOV_EINVAL, "gguf writer: tensor '%s': %u dimensions (must be 1..%d)", name, n_dims, GGUF_MAX_DIMS);
    const ttype_traits *tr = ttype_get(type);
    if (!tr)
        return err_set(SOV_EINVAL, "gguf writer: tensor '%s': unknown type %u", name, type);
    int64_t nel = 1;
    for (uint32_t d = 0; d < n_dims; d++) {
        if (ne[d] < 0 || (ne[d] && nel > INT64_MAX / ne[d]))
            return err_set(SOV_EINVAL, "gguf writer: tensor '%s': bad dimension %u (%" PRId64 ")", name, d, ne[d]);
        nel *= ne[d];
    }
    if (ne[0] % tr->blck != 0)
        return err_set(SOV_EINVAL, "gguf writer: tensor '%s': row length %" PRId64 " is not a multiple of the %s block size %d",
                       name, ne[0], tr->name, tr->blck);
    uint64_t want;
    if (ttype_nbytes(type, nel, &want) != 0)
        return err_set(SOV_EINVAL, "gguf writer: tensor '%s': %s", name, err_msg());
    if (want != nbytes)
        return err_set(SOV_EINVAL, "gguf writer: tensor '%s': %" PRIu64 " bytes given, %s %" PRId64 " elements need %" PRIu64,
                       name, nbytes, tr->name, nel, want);
    for (size_t i = 0; i < w->n_t; i++)
        if (!strcmp(w->t[i].name, name))
            return err_set(SOV_EINVAL, "gguf writer: duplicate tensor name '%s'", name);
    if (w->n_t == w->cap_t) {
        size_t nc = w->cap_t ? w->cap_t * 2 : 64;
        wtensor *nt = realloc(w->t, nc * sizeof *nt);
        if (!nt)
            return err_set(SOV_ENOMEM, "out of memory");
        w->t = nt;
        w->cap_t = nc;
    }
    char *nm = strdup(name);
    if (!nm)
        return err_set(SOV_ENOMEM, "out of memory");
    wtensor *t = &w->t[w->n_t++];
    *t = *src;
    t->name = nm;
    t->type = type;
    t->n_dims = n_dims;
    for (int d = 0; d < GGUF_MAX_DIMS; d++)
        t->ne[d] = (uint32_t)d < n_dims ? ne[d] : 1;
    t->nbytes = nbytes;
    t->offset = 0;
    return 0;
}

int gguf_w_add_tensor(gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                      const int64_t *ne, const void *data, uint64_t nbytes)
{
    if (!data && nbytes)
        return err_set(SOV_EINVAL, "gguf writer: tensor '%s': NULL data", name ? name : "");
    wtensor src = {.src = SRC_PTR, .data = data};
    return add_tensor(w, name, type, n_dims, ne, nbytes, &src);
}

int gguf_w_add_tensor_owned(gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                            const int64_t *ne, void *data, uint64_t nbytes)
{
    if (!data && nbytes)
        return err_set(SOV_EINVAL, "gguf writer: tensor '%s': NULL data", name ? name : "");
    wtensor src = {.src = SRC_OWNED, .data = data};
    int rc = add_tensor(w, name, type, n_dims, ne, nbytes, &src);
    if (rc)
        free(data);
    return rc;
}

int gguf_w_add_tensor_fn(gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                         const int64_t *ne, uint64_t nbytes, gguf_fill_fn fill, void *ctx)
{
    if (!fill)
        return err_set(SOV_EINVAL, "gguf writer: tensor '%s': NULL fill function", name ? name : "");
    wtensor src = {.src = SRC_FN, .fill = fill, .ctx = ctx};
    return add_tensor(w, name, type, n_dims, ne, nbytes, &src);
}

/* ---- lifetime ------------------------------------------------------------- */

int gguf_writer_new(gguf_writer **out)
{
    *out = calloc(1, sizeof **out);
    if (!*out)
        return err_set(SOV_ENOMEM, "out of memory");
    (*out)->alignment = GGUF_DEFAULT_ALIGNMENT;
    return 0;
}

void gguf_writer_free(gguf_writer *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->n_kv; i++) {
        free(w->kv[i].key);
        free(w->kv[i].enc);
    }
    for (size_t i = 0; i < w->n_t; i++) {
        free(w->t[i].name);
        if (w->t[i].src == SRC_OWNED)
            free((void *)w->t[i].data);
    }
    free(w->kv);
    free(w->t);
    free(w);
}

/* ---- output --------------------------------------------------------------- */

static uint64_t align_up(uint64_t x, uint64_t a) { return x + (a - x % a) % a; }

static int fwrite_all(FILE *f, const void *p, size_t n, const char *path)
{
    if (n && fwrite(p, 1, n, f) != n)
        return err_set(SOV_EIO, "cannot write '%s': %s", path, strerror(errno));
    return 0;
}

static int write_zeros(FILE *f, uint64_t n, const char *path)
{
    static const uint8_t zeros[256];
    while (n) {
        size_t k = n < sizeof zeros ? (size_t)n : sizeof zeros;
        int rc = fwrite_all(f, zeros, k, path);
        if (rc)
            return rc;
        n -= k;
    }
    return 0;
}

int gguf_w_write(gguf_writer *w, const char *path)
{
    wbuf h = {0};
    uint8_t *scratch = NULL;
    FILE *f = NULL;
    int rc;

    /* header + metadata + tensor infos, encoded in memory */
    if ((rc = wb_put(&h, "GGUF", 4)) || (rc = wb_le(&h, 3, 4)) || (rc = wb_le(&h, w->n_t, 8)) ||
        (rc = wb_le(&h, w->n_kv, 8)))
        goto fail;
    for (size_t i = 0; i < w->n_kv; i++) {
        const wkv *e = &w->kv[i];
        if ((rc = wb_str(&h, e->key, strlen(e->key))) || (rc = wb_le(&h, e->type, 4)) ||
            (rc = wb_put(&h, e->enc, e->enc_len)))
            goto fail;
    }
    uint64_t off = 0, scratch_len = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        wtensor *t = &w->t[i];
        off = align_up(off, w->alignment);
        t->offset = off;
        off += t->nbytes;
        if (t->src == SRC_FN && t->nbytes > scratch_len)
            scratch_len = t->nbytes;
        if ((rc = wb_str(&h, t->name, strlen(t->name))) || (rc = wb_le(&h, t->n_dims, 4)))
            goto fail;
        for (uint32_t d = 0; d < t->n_dims; d++)
            if ((rc = wb_le(&h, (uint64_t)t->ne[d], 8)))
                goto fail;
        if ((rc = wb_le(&h, t->type, 4)) || (rc = wb_le(&h, t->offset, 8)))
            goto fail;
    }
    if (scratch_len) {
        if (scratch_len > SIZE_MAX || !(scratch = malloc((size_t)scratch_len))) {
            rc = err_set(SOV_ENOMEM, "out of memory (tensor of %" PRIu64 " bytes)", scratch_len);
            goto fail;
        }
    }

    f = fopen(path, "wb");
    if (!f) {
        rc = err_set(SOV_EIO, "cannot create '%s': %s", path, strerror(errno));
        goto fail;
    }
    if ((rc = fwrite_all(f, h.p, h.len, path)))
        goto fail;
    uint64_t pos = h.len;
    if (w->n_t) {
        uint64_t data_start = align_up(pos, w->alignment);
        if ((rc = write_zeros(f, data_start - pos, path)))
            goto fail;
        uint64_t dpos = 0;
        for (size_t i = 0; i < w->n_t; i++) {
            const wtensor *t = &w->t[i];
            if ((rc = write_zeros(f, t->offset - dpos, path)))
                goto fail;
            const void *src = t->data;
            if (t->src == SRC_FN) {
                if ((rc = t->fill(t->ctx, scratch, t->nbytes)))
                    goto fail;
                src = scratch;
            }
            if ((rc = fwrite_all(f, src, (size_t)t->nbytes, path)))
                goto fail;
            dpos = t->offset + t->nbytes;
        }
        if ((rc = write_zeros(f, align_up(dpos, w->alignment) - dpos, path)))
            goto fail;
    }
    FILE *ff = f;
    f = NULL;
    if (fclose(ff) != 0) {
        rc = err_set(SOV_EIO, "cannot write '%s': %s", path, strerror(errno));
        remove(path);
        goto fail;
    }
    free(h.p);
    free(scratch);
    return 0;
fail:
    if (f) {
        fclose(f);
        remove(path);
    }
    free(h.p);
    free(scratch);
    return rc;
}
