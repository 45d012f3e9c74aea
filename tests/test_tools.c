/* Tool calling (src/server/tools.c and its use in src/server/openai.c): the
 * request fields' validation (400 naming the param), the history and tool
 * definitions rendered in each format (hermes/chatml, llama3, mistral,
 * generic), the scan of well-formed and malformed outputs, the scan of
 * every prefix of an output agreeing with the scan of the whole, the
 * grammars for tool_choice "required" / named (compile, accept a valid
 * call, reject wrong arguments, the other function, too many calls), and
 * the whole answer against the accumulated stream deltas. */
#include "t.h"

#include "base/err.h"
#include "grammar/gram.h"
#include "server/openai.h"
#include "server/tools.h"

#include <jansson.h>
#include <string.h>

static const char *esc(const char *s)
{
    static char buf[4][4096];
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
    b[o] = 0;
    return b;
}

#define TOOLS_JSON                                                                                                    \
    "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"Current weather\","             \
    "\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\",\"enum\":[\"Paris\","          \
    "\"London\"]},\"days\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":7}},\"required\":[\"city\",\"days\"],"     \
    "\"additionalProperties\":false}}},"                                                                              \
    "{\"type\":\"function\",\"function\":{\"name\":\"get_time\",\"parameters\":{\"type\":\"object\","                 \
    "\"properties\":{},\"additionalProperties\":false}}}]"

#define HISTORY                                                                                                       \
    "[{\"role\":\"system\",\"content\":\"Be brief.\"},{\"role\":\"user\",\"content\":\"Weather in Paris?\"},"         \
    "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"call_1\",\"type\":\"function\","               \
    "\"function\":{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\": \\\"Paris\\\", \\\"days\\\": 1}\"}}]},"     \
    "{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"content\":\"{\\\"temp\\\": 21}\"}]"

static int parse(const char *body, oai_req *r, oai_err *e)
{
    sample_params sp = sample_defaults();
    return oai_parse(body, strlen(body), OAI_CHAT, &sp, 1000, r, e);
}

/* ---- request validation ---- */

static void test_parse_errors(void)
{
    static const struct {
        const char *extra, *msgs, *param;
    } cases[] = {
        { "\"tools\":{}", NULL, "tools" },
        { "\"tools\":[{\"type\":\"fn\",\"function\":{\"name\":\"a\"}}]", NULL, "tools[0].type" },
        { "\"tools\":[{\"type\":\"function\"}]", NULL, "tools[0].function" },
        { "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get weather\"}}]", NULL,
          "tools[0].function.name" },
        { "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"a\"}},{\"type\":\"function\",\"function\":"
          "{\"name\":\"a\"}}]",
          NULL, "tools[1].function.name" },
        { "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"a\",\"parameters\":[]}}]", NULL,
          "tools[0].function.parameters" },
        { "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"a\",\"strict\":1}}]", NULL,
          "tools[0].function.strict" },
        { "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"a\",\"description\":5}}]", NULL,
          "tools[0].function.description" },
        { "\"tools\":" TOOLS_JSON ",\"tool_choice\":\"maybe\"", NULL, "tool_choice" },
        { "\"tools\":" TOOLS_JSON ",\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"nope\"}}", NULL,
          "tool_choice" },
        { "\"tools\":" TOOLS_JSON ",\"tool_choice\":{\"type\":\"function\"}", NULL, "tool_choice" },
        { "\"tool_choice\":\"required\"", NULL, "tool_choice" },
        { "\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"get_time\"}}", NULL, "tool_choice" },
        { "\"tools\":" TOOLS_JSON ",\"parallel_tool_calls\":\"yes\"", NULL, "parallel_tool_calls" },
        { "\"tools\":" TOOLS_JSON ",\"tool_choice\":\"required\",\"response_format\":{\"type\":\"json_object\"}",
          NULL, "tool_choice" },
        { NULL, "[{\"role\":\"user\",\"content\":\"x\"},{\"role\":\"tool\",\"content\":\"42\"}]",
          "messages[1].tool_call_id" },
        { NULL, "[{\"role\":\"user\",\"content\":\"x\"},{\"role\":\"tool\",\"tool_call_id\":7,\"content\":\"42\"}]",
          "messages[1].tool_call_id" },
        { NULL, "[{\"role\":\"user\",\"content\":\"x\",\"tool_calls\":[]}]", "messages[0].tool_calls" },
        { NULL, "[{\"role\":\"assistant\",\"tool_calls\":{}}]", "messages[0].tool_calls" },
        { NULL, "[{\"role\":\"assistant\",\"tool_calls\":[{\"type\":\"function\",\"function\":{\"name\":\"a\"}}]}]",
          "messages[0].tool_calls[0].id" },
        { NULL, "[{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"c\",\"function\":{\"name\":\"a\",\"arguments\":{}}}]}]",
          "messages[0].tool_calls[0].function.arguments" },
        { NULL, "[{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"c\",\"function\":{\"arguments\":\"{}\"}}]}]",
          "messages[0].tool_calls[0].function.name" },
        { NULL, "[{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"c\",\"type\":\"x\",\"function\":{\"name\":\"a\"}}]}]",
          "messages[0].tool_calls[0].type" },
        { NULL, "[{\"role\":\"function\",\"content\":\"x\"}]", "messages[0].role" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char body[4096];
        snprintf(body, sizeof body, "{\"model\":\"m\",\"messages\":%s%s%s}",
                 cases[i].msgs ? cases[i].msgs : "[{\"role\":\"user\",\"content\":\"hi\"}]", cases[i].extra ? "," : "",
                 cases[i].extra ? cases[i].extra : "");
        oai_req r;
        oai_err e;
        int rc = parse(body, &r, &e);
        char name[64];
        snprintf(name, sizeof name, "parse_error_%zu_%s", i, cases[i].param);
        t_check(rc == -1 && e.status == 400 && !strcmp(e.param, cases[i].param), name,
                "rc %d status %d param '%s' (want '%s'): %s", rc, e.status, e.param, cases[i].param, e.msg);
        if (!rc)
            oai_req_free(&r);
    }
}

static void test_parse_ok(void)
{
    oai_req r;
    oai_err e;
    const char *body = "{\"model\":\"m\",\"messages\":" HISTORY ",\"tools\":" TOOLS_JSON
                       ",\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"get_time\"}},"
                       "\"parallel_tool_calls\":false}";
    int rc = parse(body, &r, &e);
    if (!t_check(rc == 0, "parse_ok", "%s (param %s)", e.msg, e.param))
        return;
    const tools_req *t = &r.tools;
    t_check(t->n_fns == 2 && !strcmp(t->fns[0].name, "get_weather") && t->fns[0].params &&
                !strcmp(t->fns[1].name, "get_time"),
            "parse_ok_fns", "n %zu", t->n_fns);
    t_check(t->choice == TOOLS_NAMED && t->named == 1 && !t->parallel, "parse_ok_choice", "choice %d named %zu par %d",
            t->choice, t->named, t->parallel);
    t_check(t->msgs && t->n_msgs == 4 && t->msgs[2].n_calls == 1 && !strcmp(t->msgs[2].calls[0].id, "call_1") &&
                !strcmp(t->msgs[2].calls[0].name, "get_weather") &&
                !strcmp(t->msgs[2].calls[0].args, "{\"city\": \"Paris\", \"days\": 1}") && t->msgs[3].call_id &&
                !strcmp(t->msgs[3].call_id, "call_1") && !strcmp(r.msgs[3].role, "tool"),
            "parse_ok_history", "msgs %p", (void *)t->msgs);
    t_check(!strcmp(r.msgs[2].content, ""), "parse_ok_null_content", "'%s'", r.msgs[2].content);
    oai_req_free(&r);

    /* defaults: auto, parallel; tools [] is no tools */
    rc = parse("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":" TOOLS_JSON "}", &r,
               &e);
    t_check(rc == 0 && r.tools.choice == TOOLS_AUTO && r.tools.parallel && tools_active(&r.tools), "parse_defaults",
            "rc %d choice %d", rc, r.tools.choice);
    if (!rc)
        oai_req_free(&r);
    rc = parse("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[],"
               "\"tool_choice\":\"none\"}",
               &r, &e);
    t_check(rc == 0 && !tools_active(&r.tools) && !tools_used(&r.tools), "parse_empty_tools", "rc %d: %s", rc, e.msg);
    if (!rc)
        oai_req_free(&r);
}

