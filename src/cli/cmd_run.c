/* sov run: generate text from a GGUF model, streaming to stdout. */
#include "cmd.h"
#include "opt.h"

#include "../base/err.h"
#include "../base/file.h"
#include "../base/pool.h"
#include "../engine/forward.h"
#include "../engine/model.h"
#include "../engine/sample.h"
#include "../grammar/gram.h"
#include "../grammar/schema.h"
#include "../store/store.h"
#include "../tok/vocab.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: sov run -m MODEL [options]\n"
            "  -m, --model FILE       GGUF model, or the NAME of one in the models folder (sov ls)\n"
            "  -p, --prompt TEXT      prompt (default: generate from BOS)\n"
            "  -f, --file FILE        read the prompt from a file\n"
            "  -n, --n-predict N      tokens to generate (default -1: until EOS or the context is full)\n"
            "  -c, --ctx N            context size in tokens (default: min(training context, 4096))\n"
            "  -t, --threads N        threads (default: number of CPUs)\n"
            "  -b, --batch N          prompt tokens evaluated together (default 512)\n"
            "      --kv-type T        KV cache type: f32 (default), f16 or q8_0\n"
            "      --no-mmap          read the weights into huge-page memory (default; faster decode)\n"
            "      --mmap             map the file instead (shares the page cache, starts faster)\n"
            "      --temp T           temperature, 0 = greedy (default 0.8)\n"
            "      --top-k K          top-k (default 40, 0 = off)\n"
            "      --top-p P          top-p (default 0.95, 1 = off)\n"
            "      --min-p P          min-p (default 0.05, 0 = off)\n"
            "      --repeat-penalty R repetition penalty (default 1.0 = off)\n"
            "      --repeat-last-n N  tokens the penalty looks back (default 64)\n"
            "  -s, --seed S           RNG seed (default: random, printed to stderr)\n"
            "      --ignore-eos       keep generating past end-of-sequence tokens\n"
            "      --grammar FILE     constrain the output to a GBNF grammar (llama.cpp's .gbnf\n"
            "                         notation, start rule root); generation ends where it must\n"
            "      --json-schema FILE constrain the output to JSON valid under a JSON Schema (a file,\n"
            "                         or the schema itself when the value starts with '{')\n"
            "      --no-special       treat special-token text in the prompt as plain text\n"
            "      --print-ids        print the token ids of the whole sequence (BOS, prompt,\n"
            "                         generated) on one line instead of the text\n"
            "Generated text goes to stdout; load time and speed go to stderr.\n");
}

typedef struct run_opts {
    const char *model, *prompt, *prompt_file, *grammar, *schema;
    long long n_predict, n_ctx, threads, n_batch;
    int kv_type;
    sample_params sp;
    bool seed_set, ignore_eos, print_ids, parse_special, use_mmap;
} run_opts;

/* The grammar of --grammar FILE or --json-schema FILE|JSON into *out
 * (NULL when neither). Errors: reading, JSON, schema and grammar errors with
 * the file named. */
static int load_grammar(const run_opts *o, gram **out)
{
    *out = NULL;
    if (!o->grammar && !o->schema)
        return 0;
    char *txt = NULL, *gbnf = NULL;
    size_t len = 0;
    json_t *js = NULL;
    int rc;
    const char *what = o->grammar ? o->grammar : o->schema;
    bool inline_schema = o->schema && o->schema[0] == '{';
    if (inline_schema) {
        len = strlen(o->schema);
    } else if ((rc = file_read_all(what, &txt, &len))) {
        goto fail;
    }
    if (o->schema) {
        json_error_t je;
        js = json_loadb(inline_schema ? o->schema : txt, len, 0, &je);
        if (!js) {
            rc = err_set(SOV_EINVAL, "%s: not JSON: %s (line %d, column %d)", inline_schema ? "--json-schema" : what,
                         je.text, je.line, je.column);
            goto fail;
        }
        if ((rc = schema_to_gbnf(js, true, &gbnf)))
            goto fail;
        rc = gram_parse(out, gbnf, strlen(gbnf));
    } else {
        rc = gram_parse(out, txt, len);
    }
    if (rc) {
        char m[512];
        snprintf(m, sizeof m, "%s", err_msg());
        err_set(rc, "%s: %s", o->schema ? "--json-schema (the grammar made from it)" : what, m);
    }
fail:
    json_decref(js);
    free(txt);
    free(gbnf);
    return rc;
}

