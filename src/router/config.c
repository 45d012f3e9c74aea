/* config: reading and validating the router's INI file (see config.h).
 *
 * libinih splits the lines into key = value pairs (it strips whitespace and
 * ';' comments); everything else is ours. The reader that feeds inih its
 * lines counts them, strips leading whitespace (so an indented line is never
 * taken as an inih continuation line), refuses lines longer than inih's
 * buffer instead of letting them be split, and reads the [section] headers
 * itself: inih truncates section names at 50 bytes and does not report
 * headers of empty sections, and we need the header lines.
 *
 * Phases: (1) collect: sections and their raw key = value strings, with
 * line numbers; syntax, unknown sections / keys and duplicates are reported
 * here. (2) each section's values are parsed and checked (GGUF files opened,
 * URLs parsed, environment variables read). (3) only when all that is
 * clean: checks across sections (local-only aliases, duplicate secrets),
 * (4) then the file as a whole (no models, no backends). Of all the errors
 * found, the one on the earliest line is reported. */
#include "config.h"

#include "../base/err.h"
#include "../base/iniline.h"
#include "../engine/kv.h"
#include "../format/gguf.h"
#include "../server/chat.h"
#include "../store/store.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

/* ---- key tables ---------------------------------------------------------- */

enum { S_NONE, S_BAD, S_SERVER, S_BACKEND, S_MODEL, S_KEY };

enum {
    SV_HOST, SV_PORT, SV_API_KEY_ENV, SV_BUDGET, SV_AUDIT, SV_LOG_PROMPTS,
    SV_BRK_FAIL, SV_BRK_COOL, SV_HEALTH_INT, SV_MAX_BODY, SV_N
};
static const char *const server_keys[SV_N] = {
    "host", "port", "api_key_env", "memory_budget", "audit_log", "log_prompts",
    "breaker_failures", "breaker_cooldown", "health_interval", "max_body",
};

enum {
    BK_TYPE, BK_MODEL, BK_CTX, BK_PARALLEL, BK_THREADS, BK_BATCH, BK_QUEUE, BK_KV_TYPE,
    BK_KV_SIZE, BK_KV_MEM, BK_CHAT, BK_MMAP, BK_PREFIX, BK_PRELOAD, BK_KEEP, BK_URL,
    BK_API_KEY_ENV, BK_CONNECT, BK_FIRST_BYTE, BK_IDLE, BK_MAX_CONC, BK_HEALTH, BK_LOCATION, BK_N
};
/* which backend type each key is for (0: every type) */
static const struct {
    const char *name;
    int type;
} backend_keys[BK_N] = {
    {"type", 0},
    {"model", CFG_LOCAL},        {"ctx_size", CFG_LOCAL},     {"parallel", CFG_LOCAL},
    {"threads", CFG_LOCAL},      {"batch", CFG_LOCAL},        {"queue", CFG_LOCAL},
    {"kv_type", CFG_LOCAL},      {"kv_size", CFG_LOCAL},      {"kv_mem", CFG_LOCAL},
    {"chat_template", CFG_LOCAL},{"mmap", CFG_LOCAL},         {"prefix_cache", CFG_LOCAL},
    {"preload", CFG_LOCAL},      {"keep_alive", CFG_LOCAL},
    {"url", CFG_OPENAI},         {"api_key_env", CFG_OPENAI}, {"connect_timeout", CFG_OPENAI},
    {"first_byte_timeout", CFG_OPENAI}, {"idle_timeout", CFG_OPENAI},
    {"max_concurrent", CFG_OPENAI}, {"health", CFG_OPENAI},   {"location", CFG_OPENAI},
};

enum { AL_BACKENDS, AL_PRIVACY, AL_BALANCE, AL_AFFINITY, AL_OQUEUE, AL_OWAIT, AL_REMOTE, AL_N };
static const char *const alias_keys[AL_N] = {
    "backends", "privacy", "balance", "affinity", "overflow_queue", "overflow_wait", "remote_model",
};

enum { KY_KEY_ENV, KY_KEY, KY_PRIVACY, KY_N };
static const char *const key_keys[KY_N] = {"key_env", "key", "privacy"};

#define MAX_KEYS BK_N

static const char *key_name(int kind, int k)
{
    switch (kind) {
    case S_SERVER: return server_keys[k];
    case S_BACKEND: return backend_keys[k].name;
    case S_MODEL: return alias_keys[k];
    case S_KEY: return key_keys[k];
    default: return "?";
    }
}

static int key_find(int kind, const char *name)
{
    int n = kind == S_SERVER ? SV_N : kind == S_BACKEND ? BK_N : kind == S_MODEL ? AL_N : kind == S_KEY ? KY_N : 0;
    for (int k = 0; k < n; k++)
        if (!strcmp(key_name(kind, k), name))
            return k;
    return -1;
}

/* ---- parser state ---------------------------------------------------------- */

typedef struct section {
    int kind;               /* S_* */
    int idx;                /* index into the cfg array of its kind */
    int line;               /* of the [header] */
    char label[140];        /* "backend.x", for messages */
    char *val[MAX_KEYS];    /* raw values (NULL: not given) */
    int vline[MAX_KEYS];
} section;

typedef struct parser {
    cfg *c;
    const char *path;       /* as given, for messages */
    char *dir;              /* its directory, for relative paths (NULL: the current one) */
    const char *data;
    size_t len, pos;
    int line;               /* of the line last handed to inih */
    bool stop;              /* the reader hit something fatal */
    section *secs;
    int n_secs;
    int server_sec;         /* index of [server] in secs, or -1 */
    int err;                /* first error's code (0: none yet) */
    int err_rank;           /* its line (INT_MAX: no line) */
    char msg[512];
} parser;

static void vfail(parser *p, int code, int line, const section *s, const char *key, const char *fmt, va_list ap)
{
    int rank = line > 0 ? line : INT_MAX;
    if (p->err == SOV_ENOMEM || (p->err && rank >= p->err_rank && code != SOV_ENOMEM))
        return;
    char what[384];
    vsnprintf(what, sizeof what, fmt, ap);
    ini_line_msg(p->msg, sizeof p->msg, p->path, line, "%s%s%s%s%s%s", s ? "[" : "", s ? s->label : "",
                 s ? "] " : "", key ? key : "", key ? ": " : "", what);
    p->err = code;
    p->err_rank = rank;
}

__attribute__((format(printf, 6, 7)))
static void fail(parser *p, int code, int line, const section *s, const char *key, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(p, code, line, s, key, fmt, ap);
    va_end(ap);
}

