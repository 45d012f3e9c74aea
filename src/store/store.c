#include "store.h"

#include "../base/err.h"

#include <dirent.h>
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *home_dir(void)
{
    const char *h = getenv("HOME");
    if (h && *h)
        return h;
    struct passwd *pw = getpwuid(getuid());
    return pw && pw->pw_dir && *pw->pw_dir ? pw->pw_dir : NULL;
}

static bool fits(char *buf, size_t cap, const char *a, const char *b)
{
    int k = snprintf(buf, cap, "%s%s", a, b);
    return k >= 0 && (size_t)k < cap;
}

const char *store_dir(char *buf, size_t cap)
{
    if (!buf || !cap) {
        err_set(SOV_EINVAL, "no buffer for the models folder");
        return NULL;
    }
    const char *e = getenv("SOV_MODELS"), *x = getenv("XDG_DATA_HOME"), *h;
    bool ok;
    if (e && *e)
        ok = fits(buf, cap, e, "");
    else if (x && x[0] == '/')
        ok = fits(buf, cap, x, "/sov/models");
    else if ((h = home_dir()))
        ok = fits(buf, cap, h, "/.local/share/sov/models");
    else {
        err_set(SOV_EINVAL, "no models folder: set SOV_MODELS or HOME");
        return NULL;
    }
    if (!ok) {
        err_set(SOV_EINVAL, "the models folder's path is too long");
        return NULL;
    }
    return buf;
}

int store_mkdir(const char *dir)
{
    char p[STORE_PATH_MAX];
    if (!dir || !*dir || !fits(p, sizeof p, dir, ""))
        return err_set(SOV_EIO, "bad folder path");
    for (char *s = p + 1;; s++) {
        char c = *s;
        if (c == '/' || c == 0) {
            *s = 0;
            struct stat st;
            if (mkdir(p, 0755) != 0 && errno != EEXIST)
                return err_set(SOV_EIO, "cannot create folder %s: %s", p, strerror(errno));
            if (stat(p, &st) != 0)
                return err_set(SOV_EIO, "cannot create folder %s: %s", p, strerror(errno));
            if (!S_ISDIR(st.st_mode))
                return err_set(SOV_EIO, "cannot create folder %s: a file of that name exists", p);
            *s = c;
        }
        if (!c)
            break;
    }
    return 0;
}

bool store_name_ok(const char *name)
{
    if (!name || !*name || name[0] == '.')
        return false;
    size_t n = strlen(name);
    if (n > STORE_NAME_MAX - 6)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c < 0x20 || c == 0x7f || c == '/' || c == '\\')
            return false;
    }
    return true;
}

static bool is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static bool ends_with(const char *s, const char *suf)
{
    size_t n = strlen(s), k = strlen(suf);
    return n >= k && !strcmp(s + n - k, suf);
}

/* dir = the given one or the default, into dbuf. */
static const char *folder(const char *dir, char *dbuf, size_t cap)
{
    if (dir && *dir) {
        if (!fits(dbuf, cap, dir, "")) {
            err_set(SOV_EINVAL, "the models folder's path is too long");
            return NULL;
        }
        return dbuf;
    }
    return store_dir(dbuf, cap);
}

int store_find(const char *dir, const char *name, char *buf, size_t cap)
{
    char d[STORE_PATH_MAX];
    if (!store_name_ok(name))
        return err_set(SOV_EINVAL, "'%s' is not a model name (a file name without '/' that does not start with '.')",
                       name ? name : "");
    if (!folder(dir, d, sizeof d))
        return SOV_EINVAL;
    int k = snprintf(buf, cap, "%s/%s", d, name);
    if (k > 0 && (size_t)k < cap && is_file(buf))
        return 0;
    if (!ends_with(name, ".gguf")) {
        k = snprintf(buf, cap, "%s/%s.gguf", d, name);
        if (k > 0 && (size_t)k < cap && is_file(buf))
            return 0;
    }
    return err_set(SOV_ENOTFOUND, "no model %s in %s (sov ls lists them)", name, d);
}

