/* sys: small questions to the operating system that several modules ask. */
#ifndef SOV_SYS_H
#define SOV_SYS_H

#include <stdbool.h>
#include <stdint.h>

/* MemAvailable of /proc/meminfo in bytes, or -1 when it cannot be read. */
int64_t sys_mem_available(void);

/* Whether the peer of socket fd has closed its end (or the socket failed),
 * without reading or blocking. fd < 0: false. */
bool sys_peer_gone(int fd);

#endif
