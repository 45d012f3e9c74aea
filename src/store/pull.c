#include "pull.h"

#include "../base/err.h"
#include "../format/gguf.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define HASH_CHUNK ((size_t)1 << 20)

/* One download attempt's state, shared with the curl callbacks. */
typedef struct xfer {
    int fd;
    CURL *c;
    EVP_MD_CTX *md;
    progress *prog;
    const char *dir, *part, *file, *url;
    uint64_t offset;        /* bytes in the .part when the request was sent */
    uint64_t pos;           /* bytes in the .part now */
    uint64_t total;         /* expected file size, 0: unknown */
    bool started;           /* the body of the final response has begun */
    bool restarted;         /* the server ignored the range */
    unsigned char magic[4];
    /* headers of the current response (reset at each status line) */
    int64_t clen, cr_start, cr_total;
    bool cr_seen;
    char etag[96];
    /* sticky over redirects: the hub's headers on its first response */
    char linked_etag[96];
    int64_t linked_size;
    /* an error found by a callback (the transfer is then aborted) */
    int err;
    int sys_errno;          /* of a failed write */
    char msg[600];
} xfer;

bool pull_sha256_ok(const char *s, char *out)
{
    if (!s)
        return false;
    if (!strncasecmp(s, "sha256:", 7))
        s += 7;
    if (strlen(s) != 64)
        return false;
    for (int i = 0; i < 64; i++)
        if (!isxdigit((unsigned char)s[i]))
            return false;
    if (out) {
        for (int i = 0; i < 64; i++)
            out[i] = (char)tolower((unsigned char)s[i]);
        out[64] = 0;
    }
    return true;
}

/* An ETag value without W/ and quotes, lower-case, when it is a sha256. */
static bool etag_sha(const char *e, char *out)
{
    while (*e == ' ')
        e++;
    if (!strncmp(e, "W/", 2))
        e += 2;
    char v[96];
    snprintf(v, sizeof v, "%s", e);
    size_t n = strlen(v);
    while (n && (v[n - 1] == ' ' || v[n - 1] == '"'))
        v[--n] = 0;
    const char *p = v;
    while (*p == '"')
        p++;
    return pull_sha256_ok(p, out);
}

static void xfail(xfer *x, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void xfail(xfer *x, int code, const char *fmt, ...)
{
    if (x->err)
        return;
    x->err = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->msg, sizeof x->msg, fmt, ap);
    va_end(ap);
}

/* ---- curl callbacks -------------------------------------------------------- */

static int64_t parse_i64(const char *s, const char **end)
{
    while (*s == ' ')
        s++;
    if (!isdigit((unsigned char)*s))
        return -1;
    int64_t v = 0;
    for (; isdigit((unsigned char)*s); s++) {
        if (v > (INT64_MAX - 9) / 10)
            return -1;
        v = v * 10 + (*s - '0');
    }
    if (end)
        *end = s;
    return v;
}

static size_t on_header(char *data, size_t size, size_t n, void *ud)
{
    xfer *x = ud;
    size_t len = size * n;
    char line[1024];
    size_t k = len < sizeof line - 1 ? len : sizeof line - 1;
    memcpy(line, data, k);
    line[k] = 0;
    while (k && (line[k - 1] == '\r' || line[k - 1] == '\n'))
        line[--k] = 0;
    if (!strncmp(line, "HTTP/", 5)) { /* a new response (a redirect, or the final one) */
        x->clen = -1;
        x->cr_start = x->cr_total = -1;
        x->cr_seen = false;
        x->etag[0] = 0;
        return len;
    }
    char *colon = strchr(line, ':');
    if (!colon)
        return len;
    *colon = 0;
    const char *v = colon + 1;
    while (*v == ' ' || *v == '\t')
        v++;
    if (!strcasecmp(line, "content-length")) {
        x->clen = parse_i64(v, NULL);
    } else if (!strcasecmp(line, "content-range")) {
        /* bytes START-END/TOTAL, or bytes *\/TOTAL (416); TOTAL may be '*' */
        x->cr_seen = true;
        if (strncasecmp(v, "bytes ", 6))
            return len;
        const char *p = v + 6, *e;
        if (*p == '*') {
            e = p + 1;
        } else {
            x->cr_start = parse_i64(p, &e);
            if (x->cr_start < 0 || *e != '-')
                return len;
            if (parse_i64(e + 1, &e) < 0)
                return len;
        }
        if (*e == '/' && e[1] != '*')
            x->cr_total = parse_i64(e + 1, NULL);
    } else if (!strcasecmp(line, "etag")) {
        snprintf(x->etag, sizeof x->etag, "%s", v);
    } else if (!strcasecmp(line, "x-linked-etag")) {
        if (!x->linked_etag[0])
            snprintf(x->linked_etag, sizeof x->linked_etag, "%s", v);
    } else if (!strcasecmp(line, "x-linked-size")) {
        if (x->linked_size < 0)
            x->linked_size = parse_i64(v, NULL);
    }
    return len;
}

