/* Chat templates (src/server/chat.c): family detection on the real phi-3
 * vocab's tokenizer.chat_template and on hand-written Jinja fragments, the
 * exact prompt text of every family for a system + user + assistant + user
 * conversation (written out from the llama.cpp formats), developer == system,
 * trimming, EOS use, error cases and the name table. */
#include "t.h"

#include "base/err.h"
#include "format/gguf.h"
#include "server/chat.h"

#include <string.h>

/* s with control characters escaped, for failure messages (one of 4 static
 * buffers, truncated). */
static const char *esc(const char *s)
{
    static char buf[4][2048];
    static int k;
    char *b = buf[k++ % 4];
    size_t o = 0;
    if (!s)
        return "(null)";
    for (; *s && o + 8 < sizeof buf[0]; s++) {
        if (*s == '\n') {
            b[o++] = '\\';
            b[o++] = 'n';
        } else {
            b[o++] = *s;
        }
    }
    b[o] = '\0';
    return b;
}

static const chat_msg conv[] = {
    { "system", "You are terse." },
    { "user", "Hi" },
    { "assistant", "Hello!" },
    { "user", "How are you?" },
};
#define NCONV (sizeof conv / sizeof conv[0])
static const chat_msg one[] = { { "user", "Hi" } };

/* Renders msgs and compares with want; name labels the check. */
static void check_render(const char *name, int tmpl, const chat_msg *msgs, size_t n,
                         const char *eos, const char *want)
{
    char *got = NULL;
    int rc = chat_render(tmpl, msgs, n, eos, &got);
    if (rc != 0)
        t_check(false, name, "chat_render rc %d: %s", rc, err_msg());
    else
        t_check(strcmp(got, want) == 0, name, "got \"%s\"\n  want \"%s\"", esc(got),
                esc(want));
    free(got);
}

