#include "gguf.h"

#include "../base/err.h"
#include "ttype.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GGUF_MAX_NEST 8 /* nested array depth accepted */

/* Allocation list: every parse allocation is chained so gguf_close frees all. */
typedef struct alloc_hdr {
    struct alloc_hdr *next;
    max_align_t align[];
} alloc_hdr;

typedef struct reader {
    gguf *g;
    const uint8_t *p;
    uint64_t pos, size;
    char what[160]; /* where we are, for messages */
} reader;

static void *g_alloc(gguf *g, uint64_t n, uint64_t elem)
{
    if (elem && n > (SIZE_MAX - sizeof(alloc_hdr)) / elem)
        return NULL;
    alloc_hdr *h = calloc(1, sizeof(alloc_hdr) + (size_t)(n * elem));
    if (!h)
        return NULL;
    h->next = g->allocs;
    g->allocs = h;
    return h->align;
}

static uint64_t remaining(const reader *r) { return r->size - r->pos; }

static int need(reader *r, uint64_t n)
{
    if (n > remaining(r))
        return err_set(SOV_EFORMAT, "%s: needs %" PRIu64 " bytes at offset %" PRIu64
                       " but the file has only %" PRIu64 " left (truncated?)",
                       r->what, n, r->pos, remaining(r));
    return 0;
}

static int rd(reader *r, void *dst, uint64_t n)
{
    int rc = need(r, n);
    if (rc)
        return rc;
    memcpy(dst, r->p + r->pos, (size_t)n);
    r->pos += n;
    return 0;
}

static int rd_u32(reader *r, uint32_t *v) { return rd(r, v, 4); }
static int rd_u64(reader *r, uint64_t *v) { return rd(r, v, 8); }

static int rd_str(reader *r, gguf_str *s)
{
    uint64_t len;
    int rc = rd_u64(r, &len);
    if (rc)
        return rc;
    if (len > remaining(r))
        return err_set(SOV_EFORMAT, "%s: string length %" PRIu64 " at offset %" PRIu64
                       " exceeds the %" PRIu64 " bytes left in the file",
                       r->what, len, r->pos - 8, remaining(r));
    s->ptr = (const char *)r->p + r->pos;
    s->len = len;
    r->pos += len;
    return 0;
}

size_t gguf_vtype_size(uint32_t type)
{
    switch (type) {
    case GGUF_UINT8: case GGUF_INT8: case GGUF_BOOL: return 1;
    case GGUF_UINT16: case GGUF_INT16: return 2;
    case GGUF_UINT32: case GGUF_INT32: case GGUF_FLOAT32: return 4;
    case GGUF_UINT64: case GGUF_INT64: case GGUF_FLOAT64: return 8;
    default: return 0;
    }
}

const char *gguf_vtype_name(uint32_t type)
{
    static const char *names[GGUF_VTYPE_COUNT] = {
        "uint8", "int8", "uint16", "int16", "uint32", "int32", "float32",
        "bool", "string", "array", "uint64", "int64", "float64"};
    return type < GGUF_VTYPE_COUNT ? names[type] : "invalid";
}

