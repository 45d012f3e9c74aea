/* Unit tests of sov plan's claims checker (src/plan/check.c): each claim
 * form on hand-worked figures, including the three wrong published claims
 * of issue 17, the built-in report's claims, and claims it cannot read. */
#include "t.h"

#include "base/err.h"
#include "plan/catalog.h"
#include "plan/check.h"
#include "plan/plan.h"

#include <math.h>
#include <string.h>

/* Test-only profiles with round figures (the real ones are sov plan's data). */
static plan_hw hw[5];

static void make_hw(void)
{
    const struct {
        const char *id;
        double mem, bw, flops, price, hour, wl, wi, reserve;
    } p[] = {
        {"ws", 128e9, 256e9, 59e12, 2000, 0, 140, 15, 8e9},
        {"box", 128e9, 273e9, 125e12, 4000, 0, 170, 35, 8e9},
        {"gpu24", 24e9, 1008e9, 165e12, 3000, 0, 550, 70, 1.5e9},
        {"cloud", 80e9, 3350e9, 989e12, 0, 2.5, 0, 0, 2e9},
        {"apple-m9-ultra", 192e9, 800e9, 0, 9000, 0, 300, 20, 16e9},
    };
    for (int i = 0; i < 5; i++) {
        memset(&hw[i], 0, sizeof hw[i]);
        snprintf(hw[i].id, sizeof hw[i].id, "%s", p[i].id);
        hw[i].mem_bytes = p[i].mem;
        hw[i].bw = p[i].bw;
        hw[i].flops_f16 = p[i].flops;
        hw[i].price = p[i].price;
        hw[i].price_hour = p[i].hour;
        hw[i].watts_load = p[i].wl;
        hw[i].watts_idle = p[i].wi;
        hw[i].reserve_bytes = p[i].reserve;
        hw[i].eff_decode = 0.7;
        hw[i].eff_prefill = 0.4;
    }
}

static plan_prices prices;
static plan_check_ctx cx;

static void make_ctx(double rtt)
{
    memset(&prices, 0, sizeof prices);
    snprintf(prices.currency, sizeof prices.currency, "USD");
    prices.in_per_m = 2.5;
    prices.out_per_m = 10;
    prices.in_out_ratio = 1;
    prices.tariff_kwh = 0.20;
    prices.duty = 1;
    prices.amortize_months = 36;
    cx = (plan_check_ctx){.hw = hw,
                          .n_hw = 5,
                          .prices = &prices,
                          .kv_bpe = 2,
                          .ctx = 0,
                          .hw_a = "ws",
                          .hw_b = "box",
                          .rtt_s = rtt,
                          .rtt_how = "test",
                          .req_bytes = 10000,
                          .resp_bytes = 115000};
}

/* Checks claim's verdict kind and that the correct figure contains want. */
static void expect(const char *name, const char *claim, int kind, const char *want)
{
    plan_verdict v;
    int rc = plan_check(&cx, claim, &v);
    bool ok = rc == 0 && v.kind == kind && (!want || strstr(v.correct, want));
    t_check(ok, name, "rc %d (%s), kind %d (%s) want %d, correct \"%s\" should contain \"%s\"", rc,
            rc ? err_msg() : "", v.kind, v.verdict, kind, v.correct, want ? want : "");
}

