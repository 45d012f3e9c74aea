/* chat: chat template families (see chat.h).
 *
 * Formats, for messages S (system), U1, A1 (assistant), U2, with the
 * generation prompt that every render ends with; they follow what llama.cpp's
 * llm_chat_apply_template writes for the family (the variant named in each
 * case), so a model served here sees the same prompt as under llama-server:
 *
 *   chatml   <|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU1<|im_end|>\n
 *            <|im_start|>assistant\nA1<|im_end|>\n<|im_start|>user\nU2<|im_end|>\n
 *            <|im_start|>assistant\n
 *   llama3   <|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|> ... (same
 *            for each turn, content trimmed of white space, as llama.cpp and
 *            the Llama 3 template's "| trim" do)
 *            <|start_header_id|>assistant<|end_header_id|>\n\n
 *   phi3     <|system|>\nS<|end|>\n<|user|>\nU1<|end|>\n<|assistant|>\nA1<|end|>\n
 *            <|user|>\nU2<|end|>\n<|assistant|>\n
 *   zephyr   <|system|>\nS EOS\n<|user|>\nU1 EOS\n ... <|assistant|>\n
 *            (llama.cpp hard-codes "<|endoftext|>", the EOS of stablelm-zephyr;
 *            the Jinja templates of the zephyr family write eos_token, so the
 *            vocab's EOS is used: "</s>" for HuggingFaceH4/zephyr)
 *   gemma    <start_of_turn>user\nS\n\nU1<end_of_turn>\n<start_of_turn>model\nA1
 *            <end_of_turn>\n<start_of_turn>user\nU2<end_of_turn>\n
 *            <start_of_turn>model\n
 *            (no system role: system texts, trimmed and concatenated, open the
 *            next user turn followed by "\n\n"; all contents trimmed)
 *   llama2   [INST] <<SYS>>\nS\n<</SYS>>\n\nU1 [/INST]A1 EOS<s>[INST] U2 [/INST]
 *            (llama.cpp's "llama2-sys-bos" variant: <<SYS>> block, BOS text
 *            "<s>" before every later [INST]; contents as given)
 *   mistral  [INST] S\nU1 [/INST]A1 EOS[INST] U2 [/INST]
 *            Choice: llama.cpp sends an "[INST]" template without "<<SYS>>"
 *            (and without the v1/v3/v7 markers "' [INST] ' + system_message",
 *            "[AVAILABLE_TOOLS]", "[SYSTEM_PROMPT]") to its plain "llama2"
 *            variant, which is what it renders for Mistral-7B-Instruct
 *            v0.1/v0.2: no system role, each system text followed by "\n"
 *            inside the current [INST] turn, no BOS text between turns.
 *
 * For llama2 and mistral the prompt after a final user turn already ends with
 * the assistant's opening " [/INST]"; llama.cpp adds nothing more, and nor do
 * we (after a final assistant turn the text ends with its EOS, as there). */
#include "chat.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../base/err.h"
#include "../base/sbuf.h"

#define CHAT_N_FAMILIES 8 /* CHAT_NONE .. CHAT_ZEPHYR */

static const char *const fam_names[CHAT_N_FAMILIES] = {
    [CHAT_NONE] = "none",       [CHAT_LLAMA2] = "llama2", [CHAT_LLAMA3] = "llama3",
    [CHAT_CHATML] = "chatml",   [CHAT_MISTRAL] = "mistral", [CHAT_PHI3] = "phi3",
    [CHAT_GEMMA] = "gemma",     [CHAT_ZEPHYR] = "zephyr",
};

static const struct {
    const char *name;
    int tmpl;
} name_table[] = {
    { "llama2", CHAT_LLAMA2 },   { "llama-2", CHAT_LLAMA2 }, { "llama3", CHAT_LLAMA3 },
    { "llama-3", CHAT_LLAMA3 },  { "chatml", CHAT_CHATML },  { "qwen", CHAT_CHATML },
    { "mistral", CHAT_MISTRAL }, { "phi3", CHAT_PHI3 },      { "phi-3", CHAT_PHI3 },
    { "gemma", CHAT_GEMMA },     { "zephyr", CHAT_ZEPHYR },
};

