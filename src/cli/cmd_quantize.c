/* sov quantize: GGUF -> GGUF in another tensor type or mix. */
#include "cmd.h"
#include "opt.h"

#include "../base/err.h"
#include "../base/progress.h"
#include "../base/pool.h"
#include "../quant/quantize.h"
#include "../format/ttype.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: sov quantize IN.gguf OUT.gguf TYPE [-t THREADS] [--quiet]\n"
            "\n"
            "Rewrites a GGUF model with its weight matrices in TYPE; metadata is copied.\n"
            "TYPE: %s.\n"
            "  single types  every 2-D weight in TYPE; 1-D tensors (norms, biases) stay f32\n"
            "  q4_k_m        q4_k, but q6_k for output.weight and for attn_v.weight and\n"
            "                ffn_down.weight on the \"more bits\" layers i (of n):\n"
            "                i < n/8, i >= 7n/8, or (i - n/8) %% 3 == 2\n"
            "  q5_k_m        the same with q5_k in place of q4_k\n"
            "Rows whose length is not a multiple of the type's block fall back:\n"
            "q4_k -> q5_0, q5_k -> q5_1, q6_k -> q8_0, 32-blocks -> f16 (told on stderr).\n"
            "Any type sov can read is requantized (dequantized first).\n"
            "\n"
            "  -t, --threads N  threads (default: number of CPUs)\n"
            "  -q, --quiet      no per-tensor fallback lines, no summary and no progress bar\n"
            "                   (drawn only when stderr is a terminal)\n"
            "  -h, --help       show this help\n",
            quant_mix_names());
}

static double mib(uint64_t b) { return (double)b / 1048576.0; }

int cmd_quantize(int argc, char **argv)
{
    const char *pos[3] = {NULL, NULL, NULL};
    int n_pos = 0;
    long long threads = 0;
    bool quiet = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            if (!(v = opt_value(argc, argv, &i)) || opt_int(a, v, 1, 512, &threads))
                return 2;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            quiet = true;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "sov quantize: unknown option '%s' (see sov quantize --help)\n", a);
            return 2;
        } else if (n_pos < 3) {
            pos[n_pos++] = a;
        } else {
            fprintf(stderr, "sov quantize: too many arguments ('%s')\n", a);
            return 2;
        }
    }
    if (n_pos != 3) {
        usage(stderr);
        return 2;
    }
    const quant_mix *mix = quant_mix_find(pos[2]);
    if (!mix) {
        fprintf(stderr, "sov quantize: unknown type '%s' (one of %s)\n", pos[2], quant_mix_names());
        return 2;
    }
    if (!threads)
        threads = pool_cpu_count();
    pool *pl = NULL;
    if (pool_new(&pl, (int)threads)) {
        fprintf(stderr, "sov quantize: %s\n", err_msg());
        return 1;
    }
    quantize_opts o = {.mix = mix, .pool = pl, .quiet = quiet};
    quantize_stats st;
    if (!quiet)
        o.prog = progress_new("quantizing", 0, PROGRESS_BYTES); /* NULL unless stderr is a terminal */
    double t0 = opt_now();
    int rc = quantize_gguf(pos[0], pos[1], &o, &st);
    double dt = opt_now() - t0;
    progress_done(o.prog);
    pool_free(pl);
    if (rc) {
        fprintf(stderr, "sov quantize: %s\n", err_msg());
        return 1;
    }
    if (!quiet) {
        fprintf(stderr, "sov quantize: wrote %s (%s): %" PRIu64 " tensors:", pos[1], mix->name, st.n_tensors);
        for (int t = 0; t < SOV_TYPE_COUNT; t++)
            if (st.count[t])
                fprintf(stderr, " %" PRIu64 " %s", st.count[t], ttype_name((uint32_t)t));
        fprintf(stderr, " (%" PRIu64 " copied unchanged, %" PRIu64 " fell back)\n", st.n_copied, st.n_fallback);
        fprintf(stderr, "sov quantize: tensor data %.2f MiB -> %.2f MiB (%.1f%%) in %.2f s with %lld threads\n",
                mib(st.bytes_in), mib(st.bytes_out), st.bytes_in ? 100.0 * (double)st.bytes_out / (double)st.bytes_in : 0.0,
                dt, threads);
    }
    return 0;
}
