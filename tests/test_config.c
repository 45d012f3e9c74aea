/* config: the router's INI file. A full config loads with the values it
 * gives and the defaults it does not (relative model and audit paths
 * resolved against the config's directory, keys read from the environment);
 * cfg_print shows every alias and no secret. Every bad config fails with a
 * one-line message naming the file, the line (marked "<-" in the configs
 * below) and the key. Also cfg_parse_size / cfg_parse_duration, cfg_new and
 * the look-ups. The GGUF cases use ../shared/models/stories260K.gguf
 * ($SOV_SHARED) and are skipped when it is missing. */
#include "t.h"

#include "base/err.h"
#include "engine/kv.h"
#include "router/config.h"

#include <math.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

static char dir[512];
static bool have_gguf;

/* Writes text to a new temp file under dir; its path into path. */
static bool write_cfg(const char *text, char *path, size_t cap)
{
    snprintf(path, cap, "%s/cfgXXXXXX.ini", dir);
    int fd = mkstemps(path, 4);
    if (fd < 0)
        return false;
    size_t n = strlen(text);
    bool ok = write(fd, text, n) == (ssize_t)n;
    close(fd);
    return ok;
}

static bool write_file(const char *name, const char *text)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    if (!f)
        return false;
    fputs(text, f);
    return fclose(f) == 0;
}

/* The 1-based line of text that holds "<-". */
static int marked_line(const char *text)
{
    const char *m = strstr(text, "<-");
    if (!m)
        return 0;
    int line = 1;
    for (const char *q = text; q < m; q++)
        line += *q == '\n';
    return line;
}

/* text must fail to load, with a one-line message holding the file, the
 * marked line (none when text has no marker: then "FILE: ") and every one of
 * the words (NULL-terminated). */
static void expect_err(const char *name, const char *text, ...)
{
    char path[1024];
    if (!write_cfg(text, path, sizeof path)) {
        t_check(false, name, "cannot write a temp config");
        return;
    }
    cfg *c = (cfg *)1;
    int rc = cfg_load(&c, path);
    const char *msg = err_msg();
    if (getenv("SOVT_VERBOSE"))
        printf("INFO %s: %s\n", name, msg);
    char want[1100];
    int line = marked_line(text);
    if (line)
        snprintf(want, sizeof want, "%s:%d: ", path, line);
    else
        snprintf(want, sizeof want, "%s: ", path);
    bool ok = rc < 0 && c == NULL && !strncmp(msg, want, strlen(want)) && !strchr(msg, '\n');
    const char *missing = NULL;
    va_list ap;
    va_start(ap, text);
    for (const char *w; (w = va_arg(ap, const char *));)
        if (!strstr(msg, w) && !missing)
            missing = w;
    va_end(ap);
    t_check(ok && !missing, name, "rc %d, message '%s' (want it to start '%s'%s%s%s)", rc, msg, want,
            missing ? ", and to hold '" : "", missing ? missing : "", missing ? "'" : "");
    if (rc == 0)
        cfg_free(c);
    unlink(path);
}

static cfg *load_ok(const char *name, const char *text, char *path, size_t cap)
{
    cfg *c = NULL;
    if (!write_cfg(text, path, cap)) {
        t_check(false, name, "cannot write a temp config");
        return NULL;
    }
    int rc = cfg_load(&c, path);
    unlink(path); /* c keeps its own copy of the path */
    if (!t_check(rc == 0 && c, name, "rc %d: %s", rc, err_msg()))
        return NULL;
    return c;
}

static bool has_line(const char *out, const char *s) { return strstr(out, s) != NULL; }

/* ---- the good configs ---- */

