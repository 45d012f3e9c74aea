/* vocab: tokenizer from GGUF metadata (see vocab.h). */
#include "vocab.h"

#include <stdlib.h>
#include <string.h>

#include "../base/err.h"
#include "tok_bpe.h"
#include "tok_spm.h"
#include "tok_wpm.h"

enum tok_type {
    TT_UNDEFINED = 0,
    TT_NORMAL = 1,
    TT_UNKNOWN = 2,
    TT_CONTROL = 3,
    TT_USER_DEFINED = 4,
    TT_UNUSED = 5,
    TT_BYTE = 6,
};

#define MAX_EOG 16

/* Token attributes as llama.cpp's tokenizer_st_partition sees them
 * (LLAMA_TOKEN_ATTR_*): the class from tokenizer.ggml.token_type, corrected
 * by token text, plus the whitespace stripping that llama.cpp sets by model
 * name (build_attrs). */
enum tok_attr {
    TA_CONTROL = 1,
    TA_USER = 2,    /* user-defined: parsed even without parse_special */
    TA_UNKNOWN = 4,
    TA_LSTRIP = 8,  /* whitespace before the token's text is dropped */
    TA_RSTRIP = 16, /* whitespace after the token's text is dropped */
};
#define TA_SPECIAL (TA_CONTROL | TA_USER | TA_UNKNOWN)

struct vocab {
    int kind;
    int32_t n;
    const gguf_str *texts; /* into the gguf mapping */
    uint8_t *types;        /* enum tok_type per token */
    uint8_t *attr;         /* TA_* bits per token: what special-token parsing sees */
    float *scores;         /* SPM scores (0 when absent) */
    tok_map map;
    char *pre;
    int32_t bos, eos, unk, eot, eom, cls, sep;
    bool add_bos, add_eos, add_space_prefix;
    int32_t *special; /* tokens with TA_CONTROL / TA_USER / TA_UNKNOWN, longest text first */
    size_t n_special;
    int32_t eog[MAX_EOG];
    int n_eog;
    spm_vocab spm;
    bpe_vocab *bpe;
    wpm_vocab wpm;
};

/* Reads an optional token id key into *out (left unchanged when absent).
 * -1 and 0xFFFFFFFF mean "none". */
static int load_id(const gguf *g, const char *key, int32_t n, int32_t *out)
{
    int64_t v;
    int rc = gguf_get_i64(g, key, &v);
    if (rc == SOV_ENOTFOUND)
        return 0;
    if (rc < 0)
        return rc;
    if (v == -1 || v == (int64_t)UINT32_MAX) {
        *out = -1;
        return 0;
    }
    if (v < 0 || v >= n)
        return err_set(SOV_EFORMAT, "vocab: %s = %lld is out of range (n_vocab %d)", key, (long long)v, n);
    *out = (int32_t)v;
    return 0;
}

