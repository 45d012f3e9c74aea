/* Unit tests of the router's policies (src/router/policy.c): privacy,
 * local filtering, replicas and prefix affinity, overflow, the breaker. */
#include "t.h"

#include "router/policy.h"

#include <string.h>

static pol_cand cand(int idx, const char *name, bool local, int inflight, int queued, int slots, double wait)
{
    pol_cand c;
    memset(&c, 0, sizeof c);
    c.idx = idx;
    c.name = name;
    c.local = local;
    c.inflight = inflight;
    c.st.queued = queued;
    c.st.running = 0;
    c.st.slots = slots;
    c.st.est_wait_s = wait;
    c.st.loaded = true;
    return c;
}

static void test_privacy(void)
{
    bool lo = false;
    const char *why = NULL;
    t_check(pol_privacy(false, false, NULL, &lo, &why) == 0 && !lo && !why, "privacy: nothing asks: any", "lo %d",
            lo);
    t_check(pol_privacy(true, false, NULL, &lo, &why) == 0 && lo && why, "privacy: alias local-only", "lo %d", lo);
    t_check(pol_privacy(false, true, NULL, &lo, &why) == 0 && lo && why, "privacy: key class local-only", "lo %d",
            lo);
    t_check(pol_privacy(false, false, "local-only", &lo, &why) == 0 && lo && why, "privacy: header local-only",
            "lo %d", lo);
    /* a header cannot lift a stricter class */
    t_check(pol_privacy(true, false, "any", &lo, &why) == 0 && lo, "privacy: header any cannot lift alias local-only",
            "lo %d", lo);
    t_check(pol_privacy(false, true, "any", &lo, &why) == 0 && lo, "privacy: header any cannot lift key local-only",
            "lo %d", lo);
    t_check(pol_privacy(false, false, "local", &lo, &why) == -1, "privacy: a bad header value is refused", "accepted");
}

static void test_keep_local(void)
{
    pol_cand c[4] = {cand(0, "box", false, 0, 0, 4, 0), cand(1, "ws", true, 0, 0, 4, 0),
                     cand(2, "box2", false, 0, 0, 4, 0), cand(3, "ws2", true, 0, 0, 4, 0)};
    int n = pol_keep_local(c, 4, true);
    t_check(n == 2 && c[0].idx == 1 && c[1].idx == 3, "keep_local: only local ones, order kept", "n %d first %d", n,
            c[0].idx);
    pol_cand d[2] = {cand(0, "box", false, 0, 0, 4, 0), cand(1, "box2", false, 0, 0, 4, 0)};
    t_check(pol_keep_local(d, 2, true) == 0, "keep_local: remote only -> none", "kept some");
    pol_cand e[2] = {cand(0, "box", false, 0, 0, 4, 0), cand(1, "ws", true, 0, 0, 4, 0)};
    t_check(pol_keep_local(e, 2, false) == 2 && e[0].idx == 0, "keep_local: not local-only keeps all", "changed");
}

