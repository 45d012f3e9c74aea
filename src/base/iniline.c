/* iniline: see iniline.h. */
#include "iniline.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

int ini_line_next(const char *data, size_t len, size_t *pos, int *line, char *str, int num)
{
    if (*pos >= len)
        return INI_LINE_END;
    const char *s = data + *pos;
    const char *nl = memchr(s, '\n', len - *pos);
    size_t n = nl ? (size_t)(nl - s) : len - *pos;
    *pos += n + (nl ? 1 : 0);
    (*line)++;
    if (*line == 1 && n >= 3 && !memcmp(s, "\xEF\xBB\xBF", 3)) {
        s += 3;
        n -= 3;
    }
    while (n && isspace((unsigned char)*s)) {
        s++;
        n--;
    }
    while (n && isspace((unsigned char)s[n - 1]))
        n--;
    if (memchr(s, 0, n))
        return INI_LINE_NUL;
    if (num < 3 || n + 2 > (size_t)num)
        return INI_LINE_LONG;
    memcpy(str, s, n);
    str[n] = 0;
    return INI_LINE_OK;
}

void ini_line_finish(char *str, size_t n)
{
    str[n] = '\n';
    str[n + 1] = 0;
}

void ini_line_vmsg(char *msg, size_t cap, const char *path, int line, const char *fmt, va_list ap)
{
    if (!cap)
        return;
    int n = line > 0 ? snprintf(msg, cap, "%s:%d: ", path, line) : snprintf(msg, cap, "%s: ", path);
    if (n < 0 || (size_t)n >= cap)
        n = (int)strlen(msg);
    vsnprintf(msg + n, cap - (size_t)n, fmt, ap);
    for (char *q = msg; *q; q++)
        if ((unsigned char)*q < 0x20 || *q == 0x7f)
            *q = '?';
}

void ini_line_msg(char *msg, size_t cap, const char *path, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ini_line_vmsg(msg, cap, path, line, fmt, ap);
    va_end(ap);
}
