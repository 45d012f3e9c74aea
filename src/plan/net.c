/* net: loopback and HTTP round trips (see net.h). */
#include "net.h"

#include "../base/err.h"

#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

typedef struct echo {
    int lfd;
    int n;
} echo;

/* Accepts one connection and echoes n bytes back one at a time. */
static void *echo_main(void *arg)
{
    echo *e = arg;
    int fd = accept(e->lfd, NULL, NULL);
    if (fd < 0)
        return NULL;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char c;
    for (int i = 0; i < e->n; i++) {
        if (read(fd, &c, 1) != 1 || write(fd, &c, 1) != 1)
            break;
    }
    close(fd);
    return NULL;
}

int plan_rtt_loopback(int n, double *median_s)
{
    if (n < 1 || n > 10000)
        return err_set(SOV_EINVAL, "round trips: n must be 1..10000");
    int rc = 0, lfd = -1, fd = -1;
    bool joined = true;
    pthread_t th;
    double *t = malloc(sizeof *t * (size_t)n);
    if (!t)
        return err_set(SOV_ENOMEM, "out of memory");
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    if ((lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 || bind(lfd, (struct sockaddr *)&a, sizeof a) ||
        listen(lfd, 1) || getsockname(lfd, (struct sockaddr *)&a, &al)) {
        rc = err_set(SOV_EIO, "loopback socket: %s", strerror(errno));
        goto done;
    }
    echo e = {.lfd = lfd, .n = n};
    if (pthread_create(&th, NULL, echo_main, &e)) {
        rc = err_set(SOV_EIO, "cannot start the echo thread");
        goto done;
    }
    joined = false;
    if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 || connect(fd, (struct sockaddr *)&a, sizeof a)) {
        rc = err_set(SOV_EIO, "loopback connect: %s", strerror(errno));
        goto done;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    for (int i = 0; i < n; i++) {
        char c = (char)i;
        double t0 = now_s();
        if (write(fd, &c, 1) != 1 || read(fd, &c, 1) != 1) {
            rc = err_set(SOV_EIO, "loopback round trip: %s", strerror(errno));
            goto done;
        }
        t[i] = now_s() - t0;
    }
    *median_s = median(t, n);
done:
    if (fd >= 0)
        close(fd); /* the echo thread's read sees EOF */
    if (!joined) {
        if (rc) /* a failed connect: wake accept with a connection of our own */
            shutdown(lfd, SHUT_RDWR);
        pthread_join(th, NULL);
    }
    if (lfd >= 0)
        close(lfd);
    free(t);
    return rc;
}

static size_t sink(char *p, size_t sz, size_t n, void *u)
{
    (void)p;
    (void)u;
    return sz * n;
}

int plan_rtt_url(const char *url, int n, double *median_s)
{
    if (n < 1 || n > 1000)
        return err_set(SOV_EINVAL, "round trips: n must be 1..1000");
    double *t = malloc(sizeof *t * (size_t)n);
    CURL *c = curl_easy_init();
    int rc = 0;
    if (!t || !c) {
        rc = err_set(SOV_ENOMEM, "out of memory");
        goto done;
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
    for (int i = -1; i < n; i++) {
        double t0 = now_s();
        CURLcode cc = curl_easy_perform(c);
        double dt = now_s() - t0;
        if (cc != CURLE_OK) {
            rc = err_set(SOV_EIO, "%s: %s", url, curl_easy_strerror(cc));
            goto done;
        }
        long status = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        if (status < 200 || status > 299) {
            rc = err_set(SOV_EIO, "%s: HTTP %ld", url, status);
            goto done;
        }
        if (i >= 0)
            t[i] = dt;
    }
    *median_s = median(t, n);
done:
    if (c)
        curl_easy_cleanup(c);
    free(t);
    return rc;
}