/* Hashes the first `bytes` of the .part (what an earlier pull wrote). */
static int hash_existing(xfer *x, uint64_t bytes)
{
    unsigned char *buf = malloc(HASH_CHUNK);
    if (!buf)
        return err_set(SOV_ENOMEM, "out of memory");
    char label[STORE_NAME_MAX + 16];
    snprintf(label, sizeof label, "checking %s.part", x->file);
    progress_reset(x->prog, label, 0, bytes);
    int rc = 0;
    for (uint64_t at = 0; at < bytes;) {
        size_t want = bytes - at < HASH_CHUNK ? (size_t)(bytes - at) : HASH_CHUNK;
        ssize_t got = pread(x->fd, buf, want, (off_t)at);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0) {
            rc = err_set(SOV_EIO, "cannot read %s: %s", x->part, got < 0 ? strerror(errno) : "it shrank");
            break;
        }
        if (at < 4)
            memcpy(x->magic + at, buf, (size_t)got < 4 - at ? (size_t)got : 4 - at);
        EVP_DigestUpdate(x->md, buf, (size_t)got);
        at += (uint64_t)got;
        progress_set(x->prog, at);
    }
    free(buf);
    return rc;
}

/* Free bytes for an unprivileged writer in dir, or UINT64_MAX when unknown. */
static uint64_t free_space(const char *dir)
{
    struct statvfs sv;
    if (statvfs(dir, &sv) != 0)
        return UINT64_MAX;
    return (uint64_t)sv.f_bavail * (uint64_t)sv.f_frsize;
}

/* The final response's body begins: decide whether it continues the .part. */
static bool begin_body(xfer *x)
{
    x->started = true;
    long code = 0;
    curl_easy_getinfo(x->c, CURLINFO_RESPONSE_CODE, &code);
    if (code == 206) {
        if (!x->cr_seen || x->cr_start < 0) {
            xfail(x, SOV_EIO, "%s: a 206 answer without a usable Content-Range", x->url);
            return false;
        }
        if ((uint64_t)x->cr_start != x->offset) {
            xfail(x, SOV_EIO, "%s: asked for the bytes from %" PRIu64 ", the server sent them from %" PRId64, x->url,
                  x->offset, x->cr_start);
            return false;
        }
        x->total = x->cr_total > 0 ? (uint64_t)x->cr_total : 0;
        if (x->offset && hash_existing(x, x->offset)) {
            xfail(x, SOV_EIO, "%s", err_msg());
            return false;
        }
    } else {
        if (x->offset) { /* 200: the server ignores Range; start over */
            if (ftruncate(x->fd, 0) != 0 || lseek(x->fd, 0, SEEK_SET) != 0) {
                xfail(x, SOV_EIO, "cannot truncate %s: %s", x->part, strerror(errno));
                return false;
            }
            x->restarted = true;
            x->offset = x->pos = 0;
        }
        x->total = x->clen > 0 ? (uint64_t)x->clen : 0;
    }
    if (x->linked_size > 0 && x->total && (uint64_t)x->linked_size != x->total) {
        xfail(x, SOV_EFORMAT, "%s: the hub says %" PRId64 " bytes (X-Linked-Size), the download %" PRIu64, x->url,
              x->linked_size, x->total);
        return false;
    }
    if (x->total > x->offset) {
        uint64_t need = x->total - x->offset, have = free_space(x->dir);
        if (have < need) {
            xfail(x, SOV_EIO, "disk full: %s has %" PRIu64 " bytes free, %s needs %" PRIu64 " more", x->dir, have,
                  x->file, need);
            return false;
        }
    }
    progress_reset(x->prog, x->file, x->offset, x->total);
    return true;
}

