/* sov synth: a llama GGUF with seeded random weights in a real model's shape. */
#include "cmd.h"
#include "opt.h"

#include "../base/err.h"
#include "../base/progress.h"
#include "../base/pool.h"
#include "../quant/synth.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static void usage(FILE *f)
{
    size_t n;
    const synth_shape *s = synth_shapes(&n);
    fprintf(f,
            "usage: sov synth SHAPE -o OUT.gguf [--type TYPE] [--vocab VOCAB.gguf] [--seed N] [-t THREADS]\n"
            "\n"
            "Writes a llama GGUF with random weights (a pure function of the seed, the\n"
            "tensor name and the position: identical bytes for any thread count) in the\n"
            "shape of a real model, quantized while it is written.\n"
            "\n"
            "shapes:\n");
    for (size_t i = 0; i < n; i++)
        fprintf(f, "  %-15s %s\n", s[i].name, s[i].desc);
    fprintf(f,
            "\n"
            "  -o, --output FILE  the GGUF to write (required)\n"
            "  --type TYPE        %s (default f16)\n"
            "  --vocab FILE       copy the tokenizer (every tokenizer.* key) of this GGUF; a\n"
            "                     smaller vocab is padded with control tokens <|synth_pad_N|>,\n"
            "                     a larger one is an error. Default: a built-in byte-level\n"
            "                     SentencePiece vocab (<unk> <s> </s> <0x00>..<0xFF>) padded\n"
            "                     the same way\n"
            "  --seed N           seed (default 0), stored as sov.synth.seed\n"
            "  -t, --threads N    threads (default: number of CPUs)\n"
            "  -q, --quiet        nothing on stderr but errors (a progress bar is drawn only\n"
            "                     when stderr is a terminal)\n"
            "  -h, --help         show this help\n",
            quant_mix_names());
}

int cmd_synth(int argc, char **argv)
{
    const char *shape_name = NULL, *out = NULL, *type = "f16", *vocab = NULL;
    long long seed = 0, threads = 0;
    bool quiet = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            if (!(out = opt_value(argc, argv, &i)))
                return 2;
        } else if (!strcmp(a, "--type")) {
            if (!(type = opt_value(argc, argv, &i)))
                return 2;
        } else if (!strcmp(a, "--vocab")) {
            if (!(vocab = opt_value(argc, argv, &i)))
                return 2;
        } else if (!strcmp(a, "--seed") || !strcmp(a, "-s")) {
            if (!(v = opt_value(argc, argv, &i)) || opt_int(a, v, 0, INT64_MAX, &seed))
                return 2;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            if (!(v = opt_value(argc, argv, &i)) || opt_int(a, v, 1, 512, &threads))
                return 2;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            quiet = true;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "sov synth: unknown option '%s' (see sov synth --help)\n", a);
            return 2;
        } else if (!shape_name) {
            shape_name = a;
        } else {
            fprintf(stderr, "sov synth: too many arguments ('%s')\n", a);
            return 2;
        }
    }
    if (!shape_name || !out) {
        usage(stderr);
        return 2;
    }
    const synth_shape *shape = synth_shape_find(shape_name);
    if (!shape) {
        size_t n;
        const synth_shape *s = synth_shapes(&n);
        fprintf(stderr, "sov synth: unknown shape '%s' (one of", shape_name);
        for (size_t i = 0; i < n; i++)
            fprintf(stderr, " %s", s[i].name);
        fprintf(stderr, ")\n");
        return 2;
    }
    const quant_mix *mix = quant_mix_find(type);
    if (!mix) {
        fprintf(stderr, "sov synth: unknown --type '%s' (one of %s)\n", type, quant_mix_names());
        return 2;
    }
    if (!threads)
        threads = pool_cpu_count();
    pool *pl = NULL;
    if (pool_new(&pl, (int)threads)) {
        fprintf(stderr, "sov synth: %s\n", err_msg());
        return 1;
    }
    synth_opts o = {.mix = mix, .vocab_path = vocab, .seed = (uint64_t)seed, .pool = pl, .quiet = quiet};
    if (!quiet)
        o.prog = progress_new("synthesizing", 0, PROGRESS_BYTES); /* NULL unless stderr is a terminal */
    double t0 = opt_now();
    int rc = synth_write(shape, out, &o);
    double dt = opt_now() - t0;
    progress_done(o.prog);
    pool_free(pl);
    if (rc) {
        fprintf(stderr, "sov synth: %s\n", err_msg());
        return 1;
    }
    if (!quiet) {
        struct stat sb;
        double size = stat(out, &sb) == 0 ? (double)sb.st_size / 1048576.0 : 0.0;
        fprintf(stderr, "sov synth: wrote %s (%.1f MiB) in %.2f s with %lld threads\n", out, size, dt, threads);
    }
    return 0;
}