static const char full_cfg[] =
    "; the router of the tests\n"
    "[server]\n"
    "host = 0.0.0.0\n"
    "port = 8081\n"
    "api_key_env = SOVT_SERVER_KEY\n"
    "memory_budget = 1.5G\n"
    "audit_log = audit.jsonl\n"
    "log_prompts = yes\n"
    "breaker_failures = 5\n"
    "breaker_cooldown = 30s\n"
    "health_interval = 2500ms\n"
    "max_body = 1M\n"
    "\n"
    "[model.llama-3:8b]          ; backends come later in the file\n"
    "backends = gpu, cloud\n"
    "balance = least-outstanding\n"
    "affinity = prefix\n"
    "overflow_queue = 8\n"
    "overflow_wait = 2s\n"
    "remote_model = gpt-4o-mini\n"
    "\n"
    "[model.org/private]\n"
    "  backends = gpu         ; indented keys are fine\n"
    "  privacy = local-only\n"
    "\n"
    "[backend.gpu]\n"
    "type = local\n"
    "model = m.gguf\n"
    "ctx_size = 4096\n"
    "parallel = 2\n"
    "kv_type = q8_0\n"
    "chat_template = chatml\n"
    "mmap = on\n"
    "prefix_cache = false\n"
    "preload = true\n"
    "keep_alive = never\n"
    "\n"
    "[backend.cloud]\n"
    "type = openai\n"
    "url = https://api.example.com/v1/\n"
    "api_key_env = SOVT_CLOUD_KEY\n"
    "first_byte_timeout = 2m\n"
    "max_concurrent = 8\n"
    "health = /v1/models\n"
    "\n"
    "[backend.near]\n"
    "type = openai\n"
    "url = http://127.0.0.1:9000/v1\n"
    "location = local\n"
    "\n"
    "[backend.spare]\n"
    "type = local\n"
    "model = m.gguf\n"
    "kv_mem = 0.5\n"
    "\n"
    "[model.near-only]\n"
    "backends = near\n"
    "privacy = local-only\n"
    "\n"
    "[key.alice]\n"
    "key_env = SOVT_ALICE\n"
    "[key.bob]\n"
    "key = bob-literal-secret\n"
    "privacy = local-only\n";

