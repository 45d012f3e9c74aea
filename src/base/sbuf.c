#include "sbuf.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Room for n more bytes and the NUL. */
static bool grow(sbuf *b, size_t n)
{
    if (b->oom)
        return false;
    if (b->len + n + 1 <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n + 1)
        cap *= 2;
    char *np = realloc(b->p, cap);
    if (!np) {
        b->oom = true;
        return false;
    }
    b->p = np;
    b->cap = cap;
    return true;
}

void sb_putn(sbuf *b, const char *s, size_t n)
{
    if (!grow(b, n))
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

void sb_puts(sbuf *b, const char *s) { sb_putn(b, s, strlen(s)); }

void sb_put_trim(sbuf *b, const char *s)
{
    size_t lo = 0, hi = strlen(s);
    while (lo < hi && isspace((unsigned char)s[lo]))
        lo++;
    while (hi > lo && isspace((unsigned char)s[hi - 1]))
        hi--;
    sb_putn(b, s + lo, hi - lo);
}

void sb_printf(sbuf *b, const char *fmt, ...)
{
    if (b->oom)
        return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
    va_end(ap);
    if (k < 0) {
        b->oom = true;
        return;
    }
    if (b->p && b->len + (size_t)k < b->cap) {
        b->len += (size_t)k;
        return;
    }
    if (!grow(b, (size_t)k))
        return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    b->len += (size_t)k;
}

char *sb_take(sbuf *b)
{
    if (b->oom) {
        sb_free(b);
        return NULL;
    }
    char *p = b->p ? b->p : calloc(1, 1);
    memset(b, 0, sizeof *b);
    return p;
}

void sb_free(sbuf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}
