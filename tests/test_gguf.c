/* GGUF reader: every shared file parses; known metadata and tensor facts hold;
 * hand-made malformed images give the documented errors; reading a file into
 * huge-page memory gives the same image as mapping it. */
#include "t.h"

#include "base/err.h"
#include "base/file.h"
#include "format/gguf.h"
#include "format/ttype.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void open_all_shared(void)
{
    const char *files[] = {
        "models/stories260K.gguf", "models/llama-2-tiny-random.gguf",
        "models/quant/mini256-f16.gguf", "models/quant/mini256-q2_k.gguf",
        "models/quant/mini256-q3_k_m.gguf", "models/quant/mini256-q4_0.gguf",
        "models/quant/mini256-q4_1.gguf", "models/quant/mini256-q4_k_m.gguf",
        "models/quant/mini256-q5_0.gguf", "models/quant/mini256-q5_1.gguf",
        "models/quant/mini256-q5_k_m.gguf", "models/quant/mini256-q6_k.gguf",
        "models/quant/mini256-q8_0.gguf", "vocab/ggml-vocab-llama-spm.gguf",
        "vocab/ggml-vocab-gpt-2.gguf", "vocab/ggml-vocab-deepseek-llm.gguf",
        "vocab/ggml-vocab-bert-bge.gguf",
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        gguf *g = NULL;
        int rc = gguf_open(&g, t_shared(files[i]));
        char name[160];
        snprintf(name, sizeof name, "gguf_open %s", files[i]);
        t_check(rc == 0, name, "%s", err_msg());
        gguf_close(g);
    }
}

static void stories_facts(void)
{
    gguf *g = NULL;
    if (!t_check(gguf_open(&g, t_shared("models/stories260K.gguf")) == 0, "stories open", "%s", err_msg()))
        return;
    gguf_str arch = {0};
    t_check(gguf_get_str(g, "general.architecture", &arch) == 0 && gguf_str_eq(arch, "llama"),
            "stories arch is llama", "got '%.*s'", (int)arch.len, arch.ptr ? arch.ptr : "");
    int64_t n_embd = 0, n_layer = 0;
    gguf_get_i64(g, "llama.embedding_length", &n_embd);
    gguf_get_i64(g, "llama.block_count", &n_layer);
    t_check(n_embd == 64 && n_layer == 5, "stories hparams", "n_embd %lld n_layer %lld",
            (long long)n_embd, (long long)n_layer);
    const gguf_value *toks = gguf_get_arr(g, "tokenizer.ggml.tokens", GGUF_STRING);
    t_check(toks && toks->v.arr.n == 512, "stories 512 tokens", "n=%llu",
            toks ? (unsigned long long)toks->v.arr.n : 0ULL);
    const gguf_tensor *te = gguf_find_tensor(g, "token_embd.weight");
    t_check(te && te->ne[0] == 64 && te->ne[1] == 512 && te->type == SOV_F32 &&
            (const unsigned char *)te->data >= g->base &&
            (const unsigned char *)te->data + te->nbytes <= g->base + g->size,
            "stories token_embd shape and extent", "missing or wrong");
    int64_t x;
    t_check(gguf_get_i64(g, "no.such.key", &x) == SOV_ENOTFOUND, "missing key is ENOTFOUND", "%s", err_msg());
    t_check(gguf_get_i64(g, "general.architecture", &x) == SOV_EFORMAT, "string as int is EFORMAT", "%s", err_msg());
    gguf_close(g);
}

/* Little builder for hand-made images. */
typedef struct { unsigned char b[4096]; size_t n; } img;
static void put(img *m, const void *p, size_t n) { memcpy(m->b + m->n, p, n); m->n += n; }
static void put_u32(img *m, uint32_t v) { put(m, &v, 4); }
static void put_u64(img *m, uint64_t v) { put(m, &v, 8); }
static void put_str(img *m, const char *s) { put_u64(m, strlen(s)); put(m, s, strlen(s)); }

