/* safetensors reader, GGUF writer and HF -> GGUF converter:
 * - the real TinyStories-656K file parses, the alias resolves, values read;
 * - malformed headers (truncated, offsets past EOF, bad JSON, wrong dtype,
 *   size mismatch, ...) and every truncation of the real file give errors;
 * - sharded checkpoints (index.json) open as one tensor set;
 * - a GGUF with every value type and several tensors round-trips through
 *   gguf_open; copying all metadata of a real GGUF round-trips; writer
 *   misuse gives errors;
 * - convert: TinyStories metadata, names, reversed dims, q/k permutation,
 *   tokenizer arrays; a synthetic byte-level BPE + BF16 + untied checkpoint;
 *   bad configs give the documented errors. */
#include "t.h"

#include "base/err.h"
#include "format/convert.h"
#include "format/gguf.h"
#include "format/gguf_write.h"
#include "base/fp16.h"
#include "format/safetensors.h"
#include "format/ttype.h"
#include "tok/vocab.h"

#include <ftw.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TS_DIR "models/TinyStories-656K"

static char tmpdir[64];

static const char *tmp_path(const char *name)
{
    static char buf[8][256];
    static int k;
    char *b = buf[k++ % 8];
    snprintf(b, sizeof buf[0], "%s/%s", tmpdir, name);
    return b;
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(p);
}

static bool write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return false;
    bool ok = fwrite(data, 1, n, f) == n;
    return fclose(f) == 0 && ok;
}

static bool write_str(const char *path, const char *s) { return write_file(path, s, strlen(s)); }

/* Builds a safetensors image: 8-byte length, header, data. *n gets its size. */
static uint8_t *st_image(const char *header, const void *data, size_t data_len, size_t *n)
{
    size_t hl = strlen(header);
    *n = 8 + hl + data_len;
    uint8_t *p = malloc(*n ? *n : 1);
    if (!p)
        return NULL;
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)((uint64_t)hl >> (8 * i));
    memcpy(p + 8, header, hl);
    if (data_len)
        memcpy(p + 8 + hl, data, data_len);
    return p;
}

/* st_open_mem on header+data expecting error code want (0 = success). */
static void st_expect(const char *name, const char *header, size_t data_len, int want)
{
    uint8_t data[64] = {0};
    size_t n;
    uint8_t *img = st_image(header, data, data_len, &n);
    st_file *f = NULL;
    int rc = st_open_mem(&f, img, n);
    t_check(rc == want, name, "rc %d (want %d): %s", rc, want, err_msg());
    st_close(f);
    free(img);
}

/* ---- safetensors ------------------------------------------------------------ */

static void st_real(void)
{
    st_file *f = NULL;
    int rc = st_open(&f, t_shared(TS_DIR "/model.safetensors"));
    if (!t_check(rc == 0, "st_open TinyStories", "%s", err_msg()))
        return;
    t_check(f->n_tensors == 21, "TinyStories has 20 tensors + 1 alias", "%zu", f->n_tensors);
    const st_tensor *lm = st_find(f, "lm_head.weight");
    const st_tensor *emb = st_find(f, "model.embed_tokens.weight");
    t_check(lm && lm->dtype == ST_F32 && lm->n_dims == 2 && lm->shape[0] == 2048 && lm->shape[1] == 128 &&
            lm->nbytes == 2048 * 128 * 4 && !lm->alias_of, "lm_head.weight dtype/shape", "wrong");
    t_check(emb && emb->alias_of && !strcmp(emb->alias_of, "lm_head.weight") && lm && emb->data == lm->data &&
            emb->shape[0] == 2048 && emb->nel == lm->nel, "embed_tokens aliases lm_head", "not resolved");
    t_check(!st_find(f, "format"), "__metadata__ format is not a tensor", "found");
    const st_tensor *q = st_find(f, "model.layers.1.self_attn.q_proj.weight");
    t_check(q && q->shape[0] == 128 && q->shape[1] == 128, "q_proj shape", "wrong");
    const st_tensor *nw = st_find(f, "model.norm.weight");
    float v[128];
    if (t_check(nw && st_read_f32(nw, 0, 128, v) == 0, "read model.norm.weight", "%s", err_msg())) {
        float raw;
        memcpy(&raw, (const uint8_t *)nw->data + 5 * 4, 4);
        bool finite = true;
        for (int i = 0; i < 128; i++)
            finite = finite && isfinite(v[i]);
        t_check(v[5] == raw && finite, "norm values read exactly", "%g vs %g", v[5], raw);
        t_check(st_read_f32(nw, 100, 29, v) == SOV_EINVAL, "read past the tensor is EINVAL", "%s", err_msg());
    }
    st_close(f);

    f = NULL;
    rc = st_open_dir(&f, t_shared(TS_DIR));
    t_check(rc == 0 && f->n_tensors == 21, "st_open_dir TinyStories", "rc %d %s", rc, err_msg());
    st_close(f);
    f = NULL;
    rc = st_open_dir(&f, t_shared("models"));
    t_check(rc == SOV_ENOTFOUND, "st_open_dir without weights is ENOTFOUND", "rc %d %s", rc, err_msg());
    rc = st_open(&f, "/nonexistent/x.safetensors");
    t_check(rc == SOV_EIO && !f, "st_open missing file is EIO", "rc %d", rc);
}

static void st_malformed(void)
{
    /* 4 F32 = 16 bytes of data unless noted */
    st_expect("valid minimal file", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}", 16, 0);
    st_expect("empty object is fine", "{}", 0, 0);
    st_expect("offsets past EOF", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}", 12, SOV_EFORMAT);
    st_expect("offsets far past EOF", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4000000000,4000000004]}}", 16,
              SOV_EFORMAT);
    st_expect("end before begin", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", 16, SOV_EFORMAT);
    st_expect("size mismatch", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,12]}}", 16, SOV_EFORMAT);
    st_expect("bad JSON", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}", 16, SOV_EFORMAT);
    st_expect("not JSON at all", "hello world", 0, SOV_EFORMAT);
    st_expect("header is an array", "[1,2,3]", 0, SOV_EFORMAT);
    st_expect("wrong dtype", "{\"a\":{\"dtype\":\"Q4\",\"shape\":[4],\"data_offsets\":[0,2]}}", 16, SOV_EFORMAT);
    st_expect("dtype not a string", "{\"a\":{\"dtype\":7,\"shape\":[4],\"data_offsets\":[0,16]}}", 16, SOV_EFORMAT);
    st_expect("negative shape", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-4],\"data_offsets\":[0,16]}}", 16, SOV_EFORMAT);
    st_expect("shape overflow",
              "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,16]}}", 16,
              SOV_EFORMAT);
    st_expect("too many dims", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 16,
              SOV_EUNSUPPORTED);
    st_expect("missing data_offsets", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4]}}", 16, SOV_EFORMAT);
    st_expect("data_offsets of 3", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,8,16]}}", 16, SOV_EFORMAT);
    st_expect("entry not an object", "{\"a\":5}", 0, SOV_EFORMAT);
    st_expect("metadata not an object", "{\"__metadata__\":[1]}", 0, SOV_EFORMAT);
    st_expect("duplicate tensor name",
              "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"a\":{\"dtype\":\"F32\",\"shape\":[1],"
              "\"data_offsets\":[4,8]}}", 16, SOV_EFORMAT);

    size_t n;
    st_file *f = NULL;
    uint8_t small[5] = {1, 0, 0, 0, 0};
    t_check(st_open_mem(&f, small, 5) == SOV_EFORMAT, "file shorter than 8 bytes", "%s", err_msg());
    uint8_t *img = st_image("{}", NULL, 0, &n);
    img[0] = 200; /* header length beyond the file */
    t_check(st_open_mem(&f, img, n) == SOV_EFORMAT && !f, "header length past EOF", "%s", err_msg());
    img[0] = 0xff, img[7] = 0xff; /* huge */
    t_check(st_open_mem(&f, img, n) == SOV_EFORMAT, "huge header length", "%s", err_msg());
    free(img);

    /* I64 opens but is not readable as floats; F16/BF16/F64 read exactly */
    uint8_t d[16] = {0};
    uint16_t h = f32_to_fp16(1.5f), b = f32_to_bf16(-2.25f);
    double dd = 0.125;
    memcpy(d, &h, 2);
    memcpy(d + 2, &b, 2);
    memcpy(d + 8, &dd, 8);
    img = st_image("{\"h\":{\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[0,2]},"
                   "\"b\":{\"dtype\":\"BF16\",\"shape\":[1],\"data_offsets\":[2,4]},"
                   "\"i\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[4,8]},"
                   "\"d\":{\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[8,16]},"
                   "\"__metadata__\":{\"alias\":\"b\",\"other\":\"missing\",\"h\":\"b\"}}", d, 16, &n);
    int rc = st_open_mem(&f, img, n);
    if (t_check(rc == 0, "mixed dtypes open", "%s", err_msg())) {
        float x = 0;
        const st_tensor *th = st_find(f, "h"), *tb = st_find(f, "b"), *ti = st_find(f, "i"), *td = st_find(f, "d");
        t_check(th && st_read_f32(th, 0, 1, &x) == 0 && x == 1.5f, "F16 read", "%g", x);
        t_check(tb && st_read_f32(tb, 0, 1, &x) == 0 && x == -2.25f, "BF16 read", "%g", x);
        t_check(td && td->n_dims == 0 && td->nel == 1 && st_read_f32(td, 0, 1, &x) == 0 && x == 0.125f,
                "F64 scalar read", "%g", x);
        t_check(ti && st_read_f32(ti, 0, 1, &x) == SOV_EUNSUPPORTED, "I32 read is EUNSUPPORTED", "%s", err_msg());
        const st_tensor *ta = st_find(f, "alias");
        t_check(ta && ta->data == tb->data && ta->dtype == ST_BF16, "metadata alias to a tensor", "missing");
        t_check(!st_find(f, "other") && f->n_tensors == 5, "alias to a missing tensor and tensor-named keys ignored",
                "%zu tensors", f->n_tensors);
        st_close(f);
        f = NULL;
    }
    free(img);
}

