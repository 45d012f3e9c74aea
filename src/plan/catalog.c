/* catalog: the well-known architectures. Every figure is the model's
 * config.json on Hugging Face (the repository named above each entry);
 * params and params_active are not copied from the model cards but counted
 * from the shapes (plan_model_count), and tests/test_plan.c checks that the
 * counts land near the published totals. */
#include "catalog.h"

#include <pthread.h>
#include <stddef.h>
#include <strings.h>

static plan_model models[] = {
    /* meta-llama/Llama-3.1-8B: hidden_size 4096, num_hidden_layers 32,
     * num_attention_heads 32, num_key_value_heads 8, intermediate_size 14336,
     * vocab_size 128256, max_position_embeddings 131072, tie_word_embeddings
     * false (head_dim = 4096 / 32). Published: 8.03B. */
    {.id = "llama-3.1-8b", .n_layer = 32, .d_model = 4096, .n_head = 32, .n_head_kv = 8, .d_head = 128,
     .d_ff = 14336, .n_vocab = 128256, .ctx_train = 131072},
    /* meta-llama/Llama-3.1-70B: hidden_size 8192, layers 80, heads 64, kv 8,
     * intermediate_size 28672, vocab 128256, ctx 131072, untied. Published: 70.6B. */
    {.id = "llama-3.1-70b", .n_layer = 80, .d_model = 8192, .n_head = 64, .n_head_kv = 8, .d_head = 128,
     .d_ff = 28672, .n_vocab = 128256, .ctx_train = 131072},
    /* meta-llama/Llama-3.1-405B: hidden_size 16384, layers 126, heads 128,
     * kv 8, intermediate_size 53248, vocab 128256, ctx 131072, untied.
     * Published: 405B (406B on the card's parameter count). */
    {.id = "llama-3.1-405b", .n_layer = 126, .d_model = 16384, .n_head = 128, .n_head_kv = 8, .d_head = 128,
     .d_ff = 53248, .n_vocab = 128256, .ctx_train = 131072},
    /* Qwen/Qwen2.5-7B-Instruct: hidden_size 3584, layers 28, heads 28, kv 4,
     * intermediate_size 18944, vocab 152064, max_position_embeddings 32768
     * (131072 with YaRN), tie_word_embeddings false. Published: 7.61B. */
    {.id = "qwen2.5-7b", .n_layer = 28, .d_model = 3584, .n_head = 28, .n_head_kv = 4, .d_head = 128,
     .d_ff = 18944, .n_vocab = 152064, .ctx_train = 32768},
    /* Qwen/Qwen2.5-32B-Instruct: hidden_size 5120, layers 64, heads 40, kv 8,
     * intermediate_size 27648, vocab 152064, ctx 32768, untied. Published: 32.5B. */
    {.id = "qwen2.5-32b", .n_layer = 64, .d_model = 5120, .n_head = 40, .n_head_kv = 8, .d_head = 128,
     .d_ff = 27648, .n_vocab = 152064, .ctx_train = 32768},
    /* Qwen/Qwen2.5-72B-Instruct: hidden_size 8192, layers 80, heads 64, kv 8,
     * intermediate_size 29568, vocab 152064, ctx 32768, untied. Published: 72.7B. */
    {.id = "qwen2.5-72b", .n_layer = 80, .d_model = 8192, .n_head = 64, .n_head_kv = 8, .d_head = 128,
     .d_ff = 29568, .n_vocab = 152064, .ctx_train = 32768},
    /* mistralai/Mistral-Large-Instruct-2407: hidden_size 12288, layers 88,
     * heads 96, kv 8, head_dim 128, intermediate_size 28672, vocab 32768,
     * max_position_embeddings 131072, untied. Published: 123B. */
    {.id = "mistral-large-123b", .n_layer = 88, .d_model = 12288, .n_head = 96, .n_head_kv = 8, .d_head = 128,
     .d_ff = 28672, .n_vocab = 32768, .ctx_train = 131072},
    /* mistralai/Mixtral-8x7B-v0.1: hidden_size 4096, layers 32, heads 32,
     * kv 8, intermediate_size 14336 (each expert), num_local_experts 8,
     * num_experts_per_tok 2, vocab 32000, ctx 32768, untied.
     * Published: 46.7B total, 12.9B active. */
    {.id = "mixtral-8x7b", .n_layer = 32, .d_model = 4096, .n_head = 32, .n_head_kv = 8, .d_head = 128,
     .d_ff = 14336, .n_vocab = 32000, .n_expert = 8, .n_expert_used = 2, .d_ff_expert = 14336,
     .ctx_train = 32768},
    /* Qwen/Qwen3-235B-A22B: hidden_size 4096, layers 94, heads 64, kv 4,
     * head_dim 128 (q is 8192 wide), moe_intermediate_size 1536, num_experts
     * 128, num_experts_per_tok 8, no shared expert, every layer MoE
     * (decoder_sparse_step 1, mlp_only_layers []), vocab 151936,
     * max_position_embeddings 40960, untied. Published: 235B total, 22B active. */
    {.id = "qwen3-235b-a22b", .n_layer = 94, .d_model = 4096, .n_head = 64, .n_head_kv = 4, .d_head = 128,
     .d_ff = 12288, .n_vocab = 151936, .n_expert = 128, .n_expert_used = 8, .d_ff_expert = 1536,
     .ctx_train = 40960},
    /* openai/gpt-oss-120b: hidden_size 2880, num_hidden_layers 36,
     * num_attention_heads 64, num_key_value_heads 8, head_dim 64,
     * intermediate_size 2880 (each expert), num_local_experts 128,
     * num_experts_per_tok 4, vocab_size 201088, max_position_embeddings
     * 131072, untied. Published: 117B total (116.8B), 5.1B active.
     * Every other layer attends over a 128-token sliding window; the KV
     * figure here counts all 36 layers at full context, an upper bound
     * (about twice the real KV at long contexts). The experts ship in MXFP4
     * (4.25 bits); the quant chosen in sov plan applies to all weights. */
    {.id = "gpt-oss-120b", .n_layer = 36, .d_model = 2880, .n_head = 64, .n_head_kv = 8, .d_head = 64,
     .d_ff = 2880, .n_vocab = 201088, .n_expert = 128, .n_expert_used = 4, .d_ff_expert = 2880,
     .ctx_train = 131072},
    /* deepseek-ai/DeepSeek-V3: hidden_size 7168, num_hidden_layers 61,
     * first_k_dense_replace 3 (intermediate_size 18432), the other 58 MoE
     * with n_routed_experts 256 of moe_intermediate_size 2048,
     * num_experts_per_tok 8, n_shared_experts 1; MLA attention with
     * num_attention_heads 128, q_lora_rank 1536, kv_lora_rank 512,
     * qk_nope_head_dim 128, qk_rope_head_dim 64, v_head_dim 128;
     * vocab_size 129280, max_position_embeddings 163840, untied.
     * Published: 671B total (+14B of the multi-token-prediction module, not
     * counted here: it is not used for plain decoding), 37B active.
     * KV is approximated as MLA's compressed latent, kv_lora_rank +
     * qk_rope_head_dim = 576 elements per layer and position (what
     * llama.cpp's MLA path caches); an engine that expands K and V per head
     * would need 128 x (192 + 128) = 40960 per layer, 71x more. n_head_kv
     * is 128 (MLA has no shared KV heads) and unused by the KV formula. */
    {.id = "deepseek-v3-671b", .n_layer = 61, .d_model = 7168, .n_head = 128, .n_head_kv = 128, .d_head = 192,
     .d_ff = 18432, .n_vocab = 129280, .n_expert = 256, .n_expert_used = 8, .d_ff_expert = 2048,
     .n_shared_expert = 1, .ctx_train = 163840, .n_layer_dense = 3, .q_lora_rank = 1536, .kv_lora_rank = 512,
     .d_head_rope = 64, .d_head_v = 128},
};

#define NMODELS ((int)(sizeof models / sizeof models[0]))

static pthread_once_t once = PTHREAD_ONCE_INIT;

static void count_all(void)
{
    for (int i = 0; i < NMODELS; i++)
        plan_model_count(&models[i]);
}

const plan_model *plan_catalog(int *n)
{
    pthread_once(&once, count_all);
    if (n)
        *n = NMODELS;
    return models;
}

const plan_model *plan_catalog_find(const char *id)
{
    int n;
    const plan_model *m = plan_catalog(&n);
    if (!id)
        return NULL;
    for (int i = 0; i < n; i++)
        if (strcasecmp(m[i].id, id) == 0)
            return &m[i];
    return NULL;
}