static void test_full(void)
{
    char path[1024], want[1100];
    cfg *c = load_ok("full config loads", full_cfg, path, sizeof path);
    if (!c)
        return;
    const cfg_server *s = &c->srv;
    t_check(c->path && !strcmp(c->path, path), "full: path", "%s", c->path ? c->path : "(null)");
    t_check(s->host && !strcmp(s->host, "0.0.0.0") && s->port == 8081, "full: host, port", "%s %lld",
            s->host ? s->host : "(null)", (long long)s->port);
    t_check(s->api_key && !strcmp(s->api_key, "server-secret-1"), "full: server api_key from env", "%s",
            s->api_key ? s->api_key : "(null)");
    t_check(s->memory_budget == 1610612736, "full: memory_budget 1.5G", "%lld", (long long)s->memory_budget);
    snprintf(want, sizeof want, "%s/audit.jsonl", dir);
    t_check(s->audit_log && !strcmp(s->audit_log, want), "full: audit_log resolved", "%s",
            s->audit_log ? s->audit_log : "(null)");
    t_check(s->log_prompts && s->breaker_failures == 5 && s->breaker_cooldown_s == 30 && s->health_interval_s == 2.5 &&
                s->max_body == 1048576,
            "full: server settings", "%d %lld %g %g %lld", s->log_prompts, (long long)s->breaker_failures,
            s->breaker_cooldown_s, s->health_interval_s, (long long)s->max_body);

    t_check(c->n_backends == 4 && c->n_aliases == 3 && c->n_keys == 2, "full: counts", "%d %d %d", c->n_backends,
            c->n_aliases, c->n_keys);
    int gpu = cfg_backend_find(c, "gpu"), cloud = cfg_backend_find(c, "cloud"), near = cfg_backend_find(c, "near");
    int spare = cfg_backend_find(c, "spare");
    t_check(gpu == 0 && cloud == 1 && near == 2 && spare == 3 && cfg_backend_find(c, "nope") == -1 &&
                cfg_backend_find(c, "gp") == -1,
            "full: cfg_backend_find", "%d %d %d %d", gpu, cloud, near, spare);
    if (gpu != 0 || cloud != 1 || near != 2 || spare != 3 || c->n_aliases != 3 || c->n_keys != 2) {
        cfg_free(c);
        return;
    }
    const cfg_backend *g = &c->backends[gpu];
    snprintf(want, sizeof want, "%s/m.gguf", dir);
    t_check(g->type == CFG_LOCAL && g->model && !strcmp(g->model, want), "full: relative model path resolved",
            "type %d, %s", g->type, g->model ? g->model : "(null)");
    t_check(g->n_ctx == 4096 && g->n_slots == 2 && g->kv_type == KV_Q8_0 && g->chat_template &&
                !strcmp(g->chat_template, "chatml") && g->mmap && g->no_prefix_cache && g->preload && g->keep_alive_s < 0,
            "full: local settings", "%lld %lld %d %d %d %d %g", (long long)g->n_ctx, (long long)g->n_slots, g->kv_type,
            g->mmap, g->no_prefix_cache, g->preload, g->keep_alive_s);
    t_check(g->threads == 0 && g->n_batch == 256 && g->queue == 64 && g->kv_size == 0 && g->kv_mem == 0 && !g->url &&
                !g->api_key && g->line == 26,
            "full: local defaults", "%lld %lld %lld %lld %g line %d", (long long)g->threads, (long long)g->n_batch,
            (long long)g->queue, (long long)g->kv_size, g->kv_mem, g->line);
    const cfg_backend *sp = &c->backends[spare];
    t_check(sp->n_slots == 4 && sp->kv_type == KV_F16 && sp->keep_alive_s == 300 && !sp->mmap && !sp->no_prefix_cache &&
                !sp->preload && sp->kv_mem == 0.5 && !sp->chat_template,
            "full: more local defaults, kv_mem", "%lld %d %g %g", (long long)sp->n_slots, sp->kv_type, sp->keep_alive_s,
            sp->kv_mem);
    const cfg_backend *cl = &c->backends[cloud];
    t_check(cl->type == CFG_OPENAI && cl->url && !strcmp(cl->url, "https://api.example.com/v1") && cl->origin &&
                !strcmp(cl->origin, "https://api.example.com"),
            "full: openai url (trailing / stripped), origin", "%s %s", cl->url ? cl->url : "(null)",
            cl->origin ? cl->origin : "(null)");
    t_check(cl->api_key && !strcmp(cl->api_key, "cloud-secret-2") && cl->api_key_env &&
                !strcmp(cl->api_key_env, "SOVT_CLOUD_KEY"),
            "full: openai api_key from env", "%s", cl->api_key_env ? cl->api_key_env : "(null)");
    t_check(cl->connect_timeout_s == 5 && cl->first_byte_timeout_s == 120 && cl->idle_timeout_s == 60 &&
                cl->max_concurrent == 8 && cl->health && !strcmp(cl->health, "/v1/models") && !cl->location_local &&
                !cl->model,
            "full: openai settings and defaults", "%g %g %g %lld %s %d", cl->connect_timeout_s, cl->first_byte_timeout_s,
            cl->idle_timeout_s, (long long)cl->max_concurrent, cl->health ? cl->health : "(null)", cl->location_local);
    const cfg_backend *nr = &c->backends[near];
    t_check(nr->location_local && nr->origin && !strcmp(nr->origin, "http://127.0.0.1:9000") && nr->health &&
                !strcmp(nr->health, "/health") && nr->max_concurrent == 64 && !nr->api_key,
            "full: location = local on loopback, health default", "%d %s %s", nr->location_local,
            nr->origin ? nr->origin : "(null)", nr->health ? nr->health : "(null)");

    int a0 = cfg_alias_find(c, "llama-3:8b"), a1 = cfg_alias_find(c, "org/private"), a2 = cfg_alias_find(c, "near-only");
    t_check(a0 == 0 && a1 == 1 && a2 == 2 && cfg_alias_find(c, "llama-3") == -1, "full: cfg_alias_find", "%d %d %d",
            a0, a1, a2);
    const cfg_alias *a = &c->aliases[0];
    t_check(a->n_refs == 2 && a->refs[0] == gpu && a->refs[1] == cloud && !a->local_only && a->balance == CFG_LEAST &&
                a->affinity_prefix && a->overflow_queue == 8 && a->overflow_wait_s == 2 && a->remote_model &&
                !strcmp(a->remote_model, "gpt-4o-mini") && a->line == 14,
            "full: alias with backends defined later", "refs %d [%d %d] %d %d %d %lld %g line %d", a->n_refs, a->refs[0],
            a->refs[1], a->local_only, a->balance, a->affinity_prefix, (long long)a->overflow_queue, a->overflow_wait_s,
            a->line);
    a = &c->aliases[1];
    t_check(a->n_refs == 1 && a->refs[0] == gpu && a->local_only && a->balance == CFG_ORDER && !a->affinity_prefix &&
                a->overflow_queue == -1 && a->overflow_wait_s < 0 && !a->remote_model,
            "full: alias defaults", "%d %d %d %lld %g", a->n_refs, a->local_only, a->balance, (long long)a->overflow_queue,
            a->overflow_wait_s);
    a = &c->aliases[2];
    t_check(a->n_refs == 1 && a->refs[0] == near && a->local_only, "full: local-only on a location = local backend",
            "%d %d", a->n_refs, a->local_only);
    const cfg_key *k0 = &c->keys[0], *k1 = &c->keys[1];
    t_check(!strcmp(k0->name, "alice") && k0->key && !strcmp(k0->key, "alice-secret-3") && !k0->local_only &&
                !strcmp(k1->name, "bob") && k1->key && !strcmp(k1->key, "bob-literal-secret") && k1->local_only,
            "full: keys", "%s %s", k0->name, k1->name);

    char *out = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&out, &n);
    cfg_print(c, f);
    fclose(f);
    bool aliases = has_line(out, "model llama-3:8b ") && has_line(out, "model org/private ") &&
                   has_line(out, "model near-only ");
    t_check(aliases && has_line(out, "https://api.example.com/v1") && has_line(out, want) &&
                has_line(out, "privacy=local-only") && has_line(out, "balance=least-outstanding") &&
                has_line(out, "key bob  privacy=local-only") && has_line(out, "key alice  privacy=any") &&
                has_line(out, "spare") && has_line(out, "config OK: 3 models, 4 backends, 2 keys\n"),
            "full: cfg_print shows the aliases, backends and keys", "%s", out);
    t_check(!has_line(out, "server-secret-1") && !has_line(out, "cloud-secret-2") && !has_line(out, "alice-secret-3") &&
                !has_line(out, "bob-literal-secret"),
            "full: cfg_print shows no secret", "%s", out);
    free(out);
    cfg_free(c);
}

