#include "synth.h"

#include "../base/err.h"
#include "../format/gguf.h"
#include "../format/gguf_write.h"
#include "../format/ttype.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* GGUF token types (llama.cpp numbering). */
enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_BYTE = 6 };

static const synth_shape shapes[] = {
    {"tinyllama-1.1b", "TinyLlama 1.1B: 2048 wide, 22 layers, 32/4 heads, ffn 5632, vocab 32000",
     2048, 22, 32, 4, 5632, 32000, 2048, 10000.0, 1e-5, false},
    {"llama2-7b", "Llama 2 7B: 4096 wide, 32 layers, 32/32 heads, ffn 11008, vocab 32000",
     4096, 32, 32, 32, 11008, 32000, 4096, 10000.0, 1e-5, false},
    {"llama3-8b", "Llama 3 8B: 4096 wide, 32 layers, 32/8 heads, ffn 14336, vocab 128256",
     4096, 32, 32, 8, 14336, 128256, 8192, 500000.0, 1e-5, false},
    {"tiny", "test shape: 256 wide, 4 layers, 8/4 heads, ffn 768, vocab 32000 (the llama-2 vocab's size)",
     256, 4, 8, 4, 768, 32000, 2048, 10000.0, 1e-5, true},
    {"tiny-pad", "test shape: as tiny with vocab 32064, so a 32000-token vocab gets 64 pad tokens",
     256, 4, 8, 4, 768, 32064, 2048, 10000.0, 1e-5, true},
};

const synth_shape *synth_shapes(size_t *n)
{
    *n = sizeof shapes / sizeof shapes[0];
    return shapes;
}

const synth_shape *synth_shape_find(const char *name)
{
    for (size_t i = 0; name && i < sizeof shapes / sizeof shapes[0]; i++)
        if (!strcmp(shapes[i].name, name))
            return &shapes[i];
    return NULL;
}

/* ---- values ---------------------------------------------------------------- */

/* splitmix64's output function: a bijective 64-bit mixer */
static inline uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* 64-bit FNV-1a of a NUL-terminated string */
static uint64_t hash_name(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ull;
    }
    return h;
}

/* std of the sum of four independent uniform 16-bit integers: sqrt((2^32 - 1) / 3) */
#define IH4_STD 37837.2270f

void synth_row(uint64_t seed, const char *name, int64_t row, float mean, float std, float *out, int64_t n)
{
    const uint64_t key = mix64(seed ^ mix64(hash_name(name)) ^ mix64((uint64_t)row * 0x9e3779b97f4a7c15ull + 1));
    const float scale = std / IH4_STD;
    for (int64_t i = 0; i < n; i++) {
        uint64_t v = mix64(key + (uint64_t)(i + 1) * 0x9e3779b97f4a7c15ull);
        int32_t s = (int32_t)(v & 0xffff) + (int32_t)(v >> 16 & 0xffff) + (int32_t)(v >> 32 & 0xffff) +
                    (int32_t)(v >> 48) - 2 * 65535;
        out[i] = mean + scale * (float)s;
    }
}

/* ---- tensors ------------------------------------------------------------- */

typedef struct stensor {
    char name[64];
    int64_t rows, cols; /* cols = ne0 */
    float mean, std;
    uint32_t type;
    uint64_t seed;
    pool *pool;
    progress *prog;
    uint64_t nbytes;
} stensor;

// out[n] = synth_row(tensor row)
static void gen_row(void *ctx, int64_t row, float *out, int64_t n)
{
    const stensor *t = ctx;
    synth_row(t->seed, t->name, row, t->mean, t->std, out, n);
}

static int fill_tensor(void *ctx, void *dst, uint64_t nbytes)
{
    (void)nbytes;
    stensor *t = ctx;
    int rc = quant_rows(t->pool, t->type, t->rows, t->cols, gen_row, t, dst);
    progress_add(t->prog, t->nbytes);
    return rc;
}

