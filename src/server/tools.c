/* tools: tool definitions and history in a template family's call format,
 * grammars for constrained calls, and the scan of generated text for calls
 * (see tools.h).
 *
 * The formats follow the families' published chat templates:
 *
 *   hermes   Qwen2.5's template (the Hermes 2 Pro convention): the first
 *            system turn gets "\n\n# Tools\n\n..." with one JSON line per
 *            tool between <tools> and </tools>; an assistant turn with calls
 *            is its content (if any) + "\n<tool_call>\n{"name": F,
 *            "arguments": ARGS}\n</tool_call>" per call; consecutive tool
 *            results share one user turn, each as
 *            "<tool_response>\nCONTENT\n</tool_response>" joined by "\n".
 *            Choice: without a system message the tools block alone is the
 *            system turn (Qwen's template puts its own default system line
 *            first; other chatml models are not Qwen).
 *   llama3   Llama 3.1's template with tools_in_user_message (its default):
 *            the first user turn starts with "Given the following
 *            functions, ..." and each tool as JSON indented by 4 + "\n\n";
 *            a call is {"name": F, "parameters": ARGS} (the template allows
 *            one per turn; several are written one per line); results are
 *            ipython turns.
 *   mistral  Mistral-7B-Instruct-v0.3's template (v3): system text before
 *            the last user message's content (+ "\n\n"),
 *            "[AVAILABLE_TOOLS] [DEFS][/AVAILABLE_TOOLS]" right before the
 *            last "[INST]", "[INST] U[/INST]", assistant " A" + EOS, calls
 *            "[TOOL_CALLS] [{"name": F, "arguments": ARGS, "id": ID}, ...]"
 *            + EOS, results "[TOOL_RESULTS] {"content": C, "call_id": ID}
 *            [/TOOL_RESULTS]" (C raw when it is JSON, else a JSON string).
 *   generic  the tools and the reply convention described in the system
 *            turn, rendered through the family's own chat_render.
 *
 * JSON is written as Python's json.dumps / Jinja's tojson does (", " and
 * ": " separators; indent 4 where the template indents), which is what
 * jansson writes without JSON_COMPACT. A call's arguments in the history
 * are the client's function.arguments text as sent when it is a JSON object
 * (normally the model's own output, so the next turn's prompt repeats the
 * generated tokens and its cached KV), else that text as a JSON string. */
#include "tools.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/err.h"
#include "../base/sbuf.h"
#include "../grammar/schema.h"

/* ---- small helpers ---------------------------------------------------- */

/* v as JSON text (flags for json_dumps), appended. */
static void sb_json(sbuf *b, const json_t *v, size_t flags)
{
    char *s = json_dumps(v, flags | JSON_ENCODE_ANY);
    if (!s) {
        b->oom = true;
        return;
    }
    sb_puts(b, s);
    free(s);
}

/* s as a JSON string literal, appended. */
static void sb_jstr(sbuf *b, const char *s)
{
    json_t *j = json_string(s);
    if (!j) { /* not UTF-8: the bytes lost, as the client sent them broken */
        j = json_string("");
        if (!j) {
            b->oom = true;
            return;
        }
    }
    sb_json(b, j, 0);
    json_decref(j);
}

/* Appends text as JSON: as it is when it parses as JSON (only an object
 * when obj), else as a JSON string. */
static void sb_raw_or_str(sbuf *b, const char *text, bool obj)
{
    json_t *v = json_loads(text ? text : "", JSON_DECODE_ANY, NULL);
    bool ok = v && (!obj || json_is_object(v));
    json_decref(v);
    if (ok)
        sb_puts(b, text);
    else
        sb_jstr(b, text ? text : "");
}

void tools_req_free(tools_req *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n_fns; i++) {
        free(t->fns[i].name);
        json_decref(t->fns[i].def);
    }
    free(t->fns);
    for (size_t i = 0; t->msgs && i < t->n_msgs; i++) {
        tools_msg *m = &t->msgs[i];
        for (size_t k = 0; k < m->n_calls; k++) {
            free(m->calls[k].id);
            free(m->calls[k].name);
            free(m->calls[k].args);
        }
        free(m->calls);
        free(m->call_id);
    }
    free(t->msgs);
    memset(t, 0, sizeof *t);
}

int tools_fmt_of(int tmpl)
{
    switch (tmpl) {
    case CHAT_CHATML: return TOOLS_HERMES;
    case CHAT_LLAMA3: return TOOLS_LLAMA3;
    case CHAT_MISTRAL: return TOOLS_MISTRAL;
    default: return TOOLS_GENERIC;
    }
}

const char *tools_fmt_name(int fmt)
{
    switch (fmt) {
    case TOOLS_HERMES: return "hermes";
    case TOOLS_LLAMA3: return "llama3";
    case TOOLS_MISTRAL: return "mistral";
    default: return "generic";
    }
}