/* Every prefix of the real file is an error (never a crash); the last tensor
 * ends exactly at EOF, so no proper prefix is valid. */
static void st_truncations(void)
{
    file_map m;
    if (!t_check(file_map_open(&m, t_shared(TS_DIR "/model.safetensors")) == 0, "map TinyStories", "%s", err_msg()))
        return;
    int bad = 0, tried = 0;
    size_t cut_max = m.size;
    for (size_t cut = 0; cut < cut_max; cut += cut < 2400 ? 1 : 4099) {
        st_file *f = NULL;
        int rc = st_open_mem(&f, m.data, cut);
        tried++;
        if (rc != SOV_EFORMAT || f)
            bad++;
        st_close(f);
    }
    t_check(bad == 0, "every truncation of the real file is EFORMAT", "%d of %d cuts accepted", bad, tried);
    /* flipped header bytes: must not crash; result is success or an error code */
    uint8_t *copy = malloc(m.size);
    int odd = 0;
    for (size_t i = 8; copy && i < 2168; i += 7) {
        memcpy(copy, m.data, m.size);
        copy[i] ^= 0x5a;
        st_file *f = NULL;
        int rc = st_open_mem(&f, copy, m.size);
        if (!(rc == 0 || rc == SOV_EFORMAT || rc == SOV_EUNSUPPORTED) || (rc == 0) != (f != NULL))
            odd++;
        st_close(f);
    }
    t_check(copy && odd == 0, "flipped header bytes give success or EFORMAT", "%d odd results", odd);
    free(copy);
    file_unmap(&m);
}

static void st_sharded(void)
{
    float a[4] = {1, 2, 3, 4}, b[2] = {5, 6};
    size_t n1, n2;
    uint8_t *s1 = st_image("{\"x\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}", a, 16, &n1);
    uint8_t *s2 = st_image("{\"y\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", b, 8, &n2);
    mkdir(tmp_path("shard"), 0755);
    bool ok = write_file(tmp_path("shard/m-1.safetensors"), s1, n1) &&
              write_file(tmp_path("shard/m-2.safetensors"), s2, n2) &&
              write_str(tmp_path("shard/model.safetensors.index.json"),
                        "{\"metadata\":{},\"weight_map\":{\"x\":\"m-1.safetensors\",\"y\":\"m-2.safetensors\"}}");
    st_file *f = NULL;
    int rc = ok ? st_open_dir(&f, tmp_path("shard")) : -100;
    if (t_check(rc == 0, "sharded checkpoint opens", "rc %d %s", rc, err_msg())) {
        const st_tensor *x = st_find(f, "x"), *y = st_find(f, "y");
        float v[2];
        t_check(f->n_tensors == 2 && f->n_maps == 2 && x && y && st_read_f32(y, 0, 2, v) == 0 && v[1] == 6.0f,
                "sharded tensors from both files", "wrong");
        st_close(f);
        f = NULL;
    }
    write_str(tmp_path("shard/model.safetensors.index.json"),
              "{\"weight_map\":{\"x\":\"m-1.safetensors\",\"z\":\"m-2.safetensors\"}}");
    rc = st_open_dir(&f, tmp_path("shard"));
    t_check(rc == SOV_EFORMAT && !f, "index naming a missing tensor is EFORMAT", "rc %d %s", rc, err_msg());
    write_str(tmp_path("shard/model.safetensors.index.json"),
              "{\"weight_map\":{\"x\":\"m-1.safetensors\",\"y\":\"m-1.safetensors.copy\"}}");
    write_file(tmp_path("shard/m-1.safetensors.copy"), s1, n1);
    rc = st_open_dir(&f, tmp_path("shard"));
    t_check(rc == SOV_EFORMAT, "tensor in two shards is EFORMAT", "rc %d %s", rc, err_msg());
    write_str(tmp_path("shard/model.safetensors.index.json"), "{\"weight_map\":{\"x\":\"../m-1.safetensors\"}}");
    rc = st_open_dir(&f, tmp_path("shard"));
    t_check(rc == SOV_EFORMAT, "shard path outside the folder is EFORMAT", "rc %d %s", rc, err_msg());
    write_str(tmp_path("shard/model.safetensors.index.json"), "{\"weight_map\":{\"x\":\"gone.safetensors\"}}");
    rc = st_open_dir(&f, tmp_path("shard"));
    t_check(rc == SOV_EIO, "missing shard file is EIO", "rc %d %s", rc, err_msg());
    st_close(f);
    free(s1);
    free(s2);
}

/* ---- GGUF writer ------------------------------------------------------------ */

static int fill_ramp(void *ctx, void *dst, uint64_t nbytes)
{
    float base = *(const float *)ctx;
    float *d = dst;
    for (uint64_t i = 0; i < nbytes / 4; i++)
        d[i] = base + (float)i;
    return 0;
}

static int fill_fail(void *ctx, void *dst, uint64_t nbytes)
{
    (void)ctx; (void)dst; (void)nbytes;
    return err_set(SOV_EIO, "fill failed on purpose");
}

static bool str_is(gguf_str s, const char *c) { return gguf_str_eq(s, c); }