/* An error about key k of section s, at its line. */
__attribute__((format(printf, 4, 5)))
static void kfail(parser *p, const section *s, int k, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(p, SOV_EINVAL, s->vline[k], s, key_name(s->kind, k), fmt, ap);
    va_end(ap);
}

static void oom(parser *p) { fail(p, SOV_ENOMEM, 0, NULL, NULL, "out of memory"); }

static char *sdup(parser *p, const char *s)
{
    size_t n = strlen(s);
    char *d = malloc(n + 1);
    if (!d) {
        oom(p);
        return NULL;
    }
    memcpy(d, s, n + 1);
    return d;
}

/* ---- collecting ------------------------------------------------------------ */

/* libinih's scan for a separator: stops at one of chars or at an inline
 * ';' comment (a ';' after whitespace), as inih does. */
static const char *find_chars_or_comment(const char *s, const char *chars)
{
    bool was_space = false;
    while (*s && (!chars || !strchr(chars, *s)) && !(was_space && *s == ';')) {
        was_space = isspace((unsigned char)*s);
        s++;
    }
    return s;
}

static bool name_ok(const char *s, size_t max, bool alias)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr("._-", *s) && !(alias && (*s == ':' || *s == '/')))
            return false;
    return true;
}

static void *grow(parser *p, void *arr, int n, size_t elem)
{
    void *a = realloc(arr, (size_t)(n + 1) * elem);
    if (!a) {
        oom(p);
        return NULL;
    }
    memset((char *)a + (size_t)n * elem, 0, elem);
    return a;
}

static void backend_defaults(cfg_backend *b)
{
    b->n_slots = 4;
    b->n_batch = 256;
    b->queue = 64;
    b->kv_type = KV_F16;
    b->keep_alive_s = 300;
    b->connect_timeout_s = 5;
    b->first_byte_timeout_s = 300;
    b->idle_timeout_s = 60;
    b->max_concurrent = 64;
}

/* A [section] header line (s: trimmed on the left, NUL-terminated). Every
 * header opens a new section entry; one in error becomes S_BAD, whose keys
 * are ignored. */
static void section_header(parser *p, char *s)
{
    section *secs = grow(p, p->secs, p->n_secs, sizeof *secs);
    if (!secs)
        return;
    p->secs = secs;
    section *sec = &secs[p->n_secs++];
    sec->kind = S_BAD;
    sec->line = p->line;
    sec->idx = -1;
    const char *end = find_chars_or_comment(s + 1, "]");
    if (*end != ']') {
        fail(p, SOV_EFORMAT, p->line, NULL, NULL, "section header without ']'");
        return;
    }
    const char *rest = end + 1;
    while (isspace((unsigned char)*rest))
        rest++;
    if (*rest && *rest != ';' && *rest != '#') {
        fail(p, SOV_EFORMAT, p->line, NULL, NULL, "unexpected text after the section header");
        return;
    }
    const char *b = s + 1;
    while (b < end && isspace((unsigned char)*b))
        b++;
    const char *e = end;
    while (e > b && isspace((unsigned char)e[-1]))
        e--;
    size_t n = (size_t)(e - b);
    if (n >= sizeof sec->label) {
        fail(p, SOV_EINVAL, p->line, NULL, NULL, "section name too long: [%.60s...]", b);
        return;
    }
    memcpy(sec->label, b, n);
    sec->label[n] = 0;
    cfg *c = p->c;
    const char *nm;
    if (!strcmp(sec->label, "server")) {
        if (p->server_sec >= 0) {
            fail(p, SOV_EINVAL, p->line, sec, NULL, "duplicate section (first at line %d)", p->secs[p->server_sec].line);
            return;
        }
        p->server_sec = p->n_secs - 1;
        sec->kind = S_SERVER;
    } else if (!strncmp(sec->label, "backend.", 8)) {
        nm = sec->label + 8;
        if (!name_ok(nm, sizeof c->backends[0].name - 1, false)) {
            fail(p, SOV_EINVAL, p->line, sec, NULL, "bad backend name (1 to 63 of A-Z a-z 0-9 . _ -)");
            return;
        }
        int i = cfg_backend_find(c, nm);
        if (i >= 0) {
            fail(p, SOV_EINVAL, p->line, sec, NULL, "duplicate backend %s (first at line %d)", nm, c->backends[i].line);
            return;
        }
        cfg_backend *bs = grow(p, c->backends, c->n_backends, sizeof *bs);
        if (!bs)
            return;
        c->backends = bs;
        cfg_backend *bk = &bs[c->n_backends];
        snprintf(bk->name, sizeof bk->name, "%s", nm);
        bk->line = p->line;
        backend_defaults(bk);
        sec->kind = S_BACKEND;
        sec->idx = c->n_backends++;
    } else if (!strncmp(sec->label, "model.", 6)) {
        nm = sec->label + 6;
        if (!name_ok(nm, sizeof c->aliases[0].name - 1, true)) {
            fail(p, SOV_EINVAL, p->line, sec, NULL, "bad model alias (1 to 127 of A-Z a-z 0-9 . _ - : /)");
            return;
        }
        int i = cfg_alias_find(c, nm);
        if (i >= 0) {
            fail(p, SOV_EINVAL, p->line, sec, NULL, "duplicate model alias %s (first at line %d)", nm, c->aliases[i].line);
            return;
        }
        cfg_alias *as = grow(p, c->aliases, c->n_aliases, sizeof *as);
        if (!as)
            return;
        c->aliases = as;
        cfg_alias *a = &as[c->n_aliases];
        snprintf(a->name, sizeof a->name, "%s", nm);
        a->line = p->line;
        a->overflow_queue = -1;
        a->overflow_wait_s = -1;
        sec->kind = S_MODEL;
        sec->idx = c->n_aliases++;
    } else if (!strncmp(sec->label, "key.", 4)) {
        nm = sec->label + 4;
        if (!name_ok(nm, sizeof c->keys[0].name - 1, false)) {
            fail(p, SOV_EINVAL, p->line, sec, NULL, "bad key name (1 to 63 of A-Z a-z 0-9 . _ -)");
            return;
        }
        for (int i = 0; i < c->n_keys; i++)
            if (!strcmp(c->keys[i].name, nm)) {
                fail(p, SOV_EINVAL, p->line, sec, NULL, "duplicate key %s (first at line %d)", nm, c->keys[i].line);
                return;
            }
        cfg_key *ks = grow(p, c->keys, c->n_keys, sizeof *ks);
        if (!ks)
            return;
        c->keys = ks;
        cfg_key *k = &ks[c->n_keys];
        snprintf(k->name, sizeof k->name, "%s", nm);
        k->line = p->line;
        sec->kind = S_KEY;
        sec->idx = c->n_keys++;
    } else {
        fail(p, SOV_EINVAL, p->line, sec, NULL,
             "unknown section (expected [server], [backend.NAME], [model.ALIAS] or [key.NAME])");
    }
}

