/* metrics: Prometheus counters, gauges and histograms of `sov serve`.
 *
 * One metrics object per server. The recording functions are called
 * concurrently from the HTTP threads and the scheduler thread; every one of
 * them takes one pthread mutex for a few stores and never allocates (the
 * per-token paths metrics_itl / metrics_tokens included). metrics_render
 * copies a consistent snapshot under the mutex and formats it outside it.
 * Every recording function accepts m == NULL and then does nothing, so a
 * server without metrics passes NULL.
 *
 * Series (every one labelled model="..."; label values are escaped as the
 * text format asks: backslash, double quote and newline as \\ \" \n):
 *   sov_requests_total{endpoint,status}   counter, finished HTTP requests.
 *       endpoint is one of /v1/chat/completions, /v1/completions,
 *       /v1/models, /health, /metrics, other
 *   sov_prompt_tokens_total                counter
 *   sov_generated_tokens_total             counter
 *   sov_prompt_cached_tokens_total         counter, prompt tokens served
 *                                          from the prefix cache
 *   sov_queue_depth, sov_slots_active, sov_slots_total,
 *   sov_kv_positions_used, sov_kv_positions_total    gauges
 *   sov_kv_blocks_total, sov_kv_blocks_used, sov_kv_blocks_cached  gauges
 *   sov_preemptions_total, sov_prompt_tokens_evaluated_total  counters
 *   sov_time_to_first_token_seconds        histogram, upper bounds (s):
 *       0.01 0.025 0.05 0.1 0.25 0.5 0.75 1 2.5 5 7.5 10 15 20 30 45 60 +Inf
 *   sov_inter_token_latency_seconds        histogram, upper bounds (s):
 *       0.001 0.0025 0.005 0.01 0.015 0.02 0.025 0.03 0.04 0.05 0.075 0.1
 *       0.15 0.2 0.3 0.5 0.75 1 2.5 5 +Inf
 * The TTFT bounds span a short prompt on a small model (10 ms) to a long
 * prompt on a large one on CPU (a minute); the ITL bounds are densest at
 * 10-100 ms per token, where CPU decode of 1-8 B models lies. Buckets are
 * inclusive (an observation equal to a bound counts in that bucket). */
#ifndef SOV_METRICS_H
#define SOV_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef struct metrics metrics;

/* Creates a metrics object with every counter, gauge and histogram at 0.
 * model: label value for the model series (copied; NULL means ""). *out
 * owned by caller (metrics_free). Errors: SOV_ENOMEM. */
int metrics_new(metrics **out, const char *model);

/* Frees m; NULL is fine. No other call on m may be running or follow. */
void metrics_free(metrics *m);

/* Counts one finished HTTP request. endpoint: a route label such as
 * "/v1/chat/completions"; only the fixed set above is kept as-is, anything
 * else (NULL included) is counted as "other". status: the HTTP status;
 * values outside 0..999 are counted as status "0". */
void metrics_request(metrics *m, const char *endpoint, int status);

/* Adds the tokens of one request when it finishes: prompt tokens, generated
 * tokens, prompt tokens served from the cache. Negative values count as 0
 * (counters never go down). Never allocates. */
void metrics_tokens(metrics *m, int64_t prompt, int64_t generated, int64_t cached);

/* Latency observations in seconds: time to first token (one per request)
 * and inter-token latency (one per generated token after the first).
 * Negative values count as 0; NaN and infinities are ignored. Never
 * allocates. */
void metrics_ttft(metrics *m, double s);
void metrics_itl(metrics *m, double s);

/* Sets the gauges (the scheduler, each step): queued requests, slots busy,
 * total slots, KV positions in use over all slots, KV positions total. The
 * last call wins. */
void metrics_gauges(metrics *m, int64_t queue_depth, int64_t slots_active, int64_t slots_total,
                    int64_t kv_used, int64_t kv_total);

/* Renders every series in the Prometheus text exposition format 0.0.4
 * (# HELP and # TYPE lines per family; counters end in _total; histograms
 * as cumulative _bucket{le="..."} lines ending with le="+Inf", then _sum
 * and _count). Request series appear once counted. The values are one
 * consistent snapshot. *out malloc'd (caller frees), NUL-terminated, *len
 * its length without the NUL. Errors: SOV_EINVAL (m, out or len NULL),
 * SOV_ENOMEM; on error *out is NULL and *len 0 where given. */
int metrics_render(metrics *m, char **out, size_t *len);

/* One grammar mask computed, taking s seconds (sov_grammar_masks_total,
 * sov_grammar_mask_seconds_total). Negative, NaN or infinite s ignored. */
void metrics_grammar_mask(metrics *m, double s);

/* KV pool gauges, set by the scheduler each step: blocks in all, referenced
 * by running sequences, and held only by the prefix cache. */
void metrics_kv_blocks(metrics *m, int64_t total, int64_t used, int64_t cached);

/* Bytes of one KV block (K and V of KV_TILE positions over all layers, in
 * the cache's type), set once by the scheduler. */
void metrics_kv_block_bytes(metrics *m, int64_t bytes);

/* Prompt tokens the engine has evaluated so far (a running total; a
 * smaller value than the last one is ignored). */
void metrics_prompt_evaluated(metrics *m, int64_t total);

/* Counts one preemption (a sequence's blocks taken back to make room). */
void metrics_preempt(metrics *m);

#endif
