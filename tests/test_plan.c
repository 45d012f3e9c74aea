/* Unit tests of sov plan's arithmetic (src/plan/plan.c) and catalogue
 * (src/plan/catalog.c): bytes per weight, KV size, memory fit, roofline,
 * MoE active bytes, tokens/day, payback -- including the three wrong
 * published claims of issue 17 -- and a property test: no prediction over
 * the catalogue x hardware x quant grid exceeds its roofline. */
#include "t.h"

#include "plan/catalog.h"
#include "plan/plan.h"

#include <math.h>
#include <string.h>

#define GIB (1024.0 * 1024.0 * 1024.0)

static bool near(double got, double want, double rel) { return fabs(got - want) <= rel * fabs(want); }

/* Test-only hardware profiles: rounded public figures, enough to exercise
 * the arithmetic (the real profiles with their sources are sov plan's data). */
static plan_hw hw_make(const char *id, double mem, double bw, double flops, double price)
{
    plan_hw h;
    memset(&h, 0, sizeof h);
    snprintf(h.id, sizeof h.id, "%s", id);
    h.mem_bytes = mem;
    h.bw = bw;
    h.flops_f16 = flops;
    h.watts_load = 150;
    h.watts_idle = 15;
    h.price = price;
    h.reserve_bytes = 8 * GIB;
    h.eff_decode = 0.7;
    h.eff_prefill = 0.5;
    return h;
}

static plan_hw profiles[4];

static void make_profiles(void)
{
    profiles[0] = hw_make("uma-256", 128 * GIB, 256e9, 59e12, 3200);   /* 256-bit LPDDR5X-8000 */
    profiles[1] = hw_make("spark-273", 128 * GIB, 273e9, 125e12, 4000); /* 128 GB, 273 GB/s */
    profiles[2] = hw_make("dgpu-1008", 24 * GIB, 1008e9, 165e12, 2000); /* 24 GB GDDR6X */
    profiles[3] = hw_make("mac-800", 192 * GIB, 800e9, 27e12, 6600);    /* 192 GB, 800 GB/s */
}

static void test_bpw(void)
{
    static const struct {
        const char *q;
        double want;
    } cases[] = {
        {"f32", 4.0},          {"f16", 2.0},          {"bf16", 2.0},         {"q8_0", 34.0 / 32},
        {"q6_k", 210.0 / 256}, {"q5_0", 22.0 / 32},   {"q5_1", 24.0 / 32},   {"q5_k", 176.0 / 256},
        {"q4_0", 18.0 / 32},   {"q4_1", 20.0 / 32},   {"q4_k", 144.0 / 256}, {"q3_k", 110.0 / 256},
        {"q2_k", 84.0 / 256},  {"q4_k_m", 4.84 / 8},  {"q5_k_m", 5.68 / 8},  {"q3_k_m", 3.91 / 8},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char name[64];
        snprintf(name, sizeof name, "bpw: %s", cases[i].q);
        double got = plan_quant_bpw(cases[i].q);
        t_check(fabs(got - cases[i].want) < 1e-12, name, "got %.6f want %.6f", got, cases[i].want);
    }
    t_check(plan_quant_bpw("Q4_K_M") == plan_quant_bpw("q4_k_m"), "bpw: case-insensitive", "%f",
            plan_quant_bpw("Q4_K_M"));
    t_check(plan_quant_bpw("q9_z") < 0 && plan_quant_bpw(NULL) < 0, "bpw: unknown names are negative", "%f",
            plan_quant_bpw("q9_z"));
    const char *const *qs = plan_quants();
    int n = 0, bad = 0;
    for (; qs[n]; n++)
        if (!(plan_quant_bpw(qs[n]) > 0 && plan_quant_bpw(qs[n]) <= 4))
            bad++;
    t_check(n >= 20 && bad == 0, "bpw: every listed quant resolves", "%d names, %d bad", n, bad);
}

