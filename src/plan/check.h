/* check: verdicts on published claims (`sov plan --check "..."`, and the
 * built-in comparison report). Each verdict states the correct figure and
 * the arithmetic that gives it. */
#ifndef SOV_PLAN_CHECK_H
#define SOV_PLAN_CHECK_H

#include <stdint.h>

#include "plan.h"

typedef enum plan_verdict_kind {
    PLAN_V_OK = 0,        /* plausible (speed within the expected figure) or right (arithmetic) */
    PLAN_V_POSSIBLE = 1,  /* under the bound, but above what is expected at the efficiency used */
    PLAN_V_WRONG = 2,     /* impossible (above the bound) or wrong (the arithmetic gives another figure) */
    PLAN_V_UNKNOWN = 3,   /* cannot be judged (a figure is missing) */
} plan_verdict_kind;

typedef struct plan_verdict {
    char claim[256];      /* the claim as stated */
    int kind;             /* plan_verdict_kind */
    char verdict[24];     /* one word: "plausible", "possible", "impossible", "right", "wrong", "unknown" */
    char correct[256];    /* the correct figure, one line */
    char arithmetic[1024];/* how it is got: one or more lines, '\n'-separated, no trailing newline */
} plan_verdict;

/* What claims are judged against. */
typedef struct plan_check_ctx {
    const plan_hw *hw;        /* the profiles a claim's hardware is looked up in */
    int n_hw;
    const plan_prices *prices;/* defaults for figures a claim does not state */
    double kv_bpe;            /* KV bytes per element for the expected speed */
    int64_t ctx;              /* context: the expected speed reads the KV of ctx / 2 positions */
    const char *hw_a, *hw_b;  /* the workstation and the box: "hybrid" is both */
    double rtt_s;             /* a measured round trip (s), < 0 when not measured */
    const char *rtt_how;      /* how it was measured ("loopback TCP, median of 200") */
    double req_bytes, resp_bytes; /* one request's bytes each way, for a link claim */
} plan_check_ctx;

/* Judges one claim written in plain words, for example
 *   "70B Q4 on ryzen-ai-max-395 at 8 tok/s"        speed: impossible / possible / plausible
 *   "llama-3.1-70b q4_k_m fits on rtx-4090-box"    fit: right / wrong
 *   "5 tok/s is 13 million tokens per day"         arithmetic: right / wrong
 *   "a $3,200 machine at 5 tok/s pays for itself in 8-25 days at $0.01-0.03 per 1,000 tokens"
 *   "100,000 calls a month at 1,000 tokens per call cost $1,000-3,000 at $0.01-0.03 per 1,000 tokens"
 *   "the hybrid costs less than cloud-h100 over 18 months"
 *   "the 10 GbE link adds < 1 ms per request"
 * Models: a catalogue id or a size ("70B": the dense catalogue model
 * nearest in parameters); quants: the engine's names, "Q4" read as q4_k_m,
 * "Q8" as q8_0; hardware: a profile id or a unique word of one. A range
 * ("5-8") is judged at its least favourable end. Fills *v (claim copied,
 * truncated to fit). Errors: SOV_EINVAL with a message saying what could
 * not be read (then v->kind is PLAN_V_UNKNOWN). */
int plan_check(const plan_check_ctx *c, const char *claim, plan_verdict *v);

/* The claims of the built-in report: typical figures of published
 * comparisons of a unified-memory workstation, a network inference box and
 * the cloud (NULL-terminated; each one plan_check reads). */
const char *const *plan_report_claims(void);

/* The catalogue model a size or id names ("70B", "llama-3.1-70b"), or NULL. */
const plan_model *plan_check_model(const char *word);

#endif
