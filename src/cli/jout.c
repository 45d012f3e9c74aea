/* jout: see jout.h. */
#include "jout.h"

#include <math.h>

bool json_bad;

void jset(json_t *o, const char *k, json_t *v)
{
    if (!o || !v || json_object_set_new(o, k, v))
        json_bad = true;
}

json_t *jnum(double v) { return isfinite(v) ? json_real(v) : json_null(); }

void jpush(json_t *a, json_t *v)
{
    if (!a || !v || json_array_append_new(a, v))
        json_bad = true;
}
