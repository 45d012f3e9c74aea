/* svg: the chart writer of the plan report (see svg.h). */
#include "svg.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CHAR_W 7.0 /* rough width of a character of the 12 px sans-serif legend text (an upper estimate) */

void svg_esc(FILE *f, const char *s)
{
    if (!s)
        return;
    for (; *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&#39;", f); break;
        default: fputc(*s, f);
        }
    }
}

/* "1234567" -> "1,234,567" (digits only, after an optional '-'). */
static void group_digits(char *buf, size_t cap, const char *digits)
{
    size_t o = 0, n = strlen(digits);
    size_t i = 0;
    if (digits[0] == '-') {
        if (o + 1 < cap)
            buf[o++] = '-';
        i = 1;
    }
    size_t nd = n - i;
    for (; i < n; i++) {
        if (o + 2 >= cap)
            break;
        buf[o++] = digits[i];
        size_t left = n - i - 1;
        if (left > 0 && left % 3 == 0 && nd > 3)
            buf[o++] = ',';
    }
    buf[o] = 0;
}

const char *svg_num(char *buf, size_t cap, double v, int kind, const char *prefix, const char *unit)
{
    if (!cap)
        return buf;
    if (!isfinite(v)) {
        snprintf(buf, cap, "n/a");
        return buf;
    }
    const char *sign = v < 0 ? "-" : "";
    double a = fabs(v);
    char m[64];
    if (kind == SVG_GROUPED) {
        if (a == 0) {
            snprintf(m, sizeof m, "0");
            sign = "";
        } else if (a >= 100) {
            char d[48];
            snprintf(d, sizeof d, "%.0f", a);
            group_digits(m, sizeof m, d);
        } else {
            snprintf(m, sizeof m, "%.2f", a);
        }
        snprintf(buf, cap, "%s%s%s%s%s", sign, prefix ? prefix : "", m, unit && *unit ? " " : "",
                 unit ? unit : "");
        return buf;
    }
    static const char *const si[] = {"", "k", "M", "G", "T", "P", "E"};
    int k = 0;
    while (a >= 1000 && k < 6) {
        a /= 1000;
        k++;
    }
    snprintf(m, sizeof m, "%.3g", a);
    if (strtod(m, NULL) >= 1000 && k < 6) { /* 999.7 rounds up to the next prefix */
        a /= 1000;
        k++;
        snprintf(m, sizeof m, "%.3g", a);
    }
    if (a == 0)
        snprintf(m, sizeof m, "0");
    const char *u = unit ? unit : "";
    const char *sp = (*si[k] || *u) ? " " : "";
    snprintf(buf, cap, "%s%s%s%s%s%s", sign, prefix ? prefix : "", m, sp, si[k], u);
    return buf;
}

/* The 1-2-5 x 10^k step nearest above raw. */
static double nice_step(double raw)
{
    if (!(raw > 0) || !isfinite(raw))
        return 1;
    double p = pow(10, floor(log10(raw)));
    double m = raw / p;
    return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
}

/* The largest (down) or smallest (up) 1-2-5 x 10^k bound of v > 0. */
static double nice_bound(double v, bool up)
{
    double p = pow(10, floor(log10(v)));
    static const double ms[] = {1, 2, 5, 10};
    if (up) {
        for (int i = 0; i < 4; i++)
            if (ms[i] * p >= v * (1 - 1e-9))
                return ms[i] * p;
        return 10 * p;
    }
    for (int i = 3; i >= 0; i--)
        if (ms[i] * p <= v * (1 + 1e-9))
            return ms[i] * p;
    return p;
}

void svg_nice(double *lo, double *hi, bool log)
{
    double a = *lo, b = *hi;
    if (!isfinite(a))
        a = log ? 1 : 0;
    if (!isfinite(b))
        b = a + 1;
    if (a > b) {
        double t = a;
        a = b;
        b = t;
    }
    if (log) {
        if (!(a > 0))
            a = b > 0 ? b / 10 : 1;
        if (!(b > a))
            b = a * 10;
        *lo = nice_bound(a, false);
        *hi = nice_bound(b, true);
        return;
    }
    if (b == a) {
        a -= a == 0 ? 1 : fabs(a) / 2;
        b += b == 0 ? 1 : fabs(b) / 2;
        if (a > 0 && *lo >= 0)
            a = 0;
    }
    double step = nice_step((b - a) / 6);
    *lo = floor(a / step + 1e-9) * step;
    *hi = ceil(b / step - 1e-9) * step;
}