/* Without a GGUF: remote and loopback backends only; and a few syntax
 * niceties (':' separators, comments after a header, CRLF). */
static void test_openai_only(void)
{
    char path[1024];
    cfg *c = load_ok("openai-only config loads",
                     "[model.m]\r\n"
                     "backends: lo4 , lo6,name   ; comment\r\n"
                     "privacy = local-only\r\n"
                     "[backend.lo4] # comment\r\n"
                     "type = openai\r\n"
                     "url = http://localhost:8080\r\n"
                     "location = local\r\n"
                     "[backend.lo6]\r\n"
                     "type = openai\r\n"
                     "url = http://[::1]:8081/v1///\r\n"
                     "location = local\r\n"
                     "connect_timeout = 1.5\r\n"
                     "idle_timeout = 0.5h\r\n"
                     "[backend.name]\r\n"
                     "type = openai\r\n"
                     "url = HTTP://Example.COM/openai/v1\r\n",
                     path, sizeof path);
    if (!c)
        return;
    const cfg_alias *a = &c->aliases[0];
    t_check(c->n_backends == 3 && a->n_refs == 3 && a->refs[0] == 0 && a->refs[1] == 1 && a->refs[2] == 2,
            "openai-only: the backends list", "%d %d", c->n_backends, a->n_refs);
    if (c->n_backends == 3) {
        const cfg_backend *b0 = &c->backends[0], *b1 = &c->backends[1], *b2 = &c->backends[2];
        t_check(b0->location_local && !strcmp(b0->url, "http://localhost:8080") &&
                    !strcmp(b0->origin, "http://localhost:8080"),
                "openai-only: localhost", "%s %s", b0->url, b0->origin);
        t_check(b1->location_local && !strcmp(b1->url, "http://[::1]:8081/v1") && !strcmp(b1->origin, "http://[::1]:8081") &&
                    b1->connect_timeout_s == 1.5 && b1->idle_timeout_s == 1800,
                "openai-only: [::1], trailing slashes", "%s %s %g %g", b1->url, b1->origin, b1->connect_timeout_s,
                b1->idle_timeout_s);
        t_check(!b2->location_local && b2->origin && !strcmp(b2->origin, "http://Example.COM") &&
                    strstr(b2->url, "/openai/v1"),
                "openai-only: normalized scheme and host", "%s %s", b2->url, b2->origin);
    }
    t_check(c->srv.port == -1 && !c->srv.host && c->srv.max_body == 0 && c->srv.breaker_failures == 3 &&
                c->srv.breaker_cooldown_s == 10 && c->srv.health_interval_s == 5 && !c->srv.api_key && !c->srv.audit_log,
            "openai-only: server defaults", "%lld %lld", (long long)c->srv.port, (long long)c->srv.max_body);
    cfg_free(c);
}

/* ---- the bad configs ---- */

#define REMOTE "[backend.r]\ntype = openai\nurl = http://198.18.0.2:8080/v1\n"
#define MODEL_R "[model.m]\nbackends = r\n"

