#include "openai.h"

#include "../base/err.h"
#include "../grammar/schema.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int oai_fail(oai_err *e, int status, const char *type, const char *param, const char *code, const char *fmt, ...)
{
    e->status = status;
    e->type = type;
    snprintf(e->param, sizeof e->param, "%s", param ? param : "");
    e->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    return -1;
}

#define BAD(e, param, ...) oai_fail(e, 400, "invalid_request_error", param, NULL, __VA_ARGS__)

char *oai_err_json(const oai_err *e)
{
    json_t *o = json_pack("{s:{s:o,s:s,s:o,s:o}}", "error", "message", oai_json_text(e->msg, strlen(e->msg)), "type",
                          e->type ? e->type : "invalid_request_error", "param",
                          e->param[0] ? json_string(e->param) : json_null(), "code",
                          e->code ? json_string(e->code) : json_null());
    if (!o)
        return NULL;
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

/* ---- UTF-8 ---- */

/* Length of the valid UTF-8 sequence at s[0..n), or 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t k;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        k = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        k = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        k = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (n < k)
        return 0;
    for (size_t i = 1; i < k; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if ((k == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (k == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return k;
}

json_t *oai_json_text(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    bool ok = true;
    for (size_t i = 0; i < n && ok;) {
        size_t k = utf8_len(u + i, n - i);
        ok = k > 0 && !(k == 1 && u[i] == 0);
        i += k ? k : 1;
    }
    if (ok)
        return json_stringn(s, n);
    char *b = malloc(n * 3 + 1);
    if (!b)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        size_t k = utf8_len(u + i, n - i);
        if (k == 0 || (k == 1 && u[i] == 0)) {
            memcpy(b + o, "\xef\xbf\xbd", 3);
            o += 3;
            i++;
        } else {
            memcpy(b + o, s + i, k);
            o += k;
            i += k;
        }
    }
    json_t *j = json_stringn(b, o);
    free(b);
    return j;
}

/* ---- request parsing ---- */

/* The value of key in o, or NULL if absent or JSON null. */
static json_t *field(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return v && !json_is_null(v) ? v : NULL;
}

static int get_num(json_t *o, const char *key, double lo, double hi, double *out, bool *set, oai_err *e)
{
    json_t *v = field(o, key);
    if (set)
        *set = false;
    if (!v)
        return 0;
    if (!json_is_number(v))
        return BAD(e, key, "'%s' must be a number", key);
    double d = json_number_value(v);
    if (!(d >= lo && d <= hi))
        return BAD(e, key, "'%s' is %g; it must be between %g and %g", key, d, lo, hi);
    *out = d;
    if (set)
        *set = true;
    return 0;
}

static int get_int(json_t *o, const char *key, long long lo, long long hi, long long *out, bool *set, oai_err *e)
{
    json_t *v = field(o, key);
    *set = false;
    if (!v)
        return 0;
    if (!json_is_integer(v))
        return BAD(e, key, "'%s' must be an integer", key);
    long long d = json_integer_value(v);
    if (d < lo || d > hi)
        return BAD(e, key, "'%s' is %lld; it must be between %lld and %lld", key, d, lo, hi);
    *out = d;
    *set = true;
    return 0;
}

static int get_bool(json_t *o, const char *key, bool *out, oai_err *e)
{
    json_t *v = field(o, key);
    if (!v)
        return 0;
    if (!json_is_boolean(v))
        return BAD(e, key, "'%s' must be a boolean", key);
    *out = json_is_true(v);
    return 0;
}

static char *dup_n(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = 0;
    }
    return d;
}

#define NOMEM(e) oai_fail(e, 500, "server_error", NULL, NULL, "out of memory")

/* A message's content: a string, or an array of {"type":"text","text":...}
 * parts joined; NULL / absent is "" (an assistant turn without text). */
static int parse_content(json_t *c, size_t i, char **out, oai_err *e)
{
    char pname[64];
    snprintf(pname, sizeof pname, "messages[%zu].content", i);
    if (!c || json_is_null(c)) {
        *out = dup_n("", 0);
        return *out ? 0 : NOMEM(e);
    }
    if (json_is_string(c)) {
        if (memchr(json_string_value(c), 0, json_string_length(c)))
            return BAD(e, pname, "'%s' contains a NUL character", pname);
        *out = dup_n(json_string_value(c), json_string_length(c));
        return *out ? 0 : NOMEM(e);
    }
    if (!json_is_array(c))
        return BAD(e, pname, "'%s' must be a string or an array of content parts", pname);
    size_t total = 0, k;
    json_t *p;
    json_array_foreach(c, k, p) {
        char pp[96];
        snprintf(pp, sizeof pp, "%s[%zu]", pname, k);
        json_t *ty = json_object_get(p, "type"), *tx = json_object_get(p, "text");
        if (!json_is_object(p) || !json_is_string(ty))
            return BAD(e, pp, "'%s' must be an object with a 'type'", pp);
        if (strcmp(json_string_value(ty), "text"))
            return BAD(e, pp, "'%s' has type '%s'; this model takes only text parts", pp, json_string_value(ty));
        if (!json_is_string(tx))
            return BAD(e, pp, "'%s.text' must be a string", pp);
        if (memchr(json_string_value(tx), 0, json_string_length(tx)))
            return BAD(e, pp, "'%s.text' contains a NUL character", pp);
        total += json_string_length(tx);
    }
    char *s = malloc(total + 1);
    if (!s)
        return NOMEM(e);
    size_t o = 0;
    json_array_foreach(c, k, p) {
        json_t *tx = json_object_get(p, "text");
        memcpy(s + o, json_string_value(tx), json_string_length(tx));
        o += json_string_length(tx);
    }
    s[o] = 0;
    *out = s;
    return 0;
}

/* A function name as OpenAI allows it: 1 to 64 of [A-Za-z0-9_-]. */
static bool fn_name_ok(const char *s, size_t n)
{
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
              s[i] == '_' || s[i] == '-'))
            return false;
    return true;
}

