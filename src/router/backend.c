#include "backend.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int bk_failf(bk_resp *r, int fail, int status, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err, sizeof r->err, fmt, ap);
    va_end(ap);
    r->fail = fail;
    r->status = status;
    r->ctype = "application/json";
    r->streamed = false;
    free(r->body);
    r->body = NULL;
    r->len = 0;
    const char *type = status == 429 ? "rate_limit_error" : status < 500 ? "invalid_request_error" : "server_error";
    json_t *o = json_pack("{s:{s:s,s:s,s:n,s:s?}}", "error", "message", r->err, "type", type, "param", "code", code);
    if (o) {
        r->body = json_dumps(o, JSON_COMPACT);
        json_decref(o);
    }
    if (r->body)
        r->len = strlen(r->body);
    return -1;
}