/* inih's line reader: one line of the file per call. */
static char *reader(char *str, int num, void *stream)
{
    parser *p = stream;
    if (p->stop)
        return NULL;
    int r = ini_line_next(p->data, p->len, &p->pos, &p->line, str, num);
    if (r == INI_LINE_END)
        return NULL;
    if (r != INI_LINE_OK) {
        if (r == INI_LINE_NUL)
            fail(p, SOV_EFORMAT, p->line, NULL, NULL, "NUL byte in the line");
        else
            fail(p, SOV_EFORMAT, p->line, NULL, NULL, "line longer than %d characters", num - 3);
        p->stop = true;
        return NULL;
    }
    size_t n = strlen(str);
    if (*str == '[') {
        section_header(p, str);
    } else if (*str && *str != ';' && *str != '#') {
        const char *e = find_chars_or_comment(str, "=:");
        if (*e != '=' && *e != ':')
            fail(p, SOV_EFORMAT, p->line, NULL, NULL, "expected [section] or key = value");
    }
    ini_line_finish(str, n);
    return str;
}

static int handler(void *user, const char *section_name, const char *name, const char *value)
{
    (void)section_name; /* truncated by inih; the reader keeps the real one */
    parser *p = user;
    if (p->stop)
        return 1;
    if (p->n_secs == 0) {
        fail(p, SOV_EINVAL, p->line, NULL, name, "key outside any [section]");
        return 1;
    }
    section *s = &p->secs[p->n_secs - 1];
    if (s->kind == S_BAD)
        return 1;
    int k = key_find(s->kind, name);
    if (k < 0) {
        fail(p, SOV_EINVAL, p->line, s, name, "unknown key");
        return 1;
    }
    if (s->val[k]) {
        fail(p, SOV_EINVAL, p->line, s, name, "duplicate key (first at line %d)", s->vline[k]);
        return 1;
    }
    if (!(s->val[k] = sdup(p, value ? value : "")))
        return 1;
    s->vline[k] = p->line;
    return 1;
}

/* ---- value parsers ------------------------------------------------------- */

/* digits [. digits] (at least one digit); *end past it. No sign, no
 * exponent, no hex, locale-independent. */
static int parse_number(const char *s, const char **end, uint64_t *ip, double *frac)
{
    uint64_t v = 0;
    int digits = 0;
    for (; isdigit((unsigned char)*s); s++, digits++) {
        if (v > (UINT64_MAX - 9) / 10)
            return -1;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    double f = 0, scale = 0.1;
    if (*s == '.')
        for (s++; isdigit((unsigned char)*s); s++, digits++, scale /= 10)
            f += (*s - '0') * scale;
    if (!digits)
        return -1;
    *end = s;
    *ip = v;
    *frac = f;
    return 0;
}

int cfg_parse_size(const char *s, int64_t *out)
{
    if (!s)
        return -1;
    const char *e;
    uint64_t ip;
    double frac;
    if (parse_number(s, &e, &ip, &frac))
        return -1;
    while (*e == ' ')
        e++;
    int shift = 0;
    switch (toupper((unsigned char)*e)) {
    case 'K': shift = 10; break;
    case 'M': shift = 20; break;
    case 'G': shift = 30; break;
    case 'T': shift = 40; break;
    default: break;
    }
    if (shift) {
        e++;
        if (!strcasecmp(e, "iB") || !strcasecmp(e, "B")) /* KiB, KB: all 1024-based */
            e += strlen(e);
    } else if (!strcasecmp(e, "B")) {
        e++;
    }
    if (*e)
        return -1;
    uint64_t mult = (uint64_t)1 << shift;
    if (ip > (uint64_t)INT64_MAX / mult)
        return -1;
    uint64_t whole = ip * mult, part = (uint64_t)round(frac * (double)mult); /* part <= mult: exact */
    if (part > (uint64_t)INT64_MAX - whole)
        return -1;
    *out = (int64_t)(whole + part);
    return 0;
}

int cfg_parse_duration(const char *s, double *out)
{
    if (!s)
        return -1;
    const char *e;
    uint64_t ip;
    double frac;
    if (parse_number(s, &e, &ip, &frac))
        return -1;
    while (*e == ' ')
        e++;
    double mult;
    if (!*e || !strcmp(e, "s"))
        mult = 1;
    else if (!strcmp(e, "ms"))
        mult = 1e-3;
    else if (!strcmp(e, "m"))
        mult = 60;
    else if (!strcmp(e, "h"))
        mult = 3600;
    else
        return -1;
    *out = ((double)ip + frac) * mult;
    return 0;
}

/* The helpers below leave *out alone when the key was not given, and report
 * (returning false) when its value is wrong. */

static bool get_int(parser *p, const section *s, int k, int64_t lo, int64_t hi, int64_t *out)
{
    const char *v = s->val[k];
    if (!v)
        return true;
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (!(isdigit((unsigned char)*v) || ((*v == '-' || *v == '+') && isdigit((unsigned char)v[1]))) || *end) {
        kfail(p, s, k, "not an integer: '%.60s'", v);
        return false;
    }
    if (errno == ERANGE || x < lo || x > hi) {
        kfail(p, s, k, "%.40s: must be between %lld and %lld", v, (long long)lo, (long long)hi);
        return false;
    }
    *out = x;
    return true;
}

static bool get_bool(parser *p, const section *s, int k, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"}, *const no[] = {"false", "no", "off", "0"};
    const char *v = s->val[k];
    if (!v)
        return true;
    for (int i = 0; i < 4; i++) {
        if (!strcasecmp(v, yes[i])) {
            *out = true;
            return true;
        }
        if (!strcasecmp(v, no[i])) {
            *out = false;
            return true;
        }
    }
    kfail(p, s, k, "not a boolean: '%.60s' (true/false, yes/no, on/off, 1/0)", v);
    return false;
}

/* A duration (>= 0; more than 0 when positive). */
static bool get_dur(parser *p, const section *s, int k, bool positive, double *out)
{
    const char *v = s->val[k];
    if (!v)
        return true;
    double d;
    if (cfg_parse_duration(v, &d)) {
        kfail(p, s, k, "not a duration: '%.60s' (e.g. 250ms, 5s, 2m, 1h)", v);
        return false;
    }
    if (positive && !(d > 0)) {
        kfail(p, s, k, "must be more than 0");
        return false;
    }
    *out = d;
    return true;
}

static bool get_size(parser *p, const section *s, int k, int64_t lo, int64_t *out)
{
    const char *v = s->val[k];
    if (!v)
        return true;
    int64_t x;
    if (cfg_parse_size(v, &x)) {
        kfail(p, s, k, "not a size: '%.60s' (bytes, or with K/M/G/T, e.g. 512M, 1.5G)", v);
        return false;
    }
    if (x < lo) {
        kfail(p, s, k, "must be at least %lld bytes", (long long)lo);
        return false;
    }
    *out = x;
    return true;
}

/* One of the n names (shown as "a, b or c" when wrong); index into *out. */
static bool get_enum(parser *p, const section *s, int k, const char *const *names, int n, int *out)
{
    const char *v = s->val[k];
    if (!v)
        return true;
    for (int i = 0; i < n; i++)
        if (!strcmp(v, names[i])) {
            *out = i;
            return true;
        }
    char list[160] = "";
    size_t at = 0;
    for (int i = 0; i < n && at < sizeof list; i++) {
        int w = snprintf(list + at, sizeof list - at, "%s%s", i == 0 ? "" : i == n - 1 ? " or " : ", ", names[i]);
        if (w < 0)
            break;
        at += (size_t)w;
    }
    kfail(p, s, k, "'%.60s': must be %s", v, list);
    return false;
}

/* A non-empty string, copied into *out (freeing what was there). */
static bool get_str(parser *p, const section *s, int k, char **out)
{
    const char *v = s->val[k];
    if (!v)
        return true;
    if (!*v) {
        kfail(p, s, k, "empty value");
        return false;
    }
    char *d = sdup(p, v);
    if (!d)
        return false;
    free(*out);
    *out = d;
    return true;
}

/* The value of the environment variable key k names, copied into *out. */
static bool get_env(parser *p, const section *s, int k, char **out)
{
    const char *v = s->val[k];
    if (!v)
        return true;
    bool ok = (isalpha((unsigned char)*v) || *v == '_');
    for (const char *q = v; ok && *q; q++)
        ok = isalnum((unsigned char)*q) || *q == '_';
    if (!ok) {
        kfail(p, s, k, "'%.60s' is not an environment variable name", v);
        return false;
    }
    const char *e = getenv(v);
    if (!e || !*e) {
        kfail(p, s, k, "environment variable %.60s is %s", v, e ? "empty" : "not set");
        return false;
    }
    char *d = sdup(p, e);
    if (!d)
        return false;
    free(*out);
    *out = d;
    return true;
}

/* path resolved against the config file's directory unless absolute. */
static char *resolve(parser *p, const char *path)
{
    if (path[0] == '/' || !p->dir)
        return sdup(p, path);
    size_t n = strlen(p->dir) + strlen(path) + 2;
    char *r = malloc(n);
    if (!r) {
        oom(p);
        return NULL;
    }
    snprintf(r, n, "%s/%s", p->dir, path);
    return r;
}

/* ---- URLs ------------------------------------------------------------------ */

static bool host_loopback(const char *host)
{
    char h[256];
    size_t n = strlen(host);
    if (n >= sizeof h)
        return false;
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']') { /* curl gives IPv6 hosts in brackets */
        memcpy(h, host + 1, n - 2);
        h[n - 2] = 0;
    } else {
        memcpy(h, host, n + 1);
    }
    if (!strcasecmp(h, "localhost") || !strcasecmp(h, "localhost."))
        return true;
    unsigned char a[16];
    if (inet_pton(AF_INET, h, a) == 1)
        return a[0] == 127;
    if (inet_pton(AF_INET6, h, a) == 1) {
        static const unsigned char lo6[16] = {[15] = 1};
        static const unsigned char mapped[12] = {[10] = 0xff, [11] = 0xff};
        return !memcmp(a, lo6, 16) || (!memcmp(a, mapped, 12) && a[12] == 127);
    }
    return false;
}

