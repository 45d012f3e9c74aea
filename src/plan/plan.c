/* plan: the arithmetic of `sov plan` (see plan.h for every formula). */
#include "plan.h"

#include "../format/ttype.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* ---- bytes per weight ---- */

/* Plain types: block bytes / block elements from the engine's own type table
 * (src/format/ttype.c), so the planner and the loader agree. */
static const struct {
    const char *name;
    enum sov_type t;
} plain[] = {
    {"f32", SOV_F32},   {"f16", SOV_F16},   {"bf16", SOV_BF16}, {"q8_0", SOV_Q8_0}, {"q6_k", SOV_Q6_K},
    {"q5_0", SOV_Q5_0}, {"q5_1", SOV_Q5_1}, {"q5_k", SOV_Q5_K}, {"q4_0", SOV_Q4_0}, {"q4_1", SOV_Q4_1},
    {"q4_k", SOV_Q4_K}, {"q3_k", SOV_Q3_K}, {"q2_k", SOV_Q2_K},
};

/* The k-quant mixes (llama-quantize's _S/_M/_L recipes give attention and
 * some FFN tensors more bits) have no fixed size: the figures are the bits
 * per weight llama.cpp publishes for Llama 2 7B in tools/quantize/README.md
 * (Q3_K_S 3.50, Q3_K_M 3.91, Q3_K_L 4.27, Q4_K_S 4.58, Q4_K_M 4.84,
 * Q5_K_S 5.52, Q5_K_M 5.68), so they are averages for a llama-shape model;
 * other shapes (MoE, wide vocabularies) land a few percent either side. */
static const struct {
    const char *name;
    double bits;
} mixes[] = {
    {"q3_k_s", 3.50}, {"q3_k_m", 3.91}, {"q3_k_l", 4.27}, {"q4_k_s", 4.58},
    {"q4_k_m", 4.84}, {"q5_k_s", 5.52}, {"q5_k_m", 5.68},
};

#define NPLAIN (sizeof plain / sizeof plain[0])
#define NMIX (sizeof mixes / sizeof mixes[0])

double plan_quant_bpw(const char *quant)
{
    if (!quant)
        return -1.0;
    for (size_t i = 0; i < NPLAIN; i++)
        if (strcasecmp(quant, plain[i].name) == 0) {
            const ttype_traits *tr = ttype_get(plain[i].t);
            if (!tr || tr->blck <= 0)
                return -1.0;
            return (double)tr->size / (double)tr->blck;
        }
    for (size_t i = 0; i < NMIX; i++)
        if (strcasecmp(quant, mixes[i].name) == 0)
            return mixes[i].bits / 8.0;
    return -1.0;
}

const char *const *plan_quants(void)
{
    /* plain[] then mixes[], kept in step with them (test_plan checks each name). */
    static const char *const names[] = {"f32",  "f16",    "bf16",   "q8_0",   "q6_k",   "q5_0",   "q5_1",
                                        "q5_k", "q4_0",   "q4_1",   "q4_k",   "q3_k",   "q2_k",   "q3_k_s",
                                        "q3_k_m", "q3_k_l", "q4_k_s", "q4_k_m", "q5_k_s", "q5_k_m", NULL};
    _Static_assert(sizeof names / sizeof names[0] == NPLAIN + NMIX + 1, "plan_quants out of step");
    return names;
}

static bool is_file(const plan_model *m, const char *quant)
{
    return m->file_bytes > 0 && (!quant || !strcasecmp(quant, "file"));
}

double plan_weight_bytes(const plan_model *m, const char *quant, bool active)
{
    if (is_file(m, quant))
        return active ? m->file_active_bytes : m->file_bytes;
    double bpw = plan_quant_bpw(quant);
    return bpw > 0 ? (active ? m->params_active : m->params) * bpw : NAN;
}

/* Bytes per weight at quant (a file: its average over the active weights). */
static double bpw_of(const plan_model *m, const char *quant)
{
    if (is_file(m, quant))
        return m->params_active > 0 ? m->file_active_bytes / m->params_active : -1.0;
    return plan_quant_bpw(quant);
}