bool tools_used(const tools_req *t) { return t && ((t->n_fns > 0 && t->choice != TOOLS_NONE) || t->msgs); }

bool tools_active(const tools_req *t) { return t && t->n_fns > 0 && t->choice != TOOLS_NONE; }

static const tools_msg *tmsg(const tools_req *t, size_t i)
{
    return t->msgs && i < t->n_msgs ? &t->msgs[i] : NULL;
}

static bool is_role(const char *r, const char *want) { return r && !strcmp(r, want); }
static bool is_system(const char *r) { return is_role(r, "system") || is_role(r, "developer"); }

/* The function name of the call with id in the history before message i
 * (NULL if none). */
static const char *call_name(const tools_req *t, size_t before, const char *id)
{
    if (!id)
        return NULL;
    for (size_t i = before; i-- > 0;) {
        const tools_msg *m = tmsg(t, i);
        for (size_t k = 0; m && k < m->n_calls; k++)
            if (m->calls[k].id && !strcmp(m->calls[k].id, id))
                return m->calls[k].name;
    }
    return NULL;
}

/* One call as {"name": F, KEY: ARGS} (+ , "id": ID with id). */
static void sb_call(sbuf *b, const tools_call *c, const char *key, bool id)
{
    sb_puts(b, "{\"name\": ");
    sb_jstr(b, c->name ? c->name : "");
    sb_puts(b, ", \"");
    sb_puts(b, key);
    sb_puts(b, "\": ");
    sb_raw_or_str(b, c->args && *c->args ? c->args : "{}", true);
    if (id) {
        sb_puts(b, ", \"id\": ");
        sb_jstr(b, c->id ? c->id : "");
    }
    sb_puts(b, "}");
}

/* ---- rendering -------------------------------------------------------- */

/* Messages rebuilt for chat_render: texts owned in a list. */
typedef struct mlist {
    chat_msg *m;
    char **own;
    size_t n, cap;
    bool oom;
} mlist;

static void ml_add(mlist *l, const char *role, char *text /* owned */)
{
    if (l->oom || !text) {
        l->oom = true;
        free(text);
        return;
    }
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        chat_msg *nm = realloc(l->m, cap * sizeof *nm);
        if (nm)
            l->m = nm;
        char **no = nm ? realloc(l->own, cap * sizeof *no) : NULL;
        if (no)
            l->own = no;
        if (!nm || !no) {
            l->oom = true;
            free(text);
            return;
        }
        l->cap = cap;
    }
    l->m[l->n].role = role;
    l->m[l->n].content = text;
    l->own[l->n] = text;
    l->n++;
}

static void ml_free(mlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->own[i]);
    free(l->m);
    free(l->own);
}

static char *dup_s(const char *s)
{
    sbuf b = { 0 };
    sb_puts(&b, s ? s : "");
    return sb_take(&b);
}

/* The tools block each format puts in its system (or first user) text. */
static void tools_text(sbuf *b, int fmt, const tools_req *t)
{
    switch (fmt) {
    case TOOLS_HERMES:
        sb_puts(b, "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
                   "You are provided with function signatures within <tools></tools> XML tags:\n<tools>");
        for (size_t i = 0; i < t->n_fns; i++) {
            sb_puts(b, "\n");
            sb_json(b, t->fns[i].def, 0);
        }
        sb_puts(b, "\n</tools>\n\nFor each function call, return a json object with function name and arguments "
                   "within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, "
                   "\"arguments\": <args-json-object>}\n</tool_call>");
        break;
    case TOOLS_LLAMA3:
        sb_puts(b, "Given the following functions, please respond with a JSON for a function call with its proper "
                   "arguments that best answers the given prompt.\n\n"
                   "Respond in the format {\"name\": function name, \"parameters\": dictionary of argument name and "
                   "its value}.Do not use variables.\n\n");
        for (size_t i = 0; i < t->n_fns; i++) {
            sb_json(b, t->fns[i].def, JSON_INDENT(4));
            sb_puts(b, "\n\n");
        }
        break;
    default:
        sb_puts(b, "You can call these functions (tools), given as JSON:\n");
        for (size_t i = 0; i < t->n_fns; i++) {
            sb_json(b, json_object_get(t->fns[i].def, "function"), 0);
            sb_puts(b, "\n");
        }
        sb_puts(b, "To call one or more of them, reply with only this JSON and nothing else:\n"
                   "{\"tool_calls\": [{\"name\": \"<function name>\", \"arguments\": {<its arguments>}}]}\n"
                   "Otherwise, reply in plain text.");
        break;
    }
}

