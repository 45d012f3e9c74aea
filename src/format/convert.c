#include "convert.h"

#include "../base/err.h"
#include "../base/file.h"
#include "../base/fp16.h"
#include "safetensors.h"
#include "ttype.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* GGUF token types (llama.cpp numbering). */
enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_USER = 4, TT_UNUSED = 5, TT_BYTE = 6 };

/* general.file_type values (llama.cpp's LLAMA_FTYPE_*). */
enum { FTYPE_ALL_F32 = 0, FTYPE_MOSTLY_F16 = 1, FTYPE_MOSTLY_BF16 = 32 };

typedef struct hf_config {
    int64_t n_embd, n_layer, n_head, n_head_kv, n_ff, n_vocab, n_ctx, head_dim;
    double rms_eps, rope_theta, rope_scale; /* rope_scale 0: none */
    bool tied;
    int64_t bos, eos; /* -1: not given */
} hf_config;

/* One output tensor: rows x cols of the source, rows reordered for q/k. */
typedef struct conv_tensor {
    const st_tensor *src;
    int64_t rows, cols;
    int64_t head_dim; /* > 0: permute rows per head */
    uint32_t out_type;
    float *row;       /* scratch of cols floats, owned by the job */
    progress *prog;   /* bar moved per row (NULL: none) */
} conv_tensor;

/* Loads dir/name as JSON (jansson decode flags) into *out (caller
 * json_decref's). An absent file is SOV_ENOTFOUND if required, else success
 * with *out = NULL. */
static int load_json(const char *dir, const char *name, bool required, size_t flags, json_t **out)
{
    *out = NULL;
    char *p = file_path_join(dir, name);
    if (!p)
        return err_set(SOV_ENOMEM, "out of memory");
    FILE *fp = fopen(p, "rb");
    if (!fp) {
        int rc = required ? err_set(SOV_ENOTFOUND, "'%s' not found", p) : 0;
        free(p);
        return rc;
    }
    fclose(fp);
    json_error_t jerr;
    *out = json_load_file(p, flags, &jerr);
    int rc = *out ? 0 : err_set(SOV_EFORMAT, "%s: invalid JSON: %s (line %d)", p, jerr.text, jerr.line);
    free(p);
    return rc;
}

int64_t convert_qk_src_row(int64_t r, int64_t head_dim)
{
    int64_t h = r / head_dim, j = r % head_dim;
    return h * head_dim + (j & 1) * (head_dim / 2) + j / 2;
}

/* ---- config.json ---------------------------------------------------------- */

/* Integer key: *out = value; absent -> def (or error if def < 0 means required). */
static int cfg_int(const json_t *c, const char *key, int64_t def, bool required, int64_t *out)
{
    const json_t *j = json_object_get(c, key);
    if (!j || json_is_null(j)) {
        if (required)
            return err_set(SOV_ENOTFOUND, "config.json: missing \"%s\"", key);
        *out = def;
        return 0;
    }
    if (json_is_array(j) && json_array_size(j) > 0) /* eos_token_id may be a list */
        j = json_array_get(j, 0);
    if (!json_is_integer(j))
        return err_set(SOV_EFORMAT, "config.json: \"%s\" is not an integer", key);
    *out = (int64_t)json_integer_value(j);
    return 0;
}

static int cfg_num(const json_t *c, const char *key, double def, double *out)
{
    const json_t *j = json_object_get(c, key);
    if (!j || json_is_null(j)) {
        *out = def;
        return 0;
    }
    if (!json_is_number(j))
        return err_set(SOV_EFORMAT, "config.json: \"%s\" is not a number", key);
    *out = json_number_value(j);
    return 0;
}

