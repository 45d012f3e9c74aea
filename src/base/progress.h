/* progress: a one-line progress bar on stderr for long operations (model
 * loading, convert, quantize, synth, pull).
 *
 * progress_new() gives a bar only when stderr is a terminal (and TERM is not
 * "dumb"); otherwise it returns NULL, and every function here accepts NULL
 * and does nothing, so callers pass the pointer down without checking and a
 * non-terminal run prints nothing at all. The bar is first drawn once the
 * operation has run for PROGRESS_DELAY seconds (quick ones leave no trace),
 * then redrawn at most every PROGRESS_INTERVAL seconds, in place ("\r" and
 * erase to the end of the line); progress_done() draws the final state and
 * ends the line with a newline if anything was drawn. Updates may come from
 * several threads; a thread that finds another one drawing skips its redraw. */
#ifndef SOV_PROGRESS_H
#define SOV_PROGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define PROGRESS_DELAY 0.25   /* seconds before the first draw */
#define PROGRESS_INTERVAL 0.1 /* seconds between redraws (<= 10 a second) */

enum {
    PROGRESS_BYTES = 1, /* units are bytes: sizes in KiB/MiB/GiB and a rate per second */
    PROGRESS_NOW = 2,   /* progress_open only: draw at once and on every update (tests) */
};

typedef struct progress progress;

/* A bar labelled `label` (copied; may be NULL) for `total` units (0: not
 * known yet; the bar then shows the count and rate only), drawn on stderr.
 * NULL when stderr is not a terminal, TERM is "dumb", or out of memory.
 * flags: PROGRESS_BYTES. Release with progress_done. */
progress *progress_new(const char *label, uint64_t total, unsigned flags);

/* As progress_new, but drawn on f whatever it is, `width` columns wide
 * (0: the terminal's width when f is one, else 80). For tests and callers
 * that chose the stream themselves. NULL when out of memory. */
progress *progress_open(FILE *f, int width, const char *label, uint64_t total, unsigned flags);

/* Starts a new phase on the same line: label (NULL keeps the old one), the
 * count so far `done` (the rate counts only what comes after it, e.g. the
 * bytes of a resumed download) and `total` (0: unknown). */
void progress_reset(progress *p, const char *label, uint64_t done, uint64_t total);

/* Sets the count / adds n to it, redrawing if the interval has passed. */
void progress_set(progress *p, uint64_t done);
void progress_add(progress *p, uint64_t n);

/* Draws the final state (if the bar was ever drawn, or PROGRESS_NOW) and
 * ends the line, then frees p. NULL is fine. */
void progress_done(progress *p);

/* The text of one bar line into buf (cap bytes, NUL-terminated, at most
 * width - 1 visible characters): label, percentage and bar when total > 0,
 * done / total (sizes with PROGRESS_BYTES), the rate of (done - base) over
 * elapsed seconds, and an ETA, or the elapsed time when final. Returns the
 * length written. Pure: used by the bar and by the tests. */
size_t progress_format(char *buf, size_t cap, int width, const char *label, uint64_t done, uint64_t base,
                       uint64_t total, double elapsed, unsigned flags, bool final);

#endif
