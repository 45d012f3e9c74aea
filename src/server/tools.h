/* tools: OpenAI tool calling over a chat template family.
 *
 * A request's tools (function definitions with JSON-schema parameters), its
 * tool_choice and the tool parts of its history (assistant tool_calls, tool
 * results) are rendered in the call format of the model's template family,
 * and the generated text is scanned for calls in that format:
 *
 *   hermes   (chatml: Qwen2.5, Hermes) the tools as JSON lines inside
 *            <tools></tools> in the system turn; a call is
 *            <tool_call>\n{"name": F, "arguments": {...}}\n</tool_call>;
 *            results are <tool_response>\n...\n</tool_response> in a user turn
 *   llama3   (llama-3.1 JSON tool calls) the tools as indented JSON at the
 *            start of the first user turn; a call is the bare object
 *            {"name": F, "parameters": {...}} (several: one per line),
 *            optionally after <|python_tag|>; results in an ipython turn
 *   mistral  (v3) [AVAILABLE_TOOLS] [...][/AVAILABLE_TOOLS] before the last
 *            [INST]; calls [TOOL_CALLS] [{"name": F, "arguments": {...}}];
 *            results [TOOL_RESULTS] {"content": ..., "call_id": ...}[/TOOL_RESULTS]
 *   generic  (every other family) the tools described in the system turn
 *            and the reply convention
 *            {"tool_calls": [{"name": F, "arguments": {...}}]}; results as a
 *            user turn "Tool result for F (ID):\n..."
 *
 * tools_grammar builds a GBNF grammar for tool_choice "required" or a named
 * function: the format's call syntax around each function's arguments
 * grammar (schema_to_gbnf_rules of its parameters), so a constrained call
 * is well-formed and its arguments match the schema by construction. Where
 * the parameters declare properties but say nothing of additionalProperties,
 * the grammar writes the declared ones only (as llama.cpp's tool grammars
 * do; a call still validates, and a weak model cannot wander off into
 * invented arguments); without parameters the arguments are {}.
 *
 * tools_scan reads generated text (the whole of it, or a prefix of it while
 * it streams) and says which bytes are plain content and which calls it
 * holds; what it says about a prefix never contradicts what it says about a
 * longer text, so a stream may send what a prefix's scan shows. */
#ifndef SOV_TOOLS_H
#define SOV_TOOLS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "chat.h"

#define TOOLS_MAX_PARALLEL 8 /* calls one constrained answer may hold (parallel_tool_calls) */

enum tools_fmt { TOOLS_GENERIC = 0, TOOLS_HERMES, TOOLS_LLAMA3, TOOLS_MISTRAL };

enum tools_choice { TOOLS_AUTO = 0, TOOLS_NONE, TOOLS_REQUIRED, TOOLS_NAMED };

/* One function a request offers. */
typedef struct tools_fn {
    char *name;          /* [A-Za-z0-9_-]{1,64} */
    json_t *def;         /* {"type":"function","function":{"name","description"?,"parameters"?}} (owned) */
    json_t *params;      /* its parameters schema (borrowed from def), or NULL */
    bool strict;
} tools_fn;

/* One call of an assistant message in the history. */
typedef struct tools_call {
    char *id, *name;
    char *args;          /* function.arguments as sent (JSON text of an object, normally) */
} tools_call;

/* The tool parts of one message of the history. */
typedef struct tools_msg {
    tools_call *calls;   /* assistant: its tool_calls */
    size_t n_calls;
    char *call_id;       /* role "tool": tool_call_id */
} tools_msg;

/* A request's tool fields. All owned (tools_req_free). */
typedef struct tools_req {
    tools_fn *fns;
    size_t n_fns;
    int choice;          /* enum tools_choice (TOOLS_AUTO when tools are given without one) */
    size_t named;        /* TOOLS_NAMED: index in fns */
    bool parallel;       /* parallel_tool_calls (default true) */
    tools_msg *msgs;     /* [n_msgs] parallel to the request's messages, or NULL when none has tool parts */
    size_t n_msgs;
    int fmt;             /* enum tools_fmt, set by tools_render */
} tools_req;

void tools_req_free(tools_req *t);

/* The call format of a chat template family (enum chat_tmpl). */
int tools_fmt_of(int tmpl);
const char *tools_fmt_name(int fmt);

/* Whether the request needs tools_render (tools given and rendered, or
 * tool parts in its history). */
bool tools_used(const tools_req *t);

/* Whether the output is scanned for calls: tools given and tool_choice is
 * not "none". */
bool tools_active(const tools_req *t);

/* Renders msgs[0..n) (roles system, developer, user, assistant, tool; the
 * tool parts in t->msgs) with t's tools in family tmpl's call format (see
 * above), ending with the assistant's opening as chat_render does; sets
 * t->fmt. The tool definitions are rendered unless tool_choice is "none"
 * (the model is then not told about the tools, and answers in text); the
 * history's calls and results are rendered always. Errors: those of
 * chat_render, SOV_ENOMEM. *out: malloc'd. */
int tools_render(int tmpl, const chat_msg *msgs, size_t n, tools_req *t, const char *eos, char **out);

/* GBNF for tool_choice "required" (any of the functions) or TOOLS_NAMED
 * (that one) in format fmt: one call, or 1..TOOLS_MAX_PARALLEL calls with
 * parallel. Errors: SOV_EINVAL (choice is neither, or a function's
 * parameters cannot be made a grammar: the message names tools[i]),
 * SOV_ENOMEM. *out: malloc'd. */
int tools_grammar(int fmt, const tools_req *t, char **out);

/* A call found in generated text. */
typedef struct tools_found {
    size_t fn;           /* index in the request's fns */
    size_t args_off;     /* the arguments value: text[args_off..args_off+args_len) so far */
    size_t args_len;
    bool args_done;      /* the arguments value is complete */
    bool args_str;       /* given as a JSON string (sent decoded, once complete) */
    bool args_none;      /* no arguments member (sent as "{}" when the call is done) */
    bool done;           /* the call's object is complete */
} tools_found;

typedef struct tools_scan_res {
    size_t content_len;  /* text[0..content_len) is content: sure, may be sent */
    tools_found *calls;  /* malloc'd (tools_scan_free) */
    size_t n_calls;
} tools_scan_res;

/* Scans text[0..len) of format fmt for calls to t's functions (calls to
 * other names, or malformed ones, are not calls: their text is content).
 * final: the text is whole (not a prefix of more to come); otherwise text
 * that may still become a call (the start of a call marker, a bare JSON
 * start in formats whose calls may open the reply, white space before
 * them) is not yet content. With calls, the content is the text before the
 * first call without its trailing white space, and text after the calls is
 * dropped. Without t->parallel at most one call. Errors: SOV_ENOMEM. */
int tools_scan(int fmt, const tools_req *t, const char *text, size_t len, bool final, tools_scan_res *out);
void tools_scan_free(tools_scan_res *r);

/* The arguments of found call c as the JSON text that function.arguments
 * carries: the raw object text, the decoded string, or "{}" (malloc'd;
 * NULL: out of memory). With partial (a prefix scan), the bytes known so far
 * (a decoded string only once complete; "{}" only once done). */
char *tools_args_text(const tools_found *c, const char *text, bool partial, size_t *len);

/* "call_" + 24 characters from the response id and the call's index:
 * unique within a request, the same streamed and not. */
void tools_call_id(const char *resp_id, size_t index, char out[32]);

#endif
