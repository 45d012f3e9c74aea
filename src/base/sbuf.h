/* sbuf: a growable NUL-terminated text buffer for building output (JSON,
 * prompts, grammars, Prometheus text). An sbuf starts zeroed ({0}); the
 * first failed allocation sets oom and turns every later append into a
 * no-op, so callers check once at the end. */
#ifndef SOV_SBUF_H
#define SOV_SBUF_H

#include <stdbool.h>
#include <stddef.h>

typedef struct sbuf {
    char *p;        /* NULL until the first append; else NUL-terminated */
    size_t len, cap;
    bool oom;
} sbuf;

/* Appends s[0..n). */
void sb_putn(sbuf *b, const char *s, size_t n);

/* Appends the NUL-terminated s. */
void sb_puts(sbuf *b, const char *s);

/* Appends s without its leading and trailing white space (C isspace). */
void sb_put_trim(sbuf *b, const char *s);

/* Appends printf-style text. */
void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The text (malloc'd, caller frees; "" when nothing was appended), leaving
 * b empty; NULL (and b freed) after an allocation failure. */
char *sb_take(sbuf *b);

/* Frees the text and zeroes b. */
void sb_free(sbuf *b);

#endif