static void test_kv(void)
{
    const plan_model *m = plan_catalog_find("llama-3.1-8b");
    if (!t_check(m != NULL, "catalog: find llama-3.1-8b", "missing"))
        return;
    /* 2 (K and V) x 32 layers x 8 KV heads x 128 x 2 bytes */
    double kv = plan_kv_bytes_pos(m, 2.0);
    t_check(kv == 131072.0, "kv: llama-3.1-8b f16 = 2 x 32 x 8 x 128 x 2 = 131072 B/position", "got %.0f", kv);
    double kv8 = plan_kv_bytes_pos(m, plan_quant_bpw("q8_0"));
    t_check(kv8 == 131072.0 / 2 * 34 / 32, "kv: q8_0 cache is 34/32 bytes an element", "got %.0f", kv8);
    const plan_model *ds = plan_catalog_find("DeepSeek-V3-671B");
    if (t_check(ds != NULL, "catalog: find is case-insensitive", "missing")) {
        /* MLA latent: 61 layers x (512 + 64) x 2 bytes */
        double k = plan_kv_bytes_pos(ds, 2.0);
        t_check(k == 61.0 * 576 * 2, "kv: deepseek-v3 MLA latent = 61 x 576 x 2 B/position", "got %.0f", k);
    }
    t_check(plan_catalog_find("no-such-model") == NULL && plan_catalog_find(NULL) == NULL,
            "catalog: unknown id is NULL", "found");
}

static void test_params(void)
{
    static const struct {
        const char *id;
        double total, active, tol; /* published figures (model cards); active 0: dense */
    } pub[] = {
        {"llama-3.1-8b", 8.03e9, 0, 0.02},       {"llama-3.1-70b", 70.6e9, 0, 0.02},
        {"llama-3.1-405b", 405.9e9, 0, 0.02},    {"qwen2.5-7b", 7.61e9, 0, 0.02},
        {"qwen2.5-32b", 32.5e9, 0, 0.02},        {"qwen2.5-72b", 72.7e9, 0, 0.02},
        {"mistral-large-123b", 123e9, 0, 0.02},  {"mixtral-8x7b", 46.7e9, 12.9e9, 0.02},
        {"qwen3-235b-a22b", 235e9, 22e9, 0.03},  {"gpt-oss-120b", 116.8e9, 5.1e9, 0.03},
        {"deepseek-v3-671b", 671e9, 37e9, 0.05},
    };
    int n = 0;
    const plan_model *cat = plan_catalog(&n);
    t_check(n == (int)(sizeof pub / sizeof pub[0]), "catalog: 11 architectures", "%d", n);
    for (size_t i = 0; i < sizeof pub / sizeof pub[0]; i++) {
        const plan_model *m = plan_catalog_find(pub[i].id);
        char name[128];
        snprintf(name, sizeof name, "params: %s total near %.1fB", pub[i].id, pub[i].total / 1e9);
        if (!t_check(m != NULL, name, "missing"))
            continue;
        t_check(near(m->params, pub[i].total, pub[i].tol), name, "counted %.2fB", m->params / 1e9);
        if (pub[i].active > 0) {
            snprintf(name, sizeof name, "params: %s active near %.1fB", pub[i].id, pub[i].active / 1e9);
            t_check(near(m->params_active, pub[i].active, pub[i].tol), name, "counted %.2fB",
                    m->params_active / 1e9);
        } else {
            /* dense: everything but the input embedding is read */
            double embd = (double)m->n_vocab * (double)m->d_model;
            snprintf(name, sizeof name, "params: %s active = all but the embedding", pub[i].id);
            t_check(fabs(m->params_active - (m->params - embd)) < 1, name, "%.0f vs %.0f", m->params_active,
                    m->params - embd);
        }
    }
    (void)cat;
}

static void test_fit(void)
{
    const plan_model *m = plan_catalog_find("llama-3.1-70b");
    plan_hw h = profiles[0]; /* 128 GiB */
    plan_fit f = plan_fit_of(m, "q4_k_m", 8192, 1, 2.0, &h, 16 * GIB);
    /* weights 70.55e9 x 4.84 / 8 = 42.7 GB; KV 8192 x (2 x 80 x 8 x 128 x 2 = 327680) = 2.68 GB */
    t_check(near(f.weights, 70.55e9 * 4.84 / 8, 0.01), "fit: 70B q4_k_m weights ~ 42.7 GB", "%.2f GB",
            f.weights / 1e9);
    t_check(f.kv == 8192.0 * 327680.0, "fit: 70B KV at 8k f16 = 8192 x 327680 B = 2.68 GB", "%.0f", f.kv);
    t_check(f.overhead >= 256 * 1024.0 * 1024.0 && f.overhead < 0.5 * GIB, "fit: overhead 256 MiB + scratch",
            "%.0f MiB", f.overhead / (1024.0 * 1024.0));
    t_check(fabs(f.total - (f.weights + f.kv + f.overhead)) < 1, "fit: total = weights + kv + overhead", "%.0f",
            f.total);
    t_check(f.usable == 112 * GIB, "fit: usable = 128 GiB - 16 GiB reserve", "%.0f", f.usable);
    t_check(f.fits && f.total > 44e9 && f.total < 47e9, "fit: 70B q4_k_m 8k ctx fits 128 GB (~46 GB)",
            "total %.2f GB fits %d", f.total / 1e9, f.fits);
    plan_fit d = plan_fit_of(m, "q4_k_m", 8192, 1, 2.0, &h, -1);
    t_check(d.usable == 120 * GIB, "fit: negative reserve takes the profile's", "%.0f", d.usable);
    plan_fit g = plan_fit_of(m, "q4_k_m", 8192, 1, 2.0, &profiles[2], -1);
    t_check(!g.fits, "fit: 70B q4_k_m does not fit 24 GB", "total %.2f GB", g.total / 1e9);
    plan_fit b = plan_fit_of(m, "f16", 8192, 1, 2.0, &h, 16 * GIB);
    t_check(!b.fits, "fit: 70B f16 (141 GB) does not fit 128 GB", "total %.2f GB", b.total / 1e9);
    plan_fit s = plan_fit_of(m, "q4_k_m", 131072, 4, 2.0, &h, 16 * GIB);
    t_check(!s.fits && s.kv == 4.0 * 131072 * 327680, "fit: 4 x 128k ctx of KV (172 GB) does not fit", "kv %.1f GB",
            s.kv / 1e9);
    plan_fit u = plan_fit_of(m, "q9", 8192, 1, 2.0, &h, 0);
    t_check(!u.fits && isnan(u.weights), "fit: unknown quant never fits", "fits %d", u.fits);
}

