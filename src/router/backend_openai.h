/* backend_openai: a remote OpenAI-compatible server (another sov serve,
 * vLLM, llama.cpp's server, a hosted API) behind the backend interface
 * (backend.h).
 *
 * Every openai backend of the process shares one event-loop thread that
 * drives all transfers through one libcurl multi handle, so connections to
 * an upstream are kept alive and reused across requests. Client threads
 * hand their transfers to the loop and wait on a condition variable; the
 * loop keeps the connect, first-byte and idle timeouts. A streamed answer
 * is handed to the reader chunk by chunk as it arrives, through a bounded
 * buffer (the transfer pauses while the buffer is full). Closing an
 * unfinished answer removes its transfer, which closes the connection, so
 * the upstream stops generating.
 *
 * Failures map to bk_fail as the router needs them: connect errors and a
 * connection broken before the answer BK_FAIL_CONNECT (502), timeouts
 * BK_FAIL_TIMEOUT (504), upstream 5xx or garbage BK_FAIL_UPSTREAM, 429 and
 * max_concurrent reached BK_FAIL_BUSY, 401/403 (the router's own key was
 * refused) BK_FAIL_UPSTREAM 502; any other 4xx is an answer (BK_OK) with
 * the upstream's status and body. */
#ifndef SOV_BACKEND_OPENAI_H
#define SOV_BACKEND_OPENAI_H

#include <stdint.h>

#include "backend.h"
#include "config.h"

/* A remote backend for c (type CFG_OPENAI; everything needed is copied, c
 * may be freed afterwards). Starts the shared loop thread with the first
 * backend; the last one freed joins it. Errors: SOV_EINVAL (no url, bad
 * limits), SOV_ENOMEM, SOV_EIO (libcurl could not start). */
int backend_openai_new(backend **out, const cfg_backend *c);

/* Times any transfer of this process was paused because its reader had
 * not drained the stream buffer yet (for tests and diagnostics). */
int64_t backend_openai_pauses(void);

#endif