/* hermes, llama3 and generic: the messages rewritten for chat_render. */
static int render_rewrite(int tmpl, int fmt, const chat_msg *msgs, size_t n, const tools_req *t, bool defs,
                          const char *eos, char **out)
{
    mlist l = { 0 };
    sbuf b = { 0 };
    size_t first_user = n;
    for (size_t i = 0; i < n; i++)
        if (is_role(msgs[i].role, "user")) {
            first_user = i;
            break;
        }
    /* where the definitions go: hermes and generic the first system turn
     * (a new one if the conversation has none); llama3 the first user turn
     * (the system turn if there is no user turn) */
    bool defs_done = !defs;
    if (defs && (fmt != TOOLS_LLAMA3 || first_user == n) && !(n > 0 && is_system(msgs[0].role))) {
        tools_text(&b, fmt, t);
        ml_add(&l, "system", sb_take(&b));
        defs_done = true;
    }
    for (size_t i = 0; i < n; i++) {
        const char *role = msgs[i].role, *c = msgs[i].content ? msgs[i].content : "";
        const tools_msg *tm = tmsg(t, i);
        memset(&b, 0, sizeof b);
        if (!defs_done && i == 0 && is_system(role) && (fmt != TOOLS_LLAMA3 || first_user == n)) {
            sb_puts(&b, c);
            sb_puts(&b, "\n\n");
            tools_text(&b, fmt, t);
            ml_add(&l, "system", sb_take(&b));
            defs_done = true;
        } else if (!defs_done && i == first_user) {
            tools_text(&b, fmt, t);
            sb_puts(&b, c);
            ml_add(&l, "user", sb_take(&b));
            defs_done = true;
        } else if (is_role(role, "assistant") && tm && tm->n_calls) {
            if (fmt == TOOLS_HERMES) {
                if (*c) {
                    sb_puts(&b, c);
                    sb_puts(&b, "\n");
                }
                for (size_t k = 0; k < tm->n_calls; k++) {
                    sb_puts(&b, k ? "\n<tool_call>\n" : "<tool_call>\n");
                    sb_call(&b, &tm->calls[k], "arguments", false);
                    sb_puts(&b, "\n</tool_call>");
                }
            } else if (fmt == TOOLS_LLAMA3) {
                if (*c) {
                    sb_puts(&b, c);
                    sb_puts(&b, "\n");
                }
                for (size_t k = 0; k < tm->n_calls; k++) {
                    if (k)
                        sb_puts(&b, "\n");
                    sb_call(&b, &tm->calls[k], "parameters", false);
                }
            } else {
                if (*c) {
                    sb_puts(&b, c);
                    sb_puts(&b, "\n");
                }
                sb_puts(&b, "{\"tool_calls\": [");
                for (size_t k = 0; k < tm->n_calls; k++) {
                    if (k)
                        sb_puts(&b, ", ");
                    sb_call(&b, &tm->calls[k], "arguments", false);
                }
                sb_puts(&b, "]}");
            }
            ml_add(&l, "assistant", sb_take(&b));
        } else if (is_role(role, "tool")) {
            const char *id = tm ? tm->call_id : NULL;
            if (fmt == TOOLS_LLAMA3) {
                ml_add(&l, "ipython", dup_s(c));
                continue;
            }
            /* consecutive results: one user turn */
            size_t k = i;
            for (; k < n && is_role(msgs[k].role, "tool"); k++) {
                const tools_msg *km = tmsg(t, k);
                const char *kc = msgs[k].content ? msgs[k].content : "";
                if (k > i)
                    sb_puts(&b, "\n");
                if (fmt == TOOLS_HERMES) {
                    sb_puts(&b, "<tool_response>\n");
                    sb_puts(&b, kc);
                    sb_puts(&b, "\n</tool_response>");
                } else {
                    id = km ? km->call_id : NULL;
                    const char *nm = call_name(t, i, id);
                    sb_puts(&b, "Tool result");
                    if (nm) {
                        sb_puts(&b, " for ");
                        sb_puts(&b, nm);
                    }
                    sb_puts(&b, " (");
                    sb_puts(&b, id ? id : "");
                    sb_puts(&b, "):\n");
                    sb_puts(&b, kc);
                }
            }
            ml_add(&l, "user", sb_take(&b));
            i = k - 1;
        } else {
            ml_add(&l, role, dup_s(c));
        }
    }
    int rc;
    if (l.oom)
        rc = err_set(SOV_ENOMEM, "out of memory rendering the tools");
    else
        rc = chat_render(tmpl, l.m, l.n, eos, out);
    ml_free(&l);
    return rc;
}

