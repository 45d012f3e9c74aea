/* sov ls: the models in the models folder, with size, arch, quant and params. */
#include "cmd.h"
#include "jout.h"
#include "opt.h"

#include "../base/err.h"
#include "../store/store.h"
#include "../store/store_meta.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: sov ls [--json] [--dir DIR]\n"
            "\n"
            "Lists the models of the models folder ($SOV_MODELS, else ~/.local/share/sov/models):\n"
            "name (what -m NAME takes), size, architecture, quantization (general.file_type as\n"
            "llama.cpp names it, else the type of most matrix bytes) and parameters, from each\n"
            "GGUF header. Unfinished downloads (NAME.gguf.part) are listed as partial.\n"
            "\n"
            "  --json      one JSON object: {\"dir\": ..., \"models\": [...]}\n"
            "  --dir DIR   another models folder\n"
            "  -h, --help  show this help\n");
}

static json_t *item_json(const store_item *it, const store_meta *m, const char *why)
{
    json_t *e = json_object();
    jset(e, "name", json_string(it->name));
    jset(e, "file", json_string(it->file));
    jset(e, "path", json_string(it->path));
    jset(e, "size", json_integer((json_int_t)it->size));
    jset(e, "partial", json_boolean(it->partial));
    if (m) {
        jset(e, "arch", json_string(m->arch));
        jset(e, "quant", json_string(m->quant));
        jset(e, "main_type", json_string(m->main_type));
        jset(e, "file_type", m->file_type >= 0 ? json_integer(m->file_type) : json_null());
        jset(e, "params", json_integer((json_int_t)m->params));
        jset(e, "tensors", json_integer((json_int_t)m->n_tensors));
    }
    if (why)
        jset(e, "error", json_string(why));
    return e;
}

int cmd_ls(int argc, char **argv)
{
    const char *dir = NULL;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--json")) {
            json = true;
        } else if (!strcmp(a, "--dir")) {
            if (!(dir = opt_value(argc, argv, &i)))
                return 2;
        } else {
            fprintf(stderr, "sov ls: unknown argument '%s' (see sov ls --help)\n", a);
            return 2;
        }
    }
    char d[STORE_PATH_MAX];
    if (!dir && !(dir = store_dir(d, sizeof d))) {
        fprintf(stderr, "sov ls: %s\n", err_msg());
        return 1;
    }
    store_item *items = NULL;
    size_t n = 0;
    if (store_list(dir, &items, &n)) {
        fprintf(stderr, "sov ls: %s\n", err_msg());
        return 1;
    }
    int w = 4;
    for (size_t i = 0; i < n; i++)
        if ((int)strlen(items[i].name) > w)
            w = (int)strlen(items[i].name);
    json_t *root = json ? json_object() : NULL, *arr = json ? json_array() : NULL;
    if (json) {
        jset(root, "dir", json_string(dir));
        jset(root, "models", arr);
    } else if (!n) {
        printf("no models in %s (sov pull URL downloads one)\n", dir);
    } else {
        char line[1024];
        puts(store_meta_line(line, sizeof line, w, NULL, NULL, NULL));
    }
    for (size_t i = 0; i < n; i++) {
        store_meta m, *mp = NULL;
        char why[512] = "";
        if (!items[i].partial) {
            if (store_meta_read(items[i].path, &m) == 0)
                mp = &m;
            else
                snprintf(why, sizeof why, "%s", err_msg());
        }
        if (json) {
            jpush(arr, item_json(&items[i], mp, *why ? why : NULL));
        } else {
            char line[1024];
            puts(store_meta_line(line, sizeof line, w, &items[i], mp, why));
        }
    }
    free(items);
    int rc = 0;
    if (json) {
        if (json_bad || json_dumpf(root, stdout, JSON_INDENT(2)) || fputc('\n', stdout) == EOF) {
            fprintf(stderr, "sov ls: cannot write the JSON output\n");
            rc = 1;
        }
        json_decref(root);
    }
    if (fflush(stdout) != 0)
        rc = 1;
    return rc;
}
