/* opt: strict parsing of numeric command-line values. Each returns 0, or
 * prints "sov: FLAG: why" to stderr and returns 2 (usage error). */
#ifndef SOV_OPT_H
#define SOV_OPT_H

#include <stdbool.h>
#include <stdint.h>

#include "../engine/sample.h"

int opt_int(const char *flag, const char *val, long long lo, long long hi, long long *out);
int opt_float(const char *flag, const char *val, double lo, double hi, double *out);

/* Value of the option at argv[*i] (advancing *i), or NULL after printing
 * "sov: FLAG needs a value". */
const char *opt_value(int argc, char **argv, int *i);

/* The sampling options shared by sov run and sov serve (--temp, --top-k,
 * --top-p, --min-p, --repeat-penalty, --repeat-last-n) into *sp. Returns
 * false if argv[*i] is none of them; else true with *rc = 0, or 2 after
 * printing why the value is bad (advancing *i past the value). */
bool opt_sampling(int argc, char **argv, int *i, sample_params *sp, int *rc);

/* Monotonic clock in seconds. */
double opt_now(void);

#endif