/* mistral v3, see the top of the file. */
static int render_mistral(const chat_msg *msgs, size_t n, const tools_req *t, bool defs, const char *eos,
                          char **out)
{
    sbuf b = { 0 }, sys = { 0 };
    size_t last_user = n;
    for (size_t i = 0; i < n; i++) {
        const char *r = msgs[i].role;
        if (is_role(r, "user"))
            last_user = i;
        else if (!is_system(r) && !is_role(r, "assistant") && !is_role(r, "tool")) {
            *out = NULL;
            return err_set(SOV_EINVAL, "message %zu has role \"%.64s\"; expected system, developer, user, "
                                       "assistant or tool", i, r ? r : "(null)");
        }
    }
    for (size_t i = 0; i < n; i++)
        if (is_system(msgs[i].role) && msgs[i].content && *msgs[i].content) {
            if (sys.len)
                sb_puts(&sys, "\n\n");
            sb_puts(&sys, msgs[i].content);
        }
    if (last_user == n) { /* no user turn: the definitions and system text open the prompt */
        if (defs) {
            sb_puts(&b, "[AVAILABLE_TOOLS] [");
            for (size_t k = 0; k < t->n_fns; k++) {
                if (k)
                    sb_puts(&b, ", ");
                sb_json(&b, t->fns[k].def, 0);
            }
            sb_puts(&b, "][/AVAILABLE_TOOLS]");
        }
        if (sys.len) {
            sb_puts(&b, "[INST] ");
            sb_putn(&b, sys.p, sys.len);
            sb_puts(&b, "[/INST]");
        }
    }
    for (size_t i = 0; i < n; i++) {
        const char *r = msgs[i].role, *c = msgs[i].content ? msgs[i].content : "";
        const tools_msg *tm = tmsg(t, i);
        if (is_role(r, "user")) {
            if (i == last_user && defs) {
                sb_puts(&b, "[AVAILABLE_TOOLS] [");
                for (size_t k = 0; k < t->n_fns; k++) {
                    if (k)
                        sb_puts(&b, ", ");
                    sb_json(&b, t->fns[k].def, 0);
                }
                sb_puts(&b, "][/AVAILABLE_TOOLS]");
            }
            sb_puts(&b, "[INST] ");
            if (i == last_user && sys.len) {
                sb_putn(&b, sys.p, sys.len);
                sb_puts(&b, "\n\n");
            }
            sb_puts(&b, c);
            sb_puts(&b, "[/INST]");
        } else if (is_role(r, "assistant")) {
            bool text = false;
            for (const char *q = c; *q && !text; q++)
                text = !isspace((unsigned char)*q);
            if (text || !(tm && tm->n_calls)) {
                sb_puts(&b, " ");
                sb_put_trim(&b, c);
            }
            if (tm && tm->n_calls) {
                sb_puts(&b, "[TOOL_CALLS] [");
                for (size_t k = 0; k < tm->n_calls; k++) {
                    if (k)
                        sb_puts(&b, ", ");
                    sb_call(&b, &tm->calls[k], "arguments", true);
                }
                sb_puts(&b, "]");
            }
            sb_puts(&b, eos);
        } else if (is_role(r, "tool")) {
            sb_puts(&b, "[TOOL_RESULTS] {\"content\": ");
            sb_raw_or_str(&b, c, false);
            sb_puts(&b, ", \"call_id\": ");
            sb_jstr(&b, tm && tm->call_id ? tm->call_id : "");
            sb_puts(&b, "}[/TOOL_RESULTS]");
        }
    }
    free(sys.p);
    if (sys.oom || b.oom) {
        free(b.p);
        *out = NULL;
        return err_set(SOV_ENOMEM, "out of memory rendering the mistral prompt");
    }
    *out = sb_take(&b);
    return *out ? 0 : err_set(SOV_ENOMEM, "out of memory rendering the mistral prompt");
}

int tools_render(int tmpl, const chat_msg *msgs, size_t n, tools_req *t, const char *eos, char **out)
{
    if (!out)
        return err_set(SOV_EINVAL, "tools_render: out is NULL");
    *out = NULL;
    if (tmpl <= CHAT_NONE)
        return err_set(SOV_EINVAL, "chat template %s cannot render messages", chat_name(tmpl));
    if (!eos)
        eos = "</s>";
    t->fmt = tools_fmt_of(tmpl);
    bool defs = t->n_fns > 0 && t->choice != TOOLS_NONE;
    if (t->fmt == TOOLS_MISTRAL)
        return render_mistral(msgs, n, t, defs, eos, out);
    return render_rewrite(tmpl, t->fmt, msgs, n, t, defs, eos, out);
}

/* ---- grammars --------------------------------------------------------- */

/* GBNF literal for the text s (JSON-safe names only: no escapes needed
 * but the quotes). */
static void gbnf_lit(sbuf *b, const char *s)
{
    if (!*s)
        return;
    sb_puts(b, "\"");
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            sb_puts(b, "\\");
        if (*s == '\n')
            sb_puts(b, "\\n");
        else
            sb_putn(b, s, 1);
    }
    sb_puts(b, "\"");
}

