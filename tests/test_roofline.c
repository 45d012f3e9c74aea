/* test_roofline: the inputs of sov bench's roofline.
 * - model_cost on stories260K, mini256-q8_0, llama-2-tiny-random and a tied
 *   variant of stories260K against sums computed here from the GGUF tensor
 *   list by name (independent of the model struct);
 * - membw: every read kernel's sum against a scalar loop, on odd lengths and
 *   offsets; the closed-form expected sum against brute force; a measurement
 *   on 1 and 2 threads whose checksum is right and whose GB/s is positive;
 * - cpupeak: a positive measured FMA rate, a theory consistent with its inputs. */
#include "t.h"

#include "base/cpupeak.h"
#include "base/err.h"
#include "base/membw.h"
#include "base/pool.h"
#include "engine/cost.h"
#include "engine/kv.h"
#include "format/gguf_write.h"
#include "engine/model.h"
#include "format/ttype.h"

#include <math.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

static bool starts(gguf_str s, const char *p) { return s.len >= strlen(p) && !memcmp(s.ptr, p, strlen(p)); }

static bool ends(gguf_str s, const char *p)
{
    size_t n = strlen(p);
    return s.len >= n && !memcmp(s.ptr + s.len - n, p, n);
}

/* Expected cost from the tensor names: every blk.* tensor, output_norm,
 * output (or token_embd whole when tied), one token_embd row otherwise. */
static void expect_cost(const gguf *g, uint64_t *wbytes, int64_t *mat, int64_t *out_params, int64_t *all)
{
    *wbytes = 0;
    *mat = *out_params = *all = 0;
    const gguf_tensor *emb = NULL, *out = NULL;
    static const char *mats[] = {".attn_q.weight", ".attn_k.weight", ".attn_v.weight", ".attn_output.weight",
                                 ".ffn_gate.weight", ".ffn_up.weight", ".ffn_down.weight"};
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const gguf_tensor *t = &g->tensors[i];
        int64_t ne = t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
        *all += ne;
        if (starts(t->name, "blk.")) {
            *wbytes += t->nbytes;
            for (size_t k = 0; k < sizeof mats / sizeof mats[0]; k++)
                if (ends(t->name, mats[k]))
                    *mat += ne;
        } else if (gguf_str_eq(t->name, "output_norm.weight")) {
            *wbytes += t->nbytes;
        } else if (gguf_str_eq(t->name, "output.weight")) {
            out = t;
        } else if (gguf_str_eq(t->name, "token_embd.weight")) {
            emb = t;
        }
    }
    if (out) {
        *wbytes += out->nbytes + emb->nbytes / (uint64_t)emb->ne[1];
        *out_params = out->ne[0] * out->ne[1];
    } else {
        *wbytes += emb->nbytes;
        *out_params = emb->ne[0] * emb->ne[1];
    }
}

