/* sov convert: Hugging Face llama checkpoint folder -> GGUF. */
#include "cmd.h"

#include "../base/err.h"
#include "../base/progress.h"
#include "../format/convert.h"
#include "../format/ttype.h"

#include <stdio.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: sov convert HF_DIR OUT.gguf [--outtype f32|f16|bf16] [--quiet]\n"
            "\n"
            "Converts a Hugging Face llama checkpoint folder (config.json, model.safetensors\n"
            "or model.safetensors.index.json + shards, tokenizer.json) to a llama GGUF file.\n"
            "\n"
            "  --outtype T   type of the 2-D weight matrices: f32, f16 (default) or bf16;\n"
            "                norms are always f32\n"
            "  --quiet       no progress lines on stderr (and no progress bar, which is only\n"
            "                drawn when stderr is a terminal)\n"
            "  -h, --help    show this help\n");
}

int cmd_convert(int argc, char **argv)
{
    const char *pos[2] = {NULL, NULL};
    int n_pos = 0;
    convert_opts o = {.outtype = SOV_F16, .quiet = false};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) {
            o.quiet = true;
        } else if (!strcmp(a, "--outtype") || !strncmp(a, "--outtype=", 10)) {
            const char *v = a[9] == '=' ? a + 10 : (i + 1 < argc ? argv[++i] : NULL);
            if (!v) {
                fprintf(stderr, "sov convert: --outtype needs a value\n");
                usage(stderr);
                return 2;
            }
            if (!strcmp(v, "f32")) {
                o.outtype = SOV_F32;
            } else if (!strcmp(v, "f16")) {
                o.outtype = SOV_F16;
            } else if (!strcmp(v, "bf16")) {
                o.outtype = SOV_BF16;
            } else {
                fprintf(stderr, "sov convert: unknown --outtype '%s' (f32, f16 or bf16)\n", v);
                return 2;
            }
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "sov convert: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        } else if (n_pos < 2) {
            pos[n_pos++] = a;
        } else {
            fprintf(stderr, "sov convert: too many arguments ('%s')\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (n_pos != 2) {
        usage(stderr);
        return 2;
    }
    if (!o.quiet)
        o.prog = progress_new("converting", 0, PROGRESS_BYTES); /* NULL unless stderr is a terminal */
    int rc = convert_hf_llama(pos[0], pos[1], &o);
    progress_done(o.prog);
    if (rc) {
        fprintf(stderr, "sov convert: %s\n", err_msg());
        return 1;
    }
    if (!o.quiet)
        fprintf(stderr, "sov convert: wrote %s\n", pos[1]);
    return 0;
}
