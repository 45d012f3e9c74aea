/* Tokenizers: llama.cpp's test vectors for every shared vocab that has them,
 * decode(encode(s)) == s, known prompts of the shared models, special-token
 * parsing, and corrupted metadata giving errors instead of crashes. */
#include "t.h"

#include "base/err.h"
#include "format/gguf.h"
#include "tok/vocab.h"

#include <dirent.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

static char *read_all(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t cap = 0, len = 0;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            cap = (len + 4096 + 1) * 2;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        size_t k = fread(buf + len, 1, cap - len - 1, f);
        len += k;
        if (k == 0)
            break;
    }
    fclose(f);
    buf[len] = 0;
    *n = len;
    return buf;
}

static const char SEP[] = "\n__ggml_vocab_test__\n";

typedef struct strs {
    char *data;
    const char *s[128];
    size_t len[128];
    int n;
} strs;

/* Splits an .inp file into its test strings. */
static bool load_inp(const char *path, strs *out)
{
    size_t n;
    memset(out, 0, sizeof *out);
    out->data = read_all(path, &n);
    if (!out->data)
        return false;
    const char *p = out->data, *end = out->data + n;
    while (p < end && out->n < 128) {
        const char *q = memmem(p, (size_t)(end - p), SEP, sizeof SEP - 1);
        if (!q)
            break;
        out->s[out->n] = p;
        out->len[out->n] = (size_t)(q - p);
        out->n++;
        p = q + sizeof SEP - 1;
    }
    return out->n > 0;
}

typedef struct idlines {
    char *data;
    int32_t *ids[128];
    size_t n_ids[128];
    int n;
} idlines;

static void free_idlines(idlines *o)
{
    for (int i = 0; i < o->n; i++)
        free(o->ids[i]);
    free(o->data);
}

static bool load_out(const char *path, idlines *out)
{
    size_t n;
    memset(out, 0, sizeof *out);
    out->data = read_all(path, &n);
    if (!out->data)
        return false;
    char *p = out->data;
    while (*p && out->n < 128) {
        char *nl = strchr(p, '\n');
        if (nl)
            *nl = 0;
        int32_t *ids = malloc((strlen(p) / 2 + 2) * sizeof *ids);
        size_t k = 0;
        char *e;
        for (;;) {
            long v = strtol(p, &e, 10);
            if (e == p)
                break;
            ids[k++] = (int32_t)v;
            p = e;
        }
        out->ids[out->n] = ids;
        out->n_ids[out->n] = k;
        out->n++;
        if (!nl)
            break;
        p = nl + 1;
    }
    return true;
}

/* Concatenated pieces of ids; malloc'd, NUL-terminated, *n bytes. */
static char *detok(const vocab *v, const int32_t *ids, size_t n_ids, size_t *n)
{
    size_t cap = 64, len = 0;
    char *out = malloc(cap);
    int32_t prev = -1;
    for (size_t i = 0; i < n_ids; i++) {
        char tmp[8];
        int k = vocab_piece(v, prev, ids[i], tmp, sizeof tmp);
        if (k < 0) {
            free(out);
            return NULL;
        }
        while (len + (size_t)k + 1 > cap)
            cap *= 2;
        out = realloc(out, cap);
        if ((size_t)k <= sizeof tmp)
            memcpy(out + len, tmp, (size_t)k);
        else if (vocab_piece(v, prev, ids[i], out + len, (size_t)k) != k) {
            free(out);
            return NULL;
        }
        len += (size_t)k;
        prev = ids[i];
    }
    out[len] = 0;
    *n = len;
    return out;
}

static void fmt_ids(char *buf, size_t cap, const int32_t *ids, size_t n)
{
    size_t o = 0;
    buf[0] = 0;
    for (size_t i = 0; i < n && o + 16 < cap; i++)
        o += (size_t)snprintf(buf + o, cap - o, "%s%d", i ? " " : "", ids[i]);
    if (n == 0)
        snprintf(buf, cap, "(none)");
}

static void fmt_str(char *buf, size_t cap, const char *s, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 8 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n')
            o += (size_t)snprintf(buf + o, cap - o, "\\n");
        else if (c == '\t')
            o += (size_t)snprintf(buf + o, cap - o, "\\t");
        else if (c < 0x20 || c == '"' || c == '\\')
            o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", c);
        else
            buf[o++] = (char)c;
    }
    buf[o] = 0;
}

/* WordPiece lowercases, strips accents and drops whitespace, so
 * decode(encode(s)) == s cannot hold. What must hold instead: the decoded text
 * encodes to the same ids, except the tokens that decode to nothing ([UNK]
 * is a control token: a word that had no tokenization disappears). */
static bool wpm_reencodes(const vocab *v, const char *s, size_t len)
{
    int32_t *ids = NULL, *ids2 = NULL;
    size_t n_ids = 0, n_ids2 = 0, n = 0;
    char *text = NULL;
    bool ok = false;
    if (vocab_encode(v, s, len, false, false, &ids, &n_ids) < 0 || !(text = detok(v, ids, n_ids, &n)) ||
        vocab_encode(v, text, n, false, false, &ids2, &n_ids2) < 0)
        goto out;
    size_t k = 0;
    for (size_t i = 0; i < n_ids; i++) {
        char c;
        if (vocab_piece(v, -1, ids[i], &c, 1) == 0)
            continue;
        if (k >= n_ids2 || ids2[k] != ids[i])
            goto out;
        k++;
    }
    ok = k == n_ids2;
out:
    free(ids);
    free(ids2);
    free(text);
    return ok;
}

/* Round trip over all strings; prints one check. */
static void check_roundtrip(const char *name, const vocab *v, const strs *in)
{
    int ok = 0, first_bad = -1;
    if (vocab_kind_of(v) == VOCAB_WPM) {
        for (int i = 0; i < in->n; i++) {
            if (wpm_reencodes(v, in->s[i], in->len[i]))
                ok++;
            else if (first_bad < 0)
                first_bad = i;
        }
        goto report;
    }
    for (int i = 0; i < in->n; i++) {
        int32_t *ids = NULL;
        size_t n_ids = 0, n = 0;
        char *s = NULL;
        if (vocab_encode(v, in->s[i], in->len[i], false, false, &ids, &n_ids) == 0)
            s = detok(v, ids, n_ids, &n);
        if (s && n == in->len[i] && memcmp(s, in->s[i], n) == 0)
            ok++;
        else if (first_bad < 0)
            first_bad = i;
        free(s);
        free(ids);
    }
report:;
    char tname[160];
    if (ok == in->n) {
        snprintf(tname, sizeof tname, "tok roundtrip %s (%d/%d)", name, ok, in->n);
        t_check(true, tname, "-");
    } else {
        char q[256];
        fmt_str(q, sizeof q, in->s[first_bad], in->len[first_bad]);
        snprintf(tname, sizeof tname, "tok roundtrip %s", name);
        t_check(false, tname, "%d/%d, first mismatch: input \"%s\"", ok, in->n, q);
    }
}