/* ---- rendering ---- */

/* The prompt of HISTORY with TOOLS_JSON and choice (a JSON value) in tmpl. */
static char *render(int tmpl, const char *choice, const char *msgs)
{
    char body[8192];
    snprintf(body, sizeof body, "{\"model\":\"m\",\"messages\":%s,\"tools\":" TOOLS_JSON "%s%s}",
             msgs ? msgs : HISTORY, choice ? ",\"tool_choice\":" : "", choice ? choice : "");
    oai_req r;
    oai_err e;
    if (parse(body, &r, &e)) {
        t_check(false, "render_parse", "%s", e.msg);
        return NULL;
    }
    char *out = NULL;
    if (oai_chat_prompt(&r, tmpl, "</s>", &out, &e))
        t_check(false, "render_prompt", "%s: %s", chat_name(tmpl), e.msg);
    oai_req_free(&r);
    return out;
}

#define DEF_JSON                                                                                                      \
    "{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": \"Current weather\", "       \
    "\"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\", \"enum\": [\"Paris\", " \
    "\"London\"]}, \"days\": {\"type\": \"integer\", \"minimum\": 1, \"maximum\": 7}}, \"required\": [\"city\", "     \
    "\"days\"], \"additionalProperties\": false}}}"
#define DEF2_JSON                                                                                                     \
    "{\"type\": \"function\", \"function\": {\"name\": \"get_time\", \"parameters\": {\"type\": \"object\", "         \
    "\"properties\": {}, \"additionalProperties\": false}}}"

static void check_str(const char *name, const char *got, const char *want)
{
    t_check(got && !strcmp(got, want), name, "got\n  \"%s\"\nwant\n  \"%s\"", esc(got), esc(want));
}

static void check_has(const char *name, const char *got, const char *needle)
{
    t_check(got && strstr(got, needle), name, "\"%s\" not in\n  \"%s\"", esc(needle), esc(got));
}

static void test_render(void)
{
    char *p = render(CHAT_CHATML, NULL, NULL);
    check_str("render_hermes", p,
              "<|im_start|>system\nBe brief.\n\n# Tools\n\nYou may call one or more functions to assist with the user "
              "query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>\n" DEF_JSON
              "\n" DEF2_JSON "\n</tools>\n\nFor each function call, return a json object with function name and "
              "arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, "
              "\"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n"
              "<|im_start|>user\nWeather in Paris?<|im_end|>\n"
              "<|im_start|>assistant\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", "
              "\"days\": 1}}\n</tool_call><|im_end|>\n"
              "<|im_start|>user\n<tool_response>\n{\"temp\": 21}\n</tool_response><|im_end|>\n"
              "<|im_start|>assistant\n");
    free(p);

    p = render(CHAT_MISTRAL, NULL, NULL);
    check_str("render_mistral", p,
              "[AVAILABLE_TOOLS] [" DEF_JSON ", " DEF2_JSON "][/AVAILABLE_TOOLS][INST] Be brief.\n\nWeather in "
              "Paris?[/INST][TOOL_CALLS] [{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"days\": 1}, "
              "\"id\": \"call_1\"}]</s>[TOOL_RESULTS] {\"content\": {\"temp\": 21}, \"call_id\": \"call_1\"}"
              "[/TOOL_RESULTS]");
    free(p);

    p = render(CHAT_LLAMA3, NULL, NULL);
    check_str("render_llama3", p,
              "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
              "<|start_header_id|>user<|end_header_id|>\n\nGiven the following functions, please respond with a JSON "
              "for a function call with its proper arguments that best answers the given prompt.\n\nRespond in the "
              "format {\"name\": function name, \"parameters\": dictionary of argument name and its value}.Do not use "
              "variables.\n\n{\n    \"type\": \"function\",\n    \"function\": {\n        \"name\": \"get_weather\",\n"
              "        \"description\": \"Current weather\",\n        \"parameters\": {\n            \"type\": "
              "\"object\",\n            \"properties\": {\n                \"city\": {\n                    \"type\": "
              "\"string\",\n                    \"enum\": [\n                        \"Paris\",\n                        "
              "\"London\"\n                    ]\n                },\n                \"days\": {\n                    "
              "\"type\": \"integer\",\n                    \"minimum\": 1,\n                    \"maximum\": 7\n      "
              "          }\n            },\n            \"required\": [\n                \"city\",\n                "
              "\"days\"\n            ],\n            \"additionalProperties\": false\n        }\n    }\n}\n\n{\n    "
              "\"type\": \"function\",\n    \"function\": {\n        \"name\": \"get_time\",\n        \"parameters\": "
              "{\n            \"type\": \"object\",\n            \"properties\": {},\n            "
              "\"additionalProperties\": false\n        }\n    }\n}\n\nWeather in Paris?<|eot_id|>"
              "<|start_header_id|>assistant<|end_header_id|>\n\n{\"name\": \"get_weather\", \"parameters\": "
              "{\"city\": \"Paris\", \"days\": 1}}<|eot_id|>"
              "<|start_header_id|>ipython<|end_header_id|>\n\n{\"temp\": 21}<|eot_id|>"
              "<|start_header_id|>assistant<|end_header_id|>\n\n");
    free(p);

    /* generic: every other family */
    static const int gen[] = { CHAT_LLAMA2, CHAT_PHI3, CHAT_GEMMA, CHAT_ZEPHYR };
    for (size_t i = 0; i < sizeof gen / sizeof gen[0]; i++) {
        char name[64];
        p = render(gen[i], NULL, NULL);
        snprintf(name, sizeof name, "render_generic_%s_defs", chat_name(gen[i]));
        check_has(name, p, "You can call these functions (tools), given as JSON:\n{\"name\": \"get_weather\"");
        snprintf(name, sizeof name, "render_generic_%s_convention", chat_name(gen[i]));
        check_has(name, p, "{\"tool_calls\": [{\"name\": \"<function name>\"");
        snprintf(name, sizeof name, "render_generic_%s_call", chat_name(gen[i]));
        check_has(name, p,
                  "{\"tool_calls\": [{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"days\": 1}}]}");
        snprintf(name, sizeof name, "render_generic_%s_result", chat_name(gen[i]));
        check_has(name, p, "Tool result for get_weather (call_1):\n{\"temp\": 21}");
        snprintf(name, sizeof name, "render_generic_%s_system", chat_name(gen[i]));
        check_has(name, p, "Be brief.\n\nYou can call these functions");
        free(p);
    }

    /* tool_choice none: no definitions, the history still in the format */
    p = render(CHAT_CHATML, "\"none\"", NULL);
    t_check(p && !strstr(p, "# Tools") && strstr(p, "<|im_start|>system\nBe brief.<|im_end|>"), "render_none_no_defs",
            "%s", esc(p));
    check_has("render_none_history", p, "<tool_response>\n{\"temp\": 21}\n</tool_response>");
    free(p);
    p = render(CHAT_MISTRAL, "\"none\"", NULL);
    t_check(p && !strstr(p, "[AVAILABLE_TOOLS]") && strstr(p, "[TOOL_RESULTS]"), "render_none_mistral", "%s", esc(p));
    free(p);

    /* no system message: hermes opens with the tools block; two results share a user turn */
    p = render(CHAT_CHATML, NULL,
               "[{\"role\":\"user\",\"content\":\"Hi\"},{\"role\":\"assistant\",\"content\":\"Checking.\","
               "\"tool_calls\":[{\"id\":\"a\",\"function\":{\"name\":\"get_time\",\"arguments\":\"{}\"}},"
               "{\"id\":\"b\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"not json\"}}]},"
               "{\"role\":\"tool\",\"tool_call_id\":\"a\",\"content\":\"noon\"},"
               "{\"role\":\"tool\",\"tool_call_id\":\"b\",\"content\":\"rain\"}]");
    t_check(p && !strncmp(p, "<|im_start|>system\n# Tools\n", 27), "render_hermes_nosys", "%s", esc(p));
    check_has("render_hermes_two_calls", p,
              "<|im_start|>assistant\nChecking.\n<tool_call>\n{\"name\": \"get_time\", \"arguments\": {}}\n"
              "</tool_call>\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": \"not json\"}\n</tool_call>"
              "<|im_end|>\n");
    check_has("render_hermes_grouped_results", p,
              "<|im_start|>user\n<tool_response>\nnoon\n</tool_response>\n<tool_response>\nrain\n</tool_response>"
              "<|im_end|>\n<|im_start|>assistant\n");
    free(p);

    /* the plain path is unchanged without tools */
    oai_req r;
    oai_err e;
    const char *body = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}";
    if (!parse(body, &r, &e)) {
        p = NULL;
        oai_chat_prompt(&r, CHAT_CHATML, NULL, &p, &e);
        check_str("render_plain", p, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
        t_check(!r.gen.grammar, "render_plain_no_grammar", "a grammar was set");
        free(p);
        oai_req_free(&r);
    }
    /* ipython is llama3's only */
    const chat_msg ip[] = { { "ipython", "x" } };
    p = NULL;
    t_check(chat_render(CHAT_CHATML, ip, 1, NULL, &p) == SOV_EINVAL, "render_ipython_llama3_only", "accepted");
    free(p);
}