/* Both coordinates finite. */
static bool ok2(double a, double b) { return isfinite(a) && isfinite(b); }

void svg_begin(svg_chart *c, FILE *f, const char *id, double w, double h, double ml, double mr, double mt,
               double mb, const char *title, const char *desc)
{
    memset(c, 0, sizeof *c);
    c->f = f;
    snprintf(c->id, sizeof c->id, "%s", id ? id : "chart");
    c->w = w;
    c->h = h;
    c->l = ml;
    c->r = w - mr;
    c->t = mt;
    c->b = h - mb;
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"");
    svg_esc(f, c->id);
    fprintf(f, "\" class=\"chart\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" role=\"img\""
               " aria-labelledby=\"", w, h, w, h);
    svg_esc(f, c->id);
    fprintf(f, "-title\">\n<title id=\"");
    svg_esc(f, c->id);
    fprintf(f, "-title\">");
    svg_esc(f, title);
    fprintf(f, "</title>\n<desc>");
    svg_esc(f, desc);
    fprintf(f, "</desc>\n<defs><clipPath id=\"");
    svg_esc(f, c->id);
    fprintf(f, "-clip\"><rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"/></clipPath></defs>\n",
            c->l, c->t, c->r - c->l, c->b - c->t);
    fprintf(f, "<rect x=\"0\" y=\"0\" width=\"%.0f\" height=\"%.0f\" fill=\"#ffffff\"/>\n", w, h);
}

void svg_end(svg_chart *c) { fprintf(c->f, "</svg>\n"); }

static double frac(const svg_axis *a, double v)
{
    if (a->n_cats > 0)
        return (v + 0.5) / a->n_cats;
    if (a->log) {
        if (!(v > 0))
            return 0;
        return (log10(v) - log10(a->lo)) / (log10(a->hi) - log10(a->lo));
    }
    return (v - a->lo) / (a->hi - a->lo);
}

double svg_x(const svg_chart *c, double v) { return c->l + frac(&c->x, v) * (c->r - c->l); }

double svg_y(const svg_chart *c, double v) { return c->b - frac(&c->y, v) * (c->b - c->t); }

double svg_slot(const svg_chart *c) { return (c->r - c->l) / (c->x.n_cats > 0 ? c->x.n_cats : 1); }

/* Calls fn(c, value, labelled) for each tick of axis a. */
static void ticks(svg_chart *c, const svg_axis *a, void (*fn)(svg_chart *, const svg_axis *, double, bool))
{
    if (a->n_cats > 0) {
        for (int i = 0; i < a->n_cats; i++)
            fn(c, a, i, true);
        return;
    }
    if (!(a->hi > a->lo))
        return;
    if (a->log) {
        if (!(a->lo > 0))
            return;
        double dec = log10(a->hi / a->lo);
        int k0 = (int)floor(log10(a->lo)), k1 = (int)ceil(log10(a->hi));
        for (int k = k0; k <= k1; k++) {
            for (int m = 1; m <= 9; m++) {
                double v = m * pow(10, k);
                if (v < a->lo * (1 - 1e-9) || v > a->hi * (1 + 1e-9))
                    continue;
                bool lab = m == 1 || (dec <= 3 && (m == 2 || m == 5));
                if (lab || dec <= 6)
                    fn(c, a, v, lab);
            }
        }
        return;
    }
    double step = nice_step((a->hi - a->lo) / 6);
    double k0 = ceil(a->lo / step - 1e-9);
    for (int i = 0; i < 100; i++) {
        double v = (k0 + i) * step;
        if (v > a->hi + step * 1e-9)
            break;
        fn(c, a, fabs(v) < step * 1e-9 ? 0 : v, true);
    }
}

static void tick_x(svg_chart *c, const svg_axis *a, double v, bool lab)
{
    double x = svg_x(c, v);
    if (a->n_cats == 0)
        fprintf(c->f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"1\"/>\n",
                x, c->t, x, c->b, lab ? "#dddddd" : "#f0f0f0");
    if (!lab)
        return;
    fprintf(c->f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#444444\"/>\n", x, c->b, x,
            c->b + 5);
    if (a->n_cats > 0) {
        svg_text(c, x + 3, c->b + 12, "end", -35, "tick", a->cats[(int)v]);
        return;
    }
    char s[64];
    svg_text(c, x, c->b + 18, "middle", 0, "tick", svg_num(s, sizeof s, v, a->fmt, a->prefix, a->unit));
}