typedef struct sjob {
    gguf_writer *w;
    const quant_mix *mix;
    const synth_shape *s;
    const synth_opts *o;
    stensor *t;
    size_t n, cap;
    uint64_t count[SOV_TYPE_COUNT];
    uint64_t bytes;
} sjob;

/* Adds tensor name: cols x rows (rows 0: a 1-D vector of cols). */
static int add(sjob *j, const char *name, int64_t cols, int64_t rows)
{
    if (j->n == j->cap)
        return err_set(SOV_EINVAL, "internal: synth tensor table full");
    stensor *t = &j->t[j->n++];
    snprintf(t->name, sizeof t->name, "%s", name);
    uint32_t n_dims = rows ? 2 : 1;
    t->rows = rows ? rows : 1;
    t->cols = cols;
    t->mean = rows ? 0.0f : 1.0f;
    t->std = 0.02f;
    t->seed = j->o->seed;
    t->pool = j->o->pool;
    uint32_t want = quant_pick_type(j->mix, name, n_dims, j->s->n_layer);
    t->type = quant_fit_type(want, cols);
    if (t->type != want && !j->o->quiet)
        fprintf(stderr, "synth: %s: rows of %" PRId64 " do not fit %s, using %s\n", name, cols, ttype_name(want),
                ttype_name(t->type));
    uint64_t nbytes;
    int rc = ttype_nbytes(t->type, t->rows * t->cols, &nbytes);
    if (rc)
        return rc;
    j->count[t->type]++;
    j->bytes += nbytes;
    t->prog = j->o->prog;
    t->nbytes = nbytes;
    int64_t ne[2] = {t->cols, t->rows};
    return gguf_w_add_tensor_fn(j->w, t->name, t->type, n_dims, ne, nbytes, fill_tensor, t);
}

/* ---- tokenizer ------------------------------------------------------------- */

/* Sets tokens/scores/types (n_have given entries, padded to n_vocab with
 * control tokens "<|synth_pad_N|>"). have_tok: the given token texts (lens
 * may be NULL for NUL-terminated). */
static int set_token_arrays(gguf_writer *w, int64_t n_vocab, int64_t n_have, const char *const *have_tok,
                            const size_t *have_len, const float *have_score, const int32_t *have_type,
                            bool write_scores, bool write_types)
{
    int rc = 0;
    const char **toks = calloc((size_t)n_vocab, sizeof *toks);
    size_t *lens = calloc((size_t)n_vocab, sizeof *lens);
    float *scores = calloc((size_t)n_vocab, sizeof *scores);
    int32_t *types = calloc((size_t)n_vocab, sizeof *types);
    char *names = NULL;
    const size_t slot = 32;
    if (n_vocab > n_have)
        names = malloc((size_t)(n_vocab - n_have) * slot);
    if (!toks || !lens || !scores || !types || (n_vocab > n_have && !names)) {
        rc = err_set(SOV_ENOMEM, "out of memory for %" PRId64 " tokens", n_vocab);
        goto out;
    }
    for (int64_t i = 0; i < n_vocab; i++) {
        if (i < n_have) {
            toks[i] = have_tok[i];
            lens[i] = have_len ? have_len[i] : strlen(have_tok[i]);
            scores[i] = have_score ? have_score[i] : 0.0f;
            types[i] = have_type ? have_type[i] : TT_NORMAL;
        } else {
            char *p = names + (size_t)(i - n_have) * slot;
            int k = snprintf(p, slot, "<|synth_pad_%" PRId64 "|>", i - n_have);
            toks[i] = p;
            lens[i] = (size_t)k;
            scores[i] = 0.0f;
            types[i] = TT_CONTROL;
        }
    }
    if ((rc = gguf_w_set_arr_str(w, "tokenizer.ggml.tokens", toks, lens, (uint64_t)n_vocab)))
        goto out;
    if (write_scores && (rc = gguf_w_set_arr(w, "tokenizer.ggml.scores", GGUF_FLOAT32, scores, (uint64_t)n_vocab)))
        goto out;
    if (write_types && (rc = gguf_w_set_arr(w, "tokenizer.ggml.token_type", GGUF_INT32, types, (uint64_t)n_vocab)))
        goto out;
out:
    free(toks);
    free(lens);
    free(scores);
    free(types);
    free(names);
    return rc;
}