static size_t on_body(char *data, size_t size, size_t n, void *ud)
{
    xfer *x = ud;
    size_t len = size * n;
    if (!x->started && !begin_body(x))
        return 0;
    if (x->total && x->pos + len > x->total) {
        xfail(x, SOV_EFORMAT, "%s: the server sent more than the %" PRIu64 " bytes it announced", x->url, x->total);
        return 0;
    }
    if (x->pos < 4) {
        size_t k = len < 4 - x->pos ? len : (size_t)(4 - x->pos);
        memcpy(x->magic + x->pos, data, k);
        if (x->pos + k == 4 && memcmp(x->magic, "GGUF", 4)) {
            xfail(x, SOV_EFORMAT, "not a GGUF file: %s (it starts with \"%c%c%c%c\", not \"GGUF\")", x->url,
                  isprint(x->magic[0]) ? x->magic[0] : '?', isprint(x->magic[1]) ? x->magic[1] : '?',
                  isprint(x->magic[2]) ? x->magic[2] : '?', isprint(x->magic[3]) ? x->magic[3] : '?');
            return 0;
        }
    }
    for (size_t done = 0; done < len;) {
        ssize_t w = write(x->fd, data + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            x->sys_errno = w < 0 ? errno : EIO;
            if (x->sys_errno == ENOSPC || x->sys_errno == EDQUOT)
                xfail(x, SOV_EIO, "disk full: %" PRIu64 " bytes written to %s", x->pos, x->dir);
            else
                xfail(x, SOV_EIO, "cannot write %s: %s", x->part, strerror(x->sys_errno));
            return 0;
        }
        EVP_DigestUpdate(x->md, data + done, (size_t)w);
        done += (size_t)w;
        x->pos += (uint64_t)w;
    }
    progress_set(x->prog, x->pos);
    return len;
}

/* ---- the download ---------------------------------------------------------- */

/* The name to save as: opts' or the source's, ".gguf" appended when missing. */
static int final_name(const pull_opts *o, const source *s, char *out, size_t cap)
{
    const char *n = o && o->name ? o->name : s->file;
    size_t len = strlen(n);
    bool ext = len >= 5 && !strcmp(n + len - 5, ".gguf");
    int k = snprintf(out, cap, "%s%s", n, ext ? "" : ".gguf");
    if (k < 0 || (size_t)k >= cap || !store_name_ok(out) || strlen(out) + 5 >= STORE_NAME_MAX)
        return err_set(SOV_EINVAL, "'%s' cannot be a model file name (no '/', not starting with '.', at most %d bytes)%s",
                       n, STORE_NAME_MAX - 12, o && o->name ? "" : ": give one with --name");
    return 0;
}

static void describe_curl(char *buf, size_t cap, CURLcode cc, const char *errbuf)
{
    snprintf(buf, cap, "%s", errbuf && *errbuf ? errbuf : curl_easy_strerror(cc));
}

/* Removes the .part when it holds nothing (a failed first request). */
static void drop_empty(int fd, const char *part)
{
    struct stat st;
    if (fstat(fd, &st) == 0 && st.st_size == 0)
        unlink(part);
}

static int fsync_dir(const char *dir)
{
    int d = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (d < 0)
        return err_set(SOV_EIO, "cannot open folder %s: %s", dir, strerror(errno));
    int rc = fsync(d) == 0 || errno == EINVAL ? 0 : err_set(SOV_EIO, "cannot sync folder %s: %s", dir, strerror(errno));
    close(d);
    return rc;
}