/* Decodes one little-endian scalar of `type` at p into v (type already set). */
static int scalar_decode(gguf_value *v, const uint8_t *p, reader *r)
{
    switch (v->type) {
    case GGUF_UINT8: v->v.u64 = p[0]; break;
    case GGUF_INT8: v->v.i64 = (int8_t)p[0]; break;
    case GGUF_BOOL:
        if (p[0] > 1)
            return err_set(SOV_EFORMAT, "%s: bool value %u is not 0 or 1", r->what, p[0]);
        v->v.b = p[0] != 0;
        break;
    case GGUF_UINT16: { uint16_t x; memcpy(&x, p, 2); v->v.u64 = x; break; }
    case GGUF_INT16: { int16_t x; memcpy(&x, p, 2); v->v.i64 = x; break; }
    case GGUF_UINT32: { uint32_t x; memcpy(&x, p, 4); v->v.u64 = x; break; }
    case GGUF_INT32: { int32_t x; memcpy(&x, p, 4); v->v.i64 = x; break; }
    case GGUF_FLOAT32: { float x; memcpy(&x, p, 4); v->v.f64 = x; break; }
    case GGUF_UINT64: { uint64_t x; memcpy(&x, p, 8); v->v.u64 = x; break; }
    case GGUF_INT64: { int64_t x; memcpy(&x, p, 8); v->v.i64 = x; break; }
    case GGUF_FLOAT64: { double x; memcpy(&x, p, 8); v->v.f64 = x; break; }
    default: return err_set(SOV_EFORMAT, "%s: invalid value type %u", r->what, v->type);
    }
    return 0;
}

static int rd_value(reader *r, gguf_value *v, uint32_t type, int depth);

static int rd_array(reader *r, gguf_value *v, int depth)
{
    uint32_t et;
    uint64_t n;
    int rc;
    if (depth >= GGUF_MAX_NEST)
        return err_set(SOV_EFORMAT, "%s: arrays nested deeper than %d", r->what, GGUF_MAX_NEST);
    if ((rc = rd_u32(r, &et)) || (rc = rd_u64(r, &n)))
        return rc;
    if (et >= GGUF_VTYPE_COUNT)
        return err_set(SOV_EFORMAT, "%s: invalid array element type %u", r->what, et);
    v->v.arr.type = et;
    v->v.arr.n = n;
    size_t es = gguf_vtype_size(et);
    if (es) {
        if (n > remaining(r) / es)
            return err_set(SOV_EFORMAT, "%s: array of %" PRIu64 " %s elements exceeds the %" PRIu64
                           " bytes left in the file", r->what, n, gguf_vtype_name(et), remaining(r));
        v->v.arr.raw = r->p + r->pos;
        if (et == GGUF_BOOL) {
            for (uint64_t i = 0; i < n; i++)
                if (v->v.arr.raw[i] > 1)
                    return err_set(SOV_EFORMAT, "%s: bool element %" PRIu64 " is not 0 or 1", r->what, i);
        }
        r->pos += n * es;
        return 0;
    }
    /* Strings need >= 8 bytes each, nested arrays >= 12: bound n by what is left. */
    uint64_t min_es = et == GGUF_STRING ? 8 : 12;
    if (n > remaining(r) / min_es)
        return err_set(SOV_EFORMAT, "%s: array count %" PRIu64 " exceeds what the %" PRIu64
                       " bytes left in the file can hold", r->what, n, remaining(r));
    if (et == GGUF_STRING) {
        gguf_str *s = g_alloc(r->g, n ? n : 1, sizeof *s);
        if (!s)
            return err_set(SOV_ENOMEM, "out of memory");
        for (uint64_t i = 0; i < n; i++)
            if ((rc = rd_str(r, &s[i])))
                return rc;
        v->v.arr.strs = s;
        return 0;
    }
    gguf_value *vals = g_alloc(r->g, n ? n : 1, sizeof *vals);
    if (!vals)
        return err_set(SOV_ENOMEM, "out of memory");
    for (uint64_t i = 0; i < n; i++)
        if ((rc = rd_value(r, &vals[i], GGUF_ARRAY, depth + 1)))
            return rc;
    v->v.arr.vals = vals;
    return 0;
}

static int rd_value(reader *r, gguf_value *v, uint32_t type, int depth)
{
    v->type = type;
    if (type == GGUF_STRING)
        return rd_str(r, &v->v.str);
    if (type == GGUF_ARRAY)
        return rd_array(r, v, depth);
    size_t es = gguf_vtype_size(type);
    if (!es)
        return err_set(SOV_EFORMAT, "%s: invalid value type %u", r->what, type);
    int rc = need(r, es);
    if (rc)
        return rc;
    rc = scalar_decode(v, r->p + r->pos, r);
    r->pos += es;
    return rc;
}