static bool has(const char *s, const char *needle) { return strstr(s, needle) != NULL; }

int chat_detect(const char *jinja)
{
    if (!jinja)
        return CHAT_NONE;
    if (has(jinja, "<|im_start|>"))
        return CHAT_CHATML;
    if (has(jinja, "[INST]"))
        return has(jinja, "<<SYS>>") ? CHAT_LLAMA2 : CHAT_MISTRAL;
    if (has(jinja, "<|assistant|>") && has(jinja, "<|end|>"))
        return CHAT_PHI3;
    if (has(jinja, "<|user|>") && !has(jinja, "<|end|>"))
        return CHAT_ZEPHYR;
    if (has(jinja, "<start_of_turn>"))
        return CHAT_GEMMA;
    if (has(jinja, "<|start_header_id|>"))
        return CHAT_LLAMA3;
    return CHAT_NONE;
}

int chat_from_name(const char *name)
{
    if (!name)
        return -1;
    for (size_t i = 0; i < sizeof name_table / sizeof name_table[0]; i++)
        if (!strcasecmp(name, name_table[i].name))
            return name_table[i].tmpl;
    return -1;
}

const char *chat_name(int tmpl)
{
    if (tmpl < 0 || tmpl >= CHAT_N_FAMILIES)
        return "unknown";
    return fam_names[tmpl];
}

const char *chat_names(void)
{
    return "llama2, llama3, chatml, mistral, phi3, gemma, zephyr, "
           "llama-2, llama-3, qwen, phi-3";
}

/* ---- rendering ---------------------------------------------------------- */

enum role { R_SYSTEM, R_USER, R_ASSISTANT, R_IPYTHON };

static const char *role_text(int r)
{
    return r == R_SYSTEM ? "system" : r == R_USER ? "user" : r == R_IPYTHON ? "ipython" : "assistant";
}

/* "<|role|>\nCONTENT" + close + "\n" per message, "<|assistant|>\n" after:
 * phi3 (close "<|end|>") and zephyr (close EOS). */
static void render_pipe(sbuf *b, const chat_msg *msgs, const int *roles, size_t n,
                        const char *close)
{
    for (size_t i = 0; i < n; i++) {
        sb_puts(b, "<|");
        sb_puts(b, role_text(roles[i]));
        sb_puts(b, "|>\n");
        sb_puts(b, msgs[i].content);
        sb_puts(b, close);
        sb_puts(b, "\n");
    }
    sb_puts(b, "<|assistant|>\n");
}

/* llama2 (with_sys: <<SYS>> blocks and "<s>" before later turns) and
 * mistral (without either), see the top of the file. */
static void render_inst(sbuf *b, const chat_msg *msgs, const int *roles, size_t n,
                        const char *eos, bool with_sys)
{
    bool inside = true;
    sb_puts(b, "[INST] ");
    for (size_t i = 0; i < n; i++) {
        const char *c = msgs[i].content;
        if (!inside) {
            inside = true;
            sb_puts(b, with_sys ? "<s>[INST] " : "[INST] ");
        }
        switch (roles[i]) {
        case R_SYSTEM:
            if (with_sys) {
                sb_puts(b, "<<SYS>>\n");
                sb_puts(b, c);
                sb_puts(b, "\n<</SYS>>\n\n");
            } else {
                sb_puts(b, c);
                sb_puts(b, "\n");
            }
            break;
        case R_USER:
            sb_puts(b, c);
            sb_puts(b, " [/INST]");
            break;
        default:
            sb_puts(b, c);
            sb_puts(b, eos);
            inside = false;
            break;
        }
    }
}

/* gemma: see the top of the file. pend collects system text. */
static void render_gemma(sbuf *b, sbuf *pend, const chat_msg *msgs, const int *roles,
                         size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (roles[i] == R_SYSTEM) {
            sb_put_trim(pend, msgs[i].content);
            continue;
        }
        bool model = roles[i] == R_ASSISTANT;
        sb_puts(b, model ? "<start_of_turn>model\n" : "<start_of_turn>user\n");
        if (!model && pend->len) {
            sb_putn(b, pend->p, pend->len);
            sb_puts(b, "\n\n");
            pend->len = 0;
        }
        sb_put_trim(b, msgs[i].content);
        sb_puts(b, "<end_of_turn>\n");
    }
    sb_puts(b, "<start_of_turn>model\n");
}

