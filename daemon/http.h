/* http.h - the operator's endpoints on --http HOST:PORT.
 *
 *   GET /health/live   200 while the event loop turns
 *   GET /health/ready  200 when Redis answers, the journal is open and jobd
 *                      is not draining; else 503 with {"ready":false,"reasons":[...]}
 *   GET /metrics       Prometheus text format
 *
 * HEAD on each answers the GET headers (Content-Length included) and no
 * body; any other method gets 405 with "Allow: GET, HEAD"; a request head
 * over 8 KiB gets 431; an unknown path 404; a malformed request line 400.
 *
 * DESIGN: a deliberately small HTTP/1.0-style server on libuv: read the
 * request head (at most 8 KiB), answer, close. Probes and scrapers need no
 * more. The port may be bound on every interface (the k8s Deployment does),
 * so it must never be a way to starve jobd of descriptors or time:
 *
 *   - At most HTTP_MAX_CONNS connections are open at once, and never more
 *     than a quarter of the descriptor limit (the rest stay in reserve for
 *     handlers' pipes, Redis and the journal). A connection beyond the
 *     limit sheds the oldest one that is still waiting for its request head
 *     (or lingering after its answer); if every open one is being answered,
 *     the newcomer gets 503 and is closed at once. Either way the accept
 *     queue never fills, a probe that sends its request at once is served,
 *     and the shed connection counts in `rejected`.
 *   - A connection must deliver its whole request head within the header
 *     deadline counted from its accept (a total, not per read: a client
 *     sending a byte a second never makes it), and take its answer within
 *     the write deadline. Either deadline closes it and counts in
 *     `timed_out`.
 *   - If accept fails for want of descriptors (EMFILE, ENFILE) or memory,
 *     accepting pauses for HTTP_ACCEPT_PAUSE_MS instead of spinning; the
 *     failure is logged once per episode and counted in `accept_errors`.
 *
 * Each connection is a conn (http.c) that owns its socket, one timer for
 * whichever deadline applies, and its buffers, and is freed in the last of
 * its close callbacks. Parsing the head is a separate pure step (request
 * line in, method and path out) and routing another (request in, response
 * out), so a real HTTP parser can replace the first without touching the
 * connection's life cycle. The answers come from callbacks so that this
 * module knows nothing of the worker.
 *
 * Test-only: JOBD_HTTP_HEADER_TIMEOUT_MS in jobd's environment overrides
 * the header deadline (tests use 500 ms). It is not a supported setting
 * and is not in `--help`. */
#ifndef JOBD_HTTP_H
#define JOBD_HTTP_H

#include <uv.h>

#include "metrics.h"

#define HTTP_MAX_CONNS 64           /* concurrent connections, at most */
#define HTTP_HEADER_TIMEOUT_MS 5000 /* whole request head within this of the accept */
#define HTTP_WRITE_TIMEOUT_MS 10000 /* whole answer written within this */
#define HTTP_LINGER_MS 2000         /* after the answer, wait this long for the client's EOF */
#define HTTP_ACCEPT_PAUSE_MS 1000   /* no accepts for this long after EMFILE/ENFILE */

typedef struct {
    /* Appends the reasons jobd is not ready (JSON strings, comma-separated)
     * to b; appends nothing when ready. */
    void (*not_ready)(void *arg, metrics_buf_t *b);
    /* Appends the Prometheus text to b. */
    void (*metrics)(void *arg, metrics_buf_t *b);
    void *arg;
} http_cbs_t;

/* A snapshot of the server's counters (http_get_stats). */
typedef struct {
    long long accepted;      /* connections accepted */
    long long rejected;      /* closed unanswered because of the connection limit */
    long long timed_out;     /* closed at the header or write deadline */
    long long accept_errors; /* accept failed (EMFILE, ENFILE, ENOMEM, ...) */
    long long bad_requests;  /* answered 400, 405 or 431 */
    int open;                /* connections open now */
    int limit;               /* the connection limit in force */
} http_stats_t;

typedef struct http_conn http_conn_t;

/* A rate limit for repeated log lines: one line per kind every 10 s. */
typedef struct {
    uint64_t last_ms; /* loop time of the last line, 0: none yet */
} http_logtick_t;

typedef struct {
    uv_poll_t server; /* the listening socket (named so for the worker's close count) */
    uv_timer_t pause; /* ends an accept pause */
    uv_loop_t *loop;
    int fd; /* the listening socket */
    http_cbs_t cbs;
    int port;     /* the bound port (useful with port 0) */
    int open;     /* started and not yet stopped */
    int stopping; /* http_stop was called */
    int paused;   /* accepting is paused after an accept error */
    int pending;  /* handles and connections not yet closed */
    uv_close_cb on_stopped;
    int limit;                    /* connection limit in force */
    int header_timeout_ms;        /* header deadline in force */
    http_conn_t *oldest, *newest; /* open connections, in accept order */
    int nconns;                   /* open connections (not closing) */
    http_stats_t stats;
    http_logtick_t log_shed, log_timeout, log_bad;
} http_t;

/* Listens on "HOST:PORT" (HOST empty: every IPv4 interface; "[::1]" for
 * IPv6). Returns 0, or a negative libuv error (nothing is left open then
 * and h->open is 0). */
int http_start(http_t *h, uv_loop_t *loop, const char *hostport, const http_cbs_t *cbs);
/* Stops listening and closes every connection; cb (may be NULL) runs once,
 * with (uv_handle_t *)&h->server, when every handle of h is closed. */
void http_stop(http_t *h, uv_close_cb cb);
/* Copies the counters into out (all zero if h never started). */
void http_get_stats(const http_t *h, http_stats_t *out);

#endif