static void test_replicas(void)
{
    char why[160];
    pol_cand c[3] = {cand(0, "a", false, 5, 0, 4, 0), cand(1, "b", false, 1, 0, 4, 0), cand(2, "c", false, 1, 0, 4, 0)};
    pol_replicas(c, 3, NULL, 0, why, sizeof why);
    t_check(c[0].idx == 1 && c[1].idx == 2 && c[2].idx == 0 && !strcmp(why, "least outstanding"),
            "replicas: fewest in flight first, ties in preference order", "%d %d %d (%s)", c[0].idx, c[1].idx,
            c[2].idx, why);

    /* affinity: the same key lands on the same replica, whatever the load
     * order; different keys spread */
    int hits[3] = {0, 0, 0};
    for (int k = 0; k < 300; k++) {
        char key[32];
        snprintf(key, sizeof key, "system prompt %d", k);
        pol_cand x[3] = {cand(0, "a", false, 0, 0, 4, 0), cand(1, "b", false, 0, 0, 4, 0),
                         cand(2, "c", false, 0, 0, 4, 0)};
        pol_replicas(x, 3, key, strlen(key), why, sizeof why);
        int first = x[0].idx;
        pol_cand y[3] = {cand(2, "c", false, 1, 0, 4, 0), cand(0, "a", false, 1, 0, 4, 0),
                         cand(1, "b", false, 0, 0, 4, 0)};
        pol_replicas(y, 3, key, strlen(key), why, sizeof why);
        if (y[0].idx != first || strcmp(why, "affinity prefix")) {
            t_check(false, "affinity: one key, one replica", "key %d: %d then %d (%s)", k, first, y[0].idx, why);
            return;
        }
        hits[first]++;
    }
    t_check(true, "affinity: one key, one replica", " ");
    t_check(hits[0] > 50 && hits[1] > 50 && hits[2] > 50, "affinity: 300 keys spread over 3 replicas",
            "%d %d %d", hits[0], hits[1], hits[2]);
    /* removing one replica moves only its keys (rendezvous hashing) */
    int moved = 0, kept = 0;
    for (int k = 0; k < 300; k++) {
        char key[32];
        snprintf(key, sizeof key, "system prompt %d", k);
        pol_cand x[3] = {cand(0, "a", false, 0, 0, 4, 0), cand(1, "b", false, 0, 0, 4, 0),
                         cand(2, "c", false, 0, 0, 4, 0)};
        pol_replicas(x, 3, key, strlen(key), why, sizeof why);
        if (x[0].idx == 2)
            continue;
        pol_cand y[2] = {cand(0, "a", false, 0, 0, 4, 0), cand(1, "b", false, 0, 0, 4, 0)};
        pol_replicas(y, 2, key, strlen(key), why, sizeof why);
        y[0].idx == x[0].idx ? kept++ : moved++;
    }
    t_check(moved == 0 && kept > 100, "affinity: a replica leaving moves only its own keys", "moved %d kept %d", moved,
            kept);
    /* load beats affinity past the slack (2 + slots) */
    const char *key = "system prompt 7";
    pol_cand x[2] = {cand(0, "a", false, 0, 0, 4, 0), cand(1, "b", false, 0, 0, 4, 0)};
    pol_replicas(x, 2, key, strlen(key), why, sizeof why);
    int home = x[0].idx;
    pol_cand y[2] = {cand(0, "a", false, home == 0 ? 6 : 0, 0, 4, 0), cand(1, "b", false, home == 1 ? 6 : 0, 0, 4, 0)};
    pol_replicas(y, 2, key, strlen(key), why, sizeof why);
    t_check(y[0].idx != home && strstr(why, "overridden by load"), "affinity: overridden when its replica has 6 more",
            "first %d home %d (%s)", y[0].idx, home, why);
    pol_cand z[2] = {cand(0, "a", false, home == 0 ? 5 : 0, 0, 4, 0), cand(1, "b", false, home == 1 ? 5 : 0, 0, 4, 0)};
    pol_replicas(z, 2, key, strlen(key), why, sizeof why);
    t_check(z[0].idx == home && !strcmp(why, "affinity prefix"), "affinity: kept with 5 more (within 2 + 4 slots)",
            "first %d home %d (%s)", z[0].idx, home, why);
}

static void test_overflow(void)
{
    char why[160] = "";
    pol_cand c[2] = {cand(0, "ws", true, 9, 5, 4, 3.0), cand(1, "box", false, 0, 0, 4, 0)};
    bool moved = pol_overflow(c, 2, 4, -1, why, sizeof why);
    t_check(moved && c[0].idx == 1 && c[1].idx == 0 && strstr(why, "5 waiting > 4"),
            "overflow: queue 5 > 4 moves the local one behind", "moved %d first %d (%s)", moved, c[0].idx, why);
    pol_cand d[2] = {cand(0, "ws", true, 8, 4, 4, 3.0), cand(1, "box", false, 0, 0, 4, 0)};
    t_check(!pol_overflow(d, 2, 4, -1, why, sizeof why) && d[0].idx == 0, "overflow: queue 4 = bound stays",
            "moved");
    pol_cand e[2] = {cand(0, "ws", true, 4, 0, 4, 2.5), cand(1, "box", false, 0, 0, 4, 0)};
    t_check(pol_overflow(e, 2, -1, 2.0, why, sizeof why) && e[0].idx == 1 && strstr(why, "estimated wait"),
            "overflow: estimated wait 2.5 s > 2 s", "first %d (%s)", e[0].idx, why);
    pol_cand f[2] = {cand(0, "ws", true, 40, 30, 4, 30), cand(1, "box", false, 0, 0, 4, 0)};
    t_check(!pol_overflow(f, 2, -1, -1, why, sizeof why), "overflow: both bounds off: never", "moved");
    pol_cand g[1] = {cand(0, "ws", true, 40, 30, 4, 30)};
    t_check(!pol_overflow(g, 1, 0, 0, why, sizeof why), "overflow: nowhere to go: stays", "moved");
    pol_cand h[2] = {cand(0, "box", false, 40, 30, 4, 30), cand(1, "ws", true, 0, 0, 4, 0)};
    t_check(!pol_overflow(h, 2, 0, 0, why, sizeof why), "overflow: only a local first choice overflows", "moved");
    /* unknown queue: what the router has in flight beyond the slots */
    pol_cand u[2] = {cand(0, "ws", true, 10, -1, 4, -1), cand(1, "box", false, 0, 0, 4, 0)};
    t_check(pol_overflow(u, 2, 4, -1, why, sizeof why) && u[0].idx == 1,
            "overflow: queue unknown: 10 in flight over 4 slots = 6 waiting > 4", "(%s)", why);
}

