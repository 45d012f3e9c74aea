/* router_bench: what the router (`sov serve --config`, an openai backend)
 * adds to a request, measured on 127.0.0.1 (scripts/bench_router.sh runs it
 * as part of `make bench`). Plain blocking sockets, HTTP/1.1 keep-alive,
 * TCP_NODELAY everywhere; every socket wait is bounded by SO_RCVTIMEO.
 *
 *   router_bench upstream [--port N] [--max-s S]
 *       A fake OpenAI upstream: a real HTTP/1.1 server (a thread per
 *       connection) that answers POST /v1/completions (and
 *       /v1/chat/completions) at once with a fixed JSON body or, for
 *       "stream": true, "max_tokens" SSE events (chunked) with "x_gap_us"
 *       microseconds between them; each event carries "t": its send time
 *       (CLOCK_MONOTONIC ns), so a client on this machine knows each
 *       chunk's one-way delay. GET /health and /v1/models answer too. Prints
 *       the port on stdout; exits after --max-s seconds (default 600).
 *
 *   router_bench run --direct URL --router URL [options]
 *       The load: direct to the upstream and through the router, always
 *       interleaved (alternating order) so drift hits both alike.
 *         --direct-model M / --router-model A   "model" of each (default "fake" / "fast")
 *         --box                the upstream is a real `sov serve` (no "t" in
 *                              its events, which may hold several tokens: the
 *                              streamed part compares the time to the last
 *                              token, throughput counts usage tokens;
 *                              ignore_eos, temperature 0)
 *         --n N                sequential non-streamed requests per side (2000)
 *         --idle-n N --idle-us U  then N more each with U us pauses (0: none)
 *         --router-pid PID     the router's CPU per request / chunk (/proc/PID/stat)
 *         --max-tokens K       tokens of a non-streamed request (4)
 *         --stream-reqs R      sequential streamed requests per side (20)
 *         --chunks C           events per streamed request (100)
 *         --gap-us G           gap between events asked of the fake upstream (1000)
 *         --streams S          concurrent streams of the throughput part (16)
 *         --tp-chunks C        events per stream there (500; --box: tokens)
 *         --tp-gap-us G        gap there (1000); --tp-flood C also runs it with gap 0
 *         --tp-reps R          alternating repetitions per side (3); the ratio
 *                              is the median of the reps' router / direct
 *         --json FILE          the numbers as JSON
 *   Prints the table with the targets (p50 added < 0.2 ms, p99 added < 1 ms
 *   per request; no throughput loss at 16 streams) and met / NOT met. The
 *   added latency is the difference of the two distributions' percentiles
 *   (router p50 - direct p50, router p99 - direct p99), not a percentile of
 *   paired differences. Exit 0 whether or not the targets are met; 1 when a
 *   request fails. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define IO_TIMEOUT_S 30 /* longest wait on any socket */

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void die(const char *fmt, const char *a)
{
    fprintf(stderr, "router_bench: ");
    fprintf(stderr, fmt, a);
    fprintf(stderr, "\n");
    exit(1);
}