static void set_what_key(reader *r, const char *prefix, gguf_str s)
{
    int n = s.len > 100 ? 100 : (int)s.len;
    snprintf(r->what, sizeof r->what, "%s '%.*s'", prefix, n, s.ptr);
}

static uint64_t str_hash(gguf_str s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (uint64_t i = 0; i < s.len; i++)
        h = (h ^ (unsigned char)s.ptr[i]) * 1099511628211ull;
    return h;
}

/* Rejects duplicates among n strings found at first, first+stride, ...
 * (keys or tensor names) with an open-addressing hash set: O(n). */
static int check_unique(gguf *g, const gguf_str *first, size_t stride, uint64_t n, const char *what)
{
    if (n < 2)
        return 0;
    uint64_t cap = 16;
    while (cap < 2 * n)
        cap *= 2;
    const gguf_str **slot = g_alloc(g, cap, sizeof *slot);
    if (!slot)
        return err_set(SOV_ENOMEM, "out of memory");
    for (uint64_t i = 0; i < n; i++) {
        const gguf_str *s = (const gguf_str *)((const char *)first + i * stride);
        uint64_t h = str_hash(*s) & (cap - 1);
        for (; slot[h]; h = (h + 1) & (cap - 1)) {
            if (slot[h]->len == s->len && memcmp(slot[h]->ptr, s->ptr, s->len) == 0)
                return err_set(SOV_EFORMAT, "duplicate %s '%.*s'", what, (int)(s->len > 100 ? 100 : s->len), s->ptr);
        }
        slot[h] = s;
    }
    return 0;
}