static void test_render_families(void)
{
    check_render("render_chatml", CHAT_CHATML, conv, NCONV, "</s>",
                 "<|im_start|>system\nYou are terse.<|im_end|>\n"
                 "<|im_start|>user\nHi<|im_end|>\n"
                 "<|im_start|>assistant\nHello!<|im_end|>\n"
                 "<|im_start|>user\nHow are you?<|im_end|>\n"
                 "<|im_start|>assistant\n");
    check_render("render_llama3", CHAT_LLAMA3, conv, NCONV, "<|eot_id|>",
                 "<|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|>"
                 "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
                 "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
                 "<|start_header_id|>user<|end_header_id|>\n\nHow are you?<|eot_id|>"
                 "<|start_header_id|>assistant<|end_header_id|>\n\n");
    check_render("render_phi3", CHAT_PHI3, conv, NCONV, "<|endoftext|>",
                 "<|system|>\nYou are terse.<|end|>\n"
                 "<|user|>\nHi<|end|>\n"
                 "<|assistant|>\nHello!<|end|>\n"
                 "<|user|>\nHow are you?<|end|>\n"
                 "<|assistant|>\n");
    check_render("render_gemma", CHAT_GEMMA, conv, NCONV, "<eos>",
                 "<start_of_turn>user\nYou are terse.\n\nHi<end_of_turn>\n"
                 "<start_of_turn>model\nHello!<end_of_turn>\n"
                 "<start_of_turn>user\nHow are you?<end_of_turn>\n"
                 "<start_of_turn>model\n");
    check_render("render_zephyr", CHAT_ZEPHYR, conv, NCONV, "</s>",
                 "<|system|>\nYou are terse.</s>\n"
                 "<|user|>\nHi</s>\n"
                 "<|assistant|>\nHello!</s>\n"
                 "<|user|>\nHow are you?</s>\n"
                 "<|assistant|>\n");
    check_render("render_llama2", CHAT_LLAMA2, conv, NCONV, "</s>",
                 "[INST] <<SYS>>\nYou are terse.\n<</SYS>>\n\n"
                 "Hi [/INST]Hello!</s><s>[INST] How are you? [/INST]");
    check_render("render_mistral", CHAT_MISTRAL, conv, NCONV, "</s>",
                 "[INST] You are terse.\nHi [/INST]Hello!</s>[INST] How are you? [/INST]");

    /* Without a system message. */
    check_render("render_llama2_nosys", CHAT_LLAMA2, conv + 1, NCONV - 1, "</s>",
                 "[INST] Hi [/INST]Hello!</s><s>[INST] How are you? [/INST]");
    check_render("render_mistral_nosys", CHAT_MISTRAL, conv + 1, NCONV - 1, "</s>",
                 "[INST] Hi [/INST]Hello!</s>[INST] How are you? [/INST]");
    check_render("render_gemma_nosys", CHAT_GEMMA, conv + 1, NCONV - 1, NULL,
                 "<start_of_turn>user\nHi<end_of_turn>\n"
                 "<start_of_turn>model\nHello!<end_of_turn>\n"
                 "<start_of_turn>user\nHow are you?<end_of_turn>\n"
                 "<start_of_turn>model\n");
    /* Single user turn. */
    check_render("render_chatml_one", CHAT_CHATML, one, 1, NULL,
                 "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
    check_render("render_phi3_one", CHAT_PHI3, one, 1, NULL,
                 "<|user|>\nHi<|end|>\n<|assistant|>\n");
    check_render("render_llama3_one", CHAT_LLAMA3, one, 1, NULL,
                 "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
                 "<|start_header_id|>assistant<|end_header_id|>\n\n");
    /* No messages: just the generation prompt. */
    check_render("render_empty", CHAT_CHATML, NULL, 0, NULL, "<|im_start|>assistant\n");
}

static void test_eos(void)
{
    /* NULL eos means "</s>"; another eos text is used where turns close with it. */
    check_render("eos_null_zephyr", CHAT_ZEPHYR, conv + 1, 2, NULL,
                 "<|user|>\nHi</s>\n<|assistant|>\nHello!</s>\n<|assistant|>\n");
    check_render("eos_zephyr_endoftext", CHAT_ZEPHYR, conv, 2, "<|endoftext|>",
                 "<|system|>\nYou are terse.<|endoftext|>\n<|user|>\nHi<|endoftext|>\n"
                 "<|assistant|>\n");
    check_render("eos_null_llama2", CHAT_LLAMA2, conv + 1, NCONV - 1, NULL,
                 "[INST] Hi [/INST]Hello!</s><s>[INST] How are you? [/INST]");
    check_render("eos_mistral_custom", CHAT_MISTRAL, conv + 1, NCONV - 1, "<EOS>",
                 "[INST] Hi [/INST]Hello!<EOS>[INST] How are you? [/INST]");
    /* Families that do not close turns with EOS ignore it. */
    check_render("eos_unused_chatml", CHAT_CHATML, one, 1, "<X>",
                 "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
}

static void test_developer(void)
{
    chat_msg dev[NCONV];
    memcpy(dev, conv, sizeof dev);
    dev[0].role = "developer";
    for (int t = CHAT_LLAMA2; t <= CHAT_ZEPHYR; t++) {
        char *a = NULL, *b = NULL, name[64];
        int ra = chat_render(t, conv, NCONV, NULL, &a);
        int rb = chat_render(t, dev, NCONV, NULL, &b);
        snprintf(name, sizeof name, "developer_is_system_%s", chat_name(t));
        t_check(ra == 0 && rb == 0 && !strcmp(a, b), name, "rc %d/%d, system \"%s\" vs developer \"%s\"",
                ra, rb, esc(a), esc(b));
        free(a);
        free(b);
    }
}

static void test_trim_and_null(void)
{
    const chat_msg sp[] = { { "system", "  Be brief.\n" }, { "user", " Hi \n" } };
    /* llama3 and gemma trim contents (as llama.cpp); chatml keeps them. */
    check_render("trim_llama3", CHAT_LLAMA3, sp, 2, NULL,
                 "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
                 "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
                 "<|start_header_id|>assistant<|end_header_id|>\n\n");
    check_render("trim_gemma", CHAT_GEMMA, sp, 2, NULL,
                 "<start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\n");
    check_render("notrim_chatml", CHAT_CHATML, sp, 2, NULL,
                 "<|im_start|>system\n  Be brief.\n<|im_end|>\n<|im_start|>user\n Hi \n<|im_end|>\n"
                 "<|im_start|>assistant\n");
    /* gemma: several system texts are concatenated into the next user turn. */
    const chat_msg two_sys[] = { { "system", "A." }, { "developer", "B." }, { "user", "Hi" } };
    check_render("gemma_two_system", CHAT_GEMMA, two_sys, 3, NULL,
                 "<start_of_turn>user\nA.B.\n\nHi<end_of_turn>\n<start_of_turn>model\n");
    /* NULL content renders as empty. */
    const chat_msg nul[] = { { "user", NULL } };
    check_render("null_content", CHAT_PHI3, nul, 1, NULL, "<|user|>\n<|end|>\n<|assistant|>\n");
}

static void test_errors(void)
{
    char *out = (char *)"sentinel";
    const chat_msg bad[] = { { "user", "Hi" }, { "assistant", "Hello" }, { "tool", "42" } };
    int rc = chat_render(CHAT_CHATML, bad, 3, NULL, &out);
    t_check(rc == SOV_EINVAL && out == NULL, "bad_role_einval", "rc %d out %p", rc, (void *)out);
    t_check(strstr(err_msg(), "\"tool\"") && strstr(err_msg(), "message 2"), "bad_role_message",
            "message \"%s\"", err_msg());

    const chat_msg norole[] = { { NULL, "Hi" } };
    rc = chat_render(CHAT_LLAMA3, norole, 1, NULL, &out);
    t_check(rc == SOV_EINVAL && strstr(err_msg(), "message 0"), "null_role_einval", "rc %d: %s",
            rc, err_msg());

    rc = chat_render(CHAT_NONE, conv, NCONV, NULL, &out);
    t_check(rc == SOV_EINVAL && out == NULL, "none_einval", "rc %d: %s", rc, err_msg());
    rc = chat_render(99, conv, NCONV, NULL, &out);
    t_check(rc == SOV_EINVAL, "unknown_tmpl_einval", "rc %d: %s", rc, err_msg());
    rc = chat_render(-3, conv, NCONV, NULL, &out);
    t_check(rc == SOV_EINVAL, "negative_tmpl_einval", "rc %d: %s", rc, err_msg());
    rc = chat_render(CHAT_CHATML, NULL, 2, NULL, &out);
    t_check(rc == SOV_EINVAL, "null_msgs_einval", "rc %d: %s", rc, err_msg());
    rc = chat_render(CHAT_CHATML, conv, NCONV, NULL, NULL);
    t_check(rc == SOV_EINVAL, "null_out_einval", "rc %d: %s", rc, err_msg());
}

static void test_names(void)
{
    bool ok = true;
    for (int t = CHAT_LLAMA2; t <= CHAT_ZEPHYR; t++) {
        const char *n = chat_name(t);
        if (chat_from_name(n) != t || !strstr(chat_names(), n)) {
            ok = false;
            printf("  %d -> \"%s\" -> %d\n", t, n, chat_from_name(n));
        }
    }
    t_check(ok, "name_round_trip", "see above");
    t_check(!strcmp(chat_name(CHAT_NONE), "none") && !strcmp(chat_name(CHAT_LLAMA3), "llama3") &&
                !strcmp(chat_name(CHAT_CHATML), "chatml") && !strcmp(chat_name(42), "unknown"),
            "name_values", "%s %s %s %s", chat_name(CHAT_NONE), chat_name(CHAT_LLAMA3),
            chat_name(CHAT_CHATML), chat_name(42));
    t_check(chat_from_name("qwen") == CHAT_CHATML && chat_from_name("llama-2") == CHAT_LLAMA2 &&
                chat_from_name("llama-3") == CHAT_LLAMA3 && chat_from_name("phi-3") == CHAT_PHI3 &&
                chat_from_name("ChatML") == CHAT_CHATML,
            "name_aliases", "qwen %d llama-2 %d llama-3 %d phi-3 %d ChatML %d",
            chat_from_name("qwen"), chat_from_name("llama-2"), chat_from_name("llama-3"),
            chat_from_name("phi-3"), chat_from_name("ChatML"));
    t_check(chat_from_name("vicuna") == -1 && chat_from_name("") == -1 &&
                chat_from_name("none") == -1 && chat_from_name(NULL) == -1,
            "name_unknown", "vicuna %d", chat_from_name("vicuna"));
    const char *list = chat_names();
    t_check(list && strstr(list, "qwen") && strstr(list, "phi-3") && strstr(list, ", "),
            "names_list", "\"%s\"", list ? list : "(null)");
}

static void check_detect(const char *name, const char *jinja, int want)
{
    int got = chat_detect(jinja);
    t_check(got == want, name, "got %s, want %s for \"%s\"", chat_name(got), chat_name(want),
            esc(jinja));
}

static void test_detect_fragments(void)
{
    check_detect("detect_llama3",
                 "{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + "
                 "'<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}"
                 "{% endfor %}{% if add_generation_prompt %}"
                 "{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}",
                 CHAT_LLAMA3);
    check_detect("detect_chatml",
                 "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
                 "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
                 "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}",
                 CHAT_CHATML);
    check_detect("detect_gemma",
                 "{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% endif %}"
                 "{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + "
                 "'<end_of_turn>\\n' }}",
                 CHAT_GEMMA);
    check_detect("detect_phi3",
                 "{% if message['role'] == 'user' %}{{'<|user|>' + '\\n' + message['content'] + "
                 "'<|end|>' + '\\n' + '<|assistant|>' + '\\n'}}{% endif %}",
                 CHAT_PHI3);
    check_detect("detect_zephyr",
                 "{% if message['role'] == 'user' %}{{ '<|user|>\\n' + message['content'] + "
                 "eos_token }}{% endif %}{% if loop.last and add_generation_prompt %}"
                 "{{ '<|assistant|>' }}{% endif %}",
                 CHAT_ZEPHYR);
    check_detect("detect_llama2",
                 "{% if loop.index0 == 0 and system_message != false %}{% set content = "
                 "'<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
                 "{% endif %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}",
                 CHAT_LLAMA2);
    check_detect("detect_mistral",
                 "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}"
                 "{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == "
                 "'assistant' %}{{ message['content'] + eos_token}}{% endif %}{% endfor %}",
                 CHAT_MISTRAL);
    check_detect("detect_null", NULL, CHAT_NONE);
    check_detect("detect_empty", "", CHAT_NONE);
    check_detect("detect_unknown",
                 "{% for message in messages %}{{ 'USER: ' + message['content'] }}{% endfor %}",
                 CHAT_NONE);
    /* "<|assistant|>" alone is neither phi3 nor zephyr. */
    check_detect("detect_assistant_only", "{{ '<|assistant|>' }}", CHAT_NONE);
}

static void test_detect_phi3_vocab(void)
{
    const char *path = t_shared("vocab/ggml-vocab-phi-3.gguf");
    gguf *g = NULL;
    char *jinja = NULL;
    int rc = gguf_open(&g, path);
    if (!t_check(rc == 0, "phi3_vocab_open", "%s: %s", path, err_msg()))
        return;
    gguf_str s;
    rc = gguf_get_str(g, "tokenizer.chat_template", &s);
    if (!t_check(rc == 0 && s.len > 0, "phi3_vocab_has_template", "rc %d: %s", rc, err_msg()))
        goto done;
    jinja = malloc(s.len + 1);
    if (!t_check(jinja != NULL, "phi3_vocab_alloc", "out of memory"))
        goto done;
    memcpy(jinja, s.ptr, s.len);
    jinja[s.len] = '\0';
    check_detect("detect_phi3_vocab", jinja, CHAT_PHI3);
    /* The detected family renders a user turn the way the template does. */
    check_render("phi3_vocab_render", chat_detect(jinja), one, 1, NULL,
                 "<|user|>\nHi<|end|>\n<|assistant|>\n");
done:
    free(jinja);
    gguf_close(g);
}

int main(void)
{
    test_render_families();
    test_eos();
    test_developer();
    test_trim_and_null();
    test_errors();
    test_names();
    test_detect_fragments();
    test_detect_phi3_vocab();
    return t_done();
}
