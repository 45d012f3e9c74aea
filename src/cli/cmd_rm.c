/* sov rm: removing models from the models folder. */
#include "cmd.h"
#include "opt.h"

#include "../base/err.h"
#include "../store/store.h"

#include <stdio.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: sov rm NAME... [--dir DIR]\n"
            "\n"
            "Removes models (NAME as sov ls shows it, or NAME.gguf) from the models folder\n"
            "($SOV_MODELS, else ~/.local/share/sov/models), with the .part of an unfinished\n"
            "download of them. A name that is not there is an error (the others are removed).\n"
            "\n"
            "  --dir DIR   another models folder\n"
            "  -h, --help  show this help\n");
}

int cmd_rm(int argc, char **argv)
{
    const char *dir = NULL, *names[256];
    int n = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--dir")) {
            if (!(dir = opt_value(argc, argv, &i)))
                return 2;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "sov rm: unknown option '%s' (see sov rm --help)\n", a);
            return 2;
        } else if (n < (int)(sizeof names / sizeof names[0])) {
            names[n++] = a;
        } else {
            fprintf(stderr, "sov rm: too many names\n");
            return 2;
        }
    }
    if (!n) {
        usage(stderr);
        return 2;
    }
    char d[STORE_PATH_MAX];
    if (!dir && !(dir = store_dir(d, sizeof d))) {
        fprintf(stderr, "sov rm: %s\n", err_msg());
        return 1;
    }
    int ret = 0;
    for (int i = 0; i < n; i++) {
        int rc = store_remove(dir, names[i]);
        if (rc < 0) {
            fprintf(stderr, "sov rm: %s\n", err_msg());
            ret = 1;
        } else {
            fprintf(stderr, "sov rm: removed %s from %s%s\n", names[i], dir, rc > 1 ? " (and its unfinished download)" : "");
        }
    }
    return ret;
}
