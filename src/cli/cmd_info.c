/* sov info: describe a GGUF model: architecture, hyper-parameters,
 * tokenizer, tensors by type, and memory for weights + KV cache. */
#include "cmd.h"
#include "opt.h"

#include "../base/err.h"
#include "../base/pool.h"
#include "../format/gguf.h"
#include "../engine/forward.h"
#include "../engine/kv.h"
#include "../engine/model.h"
#include "../format/ttype.h"
#include "../tok/vocab.h"
#include "../store/store.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: sov info MODEL [options]      MODEL: a GGUF file or a NAME from sov ls\n"
            "  -c, --ctx N         context positions: of one sequence, or with -np of all slots together,\n"
            "                      as sov serve (default: min(training context, 4096) per sequence)\n"
            "  -np, --parallel P   memory of sov serve with P slots (and -c, --kv-type, --kv-size,\n"
            "                      --kv-mem, -b as sov serve takes them)\n"
            "      --kv-type T     KV cache type of that configuration: f16 (sov serve's default), q8_0, f32\n"
            "      --kv-size N     KV pool in positions (default: every slot its whole context)\n"
            "      --kv-mem GiB    KV pool as memory\n"
            "  -b, --batch N       tokens per engine step (default 256, as sov serve)\n"
            "      --meta          also list every metadata key (arrays summarized)\n");
}

static double mib(uint64_t b) { return (double)b / 1048576.0; }

static void print_value(const gguf_value *v)
{
    switch (v->type) {
    case GGUF_UINT8: case GGUF_UINT16: case GGUF_UINT32: case GGUF_UINT64:
        printf("%" PRIu64, v->v.u64);
        break;
    case GGUF_INT8: case GGUF_INT16: case GGUF_INT32: case GGUF_INT64:
        printf("%" PRId64, v->v.i64);
        break;
    case GGUF_FLOAT32: case GGUF_FLOAT64: printf("%g", v->v.f64); break;
    case GGUF_BOOL: printf("%s", v->v.b ? "true" : "false"); break;
    case GGUF_STRING: {
        uint64_t n = v->v.str.len > 80 ? 80 : v->v.str.len;
        printf("\"");
        for (uint64_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)v->v.str.ptr[i];
            if (c == '\n') printf("\\n");
            else if (c < 32) printf("\\x%02x", c);
            else putchar(c);
        }
        printf("\"%s", v->v.str.len > 80 ? "..." : "");
        break;
    }
    case GGUF_ARRAY:
        printf("[%s x %" PRIu64 "]", gguf_vtype_name(v->v.arr.type), v->v.arr.n);
        break;
    }
}

/* The memory of `sov serve -np par [-c ctx] --kv-type type [--kv-size N |
 * --kv-mem G] [-b batch]` for model m with `weights` bytes of tensors: the
 * slots and their context, the KV pool in blocks (sized as sched.c sizes
 * it), KV bytes per position against llama.cpp's f16 cache, the forward
 * pass's buffers, the total. */
static void print_config(const model *m, uint64_t weights, long long ctx, long long par, int type,
                         long long kv_size, double kv_mem, long long batch)
{
    const model_hparams *hp = &m->hp;
    int32_t train = hp->n_ctx_train > 0 ? hp->n_ctx_train : 4096;
    long long per = ctx ? ctx / par : (train < 4096 ? train : 4096);
    if (per < 2) {
        printf("serving:        -c %lld over %lld slots leaves %lld positions each: sov serve refuses it\n", ctx, par,
               per);
        return;
    }
    uint64_t blk = kv_bytes_per_block(hp, type), pos = kv_bytes_per_token(hp, type);
    long long n_tile = (per + KV_TILE - 1) / KV_TILE, blocks;
    const char *why;
    if (kv_mem > 0) {
        blocks = (long long)(kv_mem * 1073741824.0 / (double)blk);
        why = "--kv-mem";
    } else if (kv_size) {
        blocks = (kv_size + KV_TILE - 1) / KV_TILE;
        why = "--kv-size";
    } else {
        blocks = par * n_tile;
        why = "every slot its whole context";
    }
    if (blocks < n_tile) {
        printf("serving:        a KV pool of %lld positions cannot hold one context of %lld: sov serve refuses it\n",
               blocks * KV_TILE, per);
        return;
    }
    /* llama.cpp's f16 cache: K and V, 2 bytes each, of every layer's KV heads */
    uint64_t ref = 2ull * (uint64_t)hp->n_layer * (uint64_t)hp->n_head_kv * (uint64_t)hp->head_dim * 2;
    long long nb = batch < par + 16 ? par + 16 : batch; /* as sched.c: every slot's token and prompt room */
    uint64_t kvb = (uint64_t)blocks * blk;
    uint64_t scratch = forward_scratch_bytes(hp, (int32_t)nb, pool_cpu_count(), (int32_t)par);
    char cs[32] = "";
    if (ctx)
        snprintf(cs, sizeof cs, " -c %lld", ctx);
    printf("serving:        sov serve -np %lld%s --kv-type %s: %lld slot%s of up to %lld positions%s\n", par, cs,
           kv_type_name(type), par, par == 1 ? "" : "s", per, ctx && par > 1 ? " (-c is split over the slots)" : "");
    printf("  KV pool:      %lld blocks x %d positions (%s) x %.2f KiB = %.2f MiB: %lld whole contexts\n"
           "                at once, more sequences when shorter (each takes blocks as it grows)\n",
           blocks, KV_TILE, why, (double)blk / 1024, mib(kvb), blocks / n_tile);
    printf("  per position: %.2f KiB %s = %.3fx llama.cpp's f16 cache (2 x %d layers x %d KV heads x %d x 2 bytes"
           " = %.2f KiB)\n",
           (double)pos / 1024, kv_type_name(type), (double)pos / (double)ref, hp->n_layer, hp->n_head_kv,
           hp->head_dim, (double)ref / 1024);
    printf("  compute:      %.2f MiB (%lld-token steps, %d threads, logits of %lld slots)\n", mib(scratch), nb,
           pool_cpu_count(), par);
    printf("  total:        weights %.2f MiB + KV %.2f MiB + compute %.2f MiB = %.2f MiB\n", mib(weights), mib(kvb),
           mib(scratch), mib(weights + kvb + scratch));
}