static int load_bool(const gguf *g, const char *key, bool *out)
{
    int rc = gguf_get_bool(g, key, out);
    return rc == SOV_ENOTFOUND ? 0 : rc;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static bool text_is(const vocab *v, int32_t id, const char *s)
{
    return gguf_str_eq(v->texts[id], s);
}

static void add_eog(vocab *v, int32_t id)
{
    if (id < 0 || v->n_eog >= MAX_EOG)
        return;
    for (int i = 0; i < v->n_eog; i++)
        if (v->eog[i] == id)
            return;
    v->eog[v->n_eog++] = id;
}

/* Tokens with a TA_SPECIAL attribute and non-empty text, sorted longest
 * text first (ties: lower id first; llama.cpp's std::sort leaves ties in no
 * particular order). */
static int build_specials(vocab *v)
{
    size_t k = 0;
    uint64_t *keys = NULL;
    for (int32_t i = 0; i < v->n; i++)
        if ((v->attr[i] & TA_SPECIAL) && v->texts[i].len > 0)
            k++;
    v->special = malloc((k ? k : 1) * sizeof *v->special);
    keys = malloc((k ? k : 1) * sizeof *keys);
    if (!v->special || !keys) {
        free(keys);
        return err_set(SOV_ENOMEM, "vocab: out of memory for special tokens");
    }
    k = 0;
    for (int32_t i = 0; i < v->n; i++) {
        if ((v->attr[i] & TA_SPECIAL) && v->texts[i].len > 0) {
            uint64_t len = v->texts[i].len > UINT32_MAX ? UINT32_MAX : v->texts[i].len;
            keys[k++] = ((uint64_t)(UINT32_MAX - len) << 32) | (uint32_t)i;
        }
    }
    qsort(keys, k, sizeof *keys, cmp_u64);
    for (size_t j = 0; j < k; j++)
        v->special[j] = (int32_t)(keys[j] & 0xffffffffu);
    v->n_special = k;
    free(keys);
    return 0;
}

/* True if s contains needle; fold: compare s lowercased (ASCII), needle is
 * lowercase. */
static bool str_has(gguf_str s, const char *needle, bool fold)
{
    size_t nl = strlen(needle);
    for (size_t i = 0; i + nl <= s.len; i++) {
        size_t j = 0;
        for (; j < nl; j++) {
            char c = s.ptr[i + j];
            if (fold && c >= 'A' && c <= 'Z')
                c = (char)(c - 'A' + 'a');
            if (c != needle[j])
                break;
        }
        if (j == nl)
            return true;
    }
    return false;
}

static bool str_has_any(gguf_str s, const char *const *needles, bool fold)
{
    for (; *needles; needles++)
        if (str_has(s, *needles, fold))
            return true;
    return false;
}

/* Id of the token with text s, or -1. */
static int32_t find_text(const vocab *v, const char *s) { return tok_map_find(&v->map, s, strlen(s)); }

static bool text_in(gguf_str t, const char *const *list)
{
    for (; *list; list++)
        if (gguf_str_eq(t, *list))
            return true;
    return false;
}

/* Token texts llama.cpp takes for FIM tokens when the id is not in the
 * metadata (llama_vocab::impl::load, "auto-detect special tokens by text"). */
#define FULLWIDTH_BAR "\xef\xbd\x9c" /* U+FF5C, DeepSeek's token brackets */
#define LOWER_BLOCK "\xe2\x96\x81"   /* U+2581 */
static const char *const fim_pre[] = {"<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>",
                                      "<" FULLWIDTH_BAR "fim" LOWER_BLOCK "begin" FULLWIDTH_BAR ">",
                                      "<PRE>", LOWER_BLOCK "<PRE>", "<|code_prefix|>", "<|prefix|>", NULL};
static const char *const fim_suf[] = {"<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>",
                                      "<" FULLWIDTH_BAR "fim" LOWER_BLOCK "hole" FULLWIDTH_BAR ">",
                                      "<SUF>", LOWER_BLOCK "<SUF>", "<|code_suffix|>", "<|suffix|>", NULL};
static const char *const fim_mid[] = {"<|fim_middle|>", "<fim-middle>", "<fim_middle>",
                                      "<" FULLWIDTH_BAR "fim" LOWER_BLOCK "end" FULLWIDTH_BAR ">",
                                      "<MID>", LOWER_BLOCK "<MID>", "<|code_middle|>", "<|middle|>", NULL};
static const char *const fim_pad[] = {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]", NULL};
static const char *const fim_rep[] = {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>", NULL};
static const char *const fim_sep[] = {"<|file_sep|>", NULL};
/* Texts llama.cpp puts in its end-of-generation set; each becomes a control
 * token. The EOT / EOM texts it detects are all in this list. "</s>" is
 * not: the llama.cpp releases sov is checked against keep a user-defined
 * </s> (phi-3's) user-defined, so it is split out of text even without
 * special-token parsing (phi-3, `<s> </s> <unk> x`, parse_special off:
 * ... 2 529 ...); the newest llama.cpp also lists "</s>" here (for
 * paddleocr), which would make it control and leave it as text. */
static const char *const eog_texts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>", "<end_of_turn>",
    "<|endoftext|>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]", "<|end_of_text|>",
    "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
    "<" FULLWIDTH_BAR "end" LOWER_BLOCK "of" LOWER_BLOCK "sentence" FULLWIDTH_BAR ">", "[e~[", NULL};

/* True if metadata key holds a token id in range (llama.cpp ignores one out
 * of range and keeps its default, here none). */
static bool has_id(const gguf *g, const char *key, int32_t n)
{
    int64_t id;
    return gguf_get_i64(g, key, &id) == 0 && id >= 0 && id < n;
}

static void set_attr(vocab *v, int32_t id, uint8_t bits, bool on)
{
    if (id >= 0)
        v->attr[id] = on ? (uint8_t)(v->attr[id] | bits) : (uint8_t)(v->attr[id] & ~bits);
}

/* Token attributes the way llama.cpp derives them in llama_vocab::impl::load:
 *  1. class from token_type: control, user-defined, unknown (others: none);
 *  2. FIM-looking texts (first token by id per kind, only when the kind's id
 *     is not in the metadata) and end-of-generation texts gain control;
 *  3. gpt-oss <|channel|> <|message|> <|start|> <|constrain|> become plain
 *     user-defined; <|end|> too when the vocab has <|return|> and <|call|>
 *     (or <|calls|>), or <|calls|>/<|call|> and <|flush|>; </s> becomes
 *     normal when the vocab has <|tool_response>;
 *  4. by name, after the special-token set is fixed: tokenizer.ggml.pre
 *     containing jina-v2-de/-es/-code or general.architecture containing
 *     nomic-bert-moe/jina-bert-v3: <mask> gets LSTRIP; else general.name
 *     (lowercased) containing phi-3/phi3: every special token and </s> get
 *     RSTRIP, then <unk>, <s>, <|endoftext|> lose it; else a name containing
 *     modern-bert: [MASK] gets LSTRIP.
 * Differences, all on files llama.cpp refuses: a phi-3-named vocab lacking
 * one of </s> <unk> <s> <|endoftext|> (llama.cpp throws from
 * token_to_id.at) gets the rule for the tokens it has, and metadata of the
 * wrong type counts as absent. */
static void build_attrs(vocab *v, const gguf *g)
{
    for (int32_t i = 0; i < v->n; i++) {
        uint8_t t = v->types[i];
        v->attr[i] = t == TT_CONTROL ? TA_CONTROL : t == TT_USER_DEFINED ? TA_USER : t == TT_UNKNOWN ? TA_UNKNOWN : 0;
    }
    static const struct {
        const char *key, *old_key;
        const char *const *texts;
    } fim[] = {
        {"tokenizer.ggml.fim_pre_token_id", "tokenizer.ggml.prefix_token_id", fim_pre},
        {"tokenizer.ggml.fim_suf_token_id", "tokenizer.ggml.suffix_token_id", fim_suf},
        {"tokenizer.ggml.fim_mid_token_id", "tokenizer.ggml.middle_token_id", fim_mid},
        {"tokenizer.ggml.fim_pad_token_id", NULL, fim_pad},
        {"tokenizer.ggml.fim_rep_token_id", NULL, fim_rep},
        {"tokenizer.ggml.fim_sep_token_id", NULL, fim_sep},
    };
    for (size_t k = 0; k < sizeof fim / sizeof fim[0]; k++) {
        if (has_id(g, fim[k].key, v->n) || (fim[k].old_key && has_id(g, fim[k].old_key, v->n)))
            continue;
        for (int32_t i = 0; i < v->n; i++)
            if (text_in(v->texts[i], fim[k].texts)) {
                v->attr[i] |= TA_CONTROL;
                break;
            }
    }
    for (int32_t i = 0; i < v->n; i++)
        if (text_in(v->texts[i], eog_texts))
            v->attr[i] |= TA_CONTROL;
    static const char *const gpt_oss[] = {"<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"};
    for (size_t k = 0; k < sizeof gpt_oss / sizeof gpt_oss[0]; k++) {
        int32_t id = find_text(v, gpt_oss[k]);
        if (id >= 0)
            v->attr[id] = TA_USER;
    }
    int32_t end = find_text(v, "<|end|>");
    bool call = find_text(v, "<|call|>") >= 0 || find_text(v, "<|calls|>") >= 0;
    if (end >= 0 && call && (find_text(v, "<|return|>") >= 0 || find_text(v, "<|flush|>") >= 0))
        v->attr[end] = TA_USER;
    int32_t eos_s = find_text(v, "</s>");
    if (eos_s >= 0 && find_text(v, "<|tool_response>") >= 0)
        v->attr[eos_s] = 0;

    gguf_str name = {"", 0}, pre = {"", 0}, arch = {"", 0};
    (void)gguf_get_str(g, "general.name", &name);
    (void)gguf_get_str(g, "tokenizer.ggml.pre", &pre);
    (void)gguf_get_str(g, "general.architecture", &arch);
    static const char *const jina_pre[] = {"jina-v2-de", "jina-v2-es", "jina-v2-code", NULL};
    static const char *const jina_arch[] = {"nomic-bert-moe", "jina-bert-v3", NULL};
    static const char *const phi3[] = {"phi-3", "phi3", NULL};
    static const char *const mbert[] = {"modern-bert", NULL};
    if (str_has_any(pre, jina_pre, false) || str_has_any(arch, jina_arch, false)) {
        set_attr(v, find_text(v, "<mask>"), TA_LSTRIP, true);
    } else if (str_has_any(name, phi3, true)) {
        for (int32_t i = 0; i < v->n; i++)
            if (v->attr[i] & TA_SPECIAL)
                v->attr[i] |= TA_RSTRIP;
        set_attr(v, find_text(v, "</s>"), TA_RSTRIP, true);
        set_attr(v, find_text(v, "<unk>"), TA_RSTRIP, false);
        set_attr(v, find_text(v, "<s>"), TA_RSTRIP, false);
        set_attr(v, find_text(v, "<|endoftext|>"), TA_RSTRIP, false);
    } else if (str_has_any(name, mbert, true)) {
        set_attr(v, find_text(v, "[MASK]"), TA_LSTRIP, true);
    }
}

static void build_eog(vocab *v)
{
    static const char *const names[] = {
        "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|eom_id|>",
        "<EOT>", "<|EOT|>", "_<EOT>", "<|end_of_text|>", "<｜end▁of▁sentence｜>",
    };
    add_eog(v, v->eos);
    add_eog(v, v->eot);
    add_eog(v, v->eom);
    for (size_t k = 0; k < v->n_special; k++) {
        int32_t id = v->special[k];
        if (v->types[id] != TT_CONTROL)
            continue;
        for (size_t j = 0; j < sizeof names / sizeof names[0]; j++)
            if (text_is(v, id, names[j]))
                add_eog(v, id);
    }
}

/* SPM byte fallback tokens: "<0xNN>", else the one-byte text. */
static void build_byte_ids(vocab *v)
{
    for (int b = 0; b < 256; b++) {
        char t[8];
        static const char hex[] = "0123456789ABCDEF";
        memcpy(t, "<0x", 3);
        t[3] = hex[b >> 4];
        t[4] = hex[b & 15];
        t[5] = '>';
        int32_t id = tok_map_find(&v->map, t, 6);
        if (id < 0) {
            char c = (char)b;
            id = tok_map_find(&v->map, &c, 1);
        }
        v->spm.byte_id[b] = id;
    }
}

int vocab_load(vocab **out, const gguf *g)
{
    int rc;
    vocab *v = NULL;
    *out = NULL;
    gguf_str model;
    rc = gguf_get_str(g, "tokenizer.ggml.model", &model);
    if (rc == SOV_ENOTFOUND)
        return err_set(SOV_ENOTFOUND, "vocab: no tokenizer metadata (tokenizer.ggml.model missing)");
    if (rc < 0)
        return rc;
    int kind;
    if (gguf_str_eq(model, "llama")) {
        kind = VOCAB_SPM;
    } else if (gguf_str_eq(model, "gpt2")) {
        kind = VOCAB_BPE;
    } else if (gguf_str_eq(model, "bert")) {
        kind = VOCAB_WPM;
    } else {
        char name[64];
        return err_set(SOV_EUNSUPPORTED,
                       "vocab: tokenizer model '%s' is not supported (only llama/SPM, gpt2/BPE and bert/WordPiece)",
                       gguf_str_copy(model, name, sizeof name));
    }

    v = calloc(1, sizeof *v);
    if (!v)
        return err_set(SOV_ENOMEM, "vocab: out of memory");
    v->kind = kind;

    const gguf_value *toks = gguf_get_arr(g, "tokenizer.ggml.tokens", GGUF_STRING);
    if (!toks) {
        rc = err_set(SOV_EFORMAT, "vocab: tokenizer.ggml.tokens missing or not an array of strings");
        goto fail;
    }
    if (toks->v.arr.n == 0 || toks->v.arr.n > INT32_MAX) {
        rc = err_set(SOV_EFORMAT, "vocab: tokenizer.ggml.tokens has %llu entries",
                     (unsigned long long)toks->v.arr.n);
        goto fail;
    }
    v->n = (int32_t)toks->v.arr.n;
    v->texts = toks->v.arr.strs;

    v->types = malloc((size_t)v->n);
    v->attr = malloc((size_t)v->n);
    v->scores = calloc((size_t)v->n, sizeof *v->scores);
    if (!v->types || !v->attr || !v->scores) {
        rc = err_set(SOV_ENOMEM, "vocab: out of memory for %d tokens", v->n);
        goto fail;
    }
    memset(v->types, TT_NORMAL, (size_t)v->n);

    const gguf_value *sc = gguf_get(g, "tokenizer.ggml.scores");
    if (sc) {
        if (sc->type != GGUF_ARRAY || sc->v.arr.type != GGUF_FLOAT32) {
            rc = err_set(SOV_EFORMAT, "vocab: tokenizer.ggml.scores is not an array of float32");
            goto fail;
        }
        if (sc->v.arr.n != (uint64_t)v->n) {
            rc = err_set(SOV_EFORMAT, "vocab: tokenizer.ggml.scores has %llu entries, tokens %d",
                         (unsigned long long)sc->v.arr.n, v->n);
            goto fail;
        }
        for (int32_t i = 0; i < v->n; i++)
            v->scores[i] = (float)gguf_arr_f64(sc, (uint64_t)i);
    }
    const gguf_value *tt = gguf_get(g, "tokenizer.ggml.token_type");
    if (tt) {
        if (tt->type != GGUF_ARRAY || tt->v.arr.type == GGUF_STRING || tt->v.arr.type == GGUF_ARRAY ||
            tt->v.arr.type == GGUF_FLOAT32 || tt->v.arr.type == GGUF_FLOAT64 || tt->v.arr.type == GGUF_BOOL ||
            gguf_vtype_size(tt->v.arr.type) == 0) {
            rc = err_set(SOV_EFORMAT, "vocab: tokenizer.ggml.token_type is not an array of integers");
            goto fail;
        }
        if (tt->v.arr.n != (uint64_t)v->n) {
            rc = err_set(SOV_EFORMAT, "vocab: tokenizer.ggml.token_type has %llu entries, tokens %d",
                         (unsigned long long)tt->v.arr.n, v->n);
            goto fail;
        }
        for (int32_t i = 0; i < v->n; i++) {
            int64_t t = gguf_arr_i64(tt, (uint64_t)i);
            if (t < TT_UNDEFINED || t > TT_BYTE) {
                rc = err_set(SOV_EFORMAT, "vocab: token %d has invalid token_type %lld", i, (long long)t);
                goto fail;
            }
            v->types[i] = (uint8_t)t;
        }
    }

    /* special ids: model defaults, then metadata */
    v->bos = v->eos = v->unk = v->eot = v->eom = v->cls = v->sep = -1;
    if (kind == VOCAB_SPM) {
        v->unk = 0;
        v->bos = v->n > 1 ? 1 : -1;
        v->eos = v->n > 2 ? 2 : -1;
        v->add_bos = true;
        v->add_space_prefix = true;
    }
    int32_t dummy = -1;
    if ((rc = load_id(g, "tokenizer.ggml.bos_token_id", v->n, &v->bos)) < 0 ||
        (rc = load_id(g, "tokenizer.ggml.eos_token_id", v->n, &v->eos)) < 0 ||
        (rc = load_id(g, "tokenizer.ggml.unknown_token_id", v->n, &v->unk)) < 0 ||
        (rc = load_id(g, "tokenizer.ggml.eot_token_id", v->n, &v->eot)) < 0 ||
        (rc = load_id(g, "tokenizer.ggml.eom_token_id", v->n, &v->eom)) < 0 ||
        (rc = load_id(g, "tokenizer.ggml.seperator_token_id", v->n, &v->sep)) < 0 ||
        (rc = load_id(g, "tokenizer.ggml.padding_token_id", v->n, &dummy)) < 0 ||
        (rc = load_id(g, "tokenizer.ggml.cls_token_id", v->n, &v->cls)) < 0 ||
        (rc = load_id(g, "tokenizer.ggml.mask_token_id", v->n, &dummy)) < 0)
        goto fail;

    gguf_str pre = {"default", 7};
    rc = gguf_get_str(g, "tokenizer.ggml.pre", &pre);
    if (rc < 0 && rc != SOV_ENOTFOUND)
        goto fail;
    bool has_pre = rc == 0;
    if (pre.len > 256) {
        rc = err_set(SOV_EFORMAT, "vocab: tokenizer.ggml.pre is %llu bytes long", (unsigned long long)pre.len);
        goto fail;
    }
    v->pre = malloc(pre.len + 1);
    if (!v->pre) {
        rc = err_set(SOV_ENOMEM, "vocab: out of memory");
        goto fail;
    }
    memcpy(v->pre, pre.ptr, pre.len);
    v->pre[pre.len] = 0;
    if (strlen(v->pre) != pre.len) {
        rc = err_set(SOV_EFORMAT, "vocab: tokenizer.ggml.pre contains a NUL byte");
        goto fail;
    }

    if ((rc = tok_map_build(&v->map, v->texts, v->n)) < 0)
        goto fail;
    build_attrs(v, g);
    if ((rc = build_specials(v)) < 0)
        goto fail;

    if (kind == VOCAB_SPM) {
        v->spm.map = &v->map;
        v->spm.scores = v->scores;
        v->spm.n = v->n;
        v->spm.unk = v->unk;
        build_byte_ids(v);
    } else if (kind == VOCAB_WPM) {
        /* BERT: [CLS] text [SEP]; the ids fall back to the usual texts */
        if (v->unk < 0)
            v->unk = tok_map_find(&v->map, "[UNK]", 5);
        if (v->cls < 0)
            v->cls = tok_map_find(&v->map, "[CLS]", 5);
        if (v->sep < 0)
            v->sep = tok_map_find(&v->map, "[SEP]", 5);
        if (v->bos < 0)
            v->bos = v->cls;
        if (v->eos < 0)
            v->eos = v->sep;
        v->add_bos = v->add_eos = true;
        v->wpm.map = &v->map;
        v->wpm.unk = v->unk;
        v->wpm.max_piece = 0;
        for (int32_t i = 0; i < v->n; i++)
            if (v->texts[i].len > v->wpm.max_piece)
                v->wpm.max_piece = (size_t)v->texts[i].len;
    } else {
        const gguf_value *merges = gguf_get_arr(g, "tokenizer.ggml.merges", GGUF_STRING);
        if (!merges) {
            rc = err_set(SOV_EFORMAT, "vocab: gpt2 tokenizer without tokenizer.ggml.merges (array of strings)");
            goto fail;
        }
        if ((rc = bpe_create(&v->bpe, &v->map, merges, has_pre ? v->pre : NULL, v->unk)) < 0)
            goto fail;
        v->add_bos = bpe_default_add_bos(v->bpe);
    }
    if ((rc = load_bool(g, "tokenizer.ggml.add_bos_token", &v->add_bos)) < 0 ||
        (rc = load_bool(g, "tokenizer.ggml.add_eos_token", &v->add_eos)) < 0 ||
        (rc = load_bool(g, "tokenizer.ggml.add_space_prefix", &v->add_space_prefix)) < 0)
        goto fail;
    if (kind != VOCAB_SPM)
        v->add_space_prefix = false;
    v->spm.add_space_prefix = v->add_space_prefix;
    build_eog(v);
    *out = v;
    return 0;
fail:
    vocab_free(v);
    return rc;
}

void vocab_free(vocab *v)
{
    if (!v)
        return;
    bpe_destroy(v->bpe);
    tok_map_free(&v->map);
    free(v->special);
    free(v->pre);
    free(v->scores);
    free(v->types);
    free(v->attr);
    free(v);
}

int vocab_kind_of(const vocab *v) { return v->kind; }

const char *vocab_model_name(const vocab *v)
{
    return v->kind == VOCAB_SPM ? "llama" : v->kind == VOCAB_WPM ? "bert" : "gpt2";
}

const char *vocab_pre_name(const vocab *v) { return v->pre; }

int32_t vocab_n_tokens(const vocab *v) { return v->n; }

int32_t vocab_bos(const vocab *v) { return v->bos; }

int32_t vocab_eos(const vocab *v) { return v->eos; }

bool vocab_add_bos(const vocab *v) { return v->add_bos && v->bos >= 0; }

bool vocab_add_eos(const vocab *v) { return v->add_eos && v->eos >= 0; }

bool vocab_is_eog(const vocab *v, int32_t id)
{
    if (id < 0)
        return false;
    for (int i = 0; i < v->n_eog; i++)
        if (v->eog[i] == id)
            return true;
    return false;
}

const char *vocab_token_text(const vocab *v, int32_t id, size_t *len)
{
    if (id < 0 || id >= v->n) {
        *len = 0;
        return NULL;
    }
    *len = (size_t)v->texts[id].len;
    return v->texts[id].ptr;
}

/* ---- encoding ---- */

typedef struct frag {
    int32_t id; /* token, or -1 for raw text */
    size_t off, len;
} frag;

typedef struct frags {
    frag *f;
    size_t n, cap;
} frags;

static int frags_push(frags *a, int32_t id, size_t off, size_t len)
{
    if (a->n == a->cap) {
        size_t nc = a->cap ? a->cap * 2 : 16;
        frag *nf = realloc(a->f, nc * sizeof *nf);
        if (!nf)
            return err_set(SOV_ENOMEM, "vocab: out of memory for text fragments");
        a->f = nf;
        a->cap = nc;
    }
    a->f[a->n++] = (frag){id, off, len};
    return 0;
}

/* isspace() in the C locale, as llama.cpp's partition tests bytes. */
static bool is_ws(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

/* Splits the raw fragments of *cur at every occurrence of special token id
 * (non-overlapping, left to right), as llama.cpp's tokenizer_st_partition
 * does for one token: with TA_LSTRIP the whitespace just before an
 * occurrence is dropped from the text on its left, with TA_RSTRIP the
 * whitespace just after it from the text on its right; text left empty is no
 * fragment. */
static int split_special(const vocab *v, const char *text, int32_t id, frags *cur, frags *tmp)
{
    const char *t = v->texts[id].ptr;
    size_t tl = (size_t)v->texts[id].len;
    bool lstrip = v->attr[id] & TA_LSTRIP, rstrip = v->attr[id] & TA_RSTRIP;
    bool hit = false;
    for (size_t i = 0; i < cur->n && !hit; i++)
        if (cur->f[i].id < 0 && cur->f[i].len >= tl && memmem(text + cur->f[i].off, cur->f[i].len, t, tl))
            hit = true;
    if (!hit)
        return 0;
    int rc;
    tmp->n = 0;
    for (size_t i = 0; i < cur->n; i++) {
        frag f = cur->f[i];
        if (f.id >= 0) {
            if ((rc = frags_push(tmp, f.id, f.off, f.len)) < 0)
                return rc;
            continue;
        }
        size_t pos = f.off, end = f.off + f.len;
        while (pos < end) {
            const char *p = end - pos >= tl ? memmem(text + pos, end - pos, t, tl) : NULL;
            if (!p) {
                if ((rc = frags_push(tmp, -1, pos, end - pos)) < 0)
                    return rc;
                break;
            }
            size_t at = (size_t)(p - text), left = at;
            while (lstrip && left > pos && is_ws(text[left - 1]))
                left--;
            if (left > pos && (rc = frags_push(tmp, -1, pos, left - pos)) < 0)
                return rc;
            if ((rc = frags_push(tmp, id, at, tl)) < 0)
                return rc;
            pos = at + tl;
            while (rstrip && pos < end && is_ws(text[pos]))
                pos++;
        }
    }
    frags x = *cur;
    *cur = *tmp;
    *tmp = x;
    return 0;
}

int vocab_encode(const vocab *v, const char *text, size_t len, bool add_special, bool parse_special, int32_t **ids,
                 size_t *n_ids)
{
    int rc = 0;
    tok_ids out = {0};
    frags cur = {0}, tmp = {0};
    *ids = NULL;
    *n_ids = 0;
    if (!text && len)
        return err_set(SOV_EINVAL, "vocab_encode: NULL text");
    if (add_special && v->add_bos && v->bos >= 0 && (rc = tok_ids_push(&out, v->bos)) < 0)
        goto fail;
    if (len > 0) {
        if ((rc = frags_push(&cur, -1, 0, len)) < 0)
            goto fail;
        for (size_t k = 0; k < v->n_special; k++) {
            int32_t id = v->special[k];
            /* without parse_special llama.cpp still splits out user-defined
             * tokens, but not control or unknown ones */
            if (!parse_special && (v->attr[id] & (TA_CONTROL | TA_UNKNOWN)))
                continue;
            if ((rc = split_special(v, text, id, &cur, &tmp)) < 0)
                goto fail;
        }
    }
    /* llama.cpp (SPM): a raw fragment gets the ' ' prefix when the vocab adds
     * one and the fragment is the first or follows a token fragment of any
     * kind (control, user-defined or unknown); BOS from add_special changes
     * nothing. BPE and WordPiece add no prefix. */
    bool prev_special = true;
    for (size_t i = 0; i < cur.n; i++) {
        frag f = cur.f[i];
        if (f.id >= 0) {
            rc = tok_ids_push(&out, f.id);
            prev_special = true;
        } else if (v->kind == VOCAB_SPM) {
            rc = spm_encode(&v->spm, text + f.off, f.len, v->add_space_prefix && prev_special, &out);
            prev_special = false;
        } else if (v->kind == VOCAB_WPM) {
            rc = wpm_encode(&v->wpm, text + f.off, f.len, &out);
            prev_special = false;
        } else {
            rc = bpe_encode(v->bpe, text + f.off, f.len, &out);
            prev_special = false;
        }
        if (rc < 0)
            goto fail;
    }
    if (add_special && v->add_eos && v->eos >= 0 && (rc = tok_ids_push(&out, v->eos)) < 0)
        goto fail;
    if (out.n == 0) {
        free(out.v);
        out.v = malloc(sizeof(int32_t)); /* non-NULL for callers that test the pointer */
        if (!out.v) {
            rc = err_set(SOV_ENOMEM, "vocab: out of memory");
            goto fail;
        }
    }
    *ids = out.v;
    *n_ids = out.n;
    free(cur.f);
    free(tmp.f);
    return 0;
fail:
    free(out.v);
    free(cur.f);
    free(tmp.f);
    return rc;
}

/* ---- detokenization ---- */

typedef struct wbuf {
    char *buf;
    size_t cap, n;
} wbuf;

static void put(wbuf *w, const void *p, size_t n)
{
    if (w->n < w->cap) {
        size_t k = w->cap - w->n < n ? w->cap - w->n : n;
        memcpy(w->buf + w->n, p, k);
    }
    w->n += n;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

int vocab_piece(const vocab *v, int32_t prev, int32_t id, char *buf, size_t cap)
{
    if (id < 0 || id >= v->n)
        return err_set(SOV_EINVAL, "vocab_piece: token id %d out of range (n_vocab %d)", id, v->n);
    wbuf w = {buf, buf ? cap : 0, 0};
    const char *s = v->texts[id].ptr;
    size_t n = (size_t)v->texts[id].len;
    uint8_t t = v->types[id];
    if (t == TT_CONTROL)
        return 0;
    if (v->kind == VOCAB_SPM) {
        if (t == TT_UNKNOWN) {
            put(&w, "\xe2\x96\x85", 3);
        } else if (t == TT_BYTE && n == 6 && memcmp(s, "<0x", 3) == 0 && s[5] == '>' && hexval(s[3]) >= 0 &&
                   hexval(s[4]) >= 0) {
            char c = (char)(hexval(s[3]) * 16 + hexval(s[4]));
            put(&w, &c, 1);
        } else {
            bool drop = v->add_space_prefix && (prev < 0 || prev == v->bos);
            for (size_t i = 0; i < n; i++) {
                if (i + 3 <= n && memcmp(s + i, "\xe2\x96\x81", 3) == 0) {
                    if (!(drop && w.n == 0))
                        put(&w, " ", 1);
                    i += 2;
                } else {
                    put(&w, s + i, 1);
                }
                drop = false;
            }
        }
    } else if (v->kind == VOCAB_WPM) {
        if (t == TT_UNKNOWN) {
            put(&w, "\xe2\x96\x85", 3);
        } else if (n >= 3 && memcmp(s, "\xe2\x96\x81", 3) == 0) {
            /* word-initial piece: a space before it, except at the start */
            if (!(prev < 0 || prev == v->bos))
                put(&w, " ", 1);
            put(&w, s + 3, n - 3);
        } else {
            put(&w, s, n); /* continuation piece, or user-defined text */
        }
    } else {
        if (t == TT_USER_DEFINED || t == TT_UNKNOWN)
            put(&w, s, n);
        else
            w.n = bpe_decode_text(s, n, buf, buf ? cap : 0);
    }
    if (w.n > (size_t)INT32_MAX)
        return err_set(SOV_ERANGE, "vocab_piece: piece of %zu bytes", w.n);
    return (int)w.n;
}