static void sock_opts(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct timeval tv = {.tv_sec = IO_TIMEOUT_S};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* A number after "key": in s (JSON, whitespace allowed), or dflt. */
static long json_int(const char *s, const char *key, long dflt)
{
    const char *p = strstr(s, key);
    if (!p)
        return dflt;
    p += strlen(key);
    while (*p == ' ' || *p == '\t' || *p == ':')
        p++;
    if ((*p < '0' || *p > '9') && *p != '-')
        return dflt;
    return strtol(p, NULL, 10);
}

static bool json_true(const char *s, const char *key)
{
    const char *p = strstr(s, key);
    if (!p)
        return false;
    p += strlen(key);
    while (*p == ' ' || *p == '\t' || *p == ':')
        p++;
    return !strncmp(p, "true", 4);
}

/* ================= the fake upstream ================= */

#define UP_BUF 65536

static const char UP_BODY[] =
    "{\"id\":\"cmpl-bench\",\"object\":\"text_completion\",\"created\":0,\"model\":\"fake\",\"choices\":[{\"index\":0,"
    "\"text\":\" Once upon a time\",\"logprobs\":null,\"finish_reason\":\"length\"}],\"usage\":{\"prompt_tokens\":4,"
    "\"completion_tokens\":4,\"total_tokens\":8}}";
static const char UP_CHAT_BODY[] =
    "{\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion\",\"created\":0,\"model\":\"fake\",\"choices\":[{\"index\":0,"
    "\"message\":{\"role\":\"assistant\",\"content\":\" Once upon a time\"},\"finish_reason\":\"length\"}],"
    "\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":4,\"total_tokens\":8}}";

static int up_reply(int fd, int status, const char *ctype, const char *body)
{
    char h[512];
    size_t bl = strlen(body);
    int n = snprintf(h, sizeof h, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n\r\n", status,
                     status == 200 ? "OK" : "Not Found", ctype, bl);
    /* one send: headers and body in one segment */
    char *all = malloc((size_t)n + bl);
    if (!all)
        return -1;
    memcpy(all, h, (size_t)n);
    memcpy(all + n, body, bl);
    int rc = send_all(fd, all, (size_t)n + bl);
    free(all);
    return rc;
}

static int up_stream(int fd, bool chat, long chunks, long gap_us)
{
    static const char hdr[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
                              "Transfer-Encoding: chunked\r\n\r\n";
    if (send_all(fd, hdr, sizeof hdr - 1))
        return -1;
    int64_t t0 = now_ns();
    char ev[512], ck[600];
    for (long i = 0; i < chunks; i++) {
        if (gap_us > 0 && i > 0) {
            int64_t due = t0 + i * gap_us * 1000LL;
            struct timespec ts = {.tv_sec = (time_t)(due / 1000000000LL), .tv_nsec = (long)(due % 1000000000LL)};
            while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
                ;
        }
        int64_t t = now_ns();
        int n = chat ? snprintf(ev, sizeof ev,
                                "data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":0,"
                                "\"model\":\"fake\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" tok\"},"
                                "\"finish_reason\":null}],\"t\":%lld}\n\n",
                                (long long)t)
                     : snprintf(ev, sizeof ev,
                                "data: {\"id\":\"cmpl-bench\",\"object\":\"text_completion\",\"created\":0,"
                                "\"model\":\"fake\",\"choices\":[{\"index\":0,\"text\":\" tok\","
                                "\"finish_reason\":null}],\"t\":%lld}\n\n",
                                (long long)t);
        int k = snprintf(ck, sizeof ck, "%x\r\n%s\r\n", n, ev);
        if (send_all(fd, ck, (size_t)k))
            return -1;
    }
    static const char tail[] = "e\r\ndata: [DONE]\n\n\r\n0\r\n\r\n";
    return send_all(fd, tail, sizeof tail - 1);
}

static void *up_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char *buf = malloc(UP_BUF + 1);
    size_t len = 0;
    if (!buf)
        goto out;
    for (;;) {
        /* headers */
        char *eoh;
        for (;;) {
            buf[len] = 0;
            if ((eoh = strstr(buf, "\r\n\r\n")))
                break;
            if (len >= UP_BUF)
                goto out;
            ssize_t k = recv(fd, buf + len, UP_BUF - len, 0);
            if (k <= 0)
                goto out;
            len += (size_t)k;
        }
        size_t hl = (size_t)(eoh - buf) + 4;
        long cl = 0;
        bool close_after = false;
        for (char *l = strstr(buf, "\r\n"); l && l < eoh; l = strstr(l + 2, "\r\n")) {
            const char *h = l + 2;
            if (!strncasecmp(h, "Content-Length:", 15))
                cl = strtol(h + 15, NULL, 10);
            else if (!strncasecmp(h, "Connection:", 11)) {
                const char *e = strstr(h, "\r\n"), *v = h + 11;
                while (*v == ' ')
                    v++;
                close_after = e && e - v >= 5 && !strncasecmp(v, "close", 5);
            }
        }
        if (cl < 0 || hl + (size_t)cl > UP_BUF)
            goto out;
        while (len < hl + (size_t)cl) {
            ssize_t k = recv(fd, buf + len, UP_BUF - len, 0);
            if (k <= 0)
                goto out;
            len += (size_t)k;
        }
        char save = buf[hl + (size_t)cl];
        buf[hl + (size_t)cl] = 0;
        const char *body = buf + hl;
        int rc;
        bool post = !strncmp(buf, "POST ", 5);
        const char *path = buf + (post ? 5 : 4);
        bool chat = !strncmp(path, "/v1/chat/completions ", 21);
        if (post && (chat || !strncmp(path, "/v1/completions ", 16))) {
            if (json_true(body, "\"stream\""))
                rc = up_stream(fd, chat, json_int(body, "\"max_tokens\"", 16), json_int(body, "\"x_gap_us\"", 0));
            else
                rc = up_reply(fd, 200, "application/json", chat ? UP_CHAT_BODY : UP_BODY);
        } else if (!strncmp(buf, "GET /health ", 12) || !strncmp(buf, "GET /v1/health ", 15)) {
            rc = up_reply(fd, 200, "application/json", "{\"status\":\"ok\"}");
        } else if (!strncmp(buf, "GET /v1/models", 14)) {
            rc = up_reply(fd, 200, "application/json",
                          "{\"object\":\"list\",\"data\":[{\"id\":\"fake\",\"object\":\"model\",\"owned_by\":\"bench\"}]}");
        } else {
            rc = up_reply(fd, 404, "application/json", "{\"error\":{\"message\":\"no such route\"}}");
        }
        buf[hl + (size_t)cl] = save;
        if (rc || close_after)
            goto out;
        memmove(buf, buf + hl + (size_t)cl, len - hl - (size_t)cl);
        len -= hl + (size_t)cl;
    }
out:
    free(buf);
    close(fd);
    return NULL;
}

static void on_alarm(int sig)
{
    (void)sig;
    _exit(0);
}

static int cmd_upstream(int argc, char **argv)
{
    int port = 0, max_s = 600;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--port") && i + 1 < argc)
            port = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--max-s") && i + 1 < argc)
            max_s = atoi(argv[++i]);
        else
            die("upstream: unknown option %s", argv[i]);
    }
    signal(SIGALRM, on_alarm);
    alarm((unsigned)max_s);
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(ls, (struct sockaddr *)&a, sizeof a) || listen(ls, 128))
        die("upstream: cannot listen on 127.0.0.1: %s", strerror(errno));
    socklen_t al = sizeof a;
    getsockname(ls, (struct sockaddr *)&a, &al);
    printf("%d\n", ntohs(a.sin_port));
    fflush(stdout);
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    for (;;) {
        int fd = accept(ls, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE)
                continue;
            die("upstream: accept: %s", strerror(errno));
        }
        sock_opts(fd);
        pthread_t th;
        if (pthread_create(&th, &at, up_conn, (void *)(intptr_t)fd))
            close(fd);
    }
    return 0;
}

