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
        if (strcmp(rs, "system") && strcmp(rs, "developer") && strcmp(rs, "user") && strcmp(rs, "assistant"))
            return BAD(e, pn, "'%s' is '%.40s'; supported roles are system, developer, user and assistant", pn, rs);
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
    memset(r, 0, sizeof *r);
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

char *oai_response(const oai_meta *m, const oai_req *r, sched_job *j, const sched_view *v)
{
    bool lp = r->top_logprobs >= 0;
    json_t *choice;
    if (m->kind == OAI_CHAT)
        choice = json_pack("{s:i,s:{s:s,s:o},s:o,s:o}", "index", 0, "message", "role", "assistant", "content",
                           oai_json_text(j->text, v->committed), "logprobs",
                           lp ? chat_logprobs(m, j, 0, v->n_tok_committed) : json_null(), "finish_reason",
                           finish_json(v->finish));
    else
        choice = json_pack("{s:o,s:i,s:o,s:o}", "text", oai_json_text(j->text, v->committed), "index", 0, "logprobs",
                           lp ? legacy_logprobs(m, j, 0, v->n_tok_committed) : json_null(), "finish_reason",
                           finish_json(v->finish));
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

char *oai_usage_chunk(const oai_meta *m, const sched_job *j, const sched_view *v)
{
    return sse(json_pack("{s:s,s:s,s:I,s:s,s:s,s:[],s:o}", "id", m->id, "object",
                         m->kind == OAI_CHAT ? "chat.completion.chunk" : "text_completion", "created",
                         (json_int_t)m->created, "model", m->model, "system_fingerprint", m->fingerprint, "choices",
                         "usage", usage_json(j, v)));
}
