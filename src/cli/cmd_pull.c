/* sov pull: downloading a GGUF model into the models folder. */
#include "cmd.h"
#include "opt.h"

#include "../base/err.h"
#include "../base/progress.h"
#include "../store/pull.h"
#include "../store/store_meta.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: sov pull SOURCE [--sha256 HEX] [--name FILE] [--dir DIR] [--force] [-q]\n"
            "\n"
            "Downloads a GGUF model into the models folder ($SOV_MODELS, else\n"
            "~/.local/share/sov/models), where -m NAME finds it. SOURCE is\n"
            "  hf://ORG/REPO/FILE.gguf[@REVISION]   a file of a Hugging Face repository\n"
            "                                       (revision default main; the hub is\n"
            "                                       $SOV_HF_ENDPOINT or $HF_ENDPOINT if set;\n"
            "                                       HF_TOKEN is sent for gated repositories)\n"
            "  http://... or https://...            any URL\n"
            "The bytes go to FILE.part first: an interrupted pull resumes where it stopped\n"
            "when run again (HTTP Range). The size, the sha256 and the GGUF header are checked\n"
            "before the file is renamed into place; a failed check removes the download.\n"
            "\n"
            "  --sha256 HEX   the expected sha256 (default: the hub's X-Linked-Etag or an ETag\n"
            "                 that is a sha256; without either the hash is printed, not checked)\n"
            "  --name FILE    save as FILE (.gguf appended when missing) instead of the\n"
            "                 source's file name\n"
            "  --dir DIR      another models folder\n"
            "  --force        replace a model of the same name\n"
            "  -q, --quiet    no progress bar and no notes (errors only; there is no bar\n"
            "                 when stderr is not a terminal)\n"
            "  -h, --help     show this help\n");
}

int cmd_pull(int argc, char **argv)
{
    const char *src = NULL;
    pull_opts o = {0};
    bool quiet = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--sha256")) {
            if (!(o.sha256 = opt_value(argc, argv, &i)))
                return 2;
            if (!pull_sha256_ok(o.sha256, NULL)) {
                fprintf(stderr, "sov pull: --sha256: '%s' is not 64 hex digits\n", o.sha256);
                return 2;
            }
        } else if (!strcmp(a, "--name")) {
            if (!(o.name = opt_value(argc, argv, &i)))
                return 2;
        } else if (!strcmp(a, "--dir")) {
            if (!(o.dir = opt_value(argc, argv, &i)))
                return 2;
        } else if (!strcmp(a, "--force")) {
            o.force = true;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            quiet = true;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "sov pull: unknown option '%s' (see sov pull --help)\n", a);
            return 2;
        } else if (!src) {
            src = a;
        } else {
            fprintf(stderr, "sov pull: one SOURCE at a time ('%s' is a second)\n", a);
            return 2;
        }
    }
    if (!src) {
        usage(stderr);
        return 2;
    }
    if (!quiet)
        o.prog = progress_new(NULL, 0, PROGRESS_BYTES);
    pull_result r;
    int rc = pull_model(src, &o, &r);
    progress_done(o.prog);
    if (rc) {
        fprintf(stderr, "sov pull: %s\n", err_msg());
        return rc == SOV_EINVAL && !r.file[0] ? 2 : 1;
    }
    if (!quiet) {
        if (r.restarted)
            fprintf(stderr, "sov pull: the server did not continue the earlier download: downloaded from the start\n");
        else if (r.resumed_from)
            fprintf(stderr, "sov pull: resumed after %" PRIu64 " bytes\n", r.resumed_from);
        if (r.sha_from)
            fprintf(stderr, "sov pull: %s: %" PRIu64 " bytes, sha256 %s (matches %s)\n", r.path, r.size, r.sha256,
                    r.sha_from);
        else
            fprintf(stderr, "sov pull: %s: %" PRIu64 " bytes, sha256 %s (not checked: no --sha256 and the server "
                    "gave none)\n", r.path, r.size, r.sha256);
    }
    store_item it = {0};
    size_t fl = strlen(r.file);
    snprintf(it.file, sizeof it.file, "%s", r.file);
    snprintf(it.name, sizeof it.name, "%.*s", (int)(fl > 5 ? fl - 5 : fl), r.file);
    snprintf(it.path, sizeof it.path, "%s", r.path);
    it.size = r.size;
    store_meta m;
    char line[1024];
    int w = (int)strlen(it.name) > 4 ? (int)strlen(it.name) : 4;
    if (store_meta_read(r.path, &m)) {
        fprintf(stderr, "sov pull: %s\n", err_msg());
        return 1;
    }
    puts(store_meta_line(line, sizeof line, w, NULL, NULL, NULL));
    puts(store_meta_line(line, sizeof line, w, &it, &m, NULL));
    return fflush(stdout) ? 1 : 0;
}