/* A string field without NUL bytes, copied; pname names it for the 400. */
static int dup_field(json_t *v, const char *pname, char **out, oai_err *e)
{
    if (!json_is_string(v))
        return BAD(e, pname, "'%s' must be a string", pname);
    if (memchr(json_string_value(v), 0, json_string_length(v)))
        return BAD(e, pname, "'%s' contains a NUL character", pname);
    *out = dup_n(json_string_value(v), json_string_length(v));
    return *out ? 0 : NOMEM(e);
}

/* The tool parts of message i, allocated for all n messages on first use. */
static tools_msg *tool_msg(oai_req *r, size_t i, size_t n)
{
    if (!r->tools.msgs) {
        r->tools.msgs = calloc(n, sizeof *r->tools.msgs);
        if (!r->tools.msgs)
            return NULL;
        r->tools.n_msgs = n;
    }
    return &r->tools.msgs[i];
}

/* messages[i].tool_calls of an assistant message: [{id, type, function:
 * {name, arguments}}]. */
static int parse_tool_calls(json_t *tc, size_t i, tools_msg *tm, oai_err *e)
{
    char pn[64], pp[96];
    snprintf(pn, sizeof pn, "messages[%zu].tool_calls", i);
    if (!json_is_array(tc))
        return BAD(e, pn, "'%s' must be an array", pn);
    size_t n = json_array_size(tc);
    if (!n)
        return 0;
    if (!(tm->calls = calloc(n, sizeof *tm->calls)))
        return NOMEM(e);
    for (size_t k = 0; k < n; k++) {
        json_t *c = json_array_get(tc, k);
        snprintf(pn, sizeof pn, "messages[%zu].tool_calls[%zu]", i, k);
        if (!json_is_object(c))
            return BAD(e, pn, "'%s' must be an object", pn);
        tools_call *tk = &tm->calls[k];
        tm->n_calls = k + 1;
        json_t *ty = field(c, "type"), *fn = json_object_get(c, "function");
        snprintf(pp, sizeof pp, "%s.id", pn);
        if (dup_field(json_object_get(c, "id"), pp, &tk->id, e))
            return -1;
        snprintf(pp, sizeof pp, "%s.type", pn);
        if (ty && !(json_is_string(ty) && !strcmp(json_string_value(ty), "function")))
            return BAD(e, pp, "'%s' must be 'function'", pp);
        snprintf(pp, sizeof pp, "%s.function", pn);
        if (!json_is_object(fn))
            return BAD(e, pp, "'%s' must be an object with 'name' and 'arguments'", pp);
        snprintf(pp, sizeof pp, "%s.function.name", pn);
        if (dup_field(json_object_get(fn, "name"), pp, &tk->name, e))
            return -1;
        json_t *ar = field(fn, "arguments");
        snprintf(pp, sizeof pp, "%s.function.arguments", pn);
        if (ar && !json_is_string(ar))
            return BAD(e, pp, "'%s' must be a string (the arguments as JSON text)", pp);
        if (ar ? dup_field(ar, pp, &tk->args, e) : !(tk->args = dup_n("{}", 2)) ? NOMEM(e) : 0)
            return -1;
    }
    return 0;
}

static int parse_messages(json_t *root, oai_req *r, oai_err *e)
{
    json_t *ms = field(root, "messages");
    if (!ms)
        return BAD(e, "messages", "'messages' is required");
    if (!json_is_array(ms) || json_array_size(ms) == 0)
        return BAD(e, "messages", "'messages' must be a non-empty array");
    size_t n = json_array_size(ms);
    r->msgs = calloc(n, sizeof *r->msgs);
    if (!r->msgs)
        return NOMEM(e);
    for (size_t i = 0; i < n; i++) {
        json_t *m = json_array_get(ms, i);
        char pn[64];
        snprintf(pn, sizeof pn, "messages[%zu]", i);
        if (!json_is_object(m))
            return BAD(e, pn, "'%s' must be an object", pn);
        json_t *role = json_object_get(m, "role");
        snprintf(pn, sizeof pn, "messages[%zu].role", i);
        if (!json_is_string(role))
            return BAD(e, pn, "'%s' must be a string", pn);
        const char *rs = json_string_value(role);
        if (strcmp(rs, "system") && strcmp(rs, "developer") && strcmp(rs, "user") && strcmp(rs, "assistant") &&
            strcmp(rs, "tool"))
            return BAD(e, pn, "'%s' is '%.40s'; supported roles are system, developer, user, assistant and tool", pn,
                       rs);
        json_t *tc = field(m, "tool_calls");
        if (tc) {
            snprintf(pn, sizeof pn, "messages[%zu].tool_calls", i);
            if (strcmp(rs, "assistant"))
                return BAD(e, pn, "'%s': only assistant messages have tool_calls", pn);
            if (json_is_array(tc) && json_array_size(tc) == 0)
                tc = NULL;
        }
        if (tc || !strcmp(rs, "tool")) {
            tools_msg *tm = tool_msg(r, i, n);
            if (!tm)
                return NOMEM(e);
            if (tc && parse_tool_calls(tc, i, tm, e))
                return -1;
            if (!strcmp(rs, "tool")) {
                snprintf(pn, sizeof pn, "messages[%zu].tool_call_id", i);
                if (!field(m, "tool_call_id"))
                    return BAD(e, pn, "'%s' is required: a tool message answers the call with that id", pn);
                if (dup_field(field(m, "tool_call_id"), pn, &tm->call_id, e))
                    return -1;
            }
        }
        char *content = NULL;
        if (parse_content(json_object_get(m, "content"), i, &content, e))
            return -1;
        char *rd = dup_n(rs, strlen(rs));
        if (!rd) {
            free(content);
            return NOMEM(e);
        }
        r->msgs[i].role = rd;
        r->msgs[i].content = content;
        r->n_msgs = i + 1;
    }
    return 0;
}