static void test_errors(void)
{
    expect_err("err: missing type", MODEL_R "[backend.r]   ; <-\nurl = http://h/v1\n", "[backend.r]", "type", NULL);
    expect_err("err: bad type", MODEL_R "[backend.r]\ntype = remote ; <-\nurl = http://h/v1\n", "type", "local or openai",
               NULL);
    expect_err("err: missing backends", "[model.m] ; <-\nprivacy = any\n" REMOTE, "[model.m]", "backends", NULL);
    expect_err("err: unknown backend (defined later ones are fine)", "[model.m]\nbackends = r, nope ; <-\n" REMOTE,
               "backends", "unknown backend nope", NULL);
    expect_err("err: empty backends", "[model.m]\nbackends = ; <-\n" REMOTE, "backends", NULL);
    expect_err("err: backend listed twice", "[model.m]\nbackends = r,r ; <-\n" REMOTE, "backends", "twice", NULL);
    expect_err("err: duplicate alias", MODEL_R REMOTE "[model.m] ; <-\nbackends = r\n", "[model.m]", "duplicate", NULL);
    expect_err("err: duplicate backend", MODEL_R REMOTE "[backend.r] ; <-\ntype = local\n", "[backend.r]", "duplicate",
               NULL);
    expect_err("err: duplicate key section", MODEL_R REMOTE "[key.a]\nkey = x\n[key.a] ; <-\nkey = y\n", "[key.a]",
               "duplicate", NULL);
    expect_err("err: duplicate [server]", "[server]\nport = 1\n[server] ; <-\n" MODEL_R REMOTE, "[server]", "duplicate",
               NULL);
    expect_err("err: duplicate key in a section", MODEL_R REMOTE "url = http://x/v1 ; <-\n", "[backend.r]", "url",
               "duplicate", NULL);
    expect_err("err: unknown key", MODEL_R REMOTE "colour = red ; <-\n", "[backend.r]", "colour", "unknown key", NULL);
    expect_err("err: unknown section", MODEL_R REMOTE "[frontend.x] ; <-\nfoo = 1\n", "[frontend.x]", "unknown section",
               NULL);
    expect_err("err: bad backend name", MODEL_R REMOTE "[backend.a b] ; <-\ntype = local\n", "[backend.a b]",
               "name", NULL);
    expect_err("err: bad alias", "[model.a b] ; <-\nbackends = r\n" REMOTE, "[model.a b]", "alias", NULL);
    expect_err("err: key outside a section", "port = 1 ; <-\n" MODEL_R REMOTE, "port", "outside", NULL);
    expect_err("err: line without =", MODEL_R REMOTE "location ; <-\n", "key = value", NULL);
    expect_err("err: header without ]", MODEL_R REMOTE "[key.x ; <-\n", "]", NULL);
    expect_err("err: key for the other type", MODEL_R REMOTE "model = x.gguf ; <-\n", "[backend.r]", "model",
               "is for type = local", NULL);
    expect_err("err: local key url", "[model.m]\nbackends = l\n[backend.l]\ntype = local\nurl = http://h ; <-\nmodel = /nonexistent.gguf\n", "url",
               "is for type = openai", NULL);

    expect_err("err: missing model", "[model.m]\nbackends = l\n[backend.l] ; <-\ntype = local\n", "model", NULL);
    expect_err("err: nonexistent GGUF", "[model.m]\nbackends = l\n[backend.l]\ntype = local\nmodel = /nonexistent/x.gguf ; <-\n",
               "[backend.l] model: cannot read /nonexistent/x.gguf", NULL);
    char junk[1100];
    snprintf(junk, sizeof junk, "[backend.l] model: cannot read %s/junk.gguf", dir);
    expect_err("err: a file that is not a GGUF", "[model.m]\nbackends = l\n[backend.l]\ntype = local\nmodel = junk.gguf ; <-\n",
               junk, "GGUF", NULL);
    snprintf(junk, sizeof junk, "[backend.l] model: cannot read %s", dir);
    expect_err("err: a directory as the model", "[model.m]\nbackends = l\n[backend.l]\ntype = local\nmodel = . ; <-\n",
               junk, NULL);

    expect_err("err: url ftp://x", MODEL_R "[backend.r]\ntype = openai\nurl = ftp://x ; <-\n", "[backend.r] url",
               "bad url", "http or https", NULL);
    expect_err("err: url 'not a url'", MODEL_R "[backend.r]\ntype = openai\nurl = not a url ; <-\n", "url", "bad url",
               NULL);
    expect_err("err: url http://", MODEL_R "[backend.r]\ntype = openai\nurl = http:// ; <-\n", "url", "bad url", NULL);
    expect_err("err: url without scheme", MODEL_R "[backend.r]\ntype = openai\nurl = localhost:8080/v1 ; <-\n", "url",
               "bad url", NULL);
    expect_err("err: url with a password", MODEL_R "[backend.r]\ntype = openai\nurl = http://u:pw@h/v1 ; <-\n", "url",
               "bad url", NULL);
    expect_err("err: url with a query", MODEL_R "[backend.r]\ntype = openai\nurl = http://h/v1?x=1 ; <-\n", "url",
               "bad url", NULL);
    expect_err("err: missing url", MODEL_R "[backend.r] ; <-\ntype = openai\n", "url", NULL);

    unsetenv("SOVT_UNSET");
    setenv("SOVT_EMPTY", "", 1);
    expect_err("err: unset api_key_env", MODEL_R REMOTE "api_key_env = SOVT_UNSET ; <-\n", "[backend.r] api_key_env",
               "SOVT_UNSET", "not set", NULL);
    expect_err("err: empty api_key_env", MODEL_R REMOTE "api_key_env = SOVT_EMPTY ; <-\n", "api_key_env", "SOVT_EMPTY",
               "empty", NULL);
    expect_err("err: unset [server] api_key_env", "[server]\napi_key_env = SOVT_UNSET ; <-\n" MODEL_R REMOTE,
               "[server] api_key_env", "SOVT_UNSET", NULL);
    expect_err("err: unset key_env", MODEL_R REMOTE "[key.k]\nkey_env = SOVT_UNSET ; <-\n", "[key.k] key_env",
               "SOVT_UNSET", NULL);
    expect_err("err: key and key_env", MODEL_R REMOTE "[key.k]\nkey_env = SOVT_ALICE\nkey = x ; <-\n", "[key.k] key",
               NULL);
    expect_err("err: neither key nor key_env", MODEL_R REMOTE "[key.k] ; <-\nprivacy = any\n", "[key.k]", "key_env",
               NULL);
    expect_err("err: two keys with one secret", MODEL_R REMOTE "[key.a]\nkey = s3cr3t\n[key.b]\nkey = s3cr3t ; <-\n",
               "[key.b] key", "[key.a]", NULL);

    expect_err("err: location = local, not loopback", MODEL_R REMOTE "location = local ; <-\n", "[backend.r] location",
               "loopback", NULL);
    expect_err("err: location = local, 127.evil.com",
               "[model.m]\nbackends = r\n[backend.r]\ntype = openai\nurl = http://127.0.0.1.evil.com/v1\n"
               "location = local ; <-\n",
               "location", NULL);
    expect_err("err: bad location", MODEL_R REMOTE "location = nearby ; <-\n", "location", "remote or local", NULL);
    expect_err("err: local-only, remote backends only", "[model.m]\nbackends = r\nprivacy = local-only ; <-\n" REMOTE,
               "[model.m] privacy", "local", NULL);

    expect_err("err: bad integer", MODEL_R REMOTE "max_concurrent = lots ; <-\n", "max_concurrent", "not an integer",
               NULL);
    expect_err("err: fractional integer", MODEL_R REMOTE "max_concurrent = 1.5 ; <-\n", "max_concurrent",
               "not an integer", NULL);
    expect_err("err: integer out of range", "[server]\nport = 70000 ; <-\n" MODEL_R REMOTE, "[server] port",
               "between 0 and 65535", NULL);
    expect_err("err: breaker_failures 0", "[server]\nbreaker_failures = 0 ; <-\n" MODEL_R REMOTE, "breaker_failures",
               "between 1", NULL);
    expect_err("err: huge integer", MODEL_R REMOTE "max_concurrent = 99999999999999999999999 ; <-\n", "max_concurrent",
               NULL);
    expect_err("err: bad duration", MODEL_R REMOTE "connect_timeout = soon ; <-\n", "connect_timeout",
               "not a duration", NULL);
    expect_err("err: negative duration", "[server]\nbreaker_cooldown = -5s ; <-\n" MODEL_R REMOTE, "breaker_cooldown",
               NULL);
    expect_err("err: zero health_interval", "[server]\nhealth_interval = 0 ; <-\n" MODEL_R REMOTE, "health_interval",
               NULL);
    expect_err("err: bad size", "[server]\nmemory_budget = lots ; <-\n" MODEL_R REMOTE, "memory_budget", "size", NULL);
    expect_err("err: small max_body", "[server]\nmax_body = 100 ; <-\n" MODEL_R REMOTE, "max_body", "256", NULL);
    expect_err("err: bad bool", "[server]\nlog_prompts = maybe ; <-\n" MODEL_R REMOTE, "log_prompts", "boolean", NULL);
    expect_err("err: bad health", MODEL_R REMOTE "health = /ping ; <-\n", "health", "/health", NULL);
    expect_err("err: affinity = prefix, balance = order",
               "[model.m]\nbackends = r\nbalance = order\naffinity = prefix ; <-\n" REMOTE, "[model.m] affinity",
               "least-outstanding", NULL);
    expect_err("err: affinity = prefix, default balance", "[model.m]\nbackends = r\naffinity = prefix ; <-\n" REMOTE,
               "affinity", NULL);
    expect_err("err: bad privacy", "[model.m]\nbackends = r\nprivacy = secret ; <-\n" REMOTE, "privacy",
               "any or local-only", NULL);
    expect_err("err: bad overflow_queue", "[model.m]\nbackends = r\noverflow_queue = -1 ; <-\n" REMOTE, "overflow_queue",
               NULL);
    expect_err("err: no models", REMOTE, "no [model.", NULL);
    expect_err("err: empty file", "", "no [model.", NULL);
    expect_err("err: first error wins", "[server]\nport = x ; <-\n" MODEL_R REMOTE "location = far\n", "port", NULL);
    expect_err("err: checks across sections wait for a clean file", "[model.m]\nbackends = r\nprivacy = local-only\n" REMOTE
               "colour = red ; <-\n", "colour", NULL);
    char longline[600];
    snprintf(longline, sizeof longline, MODEL_R REMOTE "remote_model = %0300d ; <-\n", 0);
    expect_err("err: line too long", longline, "line", NULL);

    /* the local cases that need a real GGUF */
    if (!have_gguf)
        return;
    expect_err("err: bad kv_type", "[model.m]\nbackends = l\n[backend.l]\ntype = local\nmodel = m.gguf\nkv_type = q4 ; <-\n",
               "kv_type", NULL);
    expect_err("err: bad chat_template",
               "[model.m]\nbackends = l\n[backend.l]\ntype = local\nmodel = m.gguf\nchat_template = jinja ; <-\n",
               "chat_template", "chatml", NULL);
    expect_err("err: bad keep_alive",
               "[model.m]\nbackends = l\n[backend.l]\ntype = local\nmodel = m.gguf\nkeep_alive = forever ; <-\n",
               "keep_alive", NULL);
    expect_err("err: parallel 0", "[model.m]\nbackends = l\n[backend.l]\ntype = local\nmodel = m.gguf\nparallel = 0 ; <-\n",
               "parallel", "between 1 and 256", NULL);
    expect_err("err: kv_size and kv_mem",
               "[model.m]\nbackends = l\n[backend.l]\ntype = local\nmodel = m.gguf\nkv_mem = 1\nkv_size = 4096 ; <-\n",
               "kv_size", NULL);
}