static void test_roofline_70b(void)
{
    const plan_model *m = plan_catalog_find("llama-3.1-70b");
    plan_hw h = profiles[0];
    /* claim: "70B Q4 at 5-8 tok/s on 256 GB/s" */
    plan_speed s = plan_speed_of(m, "q4_k_m", 0, 1, 2.0, &h);
    t_check(s.bytes_token > 40e9 && s.bytes_token < 43e9, "speed: 70B q4_k_m reads ~42 GB a token",
            "%.2f GB", s.bytes_token / 1e9);
    t_check(near(s.decode_bound, 256e9 / s.bytes_token, 1e-12) && s.decode_bound > 5.5 && s.decode_bound < 6.5,
            "speed: 70B q4_k_m on 256 GB/s: bound ~ 6 tok/s", "%.3f", s.decode_bound);
    t_check(s.decode_bound < 8, "claim: 70B Q4 at 8 tok/s on 256 GB/s is impossible", "bound %.2f",
            s.decode_bound);
    plan_speed s0 = plan_speed_of(m, "q4_0", 0, 1, 2.0, &h);
    t_check(s0.decode_bound < 8, "claim: even q4_0 (4.5 bits) stays under 8 tok/s", "bound %.2f", s0.decode_bound);
    t_check(near(s.decode, 0.7 * s.decode_bound, 1e-12), "speed: decode = bound x eff_decode", "%.3f", s.decode);
    plan_speed c = plan_speed_of(m, "q4_k_m", 4096, 1, 2.0, &h);
    t_check(near(c.bytes_token, s.bytes_token + 4096.0 * 327680, 1e-12) && c.decode_bound < s.decode_bound,
            "speed: KV read at 4k context adds 1.34 GB a token", "%.3f GB", c.bytes_token / 1e9);
    t_check(near(s.prefill_bound, 59e12 / (2 * m->params_active), 1e-12), "speed: prefill bound = flops / 2N",
            "%.1f", s.prefill_bound);
    plan_speed big = plan_speed_of(plan_catalog_find("llama-3.1-8b"), "q4_0", 0, 256, 2.0, &profiles[2]);
    t_check(big.compute_bound && big.batch_bound == big.prefill_bound,
            "speed: 256 streams of 8B on 1008 GB/s are compute-bound", "batch %.0f prefill %.0f",
            big.batch_bound, big.prefill_bound);
    plan_hw nof = h;
    nof.flops_f16 = 0;
    plan_speed nf = plan_speed_of(m, "q4_k_m", 0, 8, 2.0, &nof);
    t_check(nf.prefill_bound == 0 && !nf.compute_bound && isfinite(nf.batch_bound),
            "speed: unknown compute: prefill unknown, batch bandwidth-bound", "%f", nf.batch_bound);
}