/* <unk> <s> </s> <0x00>..<0xFF>, SentencePiece-style ("llama") */
static int builtin_vocab(gguf_writer *w, int64_t n_vocab, bool quiet)
{
    enum { N_BASE = 3 + 256 };
    char bytes[256][8];
    const char *toks[N_BASE];
    int32_t types[N_BASE];
    toks[0] = "<unk>";
    toks[1] = "<s>";
    toks[2] = "</s>";
    types[0] = TT_UNKNOWN;
    types[1] = types[2] = TT_CONTROL;
    for (int b = 0; b < 256; b++) {
        snprintf(bytes[b], sizeof bytes[b], "<0x%02X>", b);
        toks[3 + b] = bytes[b];
        types[3 + b] = TT_BYTE;
    }
    if (n_vocab < N_BASE)
        return err_set(SOV_EINVAL, "n_vocab %" PRId64 " is smaller than the built-in vocab (%d tokens)", n_vocab,
                       N_BASE);
    if (!quiet)
        fprintf(stderr, "synth: built-in byte vocab (%d tokens), padded with %" PRId64 " control tokens <|synth_pad_N|>\n",
                N_BASE, n_vocab - N_BASE);
    int rc;
    if ((rc = gguf_w_set_str(w, "tokenizer.ggml.model", "llama")) ||
        (rc = set_token_arrays(w, n_vocab, N_BASE, toks, NULL, NULL, types, true, true)) ||
        (rc = gguf_w_set_u32(w, "tokenizer.ggml.unknown_token_id", 0)) ||
        (rc = gguf_w_set_u32(w, "tokenizer.ggml.bos_token_id", 1)) ||
        (rc = gguf_w_set_u32(w, "tokenizer.ggml.eos_token_id", 2)) ||
        (rc = gguf_w_set_bool(w, "tokenizer.ggml.add_bos_token", true)) ||
        (rc = gguf_w_set_bool(w, "tokenizer.ggml.add_eos_token", false)))
        return rc;
    return 0;
}

/* Every tokenizer.* key of the GGUF at path, token arrays padded to n_vocab. */
static int copy_vocab(gguf_writer *w, const char *path, int64_t n_vocab, bool quiet)
{
    gguf *g = NULL;
    const char **toks = NULL;
    size_t *lens = NULL;
    float *scores = NULL;
    int32_t *types = NULL;
    int rc = gguf_open(&g, path);
    if (rc)
        return rc;
    const gguf_value *tv = gguf_get_arr(g, "tokenizer.ggml.tokens", GGUF_STRING);
    if (!tv) {
        rc = err_set(SOV_ENOTFOUND, "'%s' has no tokenizer.ggml.tokens (array of strings)", path);
        goto out;
    }
    const int64_t n = (int64_t)tv->v.arr.n;
    if (n > n_vocab) {
        rc = err_set(SOV_EINVAL, "the vocab of '%s' has %" PRId64 " tokens, more than the shape's n_vocab %" PRId64,
                     path, n, n_vocab);
        goto out;
    }
    for (uint64_t i = 0; i < g->n_kv; i++) {
        const gguf_str k = g->kv[i].key;
        char key[256];
        if (k.len < 10 || k.len >= sizeof key || memcmp(k.ptr, "tokenizer.", 10) != 0)
            continue;
        gguf_str_copy(k, key, sizeof key);
        if ((rc = gguf_w_set_value(w, key, &g->kv[i].val)))
            goto out;
    }
    if (n < n_vocab) {
        const gguf_value *sv = gguf_get(g, "tokenizer.ggml.scores");
        const gguf_value *yv = gguf_get(g, "tokenizer.ggml.token_type");
        bool has_s = sv && sv->type == GGUF_ARRAY && sv->v.arr.n == (uint64_t)n && gguf_vtype_size(sv->v.arr.type);
        bool has_t = yv && yv->type == GGUF_ARRAY && yv->v.arr.n == (uint64_t)n && gguf_vtype_size(yv->v.arr.type);
        if ((sv && !has_s) || (yv && !has_t)) {
            rc = err_set(SOV_EFORMAT, "'%s': tokenizer.ggml.scores / token_type do not match the %" PRId64 " tokens",
                         path, n);
            goto out;
        }
        toks = calloc((size_t)n + 1, sizeof *toks);
        lens = calloc((size_t)n + 1, sizeof *lens);
        scores = calloc((size_t)n + 1, sizeof *scores);
        types = calloc((size_t)n + 1, sizeof *types);
        if (!toks || !lens || !scores || !types) {
            rc = err_set(SOV_ENOMEM, "out of memory");
            goto out;
        }
        for (int64_t i = 0; i < n; i++) {
            toks[i] = tv->v.arr.strs[i].ptr;
            lens[i] = (size_t)tv->v.arr.strs[i].len;
            scores[i] = has_s ? (float)gguf_arr_f64(sv, (uint64_t)i) : 0.0f;
            types[i] = has_t ? (int32_t)gguf_arr_i64(yv, (uint64_t)i) : TT_NORMAL;
        }
        if ((rc = set_token_arrays(w, n_vocab, n, toks, lens, scores, types, has_s, has_t)))
            goto out;
        if (!quiet)
            fprintf(stderr, "synth: the vocab has %" PRId64 " tokens, n_vocab is %" PRId64
                    ": padded with %" PRId64 " control tokens <|synth_pad_N|>\n", n, n_vocab, n_vocab - n);
    }
out:
    free(toks);
    free(lens);
    free(scores);
    free(types);
    gguf_close(g);
    return rc;
}

