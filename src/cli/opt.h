/* opt: strict parsing of numeric command-line values. Each returns 0, or
 * prints "sov: FLAG: why" to stderr and returns 2 (usage error). */
#ifndef SOV_OPT_H
#define SOV_OPT_H

#include <stdint.h>

int opt_int(const char *flag, const char *val, long long lo, long long hi, long long *out);
int opt_float(const char *flag, const char *val, double lo, double hi, double *out);

/* Value of the option at argv[*i] (advancing *i), or NULL after printing
 * "sov: FLAG needs a value". */
const char *opt_value(int argc, char **argv, int *i);

/* Monotonic clock in seconds. */
double opt_now(void);

#endif