static int parse(int argc, char **argv, run_opts *o)
{
    o->n_predict = -1;
    o->n_ctx = 0;
    o->threads = pool_cpu_count();
    o->n_batch = 512;
    o->sp = sample_defaults();
    o->parse_special = true;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        long long iv;
        int rc = 0;
#define VAL() do { if (!(v = opt_value(argc, argv, &i))) return 2; } while (0)
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 1;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            VAL(); o->model = v;
        } else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) {
            VAL(); o->prompt = v;
        } else if (!strcmp(a, "-f") || !strcmp(a, "--file")) {
            VAL(); o->prompt_file = v;
        } else if (!strcmp(a, "-n") || !strcmp(a, "--n-predict")) {
            VAL(); rc = opt_int(a, v, -1, INT32_MAX, &o->n_predict);
        } else if (!strcmp(a, "-c") || !strcmp(a, "--ctx") || !strcmp(a, "--ctx-size")) {
            VAL(); rc = opt_int(a, v, 1, 1 << 24, &o->n_ctx);
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            VAL(); rc = opt_int(a, v, 1, 512, &o->threads);
        } else if (!strcmp(a, "-b") || !strcmp(a, "--batch") || !strcmp(a, "--batch-size")) {
            VAL(); rc = opt_int(a, v, 1, 65536, &o->n_batch);
        } else if (!strcmp(a, "--kv-type")) {
            VAL();
            if ((o->kv_type = kv_type_parse(v)) < 0) {
                fprintf(stderr, "sov run: --kv-type: '%s' is not a KV type (f32, f16, q8_0)\n", v);
                return 2;
            }
        } else if (opt_sampling(argc, argv, &i, &o->sp, &rc)) {
            /* --temp --top-k --top-p --min-p --repeat-penalty --repeat-last-n */
        } else if (!strcmp(a, "-s") || !strcmp(a, "--seed")) {
            VAL(); rc = opt_int(a, v, 0, INT64_MAX, &iv); o->sp.seed = (uint64_t)iv; o->seed_set = true;
        } else if (!strcmp(a, "--mmap")) {
            o->use_mmap = true;
        } else if (!strcmp(a, "--no-mmap")) {
            o->use_mmap = false;
        } else if (!strcmp(a, "--ignore-eos")) {
            o->ignore_eos = true;
        } else if (!strcmp(a, "--no-special")) {
            o->parse_special = false;
        } else if (!strcmp(a, "--grammar") || !strcmp(a, "--grammar-file")) {
            VAL(); o->grammar = v;
        } else if (!strcmp(a, "--json-schema") || !strcmp(a, "-j")) {
            VAL(); o->schema = v;
        } else if (!strcmp(a, "--print-ids")) {
            o->print_ids = true;
        } else {
            fprintf(stderr, "sov run: unknown option '%s' (see sov run --help)\n", a);
            return 2;
        }
#undef VAL
        if (rc)
            return rc;
    }
    if (!o->model) {
        fprintf(stderr, "sov run: -m MODEL is required (see sov run --help)\n");
        return 2;
    }
    if (o->grammar && o->schema) {
        fprintf(stderr, "sov run: give either --grammar or --json-schema, not both\n");
        return 2;
    }
    if (o->prompt && o->prompt_file) {
        fprintf(stderr, "sov run: give either -p or -f, not both\n");
        return 2;
    }
    if (!o->seed_set)
        o->sp.seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    return 0;
}

static int emit_piece(const vocab *vb, int32_t prev, int32_t id, char **buf, size_t *cap)
{
    int n = vocab_piece(vb, prev, id, *buf, *cap);
    if (n < 0)
        return n;
    if ((size_t)n > *cap) {
        char *nb = realloc(*buf, (size_t)n);
        if (!nb)
            return err_set(SOV_ENOMEM, "out of memory");
        *buf = nb;
        *cap = (size_t)n;
        n = vocab_piece(vb, prev, id, *buf, *cap);
        if (n < 0)
            return n;
    }
    fwrite(*buf, 1, (size_t)n, stdout);
    fflush(stdout);
    return 0;
}

