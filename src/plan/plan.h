/* plan: capacity and economics from first principles (`sov plan`).
 *
 * Hardware and model profiles in, arithmetic out, every figure with the
 * formula that made it:
 *
 *   fit      weights + KV (ctx x parallel sequences, KV type) + runtime
 *            overhead against the hardware's memory less a reserve
 *   decode   tok/s <= bandwidth / bytes read per token (and <= compute / 2N) (weights of the
 *            dense part + the active experts' + the KV the attention reads),
 *            times an efficiency factor (assumed, or calibrated here)
 *   prefill  tok/s <= compute / (2 x active matrix params per token)
 *   batch    N streams share each weight read until compute-bound:
 *            aggregate <= min(N x bw / (weights + N x kv), compute / flops)
 *   economy  tokens/day = tok/s x 86,400 x duty cycle; cloud cost of those
 *            tokens at prices per 1M; electricity = watts x hours x tariff;
 *            payback days = hardware price / (cloud cost - electricity) a day
 *
 * All sizes in bytes, bandwidth in bytes/s, compute in flop/s, money in the
 * profile's currency. Pure functions: no I/O except the profile loaders. */
#ifndef SOV_PLAN_H
#define SOV_PLAN_H

#include <stdbool.h>
#include <stdint.h>

/* ---- hardware ---- */

typedef struct plan_hw {
    char id[48];              /* "ryzen-ai-max-395", "dgx-spark", "rtx-4090", "this", ... */
    char name[96];            /* human name */
    double mem_bytes;         /* memory the model can live in (unified, or VRAM) */
    double bw;                /* memory bandwidth, theoretical, bytes/s */
    double flops_f16;         /* dense FP16/BF16 matrix throughput, flop/s (0: unknown) */
    double flops_int8;        /* INT8 / FP8 (0: unknown) */
    double flops_int4;        /* FP4 / INT4 (0: unknown) */
    double watts_load;        /* power under inference load (system), W */
    double watts_idle;        /* idle, W */
    double price;             /* purchase price (0: rented) */
    double price_hour;        /* rental price per hour (cloud; 0: owned) */
    double reserve_bytes;     /* default memory kept for the OS and apps */
    double eff_decode;        /* achievable share of bw in decode (assumed unless calibrated) */
    double eff_prefill;       /* achievable share of flops in prefill */
    bool calibrated;          /* eff_* measured on this machine (sov plan --calibrate) */
    char source[160];         /* where the figures come from */
} plan_hw;

/* ---- models ---- */

typedef struct plan_model {
    char id[64];              /* "llama-3.1-70b", "mixtral-8x7b", ... or the file name */
    int64_t n_layer, d_model, n_head, n_head_kv, d_head, d_ff, n_vocab;
    int64_t n_expert, n_expert_used;  /* 0 / 0: dense */
    int64_t d_ff_expert;      /* MoE: each expert's FFN width (0: d_ff) */
    int64_t n_shared_expert;  /* MoE: always-active experts (DeepSeek, Qwen3: 0 or 1) */
    int64_t ctx_train;
    bool tied_embd;
    double params;            /* all parameters */
    double params_active;     /* read per token (dense: all but the embedding rows) */
    /* Added for the architectures the catalogue holds (0: not used): */
    int64_t n_layer_dense;    /* MoE: leading layers with a dense FFN of d_ff (DeepSeek-V3: 3) */
    int64_t q_lora_rank;      /* MLA: rank of the compressed query (0: plain q projection) */
    int64_t kv_lora_rank;     /* MLA: rank of the compressed KV latent (0: GQA / MHA) */
    int64_t d_head_rope;      /* MLA: rotary part of each q/k head (part of d_head) */
    int64_t d_head_v;         /* value head width when it differs from d_head (0: d_head) */
    /* A model read from a GGUF file (0 for the catalogue): the bytes of its
     * tensors as stored, all of them and those one token reads; the quant
     * name "file" (or NULL) then stands for these instead of a bpw. */
    double file_bytes, file_active_bytes;
} plan_model;

/* Bytes of m's weights at quant (params x bpw), or for quant NULL / "file"
 * the file's own bytes when m has them; NAN for an unknown quant. active:
 * the bytes one token reads instead (params_active). */
double plan_weight_bytes(const plan_model *m, const char *quant, bool active);

/* Bytes per weight of a quant type by name ("f16", "q8_0", "q4_0", "q4_k_m",
 * ...; the k-quant mixes as their average over a llama-shape model), or a
 * negative value for an unknown name. Case-insensitive. */
double plan_quant_bpw(const char *quant);

/* The quant names plan_quant_bpw knows, NULL-terminated (for tables and tests). */
const char *const *plan_quants(void);

/* Parameters of one expert's FFN in one layer (gate, up, down: 3 x d_model x
 * d_ff_expert); 0 for a dense model. */
double plan_expert_params(const plan_model *m);

/* Layers whose FFN is a mixture of experts (n_layer - n_layer_dense; 0: dense). */
int64_t plan_moe_layers(const plan_model *m);

/* Fills m->params and m->params_active from the shapes: embedding + layers x
 * (attention + FFN or router + experts) + norms + output (none if tied).
 * Active: everything but the input embedding (one row is looked up, not read
 * whole), with only n_expert_used + n_shared_expert experts per MoE layer.
 * Biases are left out (Qwen2.5's q/k/v biases: < 0.01 %). */
void plan_model_count(plan_model *m);

/* ---- arithmetic ---- */

typedef struct plan_fit {
    double weights, kv, overhead, total, usable;
    bool fits;
} plan_fit;