static void test_moe(void)
{
    const plan_model *mx = plan_catalog_find("mixtral-8x7b");
    plan_hw h = profiles[0];
    double bpw = plan_quant_bpw("q4_0");
    plan_speed s = plan_speed_of(mx, "q4_0", 0, 1, 2.0, &h);
    double e = 3.0 * 4096 * 14336; /* one expert of one layer */
    t_check(plan_expert_params(mx) == e, "moe: mixtral expert = 3 x 4096 x 14336", "%.0f", plan_expert_params(mx));
    /* dense counterpart: all 8 experts read a token */
    double dense_bytes = (mx->params_active + 32.0 * 6 * e) * bpw;
    t_check(near(s.bytes_token, mx->params_active * bpw, 1e-12) && s.bytes_token < 0.3 * dense_bytes,
            "moe: mixtral reads 2 of 8 experts (~7.2 GB vs ~26 GB at q4_0)", "%.2f GB vs %.2f GB",
            s.bytes_token / 1e9, dense_bytes / 1e9);
    t_check(near(mx->params - mx->params_active, 32.0 * 6 * e + 32000.0 * 4096, 1e-9),
            "moe: total - active = 6 idle experts x 32 layers + embedding", "%.0f", mx->params - mx->params_active);
    /* 2 streams touch up to 4 experts, 4 streams all 8 */
    plan_speed b2 = plan_speed_of(mx, "q4_0", 0, 2, 2.0, &h);
    double w2 = (mx->params_active + 32.0 * 2 * e) * bpw;
    t_check(near(b2.batch_bound, 2 * 256e9 / w2, 1e-12), "moe: 2 streams read 4 experts a layer", "%.2f vs %.2f",
            b2.batch_bound, 2 * 256e9 / w2);
    plan_speed b4 = plan_speed_of(mx, "q4_0", 0, 4, 2.0, &h);
    plan_speed b8 = plan_speed_of(mx, "q4_0", 0, 8, 2.0, &h);
    t_check(near(b4.batch_bound, 4 * 256e9 / dense_bytes, 1e-12) && near(b8.batch_bound, 2 * b4.batch_bound, 1e-12),
            "moe: from 4 streams all 8 experts are read; then throughput grows linearly", "%.2f %.2f",
            b4.batch_bound, b8.batch_bound);
    const plan_model *ds = plan_catalog_find("deepseek-v3-671b");
    plan_speed d = plan_speed_of(ds, "q4_k_m", 0, 1, 2.0, &h);
    t_check(d.decode_bound > 9 && d.decode_bound < 13, "moe: deepseek-v3 q4_k_m on 256 GB/s ~ 11 tok/s bound",
            "%.2f", d.decode_bound);
}

static void test_econ(void)
{
    plan_hw h;
    memset(&h, 0, sizeof h);
    h.price = 3200;
    plan_prices p;
    memset(&p, 0, sizeof p);
    snprintf(p.currency, sizeof p.currency, "USD");
    p.out_per_m = 10; /* $0.01 per 1,000 tokens */
    p.duty = 1;
    p.amortize_months = 36;
    plan_econ e = plan_econ_of(5, &h, &p);
    t_check(e.tokens_day == 432000, "econ: 5 tok/s = 432,000 tokens a day", "%.0f", e.tokens_day);
    t_check(e.tokens_day * 30 < 13e6, "claim: 5 tok/s is not 13 million tokens a day (30x less)", "%.0f",
            e.tokens_day);
    t_check(near(e.cloud_day, 4.32, 1e-12), "econ: 432,000 tokens at $0.01/1k = $4.32 a day", "%.4f", e.cloud_day);
    t_check(near(e.payback_days, 3200 / 4.32, 1e-12) && near(e.payback_days, 740.7, 1e-3),
            "econ: $3,200 pays back in 740.7 days at $0.01/1k", "%.2f", e.payback_days);
    p.out_per_m = 30;
    e = plan_econ_of(5, &h, &p);
    t_check(near(e.payback_days, 3200 / 12.96, 1e-12) && near(e.payback_days, 246.9, 1e-3),
            "econ: ... and in 246.9 days at $0.03/1k", "%.2f", e.payback_days);
    t_check(e.payback_days > 25 * 9, "claim: 'pays for itself in 8-25 days' is 10-30x too short", "%.1f",
            e.payback_days);
    t_check(near(e.hw_day, 3200 / (36 * 30.44), 1e-12), "econ: amortized over 36 months", "%.4f", e.hw_day);
    /* electricity: 150 W load, 15 W idle, half the day busy, $0.30/kWh:
     * (150 x 12 + 15 x 12) / 1000 = 1.98 kWh = $0.594 */
    h.watts_load = 150;
    h.watts_idle = 15;
    p.tariff_kwh = 0.30;
    p.duty = 0.5;
    p.in_per_m = 2;
    p.in_out_ratio = 3;
    e = plan_econ_of(5, &h, &p);
    t_check(e.tokens_day == 216000 && near(e.power_day, 0.594, 1e-12), "econ: duty 0.5: 216,000 tokens, 1.98 kWh",
            "%.0f %.4f", e.tokens_day, e.power_day);
    t_check(near(e.cloud_day, 216000 * (30 + 3 * 2) / 1e6, 1e-12), "econ: input tokens priced at in_out_ratio",
            "%.4f", e.cloud_day);
    t_check(near(e.payback_days, 3200 / (e.cloud_day - 0.594), 1e-12), "econ: payback net of electricity", "%.2f",
            e.payback_days);
    p.out_per_m = 0.1;
    p.in_per_m = 0;
    e = plan_econ_of(5, &h, &p);
    t_check(e.saving_day < 0 && isinf(e.payback_days), "econ: cheaper cloud than power: never pays back", "%.2f",
            e.payback_days);
    plan_hw r;
    memset(&r, 0, sizeof r);
    r.price_hour = 2.5;
    e = plan_econ_of(5, &r, &p);
    t_check(e.hw_day == 60, "econ: rented at $2.50/h = $60 a day", "%.2f", e.hw_day);
}