/* completions prompt: a string, [string], [int...] or [[int...]] */
static int parse_prompt(json_t *root, int32_t n_vocab, oai_req *r, oai_err *e)
{
    json_t *p = field(root, "prompt");
    if (!p)
        return BAD(e, "prompt", "'prompt' is required");
    if (json_is_array(p) && json_array_size(p) == 1 && !json_is_integer(json_array_get(p, 0)))
        p = json_array_get(p, 0); /* a batch of one */
    if (json_is_string(p)) {
        if (memchr(json_string_value(p), 0, json_string_length(p)))
            return BAD(e, "prompt", "'prompt' contains a NUL character");
        r->prompt = dup_n(json_string_value(p), json_string_length(p));
        return r->prompt ? 0 : NOMEM(e);
    }
    if (!json_is_array(p))
        return BAD(e, "prompt", "'prompt' must be a string, an array of one string, or an array of token ids");
    size_t n = json_array_size(p);
    if (n == 0)
        return BAD(e, "prompt", "'prompt' is empty");
    if (!json_is_integer(json_array_get(p, 0)))
        return BAD(e, "prompt", "'prompt' with several prompts is not supported (send one request each)");
    r->prompt_ids = malloc(sizeof *r->prompt_ids * n);
    if (!r->prompt_ids)
        return NOMEM(e);
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(p, i);
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) >= n_vocab)
            return BAD(e, "prompt", "'prompt[%zu]' must be a token id between 0 and %d", i, n_vocab - 1);
        r->prompt_ids[i] = (int32_t)json_integer_value(v);
    }
    r->n_prompt_ids = n;
    return 0;
}

static int parse_stop(json_t *root, sched_gen *g, oai_err *e)
{
    json_t *s = field(root, "stop");
    if (!s)
        return 0;
    if (json_is_string(s)) {
        if (json_string_length(s) == 0)
            return 0;
        if (!(g->stop[0] = dup_n(json_string_value(s), json_string_length(s))))
            return NOMEM(e);
        g->n_stop = 1;
        return 0;
    }
    if (!json_is_array(s))
        return BAD(e, "stop", "'stop' must be a string or an array of strings");
    if (json_array_size(s) > SCHED_MAX_STOP)
        return BAD(e, "stop", "'stop' has %zu strings; at most %d are allowed", json_array_size(s), SCHED_MAX_STOP);
    size_t i;
    json_t *v;
    json_array_foreach(s, i, v) {
        if (!json_is_string(v))
            return BAD(e, "stop", "'stop[%zu]' must be a string", i);
        if (json_string_length(v) == 0)
            continue;
        if (memchr(json_string_value(v), 0, json_string_length(v)))
            return BAD(e, "stop", "'stop[%zu]' contains a NUL character", i);
        if (!(g->stop[g->n_stop] = dup_n(json_string_value(v), json_string_length(v))))
            return NOMEM(e);
        g->n_stop++;
    }
    return 0;
}

static int parse_bias(json_t *root, int32_t n_vocab, sched_gen *g, oai_err *e)
{
    json_t *b = field(root, "logit_bias");
    if (!b)
        return 0;
    if (!json_is_object(b))
        return BAD(e, "logit_bias", "'logit_bias' must be an object mapping token ids to biases");
    size_t n = json_object_size(b);
    if (n == 0)
        return 0;
    g->bias_id = malloc(sizeof *g->bias_id * n);
    g->bias = malloc(sizeof *g->bias * n);
    if (!g->bias_id || !g->bias)
        return NOMEM(e);
    const char *k;
    json_t *v;
    json_object_foreach(b, k, v) {
        char *end;
        long id = strtol(k, &end, 10);
        if (!*k || *end || id < 0 || id >= n_vocab)
            return BAD(e, "logit_bias", "'logit_bias' key '%.32s' is not a token id between 0 and %d", k, n_vocab - 1);
        if (!json_is_number(v) || !(json_number_value(v) >= -100 && json_number_value(v) <= 100))
            return BAD(e, "logit_bias", "'logit_bias[%s]' must be a number between -100 and 100", k);
        double d = json_number_value(v);
        g->bias_id[g->n_bias] = (int32_t)id;
        g->bias[g->n_bias] = d <= -100 ? -INFINITY : (float)d; /* -100: banned, as OpenAI says */
        g->n_bias++;
    }
    return 0;
}

/* Compiles gbnf into g->grammar; what: where it came from, for the 400. */
static int set_grammar(sched_gen *g, const char *gbnf, const char *param, const char *what, oai_err *e)
{
    gram *gr = NULL;
    if (gram_parse(&gr, gbnf, strlen(gbnf)))
        return BAD(e, param, "%s: %s", what, err_msg());
    gram_free(g->grammar);
    g->grammar = gr;
    return 0;
}

/* response_format (OpenAI: text, json_object, json_schema) and llama-server's
 * grammar / json_schema fields: the output is constrained by construction. */
