/* html: the self-contained HTML report of `sov plan --html FILE` (see html.h).
 * Inline CSS and SVG only; the page is XHTML-clean so that it also parses
 * as XML (tests check it that way). */
#include "html.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../base/err.h"
#include "svg.h"

/* Distinct colours (Okabe-Ito first), one per machine, then per option. */
static const char *const PAL[] = {"#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00",
                                  "#56b4e9", "#7a5195", "#8c564b", "#333333", "#b8860b"};
#define N_PAL ((int)(sizeof PAL / sizeof PAL[0]))

typedef struct rep {
    FILE *f;
    const plan_html_in *in;
    const char *title, *quant;
    plan_prices prices;
    const char *money;        /* "$", "€", or "EUR " */
    int64_t ctx, n_seq;
    double ctx_avg, horizon;
    plan_hw none;             /* stands in for a machine where only hw-independent figures are wanted */
} rep;

static void esc(rep *r, const char *s) { svg_esc(r->f, s); }

/* An escaped text in an element: <tag>text</tag>. */
static void el(rep *r, const char *tag, const char *text)
{
    fprintf(r->f, "<%s>", tag);
    esc(r, text);
    fprintf(r->f, "</%s>", tag);
}

static const char *si(char *b, size_t cap, double v, const char *unit) { return svg_num(b, cap, v, SVG_SI, NULL, unit); }

static const char *cash(rep *r, char *b, size_t cap, double v) { return svg_num(b, cap, v, SVG_GROUPED, r->money, NULL); }

static const char *hw_colour(int i) { return PAL[i % N_PAL]; }

/* The fit of m on hw (or on no machine: usable 0). */
static plan_fit fit_of(rep *r, const plan_model *m, const plan_hw *hw)
{
    return plan_fit_of(m, r->quant, r->ctx, r->n_seq, r->in->kv_bpe, hw ? hw : &r->none, r->in->reserve_bytes);
}

static plan_speed speed_of(rep *r, const plan_model *m, const plan_hw *hw)
{
    return plan_speed_of(m, r->quant, r->ctx_avg, r->n_seq, r->in->kv_bpe, hw);
}

/* Bytes one decoded token reads (does not depend on the machine). */
static double bytes_token(rep *r, const plan_model *m)
{
    plan_hw h = r->none;
    h.bw = 1e12;
    return speed_of(r, m, &h).bytes_token;
}

static const char *kv_name(double bpe)
{
    if (bpe == 4)
        return "f32";
    if (bpe == 2)
        return "f16";
    if (bpe > 1 && bpe < 1.2)
        return "q8_0";
    if (bpe > 0.5 && bpe < 0.6)
        return "q4_0";
    return "";
}

/* ---- page head and settings ---- */

static const char CSS[] =
    "body{font-family:system-ui,-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;color:#1f2328;"
    "background:#ffffff;margin:0 auto;padding:18px 22px;max-width:1120px;line-height:1.4;font-size:14px}\n"
    "h1{font-size:24px;margin:4px 0 2px}h2{font-size:18px;margin:26px 0 6px;border-bottom:1px solid #d0d7de;"
    "padding-bottom:3px}\n"
    "table{border-collapse:collapse;margin:6px 0 10px;font-size:12.5px}\n"
    "th,td{border:1px solid #d0d7de;padding:3px 7px;text-align:left;vertical-align:top}\n"
    "th{background:#f3f5f7}td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}"
    "td.id{white-space:nowrap}\n"
    "td.yes{color:#1a7f37;font-weight:600;text-align:center}td.no{color:#cf222e;text-align:center}\n"
    "tr.nowhere td{background:#fff5f5}\n"
    "figure{margin:8px 0 14px}figcaption{font-size:12.5px;color:#444c56;max-width:900px}\n"
    "svg.chart{display:block;max-width:100%;height:auto;border:1px solid #e1e4e8}\n"
    "svg .tick{font-size:11px;fill:#333333}svg .atitle{font-size:12.5px;fill:#111111}\n"
    "svg .lbl{font-size:10.5px;fill:#222222}svg .leg{font-size:12px;fill:#111111}\n"
    "svg .note{font-size:12px;fill:#555555}svg .model{font-size:10.5px;fill:#333333}\n"
    "svg text{font-family:system-ui,-apple-system,'Segoe UI',Helvetica,Arial,sans-serif}\n"
    ".v0{color:#1a7f37;font-weight:700}.v1{color:#9a6700;font-weight:700}.v2{color:#cf222e;font-weight:700}"
    ".v3{color:#6e7781;font-weight:700}\n"
    "pre{margin:0;font-size:11.5px;white-space:pre-wrap}\n"
    "ul.src{font-size:12.5px;color:#444c56}p.note{font-size:12.5px;color:#6e4b00}\n"
    "footer{margin-top:28px;font-size:12px;color:#6e7781;border-top:1px solid #d0d7de;padding-top:6px}\n"
    "@media print{body{max-width:none;padding:0;font-size:11px}section,figure,tr{break-inside:avoid}"
    "svg.chart{border:none;width:100%}}\n";