int pull_model(const char *src, const pull_opts *o, pull_result *r)
{
    pull_result local;
    if (!r)
        r = &local;
    memset(r, 0, sizeof *r);
    static const pull_opts none = {0};
    if (!o)
        o = &none;
    source s;
    char dir[STORE_PATH_MAX], want_sha[65] = "";
    char part[STORE_PATH_MAX + 8];
    int rc, fd = -1;
    CURL *c = NULL;
    struct curl_slist *hdrs = NULL;
    EVP_MD_CTX *md = NULL;
    bool remove_part = false;

    if ((rc = source_parse(src, &s)))
        return rc;
    snprintf(r->url, sizeof r->url, "%s", s.url);
    if (o->sha256 && !pull_sha256_ok(o->sha256, want_sha))
        return err_set(SOV_EINVAL, "--sha256 '%s' is not 64 hex digits", o->sha256);
    if ((rc = final_name(o, &s, r->file, sizeof r->file)))
        return rc;
    if (o->dir && *o->dir) {
        if (strlen(o->dir) >= sizeof dir)
            return err_set(SOV_EINVAL, "the folder path is too long");
        snprintf(dir, sizeof dir, "%s", o->dir);
    } else if (!store_dir(dir, sizeof dir)) {
        return SOV_EINVAL;
    }
    if ((size_t)snprintf(r->path, sizeof r->path, "%s/%s", dir, r->file) >= sizeof r->path)
        return err_set(SOV_EINVAL, "the model's path is too long");
    snprintf(part, sizeof part, "%s.part", r->path);
    struct stat st;
    if (!o->force && stat(r->path, &st) == 0)
        return err_set(SOV_EINVAL, "%s already exists in %s (sov rm it first, or --force)", r->file, dir);
    if ((rc = store_mkdir(dir)))
        return rc;

    fd = open(part, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return err_set(SOV_EIO, "cannot open %s: %s", part, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        rc = errno == EWOULDBLOCK ? err_set(SOV_EBUSY, "another sov pull is downloading %s into %s", r->file, dir)
                                  : err_set(SOV_EIO, "cannot lock %s: %s", part, strerror(errno));
        close(fd);
        return rc;
    }
    if (!(md = EVP_MD_CTX_new()) || !(c = curl_easy_init())) {
        rc = err_set(SOV_ENOMEM, "out of memory");
        goto fail;
    }
    const char *tok = getenv("HF_TOKEN");
    if (s.hub && tok && *tok) {
        char h[4096 + 32];
        snprintf(h, sizeof h, "Authorization: Bearer %s", tok);
        if (!(hdrs = curl_slist_append(hdrs, h))) {
            rc = err_set(SOV_ENOMEM, "out of memory");
            goto fail;
        }
    }

    xfer x;
    bool complete = false; /* a 416 said the .part is already the whole file */
    for (int attempt = 0;; attempt++) {
        if (fstat(fd, &st) != 0) {
            rc = err_set(SOV_EIO, "cannot stat %s: %s", part, strerror(errno));
            goto fail;
        }
        memset(&x, 0, sizeof x);
        x.fd = fd;
        x.c = c;
        x.md = md;
        x.prog = o->prog;
        x.dir = dir;
        x.part = part;
        x.file = r->file;
        x.url = s.url;
        x.offset = x.pos = (uint64_t)st.st_size;
        x.clen = x.cr_start = x.cr_total = x.linked_size = -1;
        if (lseek(fd, (off_t)x.offset, SEEK_SET) < 0) {
            rc = err_set(SOV_EIO, "cannot seek in %s: %s", part, strerror(errno));
            goto fail;
        }
        EVP_DigestInit_ex(md, EVP_sha256(), NULL);
        r->resumed_from = x.offset;
        progress_reset(o->prog, r->file, x.offset, 0);

        char errbuf[CURL_ERROR_SIZE] = "", range[32];
        curl_easy_reset(c);
        curl_easy_setopt(c, CURLOPT_URL, s.url);
        curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
        curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L); /* a transfer stalled for a minute fails */
        curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
        curl_easy_setopt(c, CURLOPT_USERAGENT, "sov-pull/1");
        curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
        curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(c, CURLOPT_HEADERDATA, &x);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &x);
        if (hdrs)
            curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
        if (x.offset) {
            snprintf(range, sizeof range, "%" PRIu64 "-", x.offset);
            curl_easy_setopt(c, CURLOPT_RANGE, range);
        }
        CURLcode cc = curl_easy_perform(c);
        long code = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
        r->restarted = r->restarted || x.restarted;
        if (x.restarted)
            r->resumed_from = 0;
        if (x.err) {
            if (x.sys_errno == ENOSPC || x.sys_errno == EDQUOT) { /* the disk filled up while writing */
                char tot[48] = "";
                if (x.total)
                    snprintf(tot, sizeof tot, " of %" PRIu64, x.total);
                rc = err_set(SOV_EIO, "%s%s; removed %s.part to free the space", x.msg, tot, r->file);
                remove_part = true;
                goto fail;
            }
            if (x.err == SOV_EFORMAT) { /* not a GGUF, more bytes than announced, the hub's size */
                rc = err_set(x.err, "%s; removed the download", x.msg);
                remove_part = true;
                goto fail;
            }
            if (x.started && x.cr_start >= 0 && (uint64_t)x.cr_start != x.offset && attempt == 0) {
                if (ftruncate(fd, 0) != 0) { /* a range answer from elsewhere: start over once */
                    rc = err_set(SOV_EIO, "cannot truncate %s: %s", part, strerror(errno));
                    goto fail;
                }
                r->restarted = true;
                continue;
            }
            rc = err_set(x.err, "%s", x.msg); /* e.g. not enough space: a .part with bytes stays for later */
            drop_empty(fd, part);
            goto fail;
        }
        if (cc == CURLE_HTTP_RETURNED_ERROR) {
            if (code == 416 && x.offset) {
                if (x.cr_total >= 0 && (uint64_t)x.cr_total == x.offset) {
                    complete = true; /* the .part is the whole file: verify it */
                    x.total = x.offset;
                    if ((rc = hash_existing(&x, x.offset)))
                        goto fail;
                    break;
                }
                if (attempt == 0) { /* the .part is longer than the file: start over */
                    if (ftruncate(fd, 0) != 0) {
                        rc = err_set(SOV_EIO, "cannot truncate %s: %s", part, strerror(errno));
                        goto fail;
                    }
                    r->restarted = true;
                    continue;
                }
            }
            if (code == 404)
                rc = err_set(SOV_ENOTFOUND, "not found: %s (HTTP 404)", s.url);
            else if (code == 401 || code == 403)
                rc = err_set(SOV_EIO, "HTTP %ld (%s) from %s%s", code, code == 401 ? "unauthorized" : "forbidden",
                             s.url, s.hub && !(tok && *tok) ? ": a gated or private repository needs HF_TOKEN" : "");
            else
                rc = err_set(SOV_EIO, "HTTP %ld from %s", code, s.url);
            drop_empty(fd, part);
            goto fail;
        }
        if (cc != CURLE_OK) {
            char why[CURL_ERROR_SIZE + 64];
            describe_curl(why, sizeof why, cc, errbuf);
            if (x.started && x.pos > x.offset) {
                char tot[48] = "";
                if (x.total)
                    snprintf(tot, sizeof tot, " of %" PRIu64, x.total);
                rc = err_set(SOV_EIO, "download interrupted after %" PRIu64 "%s bytes (%s); %s.part kept: run the same "
                             "command again to resume", x.pos, tot, why, r->file);
            } else {
                rc = err_set(SOV_EIO, "cannot download %s: %s", s.url, why);
            }
            drop_empty(fd, part);
            goto fail;
        }
        if (!x.started && !begin_body(&x)) { /* an empty body */
            rc = err_set(x.err, "%s", x.msg);
            goto fail;
        }
        break;
    }

    /* size */
    if (fstat(fd, &st) != 0) {
        rc = err_set(SOV_EIO, "cannot stat %s: %s", part, strerror(errno));
        goto fail;
    }
    if (!complete && x.total && (uint64_t)st.st_size != x.total) {
        rc = err_set(SOV_EIO, "download interrupted after %" PRIu64 " of %" PRIu64 " bytes; %s.part kept: run the same "
                     "command again to resume", (uint64_t)st.st_size, x.total, r->file);
        goto fail;
    }
    if (x.linked_size >= 0 && (uint64_t)st.st_size != (uint64_t)x.linked_size) {
        rc = err_set(SOV_EFORMAT, "size mismatch: %s has %" PRIu64 " bytes, the hub says %" PRId64 " (X-Linked-Size); "
                     "removed it", r->file, (uint64_t)st.st_size, x.linked_size);
        remove_part = true;
        goto fail;
    }
    r->size = (uint64_t)st.st_size;
    if (fsync(fd) != 0) {
        rc = err_set(SOV_EIO, "cannot sync %s: %s", part, strerror(errno));
        goto fail;
    }

    /* sha256 */
    unsigned char dg[EVP_MAX_MD_SIZE];
    unsigned int dl = 0;
    EVP_DigestFinal_ex(md, dg, &dl);
    for (unsigned i = 0; i < dl && i < 32; i++)
        snprintf(r->sha256 + 2 * i, 3, "%02x", dg[i]);
    char exp[65] = "";
    if (want_sha[0]) {
        memcpy(exp, want_sha, sizeof exp);
        r->sha_from = "--sha256";
    } else if (x.linked_etag[0] && etag_sha(x.linked_etag, exp)) {
        r->sha_from = "X-Linked-Etag";
    } else if (x.etag[0] && etag_sha(x.etag, exp)) {
        r->sha_from = "ETag";
    }
    if (r->sha_from && strcmp(exp, r->sha256)) {
        rc = err_set(SOV_EFORMAT, "sha256 mismatch for %s: the download has %s, %s says %s; removed it", r->file,
                     r->sha256, r->sha_from, exp);
        remove_part = true;
        goto fail;
    }

    /* a GGUF */
    if (r->size < 4 || memcmp(x.magic, "GGUF", 4)) {
        rc = err_set(SOV_EFORMAT, "not a GGUF file: %s (%" PRIu64 " bytes); removed it", s.url, r->size);
        remove_part = true;
        goto fail;
    }
    gguf *g = NULL;
    if ((rc = gguf_open(&g, part))) {
        char m[600];
        snprintf(m, sizeof m, "%s", err_msg());
        rc = err_set(SOV_EFORMAT, "not a valid GGUF file: %s; removed it", m);
        remove_part = true;
        goto fail;
    }
    gguf_close(g);

    /* into place */
    if (o->force) {
        if (rename(part, r->path) != 0) {
            rc = err_set(SOV_EIO, "cannot rename %s to %s: %s", part, r->path, strerror(errno));
            goto fail;
        }
    } else if (renameat2(AT_FDCWD, part, AT_FDCWD, r->path, RENAME_NOREPLACE) != 0) {
        if (errno == EEXIST) {
            rc = err_set(SOV_EINVAL, "%s appeared in %s while downloading (kept %s.part; --force replaces it)",
                         r->file, dir, r->file);
            goto fail;
        }
        if (errno != EINVAL && errno != ENOSYS) {
            rc = err_set(SOV_EIO, "cannot rename %s to %s: %s", part, r->path, strerror(errno));
            goto fail;
        }
        /* a file system without RENAME_NOREPLACE: a hard link does not replace either */
        if (link(part, r->path) != 0) {
            rc = err_set(SOV_EIO, "cannot move %s to %s: %s", part, r->path, strerror(errno));
            goto fail;
        }
        unlink(part);
    }
    rc = fsync_dir(dir);
fail:
    if (remove_part)
        unlink(part);
    if (fd >= 0)
        close(fd);
    curl_slist_free_all(hdrs);
    if (c)
        curl_easy_cleanup(c);
    EVP_MD_CTX_free(md);
    return rc;
}