static void check_model(const char *label, const char *path, uint32_t want_type, uint64_t want_kv_pos)
{
    model *m = NULL;
    char name[160];
    snprintf(name, sizeof name, "cost %s: loads", label);
    if (!t_check(model_load(&m, path) == 0, name, "%s", err_msg()))
        return;
    model_cost c;
    int rc = model_cost_get(m, &c);
    uint64_t wb;
    int64_t mat, outp, all;
    expect_cost(m->g, &wb, &mat, &outp, &all);
    snprintf(name, sizeof name, "cost %s: weight bytes per token", label);
    t_check(rc == 0 && c.weight_bytes_token == wb, name, "got %llu, expected %llu",
            (unsigned long long)c.weight_bytes_token, (unsigned long long)wb);
    snprintf(name, sizeof name, "cost %s: matrix params, output params, all params", label);
    t_check(c.layer_matrix_params == mat && c.output_params == outp && c.params == all, name,
            "got %lld/%lld/%lld, expected %lld/%lld/%lld", (long long)c.layer_matrix_params,
            (long long)c.output_params, (long long)c.params, (long long)mat, (long long)outp, (long long)all);
    snprintf(name, sizeof name, "cost %s: KV bytes per position and type", label);
    t_check(c.kv_bytes_pos == want_kv_pos && c.type == want_type, name, "kv %llu (want %llu), type %s (want %s)",
            (unsigned long long)c.kv_bytes_pos, (unsigned long long)want_kv_pos, ttype_name(c.type),
            ttype_name(want_type));
    /* KV types: f16 halves the f32 bytes; q8_0 has 1 byte per element + one f16 scale per 32 (or fewer,
     * the last chunk of a head) elements: kv_bytes_per_token */
    model_cost c16, c8;
    int rc16 = model_cost_get_kv(m, KV_F16, &c16), rc8 = model_cost_get_kv(m, KV_Q8_0, &c8);
    const uint64_t nch = ((uint64_t)m->hp.head_dim + 31) / 32, row = (uint64_t)m->hp.n_head_kv * m->hp.head_dim;
    snprintf(name, sizeof name, "cost %s: KV bytes per position for f16 and q8_0", label);
    t_check(rc16 == 0 && rc8 == 0 && c16.kv_bytes_pos * 2 == want_kv_pos && c16.kv_type == KV_F16 &&
                c8.kv_bytes_pos == 2 * (uint64_t)m->hp.n_layer * (row + 2 * m->hp.n_head_kv * nch) &&
                c8.kv_type == KV_Q8_0 && c16.weight_bytes_token == wb && c.kv_type == KV_F32 &&
                model_cost_get_kv(m, 7, &c8) == SOV_EINVAL,
            name, "f16 %llu q8_0 %llu", (unsigned long long)c16.kv_bytes_pos, (unsigned long long)c8.kv_bytes_pos);
    snprintf(name, sizeof name, "cost %s: token bytes and flops arithmetic", label);
    double tb = model_cost_token_bytes(&c, 10.5), fl = model_cost_matrix_flops(&c, 7, 2);
    t_check(tb == (double)wb + 10.5 * (double)want_kv_pos && fl == 2.0 * ((double)mat * 7 + (double)outp * 2), name,
            "bytes %.1f flops %.1f", tb, fl);
    model_free(m);
}

/* stories260K without output.weight: token_embd becomes the output. */
static void check_tied(void)
{
    gguf *g = NULL;
    gguf_writer *w = NULL;
    char path[] = "/tmp/sov_test_tiedXXXXXX";
    int fd = mkstemp(path);
    if (!t_check(fd >= 0, "cost tied: temp file", "mkstemp failed"))
        return;
    close(fd);
    int rc = gguf_open(&g, t_shared("models/stories260K.gguf"));
    if (!rc)
        rc = gguf_writer_new(&w);
    if (!rc)
        rc = gguf_w_copy_all_kv(w, g);
    for (uint64_t i = 0; !rc && i < g->n_tensors; i++) {
        const gguf_tensor *t = &g->tensors[i];
        if (gguf_str_eq(t->name, "output.weight"))
            continue;
        char nm[128];
        gguf_str_copy(t->name, nm, sizeof nm);
        rc = gguf_w_add_tensor(w, nm, t->type, t->n_dims, t->ne, t->data, t->nbytes);
    }
    if (!rc)
        rc = gguf_w_write(w, path);
    gguf_writer_free(w);
    gguf_close(g);
    if (t_check(rc == 0, "cost tied: write variant", "%s", err_msg())) {
        model *m = NULL;
        if (t_check(model_load(&m, path) == 0 && m->output == m->tok_embd, "cost tied: loads as tied", "%s",
                    err_msg())) {
            model_free(m);
            check_model("stories260K tied", path, SOV_F32, 2ull * 5 * 4 * 8 * 4);
        }
    }
    unlink(path);
}