static void head(rep *r)
{
    FILE *f = r->f;
    fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n"
               "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n<title>");
    esc(r, r->title);
    fprintf(f, "</title>\n<style>\n%s</style>\n</head>\n<body>\n<h1>", CSS);
    esc(r, r->title);
    fprintf(f, "</h1>\n<p>Capacity and economics from first principles: memory fit, the bandwidth roofline of "
               "decode, and what the same tokens would cost from a cloud API. Every figure is arithmetic on the "
               "profiles below; efficiencies are assumed unless marked calibrated.</p>\n");
}

static void settings(rep *r)
{
    FILE *f = r->f;
    const plan_html_in *in = r->in;
    const plan_prices *p = &r->prices;
    char a[64], b[64];
    fprintf(f, "<section id=\"settings\">\n<h2>Settings</h2>\n<table>\n");
    if (in->options_model) {
        fprintf(f, "<tr><th>options run</th><td>");
        esc(r, in->options_model);
        fprintf(f, "</td></tr>\n");
    }
    fprintf(f, "<tr><th>quant</th><td>");
    esc(r, r->quant);
    double bpw = plan_quant_bpw(r->quant);
    if (bpw > 0)
        fprintf(f, " (%.3f bytes per weight, %.2f bits)", bpw, bpw * 8);
    else
        fprintf(f, " (each model file&#39;s own bytes)");
    fprintf(f, "</td></tr>\n<tr><th>context</th><td>%s positions x %lld sequence%s (memory fit); "
               "%s positions on average per decoded token (speed)</td></tr>\n",
            svg_num(a, sizeof a, (double)r->ctx, SVG_GROUPED, NULL, NULL), (long long)r->n_seq,
            r->n_seq == 1 ? "" : "s", svg_num(b, sizeof b, r->ctx_avg, SVG_GROUPED, NULL, NULL));
    fprintf(f, "<tr><th>KV cache</th><td>%.3g bytes per element", in->kv_bpe);
    if (*kv_name(in->kv_bpe))
        fprintf(f, " (%s)", kv_name(in->kv_bpe));
    fprintf(f, "</td></tr>\n<tr><th>memory reserve</th><td>");
    if (in->reserve_bytes >= 0)
        fprintf(f, "%s on every machine", si(a, sizeof a, in->reserve_bytes, "B"));
    else
        fprintf(f, "each machine&#39;s own (table below)");
    fprintf(f, "</td></tr>\n<tr><th>cloud API prices</th><td>");
    fprintf(f, "%s per 1M input, ", cash(r, a, sizeof a, p->in_per_m));
    fprintf(f, "%s per 1M output tokens; %.3g input tokens per output token</td></tr>\n",
            cash(r, b, sizeof b, p->out_per_m), p->in_out_ratio);
    fprintf(f, "<tr><th>electricity</th><td>%s per kWh</td></tr>\n", cash(r, a, sizeof a, p->tariff_kwh));
    fprintf(f, "<tr><th>duty cycle</th><td>%.3g %% of the day generating</td></tr>\n", p->duty * 100);
    fprintf(f, "<tr><th>hardware written off over</th><td>%.3g months</td></tr>\n", p->amortize_months);
    fprintf(f, "<tr><th>cost horizon</th><td>%s days</td></tr>\n",
            svg_num(a, sizeof a, r->horizon, SVG_GROUPED, NULL, NULL));
    fprintf(f, "</table>\n");
    if (in->price_sources) {
        fprintf(f, "<p>Sources of the prices:</p>\n<ul class=\"src\">\n");
        for (int i = 0; i < 3; i++)
            if (in->price_sources[i]) {
                el(r, "li", in->price_sources[i]);
                fputc('\n', f);
            }
        fprintf(f, "</ul>\n");
    }
    fprintf(f, "</section>\n");
}

static void hw_table(rep *r)
{
    FILE *f = r->f;
    const plan_html_in *in = r->in;
    char a[64], b[64];
    fprintf(f, "<section id=\"hardware\">\n<h2>Hardware</h2>\n");
    if (in->n_hw == 0) {
        fprintf(f, "<p class=\"note\">No hardware profiles.</p>\n</section>\n");
        return;
    }
    fprintf(f, "<table>\n<tr><th>id</th><th>name</th><th>memory</th><th>bandwidth</th><th>FP16</th>"
               "<th>power load / idle</th><th>price</th><th>reserve</th><th>decode eff.</th><th>source</th></tr>\n");
    for (int i = 0; i < in->n_hw; i++) {
        const plan_hw *h = &in->hw[i];
        fprintf(f, "<tr><td class=\"id\"><span style=\"color:%s\">&#9632;</span> ", hw_colour(i));
        esc(r, h->id);
        fprintf(f, "</td><td>");
        esc(r, h->name);
        fprintf(f, "</td><td class=\"n\">%s</td>", si(a, sizeof a, h->mem_bytes, "B"));
        fprintf(f, "<td class=\"n\">%s/s</td>", si(a, sizeof a, h->bw, "B"));
        if (h->flops_f16 > 0)
            fprintf(f, "<td class=\"n\">%s</td>", si(a, sizeof a, h->flops_f16, "FLOP/s"));
        else
            fprintf(f, "<td class=\"n\">unknown</td>");
        fprintf(f, "<td class=\"n\">%.0f / %.0f W</td>", h->watts_load, h->watts_idle);
        if (h->price_hour > 0 && !(h->price > 0))
            fprintf(f, "<td class=\"n\">%s an hour</td>", cash(r, a, sizeof a, h->price_hour));
        else
            fprintf(f, "<td class=\"n\">%s</td>", cash(r, a, sizeof a, h->price));
        fprintf(f, "<td class=\"n\">%s</td>",
                si(b, sizeof b, in->reserve_bytes >= 0 ? in->reserve_bytes : h->reserve_bytes, "B"));
        fprintf(f, "<td class=\"n\">%.2f %s</td><td>", h->eff_decode, h->calibrated ? "calibrated" : "assumed");
        esc(r, h->source);
        fprintf(f, "</td></tr>\n");
    }
    fprintf(f, "</table>\n</section>\n");
}