int tools_grammar(int fmt, const tools_req *t, char **out)
{
    *out = NULL;
    if (!(t->choice == TOOLS_REQUIRED || t->choice == TOOLS_NAMED) || t->n_fns == 0)
        return err_set(SOV_EINVAL, "tools_grammar: tool_choice is neither required nor a named function");
    const char *key = fmt == TOOLS_LLAMA3 ? "parameters" : "arguments";
    const char *open, *close, *sep, *lead, *tail;
    switch (fmt) {
    case TOOLS_HERMES:
        lead = "";
        open = "<tool_call>\n";
        close = "\n</tool_call>";
        sep = "\n";
        tail = "";
        break;
    case TOOLS_LLAMA3:
        lead = "";
        open = "";
        close = "";
        sep = "\n";
        tail = "";
        break;
    case TOOLS_MISTRAL:
        lead = "[TOOL_CALLS] [";
        open = "";
        close = "";
        sep = ", ";
        tail = "]";
        break;
    default:
        lead = "{\"tool_calls\": [";
        open = "";
        close = "";
        sep = ", ";
        tail = "]}";
        break;
    }
    sbuf b = { 0 };
    sb_puts(&b, "root ::= ");
    gbnf_lit(&b, lead);
    sb_puts(&b, " tool-call");
    if (t->parallel) {
        sb_puts(&b, " (");
        gbnf_lit(&b, sep);
        char rep[48];
        snprintf(rep, sizeof rep, " tool-call){0,%d}", TOOLS_MAX_PARALLEL - 1);
        sb_puts(&b, rep);
    }
    sb_puts(&b, " ");
    gbnf_lit(&b, tail);
    sb_puts(&b, "\ntool-call ::= ");
    gbnf_lit(&b, open);
    sb_puts(&b, " \"{\\\"name\\\": \" (");
    size_t lo = t->choice == TOOLS_NAMED ? t->named : 0, hi = t->choice == TOOLS_NAMED ? t->named + 1 : t->n_fns;
    for (size_t i = lo; i < hi; i++) {
        char rn[32];
        snprintf(rn, sizeof rn, "%sfn%zu", i > lo ? " | " : " ", i);
        sb_puts(&b, rn);
    }
    sb_puts(&b, " ) \"}\" ");
    gbnf_lit(&b, close);
    sb_puts(&b, "\n");
    int rc = 0;
    for (size_t i = lo; i < hi && !rc; i++) {
        const tools_fn *f = &t->fns[i];
        char *g = NULL;
        json_t *obj = NULL;
        const json_t *sc = f->params;
        if (!sc) /* no parameters: the empty object */
            sc = obj = json_pack("{s:s,s:{},s:b}", "type", "object", "properties", "additionalProperties", 0);
        else if (json_object_get(sc, "properties") && !json_object_get(sc, "additionalProperties")) {
            /* the declared arguments only (as llama.cpp's tool grammars):
             * every call still validates against the schema */
            if ((sc = obj = json_copy((json_t *)f->params)) && json_object_set_new(obj, "additionalProperties", json_false()))
                sc = NULL;
        }
        if (!sc) {
            json_decref(obj);
            rc = err_set(SOV_ENOMEM, "out of memory");
            break;
        }
        char pre[32];
        snprintf(pre, sizeof pre, "t%zu-", i);
        if (schema_to_gbnf_rules(sc, f->strict, pre, &g)) {
            rc = err_set(SOV_EINVAL, "tools[%zu].function.parameters: %s", i, err_msg());
            json_decref(obj);
            break;
        }
        json_decref(obj);
        char rn[64];
        snprintf(rn, sizeof rn, "fn%zu ::= ", i);
        sb_puts(&b, rn);
        sbuf nm = { 0 };
        sb_puts(&nm, "\"");
        sb_puts(&nm, f->name);
        sb_puts(&nm, "\", \"");
        sb_puts(&nm, key);
        sb_puts(&nm, "\": ");
        if (nm.oom) {
            free(g);
            rc = err_set(SOV_ENOMEM, "out of memory");
            break;
        }
        gbnf_lit(&b, nm.p);
        free(nm.p);
        sb_puts(&b, " ");
        sb_puts(&b, pre);
        sb_puts(&b, "root\n");
        sb_puts(&b, g);
        sb_puts(&b, "\n");
        free(g);
    }
    if (rc) {
        free(b.p);
        return rc;
    }
    if (b.oom) {
        free(b.p);
        return err_set(SOV_ENOMEM, "out of memory building the tool grammar");
    }
    *out = b.p;
    return 0;
}

/* ---- scanning --------------------------------------------------------- */

enum { SC_OK = 0, SC_PART, SC_BAD };
#define SC_DEPTH 128

typedef struct scn {
    const char *p;
    size_t n;
    bool final;
} scn;

static size_t sk_ws(const scn *s, size_t i)
{
    while (i < s->n && (s->p[i] == ' ' || s->p[i] == '\t' || s->p[i] == '\n' || s->p[i] == '\r'))
        i++;
    return i;
}

/* Each scanner: OK with *end after the value; PART with *end = s->n (the
 * text ends inside it); BAD with *end at the first byte that cannot
 * continue it (the bytes before are a valid prefix). */
