/* convert: Hugging Face llama checkpoint folder -> llama GGUF.
 *
 * Reads DIR/config.json (LlamaForCausalLM / model_type llama or mistral),
 * the safetensors weights (model.safetensors or a sharded index), and the
 * tokenizer (tokenizer.json + tokenizer_config.json / special_tokens_map.json),
 * and writes a GGUF v3 file with the standard llama metadata keys and tensor
 * names. q/k projection rows are permuted from HF's rotate_half layout to the
 * interleaved (adjacent pair) layout GGUF llama uses. 2-D weights get the
 * requested type, 1-D tensors (norms) stay f32. Tensor data is converted
 * row by row while the file is written, so memory stays small. */
#ifndef SOV_CONVERT_H
#define SOV_CONVERT_H

#include <stdbool.h>
#include <stdint.h>

#include "../base/progress.h"
#include "gguf_write.h"

typedef struct convert_opts {
    uint32_t outtype; /* SOV_F32, SOV_F16 or SOV_BF16: type of the 2-D weights */
    bool quiet;       /* no progress lines on stderr */
    progress *prog;   /* bar (NULL: none): reset to the tensor bytes, moved per row */
} convert_opts;

/* Converts the checkpoint folder hf_dir into the GGUF file out_path.
 * Errors: SOV_EINVAL (bad outtype), SOV_ENOTFOUND (missing file, config key
 * or tensor), SOV_EFORMAT (malformed or inconsistent input: shapes that do
 * not match the config, ...), SOV_EUNSUPPORTED (other architectures, rope
 * scaling types, tokenizer layouts, unknown tensors, non-float dtypes),
 * SOV_EIO, SOV_ENOMEM. On failure no output file is left behind. */
int convert_hf_llama(const char *hf_dir, const char *out_path, const convert_opts *opts);

/* Adds the tokenizer of the folder hf_dir (tokenizer.json, BPE model) to w:
 * SentencePiece-like BPE (byte_fallback / U+2581 word marker) as
 * tokenizer.ggml.model "llama" with scores = -(rank of the merge creating
 * the token); byte-level BPE as "gpt2" with merges. n_vocab: the model's
 * vocabulary size (the token list is padded to it with [PADn] unused
 * tokens; more tokenizer tokens than n_vocab is an error). bos_id/eos_id:
 * from config.json, or -1 to take them from the tokenizer config files.
 * Errors as convert_hf_llama. */
int convert_add_tokenizer(gguf_writer *w, const char *hf_dir, int64_t n_vocab, int64_t bos_id, int64_t eos_id,
                          bool quiet);

/* Row index in HF layout that feeds row r of the GGUF (interleaved) layout
 * of a q/k projection with heads of head_dim rows (head_dim even): within
 * each head, GGUF rows 2i and 2i+1 come from HF rows i and i + head_dim/2. */
int64_t convert_qk_src_row(int64_t r, int64_t head_dim);

#endif