/* Parses an openai backend's url with libcurl: b->url (normalized, no
 * trailing '/') and b->origin; *loopback tells whether the host is. */
static bool get_url(parser *p, const section *s, cfg_backend *b, bool *loopback)
{
    const char *v = s->val[BK_URL];
    bool ok = false;
    char *scheme = NULL, *host = NULL, *port = NULL, *full = NULL, *part = NULL;
    CURLU *u = curl_url();
    if (!u) {
        oom(p);
        return false;
    }
    /* CURLU_NON_SUPPORT_SCHEME: any scheme parses, so that ours is the
     * message about it; no default scheme: one must be given */
    CURLUcode uc = curl_url_set(u, CURLUPART_URL, v, CURLU_NON_SUPPORT_SCHEME);
    if (!strstr(v, "://")) {
        kfail(p, s, BK_URL, "bad url '%.100s': it needs a scheme, http:// or https://", v);
        goto done;
    }
    if (uc == CURLUE_OUT_OF_MEMORY) {
        oom(p);
        goto done;
    }
    if (uc) {
        kfail(p, s, BK_URL, "bad url '%.100s': %s", v, curl_url_strerror(uc));
        goto done;
    }
    if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) || (strcasecmp(scheme, "http") && strcasecmp(scheme, "https"))) {
        kfail(p, s, BK_URL, "bad url '%.100s': the scheme must be http or https", v);
        goto done;
    }
    if (curl_url_get(u, CURLUPART_HOST, &host, 0) || !*host) {
        kfail(p, s, BK_URL, "bad url '%.100s': no host", v);
        goto done;
    }
    if (!curl_url_get(u, CURLUPART_USER, &part, 0) || !curl_url_get(u, CURLUPART_PASSWORD, &part, 0)) {
        kfail(p, s, BK_URL, "bad url: no user or password in it (the key goes in api_key_env)");
        goto done;
    }
    if (!curl_url_get(u, CURLUPART_QUERY, &part, 0) || !curl_url_get(u, CURLUPART_FRAGMENT, &part, 0)) {
        kfail(p, s, BK_URL, "bad url '%.100s': no query or fragment in a base url", v);
        goto done;
    }
    if (!curl_url_get(u, CURLUPART_ZONEID, &part, 0)) {
        kfail(p, s, BK_URL, "bad url '%.100s': IPv6 zone ids are not supported", v);
        goto done;
    }
    curl_url_get(u, CURLUPART_PORT, &port, 0); /* only when the url gives one */
    if (curl_url_get(u, CURLUPART_URL, &full, 0)) {
        kfail(p, s, BK_URL, "bad url '%.100s'", v);
        goto done;
    }
    size_t n = strlen(full);
    while (n && full[n - 1] == '/')
        full[--n] = 0;
    size_t on = strlen(scheme) + strlen(host) + (port ? strlen(port) + 1 : 0) + 4;
    char *origin = malloc(on);
    char *url = sdup(p, full);
    if (!origin || !url) {
        free(origin);
        free(url);
        oom(p);
        goto done;
    }
    snprintf(origin, on, "%s://%s%s%s", scheme, host, port ? ":" : "", port ? port : "");
    free(b->url);
    free(b->origin);
    b->url = url;
    b->origin = origin;
    *loopback = host_loopback(host);
    ok = true;