static void writer_roundtrip(uint32_t alignment)
{
    char name[96];
    gguf_writer *w = NULL;
    if (!t_check(gguf_writer_new(&w) == 0, "writer new", "%s", err_msg()))
        return;
    int rc = 0;
    rc |= gguf_w_set_u8(w, "t.u8", 200);
    rc |= gguf_w_set_i8(w, "t.i8", -100);
    rc |= gguf_w_set_u16(w, "t.u16", 60000);
    rc |= gguf_w_set_i16(w, "t.i16", -30000);
    rc |= gguf_w_set_u32(w, "t.u32", 4000000000u);
    rc |= gguf_w_set_i32(w, "t.i32", -2000000000);
    rc |= gguf_w_set_f32(w, "t.f32", 0.1f);
    rc |= gguf_w_set_bool(w, "t.bool", true);
    rc |= gguf_w_set_str(w, "t.str", "hello");
    rc |= gguf_w_set_strn(w, "t.strn", "a\0b", 3);
    rc |= gguf_w_set_u64(w, "t.u64", 18000000000000000000ull);
    rc |= gguf_w_set_i64(w, "t.i64", -9000000000000000000ll);
    rc |= gguf_w_set_f64(w, "t.f64", 1e-300);
    rc |= gguf_w_set_str(w, "t.replaced", "first");
    rc |= gguf_w_set_i32(w, "t.replaced", 7); /* replaces in place, new type */
    int32_t ai[3] = {-1, 0, 1};
    float af[2] = {1.5f, -0.25f};
    uint8_t ab[3] = {1, 0, 1};
    uint16_t au16[2] = {1, 65535};
    double ad[2] = {3.25, -1e10};
    uint64_t au64[1] = {UINT64_MAX};
    const char *as[3] = {"x", "", "\xe2\x96\x81y"};
    rc |= gguf_w_set_arr(w, "t.arr_i32", GGUF_INT32, ai, 3);
    rc |= gguf_w_set_arr(w, "t.arr_f32", GGUF_FLOAT32, af, 2);
    rc |= gguf_w_set_arr(w, "t.arr_bool", GGUF_BOOL, ab, 3);
    rc |= gguf_w_set_arr(w, "t.arr_u16", GGUF_UINT16, au16, 2);
    rc |= gguf_w_set_arr(w, "t.arr_f64", GGUF_FLOAT64, ad, 2);
    rc |= gguf_w_set_arr(w, "t.arr_u64", GGUF_UINT64, au64, 1);
    rc |= gguf_w_set_arr(w, "t.arr_empty", GGUF_UINT8, NULL, 0);
    rc |= gguf_w_set_arr_str(w, "t.arr_str", as, NULL, 3);
    /* nested array [[1,2],[3]] of uint32 through gguf_w_set_value */
    uint8_t raw1[8] = {1, 0, 0, 0, 2, 0, 0, 0}, raw2[4] = {3, 0, 0, 0};
    gguf_value inner[2] = {{.type = GGUF_ARRAY}, {.type = GGUF_ARRAY}};
    inner[0].v.arr.type = GGUF_UINT32, inner[0].v.arr.n = 2, inner[0].v.arr.raw = raw1;
    inner[1].v.arr.type = GGUF_UINT32, inner[1].v.arr.n = 1, inner[1].v.arr.raw = raw2;
    gguf_value outer = {.type = GGUF_ARRAY};
    outer.v.arr.type = GGUF_ARRAY, outer.v.arr.n = 2, outer.v.arr.vals = inner;
    rc |= gguf_w_set_value(w, "t.nested", &outer);
    if (alignment != GGUF_DEFAULT_ALIGNMENT)
        rc |= gguf_w_set_alignment(w, alignment);
    snprintf(name, sizeof name, "writer: set every value type (alignment %u)", alignment);
    t_check(rc == 0, name, "%s", err_msg());

    /* tensors: borrowed f32 2-D, owned f16 1-D, callback f32 3-D, bf16 4-D */
    float m[6] = {1, 2, 3, 4, 5, 6};
    int64_t ne_m[2] = {3, 2};
    uint16_t *hv = malloc(5 * 2);
    for (int i = 0; hv && i < 5; i++)
        hv[i] = f32_to_fp16((float)i * 0.5f);
    int64_t ne_h[1] = {5};
    float base = 100;
    int64_t ne_c[3] = {4, 3, 2};
    uint16_t bv[2] = {f32_to_bf16(1.0f), f32_to_bf16(-3.0f)};
    int64_t ne_b[4] = {1, 2, 1, 1};
    rc = gguf_w_add_tensor(w, "m", SOV_F32, 2, ne_m, m, sizeof m);
    rc |= gguf_w_add_tensor_owned(w, "h", SOV_F16, 1, ne_h, hv, 10);
    rc |= gguf_w_add_tensor_fn(w, "c", SOV_F32, 3, ne_c, 24 * 4, fill_ramp, &base);
    rc |= gguf_w_add_tensor(w, "b", SOV_BF16, 4, ne_b, bv, 4);
    t_check(rc == 0 && gguf_w_n_tensors(w) == 4, "writer: add tensors", "%s", err_msg());
    t_check(gguf_w_add_tensor(w, "m", SOV_F32, 2, ne_m, m, sizeof m) == SOV_EINVAL, "writer: duplicate tensor is EINVAL",
            "%s", err_msg());
    t_check(gguf_w_add_tensor(w, "z", SOV_F32, 2, ne_m, m, 20) == SOV_EINVAL, "writer: wrong byte count is EINVAL", "%s",
            err_msg());
    t_check(gguf_w_add_tensor(w, "z", SOV_Q8_0, 2, ne_m, m, 24) == SOV_EINVAL, "writer: row not a block multiple",
            "%s", err_msg());
    t_check(gguf_w_add_tensor(w, "z", SOV_F32, 5, ne_m, m, 24) == SOV_EINVAL, "writer: 5 dims is EINVAL", "%s",
            err_msg());
    t_check(gguf_w_set_u32(w, "general.alignment", 48) == SOV_EINVAL, "writer: alignment 48 is EINVAL", "%s", err_msg());
    t_check(gguf_w_set_i32(w, "general.alignment", 64) == SOV_EINVAL, "writer: int32 alignment is EINVAL", "%s",
            err_msg());
    uint8_t badb[1] = {2};
    t_check(gguf_w_set_arr(w, "t.badbool", GGUF_BOOL, badb, 1) == SOV_EINVAL, "writer: bool 2 is EINVAL", "%s",
            err_msg());
    t_check(gguf_w_set_arr(w, "t.badtype", GGUF_STRING, badb, 1) == SOV_EINVAL, "writer: string via set_arr is EINVAL",
            "%s", err_msg());
    t_check(gguf_w_set_u8(w, "", 1) == SOV_EINVAL, "writer: empty key is EINVAL", "%s", err_msg());
    t_check(!gguf_w_has(w, "t.badbool") && gguf_w_has(w, "t.u8"), "writer: failed sets leave no key", "wrong");

    const char *path = tmp_path("rt.gguf");
    rc = gguf_w_write(w, path);
    snprintf(name, sizeof name, "writer: write (alignment %u)", alignment);
    t_check(rc == 0, name, "%s", err_msg());
    gguf *g = NULL;
    rc = rc ? rc : gguf_open(&g, path);
    snprintf(name, sizeof name, "writer: gguf_open reads it back (alignment %u)", alignment);
    if (!t_check(rc == 0, name, "%s", err_msg())) {
        gguf_writer_free(w);
        return;
    }
    int64_t i64 = 0;
    double f64 = 0;
    bool bl = false;
    gguf_str s = {0};
    const gguf_value *v;
    int bad = 0;
#define EXPECT(cond, what) do { if (!(cond)) { bad++; printf("  mismatch: %s\n", what); } } while (0)
    EXPECT(g->version == 3 && g->alignment == alignment, "version/alignment");
    EXPECT(g->n_kv == 23 + (alignment != GGUF_DEFAULT_ALIGNMENT), "kv count");
    EXPECT((v = gguf_get(g, "t.u8")) && v->type == GGUF_UINT8 && v->v.u64 == 200, "u8");
    EXPECT((v = gguf_get(g, "t.i8")) && v->type == GGUF_INT8 && v->v.i64 == -100, "i8");
    EXPECT((v = gguf_get(g, "t.u16")) && v->type == GGUF_UINT16 && v->v.u64 == 60000, "u16");
    EXPECT((v = gguf_get(g, "t.i16")) && v->type == GGUF_INT16 && v->v.i64 == -30000, "i16");
    EXPECT((v = gguf_get(g, "t.u32")) && v->type == GGUF_UINT32 && v->v.u64 == 4000000000u, "u32");
    EXPECT((v = gguf_get(g, "t.i32")) && v->type == GGUF_INT32 && v->v.i64 == -2000000000, "i32");
    EXPECT((v = gguf_get(g, "t.f32")) && v->type == GGUF_FLOAT32 && (float)v->v.f64 == 0.1f, "f32");
    EXPECT(gguf_get_bool(g, "t.bool", &bl) == 0 && bl, "bool");
    EXPECT(gguf_get_str(g, "t.str", &s) == 0 && str_is(s, "hello"), "str");
    EXPECT(gguf_get_str(g, "t.strn", &s) == 0 && s.len == 3 && !memcmp(s.ptr, "a\0b", 3), "strn");
    EXPECT((v = gguf_get(g, "t.u64")) && v->type == GGUF_UINT64 && v->v.u64 == 18000000000000000000ull, "u64");
    EXPECT(gguf_get_i64(g, "t.i64", &i64) == 0 && i64 == -9000000000000000000ll, "i64");
    EXPECT(gguf_get_f64(g, "t.f64", &f64) == 0 && f64 == 1e-300 && gguf_get(g, "t.f64")->type == GGUF_FLOAT64, "f64");
    EXPECT(gguf_get_i64(g, "t.replaced", &i64) == 0 && i64 == 7 && g->kv[13].val.type == GGUF_INT32 &&
           str_is(g->kv[13].key, "t.replaced"), "replaced key keeps its place");
    EXPECT((v = gguf_get_arr(g, "t.arr_i32", GGUF_INT32)) && v->v.arr.n == 3 && gguf_arr_i64(v, 0) == -1 &&
           gguf_arr_i64(v, 2) == 1, "arr i32");
    EXPECT((v = gguf_get_arr(g, "t.arr_f32", GGUF_FLOAT32)) && v->v.arr.n == 2 && gguf_arr_f64(v, 1) == -0.25,
           "arr f32");
    EXPECT((v = gguf_get_arr(g, "t.arr_bool", GGUF_BOOL)) && v->v.arr.n == 3 && gguf_arr_i64(v, 0) == 1 &&
           gguf_arr_i64(v, 1) == 0, "arr bool");
    EXPECT((v = gguf_get_arr(g, "t.arr_u16", GGUF_UINT16)) && gguf_arr_i64(v, 1) == 65535, "arr u16");
    EXPECT((v = gguf_get_arr(g, "t.arr_f64", GGUF_FLOAT64)) && gguf_arr_f64(v, 0) == 3.25 && gguf_arr_f64(v, 1) == -1e10,
           "arr f64");
    EXPECT((v = gguf_get_arr(g, "t.arr_u64", GGUF_UINT64)) && v->v.arr.n == 1 &&
           !memcmp(v->v.arr.raw, "\xff\xff\xff\xff\xff\xff\xff\xff", 8), "arr u64");
    EXPECT((v = gguf_get_arr(g, "t.arr_empty", GGUF_UINT8)) && v->v.arr.n == 0, "arr empty");
    EXPECT((v = gguf_get_arr(g, "t.arr_str", GGUF_STRING)) && v->v.arr.n == 3 && str_is(v->v.arr.strs[0], "x") &&
           v->v.arr.strs[1].len == 0 && str_is(v->v.arr.strs[2], "\xe2\x96\x81y"), "arr str");
    EXPECT((v = gguf_get_arr(g, "t.nested", GGUF_ARRAY)) && v->v.arr.n == 2 && v->v.arr.vals[0].v.arr.n == 2 &&
           gguf_arr_i64(&v->v.arr.vals[0], 1) == 2 && gguf_arr_i64(&v->v.arr.vals[1], 0) == 3, "nested array");
    const gguf_tensor *tm = gguf_find_tensor(g, "m"), *th = gguf_find_tensor(g, "h"), *tc = gguf_find_tensor(g, "c"),
                      *tb = gguf_find_tensor(g, "b");
    EXPECT(tm && tm->type == SOV_F32 && tm->n_dims == 2 && tm->ne[0] == 3 && tm->ne[1] == 2 &&
           !memcmp(tm->data, m, sizeof m), "tensor m");
    EXPECT(th && th->type == SOV_F16 && th->n_dims == 1 && th->ne[0] == 5 && fp16_to_f32(((const uint16_t *)th->data)[4]) == 2.0f,
           "tensor h");
    float c23;
    if (tc)
        memcpy(&c23, (const uint8_t *)tc->data + 23 * 4, 4);
    EXPECT(tc && tc->n_dims == 3 && tc->ne[2] == 2 && c23 == 123.0f, "tensor c (callback)");
    EXPECT(tb && tb->type == SOV_BF16 && tb->n_dims == 4 && tb->ne[1] == 2 && !memcmp(tb->data, bv, 4), "tensor b");
    for (uint64_t i = 0; i < g->n_tensors; i++)
        EXPECT(g->tensors[i].offset % alignment == 0 && (g->data_offset % alignment) == 0, "tensor alignment");
    EXPECT(g->size % alignment == 0, "file padded to the alignment");
#undef EXPECT
    snprintf(name, sizeof name, "writer: every value and tensor round-trips (alignment %u)", alignment);
    t_check(bad == 0, name, "%d mismatches", bad);

    /* copy all metadata into a second writer: identical kv section */
    gguf_writer *w2 = NULL;
    rc = gguf_writer_new(&w2);
    rc = rc ? rc : gguf_w_copy_all_kv(w2, g);
    rc = rc ? rc : gguf_w_copy_kv(w2, g, "t.str");
    t_check(rc == 0 && gguf_w_n_kv(w2) == 23, "writer: copy_all_kv", "rc %d %s", rc, err_msg());
    t_check(gguf_w_copy_kv(w2, g, "no.such") == SOV_ENOTFOUND, "writer: copy missing key is ENOTFOUND", "%s", err_msg());
    gguf_w_remove(w2, "t.u8");
    t_check(!gguf_w_has(w2, "t.u8") && gguf_w_n_kv(w2) == 22, "writer: remove", "wrong");
    gguf_writer_free(w2);
    gguf_close(g);

    /* a failing fill callback aborts and removes the file */
    rc = gguf_w_add_tensor_fn(w, "fails", SOV_F32, 1, ne_h, 20, fill_fail, NULL);
    rc = rc ? rc : gguf_w_write(w, path);
    t_check(rc == SOV_EIO && access(path, F_OK) != 0, "writer: fill error aborts and removes the file", "rc %d", rc);
    rc = gguf_w_write(w, "/nonexistent-dir/x.gguf");
    t_check(rc == SOV_EIO, "writer: unwritable path is EIO", "rc %d %s", rc, err_msg());
    gguf_writer_free(w);
}