int cmd_info(int argc, char **argv)
{
    const char *path = NULL;
    long long ctx = 0, par = 0, kv_size = 0, batch = 256;
    double kv_mem = 0;
    int kv_type = -1;
    bool meta = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "-c") || !strcmp(a, "--ctx") || !strcmp(a, "--ctx-size")) {
            if (!(v = opt_value(argc, argv, &i)) || opt_int(a, v, 1, 1 << 24, &ctx))
                return 2;
        } else if (!strcmp(a, "-np") || !strcmp(a, "--parallel")) {
            if (!(v = opt_value(argc, argv, &i)) || opt_int(a, v, 1, 256, &par))
                return 2;
        } else if (!strcmp(a, "--kv-type")) {
            if (!(v = opt_value(argc, argv, &i)))
                return 2;
            if ((kv_type = kv_type_parse(v)) < 0) {
                fprintf(stderr, "sov info: --kv-type: '%s' is not a KV type (f16, q8_0, f32)\n", v);
                return 2;
            }
        } else if (!strcmp(a, "--kv-size")) {
            if (!(v = opt_value(argc, argv, &i)) || opt_int(a, v, 1, 1LL << 31, &kv_size))
                return 2;
        } else if (!strcmp(a, "--kv-mem")) {
            if (!(v = opt_value(argc, argv, &i)) || opt_float(a, v, 0.001, 1 << 20, &kv_mem))
                return 2;
        } else if (!strcmp(a, "-b") || !strcmp(a, "--batch")) {
            if (!(v = opt_value(argc, argv, &i)) || opt_int(a, v, 1, 65536, &batch))
                return 2;
        } else if (!strcmp(a, "--meta")) {
            meta = true;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (!(path = opt_value(argc, argv, &i)))
                return 2;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "sov info: unknown option '%s' (see sov info --help)\n", a);
            return 2;
        } else {
            path = a;
        }
    }
    if (!path) {
        usage(stderr);
        return 2;
    }
    char mpath[STORE_PATH_MAX]; /* a NAME of the models folder */
    if (!(path = store_resolve(path, mpath, sizeof mpath))) {
        fprintf(stderr, "sov info: %s\n", err_msg());
        return 1;
    }
    gguf *g = NULL;
    if (gguf_open(&g, path)) {
        fprintf(stderr, "sov info: %s\n", err_msg());
        return 1;
    }
    printf("file:           %s (%.2f MiB, GGUF v%u, alignment %" PRIu64 ", %" PRIu64 " metadata keys)\n",
           path, mib(g->size), g->version, g->alignment, g->n_kv);
    gguf_str name;
    if (gguf_get_str(g, "general.name", &name) == 0)
        printf("name:           %.*s\n", (int)(name.len > 100 ? 100 : name.len), name.ptr);

    /* tensors by type */
    uint64_t count[SOV_TYPE_COUNT] = {0}, bytes[SOV_TYPE_COUNT] = {0}, total = 0;
    int64_t params = 0;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const gguf_tensor *t = &g->tensors[i];
        count[t->type]++;
        bytes[t->type] += t->nbytes;
        total += t->nbytes;
        params += gguf_tensor_nelements(t);
    }

    model *m = NULL;
    int rc = model_from_gguf(&m, g, false);
    if (rc == 0) {
        const model_hparams *hp = &m->hp;
        printf("architecture:   %s\n", hp->arch);
        printf("hyperparams:    n_vocab %d, n_ctx_train %d, n_embd %d, n_layer %d, n_head %d, n_head_kv %d,\n"
               "                head_dim %d, n_ff %d, rms_eps %g\n",
               hp->n_vocab, hp->n_ctx_train, hp->n_embd, hp->n_layer, hp->n_head, hp->n_head_kv,
               hp->head_dim, hp->n_ff, hp->rms_eps);
        printf("rope:           %s pairs, %d dims, freq_base %g, linear scale %g\n",
               hp->rope_kind == ROPE_NEOX ? "neox (split halves)" : "normal (adjacent)", hp->n_rot,
               hp->rope_base, hp->rope_scale);
        printf("output:         %s\n", m->output == m->tok_embd ? "tied to token_embd" : "separate output.weight");
    } else {
        gguf_str arch;
        if (gguf_get_str(g, "general.architecture", &arch) == 0)
            printf("architecture:   %.*s\n", (int)(arch.len > 40 ? 40 : arch.len), arch.ptr);
        printf("model:          not loadable: %s\n", err_msg());
    }

    vocab *vb = NULL;
    if (m && m->vocab) {
        vb = m->vocab;
    } else if (!m) {
        if (vocab_load(&vb, g) != 0)
            vb = NULL;
    }
    if (vb) {
        printf("tokenizer:      %s (%s), pre-tokenizer %s, %d tokens, bos %d, eos %d, add_bos %s\n",
               vocab_model_name(vb),
               vocab_kind_of(vb) == VOCAB_SPM   ? "SentencePiece"
               : vocab_kind_of(vb) == VOCAB_WPM ? "WordPiece"
                                                : "byte-level BPE",
               vocab_pre_name(vb), vocab_n_tokens(vb), vocab_bos(vb), vocab_eos(vb),
               vocab_add_bos(vb) ? "yes" : "no");
    } else if (!gguf_get(g, "tokenizer.ggml.model")) {
        printf("tokenizer:      none\n");
    } else {
        printf("tokenizer:      not loadable: %s\n", err_msg());
    }

    printf("tensors:        %" PRIu64 " (%.3f M parameters, %.2f MiB)\n", g->n_tensors, params / 1e6, mib(total));
    for (int t = 0; t < SOV_TYPE_COUNT; t++)
        if (count[t])
            printf("  %-6s        %4" PRIu64 " tensors  %10.2f MiB\n", ttype_name((uint32_t)t), count[t], mib(bytes[t]));

    if (m) {
        int64_t n_ctx = ctx ? ctx : (m->hp.n_ctx_train < 4096 ? m->hp.n_ctx_train : 4096);
        uint64_t kvb = model_kv_bytes(&m->hp, n_ctx, 1);
        printf("memory:         weights %.2f MiB + KV cache %.2f MiB (f32, ctx %" PRId64 ") = %.2f MiB\n",
               mib(total), mib(kvb), n_ctx, mib(total + kvb));
        printf("KV by type:     per position");
        for (int t = 0; t < KV_TYPE_COUNT; t++)
            printf("%s %s %.2f KiB", t ? "," : "", kv_type_name(t), (double)kv_bytes_per_token(&m->hp, t) / 1024);
        printf("; ctx %" PRId64 ":", n_ctx);
        for (int t = 0; t < KV_TYPE_COUNT; t++)
            printf("%s %s %.2f MiB", t ? "," : "", kv_type_name(t),
                   mib(kv_bytes_per_token(&m->hp, t) * (uint64_t)n_ctx));
        printf(" (--kv-type of sov run / bench)\n");
        if (par || kv_type >= 0 || kv_size || kv_mem > 0)
            print_config(m, total, ctx, par ? par : 1, kv_type >= 0 ? kv_type : KV_F16, kv_size, kv_mem, batch);
    }

    if (meta) {
        printf("metadata:\n");
        for (uint64_t i = 0; i < g->n_kv; i++) {
            const gguf_kv *kv = &g->kv[i];
            printf("  %-40.*s ", (int)(kv->key.len > 200 ? 200 : kv->key.len), kv->key.ptr);
            print_value(&kv->val);
            printf("\n");
        }
    }
    if (vb && (!m || vb != m->vocab))
        vocab_free(vb);
    model_free(m);
    gguf_close(g);
    return 0;
}