const char *store_resolve(const char *arg, char *buf, size_t cap)
{
    if (!arg) {
        err_set(SOV_EINVAL, "no model given");
        return NULL;
    }
    struct stat st;
    if (strchr(arg, '/') || stat(arg, &st) == 0)
        return arg;
    int rc = store_find(NULL, arg, buf, cap);
    if (rc == 0)
        return buf;
    if (rc == SOV_ENOTFOUND) {
        char d[STORE_PATH_MAX];
        err_set(SOV_ENOTFOUND, "no file '%s' here and no model %s in %s (sov ls lists them)", arg, arg,
                store_dir(d, sizeof d) ? d : "the models folder");
    } else {
        err_set(rc, "no file '%s' here, and %s", arg, err_msg());
    }
    return NULL;
}

static int cmp_item(const void *a, const void *b)
{
    const store_item *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : (int)x->partial - (int)y->partial;
}

int store_list(const char *dir, store_item **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    char d[STORE_PATH_MAX];
    if (!folder(dir, d, sizeof d))
        return SOV_EINVAL;
    DIR *dh = opendir(d);
    if (!dh) {
        if (errno == ENOENT)
            return 0;
        return err_set(SOV_EIO, "cannot read folder %s: %s", d, strerror(errno));
    }
    store_item *v = NULL;
    size_t cnt = 0, capn = 0;
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(dh))) {
        const char *f = e->d_name;
        bool part = ends_with(f, ".gguf.part");
        if (f[0] == '.' || (!part && !ends_with(f, ".gguf")) || strlen(f) >= STORE_NAME_MAX)
            continue;
        char path[STORE_PATH_MAX];
        struct stat st;
        int k = snprintf(path, sizeof path, "%s/%s", d, f);
        if (k < 0 || (size_t)k >= sizeof path || stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (cnt == capn) {
            size_t nc = capn ? capn * 2 : 16;
            store_item *nv = realloc(v, nc * sizeof *nv);
            if (!nv) {
                rc = err_set(SOV_ENOMEM, "out of memory");
                goto fail;
            }
            v = nv;
            capn = nc;
        }
        store_item *it = &v[cnt++];
        memset(it, 0, sizeof *it);
        memcpy(it->file, f, strlen(f) + 1); /* shorter than STORE_NAME_MAX (checked above) */
        snprintf(it->path, sizeof it->path, "%s", path);
        size_t nl = strlen(f) - (part ? 10 : 5);
        memcpy(it->name, f, nl);
        it->name[nl] = 0;
        it->size = (uint64_t)st.st_size;
        it->partial = part;
    }
    closedir(dh);
    if (cnt)
        qsort(v, cnt, sizeof *v, cmp_item);
    *out = v;
    *n = cnt;
    return 0;
fail:
    closedir(dh);
    free(v);
    return rc;
}

int store_remove(const char *dir, const char *name)
{
    char d[STORE_PATH_MAX], base[STORE_NAME_MAX];
    if (!store_name_ok(name))
        return err_set(SOV_EINVAL, "'%s' is not a model name (sov ls lists them)", name ? name : "");
    if (!folder(dir, d, sizeof d))
        return SOV_EINVAL;
    snprintf(base, sizeof base, "%s", name);
    if (ends_with(base, ".gguf"))
        base[strlen(base) - 5] = 0;
    static const char *const sufs[] = {".gguf", ".gguf.part"};
    int removed = 0;
    for (size_t i = 0; i < sizeof sufs / sizeof sufs[0]; i++) {
        char p[STORE_PATH_MAX];
        int k = snprintf(p, sizeof p, "%s/%s%s", d, base, sufs[i]);
        if (k < 0 || (size_t)k >= sizeof p || !is_file(p))
            continue;
        if (unlink(p) != 0)
            return err_set(SOV_EIO, "cannot remove %s: %s", p, strerror(errno));
        removed++;
    }
    if (!removed)
        return err_set(SOV_ENOTFOUND, "no model %s in %s (sov ls lists them)", name, d);
    return removed;
}