/* ---- chart 1: decode speed by bytes read per token ---- */

static void chart_speed(rep *r, double *bt, double *lab)
{
    FILE *f = r->f;
    const plan_html_in *in = r->in;
    int nm = in->n_models, nh = in->n_hw;
    char a[96], b[96], d[96], tip[400];
    double xlo = INFINITY, xhi = 0, ylo = INFINITY, yhi = 0;
    for (int i = 0; i < nm; i++) {
        bt[i] = bytes_token(r, &in->models[i]);
        if (!(bt[i] > 0) || !isfinite(bt[i]))
            continue;
        xlo = fmin(xlo, bt[i]);
        xhi = fmax(xhi, bt[i]);
        for (int j = 0; j < nh; j++) {
            plan_speed s = speed_of(r, &in->models[i], &in->hw[j]);
            if (s.decode > 0 && isfinite(s.decode)) {
                ylo = fmin(ylo, s.decode);
                yhi = fmax(yhi, s.decode_bound);
            }
        }
    }
    bool empty = !(xhi > 0) || !(yhi > 0);
    if (empty) {
        xlo = 1e9, xhi = 1e12, ylo = 1, yhi = 1000;
    } else {
        xlo /= 1.6, xhi *= 1.6, ylo /= 1.8, yhi *= 1.8;
    }
    svg_nice(&xlo, &xhi, true);
    svg_nice(&ylo, &yhi, true);

    fprintf(f, "<section id=\"speed\">\n<h2>Decode speed and the bandwidth roofline</h2>\n<figure>\n");
    svg_chart c;
    char xt[160];
    if (plan_quant_bpw(r->quant) > 0)
        snprintf(xt, sizeof xt, "bytes read per decoded token: active weights at %s + KV of %s positions (log)",
                 r->quant, svg_num(a, sizeof a, r->ctx_avg, SVG_GROUPED, NULL, NULL));
    else
        snprintf(xt, sizeof xt, "bytes read per decoded token: active weights + KV of %s positions (log)",
                 svg_num(a, sizeof a, r->ctx_avg, SVG_GROUPED, NULL, NULL));
    svg_begin(&c, f, "chart-speed", 900, 560, 72, 24, 128, 52,
              "Decode tok/s of one stream by bytes read per token, for each machine",
              "Lines: roofline = memory bandwidth / bytes read per token. Dashed: roofline x decode efficiency. "
              "Points: predicted decode tok/s of each catalogue model (filled: fits in memory; ring: does not).");
    c.x = (svg_axis){.lo = xlo, .hi = xhi, .log = true, .title = xt, .fmt = SVG_SI, .unit = "B"};
    c.y = (svg_axis){.lo = ylo, .hi = yhi, .log = true, .title = "decode tok/s, one stream (log)", .fmt = SVG_SI};
    svg_axes(&c);
    if (empty) {
        svg_text(&c, (c.l + c.r) / 2, (c.t + c.b) / 2, "middle", 0, "note",
                 nm == 0 ? "no models to chart" : nh == 0 ? "no hardware to chart" : "no speed to chart");
    } else {
        /* model guides and labels along the top */
        int nl = 0;
        for (int i = 0; i < nm; i++) {
            if (!(bt[i] > 0))
                continue;
            double px = svg_x(&c, bt[i]);
            fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#b8b8b8\""
                       " stroke-dasharray=\"2 3\"/>\n", px, c.t, px, c.b);
            lab[nl++] = px;
        }
        svg_spread(lab, nl, 11.5, c.l + 6, c.r - 4);
        nl = 0;
        for (int i = 0; i < nm; i++) {
            if (!(bt[i] > 0))
                continue;
            double px = svg_x(&c, bt[i]), lx = lab[nl++];
            fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#b8b8b8\"/>\n", px, c.t,
                    lx, c.t - 8);
            svg_text(&c, lx + 4, c.t - 10, "start", -90, "model", in->models[i].id);
        }
        svg_clip_begin(&c);
        for (int j = 0; j < nh; j++) {
            const plan_hw *h = &in->hw[j];
            double xs[2] = {xlo, xhi}, ys[2] = {h->bw / xlo, h->bw / xhi};
            snprintf(tip, sizeof tip, "%s roofline: %s/s / bytes per token", h->id, si(a, sizeof a, h->bw, "B"));
            svg_line(&c, xs, ys, 2, hw_colour(j), 2.2, false, tip);
            double ye[2] = {ys[0] * h->eff_decode, ys[1] * h->eff_decode};
            snprintf(tip, sizeof tip, "%s: roofline x efficiency %.2f (%s)", h->id, h->eff_decode,
                     h->calibrated ? "calibrated" : "assumed");
            svg_line(&c, xs, ye, 2, hw_colour(j), 1, true, tip);
        }
        svg_clip_end(&c);
        for (int j = 0; j < nh; j++) {
            const plan_hw *h = &in->hw[j];
            for (int i = 0; i < nm; i++) {
                const plan_model *m = &in->models[i];
                plan_speed s = speed_of(r, m, h);
                plan_fit ft = fit_of(r, m, h);
                if (!(s.decode > 0))
                    continue;
                snprintf(tip, sizeof tip, "%s on %s: %s tok/s predicted (roofline %s tok/s%s), %s read per token; %s",
                         m->id, h->id, si(a, sizeof a, s.decode, NULL), si(b, sizeof b, s.decode_bound, NULL),
                         s.decode_bound < h->bw / s.bytes_token * 0.999 ? ", compute-bound" : "",
                         si(d, sizeof d, s.bytes_token, "B"),
                         ft.fits ? "fits in memory" : "does not fit in memory");
                svg_point(&c, s.bytes_token, s.decode, 4, hw_colour(j), ft.fits, tip, NULL);
            }
        }
        const char *names[N_PAL + 2];
        const char *cols[N_PAL + 2];
        bool dash[N_PAL + 2];
        int n = 0;
        for (int j = 0; j < nh && n < N_PAL; j++) {
            names[n] = in->hw[j].id;
            cols[n] = hw_colour(j);
            dash[n++] = false;
        }
        names[n] = "roofline x efficiency";
        cols[n] = "#777777";
        dash[n++] = true;
        double lw, lh;
        svg_legend_size(names, n, 1, &lw, &lh);
        svg_legend(&c, c.l + 8, c.b - lh - 8, 1, names, cols, dash, n); /* rooflines fall: bottom left is free */
    }
    svg_end(&c);
    fprintf(f, "<figcaption>Decode speed of one stream (tok/s, log scale) by the bytes each decoded token reads "
               "(log scale). Solid lines: each machine&#39;s roofline = memory bandwidth &#247; bytes read per "
               "token, which decode cannot exceed. Dashed: roofline &#215; the machine&#39;s decode efficiency. "
               "Points: the predicted decode of each catalogue model = roofline &#215; efficiency (lower where "
               "compute binds first); filled where the model fits in that machine&#39;s memory at this context, "
               "rings where it does not. Mixture-of-experts models read only their active experts, so they sit "
               "left of their total size. Hover a point for its figures.</figcaption>\n</figure>\n</section>\n");
}

