/* gguf: a `sov plan` model profile read from a GGUF file (`sov plan -m FILE`). */
#ifndef SOV_PLAN_GGUF_H
#define SOV_PLAN_GGUF_H

#include <stddef.h>

#include "plan.h"

/* Fills *m from the file's metadata (ARCH.block_count, embedding_length,
 * attention.head_count[_kv], key_length, feed_forward_length,
 * context_length, expert_* and MLA keys) and its tensors: params and
 * file_bytes count every tensor as stored; params_active and
 * file_active_bytes what one token reads (token_embd only as a row unless
 * it is also the output; each *_exps tensor as its n_expert_used +
 * n_shared share). m->id is the file name without ".gguf"; quant (qcap
 * bytes) receives the name of the type holding most matrix bytes ("q4_0").
 * Only the header is read (mmap). Errors: those of gguf_open (SOV_EIO,
 * SOV_EFORMAT), SOV_EUNSUPPORTED when a required key is missing. */
int plan_gguf_model(const char *path, plan_model *m, char *quant, size_t qcap);

#endif