/* ---- parameter counts ---- */

double plan_expert_params(const plan_model *m)
{
    if (m->n_expert <= 0)
        return 0.0;
    int64_t ff = m->d_ff_expert > 0 ? m->d_ff_expert : m->d_ff;
    return 3.0 * (double)m->d_model * (double)ff;
}

int64_t plan_moe_layers(const plan_model *m)
{
    if (m->n_expert <= 0)
        return 0;
    int64_t n = m->n_layer - m->n_layer_dense;
    return n > 0 ? n : 0;
}

static double d_v(const plan_model *m) { return (double)(m->d_head_v > 0 ? m->d_head_v : m->d_head); }

/* Attention weights of one layer. */
static double attn_params(const plan_model *m)
{
    double d = (double)m->d_model, h = (double)m->n_head, dh = (double)m->d_head;
    if (m->kv_lora_rank > 0) {
        /* MLA (DeepSeek-V2/V3): q = d -> q_lora -> h x d_head (or d -> h x d_head);
         * kv_a: d -> kv_lora + rope; kv_b: kv_lora -> h x (nope + v); o: h x v -> d;
         * plus the q_lora and kv_lora norms. */
        double r = (double)m->kv_lora_rank, rope = (double)m->d_head_rope;
        double q = m->q_lora_rank > 0 ? d * (double)m->q_lora_rank + (double)m->q_lora_rank * h * dh
                                              + (double)m->q_lora_rank
                                        : d * h * dh;
        double kv = d * (r + rope) + r * h * (dh - rope + d_v(m)) + r;
        return q + kv + h * d_v(m) * d;
    }
    double kvh = (double)m->n_head_kv;
    return d * h * dh + 2.0 * d * kvh * dh + h * d_v(m) * d;
}

void plan_model_count(plan_model *m)
{
    double d = (double)m->d_model, L = (double)m->n_layer;
    double embd = (double)m->n_vocab * d;
    double out = m->tied_embd ? 0.0 : embd;
    double norms = L * 2.0 * d + d; /* attention and FFN norms per layer, final norm */
    double attn = L * attn_params(m);
    double ffn_all, ffn_act;
    int64_t nmoe = plan_moe_layers(m);
    if (m->n_expert > 0) {
        double e = plan_expert_params(m);
        double dense = (double)(m->n_layer - nmoe) * 3.0 * d * (double)m->d_ff;
        double router = (double)nmoe * d * (double)m->n_expert;
        ffn_all = dense + router + (double)nmoe * (double)(m->n_expert + m->n_shared_expert) * e;
        ffn_act = dense + router + (double)nmoe * (double)(m->n_expert_used + m->n_shared_expert) * e;
    } else {
        ffn_all = ffn_act = L * 3.0 * d * (double)m->d_ff;
    }
    m->params = embd + out + norms + attn + ffn_all;
    /* The output matrix is read whole each token: for a tied model it is the
     * embedding matrix itself. */
    m->params_active = (m->tied_embd ? embd : out) + norms + attn + ffn_act;
}

/* ---- fit ---- */

double plan_kv_bytes_pos(const plan_model *m, double kv_bpe)
{
    if (m->kv_lora_rank > 0)
        return (double)m->n_layer * (double)(m->kv_lora_rank + m->d_head_rope) * kv_bpe;
    return 2.0 * (double)m->n_layer * (double)m->n_head_kv * (double)m->d_head * kv_bpe;
}

#define MIB (1024.0 * 1024.0)
#define RUNTIME_BYTES (256.0 * MIB) /* fixed runtime: code, tokenizer, thread pools, graph */

static double ff_active(const plan_model *m)
{
    double dense = (double)m->d_ff;
    if (m->n_expert > 0) {
        int64_t ff = m->d_ff_expert > 0 ? m->d_ff_expert : m->d_ff;
        double moe = (double)(m->n_expert_used + m->n_shared_expert) * (double)ff;
        if (moe > dense)
            dense = moe;
    }
    return dense;
}