/* Compares with expected ids; returns the number matching. */
static int compare_vectors(const vocab *v, const strs *in, const idlines *exp, char *why, size_t why_cap)
{
    int ok = 0;
    why[0] = 0;
    for (int i = 0; i < in->n; i++) {
        int32_t *ids = NULL;
        size_t n_ids = 0;
        int rc = vocab_encode(v, in->s[i], in->len[i], false, false, &ids, &n_ids);
        bool same = rc == 0 && i < exp->n && n_ids == exp->n_ids[i] &&
                    (n_ids == 0 || memcmp(ids, exp->ids[i], n_ids * sizeof *ids) == 0);
        if (same) {
            ok++;
        } else if (!why[0]) {
            char q[200], e[300], g[300];
            fmt_str(q, sizeof q, in->s[i], in->len[i]);
            if (i < exp->n)
                fmt_ids(e, sizeof e, exp->ids[i], exp->n_ids[i]);
            else
                snprintf(e, sizeof e, "(missing line)");
            if (rc == 0)
                fmt_ids(g, sizeof g, ids, n_ids);
            else
                snprintf(g, sizeof g, "error %s: %s", err_name(rc), err_msg());
            snprintf(why, why_cap, "first mismatch: input \"%s\", expected %s, got %s", q, e, g);
        }
        free(ids);
    }
    return ok;
}

static bool same_tokens(const gguf *a, const gguf *b)
{
    const gguf_value *ta = gguf_get_arr(a, "tokenizer.ggml.tokens", GGUF_STRING);
    const gguf_value *tb = gguf_get_arr(b, "tokenizer.ggml.tokens", GGUF_STRING);
    if (!ta || !tb || ta->v.arr.n != tb->v.arr.n)
        return false;
    for (uint64_t i = 0; i < ta->v.arr.n; i++)
        if (ta->v.arr.strs[i].len != tb->v.arr.strs[i].len ||
            memcmp(ta->v.arr.strs[i].ptr, tb->v.arr.strs[i].ptr, ta->v.arr.strs[i].len) != 0)
            return false;
    return true;
}

static int cmp_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void vocab_vectors(void)
{
    DIR *d = opendir(t_shared("vocab"));
    if (!t_check(d != NULL, "tok vocab dir", "cannot open %s", t_shared("vocab")))
        return;
    char *names[64];
    int nn = 0;
    struct dirent *e;
    while ((e = readdir(d)) && nn < 64) {
        const char *s = e->d_name;
        size_t l = strlen(s);
        if (strncmp(s, "ggml-vocab-", 11) == 0 && l > 15 && strcmp(s + l - 4, ".inp") == 0)
            names[nn++] = strndup(s + 11, l - 11 - 9); /* strip ".gguf.inp" */
        else if (strncmp(s, "ggml-vocab-", 11) == 0 && l > 16 && strcmp(s + l - 5, ".gguf") == 0) {
            char inp[512];
            snprintf(inp, sizeof inp, "%s/%s.inp", t_shared("vocab"), s);
            FILE *f = fopen(inp, "rb");
            if (f)
                fclose(f); /* listed through its .inp */
            else
                names[nn++] = strndup(s + 11, l - 11 - 5);
        }
    }
    closedir(d);
    qsort(names, (size_t)nn, sizeof names[0], cmp_name);

    strs common;
    bool have_common = load_inp(t_shared("vocab/ggml-vocab-llama-spm.gguf.inp"), &common);
    t_check(have_common && common.n == 46, "tok llama-spm .inp has 46 strings", "got %d", common.n);

    for (int k = 0; k < nn; k++) {
        const char *name = names[k];
        char p_gguf[1100], p_inp[1110], p_out[1110], rel[200];
        snprintf(rel, sizeof rel, "vocab/ggml-vocab-%s.gguf", name);
        snprintf(p_gguf, sizeof p_gguf, "%s", t_shared(rel));
        snprintf(p_inp, sizeof p_inp, "%s.inp", p_gguf);
        snprintf(p_out, sizeof p_out, "%s.out", p_gguf);
        gguf *g = NULL;
        vocab *v = NULL;
        strs in = {0};
        idlines exp = {0};
        bool has_inp = load_inp(p_inp, &in);
        bool has_out = load_out(p_out, &exp);
        FILE *f = fopen(p_gguf, "rb");
        bool has_gguf = f != NULL;
        if (f)
            fclose(f);
        char tname[200];
        if (!has_gguf) {
            printf("INFO tok %s: skipped: no .gguf in shared/vocab (expected ids need the real model's vocab)\n",
                   name);
            goto next;
        }
        snprintf(tname, sizeof tname, "tok %s open", name);
        if (!t_check(gguf_open(&g, p_gguf) == 0, tname, "%s", err_msg()))
            goto next;
        int rc = vocab_load(&v, g);
        /* these tokenizer models are implemented: their vectors must pass */
        bool required = strcmp(name, "bert-bge") == 0;
        if (rc == SOV_EUNSUPPORTED && !required) {
            printf("INFO tok %s: skipped: %s\n", name, err_msg());
            goto next;
        }
        snprintf(tname, sizeof tname, "tok %s load", name);
        if (!t_check(rc == 0, tname, "%s: %s", err_name(rc), err_msg()))
            goto next;
        if (has_inp && has_out) {
            char why[1024];
            int ok = compare_vectors(v, &in, &exp, why, sizeof why);
            if (ok == in.n && exp.n == in.n) {
                snprintf(tname, sizeof tname, "tok %s (%d/%d)", name, ok, in.n);
                t_check(true, tname, "-");
            } else {
                snprintf(tname, sizeof tname, "tok %s", name);
                t_check(false, tname, "%d/%d, %s", ok, in.n, why);
            }
            check_roundtrip(name, v, &in);
        } else if (have_common) {
            check_roundtrip(name, v, &common);
            /* gpt-neox has the same tokenizer as mpt (same tokens, GPT-2
             * regex), so mpt's expected ids apply */
            gguf *gm = NULL;
            if (strcmp(name, "gpt-neox") == 0 && gguf_open(&gm, t_shared("vocab/ggml-vocab-mpt.gguf")) == 0 &&
                same_tokens(g, gm)) {
                idlines mexp;
                if (load_out(t_shared("vocab/ggml-vocab-mpt.gguf.out"), &mexp)) {
                    char why[1024];
                    int ok = compare_vectors(v, &common, &mexp, why, sizeof why);
                    if (ok == common.n) {
                        snprintf(tname, sizeof tname, "tok gpt-neox vs mpt's expected ids (%d/%d)", ok, common.n);
                        t_check(true, tname, "-");
                    } else {
                        t_check(false, "tok gpt-neox vs mpt's expected ids", "%d/%d, %s", ok, common.n, why);
                    }
                    free_idlines(&mexp);
                }
            }
            gguf_close(gm);
        }
    next:
        vocab_free(v);
        gguf_close(g);
        free(in.data);
        free_idlines(&exp);
        free(names[k]);
    }
    if (have_common)
        free(common.data);
}

static bool encode_is(const vocab *v, const char *s, bool add_special, bool parse_special, const int32_t *want,
                      size_t n_want, char *got, size_t cap)
{
    int32_t *ids = NULL;
    size_t n = 0;
    int rc = vocab_encode(v, s, strlen(s), add_special, parse_special, &ids, &n);
    if (rc < 0) {
        snprintf(got, cap, "error %s: %s", err_name(rc), err_msg());
        return false;
    }
    fmt_ids(got, cap, ids, n);
    bool ok = n == n_want && (n == 0 || memcmp(ids, want, n * sizeof *ids) == 0);
    free(ids);
    return ok;
}