static int sc_string(const scn *s, size_t i, size_t *end)
{
    i++; /* the opening quote */
    while (i < s->n) {
        unsigned char c = (unsigned char)s->p[i];
        if (c == '"') {
            *end = i + 1;
            return SC_OK;
        }
        if (c == '\\') {
            if (i + 1 >= s->n)
                break;
            char e = s->p[i + 1];
            if (e == 'u') {
                for (size_t k = 0; k < 4; k++) {
                    if (i + 2 + k >= s->n) {
                        *end = s->n;
                        return SC_PART;
                    }
                    if (!isxdigit((unsigned char)s->p[i + 2 + k])) {
                        *end = i + 2 + k;
                        return SC_BAD;
                    }
                }
                i += 6;
                continue;
            }
            if (!strchr("\"\\/bfnrt", e)) {
                *end = i + 1;
                return SC_BAD;
            }
            i += 2;
            continue;
        }
        if (c < 0x20) {
            *end = i;
            return SC_BAD;
        }
        i++;
    }
    *end = s->n;
    return SC_PART;
}

static bool digit_at(const scn *s, size_t i) { return i < s->n && s->p[i] >= '0' && s->p[i] <= '9'; }

static int sc_number(const scn *s, size_t i, size_t *end)
{
#define NEED_DIGIT()                                                                                                  \
    do {                                                                                                              \
        if (i >= s->n) {                                                                                              \
            *end = s->n;                                                                                              \
            return SC_PART;                                                                                           \
        }                                                                                                             \
        if (!digit_at(s, i)) {                                                                                        \
            *end = i;                                                                                                 \
            return SC_BAD;                                                                                            \
        }                                                                                                             \
    } while (0)
    if (s->p[i] == '-')
        i++;
    NEED_DIGIT();
    if (s->p[i] == '0')
        i++;
    else
        while (digit_at(s, i))
            i++;
    if (i < s->n && s->p[i] == '.') {
        i++;
        NEED_DIGIT();
        while (digit_at(s, i))
            i++;
    }
    if (i < s->n && (s->p[i] == 'e' || s->p[i] == 'E')) {
        i++;
        if (i < s->n && (s->p[i] == '+' || s->p[i] == '-'))
            i++;
        NEED_DIGIT();
        while (digit_at(s, i))
            i++;
    }
#undef NEED_DIGIT
    if (i >= s->n && !s->final) { /* more digits may follow */
        *end = s->n;
        return SC_PART;
    }
    *end = i;
    return SC_OK;
}

static int sc_lit(const scn *s, size_t i, const char *lit, size_t *end)
{
    for (size_t k = 0; lit[k]; k++) {
        if (i + k >= s->n) {
            *end = s->n;
            return SC_PART;
        }
        if (s->p[i + k] != lit[k]) {
            *end = i + k;
            return SC_BAD;
        }
    }
    *end = i + strlen(lit);
    return SC_OK;
}

static int sc_value(const scn *s, size_t i, int depth, size_t *end)
{
    if (i >= s->n) {
        *end = s->n;
        return SC_PART;
    }
    char c = s->p[i];
    if (c == '"')
        return sc_string(s, i, end);
    if (c == 't')
        return sc_lit(s, i, "true", end);
    if (c == 'f')
        return sc_lit(s, i, "false", end);
    if (c == 'n')
        return sc_lit(s, i, "null", end);
    if (c == '-' || (c >= '0' && c <= '9'))
        return sc_number(s, i, end);
    if ((c != '{' && c != '[') || depth >= SC_DEPTH) {
        *end = i;
        return SC_BAD;
    }
    bool obj = c == '{';
    char close = obj ? '}' : ']';
    i = sk_ws(s, i + 1);
    if (i < s->n && s->p[i] == close) {
        *end = i + 1;
        return SC_OK;
    }
    for (;;) {
        int r;
        if (i >= s->n) {
            *end = s->n;
            return SC_PART;
        }
        if (obj) {
            if (s->p[i] != '"') {
                *end = i;
                return SC_BAD;
            }
            if ((r = sc_string(s, i, &i)) != SC_OK) {
                *end = i;
                return r;
            }
            i = sk_ws(s, i);
            if (i >= s->n) {
                *end = s->n;
                return SC_PART;
            }
            if (s->p[i] != ':') {
                *end = i;
                return SC_BAD;
            }
            i = sk_ws(s, i + 1);
        }
        if ((r = sc_value(s, i, depth + 1, &i)) != SC_OK) {
            *end = i;
            return r;
        }
        i = sk_ws(s, i);
        if (i >= s->n) {
            *end = s->n;
            return SC_PART;
        }
        if (s->p[i] == close) {
            *end = i + 1;
            return SC_OK;
        }
        if (s->p[i] != ',') {
            *end = i;
            return SC_BAD;
        }
        i = sk_ws(s, i + 1);
    }
}

static bool key_is(const scn *s, size_t ks, size_t ke, const char *k)
{
    size_t n = strlen(k);
    return ke - ks == n + 2 && !memcmp(s->p + ks + 1, k, n);
}

/* One call object at i ('{'): *named once its name is complete and names
 * one of t's functions (an unknown name is BAD). */