done:
    curl_free(part);
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_free(full);
    curl_url_cleanup(u);
    return ok;
}

/* ---- the sections ---------------------------------------------------------- */

static void check_server(parser *p, const section *s)
{
    cfg_server *v = &p->c->srv;
    get_str(p, s, SV_HOST, &v->host);
    get_int(p, s, SV_PORT, 0, 65535, &v->port);
    get_env(p, s, SV_API_KEY_ENV, &v->api_key);
    get_size(p, s, SV_BUDGET, 0, &v->memory_budget);
    char *audit = NULL;
    if (get_str(p, s, SV_AUDIT, &audit) && audit) {
        /* relative to the config file like the model paths; "-" is stderr */
        free(v->audit_log);
        v->audit_log = strcmp(audit, "-") ? resolve(p, audit) : sdup(p, audit);
    }
    free(audit);
    get_bool(p, s, SV_LOG_PROMPTS, &v->log_prompts);
    get_int(p, s, SV_BRK_FAIL, 1, 1000000, &v->breaker_failures);
    get_dur(p, s, SV_BRK_COOL, false, &v->breaker_cooldown_s);
    get_dur(p, s, SV_HEALTH_INT, true, &v->health_interval_s);
    get_size(p, s, SV_MAX_BODY, 256, &v->max_body);
    if (v->max_body > (1LL << 32)) {
        kfail(p, s, SV_MAX_BODY, "must be at most 4G");
    }
}

/* A GGUF reader's message about path, without the path it repeats. */
static const char *gguf_reason(const char *msg, const char *path)
{
    size_t pl = strlen(path);
    if (!strncmp(msg, path, pl) && msg[pl] == ':' && msg[pl + 1] == ' ') /* "PATH: why" */
        return msg + pl + 2;
    static const char *const pre[] = {"cannot open '", "cannot stat '", "cannot mmap '", "cannot read '", "'"};
    for (size_t i = 0; i < sizeof pre / sizeof pre[0]; i++) {
        size_t n = strlen(pre[i]);
        if (!strncmp(msg, pre[i], n) && !strncmp(msg + n, path, pl) && msg[n + pl] == '\'') {
            const char *r = msg + n + pl + 1;
            if (r[0] == ':' && r[1] == ' ')
                return r + 2;
            if (r[0] == ' ')
                return r + 1;
        }
    }
    return msg;
}

/* A local backend's model: a path (relative to the config file's folder),
 * or, when that is no file and the value has no '/', the model of that
 * name in the models folder (sov pull, sov ls). *bare_missing is set for a
 * bare name found in neither place. */
static char *model_path(parser *p, const char *val, bool *bare_missing)
{
    *bare_missing = false;
    char *r = resolve(p, val);
    struct stat st;
    if (!r || strchr(val, '/') || stat(r, &st) == 0)
        return r;
    char found[STORE_PATH_MAX];
    if (store_find(NULL, val, found, sizeof found) == 0) {
        free(r);
        return sdup(p, found);
    }
    *bare_missing = true;
    return r;
}

static void check_local(parser *p, const section *s, cfg_backend *b)
{
    bool bare_missing = false;
    if (!s->val[BK_MODEL]) {
        fail(p, SOV_EINVAL, s->line, s, NULL, "missing key model (the GGUF file)");
    } else if (!*s->val[BK_MODEL]) {
        kfail(p, s, BK_MODEL, "empty value");
    } else if ((b->model = model_path(p, s->val[BK_MODEL], &bare_missing))) {
        gguf *g = NULL;
        int rc = gguf_load(&g, b->model, true); /* mapped: only the header is read */
        if (rc == SOV_ENOMEM) {
            oom(p);
        } else if (rc) {
            char why[400];
            snprintf(why, sizeof why, "%s", gguf_reason(err_msg(), b->model));
            char dir[STORE_PATH_MAX];
            if (bare_missing && store_dir(dir, sizeof dir))
                fail(p, rc, s->vline[BK_MODEL], s, "model", "cannot read %s: %s (and no model %s in %s)", b->model,
                     why, s->val[BK_MODEL], dir);
            else
                fail(p, rc, s->vline[BK_MODEL], s, "model", "cannot read %s: %s", b->model, why);
        }
        gguf_close(g);
    }
    int64_t x = b->n_ctx;
    if (get_int(p, s, BK_CTX, 0, 1 << 24, &x)) {
        if (x == 1)
            kfail(p, s, BK_CTX, "must be 0 (the default) or between 2 and %d", 1 << 24);
        else
            b->n_ctx = x;
    }
    get_int(p, s, BK_PARALLEL, 1, 256, &b->n_slots);
    get_int(p, s, BK_THREADS, 0, 512, &b->threads);
    get_int(p, s, BK_BATCH, 1, 65536, &b->n_batch);
    get_int(p, s, BK_QUEUE, 1, 1 << 20, &b->queue);
    if (s->val[BK_KV_TYPE]) {
        int t = kv_type_parse(s->val[BK_KV_TYPE]);
        if (t < 0)
            kfail(p, s, BK_KV_TYPE, "'%.60s': must be f16, q8_0 or f32", s->val[BK_KV_TYPE]);
        else
            b->kv_type = t;
    }
    x = 0;
    if (get_int(p, s, BK_KV_SIZE, 0, 1LL << 34, &x)) {
        if (x > 0 && x < 32)
            kfail(p, s, BK_KV_SIZE, "must be 0 (the default) or between 32 and %lld", 1LL << 34);
        else
            b->kv_size = x;
    }
    const char *v = s->val[BK_KV_MEM];
    if (v) {
        /* GiB as a number, or a size with a unit */
        const char *e;
        uint64_t ip;
        double frac, gib = -1;
        int64_t bytes;
        if (!parse_number(v, &e, &ip, &frac) && !*e)
            gib = (double)ip + frac;
        else if (!cfg_parse_size(v, &bytes))
            gib = (double)bytes / 1073741824.0;
        if (gib < 0)
            kfail(p, s, BK_KV_MEM, "not a number of GiB: '%.60s'", v);
        else if (gib < 0.001 || gib > 1 << 20)
            kfail(p, s, BK_KV_MEM, "%.40s: must be between 0.001 and %d GiB", v, 1 << 20);
        else if (s->val[BK_KV_SIZE])
            kfail(p, s, s->vline[BK_KV_SIZE] > s->vline[BK_KV_MEM] ? BK_KV_SIZE : BK_KV_MEM,
                  "kv_size and kv_mem both given (one or the other)");
        else
            b->kv_mem = gib;
    }
    if (s->val[BK_CHAT]) {
        if (chat_from_name(s->val[BK_CHAT]) < 0)
            kfail(p, s, BK_CHAT, "unknown chat template '%.60s' (known: %s)", s->val[BK_CHAT], chat_names());
        else
            get_str(p, s, BK_CHAT, &b->chat_template);
    }
    get_bool(p, s, BK_MMAP, &b->mmap);
    bool pc = true;
    if (get_bool(p, s, BK_PREFIX, &pc))
        b->no_prefix_cache = !pc;
    get_bool(p, s, BK_PRELOAD, &b->preload);
    v = s->val[BK_KEEP];
    if (v && (!strcmp(v, "-1") || !strcasecmp(v, "never")))
        b->keep_alive_s = -1;
    else
        get_dur(p, s, BK_KEEP, false, &b->keep_alive_s);
}