static void model_prompts(void)
{
    struct {
        const char *file, *text;
        int32_t want[8];
        size_t n;
    } cases[] = {
        {"models/llama-2-tiny-random.gguf", "Hello world", {1, 15043, 3186}, 3},
        {"models/stories260K.gguf", "Once upon a time", {1, 403, 407, 261, 378}, 5},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        gguf *g = NULL;
        vocab *v = NULL;
        char name[200], got[512];
        snprintf(name, sizeof name, "tok %s load", cases[c].file);
        if (!t_check(gguf_open(&g, t_shared(cases[c].file)) == 0 && vocab_load(&v, g) == 0, name, "%s", err_msg()))
            goto next;
        snprintf(name, sizeof name, "tok %s encodes \"%s\" with BOS", cases[c].file, cases[c].text);
        t_check(encode_is(v, cases[c].text, true, false, cases[c].want, cases[c].n, got, sizeof got), name,
                "got %s", got);
        t_check(vocab_kind_of(v) == VOCAB_SPM && vocab_bos(v) == 1 && vocab_eos(v) == 2 && vocab_add_bos(v) &&
                    !vocab_add_eos(v) && vocab_is_eog(v, 2) && !vocab_is_eog(v, 1) &&
                    strcmp(vocab_model_name(v), "llama") == 0,
                "tok spm model facts", "kind %d bos %d eos %d", vocab_kind_of(v), vocab_bos(v), vocab_eos(v));
        /* decoding: BOS gives nothing, the first piece loses the prefix space */
        size_t n;
        char *s = detok(v, cases[c].want, cases[c].n, &n);
        snprintf(name, sizeof name, "tok %s decodes back to \"%s\"", cases[c].file, cases[c].text);
        t_check(s && strcmp(s, cases[c].text) == 0, name, "got '%s'", s ? s : "(error)");
        free(s);
        char small[2];
        int k = vocab_piece(v, 1, cases[c].want[1], small, sizeof small);
        t_check(k > 2 && vocab_piece(v, -1, vocab_n_tokens(v), small, sizeof small) == SOV_EINVAL,
                "tok piece reports full length and rejects bad ids", "k %d", k);
    next:
        vocab_free(v);
        gguf_close(g);
    }
}

/* One expected tokenization of a shared vocab. */
typedef struct tcase {
    const char *text;
    bool add_special, parse_special;
    int32_t want[24];
    size_t n;
    const char *rule; /* the llama.cpp rule it checks */
} tcase;

static void run_cases(const char *file, const tcase *c, size_t nc)
{
    gguf *g = NULL;
    vocab *v = NULL;
    char name[400], got[512], q[160];
    snprintf(name, sizeof name, "tok %s load", file);
    if (t_check(gguf_open(&g, t_shared(file)) == 0 && vocab_load(&v, g) == 0, name, "%s", err_msg())) {
        for (size_t i = 0; i < nc; i++) {
            fmt_str(q, sizeof q, c[i].text, strlen(c[i].text));
            snprintf(name, sizeof name, "tok %s \"%s\"%s: %s", strrchr(file, '/') + 1, q,
                     c[i].parse_special ? "" : " (no parse_special)", c[i].rule);
            t_check(encode_is(v, c[i].text, c[i].add_special, c[i].parse_special, c[i].want, c[i].n, got, sizeof got),
                    name, "got %s", got);
        }
    }
    vocab_free(v);
    gguf_close(g);
}

/* Special tokens in text, checked against llama.cpp's llama_tokenize
 * (llama_vocab::impl::tokenize + tokenizer_st_partition, src/llama-vocab.cpp).
 * The facts these rest on:
 *  P  SPM: a raw-text fragment gets a ' ' prefix (U+2581) when the vocab adds
 *     one and the fragment is the first or follows any token fragment
 *     (is_prev_special); BOS added by add_special does not count as text.
 *  R  phi-3 (general.name "Phi3" contains "phi3"): every special token and
 *     </s> get RSTRIP, then <unk>, <s>, <|endoftext|> lose it; RSTRIP drops
 *     the isspace() bytes right after the token's text.
 *  K  without RSTRIP/LSTRIP (any other name) whitespace next to a special
 *     token stays in the neighbouring text.
 *  U  without parse_special, user-defined tokens are still split out, control
 *     and unknown ones are not; texts llama.cpp takes for end-of-generation
 *     (<|end|>, ...; not </s>, see vocab.c) or FIM tokens gain the control
 *     class first.
 *  B  BPE: no space prefix; fragments are tokenized as they are.
 * phi-3 ids: 1 <s>, 2 </s> (user-defined), 0 <unk>, 32010 <|user|>,
 * 32007 <|end|>, 32001 <|assistant|>, 32000 <|endoftext|>, 32011 [PAD32011]
 * (unknown), 259 "▁▁", 29871 "▁", 921 "▁x", 15043 "▁Hello", 6324 "▁Hi",
 * 727 "▁there". */