/* ================= the client ================= */

typedef struct target {
    char host[64];
    int port;
    const char *model;
    const char *name;
} target;

typedef struct conn {
    const target *tg;
    int fd;
    char buf[65536];
    size_t off, len;
    int64_t t_recv; /* time the latest recv returned */
} conn;

/* what a response's body goes to */
typedef struct sink {
    bool sse;
    bool box;
    /* whole body */
    char *body;
    size_t blen, bcap;
    /* SSE */
    char line[8192];
    size_t ll;
    int64_t events;  /* all requests into this sink */
    int64_t tokens;  /* --box: usage.completion_tokens of the final events */
    int64_t req_ev;  /* this request's */
    int64_t t_first, t_prev;
    int64_t t_hdr;   /* when the status line came */
    double *lat; /* per-event delay (us): arrival - "t" (fake) or gap to the previous (box) */
    size_t nlat, caplat;
} sink;

static void parse_url(target *t, const char *url)
{
    const char *p = !strncmp(url, "http://", 7) ? url + 7 : url;
    const char *c = strchr(p, ':');
    if (!c || (size_t)(c - p) >= sizeof t->host)
        die("bad url %s (want http://HOST:PORT)", url);
    memcpy(t->host, p, (size_t)(c - p));
    t->host[c - p] = 0;
    t->port = atoi(c + 1);
}

static void conn_open(conn *c)
{
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (c->fd < 0)
        die("socket: %s", strerror(errno));
    sock_opts(c->fd);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)c->tg->port)};
    if (inet_pton(AF_INET, c->tg->host, &a.sin_addr) != 1)
        die("not an IPv4 address: %s", c->tg->host);
    if (connect(c->fd, (struct sockaddr *)&a, sizeof a))
        die("connect: %s", strerror(errno));
    c->off = c->len = 0;
}

