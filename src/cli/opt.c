#include "opt.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int opt_int(const char *flag, const char *val, long long lo, long long hi, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(val, &end, 10);
    if (errno || end == val || *end) {
        fprintf(stderr, "sov: %s: '%s' is not an integer\n", flag, val);
        return 2;
    }
    if (v < lo || v > hi) {
        fprintf(stderr, "sov: %s: %lld is out of range %lld..%lld\n", flag, v, lo, hi);
        return 2;
    }
    *out = v;
    return 0;
}

int opt_float(const char *flag, const char *val, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(val, &end);
    if (errno || end == val || *end || !isfinite(v)) {
        fprintf(stderr, "sov: %s: '%s' is not a number\n", flag, val);
        return 2;
    }
    if (v < lo || v > hi) {
        fprintf(stderr, "sov: %s: %g is out of range %g..%g\n", flag, v, lo, hi);
        return 2;
    }
    *out = v;
    return 0;
}

const char *opt_value(int argc, char **argv, int *i)
{
    if (*i + 1 >= argc) {
        fprintf(stderr, "sov: %s needs a value\n", argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

double opt_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

bool opt_sampling(int argc, char **argv, int *i, sample_params *sp, int *rc)
{
    const char *a = argv[*i], *v;
    static const char *const names[] = {"--temp", "--top-k", "--top-p", "--min-p", "--repeat-penalty",
                                        "--repeat-last-n"};
    int k = 0;
    while (k < 6 && strcmp(a, names[k]))
        k++;
    if (k == 6)
        return false;
    if (!(v = opt_value(argc, argv, i))) {
        *rc = 2;
        return true;
    }
    long long iv = 0;
    double fv = 0;
    switch (k) {
    case 0: *rc = opt_float(a, v, 0, 100, &fv); if (!*rc) sp->temp = (float)fv; break;
    case 1: *rc = opt_int(a, v, 0, INT32_MAX, &iv); if (!*rc) sp->top_k = (int32_t)iv; break;
    case 2: *rc = opt_float(a, v, 0, 1, &fv); if (!*rc) sp->top_p = (float)fv; break;
    case 3: *rc = opt_float(a, v, 0, 1, &fv); if (!*rc) sp->min_p = (float)fv; break;
    case 4: *rc = opt_float(a, v, 0.01, 100, &fv); if (!*rc) sp->repeat_penalty = (float)fv; break;
    default: *rc = opt_int(a, v, 0, INT32_MAX, &iv); if (!*rc) sp->repeat_last_n = (int32_t)iv; break;
    }
    return true;
}
