/* Unit tests of sov plan's model profile from a GGUF file (src/plan/gguf.c):
 * its shapes and bytes read per token agree with the engine's own count
 * (model_cost, the figure sov bench's roofline uses) on real files, and bad
 * files give errors. */
#include "t.h"

#include "base/err.h"
#include "engine/cost.h"
#include "engine/model.h"
#include "plan/gguf.h"
#include "plan/plan.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static void compare(const char *rel)
{
    const char *path = t_shared(rel);
    char name[160], q[16];
    plan_model m;
    int rc = plan_gguf_model(path, &m, q, sizeof q);
    snprintf(name, sizeof name, "plan gguf %s: reads", rel);
    if (!t_check(rc == 0, name, "rc %d: %s", rc, err_msg()))
        return;
    model *mo = NULL;
    model_cost c;
    if (model_load(&mo, path) || model_cost_get(mo, &c)) {
        snprintf(name, sizeof name, "plan gguf %s: engine loads it", rel);
        t_check(false, name, "%s", err_msg());
        model_free(mo);
        return;
    }
    snprintf(name, sizeof name, "plan gguf %s: shapes as the engine's", rel);
    t_check(m.n_layer == mo->hp.n_layer && m.d_model == mo->hp.n_embd && m.n_head == mo->hp.n_head &&
                m.n_head_kv == mo->hp.n_head_kv && m.n_vocab == mo->hp.n_vocab,
            name, "layers %lld/%d, width %lld/%d, heads %lld/%d, kv %lld/%d, vocab %lld/%d", (long long)m.n_layer,
            (int)mo->hp.n_layer, (long long)m.d_model, (int)mo->hp.n_embd, (long long)m.n_head, (int)mo->hp.n_head,
            (long long)m.n_head_kv, (int)mo->hp.n_head_kv, (long long)m.n_vocab, (int)mo->hp.n_vocab);
    snprintf(name, sizeof name, "plan gguf %s: params = the engine's tensor elements", rel);
    t_check(m.params == (double)c.params, name, "%.0f vs %lld", m.params, (long long)c.params);
    /* the engine counts the embedding row in whole blocks; the planner as a
     * share of the tensor: within a row's bytes of each other */
    double row = (double)m.d_model * 4.0;
    snprintf(name, sizeof name, "plan gguf %s: bytes read per token = the engine's", rel);
    t_check(fabs(m.file_active_bytes - (double)c.weight_bytes_token) <= row, name, "%.0f vs %llu", m.file_active_bytes,
            (unsigned long long)c.weight_bytes_token);
    snprintf(name, sizeof name, "plan gguf %s: KV bytes per position = the engine's (f32)", rel);
    t_check(plan_kv_bytes_pos(&m, 4.0) == (double)c.kv_bytes_pos, name, "%.0f vs %llu", plan_kv_bytes_pos(&m, 4.0),
            (unsigned long long)c.kv_bytes_pos);
    snprintf(name, sizeof name, "plan gguf %s: the file's bytes are its weights", rel);
    t_check(m.file_bytes <= (double)mo->g->size && m.file_bytes > 0.9 * (double)mo->g->size - 2e6, name,
            "%.0f of a %llu-byte file", m.file_bytes, (unsigned long long)mo->g->size);
    plan_hw hw = {.mem_bytes = 1e12, .bw = 100e9, .eff_decode = 0.5};
    plan_speed s = plan_speed_of(&m, "file", 0, 1, 4.0, &hw);
    snprintf(name, sizeof name, "plan gguf %s: the speed bound uses the file's bytes", rel);
    t_check(fabs(s.bytes_token - m.file_active_bytes) < 1e-9 * m.file_active_bytes && fabs(s.decode_bound - 100e9 / m.file_active_bytes) < 1e-9 * s.decode_bound,
            name, "bytes %.0f bound %.3f", s.bytes_token, s.decode_bound);
    plan_fit f = plan_fit_of(&m, NULL, 16, 1, 4.0, &hw, 0);
    snprintf(name, sizeof name, "plan gguf %s: the fit uses the file's bytes", rel);
    t_check(f.weights == m.file_bytes, name, "%.0f", f.weights);
    snprintf(name, sizeof name, "plan gguf %s: a quant overrides the file", rel);
    plan_fit fq = plan_fit_of(&m, "q4_0", 16, 1, 4.0, &hw, 0);
    t_check(fabs(fq.weights - m.params * 0.5625) < 1, name, "%.0f", fq.weights);
    snprintf(name, sizeof name, "plan gguf %s: the quant name", rel);
    t_check(q[0] != 0, name, "empty");
    model_free(mo);
}

int main(void)
{
    compare("models/stories260K.gguf");
    compare("models/llama-2-tiny-random.gguf");
    compare("models/quant/mini256-q4_0.gguf");
    compare("models/quant/mini256-q3_k_m.gguf");

    plan_model m;
    char q[16];
    int rc = plan_gguf_model("/nonexistent/x.gguf", &m, q, sizeof q);
    t_check(rc == SOV_EIO, "plan gguf: a missing file", "rc %d", rc);
    FILE *f = fopen("/tmp/sov-plan-gguf-bad.gguf", "wb");
    if (f) {
        fputs("GGUF but not really a gguf file at all", f);
        fclose(f);
    }
    rc = plan_gguf_model("/tmp/sov-plan-gguf-bad.gguf", &m, q, sizeof q);
    t_check(rc == SOV_EFORMAT || rc == SOV_EUNSUPPORTED, "plan gguf: a malformed file", "rc %d: %s", rc, err_msg());
    remove("/tmp/sov-plan-gguf-bad.gguf");
    return t_done();
}