static int read_config(const char *dir, hf_config *c)
{
    json_t *root = NULL;
    int rc = load_json(dir, "config.json", true, 0, &root);
    if (rc)
        return rc;
    memset(c, 0, sizeof *c);
    if (!json_is_object(root)) {
        rc = err_set(SOV_EFORMAT, "config.json is not a JSON object");
        goto out;
    }
    const char *mt = json_string_value(json_object_get(root, "model_type"));
    bool ok = mt && (!strcmp(mt, "llama") || !strcmp(mt, "mistral"));
    const json_t *archs = json_object_get(root, "architectures");
    for (size_t i = 0; !ok && json_is_array(archs) && i < json_array_size(archs); i++) {
        const char *a = json_string_value(json_array_get(archs, i));
        ok = a && (!strcmp(a, "LlamaForCausalLM") || !strcmp(a, "MistralForCausalLM"));
    }
    if (!ok) {
        rc = err_set(SOV_EUNSUPPORTED, "config.json: model_type '%s' is not supported (llama only)", mt ? mt : "?");
        goto out;
    }
    if ((rc = cfg_int(root, "hidden_size", 0, true, &c->n_embd)) ||
        (rc = cfg_int(root, "num_hidden_layers", 0, true, &c->n_layer)) ||
        (rc = cfg_int(root, "num_attention_heads", 0, true, &c->n_head)) ||
        (rc = cfg_int(root, "num_key_value_heads", c->n_head, false, &c->n_head_kv)) ||
        (rc = cfg_int(root, "intermediate_size", 0, true, &c->n_ff)) ||
        (rc = cfg_int(root, "vocab_size", 0, true, &c->n_vocab)) ||
        (rc = cfg_int(root, "max_position_embeddings", 2048, false, &c->n_ctx)) ||
        (rc = cfg_int(root, "bos_token_id", -1, false, &c->bos)) ||
        (rc = cfg_int(root, "eos_token_id", -1, false, &c->eos)) ||
        (rc = cfg_num(root, "rms_norm_eps", 1e-6, &c->rms_eps)) ||
        (rc = cfg_num(root, "rope_theta", 10000.0, &c->rope_theta)))
        goto out;
    if (c->n_embd <= 0 || c->n_layer <= 0 || c->n_head <= 0 || c->n_head_kv <= 0 || c->n_ff <= 0 ||
        c->n_vocab <= 0 || c->n_ctx <= 0 || c->n_embd > INT32_MAX || c->n_vocab > INT32_MAX ||
        c->n_ff > INT32_MAX || c->n_layer > 100000 || c->n_ctx > INT32_MAX) {
        rc = err_set(SOV_EFORMAT, "config.json: sizes out of range (hidden %" PRId64 ", layers %" PRId64 ", heads %" PRId64
                     "/%" PRId64 ", ffn %" PRId64 ", vocab %" PRId64 ", ctx %" PRId64 ")", c->n_embd, c->n_layer,
                     c->n_head, c->n_head_kv, c->n_ff, c->n_vocab, c->n_ctx);
        goto out;
    }
    if ((rc = cfg_int(root, "head_dim", c->n_embd / c->n_head, false, &c->head_dim)))
        goto out;
    if (c->head_dim <= 0 || c->head_dim % 2 || c->n_head % c->n_head_kv || c->head_dim > INT32_MAX / c->n_head) {
        rc = err_set(SOV_EFORMAT, "config.json: head_dim %" PRId64 " / heads %" PRId64 " / kv heads %" PRId64
                     " are inconsistent", c->head_dim, c->n_head, c->n_head_kv);
        goto out;
    }
    const json_t *tie = json_object_get(root, "tie_word_embeddings");
    if (tie && !json_is_boolean(tie) && !json_is_null(tie)) {
        rc = err_set(SOV_EFORMAT, "config.json: \"tie_word_embeddings\" is not a boolean");
        goto out;
    }
    c->tied = json_is_true(tie);
    const json_t *rs = json_object_get(root, "rope_scaling");
    if (rs && !json_is_null(rs)) {
        const char *ty = json_string_value(json_object_get(rs, "rope_type"));
        if (!ty)
            ty = json_string_value(json_object_get(rs, "type"));
        const json_t *fac = json_object_get(rs, "factor");
        if (!ty || strcmp(ty, "linear") != 0) {
            rc = err_set(SOV_EUNSUPPORTED, "config.json: rope_scaling type '%s' is not supported (linear only)",
                         ty ? ty : "?");
            goto out;
        }
        if (!json_is_number(fac) || json_number_value(fac) <= 0) {
            rc = err_set(SOV_EFORMAT, "config.json: rope_scaling.factor is missing or not positive");
            goto out;
        }
        c->rope_scale = json_number_value(fac);
    }
    if (!(c->rms_eps > 0) || !(c->rope_theta > 0)) {
        rc = err_set(SOV_EFORMAT, "config.json: rms_norm_eps and rope_theta must be positive");
        goto out;
    }
out:
    json_decref(root);
    return rc;
}

/* ---- tokenizer ------------------------------------------------------------ */

/* Content string of a tokenizer_config / special_tokens_map entry, which is
 * either a string or an object with "content". */
static const char *tok_content(const json_t *j)
{
    if (json_is_string(j))
        return json_string_value(j);
    if (json_is_object(j))
        return json_string_value(json_object_get(j, "content"));
    return NULL;
}

static int64_t find_token(const char *const *toks, int64_t n, const char *s)
{
    if (!s)
        return -1;
    for (int64_t i = 0; i < n; i++)
        if (toks[i] && !strcmp(toks[i], s))
            return i;
    return -1;
}

/* True if j (a pre_tokenizer / decoder) is of type `type` or a Sequence holding one. */
static const json_t *find_component(const json_t *j, const char *type)
{
    if (!json_is_object(j))
        return NULL;
    const char *t = json_string_value(json_object_get(j, "type"));
    if (t && !strcmp(t, type))
        return j;
    if (t && !strcmp(t, "Sequence")) {
        const json_t *arr = json_object_get(j, "pretokenizers");
        if (!arr)
            arr = json_object_get(j, "decoders");
        if (!arr)
            arr = json_object_get(j, "normalizers");
        for (size_t i = 0; json_is_array(arr) && i < json_array_size(arr); i++) {
            const json_t *r = find_component(json_array_get(arr, i), type);
            if (r)
                return r;
        }
    }
    return NULL;
}