/* ---- the file ---------------------------------------------------------------- */

static int add_metadata(gguf_writer *w, const synth_shape *s, const quant_mix *mix, uint64_t seed)
{
    char name[96];
    snprintf(name, sizeof name, "synthetic %s", s->name);
    const int64_t head_dim = s->n_embd / s->n_head;
    int rc;
    if ((rc = gguf_w_set_str(w, "general.architecture", "llama")) || (rc = gguf_w_set_str(w, "general.name", name)) ||
        (rc = gguf_w_set_u32(w, "general.file_type", mix->ftype)) ||
        (rc = gguf_w_set_u32(w, "llama.vocab_size", (uint32_t)s->n_vocab)) ||
        (rc = gguf_w_set_u32(w, "llama.context_length", (uint32_t)s->n_ctx)) ||
        (rc = gguf_w_set_u32(w, "llama.embedding_length", (uint32_t)s->n_embd)) ||
        (rc = gguf_w_set_u32(w, "llama.block_count", (uint32_t)s->n_layer)) ||
        (rc = gguf_w_set_u32(w, "llama.feed_forward_length", (uint32_t)s->n_ff)) ||
        (rc = gguf_w_set_u32(w, "llama.attention.head_count", (uint32_t)s->n_head)) ||
        (rc = gguf_w_set_u32(w, "llama.attention.head_count_kv", (uint32_t)s->n_head_kv)) ||
        (rc = gguf_w_set_f32(w, "llama.attention.layer_norm_rms_epsilon", (float)s->rms_eps)) ||
        (rc = gguf_w_set_f32(w, "llama.rope.freq_base", (float)s->rope_base)) ||
        (rc = gguf_w_set_u32(w, "llama.rope.dimension_count", (uint32_t)head_dim)) ||
        (rc = gguf_w_set_str(w, "sov.synth.shape", s->name)) || (rc = gguf_w_set_u64(w, "sov.synth.seed", seed)))
        return rc;
    if (mix->base != SOV_F32 && mix->base != SOV_F16 && mix->base != SOV_BF16 &&
        (rc = gguf_w_set_u32(w, "general.quantization_version", 2)))
        return rc;
    return 0;
}

