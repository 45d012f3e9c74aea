#include "ttype.h"

#include "../base/err.h"

#include <stddef.h>
#include <strings.h>

/* Block sizes in bytes follow the public ggml block layouts:
 * q4_0: f16 d + 16 B nibbles; q4_1: f16 d, f16 m + 16 B; q5_0: f16 d + 4 B
 * high bits + 16 B; q5_1: f16 d, f16 m + 4 B + 16 B; q8_0: f16 d + 32 B;
 * q8_1: f32 d, f32 s + 32 B; k-quants per 256-element super-block. */
static const ttype_traits traits[SOV_TYPE_COUNT] = {
    [SOV_F32] = {"f32", 1, 4, true},
    [SOV_F16] = {"f16", 1, 2, true},
    [SOV_Q4_0] = {"q4_0", 32, 18, true},
    [SOV_Q4_1] = {"q4_1", 32, 20, true},
    [SOV_Q5_0] = {"q5_0", 32, 22, true},
    [SOV_Q5_1] = {"q5_1", 32, 24, true},
    [SOV_Q8_0] = {"q8_0", 32, 34, true},
    [SOV_Q8_1] = {"q8_1", 32, 40, false},
    [SOV_Q2_K] = {"q2_k", QK_K, 84, true},
    [SOV_Q3_K] = {"q3_k", QK_K, 110, true},
    [SOV_Q4_K] = {"q4_k", QK_K, 144, true},
    [SOV_Q5_K] = {"q5_k", QK_K, 176, true},
    [SOV_Q6_K] = {"q6_k", QK_K, 210, true},
    [SOV_Q8_K] = {"q8_k", QK_K, 292, true},
    [SOV_BF16] = {"bf16", 1, 2, true},
};

const ttype_traits *ttype_get(uint32_t t)
{
    if (t >= SOV_TYPE_COUNT || traits[t].name == NULL)
        return NULL;
    return &traits[t];
}

const char *ttype_name(uint32_t t)
{
    const ttype_traits *tr = ttype_get(t);
    return tr ? tr->name : "unknown";
}

int ttype_nbytes(uint32_t t, int64_t n, uint64_t *out)
{
    const ttype_traits *tr = ttype_get(t);
    if (!tr)
        return err_set(SOV_EFORMAT, "unknown tensor type %u", t);
    if (n < 0 || n % tr->blck != 0)
        return err_set(SOV_EFORMAT, "%lld elements is not a multiple of the %s block size %d",
                       (long long)n, tr->name, tr->blck);
    uint64_t blocks = (uint64_t)n / (uint64_t)tr->blck;
    if (blocks > UINT64_MAX / (uint64_t)tr->size)
        return err_set(SOV_EFORMAT, "tensor size overflows");
    *out = blocks * (uint64_t)tr->size;
    return 0;
}

int ttype_from_name(const char *name)
{
    for (int t = 0; t < SOV_TYPE_COUNT; t++)
        if (traits[t].name && strcasecmp(traits[t].name, name) == 0)
            return t;
    return -1;
}