static int parse(gguf *g)
{
    reader r = {.g = g, .p = g->base, .pos = 0, .size = g->size};
    int rc;
    char magic[4];
    snprintf(r.what, sizeof r.what, "header");
    if ((rc = rd(&r, magic, 4)))
        return err_set(SOV_EFORMAT, "file too small for a GGUF header (%" PRIu64 " bytes)", g->size);
    if (memcmp(magic, "GGUF", 4) != 0)
        return err_set(SOV_EFORMAT, "not a GGUF file (bad magic)");
    if ((rc = rd_u32(&r, &g->version)))
        return rc;
    if (g->version == 1)
        return err_set(SOV_EUNSUPPORTED, "GGUF version 1 is not supported (only 2 and 3)");
    if (g->version != 2 && g->version != 3) {
        if ((g->version & 0xffff) == 0)
            return err_set(SOV_EUNSUPPORTED, "GGUF file appears to be big-endian (version field 0x%08x)", g->version);
        return err_set(SOV_EUNSUPPORTED, "unsupported GGUF version %u (only 2 and 3)", g->version);
    }
    if ((rc = rd_u64(&r, &g->n_tensors)) || (rc = rd_u64(&r, &g->n_kv)))
        return rc;
    /* each kv needs >= 8 (key len) + 4 (type) + 1 bytes; each tensor info >= 8+4+8+4+8 */
    if (g->n_kv > remaining(&r) / 13)
        return err_set(SOV_EFORMAT, "header: metadata count %" PRIu64 " is impossible for a %" PRIu64 "-byte file",
                       g->n_kv, g->size);
    if (g->n_tensors > remaining(&r) / 32)
        return err_set(SOV_EFORMAT, "header: tensor count %" PRIu64 " is impossible for a %" PRIu64 "-byte file",
                       g->n_tensors, g->size);

    g->kv = g_alloc(g, g->n_kv ? g->n_kv : 1, sizeof *g->kv);
    if (!g->kv)
        return err_set(SOV_ENOMEM, "out of memory");
    for (uint64_t i = 0; i < g->n_kv; i++) {
        gguf_kv *kv = &g->kv[i];
        uint32_t type;
        snprintf(r.what, sizeof r.what, "metadata key #%" PRIu64, i);
        if ((rc = rd_str(&r, &kv->key)))
            return rc;
        set_what_key(&r, "metadata", kv->key);
        if ((rc = rd_u32(&r, &type)))
            return rc;
        if (type >= GGUF_VTYPE_COUNT)
            return err_set(SOV_EFORMAT, "%s: invalid value type %u", r.what, type);
        if ((rc = rd_value(&r, &kv->val, type, 0)))
            return rc;
    }

    if ((rc = check_unique(g, &g->kv[0].key, sizeof(gguf_kv), g->n_kv, "metadata key")))
        return rc;

    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    const gguf_value *al = gguf_get(g, "general.alignment");
    if (al) {
        if (al->type != GGUF_UINT32 && al->type != GGUF_UINT64 && al->type != GGUF_INT32)
            return err_set(SOV_EFORMAT, "general.alignment has type %s, expected uint32", gguf_vtype_name(al->type));
        uint64_t a = al->type == GGUF_INT32 ? (uint64_t)al->v.i64 : al->v.u64;
        if (a == 0 || (a & (a - 1)) != 0 || a > (1u << 20))
            return err_set(SOV_EFORMAT, "general.alignment %" PRIu64 " is not a power of two in 1..1M", a);
        g->alignment = a;
    }

    g->tensors = g_alloc(g, g->n_tensors ? g->n_tensors : 1, sizeof *g->tensors);
    if (!g->tensors)
        return err_set(SOV_ENOMEM, "out of memory");
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        gguf_tensor *t = &g->tensors[i];
        snprintf(r.what, sizeof r.what, "tensor info #%" PRIu64, i);
        if ((rc = rd_str(&r, &t->name)))
            return rc;
        set_what_key(&r, "tensor", t->name);
        if ((rc = rd_u32(&r, &t->n_dims)))
            return rc;
        if (t->n_dims == 0 || t->n_dims > GGUF_MAX_DIMS)
            return err_set(SOV_EFORMAT, "%s: %u dimensions (must be 1..%d)", r.what, t->n_dims, GGUF_MAX_DIMS);
        int64_t nel = 1;
        for (int d = 0; d < GGUF_MAX_DIMS; d++)
            t->ne[d] = 1;
        for (uint32_t d = 0; d < t->n_dims; d++) {
            uint64_t ne;
            if ((rc = rd_u64(&r, &ne)))
                return rc;
            if (ne > (uint64_t)INT64_MAX || (ne && (uint64_t)nel > (uint64_t)INT64_MAX / ne))
                return err_set(SOV_EFORMAT, "%s: dimension %u size %" PRIu64 " overflows", r.what, d, ne);
            t->ne[d] = (int64_t)ne;
            nel *= (int64_t)ne;
        }
        if ((rc = rd_u32(&r, &t->type)) || (rc = rd_u64(&r, &t->offset)))
            return rc;
        const ttype_traits *tr = ttype_get(t->type);
        if (!tr)
            return err_set(SOV_EFORMAT, "%s: unknown tensor type %u", r.what, t->type);
        if (t->ne[0] % tr->blck != 0)
            return err_set(SOV_EFORMAT, "%s: row length %" PRId64 " is not a multiple of the %s block size %d",
                           r.what, t->ne[0], tr->name, tr->blck);
        if ((rc = ttype_nbytes(t->type, nel, &t->nbytes)))
            return err_set(rc, "%s: %s", r.what, err_msg());
        if (t->offset % g->alignment != 0)
            return err_set(SOV_EFORMAT, "%s: data offset %" PRIu64 " is not aligned to %" PRIu64,
                           r.what, t->offset, g->alignment);
    }

    if ((rc = check_unique(g, &g->tensors[0].name, sizeof(gguf_tensor), g->n_tensors, "tensor name")))
        return rc;

    uint64_t data_off = r.pos + (g->alignment - r.pos % g->alignment) % g->alignment;
    if (g->n_tensors > 0 && data_off > g->size)
        return err_set(SOV_EFORMAT, "tensor data section starts at %" PRIu64 ", past the end of the %" PRIu64 "-byte file",
                       data_off, g->size);
    g->data_offset = data_off;
    uint64_t data_size = data_off <= g->size ? g->size - data_off : 0;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        gguf_tensor *t = &g->tensors[i];
        if (t->offset > data_size || t->nbytes > data_size - t->offset) {
            set_what_key(&r, "tensor", t->name);
            return err_set(SOV_EFORMAT, "%s extends past end of file (offset %" PRIu64 " + %" PRIu64
                           " bytes > %" PRIu64 " bytes of data)", r.what, t->offset, t->nbytes, data_size);
        }
        t->data = g->base + data_off + t->offset;
    }
    return 0;
}

