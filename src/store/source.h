/* source: what `sov pull` was given, as a download URL and a file name.
 *
 *   hf://ORG/REPO/PATH/FILE.gguf[@REVISION]
 *       -> ENDPOINT/ORG/REPO/resolve/REVISION/PATH/FILE.gguf (REVISION
 *          default "main"), the Hugging Face hub's layout; ENDPOINT is
 *          $SOV_HF_ENDPOINT, else $HF_ENDPOINT (huggingface_hub's), else
 *          https://huggingface.co
 *   http://... or https://...   as given; a hub page URL
 *       (ENDPOINT/ORG/REPO/blob/REV/FILE) becomes its resolve/ URL
 * The file name is the last path segment (percent-decoded; query and
 * fragment dropped). */
#ifndef SOV_SOURCE_H
#define SOV_SOURCE_H

#include <stdbool.h>
#include <stddef.h>

#define SOURCE_URL_MAX 4096

typedef struct source {
    char url[SOURCE_URL_MAX]; /* what is downloaded */
    char file[256];           /* "FILE.gguf": the last path segment */
    bool hub;                 /* an hf:// source or a URL on the hub's endpoint */
} source;

/* The hub endpoint (see above), without a trailing '/'. Returns buf. */
const char *source_hf_endpoint(char *buf, size_t cap);

/* Fills *s from src. Errors: SOV_EINVAL with a message saying what is
 * wrong (not hf:// or http(s)://, hf:// without ORG/REPO/FILE, empty or
 * "."/".." segments, no file name in the URL, too long). */
int source_parse(const char *src, source *s);

#endif