/* ---- scanning ---- */

static tools_req scan_tools(bool parallel)
{
    tools_req t;
    memset(&t, 0, sizeof t);
    static tools_fn fns[2];
    fns[0].name = (char *)"get_weather";
    fns[1].name = (char *)"get_time";
    t.fns = fns;
    t.n_fns = 2;
    t.parallel = parallel;
    return t;
}

typedef struct scase {
    int fmt;
    bool parallel;
    const char *text;
    int n_calls;            /* calls expected in the whole text */
    const char *content;    /* content of the whole answer ("" = none) */
    const char *fn0, *args0, *fn1, *args1;
} scase;

static const scase scases[] = {
    { TOOLS_HERMES, true, "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>",
      1, "", "get_weather", "{\"city\": \"Paris\"}", NULL, NULL },
    { TOOLS_HERMES, true,
      "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"days\": 2}}\n"
      "</tool_call>\n<tool_call>\n{\"name\": \"get_time\", \"arguments\": {}}\n</tool_call>",
      2, "Let me check.", "get_weather", "{\"city\": \"Paris\", \"days\": 2}", "get_time", "{}" },
    { TOOLS_HERMES, false,
      "<tool_call>\n{\"name\": \"get_time\", \"arguments\": {}}\n</tool_call>\n<tool_call>\n{\"name\": \"get_weather\", "
      "\"arguments\": {}}\n</tool_call>",
      1, "", "get_time", "{}", NULL, NULL },
    { TOOLS_HERMES, true, "<tool_call>{\"arguments\": {\"a\": [1, 2.5e3, true, null, \"x\\\"y\"]}, \"name\": \"get_time\"}",
      1, "", "get_time", "{\"a\": [1, 2.5e3, true, null, \"x\\\"y\"]}", NULL, NULL },
    { TOOLS_HERMES, true, "<tool_call>{\"name\": \"get_weather\", \"arguments\": \"{\\\"city\\\": \\\"Rome\\\"}\"}</tool_call>",
      1, "", "get_weather", "{\"city\": \"Rome\"}", NULL, NULL },
    { TOOLS_HERMES, true, "<tool_call>\n{\"name\": \"get_time\"}\n</tool_call>", 1, "", "get_time", "{}", NULL, NULL },
    { TOOLS_HERMES, true, "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"ci", 1, "", "get_weather",
      "{\"ci", NULL, NULL },
    /* malformed: text */
    { TOOLS_HERMES, true, "<tool_call>\n{\"name\": \"launch\", \"arguments\": {}}\n</tool_call>", 0,
      "<tool_call>\n{\"name\": \"launch\", \"arguments\": {}}\n</tool_call>", NULL, NULL, NULL, NULL },
    { TOOLS_HERMES, true, "<tool_call>\nnot json\n</tool_call>", 0, "<tool_call>\nnot json\n</tool_call>", NULL, NULL,
      NULL, NULL },
    { TOOLS_HERMES, true, "Once upon a time <tool_", 0, "Once upon a time <tool_", NULL, NULL, NULL, NULL },
    { TOOLS_HERMES, true, "{\"name\": \"get_time\", \"arguments\": {}}", 0, "{\"name\": \"get_time\", \"arguments\": {}}",
      NULL, NULL, NULL, NULL },
    { TOOLS_HERMES, true, "<tool_call>\n{\"name\": \"get_ti", 0, "<tool_call>\n{\"name\": \"get_ti", NULL, NULL, NULL,
      NULL },
    { TOOLS_HERMES, true, "<tool_call>{\"city\": \"Paris\"}</tool_call>", 0, "<tool_call>{\"city\": \"Paris\"}</tool_call>",
      NULL, NULL, NULL, NULL },
    { TOOLS_LLAMA3, true, "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}", 1, "", "get_weather",
      "{\"city\": \"Paris\"}", NULL, NULL },
    { TOOLS_LLAMA3, true, "<|python_tag|>{\"name\": \"get_time\", \"parameters\": {}}", 1, "", "get_time", "{}", NULL,
      NULL },
    { TOOLS_LLAMA3, true,
      " {\"type\": \"function\", \"name\": \"get_time\", \"parameters\": {}}\n{\"name\": \"get_weather\", "
      "\"parameters\": {\"city\": \"London\"}}",
      2, "", "get_time", "{}", "get_weather", "{\"city\": \"London\"}" },
    { TOOLS_LLAMA3, true, "{\"story\": \"Once\"}", 0, "{\"story\": \"Once\"}", NULL, NULL, NULL, NULL },
    { TOOLS_LLAMA3, true, "The {\"name\": \"get_time\", \"parameters\": {}}", 0,
      "The {\"name\": \"get_time\", \"parameters\": {}}", NULL, NULL, NULL, NULL },
    { TOOLS_LLAMA3, true, "{\"name\": \"get_time\", \"parameters\": {}, }", 1, "", "get_time", "{}", NULL, NULL },
    { TOOLS_MISTRAL, true,
      "[TOOL_CALLS] [{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}, \"id\": \"abc123def\"}, "
      "{\"name\": \"get_time\", \"arguments\": {}}]",
      2, "", "get_weather", "{\"city\": \"Paris\"}", "get_time", "{}" },
    { TOOLS_MISTRAL, true, "[{\"name\": \"get_time\", \"arguments\": {}}]", 1, "", "get_time", "{}", NULL, NULL },
    { TOOLS_MISTRAL, true, "Sure. [TOOL_CALLS][{\"name\":\"get_time\",\"arguments\":{}}]", 1, "Sure.", "get_time", "{}",
      NULL, NULL },
    { TOOLS_MISTRAL, true, "[1, 2, 3] is a list", 0, "[1, 2, 3] is a list", NULL, NULL, NULL, NULL },
    { TOOLS_MISTRAL, true, "[TOOL_CALLS] oops", 0, "[TOOL_CALLS] oops", NULL, NULL, NULL, NULL },
    { TOOLS_GENERIC, true, "{\"tool_calls\": [{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}]}", 1, "",
      "get_weather", "{\"city\": \"Paris\"}", NULL, NULL },
    { TOOLS_GENERIC, true,
      "\n{\"tool_calls\": [{\"name\": \"get_time\", \"arguments\": {}}, {\"name\": \"get_weather\", \"arguments\": "
      "{\"city\": \"London\", \"days\": 7}}]}",
      2, "", "get_time", "{}", "get_weather", "{\"city\": \"London\", \"days\": 7}" },
    { TOOLS_GENERIC, true, "{\"name\": \"get_time\", \"arguments\": {}}", 1, "", "get_time", "{}", NULL, NULL },
    { TOOLS_GENERIC, true, "{\"answer\": 42}", 0, "{\"answer\": 42}", NULL, NULL, NULL, NULL },
    { TOOLS_GENERIC, true, " \n{\"tool_calls\": [", 0, " \n{\"tool_calls\": [", NULL, NULL, NULL, NULL },
    { TOOLS_GENERIC, true, "It is sunny.", 0, "It is sunny.", NULL, NULL, NULL, NULL },
};