static void check_openai(parser *p, const section *s, cfg_backend *b)
{
    bool url_ok = false, loopback = false;
    if (!s->val[BK_URL])
        fail(p, SOV_EINVAL, s->line, s, NULL, "missing key url");
    else
        url_ok = get_url(p, s, b, &loopback);
    if (s->val[BK_API_KEY_ENV] && get_env(p, s, BK_API_KEY_ENV, &b->api_key))
        get_str(p, s, BK_API_KEY_ENV, &b->api_key_env);
    get_dur(p, s, BK_CONNECT, true, &b->connect_timeout_s);
    get_dur(p, s, BK_FIRST_BYTE, true, &b->first_byte_timeout_s);
    get_dur(p, s, BK_IDLE, true, &b->idle_timeout_s);
    get_int(p, s, BK_MAX_CONC, 1, 1000000, &b->max_concurrent);
    static const char *const health[] = {"/health", "/v1/models"};
    int h = 0;
    if (get_enum(p, s, BK_HEALTH, health, 2, &h) && !(b->health = sdup(p, health[h])))
        return;
    static const char *const loc[] = {"remote", "local"};
    int l = 0;
    if (get_enum(p, s, BK_LOCATION, loc, 2, &l) && l == 1) {
        if (url_ok && !loopback)
            kfail(p, s, BK_LOCATION, "location = local needs a loopback url (127.x.x.x, localhost or [::1]), not %.100s",
                  b->origin);
        else
            b->location_local = true;
    }
}

static void check_backend(parser *p, const section *s)
{
    cfg_backend *b = &p->c->backends[s->idx];
    static const char *const types[] = {"local", "openai"};
    int t;
    if (!s->val[BK_TYPE]) {
        fail(p, SOV_EINVAL, s->line, s, NULL, "missing key type (local or openai)");
        return;
    }
    if (!get_enum(p, s, BK_TYPE, types, 2, &t))
        return;
    b->type = t == 0 ? CFG_LOCAL : CFG_OPENAI;
    for (int k = 1; k < BK_N; k++)
        if (s->val[k] && backend_keys[k].type != b->type)
            kfail(p, s, k, "key %s is for type = %s, not %s", backend_keys[k].name,
                  backend_keys[k].type == CFG_LOCAL ? "local" : "openai", types[t]);
    if (b->type == CFG_LOCAL)
        check_local(p, s, b);
    else
        check_openai(p, s, b);
}

static void check_alias(parser *p, const section *s)
{
    cfg *c = p->c;
    cfg_alias *a = &c->aliases[s->idx];
    const char *v = s->val[AL_BACKENDS];
    if (!v) {
        fail(p, SOV_EINVAL, s->line, s, NULL, "missing key backends (the backends serving it, in preference order)");
    } else {
        /* backends = a, b, c: every backend section is known by now, wherever in the file */
        const char *q = v;
        for (;;) {
            while (isspace((unsigned char)*q))
                q++;
            const char *e = strchr(q, ',');
            size_t n = e ? (size_t)(e - q) : strlen(q);
            while (n && isspace((unsigned char)q[n - 1]))
                n--;
            char nm[128];
            if (n == 0) {
                kfail(p, s, AL_BACKENDS, "empty backend name in the list");
                break;
            }
            if (n >= sizeof nm) {
                kfail(p, s, AL_BACKENDS, "unknown backend %.60s...", q);
                break;
            }
            memcpy(nm, q, n);
            nm[n] = 0;
            int i = cfg_backend_find(c, nm);
            if (i < 0) {
                kfail(p, s, AL_BACKENDS, "unknown backend %s", nm);
                break;
            }
            bool dup = false;
            for (int j = 0; j < a->n_refs; j++)
                dup |= a->refs[j] == i;
            if (dup) {
                kfail(p, s, AL_BACKENDS, "backend %s listed twice", nm);
                break;
            }
            if (a->n_refs == CFG_MAX_REFS) {
                kfail(p, s, AL_BACKENDS, "more than %d backends", CFG_MAX_REFS);
                break;
            }
            a->refs[a->n_refs++] = i;
            if (!e)
                break;
            q = e + 1;
        }
    }
    static const char *const privacy[] = {"any", "local-only"};
    static const char *const balance[] = {"order", "least-outstanding"};
    static const char *const affinity[] = {"none", "prefix"};
    int pv = 0, bl = 0, af = 0;
    if (get_enum(p, s, AL_PRIVACY, privacy, 2, &pv))
        a->local_only = pv == 1;
    bool bl_ok = get_enum(p, s, AL_BALANCE, balance, 2, &bl);
    if (bl_ok)
        a->balance = bl == 1 ? CFG_LEAST : CFG_ORDER;
    if (get_enum(p, s, AL_AFFINITY, affinity, 2, &af) && af == 1) {
        if (bl_ok && a->balance != CFG_LEAST)
            kfail(p, s, AL_AFFINITY, "affinity = prefix needs balance = least-outstanding");
        else
            a->affinity_prefix = true;
    }
    get_int(p, s, AL_OQUEUE, 0, 1 << 30, &a->overflow_queue);
    get_dur(p, s, AL_OWAIT, false, &a->overflow_wait_s);
    get_str(p, s, AL_REMOTE, &a->remote_model);
}