/* Copy all metadata and tensors of a real GGUF: the reader sees the same. */
static void writer_copy_real(void)
{
    gguf *g = NULL, *g2 = NULL;
    gguf_writer *w = NULL;
    if (!t_check(gguf_open(&g, t_shared("models/stories260K.gguf")) == 0, "open stories260K", "%s", err_msg()))
        return;
    int rc = gguf_writer_new(&w);
    rc = rc ? rc : gguf_w_copy_all_kv(w, g);
    for (uint64_t i = 0; !rc && i < g->n_tensors; i++) {
        char nm[128];
        const gguf_tensor *t = &g->tensors[i];
        rc = gguf_w_add_tensor(w, gguf_str_copy(t->name, nm, sizeof nm), t->type, t->n_dims, t->ne, t->data, t->nbytes);
    }
    const char *path = tmp_path("copy.gguf");
    rc = rc ? rc : gguf_w_write(w, path);
    rc = rc ? rc : gguf_open(&g2, path);
    if (t_check(rc == 0, "copy of stories260K writes and reopens", "%s", err_msg())) {
        int bad = 0;
        bad += g2->n_kv != g->n_kv || g2->n_tensors != g->n_tensors;
        for (uint64_t i = 0; !bad && i < g->n_kv; i++) {
            const gguf_value *a = &g->kv[i].val, *b = &g2->kv[i].val;
            bad += a->type != b->type || g->kv[i].key.len != g2->kv[i].key.len ||
                   memcmp(g->kv[i].key.ptr, g2->kv[i].key.ptr, g->kv[i].key.len) != 0;
            if (bad)
                break;
            if (a->type == GGUF_STRING)
                bad += a->v.str.len != b->v.str.len || memcmp(a->v.str.ptr, b->v.str.ptr, a->v.str.len);
            else if (a->type == GGUF_ARRAY && a->v.arr.type == GGUF_STRING)
                for (uint64_t k = 0; k < a->v.arr.n && !bad; k++)
                    bad += a->v.arr.strs[k].len != b->v.arr.strs[k].len ||
                           memcmp(a->v.arr.strs[k].ptr, b->v.arr.strs[k].ptr, a->v.arr.strs[k].len);
            else if (a->type == GGUF_ARRAY)
                bad += a->v.arr.n != b->v.arr.n || a->v.arr.type != b->v.arr.type ||
                       memcmp(a->v.arr.raw, b->v.arr.raw, a->v.arr.n * gguf_vtype_size(a->v.arr.type));
            else
                bad += memcmp(&a->v, &b->v, sizeof(uint64_t)) != 0;
        }
        for (uint64_t i = 0; !bad && i < g->n_tensors; i++) {
            const gguf_tensor *a = &g->tensors[i], *b = &g2->tensors[i];
            bad += a->type != b->type || a->nbytes != b->nbytes || memcmp(a->ne, b->ne, sizeof a->ne) ||
                   memcmp(a->data, b->data, a->nbytes);
        }
        t_check(bad == 0, "copy of stories260K has identical metadata and tensors", "differs");
        t_check(g2->size == g->size, "copy of stories260K has the same size", "%llu vs %llu",
                (unsigned long long)g2->size, (unsigned long long)g->size);
    }
    gguf_close(g2);
    gguf_close(g);
    gguf_writer_free(w);
}