static void test_missing_file(void)
{
    char path[1100];
    snprintf(path, sizeof path, "%s/no-such.ini", dir);
    cfg *c = (cfg *)1;
    int rc = cfg_load(&c, path);
    char want[1200];
    snprintf(want, sizeof want, "%s: ", path);
    t_check(rc == SOV_EIO && !c && !strncmp(err_msg(), want, strlen(want)) && !strchr(err_msg(), '\n'),
            "err: unreadable config file", "rc %d: %s", rc, err_msg());
}

static void test_sizes(void)
{
    static const struct {
        const char *s;
        int64_t v; /* -1: refused */
    } sz[] = {
        {"123", 123},       {"0", 0},           {"1K", 1024},          {"1k", 1024},
        {"512M", 512 << 20}, {"1.5G", 1610612736}, {"2KiB", 2048},      {"3MiB", 3 << 20},
        {"1GiB", 1 << 30},  {"1T", 1LL << 40},  {"0.5K", 512},         {"8 G", 8LL << 30},
        {"10B", 10},        {"1KB", 1024},      {"", -1},              {"G", -1},
        {"1.5X", -1},       {"-1", -1},         {"1e3", -1},           {"0x10", -1},
        {" 1", -1},         {"1G ", -1},        {"99999999999T", -1}, {"9223372036854775807", INT64_MAX},
        {"9223372036854775808", -1}, {".", -1}, {".5K", 512},         {"inf", -1},
    };
    int bad = 0;
    char why[200] = "";
    for (size_t i = 0; i < sizeof sz / sizeof sz[0]; i++) {
        int64_t v = -7;
        int rc = cfg_parse_size(sz[i].s, &v);
        bool ok = sz[i].v < 0 ? rc == -1 : rc == 0 && v == sz[i].v;
        if (!ok && !bad++)
            snprintf(why, sizeof why, "'%s': rc %d, %lld", sz[i].s, rc, (long long)v);
    }
    t_check(!bad && cfg_parse_size(NULL, &(int64_t){0}) == -1, "cfg_parse_size", "%d wrong, first %s", bad, why);

    static const struct {
        const char *s;
        double v; /* < 0: refused */
    } du[] = {
        {"250ms", 0.25}, {"5s", 5},  {"2m", 120}, {"1h", 3600}, {"3", 3},   {"1.5h", 5400}, {"0", 0},
        {"0.5", 0.5},    {"10 s", 10}, {"", -1},  {"5x", -1},   {"-2s", -1}, {"ms", -1},    {"5sec", -1},
        {"1e3", -1},     {"5S", -1}, {"nan", -1}, {"1d", -1},
    };
    bad = 0;
    for (size_t i = 0; i < sizeof du / sizeof du[0]; i++) {
        double v = -7;
        int rc = cfg_parse_duration(du[i].s, &v);
        bool ok = du[i].v < 0 ? rc == -1 : rc == 0 && fabs(v - du[i].v) < 1e-9;
        if (!ok && !bad++)
            snprintf(why, sizeof why, "'%s': rc %d, %g", du[i].s, rc, v);
    }
    t_check(!bad && cfg_parse_duration(NULL, &(double){0}) == -1, "cfg_parse_duration", "%d wrong, first %s", bad, why);
}