static bool is_byte_token(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    return strlen(s) == 6 && !strncmp(s, "<0x", 3) && s[5] == '>' && strchr(hex, s[3]) && strchr(hex, s[4]) &&
           s[3] && s[4];
}

/* Split regexes of known byte-level pre-tokenizers (as stored in their
 * tokenizer.json): Llama 3 and Qwen2 differ only in how digits group. */
#define RE_HEAD "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
#define RE_TAIL "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
static const struct {
    const char *regex, *pre;
} known_splits[] = {
    {RE_HEAD "\\p{N}{1,3}" RE_TAIL, "llama-bpe"},
    {RE_HEAD "\\p{N}" RE_TAIL, "qwen2"},
};

/* tokenizer.ggml.pre name for a byte-level pre_tokenizer. */
static const char *bpe_pre_name(const json_t *pre)
{
    const char *t = json_string_value(json_object_get(pre, "type"));
    if (t && !strcmp(t, "ByteLevel")) {
        const json_t *ur = json_object_get(pre, "use_regex");
        return (!ur || json_is_true(ur)) ? "gpt-2" : "default";
    }
    const json_t *split = find_component(pre, "Split");
    if (split) {
        const char *re = json_string_value(json_object_get(json_object_get(split, "pattern"), "Regex"));
        for (size_t i = 0; re && i < sizeof known_splits / sizeof known_splits[0]; i++)
            if (!strcmp(re, known_splits[i].regex))
                return known_splits[i].pre;
    }
    return "default";
}

/* Splits a merge ("a b" string or ["a", "b"] pair) into *a / *b (malloc'd,
 * NUL-terminated). */
static int merge_parts(const json_t *m, size_t rank, char **a, char **b)
{
    *a = *b = NULL;
    if (json_is_string(m)) {
        const char *s = json_string_value(m);
        const char *sp = strchr(s, ' ');
        if (!sp || sp == s || !sp[1])
            return err_set(SOV_EFORMAT, "tokenizer.json: merge #%zu '%s' is not 'left right'", rank, s);
        *a = strndup(s, (size_t)(sp - s));
        *b = strdup(sp + 1);
    } else if (json_is_array(m) && json_array_size(m) == 2 && json_is_string(json_array_get(m, 0)) &&
               json_is_string(json_array_get(m, 1))) {
        *a = strdup(json_string_value(json_array_get(m, 0)));
        *b = strdup(json_string_value(json_array_get(m, 1)));
    } else {
        return err_set(SOV_EFORMAT, "tokenizer.json: merge #%zu is neither a string nor a pair of strings", rank);
    }
    if (!*a || !*b) {
        free(*a);
        free(*b);
        *a = *b = NULL;
        return err_set(SOV_ENOMEM, "out of memory");
    }
    return 0;
}