/* ---- convert ---------------------------------------------------------------- */

static void convert_tinystories(void)
{
    const char *out = tmp_path("ts.gguf");
    convert_opts o = {.outtype = SOV_F32, .quiet = true};
    int rc = convert_hf_llama(t_shared(TS_DIR), out, &o);
    if (!t_check(rc == 0, "convert TinyStories f32", "%s", err_msg()))
        return;
    gguf *g = NULL;
    st_file *st = NULL;
    if (!t_check(gguf_open(&g, out) == 0 && st_open(&st, t_shared(TS_DIR "/model.safetensors")) == 0,
                 "open converted + source", "%s", err_msg())) {
        gguf_close(g);
        st_close(st);
        return;
    }
    gguf_str s = {0};
    int64_t x;
    double d;
    int bad = 0;
    struct { const char *k; int64_t v; } ints[] = {
        {"llama.context_length", 512}, {"llama.embedding_length", 128}, {"llama.block_count", 2},
        {"llama.feed_forward_length", 384}, {"llama.attention.head_count", 8}, {"llama.attention.head_count_kv", 4},
        {"llama.rope.dimension_count", 16}, {"llama.vocab_size", 2048}, {"tokenizer.ggml.bos_token_id", 1},
        {"tokenizer.ggml.eos_token_id", 2}, {"tokenizer.ggml.unknown_token_id", 0}, {"general.file_type", 0},
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        if (gguf_get_i64(g, ints[i].k, &x) != 0 || x != ints[i].v) {
            printf("  %s: %lld\n", ints[i].k, (long long)x);
            bad++;
        }
    bad += gguf_get_str(g, "general.architecture", &s) != 0 || !str_is(s, "llama");
    bad += gguf_get_f64(g, "llama.attention.layer_norm_rms_epsilon", &d) != 0 || (float)d != 1e-6f;
    bad += gguf_get_f64(g, "llama.rope.freq_base", &d) != 0 || d != 10000.0;
    t_check(bad == 0, "converted metadata", "%d wrong", bad);

    bool b = false;
    const gguf_value *tok = gguf_get_arr(g, "tokenizer.ggml.tokens", GGUF_STRING);
    const gguf_value *sc = gguf_get_arr(g, "tokenizer.ggml.scores", GGUF_FLOAT32);
    const gguf_value *tt = gguf_get_arr(g, "tokenizer.ggml.token_type", GGUF_INT32);
    t_check(gguf_get_str(g, "tokenizer.ggml.model", &s) == 0 && str_is(s, "llama") && tok && sc && tt &&
            tok->v.arr.n == 2048 && sc->v.arr.n == 2048 && tt->v.arr.n == 2048, "tokenizer arrays", "missing");
    if (tok && sc && tt && tok->v.arr.n == 2048) {
        /* id 81 "e▁" is made by merge 0, id 82 "d▁" by merge 1; "▁" (80) is a base char */
        t_check(str_is(tok->v.arr.strs[1], "<|start_story|>") && str_is(tok->v.arr.strs[81], "e\xe2\x96\x81") &&
                str_is(tok->v.arr.strs[80], "\xe2\x96\x81") && str_is(tok->v.arr.strs[3], "\n"),
                "token strings", "'%.*s'", (int)tok->v.arr.strs[81].len, tok->v.arr.strs[81].ptr);
        t_check(gguf_arr_f64(sc, 81) == 0.0 && gguf_arr_f64(sc, 82) == -1.0 && gguf_arr_f64(sc, 80) < -1967.0 &&
                gguf_arr_f64(sc, 2047) > gguf_arr_f64(sc, 80), "scores follow the merge order",
                "81: %g 82: %g 80: %g", gguf_arr_f64(sc, 81), gguf_arr_f64(sc, 82), gguf_arr_f64(sc, 80));
        t_check(gguf_arr_i64(tt, 0) == 2 && gguf_arr_i64(tt, 1) == 3 && gguf_arr_i64(tt, 2) == 3 &&
                gguf_arr_i64(tt, 3) == 1 && gguf_arr_i64(tt, 2047) == 1, "token types unk/control/normal", "wrong");
    }
    t_check(gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &b) == 0 && b &&
            gguf_get_bool(g, "tokenizer.ggml.add_space_prefix", &b) == 0 && b, "add_bos / add_space_prefix", "wrong");

    t_check(g->n_tensors == 20 && !gguf_find_tensor(g, "output.weight"), "20 tensors, no output.weight (tied)",
            "%llu", (unsigned long long)g->n_tensors);
    const gguf_tensor *te = gguf_find_tensor(g, "token_embd.weight");
    const st_tensor *lm = st_find(st, "lm_head.weight");
    t_check(te && lm && te->ne[0] == 128 && te->ne[1] == 2048 && te->type == SOV_F32 &&
            !memcmp(te->data, lm->data, lm->nbytes), "token_embd = lm_head, dims reversed", "wrong");
    const gguf_tensor *dn = gguf_find_tensor(g, "blk.1.ffn_down.weight");
    t_check(dn && dn->ne[0] == 384 && dn->ne[1] == 128, "ffn_down dims [384, 128]", "wrong");
    const gguf_tensor *nrm = gguf_find_tensor(g, "blk.0.ffn_norm.weight");
    const st_tensor *snrm = st_find(st, "model.layers.0.post_attention_layernorm.weight");
    t_check(nrm && snrm && nrm->n_dims == 1 && !memcmp(nrm->data, snrm->data, 512), "ffn_norm copied", "wrong");
    /* q (8 heads) and k (4 heads), head_dim 16: GGUF row 2i / 2i+1 of head h
     * is HF row h*16 + i / h*16 + 8 + i */
    const char *gn[2] = {"blk.1.attn_q.weight", "blk.1.attn_k.weight"};
    const char *hn[2] = {"model.layers.1.self_attn.q_proj.weight", "model.layers.1.self_attn.k_proj.weight"};
    for (int k = 0; k < 2; k++) {
        const gguf_tensor *gt = gguf_find_tensor(g, gn[k]);
        const st_tensor *ht = st_find(st, hn[k]);
        int wrong = 0, same_as_unpermuted = 0;
        int64_t rows = k ? 64 : 128;
        for (int64_t r = 0; gt && ht && r < rows; r++) {
            int64_t h = r / 16, j = r % 16;
            int64_t src = h * 16 + (j % 2 ? 8 : 0) + j / 2;
            wrong += memcmp((const uint8_t *)gt->data + r * 512, (const uint8_t *)ht->data + src * 512, 512) != 0;
            same_as_unpermuted += memcmp((const uint8_t *)gt->data + r * 512, (const uint8_t *)ht->data + r * 512, 512) == 0;
        }
        t_check(gt && ht && gt->ne[0] == 128 && gt->ne[1] == rows && wrong == 0 && same_as_unpermuted < rows / 4,
                k ? "attn_k rows permuted per kv head" : "attn_q rows permuted per head", "%d wrong rows", wrong);
    }
    t_check(convert_qk_src_row(0, 16) == 0 && convert_qk_src_row(1, 16) == 8 && convert_qk_src_row(2, 16) == 1 &&
            convert_qk_src_row(15, 16) == 15 && convert_qk_src_row(17, 16) == 24, "convert_qk_src_row", "wrong");
    gguf_close(g);
    g = NULL;

    /* f16: same tensors, f16 matrices, f32 norms */
    o.outtype = SOV_F16;
    rc = convert_hf_llama(t_shared(TS_DIR), out, &o);
    rc = rc ? rc : gguf_open(&g, out);
    if (t_check(rc == 0, "convert TinyStories f16", "%s", err_msg())) {
        const gguf_tensor *t = gguf_find_tensor(g, "blk.0.ffn_up.weight");
        const gguf_tensor *n = gguf_find_tensor(g, "output_norm.weight");
        const st_tensor *su = st_find(st, "model.layers.0.mlp.up_proj.weight");
        int wrong = 0;
        for (int64_t i = 0; t && su && i < su->nel; i += 97) {
            float f;
            uint16_t h;
            memcpy(&f, (const uint8_t *)su->data + 4 * i, 4);
            memcpy(&h, (const uint8_t *)t->data + 2 * i, 2);
            wrong += h != f32_to_fp16(f);
        }
        t_check(t && n && t->type == SOV_F16 && n->type == SOV_F32 && wrong == 0 &&
                gguf_get_i64(g, "general.file_type", &x) == 0 && x == 1, "f16 matrices, f32 norms, file_type 1",
                "%d wrong values", wrong);
    }
    gguf_close(g);
    st_close(st);
    o.outtype = SOV_Q4_0;
    t_check(convert_hf_llama(t_shared(TS_DIR), out, &o) == SOV_EINVAL, "outtype q4_0 is EINVAL", "%s", err_msg());
}