static void malformed(void)
{
    gguf *g = NULL;
    img m = {0};
    put(&m, "GGUF", 4); put_u32(&m, 3); put_u64(&m, 1); put_u64(&m, 1);
    put_str(&m, "general.alignment"); put_u32(&m, GGUF_UINT32); put_u32(&m, 32);
    put_str(&m, "blk.3.ffn_up.weight"); put_u32(&m, 2); put_u64(&m, 32); put_u64(&m, 4);
    put_u32(&m, SOV_F32); put_u64(&m, 0);
    size_t hdr = m.n;
    /* data section: 32*4*4 = 512 bytes needed, give only 100 */
    while (m.n % 32) m.b[m.n++] = 0;
    m.n += 100;
    int rc = gguf_open_mem(&g, m.b, m.n);
    t_check(rc == SOV_EFORMAT && strstr(err_msg(), "tensor 'blk.3.ffn_up.weight' extends past end of file"),
            "tensor past EOF is named", "rc %d msg '%s'", rc, err_msg());
    gguf_close(g);
    m.n = hdr + (32 - hdr % 32) % 32 + 512;
    rc = gguf_open_mem(&g, m.b, m.n);
    t_check(rc == 0 && g->n_tensors == 1 && gguf_tensor_nelements(&g->tensors[0]) == 128,
            "hand-made image loads", "rc %d %s", rc, err_msg());
    gguf_close(g);
    g = NULL;

    img a = {0};
    put(&a, "GGUF", 4); put_u32(&a, 3); put_u64(&a, 0); put_u64(&a, 1);
    put_str(&a, "k"); put_u32(&a, GGUF_ARRAY); put_u32(&a, GGUF_UINT32); put_u64(&a, 1ull << 60);
    rc = gguf_open_mem(&g, a.b, a.n);
    t_check(rc == SOV_EFORMAT && strstr(err_msg(), "metadata 'k'"), "absurd array count rejected",
            "rc %d msg '%s'", rc, err_msg());
    gguf_close(g);
    g = NULL;

    img v = {0};
    put(&v, "GGUF", 4); put_u32(&v, 3); put_u64(&v, 0); put_u64(&v, 1);
    put_str(&v, "nested"); put_u32(&v, GGUF_ARRAY); put_u32(&v, GGUF_ARRAY); put_u64(&v, 2);
    put_u32(&v, GGUF_INT32); put_u64(&v, 2); put_u32(&v, 7); put_u32(&v, (uint32_t)-3);
    put_u32(&v, GGUF_STRING); put_u64(&v, 1); put_str(&v, "hi");
    rc = gguf_open_mem(&g, v.b, v.n);
    const gguf_value *nv = g ? gguf_get(g, "nested") : NULL;
    t_check(rc == 0 && nv && nv->v.arr.n == 2 && gguf_arr_i64(&nv->v.arr.vals[0], 1) == -3 &&
            gguf_str_eq(nv->v.arr.vals[1].v.arr.strs[0], "hi"),
            "nested arrays parse", "rc %d %s", rc, err_msg());
    gguf_close(g);
    g = NULL;

    img d = {0};
    put(&d, "GGUF", 4); put_u32(&d, 3); put_u64(&d, 0); put_u64(&d, 2);
    put_str(&d, "a.key"); put_u32(&d, GGUF_UINT32); put_u32(&d, 1);
    put_str(&d, "a.key"); put_u32(&d, GGUF_UINT32); put_u32(&d, 2);
    rc = gguf_open_mem(&g, d.b, d.n);
    t_check(rc == SOV_EFORMAT && strstr(err_msg(), "duplicate metadata key 'a.key'"), "duplicate key rejected",
            "rc %d msg '%s'", rc, err_msg());
    gguf_close(g);
    g = NULL;

    img dt = {0};
    put(&dt, "GGUF", 4); put_u32(&dt, 3); put_u64(&dt, 2); put_u64(&dt, 0);
    for (int i = 0; i < 2; i++) {
        put_str(&dt, "w"); put_u32(&dt, 1); put_u64(&dt, 8); put_u32(&dt, SOV_F32); put_u64(&dt, 32u * (uint64_t)i);
    }
    while (dt.n % 32) dt.b[dt.n++] = 0;
    dt.n += 64;
    rc = gguf_open_mem(&g, dt.b, dt.n);
    t_check(rc == SOV_EFORMAT && strstr(err_msg(), "duplicate tensor name 'w'"), "duplicate tensor rejected",
            "rc %d msg '%s'", rc, err_msg());
    gguf_close(g);
    g = NULL;

    unsigned char v1[24] = {'G', 'G', 'U', 'F', 1, 0, 0, 0};
    rc = gguf_open_mem(&g, v1, sizeof v1);
    t_check(rc == SOV_EUNSUPPORTED, "version 1 rejected", "rc %d", rc);
    rc = gguf_open_mem(&g, "GGUX", 4);
    t_check(rc == SOV_EFORMAT && strstr(err_msg(), "magic"), "bad magic rejected", "%s", err_msg());
}