int synth_write(const synth_shape *s, const char *out_path, const synth_opts *o)
{
    sjob j;
    memset(&j, 0, sizeof j);
    char *tmp = NULL;
    int rc;
    if (!s || !o)
        return err_set(SOV_EINVAL, "synth: no shape");
    if (s->n_embd <= 0 || s->n_head <= 0 || s->n_head_kv <= 0 || s->n_embd % s->n_head ||
        s->n_head % s->n_head_kv || (s->n_embd / s->n_head) % 2 || s->n_layer <= 0 || s->n_ff <= 0 ||
        s->n_vocab <= 0)
        return err_set(SOV_EINVAL, "synth: shape '%s' is inconsistent", s->name);
    j.mix = o->mix ? o->mix : quant_mix_find("f16");
    j.s = s;
    j.o = o;
    j.cap = 3 + 9 * (size_t)s->n_layer;
    j.t = calloc(j.cap, sizeof *j.t);
    if (!j.t)
        return err_set(SOV_ENOMEM, "out of memory");
    if ((rc = gguf_writer_new(&j.w)) || (rc = add_metadata(j.w, s, j.mix, o->seed)))
        goto fail;
    if ((rc = o->vocab_path ? copy_vocab(j.w, o->vocab_path, s->n_vocab, o->quiet)
                            : builtin_vocab(j.w, s->n_vocab, o->quiet)))
        goto fail;

    const int64_t E = s->n_embd, KV = s->n_head_kv * (s->n_embd / s->n_head);
    if ((rc = add(&j, "token_embd.weight", E, s->n_vocab)))
        goto fail;
    for (int64_t l = 0; l < s->n_layer; l++) {
        static const struct {
            const char *name;
            int kind; /* 0 norm [E], 1 E->E, 2 E->KV, 3 E->FF, 4 FF->E */
        } per_layer[] = {
            {"attn_norm", 0}, {"attn_q", 1}, {"attn_k", 2},   {"attn_v", 2},    {"attn_output", 1},
            {"ffn_norm", 0},  {"ffn_gate", 3}, {"ffn_up", 3}, {"ffn_down", 4},
        };
        for (size_t k = 0; k < sizeof per_layer / sizeof per_layer[0]; k++) {
            char name[64];
            snprintf(name, sizeof name, "blk.%" PRId64 ".%s.weight", l, per_layer[k].name);
            int64_t cols = E, rows = 0;
            switch (per_layer[k].kind) {
            case 0: break;
            case 1: rows = E; break;
            case 2: rows = KV; break;
            case 3: rows = s->n_ff; break;
            default: cols = s->n_ff; rows = E; break;
            }
            if ((rc = add(&j, name, cols, rows)))
                goto fail;
        }
    }
    if ((rc = add(&j, "output_norm.weight", E, 0)) || (rc = add(&j, "output.weight", E, s->n_vocab)))
        goto fail;

    if (!o->quiet) {
        fprintf(stderr, "synth: %s (%s), seed %" PRIu64 ", %s:", s->name, s->desc, o->seed, j.mix->name);
        for (int t = 0; t < SOV_TYPE_COUNT; t++)
            if (j.count[t])
                fprintf(stderr, " %" PRIu64 " %s", j.count[t], ttype_name((uint32_t)t));
        fprintf(stderr, ", %.1f MiB of tensors\n", (double)j.bytes / 1048576.0);
    }
    size_t n = strlen(out_path);
    if (!(tmp = malloc(n + 5))) {
        rc = err_set(SOV_ENOMEM, "out of memory");
        goto fail;
    }
    memcpy(tmp, out_path, n);
    memcpy(tmp + n, ".tmp", 5);
    progress_reset(o->prog, NULL, 0, j.bytes);
    if ((rc = gguf_w_write(j.w, tmp)))
        goto fail;
    if (rename(tmp, out_path) != 0) {
        rc = err_set(SOV_EIO, "cannot rename '%s' to '%s': %s", tmp, out_path, strerror(errno));
        remove(tmp);
        goto fail;
    }
fail:
    free(tmp);
    free(j.t);
    gguf_writer_free(j.w);
    return rc;
}
