/* config: the router's INI file (`sov serve --config FILE`), read with
 * libinih, validated whole before anything starts.
 *
 *   [server]            host, port, api_key_env, memory_budget, audit_log,
 *                       log_prompts, breaker_failures, breaker_cooldown,
 *                       health_interval, max_body
 *   [backend.NAME]      type = local | openai, then per type (see cfg_backend)
 *   [model.ALIAS]       backends = NAME, NAME...  (preference order), privacy,
 *                       balance, affinity, overflow_queue, overflow_wait,
 *                       remote_model
 *   [key.NAME]          key_env = VAR (or key = SECRET), privacy
 *
 * Sizes take K/M/G suffixes (powers of 1024), durations ms/s/m/h (a bare
 * number is seconds). Every error names the file, the line and the key. */
#ifndef SOV_CONFIG_H
#define SOV_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

enum { CFG_LOCAL = 1, CFG_OPENAI = 2 };
enum { CFG_ORDER = 0, CFG_LEAST = 1 }; /* balance: preference order, least outstanding */

#define CFG_MAX_REFS 16 /* backends of one alias */

typedef struct cfg_backend {
    char name[64];
    int type;                   /* CFG_LOCAL / CFG_OPENAI */
    int line;                   /* line of its [section] header */
    /* local */
    char *model;                /* GGUF path (checked readable and a GGUF at load) */
    int64_t n_ctx;              /* ctx_size: positions in all, split over the slots (0: as sov serve) */
    int64_t n_slots;            /* parallel (default 4) */
    int64_t threads;            /* 0: number of CPUs */
    int64_t n_batch;            /* batch (default 256) */
    int64_t queue;              /* queue (default 64) */
    int kv_type;                /* kv_type = f16 (default) / q8_0 / f32 (enum kv_type) */
    int64_t kv_size;            /* positions (0: default) */
    double kv_mem;              /* kv_mem: the KV pool as GiB instead (0: not given; whole blocks within it) */
    char *chat_template;        /* NULL: the model's own */
    bool mmap;                  /* mmap = true/false (default false) */
    bool no_prefix_cache;       /* prefix_cache = false */
    bool preload;               /* preload = true: load at start instead of on first use */
    double keep_alive_s;        /* keep_alive (default 5m); unload after this long idle; < 0 (-1): never */
    /* openai */
    char *url;                  /* base URL including /v1, e.g. http://198.18.0.2:8080/v1 (no trailing /) */
    char *origin;               /* scheme://host:port of url (health paths are relative to it) */
    char *api_key;              /* resolved from the env var api_key_env names (NULL: none) */
    char *api_key_env;
    double connect_timeout_s;   /* default 5 s */
    double first_byte_timeout_s;/* default 300 s: to the first byte of the answer (a non-streamed one is whole) */
    double idle_timeout_s;      /* default 60 s: longest silence inside a streamed answer */
    int64_t max_concurrent;     /* default 64: requests in flight at once; more are refused (next backend) */
    char *health;               /* health path: "/health" (default) or "/v1/models" */
    bool location_local;        /* location = local (only for a loopback URL): may take local-only requests */
} cfg_backend;

typedef struct cfg_alias {
    char name[128];
    int line;
    int refs[CFG_MAX_REFS];     /* indexes into cfg.backends, preference order */
    int n_refs;
    bool local_only;            /* privacy = local-only (default: any) */
    int balance;                /* balance = order (default) / least-outstanding */
    bool affinity_prefix;       /* affinity = prefix (default none); needs balance = least-outstanding */
    int64_t overflow_queue;     /* overflow_queue = N: local backend with more than N waiting -> next; -1 off */
    double overflow_wait_s;     /* overflow_wait = T: local estimated wait above T -> next; < 0 off */
    char *remote_model;         /* model name sent to openai backends (NULL: the alias) */
} cfg_alias;

typedef struct cfg_key {
    char name[64];
    int line;
    char *key;                  /* the secret (from key_env, or key) */
    bool local_only;            /* privacy = local-only */
} cfg_key;

typedef struct cfg_server {
    char *host;                 /* NULL: unset (command line / default) */
    int64_t port;               /* -1: unset */
    char *api_key;              /* from api_key_env: a key of class any (NULL: none) */
    int64_t memory_budget;      /* bytes for all local models together (0: MemAvailable less 1 GiB) */
    char *audit_log;            /* path of the JSON-lines audit log (NULL: none; "-" stderr) */
    bool log_prompts;
    int64_t breaker_failures;   /* consecutive failures that open a breaker (default 3) */
    double breaker_cooldown_s;  /* open -> half-open after this (default 10 s) */
    double health_interval_s;   /* between health checks of a backend (default 5 s) */
    int64_t max_body;           /* 0: unset */
} cfg_server;

typedef struct cfg {
    char *path;
    cfg_server srv;
    cfg_backend *backends;
    int n_backends;
    cfg_alias *aliases;
    int n_aliases;
    cfg_key *keys;
    int n_keys;
} cfg;

/* Reads and validates path. Returns 0 with *out (free with cfg_free), or a
 * negative code with err_msg() one line "FILE:LINE: [section] key: what is
 * wrong" (or "FILE: ..." when no line applies). */
int cfg_load(cfg **out, const char *path);

/* An empty config (no backends) to fill by hand, as `sov serve -m` does. */
int cfg_new(cfg **out);

void cfg_free(cfg *c);

/* Index of the backend / alias named name, or -1. */
int cfg_backend_find(const cfg *c, const char *name);
int cfg_alias_find(const cfg *c, const char *name);

/* Prints the effective routing table: every alias with its backends in
 * order, type, where, privacy and policy settings, and the keys' classes
 * (never the secrets). */
void cfg_print(const cfg *c, FILE *f);

/* Parses "1.5G", "512M", "800K", "123" (bytes) / "250ms", "5s", "2m", "1h",
 * "3" (seconds). Return 0 or -1. */
int cfg_parse_size(const char *s, int64_t *out);
int cfg_parse_duration(const char *s, double *out);

#endif
