/* jout: building a command's --json output with jansson, one failure flag
 * for the whole document instead of a check after every call. */
#ifndef SOV_JOUT_H
#define SOV_JOUT_H

#include <jansson.h>
#include <stdbool.h>

/* Set when any jset / jpush below failed (a NULL value or no memory); the
 * command then reports that its JSON output could not be made. */
extern bool json_bad;

/* o[k] = v, taking v's reference (v NULL: json_bad). */
void jset(json_t *o, const char *k, json_t *v);

/* a real, or null for NaN / infinity (JSON has neither). */
json_t *jnum(double v);

/* appends v to array a, taking v's reference (v NULL: json_bad). */
void jpush(json_t *a, json_t *v);

#endif