/* file_map_read: same bytes as file_map_open, 2 MiB-aligned, errors named */
static void read_mode(void)
{
    const char *files[] = {"models/stories260K.gguf", "models/llama-2-tiny-random.gguf"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        file_map a, b;
        char name[160];
        snprintf(name, sizeof name, "file_map_read %s equals the mapping", files[i]);
        if (!file_map_open(&a, t_shared(files[i])) == 0) {
            t_check(false, name, "map: %s", err_msg());
            continue;
        }
        int rc = file_map_read(&b, t_shared(files[i]));
        if (rc != 0)
            t_check(false, name, "read: %s", err_msg());
        else {
            t_check(b.size == a.size && !memcmp(a.data, b.data, a.size), name, "images differ (%zu vs %zu bytes)",
                    a.size, b.size);
            snprintf(name, sizeof name, "file_map_read %s is 2 MiB-aligned", files[i]);
            t_check(((uintptr_t)b.data & ((2u << 20) - 1)) == 0 && b.region_size >= b.size &&
                        b.region_size % (2u << 20) == 0,
                    name, "data %p region %zu", (const void *)b.data, b.region_size);
            file_unmap(&b);
            t_check(!b.data && !b.region && !b.size, "file_unmap clears a read image", "not cleared");
        }
        file_unmap(&a);
    }
    file_map m;
    t_check(file_map_read(&m, "/nonexistent/sov.gguf") == SOV_EIO && strstr(err_msg(), "/nonexistent/sov.gguf"),
            "file_map_read: missing file named", "%s", err_msg());
    t_check(file_map_read(&m, "/") == SOV_EIO, "file_map_read: a directory is rejected", "%s", err_msg());
    /* an empty file: no image, no error */
    char tmp[] = "/tmp/sov_empty_XXXXXX";
    int fd = mkstemp(tmp);
    if (t_check(fd >= 0, "empty temp file", "mkstemp failed")) {
        close(fd);
        t_check(file_map_read(&m, tmp) == 0 && !m.data && !m.size, "file_map_read: empty file", "%s", err_msg());
        file_unmap(&m);
        unlink(tmp);
    }
    /* through gguf_load: the same tensors, data inside the read image */
    gguf *g1 = NULL, *g2 = NULL;
    if (t_check(gguf_load(&g1, t_shared("models/stories260K.gguf"), true) == 0 &&
                    gguf_load(&g2, t_shared("models/stories260K.gguf"), false) == 0,
                "gguf_load both modes", "%s", err_msg())) {
        bool same = g1->n_tensors == g2->n_tensors;
        for (uint64_t t = 0; same && t < g1->n_tensors; t++)
            same = g1->tensors[t].nbytes == g2->tensors[t].nbytes &&
                   !memcmp(g1->tensors[t].data, g2->tensors[t].data, g1->tensors[t].nbytes) &&
                   (const uint8_t *)g2->tensors[t].data >= g2->base &&
                   (const uint8_t *)g2->tensors[t].data + g2->tensors[t].nbytes <= g2->base + g2->size;
        t_check(same, "gguf_load read mode: same tensors as mmap mode", "differ");
    }
    gguf_close(g1);
    gguf_close(g2);
}

int main(void)
{
    open_all_shared();
    read_mode();
    stories_facts();
    malformed();
    return t_done();
}
