/* Quantized model files: every tensor of each models/quant/mini256-*.gguf
 * (written by llama.cpp's llama-quantize) is dequantized with the reference
 * kernels and compared with the same tensor of mini256-f16.gguf. The worst
 * relative RMS error per file must stay below a bound slightly above what
 * llama.cpp's own dequantizer measures (shared/README.md); a misread block
 * layout gives errors near or above 100 %. */
#include "t.h"

#include "base/err.h"
#include "format/gguf.h"
#include "engine/kern/kern.h"
#include "format/ttype.h"

#include <math.h>
#include <string.h>

typedef struct {
    const char *suffix;   /* file is models/quant/mini256-<suffix>.gguf */
    uint32_t main_type;   /* the type the file is named after; must occur */
    double measured_pct;  /* worst tensor with llama.cpp's dequantizer */
    double bound_pct;     /* our bound: about measured * 1.1, rounded up */
} qfile;

static const qfile files[] = {
    {"q8_0", SOV_Q8_0, 0.54, 0.60},   {"q6_k", SOV_Q6_K, 1.8, 2.0},
    {"q5_k_m", SOV_Q5_K, 3.6, 4.0},   {"q5_1", SOV_Q5_1, 3.8, 4.2},
    {"q5_0", SOV_Q5_0, 4.3, 4.8},     {"q4_k_m", SOV_Q4_K, 7.2, 8.0},
    {"q4_1", SOV_Q4_1, 7.9, 8.7},     {"q4_0", SOV_Q4_0, 8.6, 9.5},
    {"q3_k_m", SOV_Q3_K, 15.0, 16.5}, {"q2_k", SOV_Q2_K, 30.0, 33.0},
};

/* Dequantizes tensor t into a new malloc'ed array (*out, nelements floats).
 * Returns 0, or SOV_EUNSUPPORTED / SOV_EFORMAT / SOV_ENOMEM with a message. */
static int dequant_tensor(const kern_ops *ops, const gguf_tensor *t, float **out)
{
    *out = NULL;
    int64_t n = gguf_tensor_nelements(t);
    if (t->type >= SOV_TYPE_COUNT || !ops->dequant[t->type])
        return err_set(SOV_EUNSUPPORTED, "no ref dequant for type %s (%u)", ttype_name(t->type), t->type);
    uint64_t need;
    int rc = ttype_nbytes(t->type, n, &need);
    if (rc)
        return rc;
    if (need != t->nbytes)
        return err_set(SOV_EFORMAT, "tensor size %llu, expected %llu", (unsigned long long)t->nbytes,
                       (unsigned long long)need);
    float *y = malloc((size_t)n * sizeof *y);
    if (!y)
        return err_set(SOV_ENOMEM, "out of memory for %lld floats", (long long)n);
    ops->dequant[t->type](t->data, y, n);
    *out = y;
    return 0;
}

static void check_file(const kern_ops *ops, const gguf *ref, const qfile *qf)
{
    char rel[128], name[160];
    snprintf(rel, sizeof rel, "models/quant/mini256-%s.gguf", qf->suffix);
    gguf *g = NULL;
    snprintf(name, sizeof name, "%s opens", qf->suffix);
    if (!t_check(gguf_open(&g, t_shared(rel)) == 0, name, "%s", err_msg()))
        return;

    double worst = -1.0;
    char worst_name[96] = "";
    uint32_t worst_type = 0;
    int type_count[SOV_TYPE_COUNT] = {0};
    int problems = 0;
    char problem[256] = "";
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const gguf_tensor *t = &g->tensors[i];
        char tname[96];
        gguf_str_copy(t->name, tname, sizeof tname);
        if (t->type < SOV_TYPE_COUNT)
            type_count[t->type]++;
        const gguf_tensor *r = gguf_find_tensor(ref, tname);
        if (!r || memcmp(r->ne, t->ne, sizeof t->ne) != 0) {
            if (!problems++)
                snprintf(problem, sizeof problem, "%s: %s", tname, r ? "shape differs from f16 file" : "not in f16 file");
            continue;
        }
        float *a = NULL, *b = NULL;
        int rc = dequant_tensor(ops, t, &a);
        if (rc == 0)
            rc = dequant_tensor(ops, r, &b);
        if (rc) {
            if (!problems++)
                snprintf(problem, sizeof problem, "%s: %s", tname, err_msg());
            free(a);
            free(b);
            continue;
        }
        int64_t n = gguf_tensor_nelements(t);
        double num = 0.0, den = 0.0;
        for (int64_t k = 0; k < n; k++) {
            double d = (double)a[k] - (double)b[k];
            num += d * d;
            den += (double)b[k] * (double)b[k];
        }
        /* relative RMS error; NaN (non-finite values) counts as worst */
        double rel_err = den > 0.0 ? sqrt(num / den) : (num > 0.0 ? INFINITY : 0.0);
        if (!(rel_err <= worst)) {
            worst = isnan(rel_err) ? INFINITY : rel_err;
            snprintf(worst_name, sizeof worst_name, "%s", tname);
            worst_type = t->type;
        }
        free(a);
        free(b);
    }

    char mix[256] = "";
    size_t len = 0;
    for (int ty = 0; ty < SOV_TYPE_COUNT; ty++)
        if (type_count[ty] && len < sizeof mix)
            len += (size_t)snprintf(mix + len, sizeof mix - len, "%s%s x%d", len ? ", " : "", ttype_name((uint32_t)ty),
                                    type_count[ty]);
    printf("INFO %-7s %3llu tensors (%s); worst rel RMS %.3f %% (%s, %s), bound %.2f %%, llama.cpp %.2f %%\n",
           qf->suffix, (unsigned long long)g->n_tensors, mix, 100.0 * worst, worst_name, ttype_name(worst_type),
           qf->bound_pct, qf->measured_pct);

    snprintf(name, sizeof name, "%s every tensor dequantizes and matches an f16 tensor", qf->suffix);
    t_check(problems == 0 && g->n_tensors > 0, name, "%d problem(s), first: %s", problems, problem);
    snprintf(name, sizeof name, "%s contains %s tensors", qf->suffix, ttype_name(qf->main_type));
    t_check(type_count[qf->main_type] > 0, name, "mix: %s", mix);
    snprintf(name, sizeof name, "%s worst rel RMS below %.2f %%", qf->suffix, qf->bound_pct);
    t_check(worst >= 0.0 && 100.0 * worst <= qf->bound_pct, name, "worst %.3f %% on %s (%s)", 100.0 * worst,
            worst_name, ttype_name(worst_type));
    /* A lossy file equal to the reference would mean we compared the wrong thing. */
    snprintf(name, sizeof name, "%s is lossy (worst rel RMS > 0)", qf->suffix);
    t_check(worst > 0.0, name, "worst %.3g", worst);
    gguf_close(g);
}

int main(void)
{
    const kern_ops *ops = kern_ref_ops();
    gguf *ref = NULL;
    if (!t_check(gguf_open(&ref, t_shared("models/quant/mini256-f16.gguf")) == 0, "f16 reference opens", "%s",
                 err_msg()))
        return t_done();
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        check_file(ops, ref, &files[i]);
    gguf_close(ref);
    return t_done();
}
