#include "console.h"

#include <string.h>

const console_file *console_find(const char *path)
{
    const char *name;
    if (!strcmp(path, "/"))
        name = "index.html";
    else if (!strcmp(path, "/status"))
        name = "status.html";
    else if (!strncmp(path, "/console/", 9))
        name = path + 9;
    else
        return NULL;
    for (int i = 0; i < console_n_files; i++)
        if (!strcmp(console_files[i].name, name))
            return &console_files[i];
    return NULL;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

const char *console_type(const console_file *f)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".svg", "image/svg+xml"},
        {".json", "application/json"},
        {".txt", "text/plain; charset=utf-8"},
    };
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (ends_with(f->name, types[i].ext))
            return types[i].type;
    return "application/octet-stream";
}

bool console_is_page(const console_file *f) { return ends_with(f->name, ".html"); }