static int parse_format(json_t *root, sched_gen *g, oai_err *e)
{
    json_t *rf = field(root, "response_format"), *gv = field(root, "grammar"), *js = field(root, "json_schema");
    int n = (rf != NULL) + (gv != NULL) + (js != NULL);
    if (n > 1)
        return BAD(e, rf ? "response_format" : "grammar",
                   "give only one of 'response_format', 'grammar' and 'json_schema'");
    char *gbnf = NULL;
    int rc = 0;
    if (gv) {
        if (!json_is_string(gv))
            return BAD(e, "grammar", "'grammar' must be a string (GBNF)");
        return set_grammar(g, json_string_value(gv), "grammar", "'grammar' is not a valid GBNF grammar", e);
    }
    if (js) {
        if (!json_is_object(js))
            return BAD(e, "json_schema", "'json_schema' must be a JSON Schema object");
        if (schema_to_gbnf(js, false, &gbnf))
            return BAD(e, "json_schema", "%s", err_msg());
        rc = set_grammar(g, gbnf, "json_schema", "the grammar made from 'json_schema'", e);
        free(gbnf);
        return rc;
    }
    if (!rf)
        return 0;
    if (!json_is_object(rf))
        return BAD(e, "response_format", "'response_format' must be an object");
    const char *t = json_string_value(json_object_get(rf, "type"));
    if (!t)
        return BAD(e, "response_format.type", "'response_format.type' must be 'text', 'json_object' or 'json_schema'");
    if (!strcmp(t, "text"))
        return 0;
    if (!strcmp(t, "json_object"))
        return set_grammar(g, schema_json_gbnf(), "response_format", "the JSON grammar", e);
    if (strcmp(t, "json_schema"))
        return BAD(e, "response_format.type",
                   "'response_format.type' must be 'text', 'json_object' or 'json_schema', not '%.40s'", t);
    json_t *o = json_object_get(rf, "json_schema");
    if (!json_is_object(o))
        return BAD(e, "response_format.json_schema",
                   "'response_format.json_schema' must be an object with 'name' and 'schema'");
    json_t *nm = json_object_get(o, "name"), *sc = json_object_get(o, "schema"), *st = json_object_get(o, "strict");
    if (nm && !json_is_string(nm))
        return BAD(e, "response_format.json_schema.name", "'response_format.json_schema.name' must be a string");
    if (st && !json_is_boolean(st) && !json_is_null(st))
        return BAD(e, "response_format.json_schema.strict", "'response_format.json_schema.strict' must be a boolean");
    if (sc && !json_is_object(sc) && !json_is_boolean(sc))
        return BAD(e, "response_format.json_schema.schema", "'response_format.json_schema.schema' must be an object");
    if (!sc) /* no schema: any JSON object, as OpenAI's json_object */
        return set_grammar(g, schema_json_gbnf(), "response_format", "the JSON grammar", e);
    if (schema_to_gbnf(sc, json_is_true(st), &gbnf))
        return BAD(e, "response_format.json_schema.schema", "%s", err_msg());
    rc = set_grammar(g, gbnf, "response_format.json_schema.schema", "the grammar made from the schema", e);
    free(gbnf);
    return rc;
}

/* tools, tool_choice, parallel_tool_calls (chat). After parse_format: a
 * call constraint does not combine with another one. */
static int parse_tools(json_t *root, oai_req *r, oai_err *e)
{
    tools_req *t = &r->tools;
    json_t *tl = field(root, "tools"), *tc = field(root, "tool_choice");
    t->parallel = true;
    t->choice = TOOLS_AUTO;
    if (get_bool(root, "parallel_tool_calls", &t->parallel, e))
        return -1;
    if (tl) {
        if (!json_is_array(tl))
            return BAD(e, "tools", "'tools' must be an array of {\"type\": \"function\", \"function\": {...}}");
        size_t n = json_array_size(tl);
        if (n > 128)
            return BAD(e, "tools", "'tools' has %zu functions; at most 128 are allowed", n);
        if (n && !(t->fns = calloc(n, sizeof *t->fns)))
            return NOMEM(e);
        for (size_t i = 0; i < n; i++) {
            json_t *o = json_array_get(tl, i);
            char pn[96];
            snprintf(pn, sizeof pn, "tools[%zu]", i);
            if (!json_is_object(o))
                return BAD(e, pn, "'%s' must be an object", pn);
            json_t *ty = json_object_get(o, "type"), *fn = json_object_get(o, "function");
            snprintf(pn, sizeof pn, "tools[%zu].type", i);
            if (!json_is_string(ty) || strcmp(json_string_value(ty), "function"))
                return BAD(e, pn, "'%s' must be 'function'", pn);
            snprintf(pn, sizeof pn, "tools[%zu].function", i);
            if (!json_is_object(fn))
                return BAD(e, pn, "'%s' must be an object with a 'name'", pn);
            json_t *nm = json_object_get(fn, "name"), *ds = field(fn, "description"), *pa = field(fn, "parameters"),
                   *st = field(fn, "strict");
            snprintf(pn, sizeof pn, "tools[%zu].function.name", i);
            if (!json_is_string(nm) || !fn_name_ok(json_string_value(nm), json_string_length(nm)))
                return BAD(e, pn, "'%s' must be a string of 1 to 64 letters, digits, underscores and dashes", pn);
            for (size_t k = 0; k < i; k++)
                if (!strcmp(t->fns[k].name, json_string_value(nm)))
                    return BAD(e, pn, "'%s': the function '%s' is defined twice", pn, json_string_value(nm));
            snprintf(pn, sizeof pn, "tools[%zu].function.description", i);
            if (ds && !json_is_string(ds))
                return BAD(e, pn, "'%s' must be a string", pn);
            snprintf(pn, sizeof pn, "tools[%zu].function.parameters", i);
            if (pa && !json_is_object(pa))
                return BAD(e, pn, "'%s' must be a JSON Schema object", pn);
            snprintf(pn, sizeof pn, "tools[%zu].function.strict", i);
            if (st && !json_is_boolean(st))
                return BAD(e, pn, "'%s' must be a boolean", pn);
            tools_fn *f = &t->fns[i];
            json_t *fo = json_pack("{s:s}", "name", json_string_value(nm));
            f->def = fo ? json_pack("{s:s,s:o}", "type", "function", "function", fo) : NULL;
            f->name = dup_n(json_string_value(nm), json_string_length(nm));
            t->n_fns = i + 1;
            if (!f->def || !f->name || (ds && json_object_set(fo, "description", ds)) ||
                (pa && json_object_set(fo, "parameters", pa)))
                return NOMEM(e);
            f->params = pa;
            f->strict = st && json_is_true(st);
        }
    }
    if (!tc)
        return 0;
    const char *cs = json_string_value(tc);
    if (cs && !strcmp(cs, "auto"))
        t->choice = TOOLS_AUTO;
    else if (cs && !strcmp(cs, "none"))
        t->choice = TOOLS_NONE;
    else if (cs && !strcmp(cs, "required"))
        t->choice = TOOLS_REQUIRED;
    else if (json_is_object(tc)) {
        json_t *ty = json_object_get(tc, "type"), *fn = json_object_get(tc, "function");
        json_t *nm = json_is_object(fn) ? json_object_get(fn, "name") : NULL;
        if (!json_is_string(ty) || strcmp(json_string_value(ty), "function") || !json_is_string(nm))
            return BAD(e, "tool_choice",
                       "'tool_choice' as an object must be {\"type\": \"function\", \"function\": {\"name\": ...}}");
        size_t k = 0;
        while (k < t->n_fns && strcmp(t->fns[k].name, json_string_value(nm)))
            k++;
        if (k == t->n_fns)
            return BAD(e, "tool_choice", "'tool_choice' names the function '%.64s', which is not in 'tools'",
                       json_string_value(nm));
        t->choice = TOOLS_NAMED;
        t->named = k;
    } else {
        return BAD(e, "tool_choice",
                   "'tool_choice' must be 'auto', 'none', 'required' or {\"type\": \"function\", \"function\": "
                   "{\"name\": ...}}");
    }
    if (t->choice == TOOLS_REQUIRED && t->n_fns == 0)
        return BAD(e, "tool_choice", "'tool_choice' 'required' needs 'tools'");
    if ((t->choice == TOOLS_REQUIRED || t->choice == TOOLS_NAMED) && r->gen.grammar)
        return BAD(e, "tool_choice",
                   "'tool_choice' %s constrains the output to a call; it cannot be combined with 'response_format' "
                   "json_object / json_schema, 'grammar' or 'json_schema'",
                   t->choice == TOOLS_REQUIRED ? "'required'" : "naming a function");
    return 0;
}

