/* Sampler: greedy, filters, temperature, penalty, seeded reproducibility. */
#include "t.h"

#include "engine/sample.h"

#include <math.h>
#include <string.h>

static sample_params base(void)
{
    sample_params p = sample_defaults();
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.temp = 1.0f;
    p.seed = 1234;
    return p;
}

static void counts(sample_params p, const float *lg, int n, int draws, int *cnt)
{
    sampler *s = NULL;
    sample_new(&s, &p, n);
    memset(cnt, 0, sizeof(int) * (size_t)n);
    for (int i = 0; i < draws && s; i++)
        cnt[sample_next(s, lg, NULL, 0)]++;
    sample_free(s);
}

int main(void)
{
    float lg[6] = {1.0f, 3.0f, 2.0f, 3.0f, -1.0f, 0.5f};
    int cnt[6];

    t_check(sample_argmax(lg, 6) == 1, "argmax takes the first of ties", "got %d", sample_argmax(lg, 6));

    sample_params p = base();
    p.temp = 0;
    counts(p, lg, 6, 50, cnt);
    t_check(cnt[1] == 50, "temp 0 is greedy", "count %d", cnt[1]);

    /* temperature 1, no filters: frequencies follow softmax within 3 sigma */
    p = base();
    int draws = 20000;
    counts(p, lg, 6, draws, cnt);
    double z = 0;
    for (int i = 0; i < 6; i++)
        z += exp(lg[i]);
    bool ok = true;
    double worst = 0;
    for (int i = 0; i < 6; i++) {
        double pr = exp(lg[i]) / z, mean = pr * draws, sd = sqrt(draws * pr * (1 - pr));
        double dev = fabs(cnt[i] - mean) / sd;
        if (dev > worst)
            worst = dev;
        ok &= dev < 4.0;
    }
    t_check(ok, "temp 1 matches softmax (within 4 sigma)", "worst deviation %.2f sigma", worst);

    p = base();
    p.top_k = 2;
    counts(p, lg, 6, 2000, cnt);
    t_check(cnt[1] + cnt[3] == 2000 && cnt[1] > 800 && cnt[3] > 800, "top-k 2 keeps the two best",
            "%d %d", cnt[1], cnt[3]);

    p = base();
    p.top_k = 1;
    p.temp = 5.0f;
    counts(p, lg, 6, 200, cnt);
    t_check(cnt[1] == 200, "top-k 1 is greedy at any temperature", "%d", cnt[1]);

    /* probabilities: 3,3 -> 0.3628 each, 2 -> 0.1335: top-p 0.7 keeps only the two 3s */
    p = base();
    p.top_p = 0.7f;
    counts(p, lg, 6, 2000, cnt);
    t_check(cnt[1] + cnt[3] == 2000, "top-p 0.7 keeps the smallest prefix", "%d %d %d", cnt[1], cnt[3], cnt[2]);

    /* min-p 0.3: p(2)/p(max) = e^-1 = 0.37 kept, p(1.0)/p(max) = 0.135 dropped */
    p = base();
    p.min_p = 0.3f;
    counts(p, lg, 6, 3000, cnt);
    t_check(cnt[0] == 0 && cnt[4] == 0 && cnt[5] == 0 && cnt[2] > 0, "min-p 0.3 drops unlikely tokens",
            "%d %d %d %d", cnt[0], cnt[2], cnt[4], cnt[5]);

    /* high temperature flattens: the -1 logit gets picked sometimes */
    p = base();
    p.temp = 100.0f;
    counts(p, lg, 6, 3000, cnt);
    t_check(cnt[4] > 300, "high temperature flattens", "%d", cnt[4]);

    /* repetition penalty: positive logit divided, so greedy moves off a repeated token */
    p = base();
    p.temp = 0;
    p.repeat_penalty = 2.0f;
    sampler *s = NULL;
    sample_new(&s, &p, 6);
    int32_t hist[3] = {1, 3, 1};
    int32_t got = s ? sample_next(s, lg, hist, 3) : -1;
    t_check(got == 2, "repetition penalty demotes seen tokens", "got %d", got);
    sample_free(s);

    /* same seed -> same sequence; other seed -> different */
    int32_t a[64], b[64], c[64];
    for (int run = 0; run < 3; run++) {
        p = base();
        p.seed = run == 2 ? 99 : 7;
        sample_new(&s, &p, 6);
        for (int i = 0; i < 64; i++)
            (run == 0 ? a : run == 1 ? b : c)[i] = sample_next(s, lg, NULL, 0);
        sample_free(s);
    }
    t_check(memcmp(a, b, sizeof a) == 0, "same seed reproduces", "differs");
    t_check(memcmp(a, c, sizeof a) != 0, "other seed differs", "identical");


    /* logit bias: +/- shifts greedy; out-of-range ids rejected */
    p = base();
    p.temp = 0;
    sample_new(&s, &p, 6);
    int32_t bid[2] = {1, 4};
    float bv[2] = {-100.0f, 10.0f};
    t_check(s && sample_set_bias(s, bid, bv, 2) == 0 && sample_next(s, lg, NULL, 0) == 4,
            "logit bias moves greedy", "-");
    int32_t badid = 6;
    t_check(s && sample_set_bias(s, &badid, bv, 1) != 0, "logit bias id out of range rejected", "accepted");
    float nanb = NAN;
    t_check(s && sample_set_bias(s, bid, &nanb, 1) != 0, "logit bias NaN rejected", "accepted");
    sample_set_bias(s, NULL, NULL, 0);
    t_check(s && sample_next(s, lg, NULL, 0) == 1, "logit bias cleared", "-");
    sample_free(s);

    /* frequency penalty: greedy alternates between the two tied maxima once
     * each has been returned (3 - 1.5 * count) */
    p = base();
    p.temp = 0;
    p.frequency_penalty = 1.5f;
    sample_new(&s, &p, 6);
    int32_t seqf[3];
    for (int i = 0; i < 3 && s; i++)
        seqf[i] = sample_next(s, lg, NULL, 0);
    /* 1 (3.0), then 3 (3.0 vs 1.5), then 2 (2.0 vs 1.5 / 1.5) */
    t_check(s && seqf[0] == 1 && seqf[1] == 3 && seqf[2] == 2, "frequency penalty over returned tokens",
            "got %d %d %d", seqf[0], seqf[1], seqf[2]);
    sample_free(s);
    p = base();
    p.temp = 0;
    p.presence_penalty = 0.6f;
    sample_new(&s, &p, 6);
    for (int i = 0; i < 3 && s; i++)
        seqf[i] = sample_next(s, lg, NULL, 0);
    /* 1, then 3 (3.0 vs 2.4), then 1 or 3 tie at 2.4 > 2.0: 1 (first) */
    t_check(s && seqf[0] == 1 && seqf[1] == 3 && seqf[2] == 1, "presence penalty once per token",
            "got %d %d %d", seqf[0], seqf[1], seqf[2]);
    sample_free(s);

    /* logprobs: log-softmax of the adjusted logits, top-n descending */
    p = base();
    p.temp = 0;
    sample_new(&s, &p, 6);
    float lpt, tl[3];
    int32_t ti[3];
    t_check(s && sample_logprobs(s, 1, &lpt, 3, ti, tl) < 0, "logprobs before sampling rejected", "-");
    int32_t tk = s ? sample_next(s, lg, NULL, 0) : -1;
    int nt = s ? sample_logprobs(s, tk, &lpt, 3, ti, tl) : -1;
    double zz = 0;
    for (int i = 0; i < 6; i++)
        zz += exp(lg[i]);
    double want = 3.0 - log(zz);
    t_check(nt == 3 && fabs(lpt - want) < 1e-6 && ti[0] == 1 && ti[1] == 3 && ti[2] == 2 &&
                fabs(tl[2] - (2.0 - log(zz))) < 1e-6 && tl[0] == lpt,
            "logprobs and top logprobs", "n %d lp %g want %g ids %d %d %d", nt, lpt, want, ti[0], ti[1], ti[2]);
    sample_free(s);

    p = base();
    p.repeat_penalty = 0;
    t_check(sample_new(&s, &p, 6) != 0, "invalid params rejected", "accepted");
    return t_done();
}
