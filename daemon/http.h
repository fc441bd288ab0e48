/* http.h - the operator's endpoints on --http HOST:PORT.
 *
 *   GET /health/live   200 while the event loop turns
 *   GET /health/ready  200 when Redis answers, the journal is open and jobd
 *                      is not draining; else 503 with {"ready":false,"reasons":[...]}
 *   GET /metrics       Prometheus text format
 *
 * DESIGN: a deliberately small HTTP/1.0-style server on libuv TCP: read the
 * request head (at most 8 KiB), answer, close. Probes and scrapers need no
 * more, and a slow or hostile client can hold at most one small buffer. The
 * answers come from callbacks so that this module knows nothing of the
 * worker. */
#ifndef JOBD_HTTP_H
#define JOBD_HTTP_H

#include <uv.h>

#include "metrics.h"

typedef struct {
    /* Appends the reasons jobd is not ready (JSON strings, comma-separated)
     * to b; appends nothing when ready. */
    void (*not_ready)(void *arg, metrics_buf_t *b);
    /* Appends the Prometheus text to b. */
    void (*metrics)(void *arg, metrics_buf_t *b);
    void *arg;
} http_cbs_t;

typedef struct {
    uv_tcp_t server;
    http_cbs_t cbs;
    int port; /* the bound port (useful with port 0) */
    int open;
} http_t;

/* Listens on "HOST:PORT". Returns 0 or a negative libuv error. */
int http_start(http_t *h, uv_loop_t *loop, const char *hostport, const http_cbs_t *cbs);
/* Stops listening; cb (may be NULL) runs when the handle is closed. */
void http_stop(http_t *h, uv_close_cb cb);

#endif
