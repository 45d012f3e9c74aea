/* openai: the OpenAI API's request and response JSON for chat completions
 * and (legacy) completions, with jansson.
 *
 * Parsing validates every field sov knows: a known field of the wrong type
 * or out of range is an error naming it (param); unknown fields are
 * ignored, as OpenAI-compatible servers do. Responses and stream chunks are
 * built in OpenAI's exact shapes from a job's published text. */
#ifndef SOV_OPENAI_H
#define SOV_OPENAI_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../tok/vocab.h"
#include "chat.h"
#include "sched.h"
#include "tools.h"

enum oai_kind { OAI_CHAT = 1, OAI_COMPLETION = 2 };

/* An API error: HTTP status, OpenAI error type, the offending parameter
 * (NULL if none), an error code (NULL if none) and a message. */
typedef struct oai_err {
    int status;
    const char *type;  /* "invalid_request_error", "authentication_error", ... (static) */
    char param[96];    /* "" = null */
    const char *code;  /* static or NULL */
    char msg[512];
} oai_err;

/* A parsed request. Strings and arrays are malloc'd and owned (oai_req_free). */
typedef struct oai_req {
    int kind;                 /* enum oai_kind */
    char *model;
    chat_msg *msgs;           /* chat: messages (role/content strings owned) */
    size_t n_msgs;
    char *prompt;             /* completions: prompt text, or NULL when given as ids */
    int32_t *prompt_ids;      /* completions: prompt as token ids */
    size_t n_prompt_ids;
    bool stream, include_usage;
    int64_t max_tokens;       /* -1: not given (generate until the context is full) */
    int32_t top_logprobs;     /* -1: no logprobs; else how many alternatives */
    sched_gen gen;            /* sampling, stops, biases (n_max set later) */
    bool seed_set;
    tools_req tools;          /* chat: tools, tool_choice, parallel_tool_calls, the history's tool parts */
} oai_req;

/* Sets e and returns -1 (for `return oai_fail(...)`). */
int oai_fail(oai_err *e, int status, const char *type, const char *param, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

/* Parses body[0..len) as a `kind` request; defaults come from base (the
 * server's sampling defaults; its seed is used when the request has none).
 * n_vocab bounds logit_bias and prompt ids. Returns 0, or -1 with *e set
 * (status 400) and nothing owned by *r. */
int oai_parse(const char *body, size_t len, int kind, const sample_params *base, int32_t n_vocab, oai_req *r,
              oai_err *e);

void oai_req_free(oai_req *r);

/* The prompt text of chat request r in template family tmpl (eos: the
 * vocab's EOS text): chat_render, or tools_render when the request has
 * tools or tool parts; with tool_choice "required" or a named function it
 * also puts the call grammar in r->gen.grammar. Returns 0 with *out
 * malloc'd, or -1 with *e set (400 naming the field, 500 out of memory). */
int oai_chat_prompt(oai_req *r, int tmpl, const char *eos, char **out, oai_err *e);

/* {"error":{"message","type","param","code"}} as a compact JSON string
 * (malloc'd; NULL if out of memory). */
char *oai_err_json(const oai_err *e);

/* What a response is about: identity fields shared by all chunks of one
 * request. */
typedef struct oai_meta {
    int kind;
    char id[48];               /* chatcmpl-... / cmpl-... */
    int64_t created;
    const char *model;
    const char *fingerprint;
    const vocab *vb;
} oai_meta;

/* Fills m->id with a fresh id for kind and m->created with the time. */
void oai_meta_init(oai_meta *m, int kind);

/* The whole (non-streamed) response for a finished job, as a compact JSON
 * string (malloc'd; NULL if out of memory). */
char *oai_response(const oai_meta *m, const oai_req *r, sched_job *j, const sched_view *v);

/* One stream chunk: the text j->text[from..to) and logprobs records
 * [tok_from, tok_to); role: put the assistant role in the delta (chat's
 * first chunk); finish: enum sched_finish to report, or SCHED_RUNNING for
 * none. Returns "data: {...}\n\n" (malloc'd; NULL if out of memory). */
char *oai_chunk(const oai_meta *m, const oai_req *r, sched_job *j, size_t from, size_t to, int32_t tok_from,
                int32_t tok_to, bool role, int finish);

/* A chat stream of a request with tools (tools_active): what has been sent. */
typedef struct oai_tstream {
    size_t content_sent;   /* bytes of content sent */
    size_t n_calls;        /* calls announced (index, id, name) */
    size_t *args_sent;     /* [n_calls]: bytes of each one's arguments sent */
    int32_t tok_sent;      /* logprobs records sent */
} oai_tstream;

/* The chunks that j's text up to v->committed adds to a stream with tools:
 * content deltas (text that may still turn out to be a call is held back),
 * for each new call a delta with its index, id, type, name and arguments
 * "", then its arguments in pieces; when v->finish is SCHED_STOP or
 * SCHED_LENGTH also the last chunk, finish_reason "tool_calls" when there
 * were calls. Returns the "data: ...\n\n" events ("" for none; malloc'd;
 * NULL if out of memory). */
char *oai_tools_chunks(const oai_meta *m, const oai_req *r, sched_job *j, const sched_view *v, oai_tstream *ts);
void oai_tstream_free(oai_tstream *ts);

/* The final usage chunk (empty choices), as "data: {...}\n\n". */
char *oai_usage_chunk(const oai_meta *m, const sched_job *j, const sched_view *v);

/* finish_reason string for a sched_finish ("stop", "length"; NULL for none). */
const char *oai_finish_reason(int finish);

/* jansson string of s[0..n) with invalid UTF-8 replaced by U+FFFD. */
json_t *oai_json_text(const char *s, size_t n);

#endif