static void tick_y(svg_chart *c, const svg_axis *a, double v, bool lab)
{
    double y = svg_y(c, v);
    fprintf(c->f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"1\"/>\n", c->l,
            y, c->r, y, lab ? "#dddddd" : "#f0f0f0");
    if (!lab)
        return;
    fprintf(c->f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#444444\"/>\n", c->l - 5, y, c->l,
            y);
    char s[64];
    svg_text(c, c->l - 8, y + 4, "end", 0, "tick", svg_num(s, sizeof s, v, a->fmt, a->prefix, a->unit));
}

void svg_axes(svg_chart *c)
{
    FILE *f = c->f;
    fprintf(f, "<g class=\"axes\">\n");
    ticks(c, &c->y, tick_y);
    ticks(c, &c->x, tick_x);
    fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#444444\"/>\n",
            c->l, c->t, c->r - c->l, c->b - c->t);
    if (c->x.title)
        svg_text(c, (c->l + c->r) / 2, c->b + (c->x.title_off > 0 ? c->x.title_off : 38), "middle", 0, "atitle",
                 c->x.title);
    if (c->y.title)
        svg_text(c, 16, (c->t + c->b) / 2, "middle", -90, "atitle", c->y.title);
    fprintf(f, "</g>\n");
}

void svg_clip_begin(svg_chart *c)
{
    fprintf(c->f, "<g clip-path=\"url(#");
    svg_esc(c->f, c->id);
    fprintf(c->f, "-clip)\">\n");
}

void svg_clip_end(svg_chart *c) { fprintf(c->f, "</g>\n"); }

static bool on_axis(const svg_axis *a, double v) { return isfinite(v) && (!a->log || v > 0); }

static void tip_of(FILE *f, const char *tip)
{
    if (!tip)
        return;
    fprintf(f, "<title>");
    svg_esc(f, tip);
    fprintf(f, "</title>");
}

void svg_line(svg_chart *c, const double *xs, const double *ys, int n, const char *colour, double width,
              bool dashed, const char *tip)
{
    FILE *f = c->f;
    int i = 0;
    while (i < n) {
        while (i < n && !(on_axis(&c->x, xs[i]) && on_axis(&c->y, ys[i])))
            i++;
        int j = i;
        while (j < n && on_axis(&c->x, xs[j]) && on_axis(&c->y, ys[j]))
            j++;
        if (j - i >= 2) {
            fprintf(f, "<polyline fill=\"none\" stroke=\"");
            svg_esc(f, colour);
            fprintf(f, "\" stroke-width=\"%.1f\"%s stroke-linejoin=\"round\" points=\"", width,
                    dashed ? " stroke-dasharray=\"7 5\"" : "");
            for (int k = i; k < j; k++)
                fprintf(f, "%s%.1f,%.1f", k > i ? " " : "", svg_x(c, xs[k]), svg_y(c, ys[k]));
            fprintf(f, "\">");
            tip_of(f, tip);
            fprintf(f, "</polyline>\n");
        }
        i = j;
    }
}

void svg_point(svg_chart *c, double x, double y, double r, const char *colour, bool filled, const char *tip,
               const char *label)
{
    if (!on_axis(&c->x, x) || !on_axis(&c->y, y))
        return;
    FILE *f = c->f;
    double px = svg_x(c, x), py = svg_y(c, y);
    fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\" stroke=\"", px, py, r);
    svg_esc(f, colour);
    fprintf(f, "\" stroke-width=\"1.6\" fill=\"");
    svg_esc(f, filled ? colour : "#ffffff");
    fprintf(f, "\">");
    tip_of(f, tip);
    fprintf(f, "</circle>\n");
    if (label)
        svg_text(c, px + r + 3, py - r - 2, "start", 0, "lbl", label);
}

void svg_bar(svg_chart *c, double px0, double px1, double y0, double y1, const char *colour, const char *tip)
{
    if (!on_axis(&c->y, y0) || !on_axis(&c->y, y1) || !ok2(px0, px1))
        return;
    double a = svg_y(c, y0), b = svg_y(c, y1);
    double top = a < b ? a : b, hgt = fabs(a - b);
    FILE *f = c->f;
    fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"", px0 < px1 ? px0 : px1, top,
            fabs(px1 - px0), hgt);
    svg_esc(f, colour);
    fprintf(f, "\">");
    tip_of(f, tip);
    fprintf(f, "</rect>\n");
}