static void free_allocs(gguf *g)
{
    alloc_hdr *h = g->allocs;
    while (h) {
        alloc_hdr *n = h->next;
        free(h);
        h = n;
    }
    g->allocs = NULL;
}

int gguf_open_mem(gguf **out, const void *data, size_t size)
{
    *out = NULL;
    gguf *g = calloc(1, sizeof *g);
    if (!g)
        return err_set(SOV_ENOMEM, "out of memory");
    g->base = data;
    g->size = size;
    int rc = parse(g);
    if (rc) {
        gguf_close(g);
        return rc;
    }
    *out = g;
    return 0;
}

int gguf_open(gguf **out, const char *path) { return gguf_load(out, path, true); }

int gguf_load(gguf **out, const char *path, bool use_mmap) { return gguf_load_progress(out, path, use_mmap, NULL); }

int gguf_load_progress(gguf **out, const char *path, bool use_mmap, progress *p)
{
    *out = NULL;
    file_map m;
    int rc = use_mmap ? file_map_open(&m, path) : file_map_read_progress(&m, path, p);
    if (rc)
        return rc;
    gguf *g = NULL;
    rc = gguf_open_mem(&g, m.data, m.size);
    if (rc) {
        file_unmap(&m);
        return err_set(rc, "%s: %s", path, err_msg());
    }
    g->map = m;
    *out = g;
    return 0;
}

void gguf_close(gguf *g)
{
    if (!g)
        return;
    free_allocs(g);
    file_unmap(&g->map);
    free(g);
}

bool gguf_str_eq(gguf_str s, const char *c)
{
    size_t n = strlen(c);
    return s.len == n && memcmp(s.ptr, c, n) == 0;
}

char *gguf_str_copy(gguf_str s, char *buf, size_t cap)
{
    if (cap == 0)
        return buf;
    size_t n = s.len < cap - 1 ? (size_t)s.len : cap - 1;
    memcpy(buf, s.ptr, n);
    buf[n] = 0;
    return buf;
}

const gguf_value *gguf_get(const gguf *g, const char *key)
{
    for (uint64_t i = 0; i < g->n_kv; i++)
        if (gguf_str_eq(g->kv[i].key, key))
            return &g->kv[i].val;
    return NULL;
}

int gguf_get_i64(const gguf *g, const char *key, int64_t *out)
{
    const gguf_value *v = gguf_get(g, key);
    if (!v)
        return err_set(SOV_ENOTFOUND, "metadata key '%s' not found", key);
    switch (v->type) {
    case GGUF_UINT8: case GGUF_UINT16: case GGUF_UINT32: case GGUF_UINT64:
        if (v->v.u64 > (uint64_t)INT64_MAX)
            return err_set(SOV_EFORMAT, "metadata '%s' value %" PRIu64 " out of range", key, v->v.u64);
        *out = (int64_t)v->v.u64;
        return 0;
    case GGUF_INT8: case GGUF_INT16: case GGUF_INT32: case GGUF_INT64:
        *out = v->v.i64;
        return 0;
    default:
        return err_set(SOV_EFORMAT, "metadata '%s' has type %s, expected an integer", key, gguf_vtype_name(v->type));
    }
}