/* A folder with TinyStories' weights and tokenizer (symlinks) and a config. */
static bool make_ts_variant(const char *dir, const char *config)
{
    char real[1024];
    mkdir(tmp_path(dir), 0755);
    const char *files[] = {"model.safetensors", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char link[300];
        snprintf(link, sizeof link, "%s/%s", tmp_path(dir), files[i]);
        if (!realpath(t_shared(TS_DIR), real))
            return false;
        char target[1200];
        snprintf(target, sizeof target, "%s/%s", real, files[i]);
        unlink(link);
        if (symlink(target, link) != 0)
            return false;
    }
    char cfg[300];
    snprintf(cfg, sizeof cfg, "%s/config.json", tmp_path(dir));
    return write_str(cfg, config);
}

#define TS_CFG_HEAD "{\"model_type\":\"llama\",\"hidden_size\":128,\"num_hidden_layers\":2,\"num_attention_heads\":8," \
                    "\"num_key_value_heads\":4,\"intermediate_size\":384,\"vocab_size\":2048,"
static void convert_errors(void)
{
    convert_opts o = {.outtype = SOV_F32, .quiet = true};
    char out[256];
    snprintf(out, sizeof out, "%s", tmp_path("err.gguf"));
    struct { const char *name, *cfg; int want; } cases[] = {
        {"config missing hidden_size is ENOTFOUND",
         "{\"model_type\":\"llama\",\"num_hidden_layers\":2,\"num_attention_heads\":8,\"intermediate_size\":384,"
         "\"vocab_size\":2048}", SOV_ENOTFOUND},
        {"minimal llama config converts", TS_CFG_HEAD "\"tie_word_embeddings\":true,\"max_position_embeddings\":512}",
         0},
        {"ffn size mismatch is EFORMAT", "{\"model_type\":\"llama\",\"hidden_size\":128,\"num_hidden_layers\":2,"
         "\"num_attention_heads\":8,\"num_key_value_heads\":4,\"intermediate_size\":300,\"vocab_size\":2048,"
         "\"tie_word_embeddings\":true}", SOV_EFORMAT},
        {"untied without lm_head output is fine (alias)", TS_CFG_HEAD "\"tie_word_embeddings\":false}", 0},
        {"more layers than tensors is ENOTFOUND", "{\"model_type\":\"llama\",\"hidden_size\":128,\"num_hidden_layers\":3,"
         "\"num_attention_heads\":8,\"num_key_value_heads\":4,\"intermediate_size\":384,\"vocab_size\":2048,"
         "\"tie_word_embeddings\":true}", SOV_ENOTFOUND},
        {"fewer layers leaves unknown tensors: EUNSUPPORTED", "{\"model_type\":\"llama\",\"hidden_size\":128,"
         "\"num_hidden_layers\":1,\"num_attention_heads\":8,\"num_key_value_heads\":4,\"intermediate_size\":384,"
         "\"vocab_size\":2048,\"tie_word_embeddings\":true}", SOV_EUNSUPPORTED},
        {"yarn rope scaling is EUNSUPPORTED", TS_CFG_HEAD "\"rope_scaling\":{\"type\":\"yarn\",\"factor\":4}}",
         SOV_EUNSUPPORTED},
        {"gpt2 model_type is EUNSUPPORTED", "{\"model_type\":\"gpt2\"}", SOV_EUNSUPPORTED},
        {"vocab smaller than the tokenizer is EFORMAT", "{\"model_type\":\"llama\",\"hidden_size\":128,"
         "\"num_hidden_layers\":2,\"num_attention_heads\":8,\"num_key_value_heads\":4,\"intermediate_size\":384,"
         "\"vocab_size\":1000,\"tie_word_embeddings\":true}", SOV_EFORMAT},
        {"config not JSON is EFORMAT", "{\"model_type\":", SOV_EFORMAT},
        {"odd head_dim is EFORMAT", TS_CFG_HEAD "\"head_dim\":15}", SOV_EFORMAT},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char dir[32];
        snprintf(dir, sizeof dir, "cfg%zu", i);
        if (!make_ts_variant(dir, cases[i].cfg)) {
            t_check(false, cases[i].name, "cannot build the test folder");
            continue;
        }
        int rc = convert_hf_llama(tmp_path(dir), out, &o);
        t_check(rc == cases[i].want && (rc != 0 || access(out, F_OK) == 0) && (rc == 0 || access(out, F_OK) != 0),
                cases[i].name, "rc %d (want %d): %s", rc, cases[i].want, err_msg());
        remove(out);
    }
    /* linear rope scaling is written */
    gguf *g = NULL;
    double d = 0;
    gguf_str s = {0};
    int rc = make_ts_variant("lin", TS_CFG_HEAD "\"tie_word_embeddings\":true,\"rope_theta\":500000,"
                             "\"rope_scaling\":{\"rope_type\":\"linear\",\"factor\":4.0}}") ? 0 : -100;
    rc = rc ? rc : convert_hf_llama(tmp_path("lin"), out, &o);
    rc = rc ? rc : gguf_open(&g, out);
    t_check(rc == 0 && gguf_get_f64(g, "llama.rope.scaling.factor", &d) == 0 && d == 4.0 &&
            gguf_get_str(g, "llama.rope.scaling.type", &s) == 0 && str_is(s, "linear") &&
            gguf_get_f64(g, "llama.rope.freq_base", &d) == 0 && d == 500000.0, "linear rope scaling written",
            "rc %d %s", rc, err_msg());
    gguf_close(g);
}