int convert_add_tokenizer(gguf_writer *w, const char *hf_dir, int64_t n_vocab, int64_t bos_id, int64_t eos_id,
                          bool quiet)
{
    json_t *tj = NULL, *tc = NULL, *sm = NULL;
    const char **toks = NULL;
    char **owned = NULL; /* padding token names and joined merges */
    size_t n_owned = 0;
    int32_t *types = NULL;
    float *scores = NULL;
    const char **merges = NULL;
    char *ma = NULL, *mb = NULL;
    int rc;

    if ((rc = load_json(hf_dir, "tokenizer.json", false, 0, &tj)))
        goto fail;
    if (!tj) {
        rc = err_set(SOV_EUNSUPPORTED, "%s has no tokenizer.json (a SentencePiece tokenizer.model alone is not supported)",
                     hf_dir);
        goto fail;
    }
    /* only strings and booleans are read from these; integers such as
     * model_max_length = 1e30 overflow json_int_t, so read numbers as reals */
    if ((rc = load_json(hf_dir, "tokenizer_config.json", false, JSON_DECODE_INT_AS_REAL, &tc)) ||
        (rc = load_json(hf_dir, "special_tokens_map.json", false, JSON_DECODE_INT_AS_REAL, &sm)))
        goto fail;

    const json_t *model = json_object_get(tj, "model");
    const char *mtype = json_string_value(json_object_get(model, "type"));
    const json_t *vocab = json_object_get(model, "vocab");
    const json_t *jmerges = json_object_get(model, "merges");
    if (!mtype || strcmp(mtype, "BPE") != 0) {
        rc = err_set(SOV_EUNSUPPORTED, "tokenizer.json: model type '%s' is not supported (BPE only)",
                     mtype ? mtype : "?");
        goto fail;
    }
    if (!json_is_object(vocab) || !json_is_array(jmerges)) {
        rc = err_set(SOV_EFORMAT, "tokenizer.json: BPE model without a \"vocab\" object and \"merges\" array");
        goto fail;
    }
    const json_t *pre = json_object_get(tj, "pre_tokenizer");
    const json_t *norm = json_object_get(tj, "normalizer");
    const json_t *dec = json_object_get(tj, "decoder");
    bool byte_level = find_component(pre, "ByteLevel") || find_component(dec, "ByteLevel");
    const json_t *meta_pre = find_component(pre, "Metaspace");
    bool spm_like = !byte_level && (json_is_true(json_object_get(model, "byte_fallback")) || meta_pre ||
                                    find_component(norm, "Prepend") || find_component(dec, "ByteFallback"));
    if (!byte_level && !spm_like) {
        rc = err_set(SOV_EUNSUPPORTED, "tokenizer.json: BPE layout not recognized (neither byte-level nor "
                     "SentencePiece-like with byte_fallback / U+2581 word marker)");
        goto fail;
    }

    /* token table: vocab + added_tokens */
    int64_t n_tok = 0;
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)vocab, key, val) {
        if (!json_is_integer(val) || json_integer_value(val) < 0 || json_integer_value(val) >= INT32_MAX) {
            rc = err_set(SOV_EFORMAT, "tokenizer.json: vocab entry '%s' has no valid id", key);
            goto fail;
        }
        if (json_integer_value(val) + 1 > n_tok)
            n_tok = json_integer_value(val) + 1;
    }
    const json_t *added = json_object_get(tj, "added_tokens");
    for (size_t i = 0; json_is_array(added) && i < json_array_size(added); i++) {
        const json_t *a = json_array_get(added, i);
        const json_t *id = json_object_get(a, "id");
        if (!json_is_integer(id) || json_integer_value(id) < 0 || json_integer_value(id) >= INT32_MAX ||
            !json_is_string(json_object_get(a, "content"))) {
            rc = err_set(SOV_EFORMAT, "tokenizer.json: added_tokens[%zu] has no valid id/content", i);
            goto fail;
        }
        if (json_integer_value(id) + 1 > n_tok)
            n_tok = json_integer_value(id) + 1;
    }
    if (n_tok == 0 || n_tok > n_vocab) {
        rc = err_set(SOV_EFORMAT, "tokenizer.json has %" PRId64 " tokens but the model's vocab_size is %" PRId64,
                     n_tok, n_vocab);
        goto fail;
    }
    toks = calloc((size_t)n_vocab, sizeof *toks);
    types = calloc((size_t)n_vocab, sizeof *types);
    scores = calloc((size_t)n_vocab, sizeof *scores);
    owned = calloc((size_t)(n_vocab - n_tok) + json_array_size(jmerges) + 1, sizeof *owned);
    if (!toks || !types || !scores || !owned) {
        rc = err_set(SOV_ENOMEM, "out of memory");
        goto fail;
    }
    json_object_foreach((json_t *)vocab, key, val) {
        int64_t id = json_integer_value(val);
        if (toks[id]) {
            rc = err_set(SOV_EFORMAT, "tokenizer.json: id %" PRId64 " used by '%s' and '%s'", id, toks[id], key);
            goto fail;
        }
        toks[id] = key;
        types[id] = TT_NORMAL;
    }
    for (size_t i = 0; json_is_array(added) && i < json_array_size(added); i++) {
        const json_t *a = json_array_get(added, i);
        int64_t id = json_integer_value(json_object_get(a, "id"));
        const char *content = json_string_value(json_object_get(a, "content"));
        if (toks[id] && strcmp(toks[id], content) != 0 && !quiet)
            fprintf(stderr, "convert: warning: added token %" PRId64 " '%s' replaces vocab entry '%s'\n", id, content,
                    toks[id]);
        toks[id] = content;
        types[id] = json_is_true(json_object_get(a, "special")) ? TT_CONTROL : TT_USER;
    }
    for (int64_t i = 0; i < n_tok; i++)
        if (!toks[i]) {
            rc = err_set(SOV_EFORMAT, "tokenizer.json: no token has id %" PRId64 " (ids must be 0..%" PRId64 ")", i,
                         n_tok - 1);
            goto fail;
        }
    for (int64_t i = n_tok; i < n_vocab; i++) {
        char buf[32];
        snprintf(buf, sizeof buf, "[PAD%" PRId64 "]", i);
        if (!(owned[n_owned++] = strdup(buf))) {
            rc = err_set(SOV_ENOMEM, "out of memory");
            goto fail;
        }
        toks[i] = owned[n_owned - 1];
        types[i] = TT_UNUSED;
    }

    const char *unk = json_string_value(json_object_get(model, "unk_token"));
    int64_t unk_id = find_token(toks, n_tok, unk);
    if (unk_id >= 0)
        types[unk_id] = TT_UNKNOWN;

    size_t n_merges = json_array_size(jmerges);
    if (spm_like) {
        /* scores: a token created by merge r gets -r, so the highest-scoring
         * pair is the earliest merge; tokens no merge creates get less. */
        for (int64_t i = 0; i < n_vocab; i++)
            scores[i] = types[i] == TT_NORMAL ? -(float)(n_merges + 1) : 0.0f;
        for (size_t r = n_merges; r-- > 0;) { /* backwards: the earliest rank wins */
            if ((rc = merge_parts(json_array_get(jmerges, r), r, &ma, &mb)))
                goto fail;
            size_t la = strlen(ma), lb = strlen(mb);
            char *joined = malloc(la + lb + 1);
            if (!joined) {
                rc = err_set(SOV_ENOMEM, "out of memory");
                goto fail;
            }
            memcpy(joined, ma, la);
            memcpy(joined + la, mb, lb + 1);
            const json_t *jid = json_object_get(vocab, joined);
            free(joined);
            free(ma);
            free(mb);
            ma = mb = NULL;
            if (!jid) {
                rc = err_set(SOV_EFORMAT, "tokenizer.json: merge #%zu makes a token that is not in the vocab", r);
                goto fail;
            }
            int64_t id = json_integer_value(jid);
            if (types[id] == TT_NORMAL)
                scores[id] = -(float)r;
        }
        if (json_is_true(json_object_get(model, "byte_fallback")))
            for (int64_t i = 0; i < n_tok; i++)
                if (types[i] == TT_NORMAL && is_byte_token(toks[i])) {
                    types[i] = TT_BYTE;
                    scores[i] = 0.0f;
                }
        bool space_prefix = true;
        if (meta_pre) {
            const char *scheme = json_string_value(json_object_get(meta_pre, "prepend_scheme"));
            const json_t *app = json_object_get(meta_pre, "add_prefix_space");
            if ((scheme && !strcmp(scheme, "never")) || json_is_false(app))
                space_prefix = false;
        } else if (!find_component(norm, "Prepend")) {
            space_prefix = false;
        }
        if ((rc = gguf_w_set_str(w, "tokenizer.ggml.model", "llama")) ||
            (rc = gguf_w_set_arr_str(w, "tokenizer.ggml.tokens", toks, NULL, (uint64_t)n_vocab)) ||
            (rc = gguf_w_set_arr(w, "tokenizer.ggml.scores", GGUF_FLOAT32, scores, (uint64_t)n_vocab)) ||
            (rc = gguf_w_set_arr(w, "tokenizer.ggml.token_type", GGUF_INT32, types, (uint64_t)n_vocab)) ||
            (rc = gguf_w_set_bool(w, "tokenizer.ggml.add_space_prefix", space_prefix)))
            goto fail;
    } else {
        merges = calloc(n_merges + 1, sizeof *merges);
        if (!merges) {
            rc = err_set(SOV_ENOMEM, "out of memory");
            goto fail;
        }
        for (size_t r = 0; r < n_merges; r++) {
            const json_t *m = json_array_get(jmerges, r);
            if (json_is_string(m)) {
                if ((rc = merge_parts(m, r, &ma, &mb)))
                    goto fail; /* validates the form only */
                free(ma);
                free(mb);
                ma = mb = NULL;
                merges[r] = json_string_value(m);
                continue;
            }
            if ((rc = merge_parts(m, r, &ma, &mb)))
                goto fail;
            size_t la = strlen(ma), lb = strlen(mb);
            char *joined = malloc(la + lb + 2);
            if (!joined) {
                rc = err_set(SOV_ENOMEM, "out of memory");
                goto fail;
            }
            memcpy(joined, ma, la);
            joined[la] = ' ';
            memcpy(joined + la + 1, mb, lb + 1);
            free(ma);
            free(mb);
            ma = mb = NULL;
            owned[n_owned++] = joined;
            merges[r] = joined;
        }
        const char *pre_name = bpe_pre_name(pre);
        if (!quiet && !strcmp(pre_name, "default"))
            fprintf(stderr, "convert: warning: byte-level pre-tokenizer not recognized, writing "
                    "tokenizer.ggml.pre = \"default\"\n");
        if ((rc = gguf_w_set_str(w, "tokenizer.ggml.model", "gpt2")) ||
            (rc = gguf_w_set_str(w, "tokenizer.ggml.pre", pre_name)) ||
            (rc = gguf_w_set_arr_str(w, "tokenizer.ggml.tokens", toks, NULL, (uint64_t)n_vocab)) ||
            (rc = gguf_w_set_arr(w, "tokenizer.ggml.token_type", GGUF_INT32, types, (uint64_t)n_vocab)) ||
            (rc = gguf_w_set_arr_str(w, "tokenizer.ggml.merges", merges, NULL, n_merges)))
            goto fail;
    }

    /* special ids: config.json first, then tokenizer_config / special_tokens_map */
    if (bos_id < 0)
        bos_id = find_token(toks, n_tok, tok_content(json_object_get(tc, "bos_token")));
    if (bos_id < 0)
        bos_id = find_token(toks, n_tok, tok_content(json_object_get(sm, "bos_token")));
    if (eos_id < 0)
        eos_id = find_token(toks, n_tok, tok_content(json_object_get(tc, "eos_token")));
    if (eos_id < 0)
        eos_id = find_token(toks, n_tok, tok_content(json_object_get(sm, "eos_token")));
    int64_t pad_id = find_token(toks, n_tok, tok_content(json_object_get(tc, "pad_token")));
    if (pad_id < 0)
        pad_id = find_token(toks, n_tok, tok_content(json_object_get(sm, "pad_token")));
    if (bos_id >= n_vocab || eos_id >= n_vocab) {
        rc = err_set(SOV_EFORMAT, "bos/eos id %" PRId64 "/%" PRId64 " outside the %" PRId64 "-token vocab", bos_id,
                     eos_id, n_vocab);
        goto fail;
    }
    if ((bos_id >= 0 && (rc = gguf_w_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)bos_id))) ||
        (eos_id >= 0 && (rc = gguf_w_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)eos_id))) ||
        (unk_id >= 0 && (rc = gguf_w_set_u32(w, "tokenizer.ggml.unknown_token_id", (uint32_t)unk_id))) ||
        (pad_id >= 0 && (rc = gguf_w_set_u32(w, "tokenizer.ggml.padding_token_id", (uint32_t)pad_id))))
        goto fail;
    const json_t *ab = json_object_get(tc, "add_bos_token");
    const json_t *ae = json_object_get(tc, "add_eos_token");
    bool add_bos = json_is_boolean(ab) ? json_is_true(ab) : spm_like;
    bool add_eos = json_is_boolean(ae) ? json_is_true(ae) : false;
    if ((rc = gguf_w_set_bool(w, "tokenizer.ggml.add_bos_token", add_bos)) ||
        (rc = gguf_w_set_bool(w, "tokenizer.ggml.add_eos_token", add_eos)))
        goto fail;
    if (!quiet)
        fprintf(stderr, "convert: tokenizer %s, %" PRId64 " tokens (%" PRId64 " padding), %zu merges, bos %" PRId64
                ", eos %" PRId64 ", add_bos %s\n", spm_like ? "llama (SentencePiece-like BPE)" : "gpt2 (byte-level BPE)",
                n_vocab, n_vocab - n_tok, n_merges, bos_id, eos_id, add_bos ? "true" : "false");
    rc = 0;
