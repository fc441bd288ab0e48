/* http.h - jobd's HTTP server on --http HOST:PORT: the operator's endpoints
 * and, through a route callback, the console (/api/v1, the dashboard, the
 * event stream).
 *
 *   GET /health/live   200 while the event loop turns
 *   GET /health/ready  200 when Redis answers, the journal is open and jobd
 *                      is not draining; else 503 with {"ready":false,"reasons":[...]}
 *   GET /metrics       Prometheus text format
 *   anything else      the route callback (http_cbs_t.route), or 404
 *
 * HEAD on each answers the GET headers (Content-Length included) and no
 * body; another method on these three gets 405 with "Allow: GET, HEAD"; a
 * request head over 8 KiB gets 431, a body over 16 KiB 413, a URL over
 * 2 KiB 414, anything the parser refuses 400 (and the connection closes).
 *
 * DESIGN: requests are parsed by http-parser (Node's parser, on libuv for a
 * decade, in Debian as libhttp-parser-dev; llhttp is not in Debian 12), fed
 * straight from libuv's reads. Connections are HTTP/1.1 keep-alive: one
 * request at a time per connection; bytes a client pipelines behind it wait
 * in a 16 KiB buffer (reading stops while it is full), and the next request
 * is parsed once the answer is written. After HTTP_MAX_REQUESTS requests, or
 * when the client says "Connection: close" (or speaks HTTP/1.0 without
 * keep-alive), the answer carries "Connection: close" and the connection
 * ends. The port may be bound on every interface (the k8s Deployment does),
 * so it must never be a way to starve jobd of descriptors, memory or time:
 *
 *   - At most HTTP_MAX_CONNS connections are open at once, and never more
 *     than a quarter of the descriptor limit (the rest stay in reserve for
 *     handlers' pipes, Redis and the journal). A connection beyond the
 *     limit sheds the oldest one that is waiting for a request (a fresh
 *     one, an idle keep-alive one, or one lingering after its answer); if
 *     every open one is being answered, the newcomer gets 503 and is closed
 *     at once. Either way the accept queue never fills, a probe that sends
 *     its request at once is served, and the shed connection counts in
 *     `rejected`.
 *   - A connection must deliver each whole request (head and body) within
 *     the header deadline, counted from its accept or from the end of the
 *     previous answer (a total, not per read: a client sending a byte a
 *     second never makes it), and take its answer within the write
 *     deadline, counted from the end of its request (a route answering
 *     later, after Redis, included). Either deadline closes it and counts
 *     in `timed_out`; a keep-alive connection that simply stays idle is
 *     closed at the header deadline without counting.
 *   - Memory per connection is bounded: the 16 KiB input buffer, the URL
 *     and header values we keep (2 KiB, 512 bytes), a body of 16 KiB, and
 *     the answer being written.
 *   - Event streams (http_stream_begin) leave the connection count for
 *     their own cap, HTTP_MAX_STREAMS (and at most a quarter of the
 *     connection limit); they have no answer deadline, but a reader that
 *     falls more than HTTP_STREAM_BACKLOG bytes behind is closed.
 *   - If accept fails for want of descriptors (EMFILE, ENFILE) or memory,
 *     accepting pauses for HTTP_ACCEPT_PAUSE_MS instead of spinning; the
 *     failure is logged once per episode and counted in `accept_errors`.
 *
 * Each connection is a conn (http.c) that owns its socket, one timer for
 * whichever deadline applies, and its buffers, and is freed in the last of
 * its close callbacks. A request handed to the route callback is an
 * http_req_t of its own: the route answers it with http_respond (or turns
 * it into a stream) exactly once, at once or later from another callback.
 * If the connection goes away first the request is detached, and the late
 * answer just frees it. This module knows nothing of the worker.
 *
 * Test-only: JOBD_HTTP_HEADER_TIMEOUT_MS in jobd's environment overrides
 * the header deadline (tests use 500 ms). It is not a supported setting
 * and is not in `--help`. */
#ifndef JOBD_HTTP_H
#define JOBD_HTTP_H

#include <http_parser.h>
#include <stddef.h>
#include <uv.h>

#include "metrics.h"

#define HTTP_MAX_CONNS 64           /* concurrent connections, at most */
#define HTTP_MAX_STREAMS 16         /* concurrent event streams, at most */
#define HTTP_MAX_REQUESTS 1000      /* requests on one keep-alive connection */
#define HTTP_HEADER_TIMEOUT_MS 5000 /* whole request within this of the accept or last answer */
#define HTTP_WRITE_TIMEOUT_MS 10000 /* whole answer written within this of the request */
#define HTTP_LINGER_MS 2000         /* after the last answer, wait this long for the client's EOF */
#define HTTP_ACCEPT_PAUSE_MS 1000   /* no accepts for this long after EMFILE/ENFILE */
#define HTTP_HEAD_MAX 8192          /* request head, bytes (431 beyond) */
#define HTTP_URL_MAX 2048           /* request target, bytes (414 beyond) */
#define HTTP_BODY_MAX 16384         /* request body, bytes (413 beyond) */
#define HTTP_AUTH_MAX 512           /* Authorization value kept, bytes */
#define HTTP_STREAM_BACKLOG 262144  /* unsent stream bytes (256 KiB) before the stream closes */