/* GPT-2 byte-to-unicode map: printable bytes map to themselves, others to
 * U+0100 + n. Writes the UTF-8 of byte b's character to out (NUL-terminated). */
static void byte_char(int b, char *out)
{
    int n = 0, cp = -1;
    for (int x = 0; x < 256; x++) {
        bool printable = (x >= '!' && x <= '~') || (x >= 0xa1 && x <= 0xac) || (x >= 0xae && x <= 0xff);
        int c = printable ? x : 256 + n++;
        if (x == b)
            cp = c;
    }
    if (cp < 0x80) {
        out[0] = (char)cp, out[1] = 0;
    } else {
        out[0] = (char)(0xc0 | (cp >> 6)), out[1] = (char)(0x80 | (cp & 0x3f)), out[2] = 0;
    }
}

/* Writes path: a byte-level BPE tokenizer.json with the given pre_tokenizer
 * JSON: 256 byte chars, 6 merged tokens (ids 256..261, one merge in pair
 * form), special <|eot|> (262) and non-special <user> (263). */
static bool write_bpe_tokenizer(const char *path, const char *pre)
{
    char *tj = malloc(64 * 1024);
    if (!tj)
        return false;
    size_t p = 0;
    p += (size_t)snprintf(tj + p, 65536 - p, "{\"version\":\"1.0\",\"added_tokens\":[{\"id\":262,\"content\":\"<|eot|>\","
                          "\"special\":true},{\"id\":263,\"content\":\"<user>\",\"special\":false}],"
                          "\"normalizer\":null,\"pre_tokenizer\":%s,\"decoder\":{\"type\":\"ByteLevel\"},"
                          "\"model\":{\"type\":\"BPE\",\"vocab\":{", pre);
    for (int b = 0; b < 256; b++) {
        char c[4];
        byte_char(b, c);
        const char *esc = (c[0] == '"' || c[0] == '\\') ? "\\" : "";
        p += (size_t)snprintf(tj + p, 65536 - p, "\"%s%s\":%d,", esc, c, b);
    }
    p += (size_t)snprintf(tj + p, 65536 - p, "\"\xc4\xa0t\":256,\"he\":257,\"\xc4\xa0the\":258,\"in\":259,\"ing\":260,"
                          "\"<|eot|>\":262,\"th\":261},\"merges\":[\"\xc4\xa0 t\",\"h e\",[\"\xc4\xa0t\",\"he\"],"
                          "\"i n\",\"in g\",\"t h\"]}}");
    bool ok = p < 65536 && write_str(path, tj);
    free(tj);
    return ok;
}

#define BYTELEVEL_PRE "{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"trim_offsets\":true,\"use_regex\":true}"
#define LLAMA3_PRE "{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":{\"Regex\":" \
    "\"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?\\\\p{L}+|\\\\p{N}{1,3}| ?[^\\\\s\\\\p{L}\\\\p{N}]+" \
    "[\\\\r\\\\n]*|\\\\s*[\\\\r\\\\n]+|\\\\s+(?!\\\\S)|\\\\s+\"},\"behavior\":\"Isolated\",\"invert\":false}," \
    "{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"trim_offsets\":true,\"use_regex\":false}]}"

