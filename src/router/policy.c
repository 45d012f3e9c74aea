#include "policy.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

int pol_privacy(bool alias_local_only, bool key_local_only, const char *header, bool *local_only,
                const char **reason)
{
    bool hdr = false;
    if (header) {
        if (!strcasecmp(header, "local-only"))
            hdr = true;
        else if (strcasecmp(header, "any"))
            return -1;
    }
    *local_only = alias_local_only || key_local_only || hdr;
    *reason = alias_local_only ? "privacy: the model is local-only"
              : key_local_only ? "privacy: the API key is local-only"
              : hdr            ? "privacy: X-Sov-Privacy: local-only"
                               : NULL;
    return 0;
}

int pol_keep_local(pol_cand *c, int n, bool local_only)
{
    if (!local_only)
        return n;
    int k = 0;
    for (int i = 0; i < n; i++)
        if (c[i].local)
            c[k++] = c[i];
    return k;
}

/* 64-bit FNV-1a, then a final mix. */
static uint64_t hash64(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

void pol_replicas(pol_cand *c, int n, const char *key, size_t key_len, char *reason, size_t cap)
{
    /* stable insertion sort by in-flight count */
    for (int i = 1; i < n; i++) {
        pol_cand t = c[i];
        int j = i;
        while (j > 0 && c[j - 1].inflight > t.inflight) {
            c[j] = c[j - 1];
            j--;
        }
        c[j] = t;
    }
    snprintf(reason, cap, "least outstanding");
    if (!key || n < 2)
        return;
    uint64_t kh = hash64(0xcbf29ce484222325ull, key, key_len);
    int best = 0;
    uint64_t bw = 0;
    for (int i = 0; i < n; i++) {
        uint64_t w = mix(hash64(kh, c[i].name, strlen(c[i].name)));
        if (i == 0 || w > bw) {
            bw = w;
            best = i;
        }
    }
    int slack = 2 + (c[best].st.slots > 0 ? c[best].st.slots : 0);
    if (c[best].inflight >= c[0].inflight + slack) {
        snprintf(reason, cap, "affinity prefix overridden by load (%s has %d in flight)", c[best].name,
                 c[best].inflight);
        return;
    }
    pol_cand t = c[best];
    memmove(c + 1, c, (size_t)best * sizeof *c);
    c[0] = t;
    snprintf(reason, cap, "affinity prefix");
}

bool pol_overflow(pol_cand *c, int n, int64_t max_queue, double max_wait_s, char *reason, size_t cap)
{
    if (n < 2 || !c[0].local || (max_queue < 0 && max_wait_s < 0))
        return false;
    const bk_stats *s = &c[0].st;
    /* the router's own count of open requests stands in when the backend
     * cannot say how many wait */
    int waiting = s->queued >= 0 ? s->queued : (s->slots > 0 && c[0].inflight > s->slots ? c[0].inflight - s->slots : 0);
    if (max_queue >= 0 && waiting > max_queue)
        snprintf(reason, cap, "overflow: %s has %d waiting > %lld", c[0].name, waiting, (long long)max_queue);
    else if (max_wait_s >= 0 && s->est_wait_s > max_wait_s)
        snprintf(reason, cap, "overflow: %s estimated wait %.2f s > %.2f s", c[0].name, s->est_wait_s, max_wait_s);
    else
        return false;
    pol_cand t = c[0];
    memmove(c, c + 1, (size_t)(n - 1) * sizeof *c);
    c[n - 1] = t;
    return true;
}

bool pol_prefix_key(const char *body, size_t len, uint64_t *key)
{
    json_t *root = json_loadb(body, len, 0, NULL);
    if (!root)
        return false;
    uint64_t h = 0xcbf29ce484222325ull;
    bool any = false;
    json_t *msgs = json_object_get(root, "messages");
    if (json_is_array(msgs) && json_array_size(msgs) > 0) {
        json_t *pick = json_array_get(msgs, 0);
        size_t i;
        json_t *m;
        json_array_foreach(msgs, i, m) {
            const char *role = json_string_value(json_object_get(m, "role"));
            if (role && !strcmp(role, "system")) {
                pick = m;
                break;
            }
        }
        char *s = json_dumps(json_object_get(pick, "content"), JSON_COMPACT | JSON_ENCODE_ANY);
        if (s) {
            h = hash64(h, s, strlen(s));
            free(s);
            any = true;
        }
    }
    json_t *p = json_object_get(root, "prompt");
    if (json_is_string(p)) {
        size_t n = json_string_length(p);
        h = hash64(h, json_string_value(p), n < 256 ? n : 256);
        any = true;
    }
    json_t *tools = json_object_get(root, "tools");
    if (tools) {
        char *s = json_dumps(tools, JSON_COMPACT | JSON_SORT_KEYS);
        if (s) {
            h = hash64(h, s, strlen(s));
            free(s);
            any = true;
        }
    }
    json_decref(root);
    *key = h;
    return any;
}

bool brk_allow(breaker *b, double now, double cooldown_s)
{
    if (b->state == BRK_OPEN && now - b->opened_at >= cooldown_s) {
        b->state = BRK_HALF_OPEN;
        b->trial = false;
    }
    if (b->state == BRK_CLOSED)
        return true;
    if (b->state == BRK_HALF_OPEN && !b->trial) {
        b->trial = true;
        return true;
    }
    return false;
}

int brk_result(breaker *b, bool ok, double now, int threshold)
{
    int before = b->state;
    if (ok) {
        b->state = BRK_CLOSED;
        b->fails = 0;
        b->trial = false;
        return before;
    }
    b->fails++;
    if (b->state == BRK_HALF_OPEN || (b->state == BRK_CLOSED && b->fails >= threshold)) {
        b->state = BRK_OPEN;
        b->opened_at = now;
        b->trial = false;
        b->opens++;
    }
    return before;
}

void brk_probe(breaker *b, bool ok, double now, int threshold, double cooldown_s)
{
    if (!ok) {
        if (b->state != BRK_OPEN)
            brk_result(b, false, now, threshold);
        else
            b->opened_at = now; /* still down: no trial request until it answers its checks again */
        return;
    }
    if (b->state == BRK_OPEN && now - b->opened_at >= cooldown_s) {
        b->state = BRK_HALF_OPEN;
        b->trial = false;
    }
}

const char *brk_name(int state)
{
    return state == BRK_OPEN ? "open" : state == BRK_HALF_OPEN ? "half-open" : "closed";
}
