/* iniline: the pieces every INI reader of sov shares (router/config.c,
 * plan/hw.c, plan/calib.c). Each hands libinih's ini_parse_stream a line
 * reader over the file in memory, so it sees every line with its number,
 * and words errors the same way: one line, "FILE:LINE: what". */
#ifndef SOV_INILINE_H
#define SOV_INILINE_H

#include <stdarg.h>
#include <stddef.h>

enum {
    INI_LINE_END = 0,   /* no more lines */
    INI_LINE_OK = 1,    /* str holds the next line */
    INI_LINE_NUL = -1,  /* the line holds a NUL byte */
    INI_LINE_LONG = -2, /* the line does not fit in num - 3 characters */
};

/* The next line of data[0..len) from *pos: advances *pos past it and its
 * '\n' and counts *line. The line is trimmed (a UTF-8 BOM on line 1,
 * leading and trailing blanks, so "\r" too) and copied NUL-terminated into
 * str, which then has room for ini_line_finish (num >= its length + 2).
 * Returns one of the INI_LINE_* values; str is untouched unless OK. */
int ini_line_next(const char *data, size_t len, size_t *pos, int *line, char *str, int num);

/* Ends a line of n characters that ini_line_next gave (n = its strlen then,
 * whatever the caller did to it since) as libinih's reader must return it:
 * with its '\n'. */
void ini_line_finish(char *str, size_t n);

/* The message "PATH:LINE: " (line > 0) or "PATH: " followed by fmt, into
 * msg (cap bytes, truncated), every control character replaced by '?' so
 * the message stays one line whatever the file holds. */
void ini_line_vmsg(char *msg, size_t cap, const char *path, int line, const char *fmt, va_list ap)
    __attribute__((format(printf, 5, 0)));

/* ini_line_vmsg with the arguments given directly. */
void ini_line_msg(char *msg, size_t cap, const char *path, int line, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

#endif