static void check_key(parser *p, const section *s)
{
    cfg_key *k = &p->c->keys[s->idx];
    if (s->val[KY_KEY_ENV] && s->val[KY_KEY]) {
        int later = s->vline[KY_KEY] > s->vline[KY_KEY_ENV] ? KY_KEY : KY_KEY_ENV;
        kfail(p, s, later, "key_env and key both given (one or the other)");
    } else if (!s->val[KY_KEY_ENV] && !s->val[KY_KEY]) {
        fail(p, SOV_EINVAL, s->line, s, NULL, "missing key key_env (or key)");
    } else if (s->val[KY_KEY_ENV]) {
        get_env(p, s, KY_KEY_ENV, &k->key);
    } else {
        get_str(p, s, KY_KEY, &k->key);
    }
    static const char *const privacy[] = {"any", "local-only"};
    int pv = 0;
    if (get_enum(p, s, KY_PRIVACY, privacy, 2, &pv))
        k->local_only = pv == 1;
}

/* Phase 3: checks across sections. */
static void check_across(parser *p)
{
    cfg *c = p->c;
    for (int i = 0; i < p->n_secs; i++) {
        const section *s = &p->secs[i];
        if (s->kind == S_MODEL) {
            const cfg_alias *a = &c->aliases[s->idx];
            bool local = false;
            for (int j = 0; j < a->n_refs; j++) {
                const cfg_backend *b = &c->backends[a->refs[j]];
                local |= b->type == CFG_LOCAL || b->location_local;
            }
            if (a->local_only && !local)
                kfail(p, s, AL_PRIVACY,
                      "privacy = local-only but none of its backends is local (type = local, or location = local)");
        } else if (s->kind == S_KEY) {
            const cfg_key *k = &c->keys[s->idx];
            int kk = s->val[KY_KEY_ENV] ? KY_KEY_ENV : KY_KEY;
            for (int j = 0; j < s->idx; j++)
                if (!strcmp(c->keys[j].key, k->key))
                    kfail(p, s, kk, "the same secret as [key.%s]", c->keys[j].name);
            if (c->srv.api_key && !strcmp(c->srv.api_key, k->key))
                kfail(p, s, kk, "the same secret as [server] api_key_env");
        }
    }
}

/* ---- loading --------------------------------------------------------------- */