int oai_parse(const char *body, size_t len, int kind, const sample_params *base, int32_t n_vocab, oai_req *r,
              oai_err *e)
{
    memset(r, 0, sizeof *r);
    r->kind = kind;
    r->max_tokens = -1;
    r->top_logprobs = -1;
    r->gen.sp = *base;
    r->gen.logprobs = -1;
    /* a raw NUL byte is never valid JSON; jansson would stop reading there */
    const char *nul = memchr(body, 0, len);
    if (nul) {
        oai_fail(e, 400, "invalid_request_error", NULL, NULL,
                 "the request body is not valid JSON: a NUL byte at offset %zu", (size_t)(nul - body));
        return -1;
    }
    json_error_t je;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        oai_fail(e, 400, "invalid_request_error", NULL, NULL,
                 "the request body is not valid JSON: %s (line %d, column %d)", je.text, je.line, je.column);
        return -1;
    }
    int rc = -1;
    if (!json_is_object(root)) {
        BAD(e, NULL, "the request body must be a JSON object");
        goto done;
    }
    json_t *mv = field(root, "model");
    if (!mv) {
        BAD(e, "model", "'model' is required");
        goto done;
    }
    if (!json_is_string(mv)) {
        BAD(e, "model", "'model' must be a string");
        goto done;
    }
    if (!(r->model = dup_n(json_string_value(mv), json_string_length(mv)))) {
        NOMEM(e);
        goto done;
    }
    if (kind == OAI_CHAT ? parse_messages(root, r, e) : parse_prompt(root, n_vocab, r, e))
        goto done;

    long long iv;
    double dv;
    bool set;
    if (get_int(root, "n", 1, 1, &iv, &set, e)) {
        if (json_is_integer(field(root, "n")))
            BAD(e, "n", "'n' must be 1: sov returns one choice per request (send several requests instead)");
        goto done;
    }
    if (get_int(root, "max_tokens", 1, INT32_MAX, &iv, &set, e))
        goto done;
    if (set)
        r->max_tokens = iv;
    if (kind == OAI_CHAT) {
        if (get_int(root, "max_completion_tokens", 1, INT32_MAX, &iv, &set, e))
            goto done;
        if (set)
            r->max_tokens = iv;
    }
    if (get_num(root, "temperature", 0, 2, &dv, &set, e))
        goto done;
    if (set)
        r->gen.sp.temp = (float)dv;
    if (get_num(root, "top_p", 0, 1, &dv, &set, e))
        goto done;
    if (set)
        r->gen.sp.top_p = (float)dv;
    if (get_int(root, "top_k", 0, INT32_MAX, &iv, &set, e)) /* llama-server's extension */
        goto done;
    if (set)
        r->gen.sp.top_k = (int32_t)iv;
    if (get_num(root, "min_p", 0, 1, &dv, &set, e)) /* llama-server's extension */
        goto done;
    if (set)
        r->gen.sp.min_p = (float)dv;
    if (get_num(root, "presence_penalty", -2, 2, &dv, &set, e))
        goto done;
    if (set)
        r->gen.sp.presence_penalty = (float)dv;
    if (get_num(root, "frequency_penalty", -2, 2, &dv, &set, e))
        goto done;
    if (set)
        r->gen.sp.frequency_penalty = (float)dv;
    if (get_num(root, "repeat_penalty", 0.01, 100, &dv, &set, e)) /* llama-server's extension */
        goto done;
    if (set)
        r->gen.sp.repeat_penalty = (float)dv;
    {
        json_t *sv = field(root, "seed");
        if (sv && !json_is_integer(sv)) {
            BAD(e, "seed", "'seed' must be an integer");
            goto done;
        }
        if (sv) {
            r->gen.sp.seed = (uint64_t)json_integer_value(sv);
            r->seed_set = true;
        }
    }
    if (get_bool(root, "stream", &r->stream, e) || get_bool(root, "ignore_eos", &r->gen.ignore_eos, e))
        goto done;
    {
        json_t *so = field(root, "stream_options");
        if (so && !json_is_object(so)) {
            BAD(e, "stream_options", "'stream_options' must be an object");
            goto done;
        }
        if (so && get_bool(so, "include_usage", &r->include_usage, e)) {
            snprintf(e->param, sizeof e->param, "stream_options.include_usage");
            goto done;
        }
    }
    {
        json_t *u = field(root, "user");
        if (u && !json_is_string(u)) {
            BAD(e, "user", "'user' must be a string");
            goto done;
        }
    }
    if (kind == OAI_CHAT) {
        bool lp = false;
        if (get_bool(root, "logprobs", &lp, e) || get_int(root, "top_logprobs", 0, SCHED_MAX_TOP, &iv, &set, e))
            goto done;
        if (set && !lp) {
            BAD(e, "top_logprobs", "'top_logprobs' needs 'logprobs': true");
            goto done;
        }
        if (lp)
            r->top_logprobs = set ? (int32_t)iv : 0;
    } else {
        if (get_int(root, "logprobs", 0, 5, &iv, &set, e))
            goto done;
        if (set)
            r->top_logprobs = (int32_t)iv;
        bool echo = false;
        if (get_bool(root, "echo", &echo, e))
            goto done;
        if (echo) {
            BAD(e, "echo", "'echo' is not supported");
            goto done;
        }
        json_t *bo = field(root, "best_of");
        if (bo && !(json_is_integer(bo) && json_integer_value(bo) == 1)) {
            BAD(e, "best_of", "'best_of' must be 1");
            goto done;
        }
    }
    r->gen.logprobs = r->top_logprobs;
    if (parse_stop(root, &r->gen, e) || parse_bias(root, n_vocab, &r->gen, e) || parse_format(root, &r->gen, e))
        goto done;
    if (kind == OAI_CHAT && parse_tools(root, r, e))
        goto done;
    rc = 0;