/* KV bytes of one position (K and V, all layers) for kv_bpe bytes per element:
 * 2 x n_layer x n_head_kv x d_head x kv_bpe. MLA (kv_lora_rank > 0): the
 * compressed latent, n_layer x (kv_lora_rank + d_head_rope) x kv_bpe, as
 * llama.cpp's MLA path caches it (an approximation of what sov would keep). */
double plan_kv_bytes_pos(const plan_model *m, double kv_bpe);

/* Memory of m at quant q with ctx positions x n_seq sequences.
 * weights = params x bpw; kv = ctx x n_seq x plan_kv_bytes_pos;
 * overhead = 256 MiB runtime + per sequence 4 B x (n_vocab logits +
 * 4 d_model + 3 d_ff_active + n_head x ctx attention scores);
 * usable = hw->mem_bytes - reserve (reserve_bytes < 0: hw->reserve_bytes).
 * An unknown quant gives weights = NAN and fits = false. */
plan_fit plan_fit_of(const plan_model *m, const char *quant, int64_t ctx, int64_t n_seq, double kv_bpe,
                     const plan_hw *hw, double reserve_bytes);

typedef struct plan_speed {
    double bytes_token;       /* bytes read per decoded token (one stream, at the average context) */
    double decode_bound;      /* bw / bytes_token: the roofline, never exceeded */
    double decode;            /* decode_bound x eff_decode */
    double prefill_bound, prefill;
    double batch_bound;       /* aggregate tok/s of n_seq streams, bound */
    double batch;             /* x efficiency */
    bool compute_bound;       /* the batch is limited by compute, not bandwidth */
} plan_speed;

/* bytes_token = params_active x bpw + ctx_avg x kv_bytes_pos.
 * compute bound = flops / (2 x params_active) with flops = flops_f16 for
 * float weights (f32, f16, bf16; int8 when f16 is unknown) and the larger
 * of flops_f16 and flops_int8 for quantized ones (they may run as int8 dot
 * products); 0 when both are unknown: then compute never binds and
 * prefill_bound = 0, "unknown"; attention's O(ctx) flops are left out, so
 * the bound stays an upper bound.
 * decode_bound = min(bw / bytes_token, compute bound); decode x eff_decode.
 * batch of n_seq: min(n_seq x bw / (weights read a step + n_seq x ctx_avg x
 * kv_bytes_pos), compute bound); a MoE step reads the dense part and
 * min(n_expert, n_seq x n_expert_used) + n_shared_expert experts per layer
 * (the distinct experts n_seq tokens can touch; an upper estimate).
 * batch = batch_bound x eff_decode (bandwidth-bound) or eff_prefill. */
plan_speed plan_speed_of(const plan_model *m, const char *quant, double ctx_avg, int64_t n_seq, double kv_bpe,
                         const plan_hw *hw);

typedef struct plan_prices {
    char currency[8];         /* "USD" */
    double in_per_m, out_per_m; /* cloud price per 1M input / output tokens */
    double in_out_ratio;      /* input tokens per output token */
    double tariff_kwh;        /* electricity per kWh */
    double duty;              /* share of the day generating (0..1) */
    double amortize_months;   /* hardware written off over this */
} plan_prices;

typedef struct plan_econ {
    double tokens_day;        /* output tokens a day */
    double cloud_day;         /* what the same tokens cost in the cloud a day */
    double power_day;         /* electricity a day */
    double hw_day;            /* hardware amortized a day (or rent) */
    double saving_day;        /* cloud_day - power_day */
    double payback_days;      /* price / saving_day (INFINITY if never) */
} plan_econ;

/* tokens_day = tok_s x 86,400 x duty; cloud_day = tokens_day x (out_per_m +
 * in_out_ratio x in_per_m) / 1e6; power_day = (watts_load x 24 x duty +
 * watts_idle x 24 x (1 - duty)) / 1000 x tariff_kwh; hw_day = price /
 * (amortize_months x 30.44) if owned (0 when amortize_months <= 0), else
 * price_hour x 24; duty is clamped to 0..1; saving_day =
 * cloud_day - power_day; payback_days = price / saving_day (INFINITY when
 * saving_day <= 0; 0 for rented hardware: compare hw_day with saving_day). */
plan_econ plan_econ_of(double tok_s, const plan_hw *hw, const plan_prices *p);

/* One way to get the tokens, for the side-by-side table and the cost chart:
 * an owned machine (A, B), both (hybrid), or a rented cloud GPU instance. */
typedef struct plan_option {
    char name[64];            /* hardware id, "hybrid (A + B)", ... */
    bool fits;                /* the model fits (on every machine of the option) */
    double tok_s;             /* aggregate output tok/s (0 when it does not fit) */
    double tokens_day;        /* tok_s x 86,400 x duty */
    double upfront;           /* purchase price(s); 0 for rented */
    double per_day;           /* running cost a day: electricity (owned) or rent x 24 */
    double cloud_day;         /* what tokens_day cost from a cloud API */
    double payback_days;      /* upfront / (cloud_day - per_day); INFINITY if never; 0 rented */
} plan_option;

/* The cost of option o after d days: upfront + per_day x d. */
double plan_option_cost(const plan_option *o, double days);

/* Fills *o for the machines hw[0..n_hw) together (n_hw 1: one machine; 2:
 * the hybrid, tokens and costs summed) at tok_s[i] output tok/s each
 * (0: the model does not fit there, which makes the whole option not fit),
 * with tokens and electricity at p->duty (plan_econ_of), named name. */
void plan_option_of(plan_option *o, const char *name, const plan_hw *const *hw, const double *tok_s, int n_hw,
                    const plan_prices *p);

/* Default prices (USD): plan_prices with the figures below; src (may be
 * NULL) receives a static one-line source for each figure: src[0] the API
 * prices, src[1] the tariff, src[2] the duty cycle and amortization. */
void plan_prices_default(plan_prices *p, const char *src[3]);

#endif