static void specials(void)
{
    static const tcase phi3[] = {
        /* <s> keeps the ' ' after it (no RSTRIP), which then gets the prefix: ▁▁;
         * </s> strips its ' '; <unk> keeps " x", prefixed: ▁ ▁x */
        {"<s> </s> <unk> x", true, true, {1, 1, 259, 2, 0, 29871, 921}, 7, "P R: <s>/<unk> exempt, </s> rstrips"},
        /* without parse_special <s> and <unk> (control) stay text, the
         * user-defined </s> is still split out and strips the ' ' after it,
         * so the text after it gets one prefix, no lone ▁ (29871):
         * ▁<s>▁ | </s> | ▁<unk>▁x -- llama.cpp: ... 2 529 ... */
        {"<s> </s> <unk> x", true, false, {1, 529, 29879, 29958, 29871, 2, 529, 2960, 29958, 921}, 10,
         "U R P: user-defined </s> split without parse_special, no extra \u2581 after it"},
        /* the chat template: each "\n" after a special token is stripped, so
         * "Hello" starts a fragment after a special token: ▁Hello */
        {"<|user|>\nHello<|end|>\n<|assistant|>\n", true, true, {1, 32010, 15043, 32007, 32001}, 5,
         "P R: chat turn"},
        {"<|user|>\nHi<|end|>", true, true, {1, 32010, 6324, 32007}, 4, "P R: newline after <|user|> dropped"},
        /* user-defined </s> directly followed by text: the text gets the prefix */
        {"</s>x", true, true, {1, 2, 921}, 3, "P: text right after a user-defined token"},
        {"</s> \t x", true, true, {1, 2, 921}, 3, "R: all whitespace after </s> dropped"},
        /* no LSTRIP: the ' ' before <|end|> stays (▁Hi ▁); the one after goes */
        {"Hi <|end|> there", true, true, {1, 6324, 29871, 32007, 727}, 5, "K R: spaces around a control token"},
        {"Hi<|end|>there", true, true, {1, 6324, 32007, 727}, 4, "P: no spaces around a control token"},
        /* <|endoftext|> is exempt: "  x" after it becomes ▁▁▁x */
        {" <|endoftext|>  x", true, true, {1, 259, 32000, 259, 921}, 5, "R: <|endoftext|> exempt"},
        /* unknown-type [PAD32011] is special too: parsed (and rstripped) only with parse_special */
        {"[PAD32011]  x", true, true, {1, 32011, 921}, 3, "R: unknown-type tokens rstrip"},
        {"[PAD32011]  x", true, false, {1, 518, 29925, 3035, 29941, 29906, 29900, 29896, 29896, 29962, 29871, 921}, 12,
         "U: unknown not parsed"},
        {"", true, true, {1}, 1, "empty text: only BOS"},
    };
    static const tcase llama_spm[] = {
        /* general.name "llama-spm": no RSTRIP, the ' ' after </s> stays and
         * is prefixed: ▁▁there -> ▁ ▁there */
        {"Hi </s> there", true, true, {1, 6324, 29871, 2, 29871, 727}, 6, "K P: other SPM names keep whitespace"},
        {"Hi</s>there", true, true, {1, 6324, 2, 727}, 4, "P: text after </s> is prefixed"},
    };
    static const tcase gpt2[] = {
        {"Hello <|endoftext|> world", false, true, {15496, 220, 50256, 995}, 4, "B K: spaces kept, no prefix"},
        {"Hello<|endoftext|>world", false, true, {15496, 50256, 6894}, 3, "B: no prefix after a special token"},
        {"Hello<|endoftext|>world", false, false, {15496, 27, 91, 437, 1659, 5239, 91, 29, 6894}, 9,
         "U: control stays text"},
    };
    static const tcase deepseek_llm[] = {
        /* [PAD100015] is user-defined: split even without parse_special */
        {"a[PAD100015]b", true, false, {100000, 64, 100015, 65}, 4, "U B: user-defined token between text"},
        {"a [PAD100015] b", true, false, {100000, 64, 207, 100015, 270}, 5, "U B K: spaces around it kept"},
    };
    static const tcase deepseek_coder[] = {
        /* <｜fim▁begin｜> is user-defined in the file but a FIM_PRE text, so control */
        {"x<\xef\xbd\x9c" "fim\xe2\x96\x81" "begin\xef\xbd\x9c>y", true, true, {32013, 87, 32016, 88}, 4,
         "B: FIM token parsed"},
        {"x<\xef\xbd\x9c" "fim\xe2\x96\x81" "begin\xef\xbd\x9c>y", true, false,
         {32013, 87, 27, 169, 121, 237, 69, 308, 11028, 210, 946, 169, 121, 237, 29, 88}, 16,
         "U: FIM text counts as control"},
    };
    run_cases("vocab/ggml-vocab-phi-3.gguf", phi3, sizeof phi3 / sizeof phi3[0]);
    run_cases("vocab/ggml-vocab-llama-spm.gguf", llama_spm, sizeof llama_spm / sizeof llama_spm[0]);
    run_cases("vocab/ggml-vocab-gpt-2.gguf", gpt2, sizeof gpt2 / sizeof gpt2[0]);
    run_cases("vocab/ggml-vocab-deepseek-llm.gguf", deepseek_llm, sizeof deepseek_llm / sizeof deepseek_llm[0]);
    run_cases("vocab/ggml-vocab-deepseek-coder.gguf", deepseek_coder, sizeof deepseek_coder / sizeof deepseek_coder[0]);

    gguf *g = NULL;
    vocab *v = NULL;
    if (!t_check(gguf_open(&g, t_shared("vocab/ggml-vocab-phi-3.gguf")) == 0 && vocab_load(&v, g) == 0,
                 "tok phi-3 load", "%s", err_msg()))
        goto out;
    int32_t *ids = NULL;
    size_t n = 0;
    int rc = vocab_encode(v, "<|user|>", 8, false, false, &ids, &n);
    bool none = rc == 0 && n > 1;
    for (size_t i = 0; i < n; i++)
        none = none && ids[i] != 32010;
    t_check(none, "tok phi-3 without parse_special the text stays text", "rc %d n %zu", rc, n);
    free(ids);
    char buf[16];
    t_check(vocab_piece(v, -1, 32010, buf, sizeof buf) == 0 && vocab_is_eog(v, 32007) && vocab_is_eog(v, 32000),
            "tok phi-3 control piece empty, <|end|> and eos are eog", "-");
out:
    vocab_free(v);
    gguf_close(g);
}

/* BERT WordPiece (bert-bge, uncased): special ids, [CLS]/[SEP] with
 * add_special, decoded text, the word length limit, special-token parsing,
 * arbitrary bytes. */
static void bert(void)
{
    gguf *g = NULL;
    vocab *v = NULL;
    char got[512];
    if (!t_check(gguf_open(&g, t_shared("vocab/ggml-vocab-bert-bge.gguf")) == 0 && vocab_load(&v, g) == 0,
                 "tok bert-bge load (WordPiece is required)", "%s", err_msg()))
        goto out;
    t_check(vocab_kind_of(v) == VOCAB_WPM && strcmp(vocab_model_name(v), "bert") == 0 && vocab_bos(v) == 101 &&
                vocab_eos(v) == 102 && vocab_add_bos(v) && vocab_add_eos(v),
            "tok bert-bge facts: bert, [CLS] 101 / [SEP] 102 added", "kind %d bos %d eos %d", vocab_kind_of(v),
            vocab_bos(v), vocab_eos(v));
    /* ▁hello ▁, ▁world ▁! with [CLS] ... [SEP] */
    const int32_t hw[] = {101, 7592, 1010, 2088, 999, 102};
    t_check(encode_is(v, "Hello, world!", true, false, hw, 6, got, sizeof got),
            "tok bert-bge add_special wraps in [CLS] [SEP]", "got %s", got);
    const int32_t sp[] = {101, 7592, 102, 100};
    t_check(encode_is(v, "[CLS]hello[SEP] [UNK]", false, true, sp, 4, got, sizeof got),
            "tok bert-bge parse_special keeps [CLS] [SEP] [UNK]", "got %s", got);
    /* decoding: lowercased, accents stripped, a space before each word-initial
     * piece but the first; continuation pieces glue on */
    const char *in = " Hello, WORLD! F\xc3\xbchrer's caf\xc3\xa9\tna\xc3\xafve";
    const char *want = "hello , world ! fuhrer ' s cafe naive";
    int32_t *ids = NULL;
    size_t n_ids = 0, n = 0;
    char *dec = NULL;
    if (vocab_encode(v, in, strlen(in), false, false, &ids, &n_ids) == 0)
        dec = detok(v, ids, n_ids, &n);
    t_check(dec && strcmp(dec, want) == 0, "tok bert-bge decodes to the normalized text", "got '%s'",
            dec ? dec : "(error)");
    free(dec);
    free(ids);
    /* "\xe1\xba\xa0" (Ạ, NFD: A + U+0323) and a decomposed "a\xcc\x81" are both plain a;
     * control characters vanish; CJK ideographs are words of their own */
    const int32_t acc[] = {1037, 1037, 1037, 1855, 1855};
    const char *mix = "\xe1\xba\xa0 a\xcc\x81 \x01\xe2\x80\x8b" "a\xe6\x88\x91\xe6\x88\x91";
    t_check(encode_is(v, mix, false, false, acc, 5, got, sizeof got),
            "tok bert-bge strips accents, drops controls, splits CJK", "got %s", got);
    /* 100 characters still split into pieces; 101 are one [UNK] */
    char word[102];
    memset(word, 'a', sizeof word);
    word[100] = 0;
    if (vocab_encode(v, word, 100, false, false, &ids, &n_ids) == 0) {
        bool pieces = n_ids > 1;
        for (size_t i = 0; i < n_ids; i++)
            pieces = pieces && ids[i] != 100;
        t_check(pieces, "tok bert-bge 100-character word is split into pieces", "%zu ids, first %d", n_ids,
                n_ids ? ids[0] : -1);
    } else {
        t_check(false, "tok bert-bge 100-character word is split into pieces", "%s", err_msg());
    }
    free(ids);
    const int32_t unk[] = {100};
    word[100] = 'a';
    word[101] = 0;
    t_check(encode_is(v, word, false, false, unk, 1, got, sizeof got), "tok bert-bge 101-character word is [UNK]",
            "got %s", got);
    /* arbitrary bytes (invalid UTF-8) always encode and re-encode */
    uint64_t st = 0x2545f4914f6cdd1dULL;
    int good = 0, total = 300;
    for (int it = 0; it < total; it++) {
        char b[48];
        size_t len = (size_t)(it % 48);
        for (size_t i = 0; i < len; i++) {
            st ^= st << 13;
            st ^= st >> 7;
            st ^= st << 17;
            unsigned r = (unsigned)(st >> 40);
            b[i] = (char)(r % 4 == 0 ? ' ' : r % 4 == 1 ? 'a' + (r >> 8) % 26 : (r >> 16) & 0xff);
        }
        if (wpm_reencodes(v, b, len))
            good++;
    }
    t_check(good == total, "tok bert-bge random bytes encode and re-encode", "%d/%d", good, total);
out:
    vocab_free(v);
    gguf_close(g);
}