plan_fit plan_fit_of(const plan_model *m, const char *quant, int64_t ctx, int64_t n_seq, double kv_bpe,
                     const plan_hw *hw, double reserve_bytes)
{
    plan_fit f = {0};
    double bpw = bpw_of(m, quant);
    if (n_seq < 1)
        n_seq = 1;
    if (ctx < 0)
        ctx = 0;
    f.weights = bpw > 0 ? plan_weight_bytes(m, quant, false) : NAN;
    f.kv = (double)ctx * (double)n_seq * plan_kv_bytes_pos(m, kv_bpe);
    /* Per sequence scratch in f32: logits + the residual stream, norms and
     * attention in/out (~4 d_model) + the FFN activations (gate, up, their
     * product) + one layer's attention scores over the context. */
    double scratch = 4.0 * ((double)m->n_vocab + 4.0 * (double)m->d_model + 3.0 * ff_active(m)
                            + (double)m->n_head * (double)ctx);
    f.overhead = RUNTIME_BYTES + (double)n_seq * scratch;
    f.total = f.weights + f.kv + f.overhead;
    double res = reserve_bytes >= 0 ? reserve_bytes : hw->reserve_bytes;
    f.usable = hw->mem_bytes - res;
    f.fits = bpw > 0 && f.total <= f.usable;
    return f;
}

/* ---- speed ---- */

/* The matrix rate that bounds m at quant: float weights (f32, f16, bf16)
 * run on the FP16 rate; quantized weights may also run as int8 dot
 * products (llama.cpp's MMQ kernels, sov's own CPU kernels with VNNI), so
 * the bound is the faster of the two. 0: unknown. */
static double flops_of(const plan_hw *hw, const plan_model *m, const char *quant)
{
    bool flt = quant && (!strcasecmp(quant, "f32") || !strcasecmp(quant, "f16") || !strcasecmp(quant, "bf16"));
    if (is_file(m, quant))
        flt = m->params_active > 0 && m->file_active_bytes / m->params_active >= 1.9;
    if (flt)
        return hw->flops_f16 > 0 ? hw->flops_f16 : hw->flops_int8;
    return fmax(hw->flops_f16, hw->flops_int8);
}

plan_speed plan_speed_of(const plan_model *m, const char *quant, double ctx_avg, int64_t n_seq, double kv_bpe,
                         const plan_hw *hw)
{
    plan_speed s = {0};
    double bpw = bpw_of(m, quant);
    if (bpw <= 0 || hw->bw <= 0 || m->params_active <= 0) {
        s.bytes_token = s.decode_bound = s.decode = s.prefill_bound = s.prefill = NAN;
        s.batch_bound = s.batch = NAN;
        return s;
    }
    if (n_seq < 1)
        n_seq = 1;
    if (ctx_avg < 0)
        ctx_avg = 0;
    double kv_tok = ctx_avg * plan_kv_bytes_pos(m, kv_bpe);
    s.bytes_token = m->params_active * bpw + kv_tok;

    double flops = flops_of(hw, m, quant);
    double compute = flops > 0 ? flops / (2.0 * m->params_active) : INFINITY;

    double bw_bound = hw->bw / s.bytes_token;
    s.decode_bound = fmin(bw_bound, compute);
    s.decode = s.decode_bound * hw->eff_decode;

    s.prefill_bound = flops > 0 ? compute : 0.0;
    s.prefill = s.prefill_bound * hw->eff_prefill;

    /* Weights read by one step of n_seq streams: MoE reads the experts the
     * batch touches, at most all of them. */
    double w_step = m->params_active;
    int64_t nmoe = plan_moe_layers(m);
    if (nmoe > 0 && m->n_expert_used > 0) {
        double touched = (double)n_seq * (double)m->n_expert_used;
        if (touched > (double)m->n_expert)
            touched = (double)m->n_expert;
        w_step += (double)nmoe * (touched - (double)m->n_expert_used) * plan_expert_params(m);
    }
    double n = (double)n_seq;
    double batch_bw = n * hw->bw / (w_step * bpw + n * kv_tok);
    s.compute_bound = compute < batch_bw;
    s.batch_bound = s.compute_bound ? compute : batch_bw;
    s.batch = s.batch_bound * (s.compute_bound ? hw->eff_prefill : hw->eff_decode);
    return s;
}