/* Whether every prefix of text, scanned as a stream sees it (not final),
 * agrees with r, the scan of the whole: content never more than the
 * whole's and never shrinking, calls a prefix of the whole's calls, each
 * one's arguments so far a prefix of its final arguments. */
static bool prefixes_agree(int fmt, const tools_req *t, const char *text, const tools_scan_res *r, char *why,
                           size_t cap)
{
    size_t len = strlen(text), last = 0;
    for (size_t l = 0; l <= len; l++) {
        tools_scan_res p;
        if (tools_scan(fmt, t, text, l, false, &p)) {
            snprintf(why, cap, "out of memory");
            return false;
        }
        bool ok = p.content_len <= r->content_len && p.content_len >= last && p.n_calls <= r->n_calls;
        if (!ok)
            snprintf(why, cap, "prefix %zu: content %zu (before %zu, whole %zu), calls %zu (whole %zu)", l,
                     p.content_len, last, r->content_len, p.n_calls, r->n_calls);
        last = p.content_len;
        for (size_t k = 0; ok && k < p.n_calls; k++) {
            size_t pl, fl;
            char *pa = tools_args_text(&p.calls[k], text, true, &pl);
            char *fa = tools_args_text(&r->calls[k], text, false, &fl);
            if (p.calls[k].fn != r->calls[k].fn || !pa || !fa || pl > fl || memcmp(pa, fa, pl)) {
                ok = false;
                snprintf(why, cap, "prefix %zu: call %zu args '%s' not a prefix of '%s'", l, k, pa ? pa : "?",
                         fa ? fa : "?");
            }
            free(pa);
            free(fa);
        }
        tools_scan_free(&p);
        if (!ok)
            return false;
    }
    return true;
}

static uint64_t rnd_state;
static uint32_t rnd(uint32_t n)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return n ? (uint32_t)(rnd_state % n) : 0;
}

static void put(char *b, size_t *o, size_t cap, const char *s)
{
    size_t n = strlen(s);
    if (*o + n + 1 < cap) {
        memcpy(b + *o, s, n);
        *o += n;
    }
}

static void sp(char *b, size_t *o, size_t cap)
{
    static const char *w[] = { "", "", " ", "\n", "  " };
    put(b, o, cap, w[rnd(5)]);
}

static void random_value(char *b, size_t *o, size_t cap, int depth)
{
    static const char *atoms[] = { "1", "-2.5e3", "0", "\"str\\\"esc\"", "\"\\u00e9t\u00e9\"", "true", "false", "null" };
    uint32_t k = depth > 2 ? 0 : rnd(4);
    if (k == 0 || k == 1) {
        put(b, o, cap, atoms[rnd(8)]);
    } else if (k == 2) {
        put(b, o, cap, "[");
        for (uint32_t i = 0, n = rnd(3); i < n; i++) {
            if (i)
                put(b, o, cap, ",");
            sp(b, o, cap);
            random_value(b, o, cap, depth + 1);
        }
        put(b, o, cap, "]");
    } else {
        put(b, o, cap, "{");
        for (uint32_t i = 0, n = rnd(3); i < n; i++) {
            if (i)
                put(b, o, cap, ",");
            sp(b, o, cap);
            put(b, o, cap, i % 2 ? "\"k\":" : "\"city\": ");
            random_value(b, o, cap, depth + 1);
        }
        put(b, o, cap, "}");
    }
}

static void random_call(int fmt, char *b, size_t *o, size_t cap)
{
    static const char *names[] = { "\"get_time\"", "\"get_weather\"", "\"nope\"", "\"get_time\"" };
    const char *args = fmt == TOOLS_LLAMA3 && rnd(4) ? "\"parameters\"" : "\"arguments\"";
    int order = (int)rnd(4);
    put(b, o, cap, "{");
    sp(b, o, cap);
    for (int m = 0; m < 3; m++) {
        int which = (m + order) % 3;
        if (m)
            put(b, o, cap, ", ");
        if (which == 0) {
            put(b, o, cap, "\"name\": ");
            put(b, o, cap, names[rnd(4)]);
        } else if (which == 1) {
            put(b, o, cap, args);
            put(b, o, cap, ": ");
            if (rnd(6) == 0)
                put(b, o, cap, "\"{\\\"a\\\": 1}\"");
            else
                random_value(b, o, cap, 1);
        } else {
            put(b, o, cap, rnd(2) ? "\"id\": \"abc\"" : "\"type\": \"function\"");
        }
    }
    sp(b, o, cap);
    put(b, o, cap, "}");
}

