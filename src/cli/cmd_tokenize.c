/* sov tokenize: print the token ids of a text (works on vocab-only GGUFs). */
#include "cmd.h"
#include "opt.h"

#include "../base/err.h"
#include "../format/gguf.h"
#include "../tok/vocab.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: sov tokenize -m MODEL -p TEXT [options]\n"
            "  -m, --model FILE     GGUF model (or vocab-only GGUF)\n"
            "  -p, --prompt TEXT    text to tokenize\n"
            "      --no-bos         do not add BOS/EOS even if the vocab asks for them\n"
            "      --no-special     treat special-token text as plain text\n"
            "      --pieces         one line per token: id and its text\n"
            "Prints the ids space-separated on one line.\n");
}

int cmd_tokenize(int argc, char **argv)
{
    const char *path = NULL, *text = NULL;
    bool add_special = true, parse_special = true, pieces = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (!(path = opt_value(argc, argv, &i)))
                return 2;
        } else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) {
            if (!(text = opt_value(argc, argv, &i)))
                return 2;
        } else if (!strcmp(a, "--no-bos")) {
            add_special = false;
        } else if (!strcmp(a, "--no-special")) {
            parse_special = false;
        } else if (!strcmp(a, "--pieces")) {
            pieces = true;
        } else {
            fprintf(stderr, "sov tokenize: unknown option '%s' (see sov tokenize --help)\n", a);
            return 2;
        }
    }
    if (!path || !text) {
        fprintf(stderr, "sov tokenize: -m MODEL and -p TEXT are required\n");
        return 2;
    }
    gguf *g = NULL;
    vocab *v = NULL;
    int32_t *ids = NULL;
    size_t n = 0;
    int ret = 1, rc;
    if ((rc = gguf_open(&g, path)) || (rc = vocab_load(&v, g)) ||
        (rc = vocab_encode(v, text, strlen(text), add_special, parse_special, &ids, &n))) {
        fprintf(stderr, "sov tokenize: %s\n", err_msg());
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        if (pieces) {
            size_t len;
            const char *t = vocab_token_text(v, ids[i], &len);
            printf("%6d '%.*s'\n", ids[i], (int)len, t);
        } else {
            printf(i ? " %d" : "%d", ids[i]);
        }
    }
    if (!pieces)
        printf("\n");
    ret = 0;
done:
    free(ids);
    vocab_free(v);
    gguf_close(g);
    return ret;
}