static void test_new(void)
{
    cfg *c = NULL;
    int rc = cfg_new(&c);
    t_check(rc == 0 && c && c->srv.port == -1 && c->srv.breaker_failures == 3 && c->srv.breaker_cooldown_s == 10 &&
                c->srv.health_interval_s == 5 && !c->srv.host && c->srv.max_body == 0 && c->n_backends == 0 &&
                c->n_aliases == 0 && c->n_keys == 0 && !c->path,
            "cfg_new: defaults", "rc %d", rc);
    if (c) {
        t_check(cfg_backend_find(c, "x") == -1 && cfg_alias_find(c, "x") == -1, "cfg_new: nothing to find", "found");
        char *out = NULL;
        size_t n = 0;
        FILE *f = open_memstream(&out, &n);
        cfg_print(c, f);
        fclose(f);
        t_check(strstr(out, "config OK: 0 models, 0 backends, 0 keys\n") != NULL, "cfg_print of an empty config", "%s",
                out);
        free(out);
    }
    cfg_free(c);
    cfg_free(NULL);
    t_check(cfg_backend_find(NULL, "x") == -1 && cfg_alias_find(NULL, "x") == -1, "look-ups on NULL", "found");
}

int main(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/sov-test-config-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        t_check(false, "temp dir", "mkdtemp %s failed", dir);
        return t_done();
    }
    setenv("SOVT_SERVER_KEY", "server-secret-1", 1);
    setenv("SOVT_CLOUD_KEY", "cloud-secret-2", 1);
    setenv("SOVT_ALICE", "alice-secret-3", 1);
    t_check(write_file("junk.gguf", "this is not a GGUF file, just text\n"), "write junk.gguf", "failed");

    char real[4096], link[1100];
    have_gguf = realpath(t_shared("models/stories260K.gguf"), real) != NULL;
    snprintf(link, sizeof link, "%s/m.gguf", dir);
    if (have_gguf)
        have_gguf = symlink(real, link) == 0;

    test_sizes();
    test_new();
    test_missing_file();
    test_openai_only();
    test_errors();
    if (have_gguf)
        test_full();
    else
        printf("INFO skipped gguf cases (no %s)\n", t_shared("models/stories260K.gguf"));

    unlink(link);
    char p[1100];
    snprintf(p, sizeof p, "%s/junk.gguf", dir);
    unlink(p);
    rmdir(dir);
    return t_done();
}
