/* pull: downloading a GGUF model into the models folder (`sov pull`).
 *
 * The bytes go to DIR/FILE.part (locked while a pull runs, so two pulls of
 * one file cannot interleave). A .part left by an interrupted pull is
 * resumed: the request asks for `Range: bytes=N-`; a 206 must start at N
 * (Content-Range), a 200 means the server ignores ranges and the file is
 * downloaded again from 0; a 416 whose total equals N means the .part was
 * already complete. The size is checked against Content-Length /
 * Content-Range (and the hub's X-Linked-Size), the sha256 of the whole file
 * against --sha256, else the hub's X-Linked-Etag, else an ETag that is 64
 * hex digits (the hub's LFS files); the file must start with the GGUF magic
 * (checked as soon as 4 bytes arrive) and parse as a GGUF. Only then is it
 * fsync'ed and renamed to DIR/FILE, never over an existing file unless
 * force. A failed check removes the .part; an interrupted transfer keeps it.
 * Redirects are followed (http and https only); HF_TOKEN, when set, is sent
 * as a bearer token to the hub. */
#ifndef SOV_PULL_H
#define SOV_PULL_H

#include <stdbool.h>
#include <stdint.h>

#include "../base/progress.h"
#include "source.h"
#include "store.h"

typedef struct pull_opts {
    const char *dir;    /* models folder (NULL: store_dir()); created if missing */
    const char *name;   /* file name to save as (NULL: the source's); ".gguf" appended when missing */
    const char *sha256; /* expected sha256, 64 hex digits (optionally "sha256:"); NULL: the server's */
    bool force;         /* replace an existing model of that name */
    progress *prog;     /* bar to drive (NULL: none); the caller ends it */
} pull_opts;

typedef struct pull_result {
    char path[STORE_PATH_MAX];  /* the model's final path */
    char file[STORE_NAME_MAX];  /* its file name */
    char url[SOURCE_URL_MAX];   /* what was downloaded (before redirects) */
    uint64_t size;              /* bytes */
    char sha256[65];            /* of the whole file, lower-case hex */
    const char *sha_from;       /* where the expected hash came from ("--sha256", "X-Linked-Etag",
                                   "ETag"), NULL when none was known (not checked) */
    uint64_t resumed_from;      /* bytes of an earlier .part kept (0: none) */
    bool restarted;             /* a .part existed but the server ignored the range */
} pull_result;

/* Downloads src (an hf:// source or an http(s) URL, see source.h) as above;
 * *r (may be NULL) describes the result, partly filled also on failure.
 * Errors (message names the URL or the file): SOV_EINVAL (bad source, name
 * or --sha256; the model exists and !force), SOV_ENOTFOUND (HTTP 404),
 * SOV_EBUSY (another pull holds the .part), SOV_EFORMAT (not a GGUF, size
 * or sha256 mismatch), SOV_EIO (connection, other HTTP statuses, an
 * interrupted transfer, disk full, file system errors), SOV_ENOMEM. */
int pull_model(const char *src, const pull_opts *o, pull_result *r);

/* Whether s is a sha256 in hex (64 digits, either case, "sha256:" prefix
 * allowed); the lower-case digits go to out (65 bytes) when not NULL. */
bool pull_sha256_ok(const char *s, char *out);

#endif