/* ---- chart 2: memory fit ---- */

static void chart_fit(rep *r, double *lab, const char **cats)
{
    FILE *f = r->f;
    const plan_html_in *in = r->in;
    int nm = in->n_models, nh = in->n_hw;
    char a[96], b[96], tip[400];
    double ylo = INFINITY, yhi = 0;
    for (int i = 0; i < nm; i++) {
        plan_fit ft = fit_of(r, &in->models[i], NULL);
        cats[i] = in->models[i].id;
        if (ft.weights > 0 && isfinite(ft.total)) {
            ylo = fmin(ylo, ft.weights);
            yhi = fmax(yhi, ft.total);
        }
    }
    for (int j = 0; j < nh; j++) {
        plan_fit ft = nm > 0 ? fit_of(r, &in->models[0], &in->hw[j]) : (plan_fit){0};
        double usable = nm > 0 ? ft.usable
                               : in->hw[j].mem_bytes - (in->reserve_bytes >= 0 ? in->reserve_bytes
                                                                             : in->hw[j].reserve_bytes);
        if (usable > 0) {
            ylo = fmin(ylo, usable);
            yhi = fmax(yhi, usable);
        }
    }
    bool empty = nm == 0 || !(yhi > 0);
    if (empty)
        ylo = 1e9, yhi = 1e12;
    else
        ylo /= 2.5, yhi *= 1.5;
    svg_nice(&ylo, &yhi, true);

    fprintf(f, "<section id=\"fit\">\n<h2>Memory fit</h2>\n<figure>\n");
    svg_chart c;
    snprintf(tip, sizeof tip, "Memory of each model at %s, %lld positions x %lld sequences, against each "
             "machine's usable memory", r->quant, (long long)r->ctx, (long long)r->n_seq);
    svg_begin(&c, f, "chart-fit", 900, 500, 72, 200, 40, 98, tip,
              "Bars: weights + KV cache + runtime overhead of each model (log scale). Dashed lines: each machine's "
              "memory less its reserve.");
    c.x = (svg_axis){.cats = cats, .n_cats = nm > 0 ? nm : 1, .title = "model", .title_off = 88};
    if (nm == 0) {
        static const char *const none[1] = {""};
        c.x.cats = none;
    }
    c.y = (svg_axis){.lo = ylo, .hi = yhi, .log = true, .title = "memory (log)", .fmt = SVG_SI, .unit = "B"};
    svg_axes(&c);
    static const char *const seg_names[3] = {"weights", "KV cache", "overhead"};
    static const char *const seg_cols[3] = {"#4a5d7e", "#93aed0", "#c9ced6"};
    if (empty) {
        svg_text(&c, (c.l + c.r) / 2, (c.t + c.b) / 2, "middle", 0, "note", "no models to chart");
    } else {
        double sw = svg_slot(&c) * 0.62;
        for (int i = 0; i < nm; i++) {
            plan_fit ft = fit_of(r, &in->models[i], NULL);
            if (!(ft.weights > 0) || !isfinite(ft.total))
                continue;
            double cx = svg_x(&c, i);
            double lv[4] = {ylo, ft.weights, ft.weights + ft.kv, ft.total};
            for (int s = 0; s < 3; s++) {
                if (!(lv[s + 1] > lv[s]))
                    continue;
                snprintf(tip, sizeof tip, "%s: %s %s (total %s)", in->models[i].id, seg_names[s],
                         si(a, sizeof a, s == 0 ? ft.weights : s == 1 ? ft.kv : ft.overhead, "B"),
                         si(b, sizeof b, ft.total, "B"));
                svg_bar(&c, cx - sw / 2, cx + sw / 2, lv[s], lv[s + 1], seg_cols[s], tip);
            }
            svg_text(&c, cx, svg_y(&c, ft.total) - 4, "middle", 0, "lbl", si(a, sizeof a, ft.total, "B"));
        }
        for (int j = 0; j < nh; j++) {
            plan_fit ft = fit_of(r, &in->models[0], &in->hw[j]);
            svg_hrule(&c, ft.usable, hw_colour(j), true);
            lab[j] = ft.usable > 0 ? svg_y(&c, ft.usable) + 4 : NAN;
        }
        svg_spread(lab, nh, 13, c.t + 4, c.b);
        for (int j = 0; j < nh; j++) {
            plan_fit ft = fit_of(r, &in->models[0], &in->hw[j]);
            if (!(ft.usable > 0))
                continue;
            char t[160];
            snprintf(t, sizeof t, "%s %s", in->hw[j].id, si(a, sizeof a, ft.usable, "B"));
            fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"1.8\"/>\n",
                    c.r, svg_y(&c, ft.usable), c.r + 8, lab[j] - 4, hw_colour(j));
            fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" class=\"lbl\" fill=\"%s\">", c.r + 10, lab[j], hw_colour(j));
            esc(r, t);
            fprintf(f, "</text>\n");
        }
        svg_legend(&c, c.l, 8, 3, seg_names, seg_cols, NULL, 3);
    }
    svg_end(&c);
    fprintf(f, "<figcaption>Memory each model needs (log scale): weights at ");
    esc(r, r->quant);
    fprintf(f, " + KV cache for %s positions &#215; %lld sequence%s + runtime overhead (buffers, logits, "
               "attention scores), stacked; the figure above each bar is the total. Dashed lines: each "
               "machine&#39;s usable memory, its memory less the reserve for the OS. A model fits a machine when "
               "its bar ends below that machine&#39;s line.</figcaption>\n</figure>\n",
            svg_num(a, sizeof a, (double)r->ctx, SVG_GROUPED, NULL, NULL), (long long)r->n_seq,
            r->n_seq == 1 ? "" : "s");

    if (nm > 0 && !empty) {
        fprintf(f, "<table class=\"fit\">\n<tr><th>model</th><th>params</th><th>weights</th><th>KV</th>"
                   "<th>overhead</th><th>total</th>");
        for (int j = 0; j < nh; j++) {
            fprintf(f, "<th>");
            esc(r, in->hw[j].id);
            fprintf(f, "</th>");
        }
        fprintf(f, "<th>fits on</th></tr>\n");
        for (int i = 0; i < nm; i++) {
            const plan_model *m = &in->models[i];
            plan_fit ft = fit_of(r, m, NULL);
            int nfit = 0;
            for (int j = 0; j < nh; j++)
                nfit += fit_of(r, m, &in->hw[j]).fits;
            fprintf(f, "<tr%s><td class=\"id\">", nfit == 0 ? " class=\"nowhere\"" : "");
            esc(r, m->id);
            fprintf(f, "</td><td class=\"n\">%s</td>", si(a, sizeof a, m->params, NULL));
            fprintf(f, "<td class=\"n\">%s</td>", si(a, sizeof a, ft.weights, "B"));
            fprintf(f, "<td class=\"n\">%s</td>", si(a, sizeof a, ft.kv, "B"));
            fprintf(f, "<td class=\"n\">%s</td>", si(a, sizeof a, ft.overhead, "B"));
            fprintf(f, "<td class=\"n\">%s</td>", si(a, sizeof a, ft.total, "B"));
            for (int j = 0; j < nh; j++) {
                plan_fit fh = fit_of(r, m, &in->hw[j]);
                fprintf(f, "<td class=\"%s\" title=\"%s of %s usable\">%s</td>", fh.fits ? "yes" : "no",
                        si(a, sizeof a, fh.total, "B"), si(b, sizeof b, fh.usable, "B"),
                        fh.fits ? "\xe2\x9c\x93" : "\xe2\x9c\x97");
            }
            if (nfit == 0)
                fprintf(f, "<td>fits nowhere</td></tr>\n");
            else
                fprintf(f, "<td class=\"n\">%d of %d</td></tr>\n", nfit, nh);
        }
        fprintf(f, "</table>\n");
    }
    fprintf(f, "</section>\n");
}

