/* net: round trips measured for the link claims of `sov plan`. */
#ifndef SOV_PLAN_NET_H
#define SOV_PLAN_NET_H

/* Median round trip of n (1..10000) one-byte exchanges over a TCP
 * connection on 127.0.0.1 (an echo thread in this process, TCP_NODELAY):
 * the kernel's and the loopback's share of a request, no wire. Errors:
 * SOV_EIO (a socket call failed), SOV_ENOMEM, SOV_EINVAL (n). */
int plan_rtt_loopback(int n, double *median_s);

/* Median time of n (1..1000) GET requests to url on one kept-alive
 * connection (libcurl), after one untimed request that opens it: a real
 * round trip to a server, such as a box's /health. Errors: SOV_EIO with
 * curl's message or the HTTP status, SOV_EINVAL (n), SOV_ENOMEM. */
int plan_rtt_url(const char *url, int n, double *median_s);

#endif