static void conn_close(conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

/* More bytes into c->buf; 0 or -1 (closed / error / timeout). */
static int fill(conn *c)
{
    if (c->off > 0 && c->off == c->len)
        c->off = c->len = 0;
    if (c->len == sizeof c->buf) {
        if (!c->off)
            return -1;
        memmove(c->buf, c->buf + c->off, c->len - c->off);
        c->len -= c->off;
        c->off = 0;
    }
    ssize_t k;
    do
        k = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
    while (k < 0 && errno == EINTR);
    c->t_recv = now_ns();
    if (k <= 0)
        return -1;
    c->len += (size_t)k;
    return 0;
}

static void sink_line(sink *s, const char *p, size_t n, int64_t t)
{
    if (n && p[n - 1] == '\r')
        n--;
    if (n < 5 || memcmp(p, "data:", 5))
        return;
    p += 5;
    n -= 5;
    while (n && *p == ' ') {
        p++;
        n--;
    }
    if (n >= 6 && !memcmp(p, "[DONE]", 6))
        return;
    if (s->box) { /* the box: tokens from the usage event (stream_options.include_usage), not counted as a chunk */
        const char *u = memmem(p, n, "\"completion_tokens\":", 20);
        if (u) {
            s->tokens += strtol(u + 20, NULL, 10);
            return;
        }
    }
    s->events++;
    s->req_ev++;
    double v = -1;
    if (!s->box) {
        char tmp[64];
        const char *q = memmem(p, n, "\"t\":", 4);
        if (q) {
            size_t k = (size_t)(p + n - (q + 4));
            if (k > sizeof tmp - 1)
                k = sizeof tmp - 1;
            memcpy(tmp, q + 4, k);
            tmp[k] = 0;
            v = (double)(t - strtoll(tmp, NULL, 10)) / 1e3;
        }
    }
    if (s->req_ev == 1)
        s->t_first = t;
    s->t_prev = t;
    if (v >= 0 && s->lat) {
        if (s->nlat == s->caplat) {
            s->caplat = s->caplat ? s->caplat * 2 : 4096;
            s->lat = realloc(s->lat, s->caplat * sizeof *s->lat);
            if (!s->lat)
                die("%s", "out of memory");
        }
        s->lat[s->nlat++] = v;
    }
}

static void sink_data(sink *s, const char *p, size_t n, int64_t t)
{
    if (!s->sse) {
        if (s->blen + n + 1 > s->bcap) {
            s->bcap = (s->blen + n + 1) * 2;
            if (!(s->body = realloc(s->body, s->bcap)))
                die("%s", "out of memory");
        }
        memcpy(s->body + s->blen, p, n);
        s->blen += n;
        s->body[s->blen] = 0;
        return;
    }
    while (n) {
        const char *nl = memchr(p, '\n', n);
        size_t k = nl ? (size_t)(nl - p) : n;
        size_t room = sizeof s->line - s->ll, cpy = k < room ? k : room;
        memcpy(s->line + s->ll, p, cpy);
        s->ll += cpy;
        if (!nl)
            return;
        sink_line(s, s->line, s->ll, t);
        s->ll = 0;
        p += k + 1;
        n -= k + 1;
    }
}

/* A line (without CRLF) from c; NULL on error. Points into c->buf. */
static char *read_line(conn *c)
{
    for (;;) {
        char *s = c->buf + c->off;
        char *e = memmem(s, c->len - c->off, "\r\n", 2);
        if (e) {
            *e = 0;
            c->off = (size_t)(e - c->buf) + 2;
            return s;
        }
        if (fill(c))
            return NULL;
    }
}

/* One request on c (reopened once if the server closed the kept-alive
 * connection before answering). Returns the HTTP status, or -1. */
static int request(conn *c, const char *path, const char *body, sink *s)
{
    char hdr[512];
    size_t bl = strlen(body);
    int hn = snprintf(hdr, sizeof hdr,
                      "POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                      path, c->tg->host, c->tg->port, bl);
    char *req = malloc((size_t)hn + bl);
    if (!req)
        die("%s", "out of memory");
    memcpy(req, hdr, (size_t)hn);
    memcpy(req + hn, body, bl);
    int status = -1;
    for (int attempt = 0; attempt < 2; attempt++) {
        if (c->fd < 0)
            conn_open(c);
        if (send_all(c->fd, req, (size_t)hn + bl)) {
            conn_close(c);
            continue;
        }
        char *l = read_line(c);
        if (!l) { /* closed before an answer: a stale keep-alive connection */
            conn_close(c);
            continue;
        }
        if (strncmp(l, "HTTP/1.", 7) || strlen(l) < 12)
            break;
        status = atoi(l + 9);
        s->t_hdr = c->t_recv;
        long cl = -1;
        bool chunked = false, close_after = false;
        for (;;) {
            if (!(l = read_line(c)))
                goto broken;
            if (!*l)
                break;
            if (!strncasecmp(l, "Content-Length:", 15))
                cl = strtol(l + 15, NULL, 10);
            else if (!strncasecmp(l, "Transfer-Encoding:", 18) && strcasestr(l, "chunked"))
                chunked = true;
            else if (!strncasecmp(l, "Connection:", 11) && strcasestr(l, "close"))
                close_after = true;
        }
        if (chunked) {
            for (;;) {
                if (!(l = read_line(c)))
                    goto broken;
                long sz = strtol(l, NULL, 16);
                if (sz == 0) {
                    for (;;) { /* trailers up to the empty line */
                        if (!(l = read_line(c)))
                            goto broken;
                        if (!*l)
                            break;
                    }
                    break;
                }
                while (sz > 0) {
                    if (c->off == c->len && fill(c))
                        goto broken;
                    size_t have = c->len - c->off, k = have < (size_t)sz ? have : (size_t)sz;
                    sink_data(s, c->buf + c->off, k, c->t_recv);
                    c->off += k;
                    sz -= (long)k;
                }
                if (!(l = read_line(c)) || *l)
                    goto broken;
            }
        } else if (cl >= 0) {
            while (cl > 0) {
                if (c->off == c->len && fill(c))
                    goto broken;
                size_t have = c->len - c->off, k = have < (size_t)cl ? have : (size_t)cl;
                sink_data(s, c->buf + c->off, k, c->t_recv);
                c->off += k;
                cl -= (long)k;
            }
        } else { /* to the end of the connection */
            while (fill(c) == 0) {
                sink_data(s, c->buf + c->off, c->len - c->off, c->t_recv);
                c->off = c->len;
            }
            close_after = true;
        }
        if (close_after)
            conn_close(c);
        free(req);
        return status;
    broken:
        conn_close(c);
        free(req);
        return -1;
    }
    free(req);
    return status;
}

/* ---- the run ---- */

typedef struct opts {
    target direct, router;
    bool box;
    int idle_n, idle_us, router_pid;
    int n, max_tokens, stream_reqs, chunks, gap_us, streams, tp_chunks, tp_gap_us, tp_flood, tp_reps;
    const char *json;
} opts;

static const opts *g_o;

static void body_for(char *b, size_t cap, const target *t, bool stream, int tokens, int gap_us)
{
    if (g_o->box)
        snprintf(b, cap,
                 "{\"model\":\"%s\",\"prompt\":\"Once upon a time\",\"max_tokens\":%d,\"temperature\":0,"
                 "\"ignore_eos\":true,\"stream\":%s%s}",
                 t->model, tokens, stream ? "true" : "false",
                 stream ? ",\"stream_options\":{\"include_usage\":true}" : "");
    else
        snprintf(b, cap, "{\"model\":\"%s\",\"prompt\":\"Once upon a time\",\"max_tokens\":%d,\"x_gap_us\":%d,"
                 "\"stream\":%s}",
                 t->model, tokens, gap_us, stream ? "true" : "false");
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* nearest-rank percentile of sorted v[0..n) */
static double pct(const double *v, size_t n, double p)
{
    if (!n)
        return 0;
    size_t i = (size_t)(p / 100.0 * (double)n + 0.999999);
    if (i < 1)
        i = 1;
    if (i > n)
        i = n;
    return v[i - 1];
}

/* one non-streamed request: microseconds */
static double one_whole(conn *c)
{
    char b[512];
    body_for(b, sizeof b, c->tg, false, g_o->max_tokens, 0);
    sink s = {0};
    int64_t t0 = now_ns();
    int st = request(c, "/v1/completions", b, &s);
    int64_t t1 = now_ns();
    if (st != 200 || !s.body || !strstr(s.body, "\"choices\"")) {
        fprintf(stderr, "router_bench: %s: non-streamed request answered %d: %.300s\n", c->tg->name, st,
                s.body ? s.body : "");
        exit(1);
    }
    free(s.body);
    return (double)(t1 - t0) / 1e3;
}

typedef struct lat4 {
    double d50, d99, r50, r99;
} lat4;

/* CPU time the router process used so far (us), or -1 */
static double router_cpu_us(void)
{
    if (g_o->router_pid <= 0)
        return -1;
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", g_o->router_pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    const char *p = strrchr(buf, ')'); /* the fields after "(comm)" */
    unsigned long long ut = 0, st = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) * 1e6 / (double)sysconf(_SC_CLK_TCK);
}

/* n sequential non-streamed requests to each side, alternating order, a
 * pause of think_us before each (untimed); *cpu_us: the router's CPU per
 * request (when --router-pid) */
static lat4 per_request(conn *cd, conn *cr, int n, int think_us, double *cpu_us)
{
    double *ld = malloc((size_t)n * sizeof *ld), *lr = malloc((size_t)n * sizeof *lr);
    if (!ld || !lr)
        die("%s", "out of memory");
    double c0 = router_cpu_us();
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < 2; k++) {
            bool rt = (k ^ (i & 1)) != 0;
            if (think_us > 0)
                usleep((useconds_t)think_us);
            if (rt)
                lr[i] = one_whole(cr);
            else
                ld[i] = one_whole(cd);
        }
    }
    double c1 = router_cpu_us();
    if (cpu_us)
        *cpu_us = c0 >= 0 && c1 >= 0 ? (c1 - c0) / n : -1;
    qsort(ld, (size_t)n, sizeof *ld, cmp_d);
    qsort(lr, (size_t)n, sizeof *lr, cmp_d);
    lat4 r = {pct(ld, (size_t)n, 50), pct(ld, (size_t)n, 99), pct(lr, (size_t)n, 50), pct(lr, (size_t)n, 99)};
    free(ld);
    free(lr);
    return r;
}