fail:
    free(ma);
    free(mb);
    for (size_t i = 0; owned && i < n_owned; i++)
        free(owned[i]);
    free(owned);
    free(merges);
    free(toks);
    free(types);
    free(scores);
    json_decref(tj);
    json_decref(tc);
    json_decref(sm);
    return rc;
}

/* ---- tensors -------------------------------------------------------------- */

static int fill_tensor(void *ctx, void *dst, uint64_t nbytes)
{
    conv_tensor *c = ctx;
    size_t es = c->out_type == SOV_F32 ? 4 : 2;
    if (nbytes != (uint64_t)(c->rows * c->cols) * es)
        return err_set(SOV_EINVAL, "tensor '%s': size mismatch", c->src->name);
    uint8_t *out = dst;
    for (int64_t r = 0; r < c->rows; r++) {
        int64_t sr = c->head_dim > 0 ? convert_qk_src_row(r, c->head_dim) : r;
        int rc = st_read_f32(c->src, sr * c->cols, c->cols, c->row);
        if (rc)
            return rc;
        uint8_t *o = out + (size_t)(r * c->cols) * es;
        if (c->out_type == SOV_F32) {
            memcpy(o, c->row, (size_t)c->cols * 4);
        } else {
            for (int64_t i = 0; i < c->cols; i++) {
                uint16_t h = c->out_type == SOV_F16 ? f32_to_fp16(c->row[i]) : f32_to_bf16(c->row[i]);
                memcpy(o + 2 * i, &h, 2);
            }
        }
        progress_add(c->prog, (uint64_t)c->cols * es);
    }
    return 0;
}

