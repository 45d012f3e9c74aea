#include "progress.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define LABEL_MAX 40 /* visible label characters at most */

struct progress {
    FILE *f;
    int width;          /* fixed width, or 0: ask the terminal at each draw */
    unsigned flags;
    char label[128];
    _Atomic uint64_t done;
    uint64_t base, total;
    double t_open, t0;  /* when opened (the first-draw delay); start of the phase (the rate) */
    double last;        /* last draw */
    _Atomic double next; /* no draw before this time (checked without the lock) */
    bool drawn;
    pthread_mutex_t mu; /* one drawer at a time; label/base/total change under it */
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- text ------------------------------------------------------------------ */

static void fmt_size(char *b, size_t cap, uint64_t v)
{
    if (v < 1024)
        snprintf(b, cap, "%llu B", (unsigned long long)v);
    else if (v < (1ULL << 20))
        snprintf(b, cap, "%.1f KiB", (double)v / 1024.0);
    else if (v < (1ULL << 30))
        snprintf(b, cap, "%.1f MiB", (double)v / 1048576.0);
    else
        snprintf(b, cap, "%.2f GiB", (double)v / 1073741824.0);
}

static void fmt_time(char *b, size_t cap, double s)
{
    if (s < 0)
        s = 0;
    if (s > 359999)
        s = 359999;
    unsigned t = (unsigned)(s + 0.5);
    if (t >= 3600)
        snprintf(b, cap, "%u:%02u:%02u", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(b, cap, "%u:%02u", t / 60, t % 60);
}

size_t progress_format(char *buf, size_t cap, int width, const char *label, uint64_t done, uint64_t base,
                       uint64_t total, double elapsed, unsigned flags, bool final)
{
    if (!buf || cap == 0)
        return 0;
    buf[0] = 0;
    if (width < 20)
        width = 20;
    size_t vis = (size_t)width - 1 < cap - 1 ? (size_t)width - 1 : cap - 1; /* visible characters at most */
    bool bytes = flags & PROGRESS_BYTES;
    if (total && done > total)
        total = done;

    /* the right side: counts, rate, ETA or elapsed time */
    char right[160], a[32], b[32], r[48] = "", t[32] = "";
    if (bytes) {
        fmt_size(a, sizeof a, done);
        fmt_size(b, sizeof b, total);
    } else {
        snprintf(a, sizeof a, "%llu", (unsigned long long)done);
        snprintf(b, sizeof b, "%llu", (unsigned long long)total);
    }
    double rate = elapsed > 0.05 && done > base ? (double)(done - base) / elapsed : 0;
    if (rate > 0) {
        if (bytes) {
            char s[32];
            fmt_size(s, sizeof s, (uint64_t)rate);
            snprintf(r, sizeof r, "  %s/s", s);
        } else {
            snprintf(r, sizeof r, "  %.1f/s", rate);
        }
    }
    if (final) {
        char e[24];
        if (elapsed < 60)
            snprintf(e, sizeof e, "%.1f s", elapsed);
        else
            fmt_time(e, sizeof e, elapsed);
        snprintf(t, sizeof t, "  in %s", e);
    } else if (total && rate > 0) {
        char e[24];
        fmt_time(e, sizeof e, (double)(total - done) / rate);
        snprintf(t, sizeof t, "  ETA %s", e);
    }

    /* the left side: label and percentage */
    char left[LABEL_MAX + 16];
    int ll = 0;
    if (label && *label) {
        size_t k = strlen(label);
        if (k > LABEL_MAX)
            ll = snprintf(left, sizeof left, "...%s", label + k - (LABEL_MAX - 3));
        else
            ll = snprintf(left, sizeof left, "%s", label);
    } else {
        left[0] = 0;
    }
    if (total)
        ll += snprintf(left + ll, sizeof left - (size_t)ll, "%s%3d%%", ll ? " " : "",
                       (int)(100.0 * (double)done / (double)total));

    /* what does not fit goes: first the ETA / time, then the rate */
    for (int drop = 0; drop < 3; drop++) {
        const char *rr = drop >= 2 ? "" : r, *tt = drop >= 1 ? "" : t;
        if (total)
            snprintf(right, sizeof right, " %s%s%s%s%s", final && done == total ? "" : a,
                     final && done == total ? "" : " / ", b, rr, tt);
        else
            snprintf(right, sizeof right, " %s%s%s", a, rr, tt);
        if ((size_t)ll + strlen(right) <= vis)
            break;
    }

    size_t n = (size_t)ll + strlen(right);
    size_t out = 0;
    #define PUT(s, k) do { size_t k_ = (k); if (out + k_ > vis) k_ = vis - out; memcpy(buf + out, (s), k_); out += k_; } while (0)
    PUT(left, (size_t)ll);
    if (total && n + 4 + 10 <= vis) { /* " [" + at least 10 cells + "]" */
        size_t cells = vis - n - 3;
        if (cells > 50)
            cells = 50;
        size_t full = (size_t)((double)cells * (double)done / (double)total);
        PUT(" [", 2);
        for (size_t i = 0; i < cells && out < vis; i++)
            buf[out++] = i < full ? '=' : (i == full ? '>' : ' ');
        PUT("]", 1);
    }
    PUT(right, strlen(right));
    #undef PUT
    buf[out] = 0;
    return out;
}

/* ---- the bar ---------------------------------------------------------------- */

static int term_width(FILE *f)
{
    struct winsize ws;
    if (ioctl(fileno(f), TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20)
        return ws.ws_col > 400 ? 400 : ws.ws_col;
    return 80;
}

/* Draws the line; the caller holds p->mu. */
static void draw(progress *p, double t, bool final)
{
    char line[512];
    int w = p->width ? p->width : term_width(p->f);
    progress_format(line, sizeof line, w, p->label, atomic_load(&p->done), p->base, p->total, t - p->t0, p->flags,
                    final);
    fprintf(p->f, "\r%s\033[K%s", line, final ? "\n" : "");
    fflush(p->f);
    p->drawn = true;
    p->last = t;
}

static void maybe_draw(progress *p)
{
    double t0 = now();
    if (!(p->flags & PROGRESS_NOW) && t0 < atomic_load_explicit(&p->next, memory_order_relaxed))
        return;
    if (pthread_mutex_trylock(&p->mu) != 0)
        return; /* someone is drawing: this update shows in the next draw */
    double t = now();
    if (p->flags & PROGRESS_NOW)
        draw(p, t, false);
    else if (p->drawn ? t - p->last >= PROGRESS_INTERVAL : t - p->t_open >= PROGRESS_DELAY)
        draw(p, t, false);
    atomic_store_explicit(&p->next, p->drawn ? p->last + PROGRESS_INTERVAL : p->t_open + PROGRESS_DELAY,
                          memory_order_relaxed);
    pthread_mutex_unlock(&p->mu);
}

progress *progress_open(FILE *f, int width, const char *label, uint64_t total, unsigned flags)
{
    progress *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->f = f;
    p->width = width;
    p->flags = flags;
    pthread_mutex_init(&p->mu, NULL);
    snprintf(p->label, sizeof p->label, "%s", label ? label : "");
    atomic_store(&p->done, 0);
    p->total = total;
    p->t_open = p->t0 = now();
    atomic_store(&p->next, p->t_open + PROGRESS_DELAY);
    if (flags & PROGRESS_NOW) {
        pthread_mutex_lock(&p->mu);
        draw(p, p->t0, false);
        pthread_mutex_unlock(&p->mu);
    }
    return p;
}

progress *progress_new(const char *label, uint64_t total, unsigned flags)
{
    if (!isatty(STDERR_FILENO))
        return NULL;
    const char *term = getenv("TERM");
    if (term && !strcmp(term, "dumb"))
        return NULL;
    return progress_open(stderr, 0, label, total, flags & PROGRESS_BYTES);
}

void progress_reset(progress *p, const char *label, uint64_t done, uint64_t total)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    if (label)
        snprintf(p->label, sizeof p->label, "%s", label);
    atomic_store(&p->done, done);
    p->base = done;
    p->total = total;
    p->t0 = now();
    if (p->drawn || (p->flags & PROGRESS_NOW)) /* a visible bar shows the new phase at once */
        draw(p, p->t0, false);
    pthread_mutex_unlock(&p->mu);
}

void progress_set(progress *p, uint64_t done)
{
    if (!p)
        return;
    atomic_store(&p->done, done);
    maybe_draw(p);
}

void progress_add(progress *p, uint64_t n)
{
    if (!p)
        return;
    atomic_fetch_add(&p->done, n);
    maybe_draw(p);
}

void progress_done(progress *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    if (p->drawn)
        draw(p, now(), true);
    pthread_mutex_unlock(&p->mu);
    pthread_mutex_destroy(&p->mu);
    free(p);
}