static void check_membw(void)
{
    /* kernels against a scalar sum, lengths and starting offsets that are not multiples of any block */
    enum { N = 50000 };
    static uint64_t buf[N];
    for (int i = 0; i < N; i++)
        buf[i] = (uint64_t)i * 0x123456789ull ^ ((uint64_t)i << 40);
    const char *names[MEMBW_MAX_KERNELS];
    int nk = membw_kernels(names);
    t_check(nk >= 1 && !strcmp(names[0], "c"), "membw: kernel list starts with c", "%d kernels", nk);
    static const uint64_t lens[] = {0, 1, 7, 63, 64, 65, 511, 512, 513, 4097, 8 * 1024 + 3, 49990};
    for (int k = 0; k < nk; k++) {
        bool ok = true;
        for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++)
            for (int off = 0; off < 9; off++) {
                uint64_t want = 0, got = 0;
                for (uint64_t i = 0; i < lens[li]; i++)
                    want += buf[off + i];
                if (membw_sum(names[k], buf + off, lens[li], &got) || got != want)
                    ok = false;
            }
        char name[64];
        snprintf(name, sizeof name, "membw: kernel %s sums like a scalar loop", names[k]);
        t_check(ok, name, "mismatch");
    }
    uint64_t dummy;
    t_check(membw_sum("avx1024", buf, 8, &dummy) == SOV_EINVAL, "membw: unknown kernel rejected", "accepted");

    membw *b = NULL;
    t_check(membw_new(&b, 1000) == SOV_EINVAL && !b, "membw: buffer below 1 MiB rejected", "accepted");
    int rc = membw_new(&b, (4u << 20) + 8);
    if (!t_check(rc == 0, "membw: 4 MiB buffer", "%s", err_msg()))
        return;
    t_check(membw_bytes(b) == (4u << 20) + 4096, "membw: size rounded up to pages", "%llu",
            (unsigned long long)membw_bytes(b));
    /* the closed form against a brute-force sum of what membw_new wrote */
    uint64_t n = membw_bytes(b) / 8, brute = 0;
    for (uint64_t i = 0; i < n; i++)
        brute += i * 0x9E3779B97F4A7C15ull;
    t_check(membw_expected_sum(b) == brute, "membw: expected sum closed form", "%llx vs %llx",
            (unsigned long long)membw_expected_sum(b), (unsigned long long)brute);
    for (int th = 1; th <= 2; th++) {
        pool *p = NULL;
        if (pool_new(&p, th))
            break;
        membw_result r;
        rc = membw_measure(b, p, 2, NULL, &r);
        char name[64];
        snprintf(name, sizeof name, "membw: measure on %d thread%s", th, th > 1 ? "s" : "");
        t_check(rc == 0 && r.threads == th && r.passes == 2 && r.gbps > 0 && isfinite(r.gbps) &&
                    r.mean_gbps > 0 && r.mean_gbps <= r.gbps * 1.000001 && r.checksum == membw_expected_sum(b) &&
                    r.kernel,
                name, "rc %d gbps %g mean %g checksum %llx", rc, r.gbps, r.mean_gbps,
                (unsigned long long)r.checksum);
        pool_free(p);
    }
    membw_result r;
    t_check(membw_measure(b, NULL, 1, "c", &r) == 0 && !strcmp(r.kernel, "c") && r.gbps > 0,
            "membw: one named kernel, no pool", "%s", err_msg());
    t_check(membw_measure(b, NULL, 0, NULL, &r) == SOV_EINVAL, "membw: 0 passes rejected", "accepted");
    membw_free(b);
}

static void check_peak(void)
{
    cpu_peak_info ci;
    cpu_peak_info_get(&ci);
    printf("INFO cpu: %.0f MHz (%s), %d flop/cycle: %s\n", ci.mhz, ci.mhz_source, ci.flop_per_cycle, ci.basis);
#if defined(__x86_64__)
    t_check(ci.flop_per_cycle >= 8 && ci.basis[0], "cpupeak: x86 flop/cycle from the table", "%d", ci.flop_per_cycle);
#endif
    t_check(cpu_peak_theory_gflops(&ci, 3) == 3 * ci.mhz * ci.flop_per_cycle / 1000.0, "cpupeak: theory formula",
            "%g", cpu_peak_theory_gflops(&ci, 3));
    pool *p = NULL;
    double g = 0;
    const char *k = NULL;
    if (pool_new(&p, 2) == 0) {
        int rc = cpu_fma_measure(p, 1, &g, &k);
        t_check(rc == 0 && g > 0 && isfinite(g) && k, "cpupeak: measured FMA rate", "rc %d %g", rc, g);
        pool_free(p);
    }
    t_check(cpu_fma_measure(NULL, 0, &g, &k) == SOV_EINVAL, "cpupeak: 0 passes rejected", "accepted");
}

int main(void)
{
    /* stories260K: 5 layers, 4 kv heads x 8 dims; mini256: 4 layers, 2 x 64 */
    check_model("stories260K", t_shared("models/stories260K.gguf"), SOV_F32, 2ull * 5 * 4 * 8 * 4);
    check_model("mini256-q8_0", t_shared("models/quant/mini256-q8_0.gguf"), SOV_Q8_0, 2ull * 4 * 2 * 64 * 4);
    check_model("mini256-q4_k_m", t_shared("models/quant/mini256-q4_k_m.gguf"), SOV_Q4_K, 2ull * 4 * 2 * 64 * 4);
    check_model("llama-2-tiny-random", t_shared("models/llama-2-tiny-random.gguf"), SOV_F16, 2ull * 1 * 2 * 4 * 4);
    check_tied();
    check_membw();
    check_peak();
    return t_done();
}
