/* test_store: the models folder (paths, names, list, remove, resolve), the
 * hf:// and URL mapping of sov pull, sha256 parsing, what sov ls reads from
 * a GGUF header (checked against the planner's own count), and the
 * progress bar's text, drawing, threads and silence off a terminal. */
#include "t.h"

#include "base/err.h"
#include "base/progress.h"
#include "plan/gguf.h"
#include "store/pull.h"
#include "store/source.h"
#include "store/store.h"
#include "store/store_meta.h"

#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char tmp[256];

static void touch(const char *name, size_t bytes)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", tmp, name);
    FILE *f = fopen(p, "wb");
    for (size_t i = 0; f && i < bytes; i++)
        fputc('x', f);
    if (f)
        fclose(f);
}

static bool exists(const char *name)
{
    char p[512];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", tmp, name);
    return stat(p, &st) == 0;
}

static void clear_env(void)
{
    unsetenv("SOV_HF_ENDPOINT");
    unsetenv("HF_ENDPOINT");
}

static void check_src(const char *name, const char *src, const char *url, const char *file)
{
    source s;
    int rc = source_parse(src, &s);
    t_check(rc == 0 && !strcmp(s.url, url) && !strcmp(s.file, file), name, "rc %d url '%s' file '%s' (want '%s' '%s')",
            rc, rc ? "" : s.url, rc ? "" : s.file, url, file);
}

static void check_src_err(const char *name, const char *src, const char *want)
{
    source s;
    int rc = source_parse(src, &s);
    t_check(rc == SOV_EINVAL && strstr(err_msg(), want), name, "rc %d, message '%s' (want '%s')", rc, err_msg(), want);
}

static void test_source(void)
{
    clear_env();
    check_src("hf: default endpoint, main", "hf://TheBloke/Llama-2-7B-GGUF/llama-2-7b.Q4_0.gguf",
              "https://huggingface.co/TheBloke/Llama-2-7B-GGUF/resolve/main/llama-2-7b.Q4_0.gguf", "llama-2-7b.Q4_0.gguf");
    check_src("hf: @revision", "hf://org/repo/m.gguf@v1.0", "https://huggingface.co/org/repo/resolve/v1.0/m.gguf",
              "m.gguf");
    check_src("hf: revision with '/' is encoded", "hf://org/repo/m.gguf@refs/pr/1",
              "https://huggingface.co/org/repo/resolve/refs%2Fpr%2F1/m.gguf", "m.gguf");
    check_src("hf: file in a subfolder", "hf://org/repo/Q4_K_M/part a.gguf",
              "https://huggingface.co/org/repo/resolve/main/Q4_K_M/part%20a.gguf", "part a.gguf");
    setenv("HF_ENDPOINT", "https://hf-mirror.example", 1);
    check_src("hf: HF_ENDPOINT", "hf://o/r/f.gguf", "https://hf-mirror.example/o/r/resolve/main/f.gguf", "f.gguf");
    setenv("SOV_HF_ENDPOINT", "http://127.0.0.1:9/", 1);
    check_src("hf: SOV_HF_ENDPOINT wins, trailing / dropped", "hf://o/r/f.gguf",
              "http://127.0.0.1:9/o/r/resolve/main/f.gguf", "f.gguf");
    check_src("url: a hub page (blob) becomes resolve", "http://127.0.0.1:9/o/r/blob/main/f.gguf",
              "http://127.0.0.1:9/o/r/resolve/main/f.gguf", "f.gguf");
    source s;
    int rc = source_parse("http://127.0.0.1:9/o/r/resolve/main/f.gguf", &s);
    t_check(rc == 0 && s.hub, "url: on the endpoint is hub", "rc %d", rc);
    clear_env();
    rc = source_parse("https://example.com/x/y.gguf", &s);
    t_check(rc == 0 && !s.hub, "url: elsewhere is not hub", "rc %d", rc);
    check_src("url: query and fragment dropped", "https://example.com/dl/model.gguf?download=true#x",
              "https://example.com/dl/model.gguf?download=true#x", "model.gguf");
    check_src("url: percent-decoded name", "https://example.com/a%20b.gguf", "https://example.com/a%20b.gguf",
              "a b.gguf");
    check_src_err("err: hf without a file", "hf://org/repo", "hf://ORG/REPO/FILE.gguf");
    check_src_err("err: hf empty segment", "hf://org//f.gguf", "empty");
    check_src_err("err: hf ..", "hf://org/repo/../f.gguf", "'..'");
    check_src_err("err: hf empty revision", "hf://o/r/f.gguf@", "empty revision");
    check_src_err("err: not a URL", "ftp://example.com/f.gguf", "not a URL");
    check_src_err("err: a path is not a URL", "/tmp/x.gguf", "not a URL");
    check_src_err("err: URL without a file name", "https://example.com/", "no file name");
    check_src_err("err: space in URL", "https://example.com/a b.gguf", "percent-encode");
}