/* No prediction exceeds its roofline, over catalogue x hardware x quant. */
static void test_property(void)
{
    int n = 0;
    const plan_model *cat = plan_catalog(&n);
    const char *const *qs = plan_quants();
    static const int64_t seqs[] = {1, 2, 3, 4, 8, 16, 64, 256, 1024};
    static const double ctxs[] = {0, 512, 4096, 32768};
    for (int i = 0; i < n; i++)
        for (int k = 0; k < 4; k++) {
            const plan_model *m = &cat[i];
            const plan_hw *h = &profiles[k];
            int cases = 0, bad = 0;
            char why[256] = "";
            double compute = h->flops_f16 / (2 * m->params_active);
            for (int q = 0; qs[q]; q++)
                for (size_t c = 0; c < sizeof ctxs / sizeof ctxs[0]; c++) {
                    double prev = 0;
                    for (size_t j = 0; j < sizeof seqs / sizeof seqs[0]; j++) {
                        plan_speed s = plan_speed_of(m, qs[q], ctxs[c], seqs[j], 2.0, h);
                        plan_fit f = plan_fit_of(m, qs[q], (int64_t)ctxs[c], seqs[j], 2.0, h, -1);
                        cases++;
                        const char *fail = NULL;
                        if (!(isfinite(s.bytes_token) && s.bytes_token > 0 && isfinite(s.decode_bound) &&
                              s.decode_bound > 0 && isfinite(s.decode) && s.decode > 0 &&
                              isfinite(s.batch_bound) && s.batch_bound > 0 && isfinite(s.batch) && s.batch > 0 &&
                              isfinite(s.prefill_bound) && s.prefill_bound > 0 && isfinite(s.prefill) &&
                              s.prefill > 0))
                            fail = "not finite and positive";
                        else if (s.decode > s.decode_bound)
                            fail = "decode > decode_bound";
                        else if (s.decode_bound > h->bw / s.bytes_token)
                            fail = "decode_bound > bw / bytes";
                        else if (s.batch > s.batch_bound)
                            fail = "batch > batch_bound";
                        else if (s.batch_bound < s.decode_bound * (1 - 1e-12))
                            fail = "batch_bound < decode_bound";
                        else if (s.batch_bound > compute * (1 + 1e-12))
                            fail = "batch_bound > compute bound";
                        else if (s.prefill > s.prefill_bound)
                            fail = "prefill > prefill_bound";
                        else if (s.batch_bound < prev * (1 - 1e-12))
                            fail = "batch_bound falls with more streams";
                        else if (!(isfinite(f.total) && f.total > f.weights && f.weights > 0 && f.kv >= 0))
                            fail = "fit not finite";
                        prev = s.batch_bound;
                        if (fail && !bad++)
                            snprintf(why, sizeof why, "%s at %s ctx %.0f n_seq %lld", fail, qs[q], ctxs[c],
                                     (long long)seqs[j]);
                    }
                }
            char name[256];
            snprintf(name, sizeof name, "roofline: %.63s on %.47s, every quant/ctx/n_seq", m->id, h->id);
            t_check(bad == 0, name, "%d of %d: first %s", bad, cases, why);
        }
}

int main(void)
{
    make_profiles();
    test_bpw();
    test_kv();
    test_params();
    test_fit();
    test_roofline_70b();
    test_moe();
    test_econ();
    test_property();
    return t_done();
}
