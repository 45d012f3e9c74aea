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
    float presence_penalty;  /* OpenAI's: subtracted once from every token sampled before; 0: off */
    float frequency_penalty; /* OpenAI's: subtracted per earlier sampling of the token; 0: off */
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

/* Sets additive biases on token logits (OpenAI's logit_bias): bias[i] is
 * added to the logit of ids[i] before every other step; -INFINITY excludes
 * the token. Replaces earlier biases; n = 0 clears them.
 * Errors: SOV_EINVAL (an id out of range, a NaN or +infinite bias; the message
 * names it; nothing changes), SOV_ENOMEM. */
int sample_set_bias(sampler *s, const int32_t *ids, const float *bias, int32_t n);

/* Picks the next token from logits[0..n_vocab) (not modified), given the
 * sequence so far (hist[0..n_hist), for the repetition penalty). Order:
 * logit bias, repetition penalty, presence/frequency penalties (over the
 * tokens this sampler returned before), then greedy or temperature +
 * filters. The returned token is counted for the presence/frequency
 * penalties of later calls. */
int32_t sample_next(sampler *s, const float *logits, const int32_t *hist, int64_t n_hist);

/* sample_next restricted to the tokens with allowed[t] != 0 (a grammar's
 * mask; NULL: all): the others get -infinity after the penalties, so
 * greedy takes the best allowed token and sampling renormalizes over the
 * allowed ones (logprobs too). At least one token must be allowed. */
int32_t sample_next_masked(sampler *s, const float *logits, const uint8_t *allowed, const int32_t *hist,
                           int64_t n_hist);

/* Log-probabilities after the last sample_next: the log-softmax (temperature
 * 1, no filters) of the logits as that call adjusted them (bias and
 * penalties applied). *lp_tok = log p(tok); the n_top most likely tokens
 * (ties: lower id first) go to top_ids / top_lp in descending order; returns
 * how many were written (min(n_top, n_vocab)), or SOV_EINVAL if no
 * sample_next happened yet or tok is out of range. */
int sample_logprobs(sampler *s, int32_t tok, float *lp_tok, int32_t n_top, int32_t *top_ids, float *top_lp);

/* Index of the largest value (first on ties). */
int32_t sample_argmax(const float *logits, int32_t n);

#endif
