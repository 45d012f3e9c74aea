#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char err_buf[512];

int err_set(int code, const char *fmt, ...)
{
    /* format into a temporary first: the arguments may include err_msg() */
    char tmp[sizeof err_buf];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    memcpy(err_buf, tmp, sizeof err_buf);
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
    case SOV_EBUSY: return "busy";
    default: return "error";
    }
}