static int read_file(parser *p, char **out, size_t *len)
{
    *out = NULL;
    FILE *f = fopen(p->path, "rb");
    if (!f) {
        fail(p, SOV_EIO, 0, NULL, NULL, "cannot read: %s", strerror(errno));
        return -1;
    }
    size_t cap = 4096, n = 0;
    char *buf = NULL;
    for (;;) {
        if (!buf || n == cap) {
            if (cap > ((size_t)64 << 20)) {
                fail(p, SOV_EFORMAT, 0, NULL, NULL, "too large for a config file");
                goto fail;
            }
            char *nb = realloc(buf, buf ? (cap *= 2) : cap);
            if (!nb) {
                oom(p);
                goto fail;
            }
            buf = nb;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        fail(p, SOV_EIO, 0, NULL, NULL, "cannot read: %s", strerror(errno ? errno : EIO));
        goto fail;
    }
    fclose(f);
    *out = buf;
    *len = n;
    return 0;
fail:
    free(buf);
    fclose(f);
    return -1;
}

int cfg_load(cfg **out, const char *path)
{
    *out = NULL;
    parser p = {.path = path ? path : "(null)", .server_sec = -1};
    char *data = NULL;
    size_t len = 0;
    if (!path || !*path)
        return err_set(SOV_EINVAL, "config: no file name");
    if (cfg_new(&p.c))
        return SOV_ENOMEM;
    if (!(p.c->path = sdup(&p, path)))
        goto done;
    const char *slash = strrchr(path, '/');
    if (slash) {
        size_t dn = slash == path ? 1 : (size_t)(slash - path);
        if (!(p.dir = malloc(dn + 1))) {
            oom(&p);
            goto done;
        }
        memcpy(p.dir, path, dn);
        p.dir[dn] = 0;
        if (dn == 1 && p.dir[0] == '/')
            p.dir[0] = 0; /* "/x.ini": join as "" + "/" + name */
    }
    if (read_file(&p, &data, &len))
        goto done;
    p.data = data;
    p.len = len;

    /* phase 1: collect */
    int rc = ini_parse_stream(reader, &p, handler, &p);
    if (rc == -2)
        oom(&p);
    else if (rc > 0)
        fail(&p, SOV_EFORMAT, rc, NULL, NULL, "syntax error"); /* only if not told better already */

    /* phase 2: each section */
    for (int i = 0; i < p.n_secs && p.err != SOV_ENOMEM; i++) {
        const section *s = &p.secs[i];
        switch (s->kind) {
        case S_SERVER: check_server(&p, s); break;
        case S_BACKEND: check_backend(&p, s); break;
        case S_MODEL: check_alias(&p, s); break;
        case S_KEY: check_key(&p, s); break;
        default: break;
        }
    }
    /* phases 3 and 4, on a clean file only (they would report consequences) */
    if (!p.err)
        check_across(&p);
    if (!p.err && p.c->n_aliases == 0)
        fail(&p, SOV_EINVAL, 0, NULL, NULL, "no [model.ALIAS] section: nothing to serve");
    if (!p.err && p.c->n_backends == 0)
        fail(&p, SOV_EINVAL, 0, NULL, NULL, "no [backend.NAME] section");
done:
    for (int i = 0; i < p.n_secs; i++)
        for (int k = 0; k < MAX_KEYS; k++)
            free(p.secs[i].val[k]);
    free(p.secs);
    free(p.dir);
    free(data);
    if (p.err) {
        cfg_free(p.c);
        return err_set(p.err, "%s", p.msg);
    }
    *out = p.c;
    return 0;
}

int cfg_new(cfg **out)
{
    *out = NULL;
    cfg *c = calloc(1, sizeof *c);
    if (!c)
        return err_set(SOV_ENOMEM, "out of memory");
    c->srv.port = -1;
    c->srv.breaker_failures = 3;
    c->srv.breaker_cooldown_s = 10;
    c->srv.health_interval_s = 5;
    *out = c;
    return 0;
}

void cfg_free(cfg *c)
{
    if (!c)
        return;
    for (int i = 0; i < c->n_backends; i++) {
        cfg_backend *b = &c->backends[i];
        free(b->model);
        free(b->chat_template);
        free(b->url);
        free(b->origin);
        free(b->api_key);
        free(b->api_key_env);
        free(b->health);
    }
    for (int i = 0; i < c->n_aliases; i++)
        free(c->aliases[i].remote_model);
    for (int i = 0; i < c->n_keys; i++)
        free(c->keys[i].key);
    free(c->backends);
    free(c->aliases);
    free(c->keys);
    free(c->srv.host);
    free(c->srv.api_key);
    free(c->srv.audit_log);
    free(c->path);
    free(c);
}

int cfg_backend_find(const cfg *c, const char *name)
{
    if (!c || !name)
        return -1;
    for (int i = 0; i < c->n_backends; i++)
        if (!strcmp(c->backends[i].name, name))
            return i;
    return -1;
}

int cfg_alias_find(const cfg *c, const char *name)
{
    if (!c || !name)
        return -1;
    for (int i = 0; i < c->n_aliases; i++)
        if (!strcmp(c->aliases[i].name, name))
            return i;
    return -1;
}

/* ---- printing -------------------------------------------------------------- */

static const char *fmt_size(int64_t v, char *buf, size_t cap)
{
    static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double x = (double)v;
    int u = 0;
    while (u < 4 && x >= 1024) {
        x /= 1024;
        u++;
    }
    snprintf(buf, cap, "%.4g %s", x, unit[u]);
    return buf;
}

static const char *fmt_dur(double s, char *buf, size_t cap)
{
    if (s < 0)
        snprintf(buf, cap, "off");
    else if (s > 0 && s < 1)
        snprintf(buf, cap, "%.4gms", s * 1e3);
    else
        snprintf(buf, cap, "%.6gs", s);
    return buf;
}

static void print_backend(const cfg_backend *b, FILE *f)
{
    char t1[32], t2[32], t3[32];
    if (b->type == CFG_LOCAL) {
        const char *kv = kv_type_name(b->kv_type);
        fprintf(f, "local   %s  location=local  parallel=%lld ctx_size=%lld kv_type=%s", b->model ? b->model : "(none)",
                (long long)b->n_slots, (long long)b->n_ctx, kv ? kv : "?");
        if (b->kv_size)
            fprintf(f, " kv_size=%lld", (long long)b->kv_size);
        if (b->kv_mem > 0)
            fprintf(f, " kv_mem=%gGiB", b->kv_mem);
        fprintf(f, " keep_alive=%s%s%s%s%s%s\n", b->keep_alive_s < 0 ? "never" : fmt_dur(b->keep_alive_s, t1, sizeof t1),
                b->preload ? " preload" : "", b->mmap ? " mmap" : "", b->no_prefix_cache ? " no-prefix-cache" : "",
                b->chat_template ? " chat_template=" : "", b->chat_template ? b->chat_template : "");
    } else if (b->type == CFG_OPENAI) {
        fprintf(f, "openai  %s  location=%s  max_concurrent=%lld health=%s timeouts=%s/%s/%s (connect/first byte/idle)",
                b->url ? b->url : "(none)", b->location_local ? "local" : "remote", (long long)b->max_concurrent,
                b->health ? b->health : "/health", fmt_dur(b->connect_timeout_s, t1, sizeof t1),
                fmt_dur(b->first_byte_timeout_s, t2, sizeof t2), fmt_dur(b->idle_timeout_s, t3, sizeof t3));
        /* the variable's name only, never its value */
        if (b->api_key_env)
            fprintf(f, " api_key=$%s\n", b->api_key_env);
        else
            fprintf(f, " api_key=%s\n", b->api_key ? "(set)" : "none");
    } else {
        fprintf(f, "(no type)\n");
    }
}

void cfg_print(const cfg *c, FILE *f)
{
    if (!c || !f)
        return;
    char t1[32], t2[32];
    const cfg_server *s = &c->srv;
    if (c->path)
        fprintf(f, "config %s\n", c->path);
    fprintf(f, "server  host=%s port=", s->host ? s->host : "(default)");
    if (s->port >= 0)
        fprintf(f, "%lld", (long long)s->port);
    else
        fprintf(f, "(default)");
    fprintf(f, " memory_budget=%s", s->memory_budget > 0 ? fmt_size(s->memory_budget, t1, sizeof t1) : "(available less 1 GiB)");
    fprintf(f, " max_body=%s api_key=%s\n", s->max_body > 0 ? fmt_size(s->max_body, t2, sizeof t2) : "(default)",
            s->api_key ? "(set, class any)" : "none");
    fprintf(f, "        breaker: opens after %lld failures, half-open after %s; health check every %s\n",
            (long long)s->breaker_failures, fmt_dur(s->breaker_cooldown_s, t1, sizeof t1),
            fmt_dur(s->health_interval_s, t2, sizeof t2));
    fprintf(f, "        audit_log=%s%s\n", s->audit_log ? s->audit_log : "none", s->log_prompts ? " (with prompts)" : "");
    bool *used = calloc((size_t)c->n_backends + 1, sizeof *used);
    for (int i = 0; i < c->n_aliases; i++) {
        const cfg_alias *a = &c->aliases[i];
        fprintf(f, "model %s  privacy=%s balance=%s affinity=%s overflow_queue=", a->name, a->local_only ? "local-only" : "any",
                a->balance == CFG_LEAST ? "least-outstanding" : "order", a->affinity_prefix ? "prefix" : "none");
        if (a->overflow_queue >= 0)
            fprintf(f, "%lld", (long long)a->overflow_queue);
        else
            fprintf(f, "off");
        fprintf(f, " overflow_wait=%s remote_model=%s\n", fmt_dur(a->overflow_wait_s, t1, sizeof t1),
                a->remote_model ? a->remote_model : a->name);
        for (int j = 0; j < a->n_refs; j++) {
            int r = a->refs[j];
            if (r < 0 || r >= c->n_backends) {
                fprintf(f, "  %d. (bad backend index %d)\n", j + 1, r);
                continue;
            }
            if (used)
                used[r] = true;
            fprintf(f, "  %d. %-16s ", j + 1, c->backends[r].name);
            print_backend(&c->backends[r], f);
        }
    }
    for (int i = 0; i < c->n_backends; i++)
        if (used && !used[i]) {
            fprintf(f, "backend %s (not used by any model)  ", c->backends[i].name);
            print_backend(&c->backends[i], f);
        }
    free(used);
    for (int i = 0; i < c->n_keys; i++)
        fprintf(f, "key %s  privacy=%s\n", c->keys[i].name, c->keys[i].local_only ? "local-only" : "any");
    fprintf(f, "config OK: %d models, %d backends, %d keys\n", c->n_aliases, c->n_backends, c->n_keys);
}
