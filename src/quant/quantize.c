#include "quantize.h"

#include "../base/err.h"
#include "../format/gguf.h"
#include "../format/gguf_write.h"
#include "dequant.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One requantized tensor: rows of ne0 elements of the input, dequantized by
 * the reference kernel, then quant_rows'd into the writer's buffer. */
typedef struct qtensor {
    const gguf_tensor *src;
    uint32_t out_type;
    int64_t ne0, n_rows;
    uint64_t in_row_bytes;
    dequant_fn dequant;
    pool *pool;
    progress *prog;
    uint64_t out_bytes;
} qtensor;

// out[0..n) = dequant(input row `row`)
static void src_row(void *ctx, int64_t row, float *out, int64_t n)
{
    const qtensor *q = ctx;
    q->dequant((const uint8_t *)q->src->data + (size_t)row * q->in_row_bytes, out, n);
}

static int fill_tensor(void *ctx, void *dst, uint64_t nbytes)
{
    (void)nbytes;
    qtensor *q = ctx;
    int rc = quant_rows(q->pool, q->out_type, q->n_rows, q->ne0, src_row, q, dst);
    progress_add(q->prog, q->out_bytes);
    return rc;
}

/* Number of layers: <arch>.block_count, else 1 + the largest blk.N index. */
static int64_t layer_count(const gguf *g)
{
    gguf_str arch;
    char key[96], arch_s[48];
    int64_t n = 0;
    if (gguf_get_str(g, "general.architecture", &arch) == 0) {
        snprintf(key, sizeof key, "%s.block_count", gguf_str_copy(arch, arch_s, sizeof arch_s));
        if (gguf_get_i64(g, key, &n) == 0 && n > 0)
            return n;
    }
    n = 0;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const gguf_str s = g->tensors[i].name;
        if (s.len > 4 && !memcmp(s.ptr, "blk.", 4)) {
            int64_t v = 0;
            for (uint64_t k = 4; k < s.len && s.ptr[k] >= '0' && s.ptr[k] <= '9' && v < 1000000; k++)
                v = v * 10 + (s.ptr[k] - '0');
            if (v + 1 > n)
                n = v + 1;
        }
    }
    return n;
}

static bool is_float_type(uint32_t t) { return t == SOV_F32 || t == SOV_F16 || t == SOV_BF16; }

int quantize_gguf(const char *in_path, const char *out_path, const quantize_opts *opts, quantize_stats *stats)
{
    gguf *g = NULL;
    gguf_writer *w = NULL;
    qtensor *qt = NULL;
    char *tmp = NULL;
    quantize_stats st;
    memset(&st, 0, sizeof st);
    uint64_t work = 0; /* bytes to requantize (the bar's total) */
    int rc;
    if (!opts || !opts->mix)
        return err_set(SOV_EINVAL, "quantize: no target type");
    const quant_mix *mix = opts->mix;

    if ((rc = gguf_open(&g, in_path)))
        goto fail;
    const int64_t n_layer = layer_count(g);
    if ((rc = gguf_writer_new(&w)) || (rc = gguf_w_copy_all_kv(w, g)) ||
        (rc = gguf_w_set_u32(w, "general.file_type", mix->ftype)))
        goto fail;
    if (is_float_type(mix->base))
        gguf_w_remove(w, "general.quantization_version");
    else if ((rc = gguf_w_set_u32(w, "general.quantization_version", 2)))
        goto fail;

    qt = calloc(g->n_tensors ? g->n_tensors : 1, sizeof *qt);
    if (!qt) {
        rc = err_set(SOV_ENOMEM, "out of memory");
        goto fail;
    }
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const gguf_tensor *t = &g->tensors[i];
        char name[256];
        gguf_str_copy(t->name, name, sizeof name);
        if (t->name.len >= sizeof name) {
            rc = err_set(SOV_EUNSUPPORTED, "tensor name of %" PRIu64 " bytes is too long", t->name.len);
            goto fail;
        }
        if (t->type >= SOV_TYPE_COUNT || !dequant_get(t->type)) {
            rc = err_set(SOV_EUNSUPPORTED, "tensor '%s' has type %s (%u), which sov cannot read", name,
                         ttype_name(t->type), t->type);
            goto fail;
        }
        const int64_t ne0 = t->ne[0], n_el = gguf_tensor_nelements(t);
        /* gguf_open guarantees ne0 is a multiple of the type's block size,
         * so each row is whole blocks and can be dequantized on its own */
        uint32_t want = quant_pick_type(mix, name, t->n_dims, n_layer);
        uint32_t out = quant_fit_type(want, ne0);
        if (out != want) {
            st.n_fallback++;
            if (!opts->quiet)
                fprintf(stderr, "quantize: %s: rows of %" PRId64 " are not a multiple of the %s block (%d), using %s\n",
                        name, ne0, ttype_name(want), ttype_get(want)->blck, ttype_name(out));
        }
        uint64_t out_bytes;
        if ((rc = ttype_nbytes(out, n_el, &out_bytes)))
            goto fail;
        st.count[out]++;
        st.bytes_in += t->nbytes;
        st.bytes_out += out_bytes;
        if (out == t->type) {
            st.n_copied++;
            rc = gguf_w_add_tensor(w, name, out, t->n_dims, t->ne, t->data, t->nbytes);
        } else {
            qtensor *q = &qt[i];
            q->src = t;
            q->out_type = out;
            q->ne0 = ne0;
            q->n_rows = ne0 ? n_el / ne0 : 0;
            q->in_row_bytes = q->n_rows ? t->nbytes / (uint64_t)q->n_rows : 0;
            q->dequant = dequant_get(t->type);
            q->pool = opts->pool;
            q->prog = opts->prog;
            q->out_bytes = out_bytes;
            work += out_bytes;
            rc = gguf_w_add_tensor_fn(w, name, out, t->n_dims, t->ne, out_bytes, fill_tensor, q);
        }
        if (rc)
            goto fail;
    }
    st.n_tensors = g->n_tensors;

    size_t n = strlen(out_path);
    tmp = malloc(n + 5);
    if (!tmp) {
        rc = err_set(SOV_ENOMEM, "out of memory");
        goto fail;
    }
    memcpy(tmp, out_path, n);
    memcpy(tmp + n, ".tmp", 5);
    progress_reset(opts->prog, NULL, 0, work);
    if ((rc = gguf_w_write(w, tmp)))
        goto fail;
    if (rename(tmp, out_path) != 0) {
        rc = err_set(SOV_EIO, "cannot rename '%s' to '%s': %s", tmp, out_path, strerror(errno));
        remove(tmp);
        goto fail;
    }
    if (stats)
        *stats = st;
fail:
    free(tmp);
    free(qt);
    gguf_writer_free(w);
    gguf_close(g);
    return rc;
}