typedef struct conv_job {
    st_file *st;
    gguf_writer *w;
    conv_tensor *ct;
    size_t n_ct, cap_ct;
    const char **used; /* source names consumed */
    size_t n_used;
    bool quiet;
    progress *prog;
    uint64_t bytes;    /* of all tensors */
} conv_job;

/* Adds GGUF tensor gname from HF tensor hname, which must have the PyTorch
 * shape [rows, cols] (cols == 0: 1-D [rows]). head_dim > 0 permutes rows. */
static int add_conv(conv_job *j, const char *gname, const char *hname, int64_t rows, int64_t cols, int64_t head_dim,
                    uint32_t out_type)
{
    const st_tensor *t = st_find(j->st, hname);
    if (!t)
        return err_set(SOV_ENOTFOUND, "tensor '%s' not found in the checkpoint", hname);
    bool shape_ok = cols ? (t->n_dims == 2 && t->shape[0] == rows && t->shape[1] == cols)
                         : (t->n_dims == 1 && t->shape[0] == rows);
    if (!shape_ok) {
        char got[160] = "";
        for (int d = 0; d < t->n_dims && strlen(got) < 120; d++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%" PRId64, d ? ", " : "", t->shape[d]);
        if (cols)
            return err_set(SOV_EFORMAT, "tensor '%s' has shape [%s], config.json implies [%" PRId64 ", %" PRId64 "]",
                           hname, got, rows, cols);
        return err_set(SOV_EFORMAT, "tensor '%s' has shape [%s], config.json implies [%" PRId64 "]", hname, got, rows);
    }
    if (t->dtype != ST_F32 && t->dtype != ST_F16 && t->dtype != ST_BF16 && t->dtype != ST_F64)
        return err_set(SOV_EUNSUPPORTED, "tensor '%s' has dtype %s (F32/F16/BF16/F64 only)", hname,
                       st_dtype_name(t->dtype));
    if (!cols)
        out_type = SOV_F32;
    if (j->n_ct == j->cap_ct)
        return err_set(SOV_EINVAL, "internal: conversion table full");
    conv_tensor *c = &j->ct[j->n_ct];
    c->src = t;
    c->rows = rows;
    c->cols = cols ? cols : rows;
    if (!cols)
        c->rows = 1;
    c->head_dim = head_dim;
    c->out_type = out_type;
    c->prog = j->prog;
    c->row = malloc((size_t)c->cols * sizeof(float));
    if (!c->row)
        return err_set(SOV_ENOMEM, "out of memory");
    j->n_ct++;
    j->used[j->n_used++] = t->alias_of ? t->alias_of : t->name;
    j->used[j->n_used++] = t->name;
    int64_t ne[2] = {c->cols, c->rows};
    uint64_t nbytes = (uint64_t)(c->rows * c->cols) * (out_type == SOV_F32 ? 4 : 2);
    int rc = gguf_w_add_tensor_fn(j->w, gname, out_type, cols ? 2 : 1, ne, nbytes, fill_tensor, c);
    if (rc)
        return rc;
    j->bytes += nbytes;
    if (!j->quiet)
        fprintf(stderr, "convert: %-28s <- %-44s %s %s%s\n", gname, hname, st_dtype_name(t->dtype), ttype_name(out_type),
                head_dim ? " (q/k rows permuted)" : "");
    return 0;
}

static bool was_used(const conv_job *j, const char *name)
{
    for (size_t i = 0; i < j->n_used; i++)
        if (!strcmp(j->used[i], name))
            return true;
    return false;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

static int add_metadata(gguf_writer *w, const hf_config *c, const char *hf_dir, uint32_t outtype)
{
    const char *name = strrchr(hf_dir, '/');
    name = name && name[1] ? name + 1 : hf_dir;
    int ftype = outtype == SOV_F32 ? FTYPE_ALL_F32 : outtype == SOV_F16 ? FTYPE_MOSTLY_F16 : FTYPE_MOSTLY_BF16;
    int rc;
    if ((rc = gguf_w_set_str(w, "general.architecture", "llama")) ||
        (rc = gguf_w_set_str(w, "general.name", name)) ||
        (rc = gguf_w_set_u32(w, "general.file_type", (uint32_t)ftype)) ||
        (rc = gguf_w_set_u32(w, "llama.vocab_size", (uint32_t)c->n_vocab)) ||
        (rc = gguf_w_set_u32(w, "llama.context_length", (uint32_t)c->n_ctx)) ||
        (rc = gguf_w_set_u32(w, "llama.embedding_length", (uint32_t)c->n_embd)) ||
        (rc = gguf_w_set_u32(w, "llama.block_count", (uint32_t)c->n_layer)) ||
        (rc = gguf_w_set_u32(w, "llama.feed_forward_length", (uint32_t)c->n_ff)) ||
        (rc = gguf_w_set_u32(w, "llama.attention.head_count", (uint32_t)c->n_head)) ||
        (rc = gguf_w_set_u32(w, "llama.attention.head_count_kv", (uint32_t)c->n_head_kv)) ||
        (rc = gguf_w_set_f32(w, "llama.attention.layer_norm_rms_epsilon", (float)c->rms_eps)) ||
        (rc = gguf_w_set_f32(w, "llama.rope.freq_base", (float)c->rope_theta)) ||
        (rc = gguf_w_set_u32(w, "llama.rope.dimension_count", (uint32_t)c->head_dim)))
        return rc;
    if (c->head_dim * c->n_head != c->n_embd &&
        ((rc = gguf_w_set_u32(w, "llama.attention.key_length", (uint32_t)c->head_dim)) ||
         (rc = gguf_w_set_u32(w, "llama.attention.value_length", (uint32_t)c->head_dim))))
        return rc;
    if (c->rope_scale > 0 &&
        ((rc = gguf_w_set_str(w, "llama.rope.scaling.type", "linear")) ||
         (rc = gguf_w_set_f32(w, "llama.rope.scaling.factor", (float)c->rope_scale))))
        return rc;
    return 0;
}

int convert_hf_llama(const char *hf_dir, const char *out_path, const convert_opts *opts)
{
    hf_config c;
    conv_job j = {0};
    int rc;
    uint32_t outtype = opts ? opts->outtype : SOV_F16;
    j.quiet = opts && opts->quiet;
    j.prog = opts ? opts->prog : NULL;
    if (outtype != SOV_F32 && outtype != SOV_F16 && outtype != SOV_BF16)
        return err_set(SOV_EINVAL, "output type %s is not supported (f32, f16 or bf16)", ttype_name(outtype));
    if ((rc = read_config(hf_dir, &c)))
        return rc;
    if (!j.quiet)
        fprintf(stderr, "convert: llama, %" PRId64 " layers, hidden %" PRId64 ", heads %" PRId64 "/%" PRId64
                ", head_dim %" PRId64 ", ffn %" PRId64 ", vocab %" PRId64 ", ctx %" PRId64 ", rms_eps %g, rope_theta %g%s\n",
                c.n_layer, c.n_embd, c.n_head, c.n_head_kv, c.head_dim, c.n_ff, c.n_vocab, c.n_ctx, c.rms_eps,
                c.rope_theta, c.tied ? ", tied embeddings" : "");
    if ((rc = st_open_dir(&j.st, hf_dir)) || (rc = gguf_writer_new(&j.w)))
        goto fail;
    j.cap_ct = 3 + 9 * (size_t)c.n_layer;
    j.ct = calloc(j.cap_ct, sizeof *j.ct);
    j.used = calloc(2 * j.cap_ct, sizeof *j.used);
    if (!j.ct || !j.used) {
        rc = err_set(SOV_ENOMEM, "out of memory");
        goto fail;
    }
    if ((rc = add_metadata(j.w, &c, hf_dir, outtype)) ||
        (rc = convert_add_tokenizer(j.w, hf_dir, c.n_vocab, c.bos, c.eos, j.quiet)))
        goto fail;

    const int64_t E = c.n_embd, QD = c.n_head * c.head_dim, KD = c.n_head_kv * c.head_dim;
    const char *embd = "model.embed_tokens.weight";
    if (!st_find(j.st, embd) && c.tied && st_find(j.st, "lm_head.weight"))
        embd = "lm_head.weight";
    if ((rc = add_conv(&j, "token_embd.weight", embd, c.n_vocab, E, 0, outtype)))
        goto fail;
    for (int64_t l = 0; l < c.n_layer; l++) {
        static const struct {
            const char *g, *h;
            int kind; /* 0 norm, 1 q, 2 k, 3 v, 4 o, 5 gate, 6 up, 7 down */
        } map[] = {
            {"attn_norm", "input_layernorm", 0}, {"attn_q", "self_attn.q_proj", 1},
            {"attn_k", "self_attn.k_proj", 2},   {"attn_v", "self_attn.v_proj", 3},
            {"attn_output", "self_attn.o_proj", 4}, {"ffn_norm", "post_attention_layernorm", 0},
            {"ffn_gate", "mlp.gate_proj", 5},    {"ffn_up", "mlp.up_proj", 6},
            {"ffn_down", "mlp.down_proj", 7},
        };
        for (size_t k = 0; k < sizeof map / sizeof map[0]; k++) {
            char g[96], h[128];
            snprintf(g, sizeof g, "blk.%" PRId64 ".%s.weight", l, map[k].g);
            snprintf(h, sizeof h, "model.layers.%" PRId64 ".%s.weight", l, map[k].h);
            int64_t rows = 0, cols = 0, hd = 0;
            switch (map[k].kind) {
            case 0: rows = E; break;
            case 1: rows = QD; cols = E; hd = c.head_dim; break;
            case 2: rows = KD; cols = E; hd = c.head_dim; break;
            case 3: rows = KD; cols = E; break;
            case 4: rows = E; cols = QD; break;
            case 5: case 6: rows = c.n_ff; cols = E; break;
            default: rows = E; cols = c.n_ff; break;
            }
            if ((rc = add_conv(&j, g, h, rows, cols, hd, outtype)))
                goto fail;
        }
    }
    if ((rc = add_conv(&j, "output_norm.weight", "model.norm.weight", E, 0, 0, outtype)))
        goto fail;
    if (!c.tied && (rc = add_conv(&j, "output.weight", "lm_head.weight", c.n_vocab, E, 0, outtype)))
        goto fail;

    for (size_t i = 0; i < j.st->n_tensors; i++) {
        const st_tensor *t = &j.st->tensors[i];
        if (was_used(&j, t->name) || ends_with(t->name, "rotary_emb.inv_freq"))
            continue;
        if (c.tied && !strcmp(t->name, "lm_head.weight")) {
            if (!j.quiet)
                fprintf(stderr, "convert: note: lm_head.weight ignored (tie_word_embeddings)\n");
            continue;
        }
        rc = err_set(SOV_EUNSUPPORTED, "checkpoint tensor '%s' has no llama GGUF counterpart (biases and "
                     "other extras are not supported)", t->name);
        goto fail;
    }
    if (!j.quiet)
        fprintf(stderr, "convert: writing %s (%" PRIu64 " tensors, %" PRIu64 " metadata keys)\n", out_path,
                gguf_w_n_tensors(j.w), gguf_w_n_kv(j.w));
    progress_reset(j.prog, NULL, 0, j.bytes);
    rc = gguf_w_write(j.w, out_path);
fail:
    for (size_t i = 0; j.ct && i < j.n_ct; i++)
        free(j.ct[i].row);
    free(j.ct);
    free(j.used);
    gguf_writer_free(j.w);
    st_close(j.st);
    return rc;
}