done:
    json_decref(root);
    if (rc)
        oai_req_free(r);
    return rc;
}

void oai_req_free(oai_req *r)
{
    free(r->model);
    for (size_t i = 0; i < r->n_msgs; i++) {
        free((char *)r->msgs[i].role);
        free((char *)r->msgs[i].content);
    }
    free(r->msgs);
    free(r->prompt);
    free(r->prompt_ids);
    sched_gen_clear(&r->gen);
    tools_req_free(&r->tools);
    memset(r, 0, sizeof *r);
}

int oai_chat_prompt(oai_req *r, int tmpl, const char *eos, char **out, oai_err *e)
{
    *out = NULL;
    int rc = tools_used(&r->tools) ? tools_render(tmpl, r->msgs, r->n_msgs, &r->tools, eos, out)
                                   : chat_render(tmpl, r->msgs, r->n_msgs, eos, out);
    if (rc)
        return rc == SOV_ENOMEM ? NOMEM(e) : BAD(e, "messages", "%s", err_msg());
    r->tools.fmt = tools_fmt_of(tmpl);
    if (r->tools.choice != TOOLS_REQUIRED && r->tools.choice != TOOLS_NAMED)
        return 0;
    char *gbnf = NULL;
    if ((rc = tools_grammar(r->tools.fmt, &r->tools, &gbnf))) {
        char param[96] = "tools";
        const char *m = err_msg(), *colon = strchr(m, ':');
        if (!strncmp(m, "tools[", 6) && colon && (size_t)(colon - m) < sizeof param)
            snprintf(param, sizeof param, "%.*s", (int)(colon - m), m);
        if (rc == SOV_ENOMEM)
            NOMEM(e);
        else
            BAD(e, param, "%s", m);
        free(*out);
        *out = NULL;
        return -1;
    }
    rc = set_grammar(&r->gen, gbnf, "tools", "the grammar made from the tools", e);
    free(gbnf);
    if (rc) {
        free(*out);
        *out = NULL;
    }
    return rc;
}

/* ---- responses ---- */

void oai_meta_init(oai_meta *m, int kind)
{
    static const char hex[] = "0123456789abcdef";
    static _Atomic uint64_t counter;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^ (uint64_t)ts.tv_sec << 20 ^ ++counter * 0xbf58476d1ce4e5b9ull;
    m->kind = kind;
    m->created = (int64_t)ts.tv_sec;
    const char *pre = kind == OAI_CHAT ? "chatcmpl-" : "cmpl-";
    size_t o = strlen(pre);
    memcpy(m->id, pre, o);
    for (int i = 0; i < 24; i++) {
        x ^= x >> 31;
        x *= 0x94d049bb133111ebull;
        x ^= x >> 29;
        m->id[o++] = hex[x & 15];
    }
    m->id[o] = 0;
}

const char *oai_finish_reason(int finish)
{
    switch (finish) {
    case SCHED_STOP: return "stop";
    case SCHED_LENGTH: return "length";
    default: return NULL;
    }
}

/* A log-probability as JSON: OpenAI's -9999 stands for "impossible" (a
 * banned token's -infinity is not a JSON number). */
static json_t *lp_json(float lp)
{
    return json_real(lp >= -9999.0f ? (double)lp : -9999.0);
}

static json_t *bytes_array(const char *s, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        json_array_append_new(a, json_integer((unsigned char)s[i]));
    return a;
}

/* Text of token id after prev, as generated text shows it. */
static json_t *piece_json(const vocab *vb, int32_t prev, int32_t id, bool as_bytes)
{
    char buf[512];
    int n = vocab_piece(vb, prev, id, buf, sizeof buf);
    if (n < 0)
        n = 0;
    if ((size_t)n > sizeof buf)
        n = sizeof buf;
    return as_bytes ? bytes_array(buf, (size_t)n) : oai_json_text(buf, (size_t)n);
}

/* Previous token of record k (the prompt's last token for the first). */
static int32_t rec_prev(const sched_job *j, int32_t k)
{
    return k > 0 ? j->toks[k - 1].id : j->prompt[j->n_prompt - 1];
}

/* chat logprobs: {"content":[{token, logprob, bytes, top_logprobs}...]} */
static json_t *chat_logprobs(const oai_meta *m, const sched_job *j, int32_t k0, int32_t k1)
{
    json_t *content = json_array();
    for (int32_t k = k0; content && k < k1; k++) {
        const sched_tok *t = &j->toks[k];
        size_t start = k > 0 ? j->toks[k - 1].end : 0;
        json_t *top = json_array();
        int32_t nt = j->gen.logprobs;
        for (int32_t i = 0; top && i < nt; i++) {
            int32_t id = j->top_id[t->top_off + i];
            json_array_append_new(top, json_pack("{s:o,s:o,s:o}", "token", piece_json(m->vb, rec_prev(j, k), id, false),
                                                 "logprob", lp_json(j->top_lp[t->top_off + i]), "bytes",
                                                 piece_json(m->vb, rec_prev(j, k), id, true)));
        }
        json_array_append_new(content, json_pack("{s:o,s:o,s:o,s:o}", "token",
                                                 oai_json_text(j->text + start, t->end - start), "logprob", lp_json(t->lp),
                                                 "bytes", bytes_array(j->text + start, t->end - start), "top_logprobs",
                                                 top ? top : json_array()));
    }
    return json_pack("{s:o}", "content", content ? content : json_array());
}