/* ---- chart 3: cumulative cost ---- */

static bool owned(const plan_option *o) { return o->upfront > 0; }

/* Colour of option k: its machine's when it is named after one, else its own. */
static const char *opt_colour(rep *r, int k)
{
    const plan_html_in *in = r->in;
    for (int j = 0; j < in->n_hw; j++)
        if (!strcmp(in->options[k].name, in->hw[j].id))
            return hw_colour(j);
    return PAL[(in->n_hw + k) % N_PAL];
}

/* names, cols, dash: room for 2 x n_options legend entries; api: for
 * 2 x n_options texts of 100 bytes. */
static void chart_cost(rep *r, const char **names, const char **cols, bool *dash, char *api)
{
    FILE *f = r->f;
    const plan_html_in *in = r->in;
    double H = r->horizon;
    char a[96], b[96], t[256];
    double ymax = 0, ymax_rent = 0;
    int nfit = 0, nown = 0;
    for (int k = 0; k < in->n_options; k++) {
        const plan_option *o = &in->options[k];
        if (!o->fits)
            continue;
        nfit++;
        double end = plan_option_cost(o, H);
        if (owned(o)) {
            nown++;
            ymax = fmax(ymax, fmax(end, o->cloud_day * H));
        } else {
            ymax_rent = fmax(ymax_rent, end);
        }
    }
    if (nown == 0)
        ymax = ymax_rent;
    if (!(ymax > 0) || !isfinite(ymax))
        ymax = 1000;
    double ylo = 0, yhi = ymax * 1.04;
    svg_nice(&ylo, &yhi, false);

    fprintf(f, "<section id=\"cost\">\n<h2>Cost over time</h2>\n<figure>\n");
    int nl = 0;
    for (int k = 0; k < in->n_options; k++) {
        const plan_option *o = &in->options[k];
        if (!o->fits)
            continue;
        names[nl] = o->name;
        cols[nl] = opt_colour(r, k);
        dash[nl++] = false;
        if (owned(o)) {
            names[nl] = NULL; /* filled below: "NAME: its tokens from the cloud API" */
            cols[nl] = opt_colour(r, k);
            dash[nl++] = true;
        }
    }
    /* the API lines' legend texts */
    for (int k = 0, i = 0; k < in->n_options; k++) {
        const plan_option *o = &in->options[k];
        if (!o->fits)
            continue;
        i++;
        if (owned(o)) {
            snprintf(api + (size_t)i * 100, 100, "%s: its tokens from the cloud API", o->name);
            names[i] = api + (size_t)i * 100;
            i++;
        }
    }
    double lw = 0, lh = 0;
    int lcols = 2;
    svg_legend_size(names, nl, lcols, &lw, &lh);
    if (lw > 900 - 84 - 30) {
        lcols = 1;
        svg_legend_size(names, nl, lcols, &lw, &lh);
    }
    svg_chart c;
    snprintf(t, sizeof t, "Cumulative cost of each option over %.0f days, and what its tokens would cost from a "
             "cloud API", H);
    svg_begin(&c, f, "chart-cost", 900, 420 + lh + 60, 84, 30, 24, lh + 60, t,
              "Solid: upfront price + running cost a day x days. Dashed: the same tokens bought from the cloud "
              "API. Points: payback, where the two meet.");
    c.x = (svg_axis){.lo = 0, .hi = H, .title = "days", .fmt = SVG_GROUPED};
    char yt[64];
    snprintf(yt, sizeof yt, "cumulative cost (%s)", r->prices.currency);
    c.y = (svg_axis){.lo = ylo, .hi = yhi, .title = yt, .fmt = SVG_GROUPED, .prefix = r->money};
    svg_axes(&c);
    if (nfit == 0) {
        svg_text(&c, (c.l + c.r) / 2, (c.t + c.b) / 2, "middle", 0, "note",
                 in->n_options == 0 ? "no options to compare" : "no option fits the model");
    } else {
        svg_clip_begin(&c);
        for (int k = 0; k < in->n_options; k++) {
            const plan_option *o = &in->options[k];
            if (!o->fits)
                continue;
            double xs[2] = {0, H}, ys[2] = {o->upfront, plan_option_cost(o, H)};
            snprintf(t, sizeof t, "%s: %s upfront + %s a day", o->name, cash(r, a, sizeof a, o->upfront),
                     cash(r, b, sizeof b, o->per_day));
            svg_line(&c, xs, ys, 2, opt_colour(r, k), 2.4, false, t);
            if (owned(o)) {
                double yc[2] = {0, o->cloud_day * H};
                snprintf(t, sizeof t, "%s: its %s tokens a day from the cloud API, %s a day", o->name,
                         si(a, sizeof a, o->tokens_day, NULL), cash(r, b, sizeof b, o->cloud_day));
                svg_line(&c, xs, yc, 2, opt_colour(r, k), 1.6, true, t);
            }
        }
        svg_clip_end(&c);
        for (int k = 0; k < in->n_options; k++) {
            const plan_option *o = &in->options[k];
            if (!o->fits)
                continue;
            double end = plan_option_cost(o, H);
            if (end > yhi && o->per_day > 0) { /* leaves the chart at the top: say where it ends */
                double dx = (yhi - o->upfront) / o->per_day;
                snprintf(t, sizeof t, "\xe2\x86\x91 %s: %s by day %s", o->name,
                         svg_num(a, sizeof a, end, SVG_SI, r->money, NULL),
                         svg_num(b, sizeof b, H, SVG_GROUPED, NULL, NULL));
                double px = svg_x(&c, dx);
                bool right = px < c.r - 260;
                svg_text(&c, px + (right ? 6 : -6), c.t + 14 + 14 * (k % 3), right ? "start" : "end", 0, "lbl", t);
            }
            if (owned(o) && isfinite(o->payback_days) && o->payback_days > 0 && o->payback_days <= H) {
                double d = o->payback_days;
                snprintf(t, sizeof t, "payback %.0f days", d);
                char tp[256];
                snprintf(tp, sizeof tp, "%s pays back after %.0f days: %s", o->name, d,
                         cash(r, a, sizeof a, plan_option_cost(o, d)));
                svg_point(&c, d, plan_option_cost(o, d), 5, opt_colour(r, k), true, tp, NULL);
                double px = svg_x(&c, d), py = svg_y(&c, plan_option_cost(o, d));
                svg_text(&c, px + (px > c.r - 130 ? -8 : 8), py + (k % 2 ? 16 : -8),
                         px > c.r - 130 ? "end" : "start", 0, "lbl", t);
            }
        }
    }
    svg_legend(&c, c.l, c.b + 48, lcols, names, cols, dash, nl);
    svg_end(&c);
    fprintf(f, "<figcaption>Cumulative cost (linear scale) over %s days. Solid lines: each option&#39;s upfront "
               "price + its running cost a day (electricity for owned machines, rent for cloud instances) "
               "&#215; days. Dashed lines: what the tokens an owned machine makes would cost from the cloud API "
               "each day &#215; days. Where they cross is the payback point (upfront &#247; (API cost a day "
               "&#8722; running cost a day)).",
            svg_num(a, sizeof a, H, SVG_GROUPED, NULL, NULL));
    if (in->options_model) {
        fprintf(f, " Model: ");
        esc(r, in->options_model);
        fprintf(f, ".");
    }
    fprintf(f, "</figcaption>\n</figure>\n");
    int nout = 0, nlate = 0;
    for (int k = 0; k < in->n_options; k++)
        nout += !in->options[k].fits;
    if (nout > 0) {
        fprintf(f, "<p class=\"note\">Left out of the chart, the model does not fit: ");
        for (int k = 0, i = 0; k < in->n_options; k++)
            if (!in->options[k].fits) {
                fprintf(f, "%s", i++ ? ", " : "");
                esc(r, in->options[k].name);
            }
        fprintf(f, ".</p>\n");
    }
    for (int k = 0; k < in->n_options; k++) {
        const plan_option *o = &in->options[k];
        if (!o->fits || !owned(o) || (isfinite(o->payback_days) && o->payback_days <= H))
            continue;
        fprintf(f, "%s", nlate++ ? "; " : "<p class=\"note\">No payback within the chart: ");
        esc(r, o->name);
        if (isfinite(o->payback_days))
            fprintf(f, " after %s days", svg_num(a, sizeof a, o->payback_days, SVG_GROUPED, NULL, NULL));
        else
            fprintf(f, " never (its tokens cost less from the API than its running cost)");
    }
    if (nlate)
        fprintf(f, ".</p>\n");
    fprintf(f, "</section>\n");
}

