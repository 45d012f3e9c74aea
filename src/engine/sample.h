/* sample: next-token selection from logits (greedy, temperature, top-k,
 * top-p, min-p, repetition penalty) with a seeded, reproducible RNG. */
#ifndef SOV_SAMPLE_H
#define SOV_SAMPLE_H

#include <stdint.h>

typedef struct sample_params {
    float temp;            /* <= 0: greedy (argmax) */
    int32_t top_k;         /* <= 0: off */
    float top_p;           /* >= 1: off */
    float min_p;           /* <= 0: off */
    float repeat_penalty;  /* 1: off */
    int32_t repeat_last_n; /* tokens of history the penalty looks at */
    uint64_t seed;
} sample_params;

typedef struct sampler sampler;

/* Defaults as llama.cpp users know them: temp 0.8, top-k 40, top-p 0.95,
 * min-p 0.05, repeat penalty 1.0 over the last 64 tokens, seed 0. */
sample_params sample_defaults(void);

/* Creates a sampler over n_vocab logits. *out owned by caller (sample_free).
 * Errors: SOV_EINVAL (n_vocab < 1, NaN/negative params), SOV_ENOMEM. */
int sample_new(sampler **out, const sample_params *p, int32_t n_vocab);
void sample_free(sampler *s);

/* Picks the next token from logits[0..n_vocab) (not modified), given the
 * sequence so far (hist[0..n_hist), for the repetition penalty). */
int32_t sample_next(sampler *s, const float *logits, const int32_t *hist, int64_t n_hist);

/* Index of the largest value (first on ties). */
int32_t sample_argmax(const float *logits, int32_t n);

#endif