/* completions logprobs: {tokens, token_logprobs, top_logprobs, text_offset} */
static json_t *legacy_logprobs(const oai_meta *m, const sched_job *j, int32_t k0, int32_t k1)
{
    json_t *toks = json_array(), *lps = json_array(), *tops = json_array(), *offs = json_array();
    for (int32_t k = k0; k < k1; k++) {
        const sched_tok *t = &j->toks[k];
        size_t start = k > 0 ? j->toks[k - 1].end : 0;
        json_array_append_new(toks, oai_json_text(j->text + start, t->end - start));
        json_array_append_new(lps, lp_json(t->lp));
        json_t *o = json_object();
        for (int32_t i = 0; o && i < j->gen.logprobs; i++) {
            int32_t id = j->top_id[t->top_off + i];
            json_t *pj = piece_json(m->vb, rec_prev(j, k), id, false);
            const char *key = pj ? json_string_value(pj) : "";
            if (!json_object_get(o, key)) /* two ids with the same text: the likelier one */
                json_object_set_new(o, key, lp_json(j->top_lp[t->top_off + i]));
            json_decref(pj);
        }
        json_array_append_new(tops, o);
        json_array_append_new(offs, json_integer((json_int_t)start));
    }
    return json_pack("{s:o,s:o,s:o,s:o}", "tokens", toks, "token_logprobs", lps, "top_logprobs", tops, "text_offset",
                     offs);
}

static json_t *usage_json(const sched_job *j, const sched_view *v)
{
    return json_pack("{s:i,s:i,s:i,s:{s:i}}", "prompt_tokens", (json_int_t)j->n_prompt, "completion_tokens",
                     (json_int_t)v->n_gen, "total_tokens", (json_int_t)(j->n_prompt + v->n_gen),
                     "prompt_tokens_details", "cached_tokens", (json_int_t)v->n_cached);
}