static void options_table(rep *r)
{
    FILE *f = r->f;
    const plan_html_in *in = r->in;
    char a[96], b[96];
    fprintf(f, "<section id=\"options\">\n<h2>Options side by side</h2>\n");
    if (in->n_options == 0) {
        fprintf(f, "<p class=\"note\">No options to compare.</p>\n</section>\n");
        return;
    }
    if (in->options_model) {
        fprintf(f, "<p>Running ");
        esc(r, in->options_model);
        fprintf(f, ", output tokens at a %.3g %% duty cycle.</p>\n", r->prices.duty * 100);
    }
    fprintf(f, "<table class=\"options\">\n<tr><th>option</th><th>tok/s</th><th>tokens a day</th><th>upfront</th>"
               "<th>running cost a day</th><th>cloud API equivalent a day</th><th>payback</th></tr>\n");
    for (int k = 0; k < in->n_options; k++) {
        const plan_option *o = &in->options[k];
        fprintf(f, "<tr><td><span style=\"color:%s\">&#9632;</span> ", opt_colour(r, k));
        esc(r, o->name);
        fprintf(f, "</td>");
        if (!o->fits) {
            fprintf(f, "<td colspan=\"2\">does not fit</td><td class=\"n\">%s</td><td class=\"n\">",
                    cash(r, a, sizeof a, o->upfront));
            fprintf(f, "%s</td><td class=\"n\">-</td><td>-</td></tr>\n", cash(r, a, sizeof a, o->per_day));
            continue;
        }
        fprintf(f, "<td class=\"n\">%s</td>", si(a, sizeof a, o->tok_s, NULL));
        fprintf(f, "<td class=\"n\">%s</td>", si(a, sizeof a, o->tokens_day, NULL));
        fprintf(f, "<td class=\"n\">%s</td>", cash(r, a, sizeof a, o->upfront));
        fprintf(f, "<td class=\"n\">%s</td>", cash(r, a, sizeof a, o->per_day));
        fprintf(f, "<td class=\"n\">%s</td>", cash(r, a, sizeof a, o->cloud_day));
        if (!owned(o))
            fprintf(f, "<td>rented: %s a day against %s from the API</td></tr>\n", cash(r, a, sizeof a, o->per_day),
                    cash(r, b, sizeof b, o->cloud_day));
        else if (!isfinite(o->payback_days))
            fprintf(f, "<td>never</td></tr>\n");
        else
            fprintf(f, "<td class=\"n\">%s days</td></tr>\n",
                    svg_num(a, sizeof a, o->payback_days, SVG_GROUPED, NULL, NULL));
    }
    fprintf(f, "</table>\n</section>\n");
}