typedef struct http_req http_req_t;
typedef struct http_conn http_stream_t; /* a connection turned into an event stream */

typedef struct {
    /* Appends the reasons jobd is not ready (JSON strings, comma-separated)
     * to b; appends nothing when ready. */
    void (*not_ready)(void *arg, metrics_buf_t *b);
    /* Appends the Prometheus text to b. */
    void (*metrics)(void *arg, metrics_buf_t *b);
    void *arg;
    /* Every other request (may be NULL: 404). The callee owns req until it
     * passes it to http_respond or http_stream_begin, exactly once. */
    void (*route)(void *route_arg, http_req_t *req);
    void *route_arg;
} http_cbs_t;

typedef enum {
    HTTP_M_GET = 0, /* GET */
    HTTP_M_HEAD,    /* HEAD: answered like GET, without the body */
    HTTP_M_POST,    /* POST */
    HTTP_M_DELETE,  /* DELETE */
    HTTP_M_OTHER    /* any other method the parser knows */
} http_method_t;

/* A request handed to the route callback. Every field is the module's
 * copy; the strings are NUL-terminated. */
struct http_req {
    http_method_t method;
    char method_name[16];
    char path[HTTP_URL_MAX];  /* percent-decoded, without the query string */
    char query[HTTP_URL_MAX]; /* raw, without the '?' ("" if none) */
    char *body;               /* NULL or body_len bytes (plus a NUL) */
    size_t body_len;
    char auth[HTTP_AUTH_MAX + 1]; /* the Authorization header ("" if none) */
    char peer[64];                /* the client's address, for logs */
    struct http_conn *conn;       /* internal: NULL once the connection is gone */
};

/* A snapshot of the server's counters (http_get_stats). */
typedef struct {
    long long accepted;        /* connections accepted */
    long long requests;        /* requests parsed and answered (or handed to the route) */
    long long rejected;        /* closed unanswered because of the connection limit */
    long long timed_out;       /* closed at the header or write deadline */
    long long accept_errors;   /* accept failed (EMFILE, ENFILE, ENOMEM, ...) */
    long long bad_requests;    /* answered 400, 405, 413, 414 or 431 */
    long long streams_refused; /* event streams refused at their cap */
    long long streams_slow;    /* event streams closed for falling behind */
    int open;                  /* connections open now (streams not counted) */
    int limit;                 /* the connection limit in force */
    int streams;               /* event streams open now */
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
    int stream_limit;             /* event stream limit in force */
    int header_timeout_ms;        /* header deadline in force */
    http_conn_t *oldest, *newest; /* open connections, in accept order */
    http_conn_t *streams;         /* open event streams */
    int nconns;                   /* open connections (not closing, not streams) */
    int nstreams;                 /* open event streams */
    http_stats_t stats;
    http_logtick_t log_shed, log_timeout, log_bad;
} http_t;

/* Listens on "HOST:PORT" (HOST empty: every IPv4 interface; "[::1]" for
 * IPv6). Returns 0, or a negative libuv error (nothing is left open then
 * and h->open is 0). */
int http_start(http_t *h, uv_loop_t *loop, const char *hostport, const http_cbs_t *cbs);
/* Stops listening and closes every connection and stream (each stream's
 * on_close runs); requests still with the route are detached. cb (may be
 * NULL) runs once, with (uv_handle_t *)&h->server, when every handle of h
 * is closed. */
void http_stop(http_t *h, uv_close_cb cb);
/* Copies the counters into out (all zero if h never started). */
void http_get_stats(const http_t *h, http_stats_t *out);

/* Answers req with code, a Content-Type and body (len bytes, copied; no
 * body for HEAD) plus extra header lines ("K: V\r\n", may be NULL), and
 * frees req. If the connection went away meanwhile, only frees req. */
void http_respond(http_req_t *req, int code, const char *ctype, const char *body, size_t len,
                  const char *extra);
/* http_respond with a NUL-terminated body. */
void http_respond_text(http_req_t *req, int code, const char *ctype, const char *body);

/* Called once when a stream ends (the client left, it fell behind,
 * http_stream_end, or http_stop); s is invalid after it returns. */
typedef void (*http_stream_close_cb)(void *arg, http_stream_t *s);

