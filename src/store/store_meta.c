#include "store_meta.h"

#include "../base/err.h"
#include "../format/gguf.h"
#include "../format/ttype.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

const char *store_ftype_name(int64_t ftype)
{
    static const char *const names[] = {
        [0] = "f32",       [1] = "f16",      [2] = "q4_0",     [3] = "q4_1",     [7] = "q8_0",
        [8] = "q5_0",      [9] = "q5_1",     [10] = "q2_k",    [11] = "q3_k_s",  [12] = "q3_k_m",
        [13] = "q3_k_l",   [14] = "q4_k_s",  [15] = "q4_k_m",  [16] = "q5_k_s",  [17] = "q5_k_m",
        [18] = "q6_k",     [19] = "iq2_xxs", [20] = "iq2_xs",  [21] = "q2_k_s",  [22] = "iq3_xs",
        [23] = "iq3_xxs",  [24] = "iq1_s",   [25] = "iq4_nl",  [26] = "iq3_s",   [27] = "iq3_m",
        [28] = "iq2_s",    [29] = "iq2_m",   [30] = "iq4_xs",  [31] = "iq1_m",   [32] = "bf16",
        [36] = "tq1_0",    [37] = "tq2_0",
    };
    if (ftype >= 1024) /* LLAMA_FTYPE_GUESSED */
        ftype -= 1024;
    if (ftype < 0 || ftype >= (int64_t)(sizeof names / sizeof names[0]))
        return NULL;
    return names[ftype];
}

int store_meta_read(const char *path, store_meta *m)
{
    memset(m, 0, sizeof *m);
    m->file_type = -1;
    gguf *g = NULL;
    int rc = gguf_open(&g, path);
    if (rc)
        return rc;
    gguf_str s;
    if (!gguf_get_str(g, "general.architecture", &s))
        gguf_str_copy(s, m->arch, sizeof m->arch);
    int64_t ft;
    if (!gguf_get_i64(g, "general.file_type", &ft))
        m->file_type = ft;
    uint64_t by_type[SOV_TYPE_COUNT] = {0}, other = 0;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const gguf_tensor *t = &g->tensors[i];
        m->params += (uint64_t)gguf_tensor_nelements(t);
        if (t->n_dims >= 2) {
            if (t->type < SOV_TYPE_COUNT)
                by_type[t->type] += t->nbytes;
            else
                other += t->nbytes;
        }
    }
    m->n_tensors = g->n_tensors;
    int best = -1;
    for (int t = 0; t < SOV_TYPE_COUNT; t++)
        if (by_type[t] && (best < 0 || by_type[t] > by_type[best]))
            best = t;
    snprintf(m->main_type, sizeof m->main_type, "%s",
             best < 0 ? (other ? "unknown" : "-") : ttype_name((uint32_t)best));
    const char *fn = store_ftype_name(m->file_type);
    snprintf(m->quant, sizeof m->quant, "%s", fn ? fn : m->main_type);
    gguf_close(g);
    return 0;
}

char *store_meta_params(char *buf, size_t cap, uint64_t p)
{
    if (p < 1000)
        snprintf(buf, cap, "%" PRIu64, p);
    else if (p < 1000000)
        snprintf(buf, cap, "%.1fK", (double)p / 1e3);
    else if (p < 1000000000)
        snprintf(buf, cap, "%.1fM", (double)p / 1e6);
    else
        snprintf(buf, cap, "%.2fB", (double)p / 1e9);
    return buf;
}

static void size_str(char *b, size_t cap, uint64_t v)
{
    if (v < 1024)
        snprintf(b, cap, "%" PRIu64 " B", v);
    else if (v < (1ULL << 20))
        snprintf(b, cap, "%.1f KiB", (double)v / 1024.0);
    else if (v < (1ULL << 30))
        snprintf(b, cap, "%.1f MiB", (double)v / 1048576.0);
    else
        snprintf(b, cap, "%.2f GiB", (double)v / 1073741824.0);
}

char *store_meta_line(char *buf, size_t cap, int name_w, const store_item *it, const store_meta *m, const char *why)
{
    if (!it) {
        snprintf(buf, cap, "%-*s  %10s  %-10s  %-8s  %8s", name_w, "NAME", "SIZE", "ARCH", "QUANT", "PARAMS");
        return buf;
    }
    char sz[32], pr[32];
    size_str(sz, sizeof sz, it->size);
    if (it->partial)
        snprintf(buf, cap, "%-*s  %10s  (partial download: %s)", name_w, it->name, sz, it->file);
    else if (!m)
        snprintf(buf, cap, "%-*s  %10s  (unreadable: %s)", name_w, it->name, sz, why ? why : "?");
    else
        snprintf(buf, cap, "%-*s  %10s  %-10s  %-8s  %8s", name_w, it->name, sz, *m->arch ? m->arch : "?", m->quant,
                 store_meta_params(pr, sizeof pr, m->params));
    return buf;
}