static void perf(void)
{
    gguf *g = NULL;
    vocab *v = NULL;
    struct timespec t0, t1, t2;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (!t_check(gguf_open(&g, t_shared("vocab/ggml-vocab-deepseek-llm.gguf")) == 0 && vocab_load(&v, g) == 0,
                 "tok perf load deepseek-llm", "%s", err_msg()))
        goto out;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    size_t n_in;
    char *text = read_all(t_shared("vocab/ggml-vocab-deepseek-llm.gguf.inp"), &n_in);
    size_t total = 0, reps = 20;
    bool ok = text != NULL;
    for (size_t r = 0; r < reps && ok; r++) {
        int32_t *ids = NULL;
        size_t n = 0;
        ok = vocab_encode(v, text, n_in, false, false, &ids, &n) == 0;
        total += n;
        free(ids);
    }
    clock_gettime(CLOCK_MONOTONIC, &t2);
    double tl = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    double te = (double)(t2.tv_sec - t1.tv_sec) + 1e-9 * (double)(t2.tv_nsec - t1.tv_nsec);
    printf("INFO tok perf: deepseek-llm (102400 tokens) load %.1f ms, encode %zu bytes x %zu -> %zu ids in %.1f ms\n",
           tl * 1e3, n_in, reps, total, te * 1e3);
    /* generous bounds (sanitizer builds are several times slower) */
    t_check(ok && tl < 3.0 && te < 5.0, "tok perf load and encode are fast", "load %.2fs encode %.2fs", tl, te);
    free(text);
out:
    vocab_free(v);
    gguf_close(g);
}

/* ---- hand-made GGUF images ---- */

typedef struct img {
    unsigned char *b;
    size_t n, cap;
} img;

static void put(img *m, const void *p, size_t n)
{
    if (m->n + n > m->cap) {
        m->cap = (m->n + n) * 2 + 256;
        m->b = realloc(m->b, m->cap);
    }
    memcpy(m->b + m->n, p, n);
    m->n += n;
}
static void put_u32(img *m, uint32_t v) { put(m, &v, 4); }
static void put_u64(img *m, uint64_t v) { put(m, &v, 8); }
static void put_str(img *m, const char *s) { put_u64(m, strlen(s)); put(m, s, strlen(s)); }

enum { BAD_NONE, BAD_BOS, BAD_SCORES_LEN, BAD_TYPES_LEN, BAD_TYPE_VALUE, BAD_MODEL, BAD_NO_MODEL, BAD_PRE, BAD_NO_MERGES,
       BAD_MERGE, BAD_TOKENS_TYPE };

static const char *tiny_pre = "gpt-2";

/* A 6-token vocab: SPM ("llama") or BPE ("gpt2" with pre tiny_pre), corrupted
 * as asked. */
static img make_vocab(bool bpe, int bad)
{
    img m = {0};
    const char *toks_spm[] = {"<unk>", "<s>", "</s>", "\xe2\x96\x81" "a", "a", "\xe2\x96\x81"};
    const char *toks_bpe[] = {"a", "b", "ab", "\xc4\xa0", "\xc4\xa0" "ab", "<|end|>"};
    const char **toks = bpe ? toks_bpe : toks_spm;
    uint64_t nkv = 0;
    img kv = {0};
    if (bad != BAD_NO_MODEL) {
        put_str(&kv, "tokenizer.ggml.model"); put_u32(&kv, GGUF_STRING);
        put_str(&kv, bad == BAD_MODEL ? "no-such-model" : bpe ? "gpt2" : "llama");
        nkv++;
    }
    put_str(&kv, "tokenizer.ggml.tokens"); put_u32(&kv, GGUF_ARRAY);
    if (bad == BAD_TOKENS_TYPE) {
        put_u32(&kv, GGUF_INT32); put_u64(&kv, 6);
        for (int i = 0; i < 6; i++) put_u32(&kv, (uint32_t)i);
    } else {
        put_u32(&kv, GGUF_STRING); put_u64(&kv, 6);
        for (int i = 0; i < 6; i++) put_str(&kv, toks[i]);
    }
    nkv++;
    if (!bpe) {
        put_str(&kv, "tokenizer.ggml.scores"); put_u32(&kv, GGUF_ARRAY); put_u32(&kv, GGUF_FLOAT32);
        uint64_t ns = bad == BAD_SCORES_LEN ? 5 : 6;
        put_u64(&kv, ns);
        for (uint64_t i = 0; i < ns; i++) {
            float f = -(float)i;
            put(&kv, &f, 4);
        }
        nkv++;
    }
    put_str(&kv, "tokenizer.ggml.token_type"); put_u32(&kv, GGUF_ARRAY); put_u32(&kv, GGUF_INT32);
    uint64_t nt = bad == BAD_TYPES_LEN ? 7 : 6;
    put_u64(&kv, nt);
    for (uint64_t i = 0; i < nt; i++) {
        uint32_t t = bpe ? (i == 5 ? 3 : 1) : (i == 0 ? 2 : i < 3 ? 3 : 1);
        if (bad == BAD_TYPE_VALUE && i == 4)
            t = 77;
        put_u32(&kv, t);
    }
    nkv++;
    put_str(&kv, "tokenizer.ggml.bos_token_id"); put_u32(&kv, GGUF_UINT32);
    put_u32(&kv, bad == BAD_BOS ? 6 : bpe ? 5 : 1);
    nkv++;
    if (bpe) {
        put_str(&kv, "tokenizer.ggml.pre"); put_u32(&kv, GGUF_STRING);
        put_str(&kv, bad == BAD_PRE ? "no-such-pre" : tiny_pre);
        nkv++;
        if (bad != BAD_NO_MERGES) {
            put_str(&kv, "tokenizer.ggml.merges"); put_u32(&kv, GGUF_ARRAY); put_u32(&kv, GGUF_STRING);
            put_u64(&kv, 2);
            put_str(&kv, bad == BAD_MERGE ? "ab" : "a b");
            put_str(&kv, "\xc4\xa0 ab");
            nkv++;
        }
    }
    put(&m, "GGUF", 4); put_u32(&m, 3); put_u64(&m, 0); put_u64(&m, nkv);
    put(&m, kv.b, kv.n);
    free(kv.b);
    return m;
}

