/* fuzz_gguf: libFuzzer entry point for the GGUF -> model -> forward and
 * GGUF -> tokenizer load chains (see tests/fuzz/README.md).
 *
 * libFuzzer hands over a heap buffer of exactly `size` bytes, so ASan sees
 * any read past the image. Every step must succeed or fail with a negative
 * code and a non-empty message; a loaded model must evaluate tokens and a
 * loaded tokenizer must encode and decode text. Anything else traps, and
 * libFuzzer saves the input as a crash artifact. */
#include "base/err.h"
#include "engine/forward.h"
#include "format/gguf.h"
#include "engine/model.h"
#include "tok/vocab.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what, int rc)
{
    fprintf(stderr, "fuzz_gguf: %s (rc %d, message \"%s\")\n", what, rc, err_msg());
    __builtin_trap();
}

static void err_reset(void) { err_set(SOV_OK, "%s", ""); }

/* rc must be 0 or negative with a message; returns true on success. */
static int ok_or_clean(const char *what, int rc)
{
    if (rc == 0)
        return 1;
    if (rc > 0 || !err_msg()[0])
        fail(what, rc);
    return 0;
}

static void use_vocab(const vocab *v)
{
    int32_t n = vocab_n_tokens(v), bos = vocab_bos(v), eos = vocab_eos(v);
    if (n <= 0 || bos < -1 || bos >= n || eos < -1 || eos >= n)
        fail("vocab with inconsistent token count or special ids", n);
    static const char *const texts[] = {
        "Hello world! It's 2024, na\xc3\xafve \xe6\x9d\xb1\xe4\xba\xac <s></s><|endoftext|>\n\t end",
        "\xe2\x96\x81 <0x41> \xff\xfe\xc3 \xed\xa0\x80 12345678 ...",
    };
    for (size_t t = 0; t < sizeof texts / sizeof texts[0]; t++) {
        int32_t *ids = NULL;
        size_t nid = 0;
        err_reset();
        int rc = vocab_encode(v, texts[t], strlen(texts[t]), t == 0, t == 0, &ids, &nid);
        if (ok_or_clean("vocab_encode", rc)) {
            char piece[16];
            for (size_t i = 0; i < nid; i++) {
                if (ids[i] < 0 || ids[i] >= n)
                    fail("vocab_encode produced an id out of range", ids[i]);
                int k = vocab_piece(v, i ? ids[i - 1] : -1, ids[i], piece, sizeof piece);
                if (k < 0)
                    fail("vocab_piece failed for an id in range", k);
                if ((size_t)k > sizeof piece) {
                    char *big = malloc((size_t)k);
                    if (big && vocab_piece(v, i ? ids[i - 1] : -1, ids[i], big, (size_t)k) != k)
                        fail("vocab_piece length changed with a bigger buffer", k);
                    free(big);
                }
                (void)vocab_is_eog(v, ids[i]);
            }
        }
        free(ids);
    }
    char piece[64];
    int32_t probe[] = {0, n - 1, n / 2, bos, eos};
    for (size_t i = 0; i < sizeof probe / sizeof probe[0]; i++) {
        if (probe[i] < 0)
            continue;
        size_t len;
        (void)vocab_token_text(v, probe[i], &len);
        if (vocab_piece(v, -1, probe[i], piece, sizeof piece) < 0)
            fail("vocab_piece failed for an id in range", probe[i]);
    }
}

static void use_model(const model *m)
{
    forward *f = NULL;
    err_reset();
    int rc = forward_new(&f, m, 8, 1, NULL);
    if (rc)
        fail("forward_new failed on a validated model", rc);
    int32_t tok[2] = {0, m->hp.n_vocab - 1}, pos[2] = {0, 1};
    if (m->vocab && vocab_bos(m->vocab) >= 0)
        tok[0] = vocab_bos(m->vocab);
    forward_batch b = {.n = 2, .token = tok, .pos = pos};
    err_reset();
    rc = forward_decode(f, &b);
    if (rc)
        fail("forward_decode failed on a validated model", rc);
    if (!forward_logits(f, 0))
        fail("no logits after forward_decode", 0);
    (void)model_weight_bytes(m);
    forward_free(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gguf *g = NULL;
    err_reset();
    int rc = gguf_open_mem(&g, data, size);
    if (!ok_or_clean("gguf_open_mem", rc)) {
        if (g)
            fail("gguf_open_mem failed but set *out", rc);
        return 0;
    }
    /* both ownership paths of model_from_gguf, chosen by the input */
    int own = size & 1;
    model *m = NULL;
    err_reset();
    rc = model_from_gguf(&m, g, own);
    if (ok_or_clean("model_from_gguf", rc)) {
        use_model(m);
        if (m->vocab)
            use_vocab(m->vocab);
        model_free(m);
        if (!own)
            gguf_close(g);
        return 0;
    }
    if (own && gguf_open_mem(&g, data, size) != 0)
        fail("the input parsed once and then not", 0);
    vocab *v = NULL;
    err_reset();
    rc = vocab_load(&v, g);
    if (ok_or_clean("vocab_load", rc)) {
        use_vocab(v);
        vocab_free(v);
    }
    gguf_close(g);
    return 0;
}