void svg_hrule(svg_chart *c, double y, const char *colour, bool dashed)
{
    if (!on_axis(&c->y, y))
        return;
    double py = svg_y(c, y);
    fprintf(c->f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"", c->l, py, c->r, py);
    svg_esc(c->f, colour);
    fprintf(c->f, "\" stroke-width=\"1.8\"%s/>\n", dashed ? " stroke-dasharray=\"7 5\"" : "");
}

void svg_text(svg_chart *c, double px, double py, const char *anchor, double deg, const char *cls,
              const char *text)
{
    if (!ok2(px, py) || !text)
        return;
    FILE *f = c->f;
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"", px, py);
    svg_esc(f, anchor ? anchor : "start");
    fprintf(f, "\"");
    if (deg != 0)
        fprintf(f, " transform=\"rotate(%.1f %.1f %.1f)\"", deg, px, py);
    if (cls) {
        fprintf(f, " class=\"");
        svg_esc(f, cls);
        fprintf(f, "\"");
    }
    fprintf(f, ">");
    svg_esc(f, text);
    fprintf(f, "</text>\n");
}

#define LEG_ROW 17.0

/* Width of one legend column for names of at most wmax characters. */
static double leg_col_w(size_t wmax) { return 44 + CHAR_W * (double)wmax; }

void svg_legend_size(const char *const *names, int n, int cols, double *w, double *h)
{
    if (cols < 1)
        cols = 1;
    if (cols > n)
        cols = n > 0 ? n : 1;
    size_t wmax = 0;
    for (int i = 0; i < n; i++)
        if (names[i] && strlen(names[i]) > wmax)
            wmax = strlen(names[i]);
    int rows = (n + cols - 1) / cols;
    *w = n > 0 ? leg_col_w(wmax) * cols : 0;
    *h = n > 0 ? LEG_ROW * rows + 8 : 0;
}

void svg_legend(svg_chart *c, double px, double py, int cols, const char *const *names,
                const char *const *colours, const bool *dashed, int n)
{
    if (n <= 0)
        return;
    if (cols < 1)
        cols = 1;
    if (cols > n)
        cols = n;
    double w, h;
    svg_legend_size(names, n, cols, &w, &h);
    double cw = w / cols;
    FILE *f = c->f;
    fprintf(f, "<g class=\"legend\">\n<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#ffffff\""
               " fill-opacity=\"0.92\" stroke=\"#bbbbbb\"/>\n", px, py, w, h);
    for (int i = 0; i < n; i++) {
        double x = px + cw * (i % cols), y = py + 4 + LEG_ROW * (i / cols) + LEG_ROW / 2;
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"", x + 6, y, x + 32, y);
        svg_esc(f, colours[i]);
        fprintf(f, "\" stroke-width=\"3\"%s/>\n", dashed && dashed[i] ? " stroke-dasharray=\"6 4\"" : "");
        svg_text(c, x + 38, y + 4, "start", 0, "leg", names[i]);
    }
    fprintf(f, "</g>\n");
}

static int cmp_dbl_ptr(const void *a, const void *b)
{
    double x = **(double *const *)a, y = **(double *const *)b;
    return (x > y) - (x < y);
}

void svg_spread(double *pos, int n, double gap, double lo, double hi)
{
    if (n <= 1) {
        if (n == 1 && pos[0] < lo)
            pos[0] = lo;
        if (n == 1 && pos[0] > hi)
            pos[0] = hi;
        return;
    }
    double **p = malloc((size_t)n * sizeof *p);
    if (!p)
        return; /* cosmetic: the labels stay where they are */
    for (int i = 0; i < n; i++)
        p[i] = &pos[i];
    qsort(p, (size_t)n, sizeof *p, cmp_dbl_ptr);
    if (*p[0] < lo)
        *p[0] = lo;
    for (int i = 1; i < n; i++)
        if (*p[i] < *p[i - 1] + gap)
            *p[i] = *p[i - 1] + gap;
    if (*p[n - 1] > hi) {
        *p[n - 1] = hi;
        for (int i = n - 2; i >= 0; i--)
            if (*p[i] > *p[i + 1] - gap)
                *p[i] = *p[i + 1] - gap;
    }
    free(p);
}
