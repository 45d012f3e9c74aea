#include "source.h"

#include "../base/err.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define HF_DEFAULT "https://huggingface.co"

const char *source_hf_endpoint(char *buf, size_t cap)
{
    const char *e = getenv("SOV_HF_ENDPOINT");
    if (!e || !*e)
        e = getenv("HF_ENDPOINT");
    if (!e || !*e)
        e = HF_DEFAULT;
    snprintf(buf, cap, "%s", e);
    size_t n = strlen(buf);
    while (n && buf[n - 1] == '/')
        buf[--n] = 0;
    return buf;
}

static bool unreserved(unsigned char c) { return isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~'; }

/* Appends s[0..n) percent-encoded to out (len *o of cap); '/' kept when keep_slash. */
static bool put_enc(char *out, size_t cap, size_t *o, const char *s, size_t n, bool keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (unreserved(c) || (keep_slash && c == '/')) {
            if (*o + 1 >= cap)
                return false;
            out[(*o)++] = (char)c;
        } else {
            if (*o + 3 >= cap)
                return false;
            out[(*o)++] = '%';
            out[(*o)++] = hex[c >> 4];
            out[(*o)++] = hex[c & 15];
        }
    }
    out[*o] = 0;
    return true;
}

static bool put(char *out, size_t cap, size_t *o, const char *s)
{
    size_t n = strlen(s);
    if (*o + n >= cap)
        return false;
    memcpy(out + *o, s, n + 1);
    *o += n;
    return true;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* The last segment of a URL path (percent-decoded) into s->file. */
static int file_of_url(const char *url, source *s)
{
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url;
    const char *path = strchr(p, '/');
    size_t end = path ? strcspn(path, "?#") : 0;
    const char *seg = NULL;
    size_t segn = 0;
    if (path) {
        const char *last = path;
        for (size_t i = 0; i < end; i++)
            if (path[i] == '/')
                last = path + i;
        seg = last + 1;
        segn = (size_t)(path + end - seg);
    }
    if (!segn)
        return err_set(SOV_EINVAL, "no file name at the end of the URL %s (give one with --name)", url);
    size_t o = 0;
    for (size_t i = 0; i < segn; i++) {
        int c = (unsigned char)seg[i];
        if (c == '%' && i + 2 < segn && hexval(seg[i + 1]) >= 0 && hexval(seg[i + 2]) >= 0) {
            c = hexval(seg[i + 1]) * 16 + hexval(seg[i + 2]);
            i += 2;
        }
        if (o + 1 >= sizeof s->file)
            return err_set(SOV_EINVAL, "the file name at the end of the URL is too long (give one with --name)");
        s->file[o++] = (char)c;
    }
    s->file[o] = 0;
    return 0;
}

/* hf://ORG/REPO/PATH[@REV] */
static int parse_hf(const char *src, source *s)
{
    char ep[1024], spec[SOURCE_URL_MAX];
    const char *body = src + 5;
    if (strlen(body) >= sizeof spec)
        return err_set(SOV_EINVAL, "%s: too long", src);
    snprintf(spec, sizeof spec, "%s", body);
    const char *rev = "main";
    char *at = strrchr(spec, '@');
    if (at) {
        *at = 0;
        rev = at + 1;
        if (!*rev)
            return err_set(SOV_EINVAL, "%s: empty revision after '@'", src);
    }
    /* ORG/REPO/PATH: at least three segments, none empty, "." or ".." */
    int nseg = 0;
    const char *file = NULL;
    for (char *p = spec;;) {
        char *e = strchr(p, '/');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
            return err_set(SOV_EINVAL, "%s: expected hf://ORG/REPO/FILE.gguf[@REVISION] (empty, '.' or '..' part)",
                           src);
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
                return err_set(SOV_EINVAL, "%s: control character in the path", src);
        nseg++;
        file = p;
        if (!e)
            break;
        p = e + 1;
    }
    if (nseg < 3)
        return err_set(SOV_EINVAL, "%s: expected hf://ORG/REPO/FILE.gguf[@REVISION] (a file in the repository)", src);
    const char *repo_end = strchr(strchr(spec, '/') + 1, '/'); /* end of ORG/REPO */
    source_hf_endpoint(ep, sizeof ep);
    size_t o = 0;
    char *u = s->url;
    size_t cap = sizeof s->url;
    if (!put(u, cap, &o, ep) || !put(u, cap, &o, "/") ||
        !put_enc(u, cap, &o, spec, (size_t)(repo_end - spec), true) || !put(u, cap, &o, "/resolve/") ||
        !put_enc(u, cap, &o, rev, strlen(rev), false) || !put(u, cap, &o, "/") ||
        !put_enc(u, cap, &o, repo_end + 1, strlen(repo_end + 1), true))
        return err_set(SOV_EINVAL, "%s: the URL is too long", src);
    size_t fl = strlen(file);
    if (fl >= sizeof s->file)
        return err_set(SOV_EINVAL, "%s: the file name is too long", src);
    memcpy(s->file, file, fl + 1);
    s->hub = true;
    return 0;
}

int source_parse(const char *src, source *s)
{
    memset(s, 0, sizeof *s);
    if (!src || !*src)
        return err_set(SOV_EINVAL, "nothing to pull");
    if (!strncasecmp(src, "hf://", 5))
        return parse_hf(src, s);
    if (strncasecmp(src, "http://", 7) && strncasecmp(src, "https://", 8))
        return err_set(SOV_EINVAL, "'%s' is not a URL (http://, https:// or hf://ORG/REPO/FILE.gguf)", src);
    for (const char *p = src; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            return err_set(SOV_EINVAL, "the URL has a space or control character: percent-encode it");
    if (strlen(src) >= sizeof s->url)
        return err_set(SOV_EINVAL, "the URL is too long");
    snprintf(s->url, sizeof s->url, "%s", src);
    char ep[1024];
    source_hf_endpoint(ep, sizeof ep);
    size_t el = strlen(ep);
    if (!strncasecmp(src, ep, el) && src[el] == '/') {
        s->hub = true;
        /* ENDPOINT/ORG/REPO/blob/...: the page of the file; its bytes are under resolve/ */
        const char *p = src + el + 1, *q = strchr(p, '/');
        q = q ? strchr(q + 1, '/') : NULL;
        if (q && !strncmp(q, "/blob/", 6)) {
            size_t at = (size_t)(q - src);
            snprintf(s->url + at, sizeof s->url - at, "/resolve/%s", q + 6);
        }
    }
    return file_of_url(s->url, s);
}