int main(void)
{
    make_hw();
    make_ctx(0.0002);

    /* Llama-3.1-70B reads 69.50e9 parameters a token (all but the
     * embedding; test_plan checks the count). q4_k_m: 4.84 bits = 0.605 B:
     * 69.50e9 x 0.605 = 42.05 GB; 256e9 / 42.05e9 = 6.09 tok/s; x 0.7 = 4.26
     * with ctx 0 (no KV read). */
    expect("check speed: 70B Q4 at 8 tok/s on 256 GB/s is impossible", "70B Q4 on ws at 8 tok/s", PLAN_V_WRONG,
           "at most 6.09 tok/s");
    expect("check speed: a range is judged at its top", "70B Q4 on ws at 5-8 tok/s", PLAN_V_WRONG, "6.09");
    expect("check speed: an en dash range", "70B Q4 on ws at 5\xe2\x80\x93" "8 tok/s", PLAN_V_WRONG, "6.09");
    expect("check speed: 5 tok/s is possible (82 % of the bandwidth)", "70B Q4 on ws at 5 tok/s", PLAN_V_POSSIBLE,
           "needs 82 %");
    expect("check speed: 4 tok/s is plausible (4.26 expected)", "70B Q4 on ws at 4 tok/s", PLAN_V_OK, "4.26");
    /* q4_0: 4.5 bits = 0.5625 B: 256e9 / (69.50e9 x 0.5625) = 6.55 */
    expect("check speed: q4_0 named reads 0.5625 B a weight", "llama-3.1-70b q4_0 on ws at 6.5 tok/s",
           PLAN_V_POSSIBLE, "6.55");
    /* Mixtral 8x7B: 12.75e9 active (2 of 8 experts); 273e9 / (12.75e9 x
     * 0.5625) = 38.07 tok/s */
    expect("check speed: MoE counts the active experts only", "mixtral-8x7b q4_0 on box at 40 tok/s", PLAN_V_WRONG,
           "38.0");
    expect("check speed: a model that does not fit is impossible", "70B Q4 on gpu24 at 1 tok/s", PLAN_V_WRONG,
           "does not fit");
    /* 800e9 / (69.50e9 x 1.0625) = 10.83 tok/s, x 0.7 = 7.58 */
    expect("check speed: a part of an id names the profile", "70B q8 on the ultra at 1 tok/s", PLAN_V_OK,
           "7.58 tok/s expected");

    /* 5 x 86,400 = 432,000 */
    expect("check tokens/day: 5 tok/s is not 13 million a day", "5 tokens/s is roughly 13 million tokens per day",
           PLAN_V_WRONG, "432,000 tokens a day, not 13.0 million (30.1x");
    expect("check tokens/day: 5 tok/s is 432,000 a day", "5 tok/s = 432,000 tokens a day", PLAN_V_OK, "432,000");

    /* 432,000 tokens at $0.01-0.03 per 1,000 = $4.32-12.96 a day:
     * 3,200 / 12.96 = 246.9, 3,200 / 4.32 = 740.7 days */
    expect("check payback: 8-25 days is wrong", "a $3,200 machine at 5 tok/s pays for itself in 8-25 days at "
                                                "$0.01-0.03 per 1,000 tokens",
           PLAN_V_WRONG, "247 days to 741 days");
    expect("check payback: 250-740 days is right", "a $3,200 machine at 5 tok/s pays for itself in 250-740 days at "
                                                  "$0.01-0.03 per 1K tokens",
           PLAN_V_OK, "247 days to 741 days");
    /* with ws named: electricity 140 W x 24 h = 3.36 kWh x $0.20 = $0.672 a
     * day; 3,200 / (12.96 - 0.672) = 260.4 days */
    expect("check payback: the named hardware's electricity counts",
           "a $3,200 ws at 5 tok/s pays back in 8 days at $0.03 per 1,000 tokens", PLAN_V_WRONG, "260 days");
    /* price per 1M: $10 per 1M = $0.01 per 1,000 -> 740.7 days */
    expect("check payback: a price per million tokens",
           "a $3,200 machine at 5 tok/s pays for itself in 741 days at $10 per million tokens", PLAN_V_OK, "741 days");

    /* 100,000 x 1,000 = 1e8 tokens x $0.01-0.03 per 1,000 = $1,000-3,000 */
    expect("check bill: 100,000 calls a month", "100,000 calls a month at 1,000 tokens per call cost $1,000-3,000 at "
                                                "$0.01-0.03 per 1,000 tokens",
           PLAN_V_OK, "$1,000-$3,000 a month");
    expect("check bill: a tenfold error is wrong", "100,000 calls a month at 1,000 tokens per call cost $100 at "
                                                   "$0.01 per 1,000 tokens",
           PLAN_V_WRONG, "$1,000 a month");
    /* 1e8 tokens / (30.44 x 86,400 s) = 38.0 tok/s */
    expect("check bill: the local rate it takes", "100000 calls a month at 1000 tokens per call cost $1,000 at $0.01 "
                                                  "per 1000 tokens",
           PLAN_V_OK, "38.0 tok/s");

    /* 18 months = 547.9 days. hybrid: 2,000 + 4,000 + (3.36 + 4.08 kWh) x
     * $0.20 x 547.9 = 6,815; cloud: 2.5 x 24 x 547.92 = 32,875 */
    expect("check cost: the hybrid costs less than the cloud instance", "the hybrid costs less than cloud over 18 months",
           PLAN_V_OK, "hybrid $6,815 against cloud $32,875");
    expect("check cost: the order of the sides counts", "cloud costs less than the hybrid over 18 months", PLAN_V_WRONG,
           "cloud $32,875 against hybrid $6,815");
    /* 12 days: ws 2,000 + 3.36 x 0.2 x 12 = 2,008.06; cloud 720 */
    expect("check cost: two profiles", "cloud is cheaper than ws over 0.4 months", PLAN_V_OK, "(less)");

    /* (10,000 + 115,000) B x 8 / 10 Gb/s = 0.100 ms + 0.2 ms round trip */
    expect("check link: 10 GbE adds < 1 ms", "the 10 GbE link adds < 1 ms per request", PLAN_V_OK, "0.300 ms");
    make_ctx(0.002);
    expect("check link: a 2 ms round trip makes it wrong", "the 10 GbE link adds < 1 ms per request", PLAN_V_WRONG,
           "2.100 ms");
    make_ctx(-1);
    expect("check link: without a round trip, the wire time", "the 1 Gb/s link adds under 1 ms per request",
           PLAN_V_WRONG, "1.000 ms");
    make_ctx(0.0002);

    /* fit: 70.55e9 x 0.605 = 42.7 GB > 22.5 GB usable; 8B: 8.03e9 x 0.605
     * = 4.9 GB */
    expect("check fit: 70B Q4 does not fit in 24 GB", "70B Q4 fits on gpu24", PLAN_V_WRONG, "does not fit");
    expect("check fit: 8B Q4 fits in 24 GB", "llama-3.1-8b q4_k_m fits on gpu24", PLAN_V_OK, "fits in gpu24");
    expect("check fit: a negated claim", "70B Q4 does not fit on gpu24", PLAN_V_OK, "does not fit");

    /* the built-in report: every claim reads, and the three wrong ones are wrong */
    const char *const *rc = plan_report_claims();
    int n = 0, bad = 0, wrong = 0;
    plan_check_ctx rx = cx;
    rx.hw_a = "ws";
    rx.hw_b = "box";
    for (; rc[n]; n++) {
        /* the report names the real profiles: map them onto the test ones */
        char claim[300];
        snprintf(claim, sizeof claim, "%s", rc[n]);
        const char *from[] = {"ryzen-ai-max-395", "dgx-spark", "cloud-h100"}, *to[] = {"ws", "box", "cloud"};
        for (int k = 0; k < 3; k++) {
            char *p = strstr(claim, from[k]);
            if (p) {
                char tail[300];
                snprintf(tail, sizeof tail, "%s", p + strlen(from[k]));
                snprintf(p, sizeof claim - (size_t)(p - claim), "%s%s", to[k], tail);
            }
        }
        plan_verdict v;
        if (plan_check(&rx, claim, &v))
            bad++;
        else if (v.kind == PLAN_V_WRONG)
            wrong++;
    }
    t_check(n >= 7 && bad == 0, "check report: every built-in claim reads", "%d claims, %d unreadable", n, bad);
    t_check(wrong >= 4, "check report: the speed, tokens/day and payback claims are judged wrong", "%d wrong", wrong);

    /* claims it cannot read */
    const char *unreadable[] = {"", "hello world", "70B Q4 at 8 tok/s", "on ws at 8 tok/s",
                                "5 tok/s pays for itself in 8 days", "the link is fast"};
    for (size_t i = 0; i < sizeof unreadable / sizeof unreadable[0]; i++) {
        plan_verdict v;
        int r = plan_check(&cx, unreadable[i], &v);
        char name[96];
        snprintf(name, sizeof name, "check unreadable: \"%s\"", unreadable[i]);
        t_check(r == SOV_EINVAL && v.kind == PLAN_V_UNKNOWN && err_msg()[0], name, "rc %d kind %d", r, v.kind);
    }
    /* a long claim is truncated in the verdict, not overflowed */
    char longc[2000];
    memset(longc, 'x', sizeof longc - 1);
    longc[sizeof longc - 1] = 0;
    memcpy(longc, "70B Q4 on ws at 8 tok/s ", 24);
    plan_verdict v;
    int r = plan_check(&cx, longc, &v);
    t_check(r == 0 && v.kind == PLAN_V_WRONG && strlen(v.claim) == sizeof v.claim - 1, "check: a 2,000-byte claim",
            "rc %d kind %d len %zu", r, v.kind, strlen(v.claim));

    /* sizes name the nearest dense catalogue model */
    t_check(plan_check_model("70B") == plan_catalog_find("llama-3.1-70b"), "check model: 70B is llama-3.1-70b", "-");
    t_check(plan_check_model("72b") == plan_catalog_find("qwen2.5-72b"), "check model: 72b is qwen2.5-72b", "-");
    t_check(plan_check_model("1000b") == NULL, "check model: 1000b names none", "-");
    return t_done();
}