static int sc_call(const scn *s, const tools_req *t, size_t i, tools_found *f, bool *named, size_t *end)
{
    memset(f, 0, sizeof *f);
    f->args_none = true;
    *named = false;
    bool have_args = false, first = true;
    int r;
    i = sk_ws(s, i + 1);
    for (;;) {
        if (i >= s->n) {
            *end = s->n;
            return SC_PART;
        }
        if (s->p[i] != '"') {
            *end = i;
            return SC_BAD;
        }
        size_t ks = i;
        if ((r = sc_string(s, i, &i)) != SC_OK) {
            *end = i;
            return r;
        }
        size_t ke = i;
        if (first && !key_is(s, ks, ke, "name") && !key_is(s, ks, ke, "arguments") &&
            !key_is(s, ks, ke, "parameters") && !key_is(s, ks, ke, "type") && !key_is(s, ks, ke, "id")) {
            *end = ks; /* not a call object: say so before it ends */
            return SC_BAD;
        }
        first = false;
        i = sk_ws(s, i);
        if (i >= s->n) {
            *end = s->n;
            return SC_PART;
        }
        if (s->p[i] != ':') {
            *end = i;
            return SC_BAD;
        }
        i = sk_ws(s, i + 1);
        if (i >= s->n) {
            *end = s->n;
            return SC_PART;
        }
        if (key_is(s, ks, ke, "name")) {
            if (*named || s->p[i] != '"') {
                *end = i;
                return SC_BAD;
            }
            size_t vs = i;
            if ((r = sc_string(s, i, &i)) != SC_OK) {
                *end = i;
                return r;
            }
            size_t nl = i - vs - 2;
            size_t k = 0;
            for (; k < t->n_fns; k++)
                if (strlen(t->fns[k].name) == nl && !memcmp(t->fns[k].name, s->p + vs + 1, nl))
                    break;
            if (k == t->n_fns) {
                *end = vs;
                return SC_BAD;
            }
            f->fn = k;
            *named = true;
        } else if (!have_args && (key_is(s, ks, ke, "arguments") || key_is(s, ks, ke, "parameters"))) {
            have_args = true;
            f->args_none = false;
            f->args_off = i;
            if (s->p[i] != '{' && s->p[i] != '"') {
                f->args_len = 0;
                *end = i;
                return SC_BAD;
            }
            f->args_str = s->p[i] == '"';
            r = f->args_str ? sc_string(s, i, &i) : sc_value(s, i, 0, &i);
            f->args_len = i - f->args_off;
            if (r != SC_OK) {
                *end = i;
                return r;
            }
            f->args_done = true;
        } else {
            if ((r = sc_value(s, i, 0, &i)) != SC_OK) {
                *end = i;
                return r;
            }
        }
        i = sk_ws(s, i);
        if (i >= s->n) {
            *end = s->n;
            return SC_PART;
        }
        if (s->p[i] == '}') {
            *end = i + 1;
            if (!*named)
                return SC_BAD;
            f->done = true;
            return SC_OK;
        }
        if (s->p[i] != ',') {
            *end = i;
            return SC_BAD;
        }
        i = sk_ws(s, i + 1);
    }
}

static bool starts(const scn *s, size_t i, const char *lit)
{
    size_t n = strlen(lit);
    return i + n <= s->n && !memcmp(s->p + i, lit, n);
}

static int push_call(tools_scan_res *r, const tools_found *f)
{
    tools_found *nc = realloc(r->calls, (r->n_calls + 1) * sizeof *nc);
    if (!nc)
        return err_set(SOV_ENOMEM, "out of memory scanning tool calls");
    r->calls = nc;
    r->calls[r->n_calls++] = *f;
    return 0;
}

/* The calls of one region from i (after its marker, or the bare start).
 * Returns SC_OK / SC_PART / SC_BAD for what follows the calls found (only
 * meaningful while none is), or -1 (out of memory). */
static int sc_region(const scn *s, int fmt, const tools_req *t, size_t i, tools_scan_res *res)
{
    bool list = fmt == TOOLS_MISTRAL;
    if (fmt == TOOLS_GENERIC) {
        /* {"tool_calls": [...]} or one bare call object */
        size_t j = sk_ws(s, i + 1), ke;
        if (j >= s->n)
            return SC_PART;
        if (s->p[j] != '"')
            return SC_BAD;
        int r = sc_string(s, j, &ke);
        if (r != SC_OK)
            return r;
        if (key_is(s, j, ke, "tool_calls")) {
            j = sk_ws(s, ke);
            if (j >= s->n)
                return SC_PART;
            if (s->p[j] != ':')
                return SC_BAD;
            i = sk_ws(s, j + 1);
            list = true;
        }
    }
    if (list) {
        i = sk_ws(s, i);
        if (i >= s->n)
            return SC_PART;
        if (s->p[i] != '[')
            return SC_BAD;
        i++;
    }
    for (;;) {
        i = sk_ws(s, i);
        if (i >= s->n)
            return SC_PART;
        if (s->p[i] != '{')
            return SC_BAD;
        tools_found f;
        bool named;
        int r = sc_call(s, t, i, &f, &named, &i);
        if (named && push_call(res, &f))
            return -1;
        if (r != SC_OK || !t->parallel)
            return r;
        i = sk_ws(s, i);
        if (list) {
            if (i < s->n && s->p[i] == ',') {
                i++;
                continue;
            }
            return SC_OK;
        }
        if (fmt == TOOLS_HERMES) {
            if (starts(s, i, "</tool_call>"))
                i = sk_ws(s, i + 12);
            if (starts(s, i, "<tool_call>")) {
                i += 11;
                continue;
            }
            return SC_OK;
        }
        /* llama3: one per line (or ';'-separated) */
        if (i < s->n && s->p[i] == ';')
            i = sk_ws(s, i + 1);
        if (i < s->n && s->p[i] == '{')
            continue;
        return SC_OK;
    }
}

