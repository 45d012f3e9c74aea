/* err: negative error codes with a thread-local message.
 * Every fallible function returns 0 (or a count) on success and one of the
 * SOV_E* codes on failure, after calling err_set() with a human message. */
#ifndef SOV_ERR_H
#define SOV_ERR_H

enum {
    SOV_OK = 0,
    SOV_EINVAL = -1,     /* bad argument or option */
    SOV_EIO = -2,        /* open/read/write/mmap failed */
    SOV_ENOMEM = -3,     /* allocation failed */
    SOV_EFORMAT = -4,    /* malformed input file or data */
    SOV_EUNSUPPORTED = -5, /* valid but not supported (type, arch, ...) */
    SOV_ENOTFOUND = -6,  /* missing key / tensor / file */
    SOV_ERANGE = -7,     /* value out of range (context full, ...) */
    SOV_EBUSY = -8,      /* no room now (queue full, draining); try later */
};

/* Records a printf-style message for the calling thread and returns code,
 * so callers can write `return err_set(SOV_EFORMAT, "...")`. */
int err_set(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Message of the last err_set() on this thread ("" if none). Valid until the
 * next err_set() on the same thread. */
const char *err_msg(void);

/* Short name of a code, e.g. "format error". */
const char *err_name(int code);

#endif
