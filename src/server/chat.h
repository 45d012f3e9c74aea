/* chat: OpenAI-style message lists rendered as prompt text in a model's chat
 * template family.
 *
 * Like llama.cpp (llm_chat_detect_template / llm_chat_apply_template), the
 * GGUF tokenizer.chat_template Jinja source is not executed: its family is
 * recognised by characteristic substrings and the family is rendered in C.
 * The rendered text contains the family's special-token strings and is meant
 * to be tokenized with special-token parsing; it never starts with the BOS
 * text (the tokenizer adds BOS as the vocab asks). Depends only on base/. */
#ifndef SOV_CHAT_H
#define SOV_CHAT_H

#include <stddef.h>

enum chat_tmpl {
    CHAT_NONE = 0,
    CHAT_LLAMA2,  /* [INST] <<SYS>> ... <</SYS>> ... [/INST] */
    CHAT_LLAMA3,  /* <|start_header_id|>role<|end_header_id|> ... <|eot_id|> */
    CHAT_CHATML,  /* <|im_start|>role ... <|im_end|> (qwen, ...) */
    CHAT_MISTRAL, /* [INST] ... [/INST] without a system block */
    CHAT_PHI3,    /* <|role|> ... <|end|> */
    CHAT_GEMMA,   /* <start_of_turn>role ... <end_of_turn>, assistant = model */
    CHAT_ZEPHYR   /* <|role|> ... EOS */
};

/* One message. role: "system", "developer" (same as system), "user" or
 * "assistant"; content: UTF-8 text, NULL renders as "". Both borrowed. */
typedef struct chat_msg {
    const char *role;
    const char *content;
} chat_msg;

/* Family of a tokenizer.chat_template Jinja source, by its markers (checked
 * in this order, as llama.cpp does): "<|im_start|>" chatml; "[INST]" llama2
 * with "<<SYS>>", else mistral; "<|assistant|>" with "<|end|>" phi3;
 * "<|user|>" without "<|end|>" zephyr; "<start_of_turn>" gemma;
 * "<|start_header_id|>" llama3. NULL or unrecognised: CHAT_NONE. Never fails. */
int chat_detect(const char *jinja);

/* Family for a --chat-template NAME: "llama2", "llama3", "chatml", "mistral",
 * "phi3", "gemma", "zephyr", also "llama-2", "llama-3", "phi-3" and "qwen"
 * (chatml); ASCII case is ignored. Returns the family, or -1 if name is NULL
 * or unknown (no message is set; callers report chat_names()). */
int chat_from_name(const char *name);

/* Canonical name of a family ("llama2", ...), "none" for CHAT_NONE, "unknown"
 * for values outside enum chat_tmpl. Static storage. */
const char *chat_name(int tmpl);

/* Comma-separated list of the names chat_from_name accepts, for error
 * messages. Static storage. */
const char *chat_names(void);

/* Renders msgs[0..n) in family tmpl as one prompt string that ends with the
 * assistant's opening (generation prompt), the way llama.cpp's
 * llm_chat_apply_template renders that family (see chat.c for each format).
 * eos: the vocab's EOS token text, used where the family closes turns with it
 * (llama2, mistral: assistant turns; zephyr: every turn); NULL means "</s>".
 * Role "developer" is rendered as "system"; llama3 also takes role "ipython"
 * (tool results, as Llama 3.1's template writes them); gemma and mistral have no system
 * role and fold system text into the next user turn as llama.cpp does.
 * msgs may be NULL only when n == 0. On success *out is a malloc'd
 * NUL-terminated string owned by the caller (free). Errors: SOV_EINVAL
 * (tmpl CHAT_NONE or unknown, out NULL, msgs NULL with n > 0, a NULL role or
 * a role other than system/developer/user/assistant: the message names the
 * role and its index), SOV_ENOMEM. On error *out is set to NULL. */
int chat_render(int tmpl, const chat_msg *msgs, size_t n, const char *eos, char **out);

#endif