/* Synthetic checkpoint: byte-level BPE tokenizer, BF16 weights, untied head. */
static void convert_synthetic_bpe(void)
{
    enum { E = 8, L = 1, H = 2, HKV = 1, HD = 4, FF = 16, V = 264 };
    mkdir(tmp_path("bpe"), 0755);
    char *hdr = malloc(8192);
    uint16_t *data = calloc(16384, 2);
    if (!hdr || !data) {
        t_check(false, "synthetic alloc", "out of memory");
        goto out;
    }
    bool ok = write_bpe_tokenizer(tmp_path("bpe/tokenizer.json"), BYTELEVEL_PRE) &&
              write_str(tmp_path("bpe/tokenizer_config.json"), "{\"bos_token\":null,\"eos_token\":\"<|eot|>\","
                        "\"model_max_length\":1000000000000000019884624838656}") &&
              write_str(tmp_path("bpe/config.json"), "{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":8,"
                        "\"num_hidden_layers\":1,\"num_attention_heads\":2,\"num_key_value_heads\":1,"
                        "\"intermediate_size\":16,\"vocab_size\":264,\"tie_word_embeddings\":false,"
                        "\"eos_token_id\":[262, 5],\"rms_norm_eps\":1e-5}");
    /* weights: BF16, value of element i of tensor k = (k + 1) + i / 1024 */
    struct { const char *name; int rows, cols; } ts[] = {
        {"model.embed_tokens.weight", V, E}, {"lm_head.weight", V, E}, {"model.norm.weight", E, 0},
        {"model.layers.0.input_layernorm.weight", E, 0}, {"model.layers.0.post_attention_layernorm.weight", E, 0},
        {"model.layers.0.self_attn.q_proj.weight", H * HD, E}, {"model.layers.0.self_attn.k_proj.weight", HKV * HD, E},
        {"model.layers.0.self_attn.v_proj.weight", HKV * HD, E}, {"model.layers.0.self_attn.o_proj.weight", E, H * HD},
        {"model.layers.0.mlp.gate_proj.weight", FF, E}, {"model.layers.0.mlp.up_proj.weight", FF, E},
        {"model.layers.0.mlp.down_proj.weight", E, FF}, {"model.layers.0.self_attn.rotary_emb.inv_freq", 2, 0},
    };
    size_t hp = 0, off = 0;
    hp += (size_t)snprintf(hdr + hp, 8192 - hp, "{");
    for (size_t k = 0; k < sizeof ts / sizeof ts[0]; k++) {
        size_t nel = (size_t)ts[k].rows * (size_t)(ts[k].cols ? ts[k].cols : 1);
        for (size_t i = 0; i < nel; i++)
            data[off / 2 + i] = f32_to_bf16((float)(k + 1) + (float)i / 1024.0f);
        if (ts[k].cols)
            hp += (size_t)snprintf(hdr + hp, 8192 - hp, "%s\"%s\":{\"dtype\":\"BF16\",\"shape\":[%d,%d],"
                                   "\"data_offsets\":[%zu,%zu]}", k ? "," : "", ts[k].name, ts[k].rows, ts[k].cols,
                                   off, off + nel * 2);
        else
            hp += (size_t)snprintf(hdr + hp, 8192 - hp, "%s\"%s\":{\"dtype\":\"BF16\",\"shape\":[%d],"
                                   "\"data_offsets\":[%zu,%zu]}", k ? "," : "", ts[k].name, ts[k].rows, off,
                                   off + nel * 2);
        off += nel * 2;
    }
    snprintf(hdr + hp, 8192 - hp, "}");
    size_t n;
    uint8_t *img = st_image(hdr, data, off, &n);
    ok = ok && img && write_file(tmp_path("bpe/model.safetensors"), img, n);
    free(img);
    if (!t_check(ok, "synthetic checkpoint written", "io error"))
        goto out;

    convert_opts o = {.outtype = SOV_BF16, .quiet = true};
    gguf *g = NULL;
    int rc = convert_hf_llama(tmp_path("bpe"), tmp_path("bpe.gguf"), &o);
    rc = rc ? rc : gguf_open(&g, tmp_path("bpe.gguf"));
    if (!t_check(rc == 0, "convert synthetic byte-level BPE / BF16 / untied", "%s", err_msg()))
        goto out;
    gguf_str s = {0};
    int64_t x = -1;
    bool b = true;
    const gguf_value *tok = gguf_get_arr(g, "tokenizer.ggml.tokens", GGUF_STRING);
    const gguf_value *tt = gguf_get_arr(g, "tokenizer.ggml.token_type", GGUF_INT32);
    const gguf_value *mg = gguf_get_arr(g, "tokenizer.ggml.merges", GGUF_STRING);
    t_check(gguf_get_str(g, "tokenizer.ggml.model", &s) == 0 && str_is(s, "gpt2") &&
            gguf_get_str(g, "tokenizer.ggml.pre", &s) == 0 && str_is(s, "gpt-2") && !gguf_get(g, "tokenizer.ggml.scores"),
            "gpt2 tokenizer model, pre gpt-2, no scores", "wrong");
    t_check(tok && tok->v.arr.n == 264 && str_is(tok->v.arr.strs[32], "\xc4\xa0") && str_is(tok->v.arr.strs[258],
            "\xc4\xa0the") && str_is(tok->v.arr.strs[263], "<user>"), "gpt2 tokens", "wrong");
    t_check(tt && gguf_arr_i64(tt, 65) == 1 && gguf_arr_i64(tt, 262) == 3 && gguf_arr_i64(tt, 263) == 4,
            "gpt2 token types normal/control/user", "wrong");
    t_check(mg && mg->v.arr.n == 6 && str_is(mg->v.arr.strs[0], "\xc4\xa0 t") &&
            str_is(mg->v.arr.strs[2], "\xc4\xa0t he") && str_is(mg->v.arr.strs[5], "t h"), "gpt2 merges (string and pair form)",
            "wrong");
    t_check(gguf_get_i64(g, "tokenizer.ggml.eos_token_id", &x) == 0 && x == 262 &&
            !gguf_get(g, "tokenizer.ggml.bos_token_id") && gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &b) == 0 && !b,
            "gpt2 eos from config list, no bos, add_bos false", "eos %lld", (long long)x);
    const gguf_tensor *ow = gguf_find_tensor(g, "output.weight"), *te = gguf_find_tensor(g, "token_embd.weight");
    const gguf_tensor *q = gguf_find_tensor(g, "blk.0.attn_q.weight"), *nr = gguf_find_tensor(g, "output_norm.weight");
    uint16_t w0 = 0, q1 = 0;
    float n0 = 0;
    if (ow)
        memcpy(&w0, (const uint8_t *)ow->data + 2 * 9, 2);
    if (q)
        memcpy(&q1, (const uint8_t *)q->data + 2 * E, 2); /* GGUF row 1 = HF row HD/2 = 2, element 0 */
    if (nr)
        memcpy(&n0, nr->data, 4);
    t_check(g->n_tensors == 12 && ow && te && ow->type == SOV_BF16 && ow->ne[0] == E && ow->ne[1] == V &&
            bf16_to_f32(w0) == bf16_to_f32(f32_to_bf16(2.0f + 9.0f / 1024.0f)), "untied output.weight in bf16", "wrong");
    t_check(q && q->type == SOV_BF16 && bf16_to_f32(q1) == bf16_to_f32(f32_to_bf16(6.0f + 16.0f / 1024.0f)),
            "bf16 q rows permuted", "%g", bf16_to_f32(q1));
    t_check(nr && nr->type == SOV_F32 && n0 == 3.0f && gguf_get_i64(g, "general.file_type", &x) == 0 && x == 32,
            "norms f32 from bf16, file_type 32", "%g", n0);
    vocab *vb = NULL;
    int32_t *ids = NULL;
    size_t n_ids = 0;
    rc = vocab_load(&vb, g);
    rc = rc ? rc : vocab_encode(vb, " the thing", 10, false, false, &ids, &n_ids);
    t_check(rc == 0 && n_ids == 4 && ids[0] == 258 && ids[1] == 256 && ids[2] == 'h' && ids[3] == 260,
            "sov's vocab loads the gpt2 tokenizer and merges ' the thing'", "rc %d %s, %zu ids", rc, err_msg(), n_ids);
    free(ids);
    vocab_free(vb);
    gguf_close(g);
    g = NULL;

    /* Llama-3 style Split + ByteLevel pre-tokenizer is recognized */
    rc = write_bpe_tokenizer(tmp_path("bpe/tokenizer.json"), LLAMA3_PRE) ? 0 : -100;
    rc = rc ? rc : convert_hf_llama(tmp_path("bpe"), tmp_path("bpe.gguf"), &o);
    rc = rc ? rc : gguf_open(&g, tmp_path("bpe.gguf"));
    t_check(rc == 0 && gguf_get_str(g, "tokenizer.ggml.pre", &s) == 0 && str_is(s, "llama-bpe"),
            "llama-3 split regex gives pre llama-bpe", "rc %d %s", rc, err_msg());
    gguf_close(g);
    g = NULL;
    /* a WordPiece / Unigram model is a clear error */
    write_str(tmp_path("bpe/tokenizer.json"), "{\"model\":{\"type\":\"Unigram\",\"vocab\":[]}}");
    rc = convert_hf_llama(tmp_path("bpe"), tmp_path("bpe.gguf"), &o);
    t_check(rc == SOV_EUNSUPPORTED, "Unigram tokenizer is EUNSUPPORTED", "rc %d %s", rc, err_msg());
    /* BPE with neither byte-level nor SentencePiece markers */
    write_str(tmp_path("bpe/tokenizer.json"), "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0},\"merges\":[]}}");
    rc = convert_hf_llama(tmp_path("bpe"), tmp_path("bpe.gguf"), &o);
    t_check(rc == SOV_EUNSUPPORTED, "unrecognized BPE layout is EUNSUPPORTED", "rc %d %s", rc, err_msg());
out:
    free(hdr);
    free(data);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/sov-test-st-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        t_check(false, "mkdtemp", "cannot create a temporary folder");
        return t_done();
    }
    st_real();
    st_malformed();
    st_truncations();
    st_sharded();
    writer_roundtrip(GGUF_DEFAULT_ALIGNMENT);
    writer_roundtrip(64);
    writer_roundtrip(1);
    writer_copy_real();
    convert_tinystories();
    convert_errors();
    convert_synthetic_bpe();
    nftw(tmpdir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    return t_done();
}
