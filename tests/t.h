/* t.h: minimal test helpers. Each check prints "PASS name" or "FAIL name: why";
 * tests/run.sh counts those lines. t_done() returns the exit status. */
#ifndef SOV_T_H
#define SOV_T_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

static int t_failed, t_passed;

__attribute__((format(printf, 3, 4), unused))
static bool t_check(bool ok, const char *name, const char *fmt, ...)
{
    if (ok) {
        printf("PASS %s\n", name);
        t_passed++;
    } else {
        printf("FAIL %s: ", name);
        va_list ap;
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        printf("\n");
        t_failed++;
    }
    fflush(stdout);
    return ok;
}

/* Path of a file under the shared test data ($SOV_SHARED or ../shared). */
__attribute__((unused))
static const char *t_shared(const char *rel)
{
    static char buf[8][1024];
    static int k;
    const char *root = getenv("SOV_SHARED");
    if (!root || !*root)
        root = "../shared";
    char *b = buf[k++ % 8];
    snprintf(b, sizeof buf[0], "%s/%s", root, rel);
    return b;
}

__attribute__((unused))
static int t_done(void) { return t_failed ? 1 : 0; }

#endif