static void corrupted(void)
{
    struct {
        bool bpe;
        int bad, want;
        const char *name;
    } cases[] = {
        {false, BAD_NONE, 0, "tok tiny spm vocab loads"},
        {true, BAD_NONE, 0, "tok tiny bpe vocab loads"},
        {false, BAD_BOS, SOV_EFORMAT, "tok bos id out of range is EFORMAT"},
        {true, BAD_BOS, SOV_EFORMAT, "tok bpe bos id out of range is EFORMAT"},
        {false, BAD_SCORES_LEN, SOV_EFORMAT, "tok scores length mismatch is EFORMAT"},
        {false, BAD_TYPES_LEN, SOV_EFORMAT, "tok token_type length mismatch is EFORMAT"},
        {false, BAD_TYPE_VALUE, SOV_EFORMAT, "tok bad token_type value is EFORMAT"},
        {false, BAD_TOKENS_TYPE, SOV_EFORMAT, "tok tokens not strings is EFORMAT"},
        {false, BAD_MODEL, SOV_EUNSUPPORTED, "tok unknown model is EUNSUPPORTED"},
        {false, BAD_NO_MODEL, SOV_ENOTFOUND, "tok no tokenizer is ENOTFOUND"},
        {true, BAD_PRE, SOV_EUNSUPPORTED, "tok unknown pre is EUNSUPPORTED"},
        {true, BAD_NO_MERGES, SOV_EFORMAT, "tok gpt2 without merges is EFORMAT"},
        {true, BAD_MERGE, SOV_EFORMAT, "tok malformed merge is EFORMAT"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        img m = make_vocab(cases[c].bpe, cases[c].bad);
        gguf *g = NULL;
        vocab *v = NULL;
        int rc = gguf_open_mem(&g, m.b, m.n);
        if (rc == 0)
            rc = vocab_load(&v, g);
        bool ok = rc == cases[c].want && (rc != 0 || v != NULL) && (rc == 0 || v == NULL);
        if (ok && rc == 0) {
            /* " a a" -> SPM: ▁a ▁a ▁ ... ; BPE: "ab ab<|end|>" -> ab Ġab <|end|> */
            int32_t *ids = NULL;
            size_t n = 0;
            if (cases[c].bpe) {
                const int32_t want[] = {2, 4, 5};
                rc = vocab_encode(v, "ab ab<|end|>", 12, false, true, &ids, &n);
                ok = rc == 0 && n == 3 && memcmp(ids, want, sizeof want) == 0 && !vocab_add_bos(v) &&
                     vocab_bos(v) == 5 && vocab_kind_of(v) == VOCAB_BPE;
            } else {
                const int32_t want[] = {1, 3, 3};
                rc = vocab_encode(v, "a a", 3, true, false, &ids, &n);
                ok = rc == 0 && n == 3 && memcmp(ids, want, sizeof want) == 0;
            }
            free(ids);
        }
        t_check(ok, cases[c].name, "rc %d (%s) want %d: %s", rc, err_name(rc), cases[c].want, err_msg());
        vocab_free(v);
        gguf_close(g);
        free(m.b);
    }
}

/* An 11-token SPM vocab for the name-keyed strip rules: 0 <unk> (unknown),
 * 1 <s>, 2 </s> (control), 3 ▁, 4 a, 5 ▁a, 6 <mask>, 7 [MASK] (user-defined),
 * 8 <|channel|>, 9 <|x|>, 10 <|endoftext|> (control); general.name /
 * general.architecture as given (NULL: absent). It has every token the
 * phi-3 rule names (llama.cpp refuses a phi-3-named vocab without them). */
static img make_named_spm(const char *name, const char *arch)
{
    static const char *const toks[] = {"<unk>", "<s>", "</s>", "\xe2\x96\x81", "a", "\xe2\x96\x81" "a",
                                       "<mask>", "[MASK]", "<|channel|>", "<|x|>", "<|endoftext|>"};
    static const uint32_t types[] = {2, 3, 3, 1, 1, 1, 4, 4, 3, 3, 3};
    enum { NT = sizeof types / sizeof types[0] };
    img m = {0}, kv = {0};
    uint64_t nkv = 0;
    put_str(&kv, "tokenizer.ggml.model"); put_u32(&kv, GGUF_STRING); put_str(&kv, "llama"); nkv++;
    put_str(&kv, "tokenizer.ggml.tokens"); put_u32(&kv, GGUF_ARRAY); put_u32(&kv, GGUF_STRING); put_u64(&kv, NT);
    for (int i = 0; i < NT; i++) put_str(&kv, toks[i]);
    nkv++;
    put_str(&kv, "tokenizer.ggml.scores"); put_u32(&kv, GGUF_ARRAY); put_u32(&kv, GGUF_FLOAT32); put_u64(&kv, NT);
    for (int i = 0; i < NT; i++) {
        float f = -(float)i;
        put(&kv, &f, 4);
    }
    nkv++;
    put_str(&kv, "tokenizer.ggml.token_type"); put_u32(&kv, GGUF_ARRAY); put_u32(&kv, GGUF_INT32); put_u64(&kv, NT);
    for (int i = 0; i < NT; i++) put_u32(&kv, types[i]);
    nkv++;
    if (name) {
        put_str(&kv, "general.name"); put_u32(&kv, GGUF_STRING); put_str(&kv, name); nkv++;
    }
    if (arch) {
        put_str(&kv, "general.architecture"); put_u32(&kv, GGUF_STRING); put_str(&kv, arch); nkv++;
    }
    put(&m, "GGUF", 4); put_u32(&m, 3); put_u64(&m, 0); put_u64(&m, nkv);
    put(&m, kv.b, kv.n);
    free(kv.b);
    return m;
}

/* llama.cpp sets LSTRIP/RSTRIP by name (llama_vocab::impl::load, "Handle per
 * token attributes"), checked on make_named_spm (add_special off):
 *  L  tokenizer.ggml.pre containing jina-v2-de/-es/-code or
 *     general.architecture containing nomic-bert-moe/jina-bert-v3: <mask>
 *     gets LSTRIP, which drops the isspace() bytes before it from the text
 *     on its left (only when text is there: a fragment emptied by it is gone);
 *  M  else general.name, lowercased, containing modern-bert: [MASK] gets LSTRIP;
 *  R  else a name containing phi-3 / phi3 (any case): RSTRIP on all special
 *     tokens but <unk>, <s>, <|endoftext|>;
 *  G  <|channel|> (gpt-oss) is made plain user-defined whatever its type,
 *     so it is split out without parse_special; control <|x|> is not;
 *  P  the SPM prefix: first fragment, or one after any special token. */
static void strip_rules(void)
{
    struct {
        const char *name, *arch, *text;
        bool parse_special;
        int32_t want[8];
        size_t n;
        const char *rule;
    } c[] = {
        {NULL, "nomic-bert-moe", "a <mask> a", false, {5, 6, 3, 5}, 4, "L: ' ' before <mask> dropped, after kept"},
        {NULL, "nomic-bert-moe", "a \t\n<mask>a", false, {5, 6, 5}, 3, "L P: all whitespace before it dropped"},
        {NULL, "nomic-bert-moe", " <mask>a", false, {6, 5}, 2, "L P: emptied fragment vanishes"},
        {NULL, "nomic-bert-moe", "a [MASK]", false, {5, 3, 7}, 3, "L: [MASK] not stripped there"},
        {NULL, "llama", "a <mask> a", false, {5, 3, 6, 3, 5}, 5, "no rule: whitespace kept on both sides"},
        {"Modern-BERT-base", NULL, "a [MASK]", false, {5, 7}, 2, "M: name lowercased"},
        {"Modern-BERT-base", NULL, "a <mask>", false, {5, 3, 6}, 3, "M: <mask> not stripped there"},
        {"Phi-3-mini-4k", NULL, "<|x|> a", true, {9, 5}, 2, "R P: control token rstrips"},
        {"Phi-3-mini-4k", NULL, "<mask>  a", false, {6, 5}, 2, "R P: user-defined token rstrips"},
        {"Phi-3-mini-4k", NULL, "<s> a", true, {1, 3, 5}, 3, "R P: <s> exempt"},
        {"Phi-3-mini-4k", NULL, "<|endoftext|> a", true, {10, 3, 5}, 3, "R P: <|endoftext|> exempt"},
        {"Phi-3-mini-4k", NULL, "</s> a", true, {2, 5}, 2, "R P: </s> rstrips"},
        {"Phi-3-mini-4k", NULL, "a <mask>", false, {5, 3, 6}, 3, "R: no LSTRIP"},
        {"other", NULL, "<|x|> a", true, {9, 3, 5}, 3, "no rule: other names keep it"},
        {NULL, NULL, "a<|channel|>a", false, {5, 8, 5}, 3, "G P: <|channel|> user-defined"},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        img m = make_named_spm(c[i].name, c[i].arch);
        gguf *g = NULL;
        vocab *v = NULL;
        char name[300], got[256], q[64];
        fmt_str(q, sizeof q, c[i].text, strlen(c[i].text));
        snprintf(name, sizeof name, "tok strip name=%s arch=%s \"%s\": %s", c[i].name ? c[i].name : "-",
                 c[i].arch ? c[i].arch : "-", q, c[i].rule);
        bool ok = gguf_open_mem(&g, m.b, m.n) == 0 && vocab_load(&v, g) == 0;
        if (!ok)
            snprintf(got, sizeof got, "load: %s", err_msg());
        else
            ok = encode_is(v, c[i].text, false, c[i].parse_special, c[i].want, c[i].n, got, sizeof got);
        t_check(ok, name, "got %s", got);
        vocab_free(v);
        gguf_close(g);
        free(m.b);
    }
    /* control <|x|> stays text without parse_special: no id 9 */
    img m = make_named_spm(NULL, NULL);
    gguf *g = NULL;
    vocab *v = NULL;
    int32_t *ids = NULL;
    size_t n = 0;
    bool ok = gguf_open_mem(&g, m.b, m.n) == 0 && vocab_load(&v, g) == 0 &&
              vocab_encode(v, "a<|x|>", 6, false, false, &ids, &n) == 0 && n > 2;
    for (size_t i = 0; ok && i < n; i++)
        ok = ids[i] != 9;
    t_check(ok, "tok strip control <|x|> stays text without parse_special", "n %zu", n);
    free(ids);
    vocab_free(v);
    gguf_close(g);
    free(m.b);
}

/* Every supported pre-tokenizer name compiles and tokenizes. */
static void pre_names(void)
{
    const char *names[] = {"default", "gpt-2", "mpt", "starcoder", "refact", "command-r", "falcon", "deepseek-llm",
                           "deepseek-coder", "deepseek-v3", "llama3", "llama-bpe", "dbrx", "smaug-bpe", "qwen2",
                           "deepseek-r1-qwen", "poro-chat", "bloom", "viking", "olmo", "jais", "roberta-bpe"};
    int ok = 0;
    const char *bad = NULL;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        tiny_pre = names[i];
        img m = make_vocab(true, BAD_NONE);
        gguf *g = NULL;
        vocab *v = NULL;
        int32_t *ids = NULL;
        size_t n = 0;
        if (gguf_open_mem(&g, m.b, m.n) == 0 && vocab_load(&v, g) == 0 &&
            vocab_encode(v, "ab ab<|end|>", 12, false, true, &ids, &n) == 0 && n >= 3 && ids[n - 1] == 5 &&
            strcmp(vocab_pre_name(v), names[i]) == 0)
            ok++;
        else if (!bad)
            bad = names[i];
        free(ids);
        vocab_free(v);
        gguf_close(g);
        free(m.b);
    }
    tiny_pre = "gpt-2";
    char name[80];
    snprintf(name, sizeof name, "tok %d pre-tokenizer names load and encode", ok);
    t_check(bad == NULL, name, "'%s' failed: %s", bad ? bad : "", err_msg());
}

