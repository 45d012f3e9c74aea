/* tok_wpm: BERT WordPiece (see tok_wpm.h). */
#include "tok_wpm.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <unicase.h>
#include <unictype.h>
#include <uninorm.h>
#include <unistr.h>

#include "../base/err.h"

static const char WORD_MARK[] = "\xe2\x96\x81"; /* U+2581, prefix of word-initial pieces */

static bool is_space(ucs4_t c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || uc_is_general_category(c, UC_CATEGORY_Z);
}

/* Dropped by the cleanup: NUL, U+FFFD, control, format, surrogate and
 * private-use characters (whitespace was handled before). */
static bool is_dropped(ucs4_t c)
{
    return c == 0 || c == 0xFFFD || uc_is_general_category(c, UC_CATEGORY_Cc) ||
           uc_is_general_category(c, UC_CATEGORY_Cf) || uc_is_general_category(c, UC_CATEGORY_Co) ||
           uc_is_general_category(c, UC_CATEGORY_Cs);
}

/* Punctuation as BERT splits it: every ASCII non-alphanumeric printable
 * character (symbols included) and Unicode category P. */
static bool is_punct(ucs4_t c)
{
    if (c < 0x80)
        return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126);
    return uc_is_general_category(c, UC_CATEGORY_P);
}

/* CJK Unified Ideographs blocks (and compatibility ideographs) as BERT
 * defines them; Hiragana, Katakana and Hangul are not included. */
static bool is_cjk(ucs4_t c)
{
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
           (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

static int push_unk(const wpm_vocab *w, tok_ids *out)
{
    if (w->unk < 0)
        return err_set(SOV_EFORMAT, "wpm: a word has no WordPiece tokenization and the vocab has no unknown token");
    return tok_ids_push(out, w->unk);
}

/* Greedy longest-match-first WordPiece of one normalized word cp[0..n). */
static int encode_word(const wpm_vocab *w, const uint32_t *cp, size_t n, tok_ids *out)
{
    if (n == 0)
        return 0;
    if (n > WPM_MAX_WORD_CHARS)
        return push_unk(w, out);
    uint8_t buf[3 + 4 * WPM_MAX_WORD_CHARS];
    size_t off[WPM_MAX_WORD_CHARS + 1]; /* byte offset of character i in buf */
    memcpy(buf, WORD_MARK, 3);
    size_t o = 3;
    for (size_t i = 0; i < n; i++) {
        off[i] = o;
        int k = u8_uctomb(buf + o, cp[i], (ptrdiff_t)(sizeof buf - o));
        if (k <= 0) /* not a Unicode scalar value: cannot be in any token */
            return push_unk(w, out);
        o += (size_t)k;
    }
    off[n] = o;
    size_t first = out->n;
    size_t s = 0;
    while (s < n) {
        /* the first piece includes the word mark; a continuation piece
         * starting with U+2581 would be confused with a word-initial one */
        size_t from = s ? off[s] : 0;
        int32_t id = -1;
        size_t e = n;
        if (!(s > 0 && cp[s] == 0x2581)) {
            for (; e > s; e--) {
                size_t plen = off[e] - from;
                if (plen > w->max_piece)
                    continue;
                id = tok_map_find(w->map, (const char *)buf + from, plen);
                if (id >= 0)
                    break;
            }
        }
        if (id < 0) {
            out->n = first; /* the whole word becomes unk */
            return push_unk(w, out);
        }
        int rc = tok_ids_push(out, id);
        if (rc < 0)
            return rc;
        s = e;
    }
    return 0;
}

int wpm_encode(const wpm_vocab *w, const char *text, size_t len, tok_ids *out)
{
    int rc = 0;
    uint32_t *a = NULL, *b = NULL;
    if (len == 0)
        return 0;
    if (len > SIZE_MAX / (3 * sizeof *a))
        return err_set(SOV_ENOMEM, "wpm: text of %zu bytes is too long", len);
    /* cleanup and CJK isolation: every byte gives at most one character,
     * an ideograph three (space, ideograph, space) */
    a = malloc(3 * len * sizeof *a);
    if (!a)
        return err_set(SOV_ENOMEM, "wpm: out of memory for %zu bytes of text", len);
    size_t na = 0;
    const uint8_t *s = (const uint8_t *)text;
    for (size_t i = 0; i < len;) {
        ucs4_t c;
        int k = u8_mbtouc(&c, s + i, len - i); /* invalid bytes: U+FFFD, k >= 1 */
        i += k > 0 ? (size_t)k : 1;
        if (is_space(c)) {
            a[na++] = ' ';
        } else if (is_dropped(c)) {
            continue;
        } else if (is_cjk(c)) {
            a[na++] = ' ';
            a[na++] = c;
            a[na++] = ' ';
        } else {
            a[na++] = c;
        }
    }
    if (na == 0)
        goto done;
    /* lowercase (full mapping), then canonical decomposition */
    size_t nb = 0;
    errno = 0;
    b = u32_tolower(a, na, NULL, UNINORM_NFD, NULL, &nb);
    if (!b) {
        rc = errno == ENOMEM ? err_set(SOV_ENOMEM, "wpm: out of memory normalizing %zu characters", na)
                             : err_set(SOV_EFORMAT, "wpm: cannot normalize the text (errno %d)", errno);
        goto fail;
    }
    /* drop non-spacing marks; split on whitespace and punctuation. Words are
     * compacted into b in place (the write index never passes the read one). */
    size_t ws = 0, wn = 0;
    for (size_t i = 0; i < nb; i++) {
        ucs4_t c = b[i];
        if (is_space(c) || is_punct(c)) {
            if ((rc = encode_word(w, b + ws, wn - ws, out)) < 0)
                goto fail;
            if (!is_space(c) && (rc = encode_word(w, &c, 1, out)) < 0)
                goto fail;
            ws = wn;
        } else if (!uc_is_general_category(c, UC_CATEGORY_Mn)) {
            b[wn++] = c;
        }
    }
    if ((rc = encode_word(w, b + ws, wn - ws, out)) < 0)
        goto fail;
done:
    free(a);
    free(b);
    return 0;
fail:
    free(a);
    free(b);
    return rc;
}
