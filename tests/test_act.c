/* act_swiglu against silu(g) * u in double over g in [-90, 90] (every
 * region: the polynomial exp's whole domain, both sigmoid branches, the
 * flush of e^g below -87), the bits of an element not depending on the
 * call's length or the element's place, and the special values.
 *
 * Bound: e^-|g| within 2 ulp, then 1 + e, a division and two products, each
 * rounded once: a few ulp in all (3.11 measured); checked at 4 ulp of the
 * float result.
 * Where the exact value is below 1e-30 (g < -66) the flush to 0 of e^g
 * below -87 is allowed: an absolute error under 1e-30 |u|. A wrong branch
 * (sigmoid of g vs -g) is off by far more than 6 ulp almost everywhere. */
#include "t.h"

#include "engine/act.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

static uint64_t rng = 0x2545f4914f6cdd1dull;
static double urand(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (rng >> 11) / 9007199254740992.0;
}

static double ref(float g, float u) { return (double)g / (1.0 + exp(-(double)g)) * u; }

static void check_accuracy(void)
{
    enum { N = 1 << 16 };
    static float g[N], u[N], g0[N];
    for (int i = 0; i < N; i++) {
        /* half over [-90, 90], half over [-4, 4] where silu bends */
        g[i] = (float)(i % 2 ? urand() * 180.0 - 90.0 : urand() * 8.0 - 4.0);
        u[i] = (float)(urand() * 4.0 - 2.0);
    }
    memcpy(g0, g, sizeof g);
    act_swiglu(g, u, N);
    double worst = 0;
    int wi = 0;
    for (int i = 0; i < N; i++) {
        double r = ref(g0[i], u[i]), err;
        if (fabs(r) < 1e-30)
            err = fabs(g[i] - r) < 1e-30 * fabs(u[i]) ? 0 : INFINITY;
        else
            err = fabs(g[i] - r) / ldexp(1.0, ilogb(r) - 23);
        if (!(err <= worst))
            worst = isnan(err) ? INFINITY : err, wi = i;
    }
    char name[128];
    snprintf(name, sizeof name, "act_swiglu within 4 ulp of silu(g) * u on [-90, 90] (worst %.2f ulp)", worst);
    t_check(worst <= 4.0, name, "%.3g ulp at g = %.9g, u = %.9g: got %.9g, want %.9g", worst, g0[wi], u[wi], g[wi],
            ref(g0[wi], u[wi]));
}

/* an element gets the same bits alone, in a tail, or in a full vector */
static void check_bits(void)
{
    enum { N = 53 };
    float g[N], u[N], all[N];
    for (int i = 0; i < N; i++) {
        g[i] = (float)(urand() * 20.0 - 10.0);
        u[i] = (float)(urand() * 2.0 - 1.0);
    }
    memcpy(all, g, sizeof g);
    act_swiglu(all, u, N);
    bool same = true;
    for (int i = 0; i < N; i++) {
        float one = g[i];
        act_swiglu(&one, &u[i], 1);
        float part[N];
        memcpy(part, g + i, sizeof(float) * (size_t)(N - i));
        act_swiglu(part, u + i, N - i);
        same &= memcmp(&one, &all[i], sizeof one) == 0 && memcmp(&part[0], &all[i], sizeof one) == 0;
    }
    t_check(same, "act_swiglu: an element's bits do not depend on n or its place", "-");
}

static void check_special(void)
{
    float g[8] = {0.0f, INFINITY, -INFINITY, NAN, -100.0f, 100.0f, 1.0f, -1.0f};
    float u[8] = {3.0f, 1.0f, 1.0f, 1.0f, 1.0f, 2.0f, 1.0f, 1.0f};
    act_swiglu(g, u, 8);
    t_check(g[0] == 0.0f && g[1] == INFINITY && isnan(g[2]) && isnan(g[3]) && fabsf(g[4]) < 1e-30f &&
                g[5] == 200.0f && fabsf(g[6] - 0.7310586f) < 1e-6f && fabsf(g[7] + 0.26894143f) < 1e-6f,
            "act_swiglu: 0 -> 0, inf -> inf, -inf and NaN -> NaN, -100 -> ~0, 100 -> 100 u, +-1",
            "%g %g %g %g %g %g %.9g %.9g", g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7]);
}

int main(void)
{
    check_accuracy();
    check_bits();
    check_special();
    return t_done();
}