/* Arbitrary bytes (invalid UTF-8 included) come back exactly. */
static void random_bytes(void)
{
    /* gpt-2 and SPM byte fallback cover every byte; mpt and deepseek-llm
     * have no token for the bytes that never occur in UTF-8 (c0 c1 f5..ff) */
    const char *files[] = {"vocab/ggml-vocab-gpt-2.gguf", "vocab/ggml-vocab-llama-spm.gguf",
                           "vocab/ggml-vocab-mpt.gguf", "vocab/ggml-vocab-deepseek-llm.gguf"};
    const bool all_bytes[] = {true, true, false, false};
    uint64_t st = 0x1234567887654321ULL;
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        gguf *g = NULL;
        vocab *v = NULL;
        int good = 0, total = 200;
        char name[160];
        snprintf(name, sizeof name, "tok random bytes round trip %s", files[f]);
        if (gguf_open(&g, t_shared(files[f])) < 0 || vocab_load(&v, g) < 0) {
            t_check(false, name, "load: %s", err_msg());
            goto next;
        }
        for (int it = 0; it < total; it++) {
            char in[64];
            size_t len = (size_t)(it % 40);
            for (size_t i = 0; i < len; i++) {
                st ^= st << 13;
                st ^= st >> 7;
                st ^= st << 17;
                /* mostly high bytes and spaces: invalid and split UTF-8 */
                unsigned r = (unsigned)(st >> 40);
                unsigned char c = r % 3 == 0 ? ' ' : r % 3 == 1 ? (unsigned char)(0x80 | (r >> 8)) : (unsigned char)(r >> 16);
                if (!all_bytes[f] && (c == 0xc0 || c == 0xc1 || c >= 0xf5))
                    c = 0xe4;
                in[i] = (char)c;
            }
            int32_t *ids = NULL;
            size_t n_ids = 0, n = 0;
            char *out = NULL;
            if (vocab_encode(v, in, len, false, false, &ids, &n_ids) == 0)
                out = detok(v, ids, n_ids, &n);
            /* SPM turns U+2581 in the input into a space: skip such inputs */
            bool has_2581 = memmem(in, len, "\xe2\x96\x81", 3) != NULL;
            if (has_2581 || (out && n == len && memcmp(out, in, len) == 0))
                good++;
            free(out);
            free(ids);
        }
        t_check(good == total, name, "%d/%d", good, total);
    next:
        vocab_free(v);
        gguf_close(g);
    }
}

