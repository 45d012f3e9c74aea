/* report: the side-by-side options of `sov plan` (two machines, both
 * together, a rented cloud instance) and the HTML report around them, as
 * `sov plan --html FILE` writes it and `sov serve` serves it
 * (GET /v1/plan/report). */
#ifndef SOV_PLAN_REPORT_H
#define SOV_PLAN_REPORT_H

#include <stdint.h>
#include <stdio.h>

#include "check.h"
#include "plan.h"

/* The defaults of `sov plan` (and of the served report). */
#define PLAN_REPORT_MODEL "llama-3.1-70b"  /* the options' model without -m */
#define PLAN_REPORT_QUANT "q4_k_m"
#define PLAN_REPORT_A "ryzen-ai-max-395"   /* the workstation */
#define PLAN_REPORT_B "dgx-spark"          /* the box */
#define PLAN_REPORT_CLOUD "cloud-h100"     /* the rented instance */
#define PLAN_REPORT_CTX 8192

typedef struct plan_report_in {
    const plan_hw *hw;                 /* the profiles on the charts */
    int n_hw;
    const plan_hw *a, *b, *cloud;      /* the options' machines */
    double eff_this;                   /* > 0: decode efficiency of the machine with id "this"
                                        * for the options' model (calibrated for its quant);
                                        * else each profile's own eff_decode */
    const plan_model *model;           /* the options' model */
    const char *model_quant;           /* its quant, as plan_weight_bytes takes it ("file": a GGUF's bytes) */
    const char *model_quant_name;      /* the quant's name in titles ("q4_0" for a GGUF; NULL: model_quant) */
    const char *quant;                 /* the quant of every model on the charts (NULL: PLAN_REPORT_QUANT) */
    int64_t ctx;                       /* context positions */
    int64_t n_seq;                     /* parallel sequences */
    double kv_bpe;                     /* KV bytes per element */
    double reserve_bytes;              /* < 0: each machine's own reserve */
    const plan_prices *prices;
    const char *const *price_sources;  /* 3 lines (may be NULL) */
    const plan_verdict *verdicts;      /* the claims table (may be NULL with 0) */
    int n_verdicts;
} plan_report_in;

/* opt[0..4): a, b, a and b together ("hybrid (A + B)"), cloud, each at the
 * aggregate tok/s of n_seq streams of the model (plan_speed_of's batch at
 * an average context of ctx / 2; 0 where plan_fit_of says it does not fit),
 * with the prices' economics (plan_option_of). */
void plan_report_options(const plan_report_in *in, plan_option opt[4]);

/* Writes the HTML report (plan_html_write): titled "sov plan: MODEL QUANT
 * on A, B, both and the cloud", a footer with the UTC time, every
 * catalogue model on the charts at in->quant, the options of
 * plan_report_options over a 3-year horizon, the verdicts. Errors: those
 * of plan_html_write; SOV_EINVAL for a NULL machine or model. */
int plan_report_html(FILE *f, const plan_report_in *in);

#endif
