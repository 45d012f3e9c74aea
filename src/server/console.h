/* console: the web console's static files (src/server/console/), embedded
 * in the binary at build time (scripts/embed.c writes the build's
 * gen/console_files.c), and the lookup of a URL path among them. The pages
 * use only the public API (the /v1 routes and /metrics); http.c serves them without an
 * API key so that a page can load and then ask for the key. */
#ifndef SOV_CONSOLE_H
#define SOV_CONSOLE_H

#include <stdbool.h>
#include <stddef.h>

typedef struct console_file {
    const char *name;            /* base name: "index.html", "chat.js", ... */
    const unsigned char *data;   /* its bytes (a NUL follows them) */
    size_t len;
    const char *etag;            /* strong ETag, quoted: FNV-1a 64 of the bytes */
} console_file;

/* The embedded files, console_n_files of them (generated). */
extern const console_file console_files[];
extern const int console_n_files;

/* The file a GET of URL path serves: "/" the chat page (index.html),
 * "/status" the status page (status.html), "/console/NAME" the embedded
 * file NAME; NULL for any other path. A plain lookup in the table: no
 * path is ever opened, so nothing outside the table can be reached. */
const console_file *console_find(const char *path);

/* The Content-Type of f, from its name's extension (text types in UTF-8;
 * application/octet-stream for an unknown one). */
const char *console_type(const console_file *f);

/* Whether f is an HTML page (served with a Content-Security-Policy). */
bool console_is_page(const console_file *f);

#endif