static size_t trim_end(const char *p, size_t n)
{
    while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '\n' || p[n - 1] == '\r'))
        n--;
    return n;
}

int tools_scan(int fmt, const tools_req *t, const char *text, size_t len, bool final, tools_scan_res *out)
{
    memset(out, 0, sizeof *out);
    if (!tools_active(t)) {
        out->content_len = len;
        return 0;
    }
    scn s = { text, len, final };
    char bare = fmt == TOOLS_MISTRAL ? '[' : fmt == TOOLS_HERMES ? 0 : '{';
    const char *marker = fmt == TOOLS_HERMES    ? "<tool_call>"
                         : fmt == TOOLS_LLAMA3  ? "<|python_tag|>"
                         : fmt == TOOLS_MISTRAL ? "[TOOL_CALLS]"
                                                : NULL;
    size_t w = sk_ws(&s, 0);
    if (bare && w < len && text[w] == bare) {
        int r = sc_region(&s, fmt, t, w, out);
        if (r < 0)
            return SOV_ENOMEM;
        if (out->n_calls)
            return 0; /* content_len 0 */
        if (r == SC_PART && !final)
            return 0; /* may still be a call */
        /* not a call: on to the marker */
    }
    if (marker) {
        size_t ml = strlen(marker);
        const char *m = NULL;
        if (len >= ml)
            m = memmem(text, len, marker, ml);
        if (m) {
            size_t at = (size_t)(m - text);
            int r = sc_region(&s, fmt, t, at + ml, out);
            if (r < 0)
                return SOV_ENOMEM;
            if (out->n_calls || (r == SC_PART && !final)) {
                out->content_len = trim_end(text, at);
                return 0;
            }
            out->content_len = len; /* a broken call: text, and no later one counts */
            return 0;
        }
        if (!final) { /* hold back a partial marker at the end */
            size_t keep = len;
            for (size_t k = ml - 1; k > 0; k--)
                if (k <= len && !memcmp(text + len - k, marker, k)) {
                    keep = len - k;
                    break;
                }
            out->content_len = trim_end(text, keep);
            return 0;
        }
    }
    out->content_len = final ? len : trim_end(text, len);
    return 0;
}

void tools_scan_free(tools_scan_res *r)
{
    free(r->calls);
    memset(r, 0, sizeof *r);
}

char *tools_args_text(const tools_found *c, const char *text, bool partial, size_t *len)
{
    const char *src = "";
    size_t n = 0;
    char *dec = NULL;
    if (c->args_none) {
        if (!partial || c->done) {
            src = "{}";
            n = 2;
        }
    } else if (c->args_str) {
        if (c->args_done) {
            json_t *j = json_loadb(text + c->args_off, c->args_len, JSON_DECODE_ANY, NULL);
            if (j && json_is_string(j)) {
                n = json_string_length(j);
                dec = malloc(n + 1);
                if (dec)
                    memcpy(dec, json_string_value(j), n + 1);
            }
            json_decref(j);
            if (!dec && n) {
                *len = 0;
                return NULL;
            }
            if (dec) {
                *len = n;
                return dec;
            }
        }
    } else {
        src = text + c->args_off;
        n = c->args_len;
    }
    char *o = malloc(n + 1);
    if (!o)
        return NULL;
    memcpy(o, src, n);
    o[n] = 0;
    *len = n;
    return o;
}

void tools_call_id(const char *resp_id, size_t index, char out[32])
{
    static const char al[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    uint64_t h = 0xcbf29ce484222325ull;
    for (const char *p = resp_id ? resp_id : ""; *p; p++)
        h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
    h ^= (uint64_t)(index + 1) * 0x9e3779b97f4a7c15ull;
    memcpy(out, "call_", 5);
    for (int i = 0; i < 24; i++) {
        h ^= h >> 31;
        h *= 0x94d049bb133111ebull;
        h ^= h >> 29;
        out[5 + i] = al[h % 62];
    }
    out[29] = 0;
}