/* one streamed request into s (events appended); returns microseconds to
 * the first event (*hdr_us: to the status line, *last_us: to the last event) */
static double one_stream(conn *c, sink *s, int chunks, int gap_us, double *hdr_us, double *last_us)
{
    char b[512];
    body_for(b, sizeof b, c->tg, true, chunks, gap_us);
    s->sse = true;
    s->box = g_o->box;
    s->ll = 0;
    s->req_ev = 0;
    int64_t ev0 = s->events, tk0 = s->tokens;
    int64_t t0 = now_ns();
    int st = request(c, "/v1/completions", b, s);
    int64_t got = g_o->box ? s->tokens - tk0 : s->events - ev0;
    if (st != 200 || got < chunks || s->events == ev0) {
        fprintf(stderr, "router_bench: %s: streamed request answered %d with %lld of %d %s\n", c->tg->name, st,
                (long long)got, chunks, g_o->box ? "tokens" : "events");
        exit(1);
    }
    if (hdr_us)
        *hdr_us = (double)(s->t_hdr - t0) / 1e3;
    if (last_us)
        *last_us = (double)(s->t_prev - t0) / 1e3;
    return (double)(s->t_first - t0) / 1e3;
}

typedef struct tp_arg {
    const target *tg;
    int chunks, gap_us;
    pthread_barrier_t *bar;
    int64_t events;
    double ttft_us;
} tp_arg;

static void *tp_thread(void *p)
{
    tp_arg *a = p;
    conn *c = calloc(1, sizeof *c);
    if (!c)
        die("%s", "out of memory");
    c->tg = a->tg;
    c->fd = -1;
    conn_open(c);
    sink s = {0};
    pthread_barrier_wait(a->bar);
    a->ttft_us = one_stream(c, &s, a->chunks, a->gap_us, NULL, NULL);
    a->events = g_o->box ? s.tokens : s.events;
    conn_close(c);
    free(c);
    return NULL;
}

static int64_t g_events; /* events the throughput part received in all */

/* S concurrent streams of chunks events each: events per second */
static double throughput(const target *tg, int chunks, int gap_us, double *ttft_p50)
{
    int S = g_o->streams;
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, (unsigned)S + 1);
    tp_arg *a = calloc((size_t)S, sizeof *a);
    pthread_t *th = calloc((size_t)S, sizeof *th);
    if (!a || !th)
        die("%s", "out of memory");
    for (int i = 0; i < S; i++) {
        a[i] = (tp_arg){.tg = tg, .chunks = chunks, .gap_us = gap_us, .bar = &bar};
        if (pthread_create(&th[i], NULL, tp_thread, &a[i]))
            die("%s", "pthread_create failed");
    }
    pthread_barrier_wait(&bar);
    int64_t t0 = now_ns();
    int64_t ev = 0;
    double *tt = calloc((size_t)S, sizeof *tt);
    for (int i = 0; i < S; i++) {
        pthread_join(th[i], NULL);
        ev += a[i].events;
        tt[i] = a[i].ttft_us;
    }
    g_events += ev;
    int64_t t1 = now_ns();
    qsort(tt, (size_t)S, sizeof *tt, cmp_d);
    if (ttft_p50)
        *ttft_p50 = pct(tt, (size_t)S, 50);
    pthread_barrier_destroy(&bar);
    free(a);
    free(th);
    free(tt);
    return (double)ev / ((double)(t1 - t0) / 1e9);
}

static const char *met(bool ok) { return ok ? "met" : "NOT met"; }

/* a negative difference: the direct side's tail was the slower one (other load) */
static const char *noise(double added_us) { return added_us < 0 ? "   (below 0: noise on the direct side)" : ""; }