int cmd_run(int argc, char **argv)
{
    run_opts o = {0};
    int prc = parse(argc, argv, &o);
    if (prc)
        return prc == 1 ? 0 : prc;
    static char mpath[STORE_PATH_MAX]; /* -m NAME: a model of the models folder */
    if (!(o.model = store_resolve(o.model, mpath, sizeof mpath))) {
        fprintf(stderr, "sov run: %s\n", err_msg());
        return 1;
    }

    int ret = 1, rc;
    model *m = NULL;
    pool *pl = NULL;
    forward *fw = NULL;
    sampler *smp = NULL;
    gram *gr = NULL;
    gram_vocab *gv = NULL;
    gram_state *gst = NULL;
    uint8_t *mask = NULL;
    int32_t *seq = NULL, *ptoks = NULL;
    char *ptext = NULL, *piece = NULL;
    size_t piece_cap = 256;
    size_t n_ptoks = 0;

    double t0 = opt_now();
    progress *bar = progress_new(NULL, 0, PROGRESS_BYTES); /* NULL unless stderr is a terminal */
    rc = model_load_progress(&m, o.model, o.use_mmap, bar);
    progress_done(bar);
    if (rc)
        goto fail;
    if (!m->vocab) {
        rc = err_set(SOV_EFORMAT, "%s has no tokenizer metadata", o.model);
        goto fail;
    }
    const vocab *vb = m->vocab;
    int32_t n_ctx = (int32_t)(o.n_ctx ? o.n_ctx : (m->hp.n_ctx_train < 4096 ? m->hp.n_ctx_train : 4096));
    if ((rc = pool_new(&pl, (int)o.threads)) || (rc = forward_new_kv(&fw, m, n_ctx, 1, 0, o.kv_type, pl)) ||
        (rc = forward_set_batch(fw, (int32_t)(o.n_batch < n_ctx ? o.n_batch : n_ctx))))
        goto fail;
    int32_t n_vocab = vocab_n_tokens(vb);
    if ((rc = sample_new(&smp, &o.sp, n_vocab)))
        goto fail;
    if ((rc = load_grammar(&o, &gr)))
        goto fail;
    if (gr) {
        if ((rc = gram_vocab_new(&gv, vb)) || (rc = gram_state_new(&gst, gr)))
            goto fail;
        if (!(mask = malloc((size_t)n_vocab))) {
            rc = err_set(SOV_ENOMEM, "out of memory");
            goto fail;
        }
    }
    double t_load = opt_now() - t0;

    /* prompt tokens: BOS alone when there is no prompt */
    if (o.prompt_file) {
        size_t len;
        if ((rc = file_read_all(o.prompt_file, &ptext, &len)))
            goto fail;
        o.prompt = ptext;
    }
    if (o.prompt) {
        if ((rc = vocab_encode(vb, o.prompt, strlen(o.prompt), true, o.parse_special, &ptoks, &n_ptoks)))
            goto fail;
    }
    if (n_ptoks == 0) {
        int32_t bos = vocab_bos(vb);
        if (bos < 0) {
            rc = err_set(SOV_EFORMAT, "the model has no BOS token; give a prompt with -p");
            goto fail;
        }
        free(ptoks);
        ptoks = malloc(sizeof *ptoks);
        if (!ptoks) {
            rc = err_set(SOV_ENOMEM, "out of memory");
            goto fail;
        }
        ptoks[0] = bos;
        n_ptoks = 1;
    }
    if ((int64_t)n_ptoks >= n_ctx) {
        rc = err_set(SOV_ERANGE, "prompt of %zu tokens does not fit the context of %d (use --ctx)", n_ptoks, n_ctx);
        goto fail;
    }
    int64_t n_gen_max = o.n_predict < 0 ? n_ctx - (int64_t)n_ptoks : o.n_predict;
    seq = malloc(sizeof *seq * ((size_t)n_ctx + 1)); /* generation stops when the context is full */
    piece = malloc(piece_cap);
    if (!seq || !piece) {
        rc = err_set(SOV_ENOMEM, "out of memory");
        goto fail;
    }
    memcpy(seq, ptoks, sizeof *seq * n_ptoks);
    int64_t n_seq = (int64_t)n_ptoks;

    /* prompt: one batch, logits for the last token */
    double t1 = opt_now();
    {
        int32_t *pos = malloc(sizeof *pos * n_ptoks);
        if (!pos) {
            rc = err_set(SOV_ENOMEM, "out of memory");
            goto fail;
        }
        for (size_t i = 0; i < n_ptoks; i++)
            pos[i] = (int32_t)i;
        forward_batch b = {.n = (int32_t)n_ptoks, .token = seq, .pos = pos};
        rc = forward_decode(fw, &b);
        free(pos);
        if (rc)
            goto fail;
    }
    double t_prompt = opt_now() - t1;

    double t2 = opt_now();
    int64_t n_gen = 0;
    bool ctx_full = false;
    while (n_gen < n_gen_max) {
        int32_t tok;
        if (gst) {
            /* only what the grammar allows; it ends the text where it must */
            if (gram_done(gst))
                break;
            int na = gram_mask(gst, gv, seq[n_seq - 1], mask);
            if (na < 0) {
                rc = na;
                goto fail;
            }
            if (na == 0) {
                rc = err_set(SOV_EINVAL, "the grammar allows no token here (the vocabulary cannot continue it)");
                goto fail;
            }
            tok = sample_next_masked(smp, forward_logits(fw, 0), mask, seq, n_seq);
            if ((rc = gram_accept_token(gst, gv, seq[n_seq - 1], tok)))
                goto fail;
        } else {
            tok = sample_next(smp, forward_logits(fw, 0), seq, n_seq);
        }
        seq[n_seq++] = tok;
        n_gen++;
        bool eog = vocab_is_eog(vb, tok);
        if (!o.print_ids && !(eog && !o.ignore_eos))
            if ((rc = emit_piece(vb, seq[n_seq - 2], tok, &piece, &piece_cap)))
                goto fail;
        if (eog && !o.ignore_eos)
            break;
        if (n_seq >= n_ctx) {
            ctx_full = true;
            break;
        }
        if (n_gen == n_gen_max || (gst && gram_done(gst)))
            break;
        int32_t pos = (int32_t)(n_seq - 1);
        forward_batch b = {.n = 1, .token = &seq[n_seq - 1], .pos = &pos};
        if ((rc = forward_decode(fw, &b)))
            goto fail;
    }
    double t_gen = opt_now() - t2;

    if (o.print_ids) {
        for (int64_t i = 0; i < n_seq; i++)
            printf(i ? " %d" : "%d", seq[i]);
        printf("\n");
    }
    fflush(stdout);
    if (ctx_full)
        fprintf(stderr, "sov run: context of %d tokens is full, stopped (use --ctx)\n", n_ctx);
    fprintf(stderr, "load: %.1f ms | prompt: %zu tokens, %.1f ms, %.1f tok/s | generation: %lld tokens, %.1f ms, %.1f tok/s | threads %d | kernels %s | kv %s\n",
            t_load * 1e3, n_ptoks, t_prompt * 1e3, t_prompt > 0 ? n_ptoks / t_prompt : 0.0,
            (long long)n_gen, t_gen * 1e3, t_gen > 0 ? n_gen / t_gen : 0.0, pool_size(pl), forward_kernels(fw),
            kv_type_name(forward_kv_type(fw)));
    if (!o.seed_set && o.sp.temp > 0)
        fprintf(stderr, "seed: %llu\n", (unsigned long long)o.sp.seed);
    ret = 0;
    goto done;
fail:
    fprintf(stderr, "sov run: %s\n", err_msg());
done:
    free(seq);
    free(ptoks);
    free(ptext);
    free(piece);
    sample_free(smp);
    gram_state_free(gst);
    gram_vocab_free(gv);
    gram_free(gr);
    free(mask);
    forward_free(fw);
    pool_free(pl);
    model_free(m);
    return ret;
}
