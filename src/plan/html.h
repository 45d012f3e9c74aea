/* html: the self-contained HTML report of `sov plan --html FILE`: inline CSS
 * and SVG only (no script, font or image from the network), so it opens
 * anywhere offline. Charts: decode tok/s by model size per hardware with
 * each roofline drawn, memory fit, cumulative cost over time with the
 * payback points. */
#ifndef SOV_PLAN_HTML_H
#define SOV_PLAN_HTML_H

#include <stdint.h>
#include <stdio.h>

#include "check.h"
#include "plan.h"

typedef struct plan_html_in {
    const char *title;                 /* page title and heading */
    const char *generated;             /* footer line: "sov plan, 2026-12-03 ..." (may be NULL) */
    const plan_hw *hw;                 /* hardware on the speed and fit charts */
    int n_hw;
    const plan_model *models;          /* models on the speed and fit charts */
    int n_models;
    const char *quant;                 /* quant of every model on the charts ("q4_k_m") */
    int64_t ctx;                       /* context positions for the fit chart and the speed chart's KV */
    int64_t n_seq;                     /* parallel sequences (fit) */
    double kv_bpe;                     /* KV bytes per element */
    double reserve_bytes;              /* < 0: each hw's own reserve */
    const plan_prices *prices;
    const char *const *price_sources;  /* 3 lines from plan_prices_default (may be NULL) */
    const plan_option *options;        /* side by side: A, B, hybrid, cloud instance */
    int n_options;
    const char *options_model;         /* the model and quant the options run ("llama-3.1-70b q4_k_m") */
    double horizon_days;               /* x range of the cost chart (<= 0: 3 years) */
    const plan_verdict *verdicts;      /* the claims table (may be 0) */
    int n_verdicts;
    double ctx_avg;                    /* average context of a decoded token on the speed chart
                                        * (<= 0: ctx / 2, a sequence filling its context) */
} plan_html_in;

/* Writes the report to f (XHTML-clean: every element closed, so it also
 * parses as XML). Every text is HTML-escaped. NULL title / quant / prices:
 * "sov plan" / "q4_k_m" / plan_prices_default. Returns 0, or (with a
 * message) SOV_EIO when writing fails, SOV_EINVAL for a NULL f or in, a
 * negative count, a NULL array with a count, or an unknown quant,
 * SOV_ENOMEM. */
int plan_html_write(FILE *f, const plan_html_in *in);

#endif