int gguf_get_f64(const gguf *g, const char *key, double *out)
{
    const gguf_value *v = gguf_get(g, key);
    if (!v)
        return err_set(SOV_ENOTFOUND, "metadata key '%s' not found", key);
    switch (v->type) {
    case GGUF_FLOAT32: case GGUF_FLOAT64: *out = v->v.f64; return 0;
    case GGUF_UINT8: case GGUF_UINT16: case GGUF_UINT32: case GGUF_UINT64: *out = (double)v->v.u64; return 0;
    case GGUF_INT8: case GGUF_INT16: case GGUF_INT32: case GGUF_INT64: *out = (double)v->v.i64; return 0;
    default:
        return err_set(SOV_EFORMAT, "metadata '%s' has type %s, expected a number", key, gguf_vtype_name(v->type));
    }
}

int gguf_get_bool(const gguf *g, const char *key, bool *out)
{
    const gguf_value *v = gguf_get(g, key);
    if (!v)
        return err_set(SOV_ENOTFOUND, "metadata key '%s' not found", key);
    if (v->type != GGUF_BOOL)
        return err_set(SOV_EFORMAT, "metadata '%s' has type %s, expected bool", key, gguf_vtype_name(v->type));
    *out = v->v.b;
    return 0;
}

int gguf_get_str(const gguf *g, const char *key, gguf_str *out)
{
    const gguf_value *v = gguf_get(g, key);
    if (!v)
        return err_set(SOV_ENOTFOUND, "metadata key '%s' not found", key);
    if (v->type != GGUF_STRING)
        return err_set(SOV_EFORMAT, "metadata '%s' has type %s, expected string", key, gguf_vtype_name(v->type));
    *out = v->v.str;
    return 0;
}

const gguf_value *gguf_get_arr(const gguf *g, const char *key, uint32_t elem_type)
{
    const gguf_value *v = gguf_get(g, key);
    if (!v || v->type != GGUF_ARRAY || v->v.arr.type != elem_type)
        return NULL;
    return v;
}

int64_t gguf_arr_i64(const gguf_value *a, uint64_t i)
{
    gguf_value e = {.type = a->v.arr.type};
    size_t es = gguf_vtype_size(e.type);
    reader dummy = {0};
    if (!es || scalar_decode(&e, a->v.arr.raw + i * es, &dummy) != 0)
        return 0;
    switch (e.type) {
    case GGUF_FLOAT32: case GGUF_FLOAT64: return (int64_t)e.v.f64;
    case GGUF_BOOL: return e.v.b;
    case GGUF_INT8: case GGUF_INT16: case GGUF_INT32: case GGUF_INT64: return e.v.i64;
    default: return (int64_t)e.v.u64;
    }
}

double gguf_arr_f64(const gguf_value *a, uint64_t i)
{
    gguf_value e = {.type = a->v.arr.type};
    size_t es = gguf_vtype_size(e.type);
    reader dummy = {0};
    if (!es || scalar_decode(&e, a->v.arr.raw + i * es, &dummy) != 0)
        return 0;
    switch (e.type) {
    case GGUF_FLOAT32: case GGUF_FLOAT64: return e.v.f64;
    case GGUF_BOOL: return e.v.b;
    case GGUF_INT8: case GGUF_INT16: case GGUF_INT32: case GGUF_INT64: return (double)e.v.i64;
    default: return (double)e.v.u64;
    }
}

const gguf_tensor *gguf_find_tensor(const gguf *g, const char *name)
{
    for (uint64_t i = 0; i < g->n_tensors; i++)
        if (gguf_str_eq(g->tensors[i].name, name))
            return &g->tensors[i];
    return NULL;
}

int64_t gguf_tensor_nelements(const gguf_tensor *t)
{
    return t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
}