static void random_answer(int fmt, char *b, size_t *o, size_t cap)
{
    static const char *texts[] = { "", "", "Sure.", "Once upon a time ", "{\"x\": 1} " };
    uint32_t n = 1 + rnd(3);
    if (fmt == TOOLS_HERMES || fmt == TOOLS_MISTRAL || rnd(3) == 0)
        put(b, o, cap, texts[rnd(5)]);
    if (fmt == TOOLS_HERMES) {
        for (uint32_t i = 0; i < n; i++) {
            put(b, o, cap, i ? "\n<tool_call>\n" : "<tool_call>\n");
            random_call(fmt, b, o, cap);
            put(b, o, cap, "\n</tool_call>");
        }
    } else if (fmt == TOOLS_LLAMA3) {
        if (rnd(3) == 0)
            put(b, o, cap, "<|python_tag|>");
        for (uint32_t i = 0; i < n; i++) {
            if (i)
                put(b, o, cap, rnd(2) ? "\n" : "; ");
            random_call(fmt, b, o, cap);
        }
    } else {
        put(b, o, cap, fmt == TOOLS_MISTRAL ? (rnd(3) ? "[TOOL_CALLS] [" : "[") : "{\"tool_calls\": [");
        for (uint32_t i = 0; i < n; i++) {
            if (i)
                put(b, o, cap, ", ");
            random_call(fmt, b, o, cap);
        }
        put(b, o, cap, fmt == TOOLS_MISTRAL ? "]" : "]}");
    }
    if (rnd(4) == 0)
        put(b, o, cap, " The end.");
}

static void test_scan(void)
{
    for (size_t i = 0; i < sizeof scases / sizeof scases[0]; i++) {
        const scase *c = &scases[i];
        tools_req t = scan_tools(c->parallel);
        tools_scan_res r;
        size_t len = strlen(c->text);
        char name[64];
        snprintf(name, sizeof name, "scan_%s_%zu", tools_fmt_name(c->fmt), i);
        if (tools_scan(c->fmt, &t, c->text, len, true, &r)) {
            t_check(false, name, "tools_scan failed");
            continue;
        }
        bool ok = (int)r.n_calls == c->n_calls && r.content_len == strlen(c->content) &&
                  !memcmp(c->text, c->content, r.content_len);
        char why[512] = "";
        for (size_t k = 0; ok && k < r.n_calls && k < 2; k++) {
            const char *fn = k ? c->fn1 : c->fn0, *args = k ? c->args1 : c->args0;
            size_t al;
            char *a = tools_args_text(&r.calls[k], c->text, false, &al);
            if (strcmp(t.fns[r.calls[k].fn].name, fn) || !a || strcmp(a, args)) {
                ok = false;
                snprintf(why, sizeof why, "call %zu: %s(%s), want %s(%s)", k, t.fns[r.calls[k].fn].name, a ? a : "?",
                         fn, args);
            }
            free(a);
        }
        t_check(ok, name, "%s: %zu calls (want %d), content %zu bytes (want %zu) %s", esc(c->text), r.n_calls,
                c->n_calls, r.content_len, strlen(c->content), why);

        /* every prefix, scanned as a stream sees it, agrees with the whole */
        char pwhy[512] = "";
        bool pok = prefixes_agree(c->fmt, &t, c->text, &r, pwhy, sizeof pwhy);
        snprintf(name, sizeof name, "scan_prefixes_%s_%zu", tools_fmt_name(c->fmt), i);
        t_check(pok, name, "%s: %s", esc(c->text), pwhy);
        tools_scan_free(&r);
    }

    /* random answers in each format (calls with members in any order,
     * nested arguments, unknown names, content around them), some cut short
     * or with a byte changed: every prefix agrees with the whole */
    {
        int bad = 0, with_calls = 0;
        char why[512] = "", first[1400] = "";
        for (int it = 0; it < 3000; it++) {
            rnd_state = 0x9e3779b97f4a7c15ull * (uint64_t)(it + 1);
            char text[1024];
            size_t o = 0;
            int fmt = it % 4;
            random_answer(fmt, text, &o, sizeof text);
            if (rnd(3) == 0 && o > 0)
                o = rnd((uint32_t)o); /* cut short */
            if (rnd(4) == 0 && o > 0)
                text[rnd((uint32_t)o)] = "{}[]\",: x\\"[rnd(11)]; /* a byte changed */
            text[o] = 0;
            tools_req tr = scan_tools(it % 3 != 0);
            tools_scan_res r;
            if (tools_scan(fmt, &tr, text, o, true, &r) || !prefixes_agree(fmt, &tr, text, &r, why, sizeof why)) {
                if (!bad++)
                    snprintf(first, sizeof first, "%s [%s]: %s", esc(text), tools_fmt_name(fmt), why);
            }
            with_calls += r.n_calls > 0;
            tools_scan_free(&r);
        }
        printf("INFO scan_random_prefixes: %d of 3000 random answers hold calls\n", with_calls);
        t_check(bad == 0, "scan_random_prefixes", "%d of 3000 disagree; first: %s", bad, first);
    }

    /* held back while it may become a call; released as soon as it cannot */
    tools_req t = scan_tools(true);
    static const struct {
        int fmt;
        const char *text;
        size_t content;
    } holds[] = {
        { TOOLS_HERMES, "Hi <tool_c", 2 },      { TOOLS_HERMES, "Hi <tool_call>\n{\"na", 2 },
        { TOOLS_HERMES, "Hi <toolbox", 11 },    { TOOLS_HERMES, "Hi \n", 2 },
        { TOOLS_LLAMA3, "  {\"name\": \"get", 0 }, { TOOLS_LLAMA3, "{\"nome\"", 7 },
        { TOOLS_LLAMA3, "Hi <|python", 2 },      { TOOLS_MISTRAL, "[", 0 },
        { TOOLS_MISTRAL, "[3", 2 },              { TOOLS_MISTRAL, "ok [TOOL_", 2 },
        { TOOLS_GENERIC, "{", 0 },               { TOOLS_GENERIC, "{\"tool_calls\": [{\"name\": \"get_time\"", 0 },
        { TOOLS_GENERIC, "{ \"x", 0 },           { TOOLS_GENERIC, "{ \"x\"", 5 },
        { TOOLS_GENERIC, "{\"name\": \"nothing\"", 18 },
    };
    for (size_t i = 0; i < sizeof holds / sizeof holds[0]; i++) {
        tools_scan_res r;
        tools_scan(holds[i].fmt, &t, holds[i].text, strlen(holds[i].text), false, &r);
        char name[64];
        snprintf(name, sizeof name, "scan_hold_%s_%zu", tools_fmt_name(holds[i].fmt), i);
        t_check(r.content_len == holds[i].content, name, "'%s': content %zu, want %zu", esc(holds[i].text),
                r.content_len, holds[i].content);
        tools_scan_free(&r);
    }
    /* the name is announced once complete; the arguments grow */
    tools_scan_res r;
    const char *s = "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Pa";
    tools_scan(TOOLS_HERMES, &t, s, strlen(s), false, &r);
    size_t al = 0;
    char *a = r.n_calls ? tools_args_text(&r.calls[0], s, true, &al) : NULL;
    t_check(r.n_calls == 1 && r.calls[0].fn == 0 && a && !strcmp(a, "{\"city\": \"Pa"), "scan_partial_args",
            "%zu calls, args '%s'", r.n_calls, a ? a : "");
    free(a);
    tools_scan_free(&r);

    char id0[32], id1[32], id2[32];
    tools_call_id("chatcmpl-abc", 0, id0);
    tools_call_id("chatcmpl-abc", 1, id1);
    tools_call_id("chatcmpl-abd", 0, id2);
    t_check(!strncmp(id0, "call_", 5) && strlen(id0) == 29 && strcmp(id0, id1) && strcmp(id0, id2), "call_ids",
            "%s %s %s", id0, id1, id2);
}