static void test_breaker(void)
{
    breaker b;
    memset(&b, 0, sizeof b);
    double t = 100;
    t_check(brk_allow(&b, t, 10), "breaker: closed allows", "refused");
    brk_result(&b, false, t, 3);
    brk_result(&b, false, t, 3);
    t_check(b.state == BRK_CLOSED && brk_allow(&b, t, 10), "breaker: 2 of 3 failures: still closed", "state %d",
            b.state);
    brk_result(&b, true, t, 3);
    brk_result(&b, false, t, 3);
    brk_result(&b, false, t, 3);
    t_check(b.state == BRK_CLOSED, "breaker: a success resets the count", "state %d", b.state);
    int before = brk_result(&b, false, t, 3);
    t_check(before == BRK_CLOSED && b.state == BRK_OPEN && b.opens == 1, "breaker: 3 consecutive failures open it",
            "state %d opens %lld", b.state, (long long)b.opens);
    t_check(!brk_allow(&b, t + 5, 10), "breaker: open refuses within the cooldown", "allowed");
    t_check(brk_allow(&b, t + 10, 10) && b.state == BRK_HALF_OPEN, "breaker: half-open after the cooldown: one trial",
            "state %d", b.state);
    t_check(!brk_allow(&b, t + 10, 10), "breaker: half-open: one trial at a time", "second allowed");
    brk_result(&b, false, t + 11, 3);
    t_check(b.state == BRK_OPEN && b.opens == 2, "breaker: a failed trial opens it again", "state %d", b.state);
    t_check(!brk_allow(&b, t + 15, 10), "breaker: reopened: a new cooldown", "allowed");
    /* health checks: a failing one keeps it open, a passing one lets it
     * half-open after the cooldown, a request closes it */
    brk_probe(&b, false, t + 20, 3, 10);
    t_check(!brk_allow(&b, t + 25, 10), "breaker: a failed check while open extends the cooldown", "allowed");
    brk_probe(&b, true, t + 31, 3, 10);
    t_check(b.state == BRK_HALF_OPEN, "breaker: a passing check after the cooldown: half-open", "state %d", b.state);
    t_check(brk_allow(&b, t + 31, 10), "breaker: half-open takes a trial", "refused");
    brk_result(&b, true, t + 31, 3);
    t_check(b.state == BRK_CLOSED && b.fails == 0, "breaker: a successful trial closes it", "state %d", b.state);
    memset(&b, 0, sizeof b);
    for (int i = 0; i < 3; i++)
        brk_probe(&b, false, t, 3, 10);
    t_check(b.state == BRK_OPEN, "breaker: 3 failed checks open it", "state %d", b.state);
    brk_probe(&b, true, t + 1, 3, 10);
    t_check(b.state == BRK_OPEN, "breaker: a passing check within the cooldown does not", "state %d", b.state);
    t_check(!strcmp(brk_name(BRK_OPEN), "open") && !strcmp(brk_name(BRK_HALF_OPEN), "half-open") &&
                !strcmp(brk_name(BRK_CLOSED), "closed"),
            "breaker: names", "wrong");
}

static void test_prefix_key(void)
{
    uint64_t a, b, c, d;
    const char *m1 = "{\"messages\":[{\"role\":\"system\",\"content\":\"You are terse.\"},{\"role\":\"user\","
                     "\"content\":\"hi\"}]}";
    const char *m2 = "{\"messages\":[{\"role\":\"system\",\"content\":\"You are terse.\"},{\"role\":\"user\","
                     "\"content\":\"something else entirely\"}]}";
    const char *m3 = "{\"messages\":[{\"role\":\"system\",\"content\":\"You are verbose.\"},{\"role\":\"user\","
                     "\"content\":\"hi\"}]}";
    bool ok = pol_prefix_key(m1, strlen(m1), &a) && pol_prefix_key(m2, strlen(m2), &b) &&
              pol_prefix_key(m3, strlen(m3), &c);
    t_check(ok && a == b && a != c, "prefix key: same system prompt same key, another one differs", "ok %d", ok);
    const char *t1 = "{\"messages\":[{\"role\":\"system\",\"content\":\"You are terse.\"}],\"tools\":[{\"type\":"
                     "\"function\",\"function\":{\"name\":\"f\"}}]}";
    t_check(pol_prefix_key(t1, strlen(t1), &d) && d != a, "prefix key: tools are part of it", "same");
    const char *p1 = "{\"prompt\":\"Once upon a time\"}";
    t_check(pol_prefix_key(p1, strlen(p1), &d), "prefix key: a completion prompt", "none");
    const char *none = "{\"model\":\"x\"}";
    t_check(!pol_prefix_key(none, strlen(none), &d), "prefix key: nothing to key on", "keyed");
    t_check(!pol_prefix_key("not json", 8, &d), "prefix key: not JSON", "keyed");
}

int main(void)
{
    test_privacy();
    test_keep_local();
    test_replicas();
    test_overflow();
    test_breaker();
    test_prefix_key();
    return t_done();
}