int chat_render(int tmpl, const chat_msg *msgs, size_t n, const char *eos, char **out)
{
    int rc = 0;
    int *roles = NULL;
    chat_msg *m = NULL;
    sbuf b = { 0 }, pend = { 0 };

    if (!out)
        return err_set(SOV_EINVAL, "chat_render: out is NULL");
    *out = NULL;
    if (tmpl <= CHAT_NONE || tmpl >= CHAT_N_FAMILIES)
        return err_set(SOV_EINVAL, "chat template %s (%d) cannot render messages; known: %s",
                       chat_name(tmpl), tmpl, chat_names());
    if (n && !msgs)
        return err_set(SOV_EINVAL, "chat_render: %zu messages but msgs is NULL", n);
    if (!eos)
        eos = "</s>";

    /* Roles checked up front; NULL contents read as "". */
    roles = malloc((n ? n : 1) * sizeof *roles);
    m = malloc((n ? n : 1) * sizeof *m);
    if (!roles || !m) {
        rc = err_set(SOV_ENOMEM, "chat_render: out of memory for %zu messages", n);
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        const char *r = msgs[i].role;
        if (!r) {
            rc = err_set(SOV_EINVAL, "message %zu has no role", i);
            goto fail;
        }
        if (!strcmp(r, "system") || !strcmp(r, "developer"))
            roles[i] = R_SYSTEM;
        else if (!strcmp(r, "user"))
            roles[i] = R_USER;
        else if (!strcmp(r, "assistant"))
            roles[i] = R_ASSISTANT;
        else if (!strcmp(r, "ipython") && tmpl == CHAT_LLAMA3) /* tool results (server/tools.c) */
            roles[i] = R_IPYTHON;
        else {
            rc = err_set(SOV_EINVAL,
                         "message %zu has role \"%.64s\"; expected system, developer, "
                         "user or assistant", i, r);
            goto fail;
        }
        m[i].role = role_text(roles[i]);
        m[i].content = msgs[i].content ? msgs[i].content : "";
    }

    switch (tmpl) {
    case CHAT_CHATML:
        for (size_t i = 0; i < n; i++) {
            sb_puts(&b, "<|im_start|>");
            sb_puts(&b, m[i].role);
            sb_puts(&b, "\n");
            sb_puts(&b, m[i].content);
            sb_puts(&b, "<|im_end|>\n");
        }
        sb_puts(&b, "<|im_start|>assistant\n");
        break;
    case CHAT_LLAMA3:
        for (size_t i = 0; i < n; i++) {
            sb_puts(&b, "<|start_header_id|>");
            sb_puts(&b, m[i].role);
            sb_puts(&b, "<|end_header_id|>\n\n");
            sb_put_trim(&b, m[i].content);
            sb_puts(&b, "<|eot_id|>");
        }
        sb_puts(&b, "<|start_header_id|>assistant<|end_header_id|>\n\n");
        break;
    case CHAT_PHI3:
        render_pipe(&b, m, roles, n, "<|end|>");
        break;
    case CHAT_ZEPHYR:
        render_pipe(&b, m, roles, n, eos);
        break;
    case CHAT_GEMMA:
        render_gemma(&b, &pend, m, roles, n);
        break;
    case CHAT_LLAMA2:
        render_inst(&b, m, roles, n, eos, true);
        break;
    case CHAT_MISTRAL:
        render_inst(&b, m, roles, n, eos, false);
        break;
    }
    if (b.oom || pend.oom || !b.p) {
        rc = err_set(SOV_ENOMEM, "chat_render: out of memory building the %s prompt",
                     chat_name(tmpl));
        goto fail;
    }
    *out = b.p;
    b.p = NULL;

fail:
    free(b.p);
    free(pend.p);
    free(m);
    free(roles);
    return rc;
}