static int cmd_run(int argc, char **argv)
{
    static opts o = {.n = 2000, .max_tokens = 4, .stream_reqs = 20, .chunks = 100, .gap_us = 1000, .streams = 16,
                     .tp_chunks = 500, .tp_gap_us = 1000, .tp_flood = 0, .tp_reps = 3};
    const char *du = NULL, *ru = NULL;
    o.direct.model = "fake";
    o.router.model = "fast";
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
#define OPT(name) (!strcmp(a, name) && v && ++i)
        if (OPT("--direct"))
            du = v;
        else if (OPT("--router"))
            ru = v;
        else if (OPT("--direct-model"))
            o.direct.model = v;
        else if (OPT("--router-model"))
            o.router.model = v;
        else if (!strcmp(a, "--box"))
            o.box = true;
        else if (OPT("--n"))
            o.n = atoi(v);
        else if (OPT("--idle-n"))
            o.idle_n = atoi(v);
        else if (OPT("--idle-us"))
            o.idle_us = atoi(v);
        else if (OPT("--router-pid"))
            o.router_pid = atoi(v);
        else if (OPT("--max-tokens"))
            o.max_tokens = atoi(v);
        else if (OPT("--stream-reqs"))
            o.stream_reqs = atoi(v);
        else if (OPT("--chunks"))
            o.chunks = atoi(v);
        else if (OPT("--gap-us"))
            o.gap_us = atoi(v);
        else if (OPT("--streams"))
            o.streams = atoi(v);
        else if (OPT("--tp-chunks"))
            o.tp_chunks = atoi(v);
        else if (OPT("--tp-gap-us"))
            o.tp_gap_us = atoi(v);
        else if (OPT("--tp-flood"))
            o.tp_flood = atoi(v);
        else if (OPT("--tp-reps"))
            o.tp_reps = atoi(v);
        else if (OPT("--json"))
            o.json = v;
        else
            die("run: unknown option or missing value: %s", a);
#undef OPT
    }
    if (!du || !ru)
        die("%s", "run: --direct URL and --router URL are required");
    if (o.n < 1 || o.stream_reqs < 1 || o.chunks < 2 || o.streams < 1 || o.tp_chunks < 1 || o.tp_reps < 1)
        die("%s", "run: counts must be positive");
    parse_url(&o.direct, du);
    parse_url(&o.router, ru);
    o.direct.name = "direct";
    o.router.name = "router";
    g_o = &o;
    const char *up = o.box ? "sov serve box (stories260K)" : "fake upstream (fixed answers)";

    conn *cd = calloc(1, sizeof *cd), *cr = calloc(1, sizeof *cr);
    if (!cd || !cr)
        die("%s", "out of memory");
    cd->tg = &o.direct;
    cr->tg = &o.router;
    cd->fd = cr->fd = -1;

    /* warm-up: connections, the router's pool, caches */
    for (int i = 0; i < 50; i++) {
        one_whole(cd);
        one_whole(cr);
    }

    /* 1. per request: N sequential non-streamed requests each, interleaved,
     * back to back; then idle_n of them with idle_us pauses (idle CPUs:
     * every thread handoff pays a wake-up) */
    double cpu_req = -1, cpu_chunk = -1;
    lat4 lb = per_request(cd, cr, o.n, 0, &cpu_req);
    double d50 = lb.d50, d99 = lb.d99, r50 = lb.r50, r99 = lb.r99;
    double a50 = r50 - d50, a99 = r99 - d99;
    lat4 li = {0};
    if (o.idle_n > 0)
        li = per_request(cd, cr, o.idle_n, o.idle_us, NULL);
    double i50 = li.r50 - li.d50, i99 = li.r99 - li.d99;

    /* 2. per streamed chunk: R sequential streamed requests each, interleaved */
    sink sd = {0}, sr = {0};
    sd.lat = malloc(sizeof(double));
    sr.lat = malloc(sizeof(double));
    sd.caplat = sr.caplat = 1;
    double *td = malloc((size_t)o.stream_reqs * sizeof *td), *tr = malloc((size_t)o.stream_reqs * sizeof *tr);
    double *hd = malloc((size_t)o.stream_reqs * sizeof *hd), *hr = malloc((size_t)o.stream_reqs * sizeof *hr);
    if (!td || !tr || !hd || !hr || !sd.lat || !sr.lat)
        die("%s", "out of memory");
    if (o.box) { /* the box: one number per request, the time to its last token */
        free(sd.lat);
        free(sr.lat);
        sd.lat = malloc((size_t)o.stream_reqs * sizeof(double));
        sr.lat = malloc((size_t)o.stream_reqs * sizeof(double));
        if (!sd.lat || !sr.lat)
            die("%s", "out of memory");
    }
    for (int i = 0; i < o.stream_reqs; i++) {
        for (int k = 0; k < 2; k++) {
            bool rt = (k ^ (i & 1)) != 0;
            sink *sk = rt ? &sr : &sd;
            double *lat = sk->lat, last;
            if (o.box)
                sk->lat = NULL;
            double first = one_stream(rt ? cr : cd, sk, o.chunks, o.gap_us, rt ? &hr[i] : &hd[i], &last);
            (rt ? tr : td)[i] = first;
            if (o.box) {
                sk->lat = lat;
                sk->lat[sk->nlat++] = last;
            }
        }
    }
    qsort(sd.lat, sd.nlat, sizeof(double), cmp_d);
    qsort(sr.lat, sr.nlat, sizeof(double), cmp_d);
    qsort(td, (size_t)o.stream_reqs, sizeof *td, cmp_d);
    qsort(tr, (size_t)o.stream_reqs, sizeof *tr, cmp_d);
    qsort(hd, (size_t)o.stream_reqs, sizeof *hd, cmp_d);
    qsort(hr, (size_t)o.stream_reqs, sizeof *hr, cmp_d);
    double thd = pct(hd, (size_t)o.stream_reqs, 50), thr = pct(hr, (size_t)o.stream_reqs, 50);
    double cd50 = pct(sd.lat, sd.nlat, 50), cd99 = pct(sd.lat, sd.nlat, 99);
    double cr50 = pct(sr.lat, sr.nlat, 50), cr99 = pct(sr.lat, sr.nlat, 99);
    double ttd = pct(td, (size_t)o.stream_reqs, 50), ttr = pct(tr, (size_t)o.stream_reqs, 50);
    conn_close(cd);
    conn_close(cr);

    /* 3. throughput: S concurrent streams, alternating sides, R reps each */
    double tpd = 0, tpr = 0, fld = 0, flr = 0, tpd_tt = 0, tpr_tt = 0, x;
    double *pr = calloc((size_t)o.tp_reps, sizeof *pr); /* router / direct of each rep */
    if (!pr)
        die("%s", "out of memory");
    for (int i = 0; i < o.tp_reps; i++) {
        double vd = 0, vr = 0;
        int first = i & 1;
        for (int k = 0; k < 2; k++) {
            bool rt = (k ^ first) != 0;
            double c0 = rt ? router_cpu_us() : -1;
            int64_t e0 = g_events;
            double v = throughput(rt ? &o.router : &o.direct, o.tp_chunks, o.box ? 0 : o.tp_gap_us, &x);
            double c1 = rt ? router_cpu_us() : -1;
            if (rt && c0 >= 0 && c1 >= 0 && g_events > e0)
                cpu_chunk = (cpu_chunk < 0 ? 0 : cpu_chunk) + (c1 - c0) / (double)(g_events - e0) / o.tp_reps;
            if (rt) {
                vr = v;
                tpr += v / o.tp_reps;
                tpr_tt += x / o.tp_reps;
            } else {
                vd = v;
                tpd += v / o.tp_reps;
                tpd_tt += x / o.tp_reps;
            }
        }
        pr[i] = vd > 0 ? 100.0 * vr / vd : 0;
    }
    if (o.tp_flood > 0 && !o.box)
        for (int i = 0; i < o.tp_reps; i++) {
            int first = i & 1;
            for (int k = 0; k < 2; k++) {
                bool rt = (k ^ first) != 0;
                double v = throughput(rt ? &o.router : &o.direct, o.tp_flood, 0, NULL);
                if (rt)
                    flr += v / o.tp_reps;
                else
                    fld += v / o.tp_reps;
            }
        }
    /* the median of the reps' ratios: each rep's pair ran back to back, so a
     * drift in the machine's speed hits both of a pair alike */
    qsort(pr, (size_t)o.tp_reps, sizeof *pr, cmp_d);
    double ratio = o.tp_reps % 2 ? pr[o.tp_reps / 2] : (pr[o.tp_reps / 2 - 1] + pr[o.tp_reps / 2]) / 2;
    free(pr);

    /* the report */
    const char *unit = o.box ? "tokens" : "chunks";
    printf("\nrouter overhead, upstream = %s, on 127.0.0.1, HTTP/1.1 keep-alive\n", up);
    printf("  (added = router percentile - direct percentile: the difference of the two distributions' percentiles)\n");
    printf("  per request, %d sequential non-streamed each (max_tokens %d), interleaved:\n", o.n, o.max_tokens);
    printf("    direct   p50 %8.3f ms   p99 %8.3f ms\n", d50 / 1e3, d99 / 1e3);
    printf("    router   p50 %8.3f ms   p99 %8.3f ms\n", r50 / 1e3, r99 / 1e3);
    printf("    added    p50 %8.3f ms   target < 0.2 ms   %s%s\n", a50 / 1e3, met(a50 < 200), noise(a50));
    printf("    added    p99 %8.3f ms   target < 1 ms     %s%s\n", a99 / 1e3, met(a99 < 1000), noise(a99));
    if (cpu_req >= 0)
        printf("    router CPU %.0f us per request (user + system, all its threads)\n", cpu_req);
    if (o.idle_n > 0) {
        printf("  per request, %d sequential non-streamed each with %.1f ms pauses (idle CPUs), interleaved:\n",
               o.idle_n, o.idle_us / 1e3);
        printf("    direct   p50 %8.3f ms   p99 %8.3f ms\n", li.d50 / 1e3, li.d99 / 1e3);
        printf("    router   p50 %8.3f ms   p99 %8.3f ms\n", li.r50 / 1e3, li.r99 / 1e3);
        printf("    added    p50 %8.3f ms   target < 0.2 ms   %s%s\n", i50 / 1e3, met(i50 < 200), noise(i50));
        printf("    added    p99 %8.3f ms   target < 1 ms     %s%s\n", i99 / 1e3, met(i99 < 1000), noise(i99));
    }
    if (o.box)
        printf("  per streamed request, %d streams x %d tokens each, interleaved (time to the last token; the box "
               "sends tokens as they come, so chunks are not comparable one by one):\n",
               o.stream_reqs, o.chunks);
    else
        printf("  per streamed chunk, %d streams x %d chunks %d us apart each, interleaved (delay from the "
               "upstream's send to the client's recv):\n",
               o.stream_reqs, o.chunks, o.gap_us);
    printf("    direct   p50 %8.3f ms   p99 %8.3f ms   (headers p50 %.3f ms, first chunk p50 %.3f ms)\n",
           cd50 / 1e3, cd99 / 1e3, thd / 1e3, ttd / 1e3);
    printf("    router   p50 %8.3f ms   p99 %8.3f ms   (headers p50 %.3f ms, first chunk p50 %.3f ms)\n",
           cr50 / 1e3, cr99 / 1e3, thr / 1e3, ttr / 1e3);
    printf("    added    p50 %8.3f ms   p99 %8.3f ms   (first chunk p50 %+.3f ms; no target)\n", (cr50 - cd50) / 1e3,
           (cr99 - cd99) / 1e3, (ttr - ttd) / 1e3);
    if (o.box)
        printf("  throughput, %d concurrent streams x %d tokens (mean of %d alternating reps; ratio: median of "
               "the reps' ratios):\n",
               o.streams, o.tp_chunks, o.tp_reps);
    else
        printf("  throughput, %d concurrent streams x %d chunks %d us apart (offered %.0f chunks/s; mean of %d "
               "alternating reps; ratio: median of the reps' ratios):\n",
               o.streams, o.tp_chunks, o.tp_gap_us, o.tp_gap_us > 0 ? o.streams * 1e6 / o.tp_gap_us : 0,
               o.tp_reps);
    printf("    direct   %10.0f %s/s   (first chunk p50 %.3f ms)\n", tpd, unit, tpd_tt / 1e3);
    printf("    router   %10.0f %s/s   (first chunk p50 %.3f ms)\n", tpr, unit, tpr_tt / 1e3);
    printf("    ratio    %9.1f %%       target >= 99 %% (no loss)   %s\n", ratio, met(ratio >= 99.0));
    if (cpu_chunk >= 0)
        printf("    router CPU %.1f us per %s\n", cpu_chunk, o.box ? "token" : "chunk");
    if (o.tp_flood > 0 && !o.box)
        printf("    capacity, %d streams x %d chunks back to back (no target): direct %.0f, router %.0f chunks/s "
               "= %.1f %%\n",
               o.streams, o.tp_flood, fld, flr, fld > 0 ? 100.0 * flr / fld : 0);
    fflush(stdout);

    if (o.json) {
        FILE *f = fopen(o.json, "w");
        if (!f)
            die("cannot write %s", o.json);
        fprintf(f,
                "{\"upstream\": \"%s\", \"n\": %d, \"max_tokens\": %d,\n"
                " \"request_us\": {\"direct_p50\": %.1f, \"direct_p99\": %.1f, \"router_p50\": %.1f, "
                "\"router_p99\": %.1f, \"added_p50\": %.1f, \"added_p99\": %.1f},\n"
                " \"chunk_us\": {\"streams\": %d, \"chunks\": %d, \"gap_us\": %d, \"direct_p50\": %.1f, "
                "\"direct_p99\": %.1f, \"router_p50\": %.1f, \"router_p99\": %.1f, \"direct_first_p50\": %.1f, "
                "\"router_first_p50\": %.1f},\n"
                " \"throughput\": {\"streams\": %d, \"chunks\": %d, \"gap_us\": %d, \"reps\": %d, \"direct_per_s\": "
                "%.1f, \"router_per_s\": %.1f, \"ratio_pct\": %.2f, \"flood_chunks\": %d, \"flood_direct_per_s\": %.1f, "
                "\"flood_router_per_s\": %.1f},\n"
                " \"idle\": {\"n\": %d, \"pause_us\": %d, \"direct_p50\": %.1f, \"direct_p99\": %.1f, \"router_p50\": "
                "%.1f, \"router_p99\": %.1f, \"added_p50\": %.1f, \"added_p99\": %.1f},\n"
                " \"router_cpu_us\": {\"per_request\": %.1f, \"per_chunk\": %.2f},\n"
                " \"targets\": {\"added_p50_lt_200us\": %s, \"added_p99_lt_1000us\": %s, \"throughput_ge_99pct\": %s, "
                "\"idle_added_p50_lt_200us\": %s, \"idle_added_p99_lt_1000us\": %s}}\n",
                o.box ? "box" : "fake", o.n, o.max_tokens, d50, d99, r50, r99, a50, a99, o.stream_reqs, o.chunks,
                o.box ? 0 : o.gap_us, cd50, cd99, cr50, cr99, ttd, ttr, o.streams, o.tp_chunks,
                o.box ? 0 : o.tp_gap_us, o.tp_reps, tpd, tpr, ratio, o.box ? 0 : o.tp_flood, fld, flr, o.idle_n,
                o.idle_us, li.d50, li.d99, li.r50, li.r99, i50, i99, cpu_req, cpu_chunk,
                a50 < 200 ? "true" : "false", a99 < 1000 ? "true" : "false", ratio >= 99.0 ? "true" : "false",
                o.idle_n > 0 && i50 < 200 ? "true" : "false", o.idle_n > 0 && i99 < 1000 ? "true" : "false");
        fclose(f);
    }
    return 0;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc >= 2 && !strcmp(argv[1], "upstream"))
        return cmd_upstream(argc - 2, argv + 2);
    if (argc >= 2 && !strcmp(argv[1], "run"))
        return cmd_run(argc - 2, argv + 2);
    fprintf(stderr, "usage: router_bench upstream [--port N] [--max-s S]\n"
                    "       router_bench run --direct URL --router URL [options] (see bench/router_bench.c)\n");
    return 2;
}