static void test_sha(void)
{
    char out[65];
    const char *h = "270CBA1BD5109F42D03350F60406024560464DB173C0E387D91F0426D3BD256D";
    t_check(pull_sha256_ok(h, out) && !strcmp(out, "270cba1bd5109f42d03350f60406024560464db173c0e387d91f0426d3bd256d"),
            "sha256: upper case accepted, lowered", "%s", out);
    t_check(pull_sha256_ok("sha256:270cba1bd5109f42d03350f60406024560464db173c0e387d91f0426d3bd256d", NULL),
            "sha256: sha256: prefix", "rejected");
    t_check(!pull_sha256_ok("270cba1b", NULL) && !pull_sha256_ok(NULL, NULL) &&
                !pull_sha256_ok("z70cba1bd5109f42d03350f60406024560464db173c0e387d91f0426d3bd256d", NULL) &&
                !pull_sha256_ok("270cba1bd5109f42d03350f60406024560464db173c0e387d91f0426d3bd256d0", NULL),
            "sha256: short, non-hex, long rejected", "accepted");
}

static void test_folder(void)
{
    char d[STORE_PATH_MAX];
    setenv("SOV_MODELS", "/x/models", 1);
    t_check(store_dir(d, sizeof d) && !strcmp(d, "/x/models"), "dir: SOV_MODELS", "%s", d);
    unsetenv("SOV_MODELS");
    setenv("XDG_DATA_HOME", "/xdg", 1);
    t_check(store_dir(d, sizeof d) && !strcmp(d, "/xdg/sov/models"), "dir: XDG_DATA_HOME", "%s", d);
    setenv("XDG_DATA_HOME", "relative", 1);
    setenv("HOME", "/home/u", 1);
    t_check(store_dir(d, sizeof d) && !strcmp(d, "/home/u/.local/share/sov/models"),
            "dir: HOME (a relative XDG_DATA_HOME is ignored)", "%s", d);
    unsetenv("XDG_DATA_HOME");

    t_check(store_name_ok("stories260K") && store_name_ok("a b.gguf") && !store_name_ok("") &&
                !store_name_ok(".hidden") && !store_name_ok("a/b") && !store_name_ok("a\\b") &&
                !store_name_ok("a\nb") && !store_name_ok(NULL),
            "names: what may be a model name", "wrong");

    snprintf(tmp, sizeof tmp, "/tmp/test_store.XXXXXX");
    if (!mkdtemp(tmp)) {
        t_check(false, "mkdtemp", "failed");
        return;
    }
    char sub[512];
    snprintf(sub, sizeof sub, "%s/a/b/c", tmp);
    t_check(store_mkdir(sub) == 0 && store_mkdir(sub) == 0, "mkdir: parents, twice", "%s", err_msg());
    touch("x.gguf", 0); /* a file where a folder should be */
    snprintf(sub, sizeof sub, "%s/x.gguf/y", tmp);
    t_check(store_mkdir(sub) == SOV_EIO, "mkdir: through a file fails", "succeeded");
    snprintf(sub, sizeof sub, "%s/x.gguf", tmp);
    unlink(sub);
    snprintf(sub, sizeof sub, "%s/a/b/c", tmp);
    rmdir(sub);
    snprintf(sub, sizeof sub, "%s/a/b", tmp);
    rmdir(sub);
    snprintf(sub, sizeof sub, "%s/a", tmp);
    rmdir(sub);

    touch("alpha.gguf", 10);
    touch("beta.gguf", 20);
    touch("beta.gguf.part", 5);
    touch("gamma.gguf.part", 7);
    touch("notes.txt", 3);
    touch(".hidden.gguf", 3);
    touch("raw.bin", 4);
    store_item *it = NULL;
    size_t n = 0;
    int rc = store_list(tmp, &it, &n);
    bool ok = rc == 0 && n == 4 && !strcmp(it[0].name, "alpha") && !it[0].partial && it[0].size == 10 &&
              !strcmp(it[1].name, "beta") && !it[1].partial && !strcmp(it[2].name, "beta") && it[2].partial &&
              !strcmp(it[2].file, "beta.gguf.part") && it[2].size == 5 && !strcmp(it[3].name, "gamma") &&
              it[3].partial;
    t_check(ok, "list: .gguf and .gguf.part, sorted, model before its part", "rc %d n %zu", rc, n);
    free(it);
    char missing[600];
    snprintf(missing, sizeof missing, "%s/none", tmp);
    t_check(store_list(missing, &it, &n) == 0 && n == 0 && !it, "list: a missing folder is empty", "n %zu", n);

    char p[STORE_PATH_MAX], want[600];
    snprintf(want, sizeof want, "%s/alpha.gguf", tmp);
    t_check(store_find(tmp, "alpha", p, sizeof p) == 0 && !strcmp(p, want), "find: NAME -> NAME.gguf", "%s", p);
    t_check(store_find(tmp, "alpha.gguf", p, sizeof p) == 0 && !strcmp(p, want), "find: NAME.gguf", "%s", p);
    snprintf(want, sizeof want, "%s/raw.bin", tmp);
    t_check(store_find(tmp, "raw.bin", p, sizeof p) == 0 && !strcmp(p, want), "find: any file by its exact name", "%s",
            p);
    t_check(store_find(tmp, "gamma", p, sizeof p) == SOV_ENOTFOUND && strstr(err_msg(), "no model gamma in"),
            "find: a .part alone is no model", "%s", err_msg());
    t_check(store_find(tmp, "../etc/passwd", p, sizeof p) == SOV_EINVAL, "find: a path is no name", "%s", err_msg());

    setenv("SOV_MODELS", tmp, 1);
    const char *r = store_resolve("alpha", p, sizeof p);
    snprintf(want, sizeof want, "%s/alpha.gguf", tmp);
    t_check(r == p && !strcmp(r, want), "resolve: a bare name from the folder", "%s", r ? r : err_msg());
    r = store_resolve("./alpha", p, sizeof p);
    t_check(r && !strcmp(r, "./alpha"), "resolve: a path stays a path", "%s", r ? r : err_msg());
    char cwd[1024];
    if (getcwd(cwd, sizeof cwd) && chdir(tmp) == 0) {
        r = store_resolve("notes.txt", p, sizeof p);
        t_check(r && !strcmp(r, "notes.txt"), "resolve: an existing file here stays", "%s", r ? r : err_msg());
        if (chdir(cwd) != 0)
            t_check(false, "chdir back", "failed");
    }
    r = store_resolve("nonesuch", p, sizeof p);
    t_check(!r && strstr(err_msg(), "no file 'nonesuch' here and no model nonesuch in"),
            "resolve: unknown name, clear error", "%s", r ? r : err_msg());

    rc = store_remove(tmp, "beta");
    t_check(rc == 2 && !exists("beta.gguf") && !exists("beta.gguf.part"), "remove: model and its part", "rc %d", rc);
    rc = store_remove(tmp, "gamma.gguf");
    t_check(rc == 1 && !exists("gamma.gguf.part"), "remove: a part alone, by NAME.gguf", "rc %d", rc);
    rc = store_remove(tmp, "beta");
    t_check(rc == SOV_ENOTFOUND && strstr(err_msg(), "no model beta in"), "remove: unknown name", "rc %d %s", rc,
            err_msg());
    rc = store_remove(tmp, "../alpha");
    t_check(rc == SOV_EINVAL && exists("alpha.gguf"), "remove: a path is refused", "rc %d", rc);
    unsetenv("SOV_MODELS");
    static const char *const left[] = {"alpha.gguf", "notes.txt", ".hidden.gguf", "raw.bin"};
    for (size_t i = 0; i < sizeof left / sizeof left[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", tmp, left[i]);
        unlink(p);
    }
    rmdir(tmp);
}

static void check_meta(const char *rel, const char *arch, const char *quant, const char *main_type)
{
    const char *path = t_shared(rel);
    if (access(path, R_OK) != 0) {
        printf("INFO %s missing: skipped\n", rel);
        return;
    }
    store_meta m;
    plan_model pm;
    char pq[32];
    int rc = store_meta_read(path, &m), prc = plan_gguf_model(path, &pm, pq, sizeof pq);
    char name[160];
    snprintf(name, sizeof name, "meta %s: arch %s, quant %s, main %s, params = plan's", rel, arch, quant, main_type);
    t_check(rc == 0 && prc == 0 && !strcmp(m.arch, arch) && !strcmp(m.quant, quant) && !strcmp(m.main_type, main_type) &&
                (double)m.params == pm.params && !strcmp(m.main_type, pq),
            name, "rc %d/%d arch %s quant %s main %s (plan %s) params %llu (plan %.0f)", rc, prc, m.arch, m.quant,
            m.main_type, pq, (unsigned long long)m.params, pm.params);
}

static void test_meta(void)
{
    check_meta("models/stories260K.gguf", "llama", "f32", "f32");
    check_meta("models/quant/mini256-q4_k_m.gguf", "llama", "q4_k_m", "q4_k");
    check_meta("models/quant/mini256-q8_0.gguf", "llama", "q8_0", "q8_0");
    store_meta m;
    t_check(store_meta_read("/nonexistent/x.gguf", &m) == SOV_EIO, "meta: missing file is an error", "%s", err_msg());
    t_check(store_ftype_name(15) && !strcmp(store_ftype_name(15), "q4_k_m") && !strcmp(store_ftype_name(1024 + 7), "q8_0") &&
                !store_ftype_name(4) && !store_ftype_name(-1) && !store_ftype_name(999),
            "ftype names (llama.cpp's, GUESSED bit ignored)", "wrong");
    char b[32];
    t_check(!strcmp(store_meta_params(b, sizeof b, 292800), "292.8K") &&
                !strcmp(store_meta_params(b, sizeof b, 1100048384), "1.10B") &&
                !strcmp(store_meta_params(b, sizeof b, 999), "999"),
            "params text", "%s", b);
}

/* ---- progress ---- */

static void check_fmt(const char *name, int width, const char *label, uint64_t done, uint64_t base, uint64_t total,
                      double el, unsigned flags, bool final, const char *want)
{
    char b[512];
    size_t n = progress_format(b, sizeof b, width, label, done, base, total, el, flags, final);
    t_check(!strcmp(b, want) && n == strlen(want) && n < (size_t)width, name, "got '%s' want '%s'", b, want);
}

typedef struct {
    progress *p;
    int n;
} adder;

static void *add_many(void *arg)
{
    adder *a = arg;
    for (int i = 0; i < a->n; i++)
        progress_add(a->p, 1);
    return NULL;
}

static void test_progress(void)
{
    check_fmt("fmt: bytes, total, rate, ETA", 80, "m.gguf", 1048576, 0, 4194304, 2.0, PROGRESS_BYTES, false,
              "m.gguf  25% [======>                 ] 1.0 MiB / 4.0 MiB  512.0 KiB/s  ETA 0:06");
    check_fmt("fmt: final", 80, "m.gguf", 4194304, 0, 4194304, 8.0, PROGRESS_BYTES, true,
              "m.gguf 100% [==================================] 4.0 MiB  512.0 KiB/s  in 8.0 s");
    check_fmt("fmt: rate counts from base (resume)", 80, "m", 3145728, 2097152, 4194304, 1.0, PROGRESS_BYTES, false,
              "m  75% [=======================>       ] 3.0 MiB / 4.0 MiB  1.0 MiB/s  ETA 0:01");
    check_fmt("fmt: unknown total", 80, "dl", 5000, 0, 0, 2.0, PROGRESS_BYTES, false, "dl 4.9 KiB  2.4 KiB/s");
    check_fmt("fmt: counts, no rate yet", 60, "tensors", 3, 0, 12, 0.0, 0, false,
              "tensors  25% [=========>                           ] 3 / 12");
    check_fmt("fmt: narrow: no bar", 40, "x", 512, 0, 1024, 1.0, PROGRESS_BYTES, false,
              "x  50% 512 B / 1.0 KiB  512 B/s");
    check_fmt("fmt: long label cut from the left", 120, "a-very-long-model-file-name-that-goes-on-and-on.Q4_K_M.gguf",
              1, 0, 2, 0.0, 0, false,
              "...-name-that-goes-on-and-on.Q4_K_M.gguf  50% [=========================>                        ] 1 / 2");
    check_fmt("fmt: hours ETA", 80, "big", 1ULL << 30, 0, 100ULL << 30, 10.0, PROGRESS_BYTES, false,
              "big   1% [>                     ] 1.00 GiB / 100.00 GiB  102.4 MiB/s  ETA 16:30");

    /* drawing: \r, the line, erase to the end; the final one ends the line */
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    progress *p = progress_open(f, 60, "job", 4, PROGRESS_NOW);
    progress_add(p, 1);
    progress_reset(p, "phase2", 0, 2);
    progress_set(p, 2);
    progress_done(p);
    fclose(f);
    int frames = 0;
    for (size_t i = 0; i < len; i++)
        frames += buf[i] == '\r';
    bool ends = len > 4 && !strcmp(buf + len - 4, "\033[K\n");
    t_check(buf[0] == '\r' && frames == 5 && ends && strstr(buf, "job  25%") && strstr(buf, "phase2 100%") &&
                strchr(buf, '\n') == buf + len - 1,
            "draw: frames in place, one newline at the end", "%d frames: '%s'", frames, buf);
    free(buf);

    /* from several threads: every add counted */
    buf = NULL;
    f = open_memstream(&buf, &len);
    p = progress_open(f, 80, "threads", 0, PROGRESS_NOW);
    pthread_t th[4];
    adder a = {p, 2000};
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, add_many, &a);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    progress_done(p);
    fclose(f);
    const char *last = strrchr(buf, '\r');
    t_check(last && !strncmp(last, "\rthreads 8000", 13), "threads: 4 x 2000 adds, final count 8000", "%s",
            last ? last : buf);
    free(buf);

    /* a quick operation draws nothing (the first draw waits PROGRESS_DELAY) */
    buf = NULL;
    f = open_memstream(&buf, &len);
    p = progress_open(f, 80, "quick", 10, 0);
    for (int i = 0; i < 10; i++)
        progress_add(p, 1);
    progress_done(p);
    fclose(f);
    t_check(len == 0, "delay: a quick operation leaves nothing", "%zu bytes: '%s'", len, buf);
    free(buf);

    /* rate limit: updates for 0.6 s draw at most ~ (0.6 - delay) / interval + final frames */
    buf = NULL;
    f = open_memstream(&buf, &len);
    struct timespec ta, tb;
    clock_gettime(CLOCK_MONOTONIC, &ta);
    p = progress_open(f, 80, "slow", 600, 0);
    for (int i = 0; i < 600; i++) {
        progress_add(p, 1);
        usleep(1000);
    }
    progress_done(p);
    clock_gettime(CLOCK_MONOTONIC, &tb);
    fclose(f);
    double el = (double)(tb.tv_sec - ta.tv_sec) + (double)(tb.tv_nsec - ta.tv_nsec) * 1e-9;
    frames = 0;
    for (size_t i = 0; i < len; i++)
        frames += buf[i] == '\r';
    /* draws at 0.25 s, then at most every 0.1 s, then the final one */
    int most = (int)((el - PROGRESS_DELAY) / PROGRESS_INTERVAL) + 2;
    t_check(frames >= 2 && frames <= most, "rate limit: 600 updates over >= 0.6 s, <= 10 draws a second",
            "%d frames in %.2f s (at most %d)", frames, el, most);
    free(buf);

    /* off a terminal: progress_new gives no bar; NULL is accepted everywhere */
    int saved = dup(2), fd = open("/dev/null", O_WRONLY);
    dup2(fd, 2);
    progress *q = progress_new("x", 10, PROGRESS_BYTES);
    dup2(saved, 2);
    close(fd);
    close(saved);
    t_check(q == NULL, "not a terminal: no bar", "got one");
    progress_reset(NULL, "x", 0, 1);
    progress_add(NULL, 1);
    progress_set(NULL, 1);
    progress_done(NULL); /* NULL is accepted everywhere (a crash fails the program) */
}

int main(void)
{
    test_source();
    test_sha();
    test_folder();
    test_meta();
    test_progress();
    return t_done();
}