/* ---- economics ---- */

#define DAYS_PER_MONTH 30.44 /* 365.25 / 12 */

plan_econ plan_econ_of(double tok_s, const plan_hw *hw, const plan_prices *p)
{
    plan_econ e = {0};
    double duty = p->duty < 0 ? 0 : p->duty > 1 ? 1 : p->duty;
    e.tokens_day = tok_s * 86400.0 * duty;
    e.cloud_day = e.tokens_day * (p->out_per_m + p->in_out_ratio * p->in_per_m) / 1e6;
    double kwh = (hw->watts_load * 24.0 * duty + hw->watts_idle * 24.0 * (1.0 - duty)) / 1000.0;
    e.power_day = kwh * p->tariff_kwh;
    if (hw->price > 0)
        e.hw_day = p->amortize_months > 0 ? hw->price / (p->amortize_months * DAYS_PER_MONTH) : 0.0;
    else
        e.hw_day = hw->price_hour * 24.0;
    e.saving_day = e.cloud_day - e.power_day;
    e.payback_days = e.saving_day > 0 ? hw->price / e.saving_day : INFINITY;
    return e;
}

double plan_option_cost(const plan_option *o, double days) { return o->upfront + o->per_day * days; }

void plan_option_of(plan_option *o, const char *name, const plan_hw *const *hw, const double *tok_s, int n_hw,
                    const plan_prices *p)
{
    memset(o, 0, sizeof *o);
    snprintf(o->name, sizeof o->name, "%s", name ? name : "");
    o->fits = n_hw > 0;
    bool rented = false;
    for (int i = 0; i < n_hw; i++) {
        if (!(tok_s[i] > 0))
            o->fits = false;
        plan_econ e = plan_econ_of(tok_s[i] > 0 ? tok_s[i] : 0.0, hw[i], p);
        o->tok_s += tok_s[i] > 0 ? tok_s[i] : 0.0;
        o->tokens_day += e.tokens_day;
        o->cloud_day += e.cloud_day;
        if (hw[i]->price_hour > 0 && !(hw[i]->price > 0)) {
            rented = true;
            o->per_day += e.hw_day; /* the rent includes the electricity */
        } else {
            o->upfront += hw[i]->price;
            o->per_day += e.power_day;
        }
    }
    if (!o->fits) {
        o->tok_s = o->tokens_day = o->cloud_day = 0.0;
    }
    double saving = o->cloud_day - o->per_day;
    o->payback_days = rented && o->upfront <= 0 ? 0.0 : saving > 0 ? o->upfront / saving : INFINITY;
}

void plan_prices_default(plan_prices *p, const char *src[3])
{
    memset(p, 0, sizeof *p);
    snprintf(p->currency, sizeof p->currency, "USD");
    p->in_per_m = 2.50;
    p->out_per_m = 10.00;
    p->in_out_ratio = 1.0;
    p->tariff_kwh = 0.17;
    p->duty = 1.0;
    p->amortize_months = 36;
    if (src) {
        src[0] = "API prices: OpenAI gpt-4o list price, $2.50 per 1M input and $10.00 per 1M output tokens "
                 "(openai.com/api/pricing, 2024-25); 1 input token per output token (assumed)";
        src[1] = "tariff: $0.17 per kWh, about the US average residential price (EIA Electric Power Monthly, 2024)";
        src[2] = "duty: generating 24 h a day (the most a machine can do; assumed); hardware written off over "
                 "36 months (assumed)";
    }
}