static char *dump_free(json_t *o)
{
    if (!o)
        return NULL;
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

static json_t *finish_json(int finish)
{
    const char *f = oai_finish_reason(finish);
    return f ? json_string(f) : json_null();
}

/* finish_reason of an answer with calls: "length" when the last call was
 * cut off, else "tool_calls". */
static const char *calls_finish(const tools_scan_res *sr, int finish)
{
    return finish == SCHED_LENGTH && !sr->calls[sr->n_calls - 1].done ? "length" : "tool_calls";
}

/* message.tool_calls of a whole answer: [{id, type, function: {name, arguments}}]. */
static json_t *calls_json(const oai_meta *m, const oai_req *r, const tools_scan_res *sr, const char *text)
{
    json_t *a = json_array();
    for (size_t k = 0; a && k < sr->n_calls; k++) {
        size_t al;
        char *args = tools_args_text(&sr->calls[k], text, false, &al);
        char id[32];
        tools_call_id(m->id, k, id);
        json_t *c = args ? json_pack("{s:s,s:s,s:{s:s,s:o}}", "id", id, "type", "function", "function", "name",
                                     r->tools.fns[sr->calls[k].fn].name, "arguments", oai_json_text(args, al))
                         : NULL;
        free(args);
        if (!c || json_array_append_new(a, c)) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

char *oai_response(const oai_meta *m, const oai_req *r, sched_job *j, const sched_view *v)
{
    bool lp = r->top_logprobs >= 0;
    json_t *choice;
    tools_scan_res sr = { 0 };
    if (m->kind == OAI_CHAT && tools_active(&r->tools) &&
        tools_scan(r->tools.fmt, &r->tools, j->text, v->committed, true, &sr))
        return NULL;
    if (sr.n_calls) {
        json_t *calls = calls_json(m, r, &sr, j->text);
        choice = calls ? json_pack("{s:i,s:{s:s,s:o,s:o},s:o,s:s}", "index", 0, "message", "role", "assistant",
                                   "content", sr.content_len ? oai_json_text(j->text, sr.content_len) : json_null(),
                                   "tool_calls", calls, "logprobs",
                                   lp ? chat_logprobs(m, j, 0, v->n_tok_committed) : json_null(), "finish_reason",
                                   calls_finish(&sr, v->finish))
                       : NULL;
    } else if (m->kind == OAI_CHAT)
        choice = json_pack("{s:i,s:{s:s,s:o},s:o,s:o}", "index", 0, "message", "role", "assistant", "content",
                           oai_json_text(j->text, v->committed), "logprobs",
                           lp ? chat_logprobs(m, j, 0, v->n_tok_committed) : json_null(), "finish_reason",
                           finish_json(v->finish));
    else
        choice = json_pack("{s:o,s:i,s:o,s:o}", "text", oai_json_text(j->text, v->committed), "index", 0, "logprobs",
                           lp ? legacy_logprobs(m, j, 0, v->n_tok_committed) : json_null(), "finish_reason",
                           finish_json(v->finish));
    tools_scan_free(&sr);
    return dump_free(json_pack("{s:s,s:s,s:I,s:s,s:s,s:[o],s:o}", "id", m->id, "object",
                               m->kind == OAI_CHAT ? "chat.completion" : "text_completion", "created",
                               (json_int_t)m->created, "model", m->model, "system_fingerprint", m->fingerprint,
                               "choices", choice, "usage", usage_json(j, v)));
}

static char *sse(json_t *o)
{
    char *s = dump_free(o);
    if (!s)
        return NULL;
    size_t n = strlen(s);
    char *out = malloc(n + 9);
    if (out) {
        memcpy(out, "data: ", 6);
        memcpy(out + 6, s, n);
        memcpy(out + 6 + n, "\n\n", 3);
    }
    free(s);
    return out;
}

char *oai_chunk(const oai_meta *m, const oai_req *r, sched_job *j, size_t from, size_t to, int32_t tok_from,
                int32_t tok_to, bool role, int finish)
{
    bool lp = r->top_logprobs >= 0 && tok_to > tok_from;
    json_t *choice;
    if (m->kind == OAI_CHAT) {
        json_t *delta = json_object();
        if (role)
            json_object_set_new(delta, "role", json_string("assistant"));
        if (role || to > from)
            json_object_set_new(delta, "content", oai_json_text(j->text + from, to - from));
        choice = json_pack("{s:i,s:o,s:o,s:o}", "index", 0, "delta", delta, "logprobs",
                           lp ? chat_logprobs(m, j, tok_from, tok_to) : json_null(), "finish_reason",
                           finish_json(finish));
    } else {
        choice = json_pack("{s:o,s:i,s:o,s:o}", "text", oai_json_text(j->text + from, to - from), "index", 0,
                           "logprobs", lp ? legacy_logprobs(m, j, tok_from, tok_to) : json_null(), "finish_reason",
                           finish_json(finish));
    }
    json_t *o = json_pack("{s:s,s:s,s:I,s:s,s:s,s:[o]}", "id", m->id, "object",
                          m->kind == OAI_CHAT ? "chat.completion.chunk" : "text_completion", "created",
                          (json_int_t)m->created, "model", m->model, "system_fingerprint", m->fingerprint, "choices",
                          choice);
    if (o && r->include_usage)
        json_object_set_new(o, "usage", json_null());
    return sse(o);
}

/* One chat chunk with delta (taken), logprobs records [tf, tt) and finish
 * (NULL: none), as an SSE event appended to *acc (*acc NULL: out of memory
 * from then on). */
static void tools_event(char **acc, size_t *acc_len, const oai_meta *m, const oai_req *r, sched_job *j, json_t *delta,
                        int32_t tf, int32_t tt, const char *finish)
{
    bool lp = r->top_logprobs >= 0 && tt > tf;
    json_t *o = json_pack("{s:s,s:s,s:I,s:s,s:s,s:[{s:i,s:o,s:o,s:o}]}", "id", m->id, "object",
                          "chat.completion.chunk", "created", (json_int_t)m->created, "model", m->model,
                          "system_fingerprint", m->fingerprint, "choices", "index", 0, "delta",
                          delta ? delta : json_object(), "logprobs", lp ? chat_logprobs(m, j, tf, tt) : json_null(),
                          "finish_reason", finish ? json_string(finish) : json_null());
    if (o && r->include_usage)
        json_object_set_new(o, "usage", json_null());
    char *ev = sse(o);
    if (!*acc || !ev) {
        free(ev);
        free(*acc);
        *acc = NULL;
        return;
    }
    size_t n = strlen(ev);
    char *nb = realloc(*acc, *acc_len + n + 1);
    if (!nb) {
        free(ev);
        free(*acc);
        *acc = NULL;
        return;
    }
    memcpy(nb + *acc_len, ev, n + 1);
    *acc = nb;
    *acc_len += n;
    free(ev);
}

char *oai_tools_chunks(const oai_meta *m, const oai_req *r, sched_job *j, const sched_view *v, oai_tstream *ts)
{
    bool final = v->finish != SCHED_RUNNING;
    tools_scan_res sr;
    if (tools_scan(r->tools.fmt, &r->tools, j->text, v->committed, final, &sr))
        return NULL;
    char *acc = calloc(1, 1);
    size_t acc_len = 0;
    int32_t tt = v->n_tok_committed;
#define EVENT(delta, fin)                                                                                             \
    do {                                                                                                              \
        tools_event(&acc, &acc_len, m, r, j, (delta), ts->tok_sent, tt, (fin));                                       \
        ts->tok_sent = tt;                                                                                            \
    } while (0)
    if (sr.content_len > ts->content_sent) {
        EVENT(json_pack("{s:o}", "content",
                        oai_json_text(j->text + ts->content_sent, sr.content_len - ts->content_sent)),
              NULL);
        ts->content_sent = sr.content_len;
    }
    for (size_t k = 0; k < sr.n_calls && acc; k++) {
        const char *name = r->tools.fns[sr.calls[k].fn].name;
        if (k >= ts->n_calls) {
            size_t *na = realloc(ts->args_sent, (k + 1) * sizeof *na);
            if (!na) {
                free(acc);
                acc = NULL;
                break;
            }
            ts->args_sent = na;
            ts->args_sent[k] = 0;
            ts->n_calls = k + 1;
            char id[32];
            tools_call_id(m->id, k, id);
            EVENT(json_pack("{s:[{s:i,s:s,s:s,s:{s:s,s:s}}]}", "tool_calls", "index", (int)k, "id", id, "type",
                            "function", "function", "name", name, "arguments", ""),
                  NULL);
        }
        size_t al;
        char *args = tools_args_text(&sr.calls[k], j->text, !final, &al);
        if (!args) {
            free(acc);
            acc = NULL;
            break;
        }
        if (al > ts->args_sent[k]) {
            EVENT(json_pack("{s:[{s:i,s:{s:o}}]}", "tool_calls", "index", (int)k, "function", "arguments",
                            oai_json_text(args + ts->args_sent[k], al - ts->args_sent[k])),
                  NULL);
            ts->args_sent[k] = al;
        }
        free(args);
    }
    if (final && acc && (v->finish == SCHED_STOP || v->finish == SCHED_LENGTH))
        EVENT(NULL, sr.n_calls ? calls_finish(&sr, v->finish) : ts->n_calls ? "tool_calls" : oai_finish_reason(v->finish));
#undef EVENT
    tools_scan_free(&sr);
    return acc;
}

void oai_tstream_free(oai_tstream *ts)
{
    free(ts->args_sent);
    memset(ts, 0, sizeof *ts);
}

char *oai_usage_chunk(const oai_meta *m, const sched_job *j, const sched_view *v)
{
    return sse(json_pack("{s:s,s:s,s:I,s:s,s:s,s:[],s:o}", "id", m->id, "object",
                         m->kind == OAI_CHAT ? "chat.completion.chunk" : "text_completion", "created",
                         (json_int_t)m->created, "model", m->model, "system_fingerprint", m->fingerprint, "choices",
                         "usage", usage_json(j, v)));
}
