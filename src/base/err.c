#include "err.h"

#include <stdarg.h>
#include <stdio.h>

static _Thread_local char err_buf[512];

int err_set(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err_buf, sizeof err_buf, fmt, ap);
    va_end(ap);
    return code;
}

const char *err_msg(void) { return err_buf; }

const char *err_name(int code)
{
    switch (code) {
    case SOV_OK: return "ok";
    case SOV_EINVAL: return "invalid argument";
    case SOV_EIO: return "i/o error";
    case SOV_ENOMEM: return "out of memory";
    case SOV_EFORMAT: return "format error";
    case SOV_EUNSUPPORTED: return "unsupported";
    case SOV_ENOTFOUND: return "not found";
    case SOV_ERANGE: return "out of range";
    default: return "error";
    }
}