static void claims(rep *r)
{
    FILE *f = r->f;
    const plan_html_in *in = r->in;
    fprintf(f, "<section id=\"claims\">\n<h2>Published claims checked</h2>\n");
    if (in->n_verdicts == 0) {
        fprintf(f, "<p class=\"note\">No claims checked.</p>\n</section>\n");
        return;
    }
    fprintf(f, "<table class=\"claims\">\n<tr><th>claim</th><th>verdict</th><th>correct figure</th>"
               "<th>arithmetic</th></tr>\n");
    for (int i = 0; i < in->n_verdicts; i++) {
        const plan_verdict *v = &in->verdicts[i];
        int k = v->kind >= 0 && v->kind <= 3 ? v->kind : 3;
        fprintf(f, "<tr><td>");
        esc(r, v->claim);
        fprintf(f, "</td><td class=\"v%d\">", k);
        esc(r, v->verdict);
        fprintf(f, "</td><td>");
        esc(r, v->correct);
        fprintf(f, "</td><td><pre>");
        esc(r, v->arithmetic);
        fprintf(f, "</pre></td></tr>\n");
    }
    fprintf(f, "</table>\n</section>\n");
}

int plan_html_write(FILE *f, const plan_html_in *in)
{
    if (!f || !in)
        return err_set(SOV_EINVAL, "plan html: no %s", f ? "input" : "output file");
    if (in->n_hw < 0 || in->n_models < 0 || in->n_options < 0 || in->n_verdicts < 0)
        return err_set(SOV_EINVAL, "plan html: negative count");
    if ((in->n_hw && !in->hw) || (in->n_models && !in->models) || (in->n_options && !in->options) ||
        (in->n_verdicts && !in->verdicts))
        return err_set(SOV_EINVAL, "plan html: an array is NULL but its count is not 0");
    rep r = {.f = f, .in = in};
    r.title = in->title ? in->title : "sov plan";
    r.quant = in->quant ? in->quant : "q4_k_m";
    if (plan_quant_bpw(r.quant) <= 0 && strcasecmp(r.quant, "file"))
        return err_set(SOV_EINVAL, "plan html: unknown quant \"%s\"", r.quant);
    if (in->prices)
        r.prices = *in->prices;
    else
        plan_prices_default(&r.prices, NULL);
    const char *cur = r.prices.currency;
    r.money = !strcmp(cur, "USD") ? "$" : !strcmp(cur, "EUR") ? "\xe2\x82\xac" : !strcmp(cur, "GBP") ? "\xc2\xa3" : NULL;
    char money[16];
    if (!r.money) {
        snprintf(money, sizeof money, "%.7s ", cur);
        r.money = money;
    }
    r.ctx = in->ctx > 0 ? in->ctx : 0;
    r.n_seq = in->n_seq > 0 ? in->n_seq : 1;
    r.ctx_avg = in->ctx_avg > 0 ? in->ctx_avg : (double)r.ctx / 2;
    r.horizon = in->horizon_days > 0 ? in->horizon_days : 1095;

    /* scratch for the charts: label positions, category names, legend entries */
    int nmax = in->n_models > in->n_hw ? in->n_models : in->n_hw;
    int nleg = 2 * in->n_options + 1;
    double *bt = malloc((size_t)(nmax + 1) * sizeof *bt), *lab = malloc((size_t)(nmax + 1) * sizeof *lab);
    const char **cats = malloc((size_t)(nmax + 1) * sizeof *cats);
    const char **names = malloc((size_t)nleg * sizeof *names), **cols = malloc((size_t)nleg * sizeof *cols);
    bool *dash = malloc((size_t)nleg * sizeof *dash);
    char *api = malloc((size_t)nleg * 100);
    int rc = 0;
    if (!bt || !lab || !cats || !names || !cols || !dash || !api) {
        rc = err_set(SOV_ENOMEM, "plan html: out of memory");
        goto fail;
    }
    errno = 0;
    head(&r);
    settings(&r);
    hw_table(&r);
    chart_speed(&r, bt, lab);
    chart_fit(&r, lab, cats);
    chart_cost(&r, names, cols, dash, api);
    options_table(&r);
    claims(&r);
    fprintf(f, "<footer>");
    esc(&r, in->generated ? in->generated : "sov plan");
    fprintf(f, "</footer>\n</body>\n</html>\n");
    if (fflush(f) != 0 || ferror(f)) {
        rc = err_set(SOV_EIO, "writing the HTML report: %s", strerror(errno ? errno : EIO));
        goto fail;
    }
fail:
    free(bt);
    free(lab);
    free(cats);
    free(names);
    free(cols);
    free(dash);
    free(api);
    return rc;
}