/* ---- grammars ---- */

static bool accepts(const gram *g, const char *text)
{
    gram_state *s = NULL;
    if (gram_state_new(&s, g))
        return false;
    bool ok = gram_accept_bytes(s, text, strlen(text)) == 0 && gram_can_end(s);
    gram_state_free(s);
    return ok;
}

static void test_grammar(void)
{
    static const struct {
        int tmpl;
        const char *ok_weather, *ok_time, *bad_args, *two;
    } fm[] = {
        { CHAT_CHATML, "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"days\": 3}}\n</tool_call>",
          "<tool_call>\n{\"name\": \"get_time\", \"arguments\": {}}\n</tool_call>",
          "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Berlin\", \"days\": 3}}\n</tool_call>",
          "<tool_call>\n{\"name\": \"get_time\", \"arguments\": {}}\n</tool_call>\n<tool_call>\n{\"name\": "
          "\"get_weather\", \"arguments\": {\"city\": \"London\", \"days\": 7}}\n</tool_call>" },
        { CHAT_LLAMA3, "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\", \"days\": 3}}",
          "{\"name\": \"get_time\", \"parameters\": {}}",
          "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\", \"days\": 9}}",
          "{\"name\": \"get_time\", \"parameters\": {}}\n{\"name\": \"get_time\", \"parameters\": {}}" },
        { CHAT_MISTRAL, "[TOOL_CALLS] [{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"days\": 3}}]",
          "[TOOL_CALLS] [{\"name\": \"get_time\", \"arguments\": {}}]",
          "[TOOL_CALLS] [{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}]",
          "[TOOL_CALLS] [{\"name\": \"get_time\", \"arguments\": {}}, {\"name\": \"get_time\", \"arguments\": {}}]" },
        { CHAT_GEMMA, "{\"tool_calls\": [{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"days\": 3}}]}",
          "{\"tool_calls\": [{\"name\": \"get_time\", \"arguments\": {}}]}",
          "{\"tool_calls\": [{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"days\": \"3\"}}]}",
          "{\"tool_calls\": [{\"name\": \"get_time\", \"arguments\": {}}, {\"name\": \"get_weather\", \"arguments\": "
          "{\"city\": \"London\", \"days\": 1}}]}" },
    };
    for (size_t i = 0; i < sizeof fm / sizeof fm[0]; i++) {
        const char *fname = tools_fmt_name(tools_fmt_of(fm[i].tmpl));
        static const char *choices[] = { "\"required\"", "{\"type\":\"function\",\"function\":{\"name\":\"get_time\"}}" };
        for (int par = 0; par < 2; par++)
            for (int ci = 0; ci < 2; ci++) {
                char body[8192], name[96];
                snprintf(body, sizeof body,
                         "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":" TOOLS_JSON
                         ",\"tool_choice\":%s,\"parallel_tool_calls\":%s}",
                         choices[ci], par ? "true" : "false");
                oai_req r;
                oai_err e;
                char *p = NULL;
                snprintf(name, sizeof name, "grammar_%s_%s_%s", fname, ci ? "named" : "required",
                         par ? "parallel" : "single");
                if (parse(body, &r, &e) || oai_chat_prompt(&r, fm[i].tmpl, NULL, &p, &e) || !r.gen.grammar) {
                    t_check(false, name, "%s (param %s)", e.msg, e.param);
                    continue;
                }
                free(p);
                const gram *g = r.gen.grammar;
                char nm[128];
                snprintf(nm, sizeof nm, "%s_time_ok", name);
                t_check(accepts(g, fm[i].ok_time), nm, "rejected %s", esc(fm[i].ok_time));
                snprintf(nm, sizeof nm, "%s_weather", name);
                t_check(accepts(g, fm[i].ok_weather) == !ci, nm, "%s: %s", ci ? "accepted" : "rejected",
                        esc(fm[i].ok_weather));
                snprintf(nm, sizeof nm, "%s_bad_args", name);
                t_check(!accepts(g, fm[i].bad_args), nm, "accepted %s", esc(fm[i].bad_args));
                if (!ci) {
                    snprintf(nm, sizeof nm, "%s_two_calls", name);
                    t_check(accepts(g, fm[i].two) == (bool)par, nm, "%s: %s", par ? "rejected" : "accepted",
                            esc(fm[i].two));
                }
                /* the scan reads back what the grammar writes */
                tools_scan_res sr;
                const char *txt = ci ? fm[i].ok_time : fm[i].ok_weather;
                tools_scan(r.tools.fmt, &r.tools, txt, strlen(txt), true, &sr);
                size_t al = 0;
                char *a = sr.n_calls ? tools_args_text(&sr.calls[0], txt, false, &al) : NULL;
                snprintf(nm, sizeof nm, "%s_round_trip", name);
                t_check(sr.n_calls == 1 && sr.content_len == 0 && sr.calls[0].done && a &&
                            !strcmp(a, ci ? "{}" : "{\"city\": \"Paris\", \"days\": 3}"),
                        nm, "%zu calls, args %s", sr.n_calls, a ? a : "?");
                free(a);
                tools_scan_free(&sr);
                oai_req_free(&r);
            }
    }
    /* declared properties without additionalProperties: the declared ones
     * only; no parameters: {} */
    oai_req r;
    oai_err e;
    char *p = NULL;
    const char *open_body = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":["
                            "{\"type\":\"function\",\"function\":{\"name\":\"open_fn\",\"parameters\":{\"type\":"
                            "\"object\",\"properties\":{\"a\":{\"type\":\"integer\"}}}}},{\"type\":\"function\","
                            "\"function\":{\"name\":\"noargs\"}}],\"tool_choice\":\"required\"}";
    if (!parse(open_body, &r, &e) && !oai_chat_prompt(&r, CHAT_CHATML, NULL, &p, &e) && r.gen.grammar) {
        const gram *g = r.gen.grammar;
        t_check(accepts(g, "<tool_call>\n{\"name\": \"open_fn\", \"arguments\": {\"a\": 1}}\n</tool_call>"),
                "grammar_declared_ok", "rejected");
        t_check(!accepts(g, "<tool_call>\n{\"name\": \"open_fn\", \"arguments\": {\"a\": 1, \"b\": 2}}\n</tool_call>"),
                "grammar_declared_only", "accepted an undeclared argument");
        t_check(accepts(g, "<tool_call>\n{\"name\": \"noargs\", \"arguments\": {}}\n</tool_call>") &&
                    !accepts(g, "<tool_call>\n{\"name\": \"noargs\", \"arguments\": {\"x\": 1}}\n</tool_call>"),
                "grammar_no_parameters_empty", "not exactly {}");
        free(p);
        p = NULL;
        oai_req_free(&r);
    } else {
        t_check(false, "grammar_declared_ok", "%s", e.msg);
    }
    /* a strict schema with an unsupported keyword: 400 naming the tool */
    const char *body = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{\"type\":"
                       "\"function\",\"function\":{\"name\":\"f\",\"strict\":true,\"parameters\":{\"type\":\"object\","
                       "\"patternProperties\":{\"^a\":{}}}}}],\"tool_choice\":\"required\"}";
    if (!parse(body, &r, &e)) {
        int rc = oai_chat_prompt(&r, CHAT_CHATML, NULL, &p, &e);
        t_check(rc == -1 && e.status == 400 && !strcmp(e.param, "tools[0].function.parameters") && !p,
                "grammar_strict_unsupported", "rc %d param '%s': %s", rc, e.param, e.msg);
        oai_req_free(&r);
    }
}

/* ---- whole answers and streams ---- */

/* Feeds text to oai_tools_chunks in pieces of `step` bytes, then the end;
 * accumulates the deltas as an OpenAI client does and compares with
 * oai_response. */
static bool stream_agrees(int tmpl, const char *tools_extra, const char *text, size_t step, int finish, char *whyo,
                          size_t whycap)
{
    char body[8192];
    snprintf(body, sizeof body,
             "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":" TOOLS_JSON "%s}",
             tools_extra ? tools_extra : "");
    oai_req r;
    oai_err e;
    char *p = NULL;
    if (parse(body, &r, &e) || oai_chat_prompt(&r, tmpl, NULL, &p, &e)) {
        snprintf(whyo, whycap, "%s", e.msg);
        return false;
    }
    free(p);
    size_t len = strlen(text);
    sched_job j;
    memset(&j, 0, sizeof j);
    j.text = (char *)text;
    int32_t prompt[1] = { 1 };
    j.prompt = prompt;
    j.n_prompt = 1;
    oai_meta m;
    oai_meta_init(&m, OAI_CHAT);
    m.model = "m";
    m.fingerprint = "fp";
    sched_view v = { .committed = len, .finish = finish, .n_gen = 5 };
    char *whole = oai_response(&m, &r, &j, &v);
    json_t *wj = whole ? json_loads(whole, 0, NULL) : NULL;
    json_t *msg = json_object_get(json_array_get(json_object_get(wj, "choices"), 0), "message");

    oai_tstream ts;
    memset(&ts, 0, sizeof ts);
    json_t *acc_calls = json_array();
    char content[4096] = "";
    size_t cl = 0;
    char fin_buf[32];
    const char *fin = NULL;
    bool ok = true, first_ok = true;
    char why[512] = "";
    for (size_t at = 0;; at += step) {
        while (at < len && ((unsigned char)text[at] & 0xc0) == 0x80)
            at++; /* the scheduler commits whole UTF-8 characters */
        bool end = at >= len;
        sched_view sv = { .committed = end ? len : at, .finish = end ? finish : SCHED_RUNNING, .n_gen = 5 };
        char *ev = oai_tools_chunks(&m, &r, &j, &sv, &ts);
        if (!ev) {
            ok = false;
            break;
        }
        for (char *q = ev; (q = strstr(q, "data: "));) {
            q += 6;
            char *nl = strstr(q, "\n\n");
            json_t *c = json_loadb(q, nl ? (size_t)(nl - q) : strlen(q), 0, NULL);
            json_t *ch = json_array_get(json_object_get(c, "choices"), 0), *d = json_object_get(ch, "delta");
            const char *f = json_string_value(json_object_get(ch, "finish_reason"));
            if (f) {
                if (fin)
                    ok = false;
                snprintf(fin_buf, sizeof fin_buf, "%s", f);
                fin = fin_buf;
            }
            const char *dc = json_string_value(json_object_get(d, "content"));
            if (dc && cl + strlen(dc) < sizeof content) {
                memcpy(content + cl, dc, strlen(dc) + 1);
                cl += strlen(dc);
            }
            json_t *tc = json_object_get(d, "tool_calls");
            for (size_t k = 0; k < json_array_size(tc); k++) {
                json_t *t = json_array_get(tc, k);
                size_t idx = (size_t)json_integer_value(json_object_get(t, "index"));
                json_t *fn = json_object_get(t, "function");
                if (idx == json_array_size(acc_calls)) { /* a new call: id, type, name, arguments "" */
                    const char *a = json_string_value(json_object_get(fn, "arguments"));
                    if (!json_is_string(json_object_get(t, "id")) || !json_is_string(json_object_get(fn, "name")) ||
                        !a || *a || strcmp(json_string_value(json_object_get(t, "type")), "function"))
                        first_ok = false;
                    json_array_append_new(acc_calls,
                                          json_pack("{s:O,s:{s:O,s:s}}", "id", json_object_get(t, "id"), "function",
                                                    "name", json_object_get(fn, "name"), "arguments", ""));
                } else if (idx < json_array_size(acc_calls)) {
                    json_t *afn = json_object_get(json_array_get(acc_calls, idx), "function");
                    const char *prev = json_string_value(json_object_get(afn, "arguments"));
                    const char *piece = json_string_value(json_object_get(fn, "arguments"));
                    char *cat = malloc(strlen(prev) + (piece ? strlen(piece) : 0) + 1);
                    strcpy(cat, prev);
                    if (piece)
                        strcat(cat, piece);
                    json_object_set_new(afn, "arguments", json_string(cat));
                    free(cat);
                } else {
                    ok = false;
                    snprintf(why, sizeof why, "call index %zu out of order", idx);
                }
            }
            json_decref(c);
            q = nl ? nl : q + strlen(q);
        }
        free(ev);
        if (end)
            break;
    }
    /* compare */
    const char *wcontent = json_string_value(json_object_get(msg, "content"));
    json_t *wcalls = json_object_get(msg, "tool_calls");
    const char *wfin = json_string_value(json_object_get(json_array_get(json_object_get(wj, "choices"), 0),
                                                         "finish_reason"));
    if (ok && strcmp(content, wcontent ? wcontent : "")) {
        ok = false;
        snprintf(why, sizeof why, "stream content '%s', whole '%s'", esc(content), esc(wcontent));
    }
    if (ok && (!fin || !wfin || strcmp(fin, wfin))) {
        ok = false;
        snprintf(why, sizeof why, "finish %s vs %s", fin ? fin : "-", wfin ? wfin : "-");
    }
    size_t nw = json_array_size(wcalls);
    if (ok && nw != json_array_size(acc_calls)) {
        ok = false;
        snprintf(why, sizeof why, "%zu calls streamed, %zu whole", json_array_size(acc_calls), nw);
    }
    for (size_t k = 0; ok && k < nw; k++) {
        json_t *a = json_array_get(acc_calls, k), *w = json_array_get(wcalls, k);
        json_t *af = json_object_get(a, "function"), *wf = json_object_get(w, "function");
        if (!json_equal(json_object_get(a, "id"), json_object_get(w, "id")) ||
            !json_equal(json_object_get(af, "name"), json_object_get(wf, "name")) ||
            !json_equal(json_object_get(af, "arguments"), json_object_get(wf, "arguments"))) {
            ok = false;
            snprintf(why, sizeof why, "call %zu: streamed %s(%s), whole %s(%s)", k,
                     json_string_value(json_object_get(af, "name")),
                     json_string_value(json_object_get(af, "arguments")),
                     json_string_value(json_object_get(wf, "name")),
                     json_string_value(json_object_get(wf, "arguments")));
        }
    }
    snprintf(whyo, whycap, "%s%s", why, first_ok ? "" : " (a call's first delta lacks id/type/name/\"\")");
    json_decref(acc_calls);
    json_decref(wj);
    free(whole);
    oai_tstream_free(&ts);
    oai_req_free(&r);
    return ok && first_ok && wj;
}