/* falcon's vocab has no token for some control bytes (and no unk): such
 * input is an error, not silently dropped. */
static void unencodable(void)
{
    gguf *g = NULL;
    vocab *v = NULL;
    int32_t *ids = NULL;
    size_t n = 0;
    int rc = SOV_OK;
    if (gguf_open(&g, t_shared("vocab/ggml-vocab-falcon.gguf")) == 0 && vocab_load(&v, g) == 0)
        rc = vocab_encode(v, "a\x03" "b", 3, false, false, &ids, &n);
    t_check(v && rc == SOV_EFORMAT && ids == NULL && n == 0, "tok falcon byte 0x03 is unencodable (EFORMAT)",
            "rc %d: %s", rc, err_msg());
    free(ids);
    vocab_free(v);
    gguf_close(g);
}

/* Random byte corruption of real vocab metadata: never a crash. */
static void fuzz(void)
{
    size_t n;
    char *orig = read_all(t_shared("models/stories260K.gguf"), &n);
    if (!t_check(orig != NULL, "tok fuzz input", "cannot read stories260K.gguf"))
        return;
    /* metadata lies before the tensor infos; corrupt only the first 12 KiB */
    size_t span = n < 12288 ? n : 12288;
    unsigned char *buf = malloc(n);
    memcpy(buf, orig, n);
    uint64_t st = 0x9e3779b97f4a7c15ULL;
    int loaded = 0, iters = getenv("SOV_SANITIZED") ? 300 : 1500;
    for (int it = 0; it < iters; it++) {
        size_t pos[4];
        int k = 1 + it % 4;
        for (int j = 0; j < k; j++) {
            st ^= st << 13;
            st ^= st >> 7;
            st ^= st << 17;
            pos[j] = (size_t)(st % span);
            buf[pos[j]] = (unsigned char)(st >> 32);
        }
        gguf *g = NULL;
        vocab *v = NULL;
        if (gguf_open_mem(&g, buf, n) == 0 && vocab_load(&v, g) == 0) {
            loaded++;
            int32_t *ids = NULL;
            size_t nid = 0;
            if (vocab_encode(v, "Once upon a time <s> \xf0\x9f\x98\x81", 25, true, true, &ids, &nid) == 0) {
                char pb[32];
                for (size_t i = 0; i < nid; i++)
                    vocab_piece(v, i ? ids[i - 1] : -1, ids[i], pb, sizeof pb);
            }
            free(ids);
            for (int32_t id = 0; id < vocab_n_tokens(v); id += 7) {
                char pb[4];
                vocab_piece(v, -1, id, pb, sizeof pb);
            }
        }
        vocab_free(v);
        gguf_close(g);
        for (int j = 0; j < k; j++)
            buf[pos[j]] = (unsigned char)orig[pos[j]];
    }
    char name[96];
    snprintf(name, sizeof name, "tok fuzz %d corrupted metadata images without a crash", iters);
    t_check(loaded > 0, name, "none of the images loaded (the test exercised nothing)");
    free(buf);
    free(orig);

    /* the same on the tiny BPE image, every byte may change */
    img m = make_vocab(true, BAD_NONE);
    unsigned char *cp = malloc(m.n);
    memcpy(cp, m.b, m.n);
    loaded = 0;
    int failed = 0;
    for (int it = 0; it < iters; it++) {
        size_t pos[3];
        int k = 1 + it % 3;
        for (int j = 0; j < k; j++) {
            st ^= st << 13;
            st ^= st >> 7;
            st ^= st << 17;
            pos[j] = (size_t)(st % m.n);
            cp[pos[j]] = (unsigned char)(st >> 32);
        }
        gguf *g = NULL;
        vocab *v = NULL;
        if (gguf_open_mem(&g, cp, m.n) == 0) {
            if (vocab_load(&v, g) == 0) {
                loaded++;
                int32_t *ids = NULL;
                size_t nid = 0;
                if (vocab_encode(v, "ab ab<|end|> \xff\xc4", 15, true, true, &ids, &nid) == 0) {
                    char pb[8];
                    for (size_t i = 0; i < nid; i++)
                        vocab_piece(v, -1, ids[i], pb, sizeof pb);
                }
                free(ids);
            } else {
                failed++;
            }
        }
        vocab_free(v);
        gguf_close(g);
        memcpy(cp, m.b, m.n);
    }
    snprintf(name, sizeof name, "tok fuzz %d corrupted tiny BPE images without a crash", iters);
    t_check(loaded > 0 && failed > 0, name, "loaded %d rejected %d", loaded, failed);
    free(cp);
    free(m.b);

    /* the WordPiece loader and encoder on corrupted bert-bge images: half the
     * changes in the first 4 KiB (model name, special ids, first tokens) */
    size_t bn;
    char *bo = read_all(t_shared("vocab/ggml-vocab-bert-bge.gguf"), &bn);
    if (!t_check(bo != NULL && bn > 8192, "tok fuzz bert-bge input", "cannot read ggml-vocab-bert-bge.gguf"))
        return;
    unsigned char *bb = malloc(bn);
    memcpy(bb, bo, bn);
    int biters = getenv("SOV_SANITIZED") ? 150 : 600, bloaded = 0, bwpm = 0, bfailed = 0;
    for (int it = 0; it < biters; it++) {
        size_t pos[3];
        int k = 1 + it % 3;
        for (int j = 0; j < k; j++) {
            st ^= st << 13;
            st ^= st >> 7;
            st ^= st << 17;
            pos[j] = (size_t)(st % (it % 2 ? 4096 : bn));
            bb[pos[j]] = (unsigned char)(st >> 32);
        }
        gguf *g = NULL;
        vocab *v = NULL;
        if (gguf_open_mem(&g, bb, bn) == 0 && vocab_load(&v, g) == 0) {
            bloaded++;
            bwpm += vocab_kind_of(v) == VOCAB_WPM;
            int32_t *ids = NULL;
            size_t nid = 0;
            if (vocab_encode(v, "[CLS] F\xc3\xbchrer, y'all \xe6\x88\x91 \xff", 21, true, true, &ids, &nid) == 0) {
                char pb[8];
                for (size_t i = 0; i < nid; i++)
                    vocab_piece(v, i ? ids[i - 1] : -1, ids[i], pb, sizeof pb);
            }
            free(ids);
        } else {
            bfailed++;
        }
        vocab_free(v);
        gguf_close(g);
        memcpy(bb, bo, bn);
    }
    snprintf(name, sizeof name, "tok fuzz %d corrupted bert-bge images without a crash", biters);
    t_check(bwpm > 0 && bfailed > 0, name, "loaded %d (WordPiece %d) rejected %d", bloaded, bwpm, bfailed);
    free(bb);
    free(bo);
}

int main(void)
{
    vocab_vectors();
    model_prompts();
    specials();
    corrupted();
    strip_rules();
    pre_names();
    random_bytes();
    unencodable();
    bert();
    fuzz();
    perf();
    return t_done();
}
