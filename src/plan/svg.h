/* svg: a small SVG chart writer (the charts of the plan report): a plot
 * area with linear, log10 or categorical axes (grid, ticks, tick labels,
 * axis titles), polylines, points with labels, bars, horizontal rules, a
 * legend, and number formatting for tick labels and tables. Every text and
 * attribute is XML-escaped; an element with a non-finite coordinate is
 * left out. Output goes straight to a FILE: the caller checks ferror(). */
#ifndef SOV_PLAN_SVG_H
#define SOV_PLAN_SVG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

typedef enum svg_fmt {
    SVG_SI = 0,          /* 3 significant digits with a k / M / G / T prefix: "1.23 k", "40 G" */
    SVG_GROUPED = 1,     /* thousands separated: "1,234" (>= 100: no decimals; else 2) */
} svg_fmt;

typedef struct svg_axis {
    double lo, hi;               /* data range (log: 0 < lo < hi) */
    bool log;                    /* log10 scale */
    const char *title;           /* axis title (may be NULL) */
    int fmt;                     /* svg_fmt of the tick labels */
    const char *prefix, *unit;   /* tick label prefix ("$") and unit ("B": "40 GB"); may be NULL */
    const char *const *cats;     /* categorical axis: n_cats names, value i at slot i's centre */
    int n_cats;
    double title_off;            /* x axis: the title's baseline below the plot, px (0: 38) */
} svg_axis;

typedef struct svg_chart {
    FILE *f;
    char id[40];
    double w, h;                 /* picture size, px */
    double l, r, t, b;           /* plot area: left, right, top, bottom edge, px */
    svg_axis x, y;               /* set before svg_axes / any data element */
} svg_chart;

/* XML-escapes s (& < > " ') to f; NULL writes nothing. */
void svg_esc(FILE *f, const char *s);

/* Formats v as kind (svg_fmt) with prefix and unit (either may be NULL)
 * into buf and returns buf; a non-finite v gives "n/a". */
const char *svg_num(char *buf, size_t cap, double v, int kind, const char *prefix, const char *unit);

/* Widens [*lo, *hi] to round numbers: log, to 1-2-5 x 10^k bounds; linear,
 * to multiples of the tick step. lo > hi is swapped, lo == hi widened;
 * for log, non-positive bounds become 1 (and 10). */
void svg_nice(double *lo, double *hi, bool log);

/* Starts an <svg> picture of w x h px named id (the CSS class "chart"),
 * with a <title> and a <desc>, and the plot area inset by the margins
 * ml, mr, mt, mb. Sets every field of *c except the axes (zeroed). */
void svg_begin(svg_chart *c, FILE *f, const char *id, double w, double h, double ml, double mr, double mt,
               double mb, const char *title, const char *desc);

/* Closes the picture. */
void svg_end(svg_chart *c);

/* Pixel position of data value v on the x / y axis (log: v <= 0 maps to
 * the low end; categorical: v is the slot index). */
double svg_x(const svg_chart *c, double v);
double svg_y(const svg_chart *c, double v);

/* Width of one categorical x slot, px (the plot width if x is not categorical). */
double svg_slot(const svg_chart *c);

/* Draws the frame, grid lines, ticks, tick labels and axis titles. */
void svg_axes(svg_chart *c);

/* Confines what follows (until svg_clip_end) to the plot area. */
void svg_clip_begin(svg_chart *c);
void svg_clip_end(svg_chart *c);

/* A polyline through the n data points (xs[i], ys[i]); a point that is not
 * finite (or <= 0 on a log axis) breaks the line. width in px; dashed:
 * a dash pattern. tip (may be NULL) becomes its tooltip. */
void svg_line(svg_chart *c, const double *xs, const double *ys, int n, const char *colour, double width,
              bool dashed, const char *tip);

/* A point of radius r px at data (x, y), filled or a ring, with a tooltip
 * tip and a label to its upper right (either may be NULL). */
void svg_point(svg_chart *c, double x, double y, double r, const char *colour, bool filled, const char *tip,
               const char *label);

/* A bar from pixel column px0 to px1, data y0 to y1, with a tooltip (may be NULL). */
void svg_bar(svg_chart *c, double px0, double px1, double y0, double y1, const char *colour, const char *tip);

/* A horizontal rule across the plot area at data y. */
void svg_hrule(svg_chart *c, double y, const char *colour, bool dashed);

/* Text at pixel (px, py), anchor "start" / "middle" / "end", rotated by
 * deg degrees around that point, CSS class cls (may be NULL). */
void svg_text(svg_chart *c, double px, double py, const char *anchor, double deg, const char *cls,
              const char *text);

/* Size (px) of the legend box svg_legend draws for these n names in cols
 * columns (cols < 1: 1). */
void svg_legend_size(const char *const *names, int n, int cols, double *w, double *h);

/* A legend box at pixel (px, py) (its top left), the n entries in cols
 * columns, row by row: a swatch (a line, dashed where dashed[i]; dashed
 * may be NULL) in colours[i], then names[i]. */
void svg_legend(svg_chart *c, double px, double py, int cols, const char *const *names,
                const char *const *colours, const bool *dashed, int n);

/* Spreads n label positions pos[] (px, any order) so that neighbours are
 * at least gap px apart, moving each as little as this greedy pass allows
 * and keeping them within [lo, hi] where there is room. */
void svg_spread(double *pos, int n, double gap, double lo, double hi);

#endif