static void check_stream(const char *name, int tmpl, const char *tools_extra, const char *text, size_t step,
                         int finish)
{
    char why[1024];
    t_check(stream_agrees(tmpl, tools_extra, text, step, finish, why, sizeof why), name, "%s", why);
}

static void test_answers(void)
{
    /* the whole answer's shape */
    char body[8192];
    snprintf(body, sizeof body,
             "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":" TOOLS_JSON "}");
    oai_req r;
    oai_err e;
    char *p = NULL;
    if (!parse(body, &r, &e) && !oai_chat_prompt(&r, CHAT_CHATML, NULL, &p, &e)) {
        const char *text = "Checking.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", "
                           "\"days\": 2}}\n</tool_call>\n<tool_call>\n{\"name\": \"get_time\", \"arguments\": {}}\n"
                           "</tool_call>";
        sched_job j;
        memset(&j, 0, sizeof j);
        j.text = (char *)text;
        oai_meta m;
        oai_meta_init(&m, OAI_CHAT);
        m.model = "m";
        m.fingerprint = "fp";
        sched_view v = { .committed = strlen(text), .finish = SCHED_STOP };
        char *s = oai_response(&m, &r, &j, &v);
        json_t *o = s ? json_loads(s, 0, NULL) : NULL;
        json_t *ch = json_array_get(json_object_get(o, "choices"), 0), *msg = json_object_get(ch, "message");
        json_t *tc = json_object_get(msg, "tool_calls");
        json_t *c0 = json_array_get(tc, 0), *c1 = json_array_get(tc, 1);
        const char *id0 = json_string_value(json_object_get(c0, "id")), *id1 = json_string_value(json_object_get(c1, "id"));
        t_check(o && !strcmp(json_string_value(json_object_get(ch, "finish_reason")), "tool_calls") &&
                    !strcmp(json_string_value(json_object_get(msg, "content")), "Checking.") &&
                    json_array_size(tc) == 2 && id0 && id1 && !strncmp(id0, "call_", 5) && strcmp(id0, id1) &&
                    !strcmp(json_string_value(json_object_get(c0, "type")), "function") &&
                    !strcmp(json_string_value(json_object_get(json_object_get(c0, "function"), "name")), "get_weather") &&
                    !strcmp(json_string_value(json_object_get(json_object_get(c0, "function"), "arguments")),
                            "{\"city\": \"Paris\", \"days\": 2}") &&
                    !strcmp(json_string_value(json_object_get(json_object_get(c1, "function"), "arguments")), "{}"),
                "answer_tool_calls", "%s", s ? s : "(null)");
        json_decref(o);
        free(s);

        /* no call: content and stop, no tool_calls */
        text = "Once upon a time";
        j.text = (char *)text;
        v.committed = strlen(text);
        s = oai_response(&m, &r, &j, &v);
        o = s ? json_loads(s, 0, NULL) : NULL;
        ch = json_array_get(json_object_get(o, "choices"), 0);
        msg = json_object_get(ch, "message");
        t_check(o && !strcmp(json_string_value(json_object_get(ch, "finish_reason")), "stop") &&
                    !strcmp(json_string_value(json_object_get(msg, "content")), text) &&
                    !json_object_get(msg, "tool_calls"),
                "answer_text", "%s", s ? s : "(null)");
        json_decref(o);
        free(s);
        free(p);
        oai_req_free(&r);
    }

    static const struct {
        int tmpl;
        const char *extra, *text;
        int finish;
    } st[] = {
        { CHAT_CHATML, NULL,
          "Let me see.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"days\": 2}}\n"
          "</tool_call>\n<tool_call>\n{\"name\": \"get_time\", \"arguments\": {}}\n</tool_call>",
          SCHED_STOP },
        { CHAT_CHATML, NULL, "Once upon a time, <tool> was a <tool_call without end.", SCHED_LENGTH },
        { CHAT_CHATML, NULL, "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Par", SCHED_LENGTH },
        { CHAT_CHATML, ",\"parallel_tool_calls\":false",
          "<tool_call>{\"name\": \"get_time\", \"arguments\": {}}</tool_call><tool_call>{\"name\": \"get_time\", "
          "\"arguments\": {}}</tool_call>",
          SCHED_STOP },
        { CHAT_CHATML, NULL, "<tool_call>{\"name\": \"get_time\", \"arguments\": \"{\\\"a\\\": 1}\"}</tool_call>",
          SCHED_STOP },
        { CHAT_LLAMA3, NULL,
          "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"London\", \"days\": 7}}\n{\"name\": \"get_time\", "
          "\"parameters\": {}}",
          SCHED_STOP },
        { CHAT_LLAMA3, NULL, "{\"tale\": \"Once upon a time\"} and more", SCHED_STOP },
        { CHAT_MISTRAL, NULL, "[TOOL_CALLS] [{\"name\": \"get_time\", \"arguments\": {}}]", SCHED_STOP },
        { CHAT_MISTRAL, ",\"tool_choice\":\"none\"", "[TOOL_CALLS] [{\"name\": \"get_time\", \"arguments\": {}}]",
          SCHED_STOP },
        { CHAT_ZEPHYR, NULL,
          "{\"tool_calls\": [{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"days\": 1}}]}",
          SCHED_STOP },
        { CHAT_PHI3, NULL, "The sun was hot. {\"tool_calls\": []}", SCHED_STOP },
    };
    for (size_t i = 0; i < sizeof st / sizeof st[0]; i++)
        for (size_t step = 1; step <= 7; step += 3) {
            char name[64];
            snprintf(name, sizeof name, "stream_vs_whole_%zu_step%zu", i, step);
            if (st[i].extra && strstr(st[i].extra, "none")) {
                /* tool_choice none: nothing is scanned (the plain path) */
                char b2[8192];
                snprintf(b2, sizeof b2,
                         "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":" TOOLS_JSON
                         "%s}",
                         st[i].extra);
                oai_req r2;
                if (!parse(b2, &r2, &e)) {
                    t_check(!tools_active(&r2.tools), name, "active with none");
                    oai_req_free(&r2);
                }
                continue;
            }
            check_stream(name, st[i].tmpl, st[i].extra, st[i].text, step, st[i].finish);
        }

    /* random answers: the stream's deltas add up to the whole answer */
    static const int tmpls[4] = { [TOOLS_GENERIC] = CHAT_GEMMA, [TOOLS_HERMES] = CHAT_CHATML,
                                  [TOOLS_LLAMA3] = CHAT_LLAMA3, [TOOLS_MISTRAL] = CHAT_MISTRAL };
    int bad = 0;
    char first[1600] = "", why[1024];
    for (int it = 0; it < 400; it++) {
        rnd_state = 0xd1b54a32d192ed03ull * (uint64_t)(it + 7);
        char text[1024];
        size_t o = 0;
        int fmt = it % 4;
        random_answer(fmt, text, &o, sizeof text);
        if (rnd(3) == 0 && o > 0)
            o = rnd((uint32_t)o);
        text[o] = 0;
        const char *extra = it % 3 == 0 ? ",\"parallel_tool_calls\":false" : NULL;
        if (!stream_agrees(tmpls[fmt], extra, text, 1 + rnd(6), rnd(2) ? SCHED_STOP : SCHED_LENGTH, why, sizeof why) &&
            !bad++)
            snprintf(first, sizeof first, "%s [%s]: %s", esc(text), tools_fmt_name(fmt), why);
    }
    t_check(bad == 0, "stream_vs_whole_random", "%d of 400 disagree; first: %s", bad, first);
}

int main(void)
{
    test_parse_errors();
    test_parse_ok();
    test_render();
    test_scan();
    test_grammar();
    test_answers();
    return t_done();
}