/* Turns req into an event stream: answers 200 with Content-Type ctype and
 * no length, and frees req. Returns the stream, or NULL (req answered 503
 * and freed, or its connection gone) when no stream can be had; on_close
 * never runs then. */
http_stream_t *http_stream_begin(http_req_t *req, const char *ctype, http_stream_close_cb on_close,
                                 void *arg);
/* Sends len bytes (copied) on s. Returns 0, or -1 if s fell more than
 * HTTP_STREAM_BACKLOG bytes behind or could not write: s is then closed and
 * its on_close has run before this returns. */
int http_stream_send(http_stream_t *s, const char *data, size_t len);
/* Closes s; its on_close runs before this returns. */
void http_stream_end(http_stream_t *s);

/* The value of name in a query string ("a=1&b=x%3Ay"), percent-decoded
 * ('+' as a space) into out (len bytes). Returns its length, or -1 if name
 * is absent, its value does not fit, or it decodes to a NUL byte. Pure. */
int http_query_get(const char *query, const char *name, char *out, size_t len);
/* Percent-decodes n bytes of in into out (len bytes, NUL-terminated).
 * Returns the decoded length, or -1 on a malformed escape, a NUL byte or
 * no room. Pure. */
int http_percent_decode(const char *in, size_t n, char *out, size_t len);

/* ---- internal: shared by http.c (connections, parsing, answers),
 * http_accept.c (listener, server), http_stream.c (event streams) and
 * http_text.c; nobody else touches what follows. ---- */

#define HTTP_IN_MAX 16384 /* unparsed input kept per connection (pipelined requests) */
#define HTTP_HNAME_MAX 32 /* header names we look at are shorter */
#define HTTP_LOG_EVERY_MS 10000
#define HTTP_ACCEPTS_PER_WAKE 256 /* then let the loop turn; poll is level-triggered */
#define HTTP_CONTAINER_OF(ptr, type, field) ((type *)((char *)(ptr)-offsetof(type, field)))

typedef enum {
    CONN_READING,   /* waiting for or reading a request (header deadline) */
    CONN_HANDLING,  /* the request is with a route; no answer yet (write deadline) */
    CONN_WRITING,   /* writing the answer (write deadline) */
    CONN_STREAMING, /* an event stream: no deadline, its own cap */
    CONN_LINGERING, /* answered and shut down for writing; waiting for the client's EOF */
    CONN_CLOSING    /* handles closing; freed in the last close callback */
} conn_state_t;

struct http_conn {
    uv_tcp_t tcp;
    uv_timer_t timer; /* the deadline of the current state */
    uv_write_t wreq;
    uv_shutdown_t sreq;
    http_t *h;
    http_conn_t *prev, *next; /* h's connection list (oldest first) or stream list */
    conn_state_t state;
    int closes;  /* close callbacks still to come */
    int eof;     /* the client's EOF came while we were answering */
    int reading; /* uv_read_start is in force */
    int nreq;    /* requests answered on this connection */
    int keep;    /* keep the connection after the current answer */
    char peer[64];

    /* The request being parsed. */
    http_parser parser;
    http_req_t *req;   /* being parsed (owned), or handed to the route (borrowed) */
    int err;           /* an HTTP status refusing the request being parsed, or 0 */
    int done;          /* on_message_complete ran */
    int in_value;      /* the last header callback was a value */
    int nheaders;      /* header lines so far */
    size_t head_bytes; /* request head bytes seen so far */
    size_t url_len;    /* raw URL bytes kept in url */
    size_t body_cap;
    char hname[HTTP_HNAME_MAX + 1];
    size_t hname_len;
    int is_auth; /* the current header is Authorization */
    size_t auth_len;
    char url[HTTP_URL_MAX];

    /* Event streams. */
    http_stream_close_cb on_stream_close;
    void *stream_arg;

    metrics_buf_t out; /* the answer being written */
    size_t in_len;     /* unparsed bytes in in */
    char in[HTTP_IN_MAX];
};

/* The reason phrase of a status code ("Unknown" if not one we send). */
const char *http_reason(int code);
/* Whether a log line of this kind may be written now (one every 10 s). */
int http_tick_due(http_t *h, http_logtick_t *t);
/* Runs h->on_stopped once the server is stopped and nothing is left open. */
void http_maybe_stopped(http_t *h);
/* Frees a request (NULL is fine). */
void http_req_free(http_req_t *r);
/* Takes c out of h's connection list (or its stream list). */
void http_conn_unlink(http_t *h, http_conn_t *c);
/* Closes c's handles (once); it is freed in the last close callback. */
void http_conn_close(http_conn_t *c);
/* Starts (or resumes) reading c; c->reading says whether it could. */
void http_conn_read(http_conn_t *c);
/* The deadline timer's callback of a connection (its data is c). */
void http_conn_on_deadline(uv_timer_t *t);

#endif
