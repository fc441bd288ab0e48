/* http.c - see http.h. */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http.h"
#include "log.h"

#define HEAD_MAX 8192
#define PATH_MAX_LEN 1024
#define LOG_EVERY_MS 10000
#define ACCEPTS_PER_WAKE 256 /* then let the loop turn; poll is level-triggered */

#define CONTAINER_OF(ptr, type, field) ((type *)((char *)(ptr)-offsetof(type, field)))

/* ---- the request: parsing and routing, no I/O ---- */

typedef enum {
    REQ_GET = 0, /* GET */
    REQ_HEAD,    /* HEAD: the GET answer without its body */
    REQ_OTHER    /* any other method: 405 */
} req_method_t;

typedef struct {
    req_method_t method;
    char path[PATH_MAX_LEN]; /* without the query string */
} http_req_t;

typedef struct {
    int code;
    const char *ctype;
    metrics_buf_t body;
    const char *extra; /* extra header lines ("K: V\r\n"), or NULL */
} http_resp_t;

/* Where the request head ends in buf (the offset past its blank line), or
 * 0 while it is incomplete. The buffer may hold NULs, so no strstr. */
static size_t head_end(const char *buf, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++) {
        if (buf[i] != '\n') continue;
        if (buf[i + 1] == '\n') return i + 2;
        if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n') return i + 3;
    }
    return 0;
}

static int is_tchar(char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* Parses the request line "METHOD SP TARGET SP HTTP/x.y". Returns 0, or -1
 * if it is malformed (400). */
static int parse_request_line(const char *buf, size_t len, http_req_t *req)
{
    const char *end = memchr(buf, '\n', len);
    if (!end) return -1;
    const char *p = buf, *sp = memchr(p, ' ', (size_t)(end - p));
    if (!sp || sp == p || sp - p > 16) return -1;
    for (const char *q = p; q < sp; q++)
        if (!is_tchar(*q)) return -1;
    size_t mlen = (size_t)(sp - p);
    req->method = mlen == 3 && memcmp(p, "GET", 3) == 0    ? REQ_GET
                  : mlen == 4 && memcmp(p, "HEAD", 4) == 0 ? REQ_HEAD
                                                           : REQ_OTHER;
    p = sp + 1;
    sp = memchr(p, ' ', (size_t)(end - p));
    if (!sp || sp == p || (size_t)(sp - p) >= sizeof req->path) return -1;
    size_t plen = 0;
    while (p + plen < sp && p[plen] != '?')
        plen++;
    memcpy(req->path, p, plen);
    req->path[plen] = '\0';
    if (memchr(req->path, '\0', plen)) return -1;
    p = sp + 1;
    if (end - p < 8 || memcmp(p, "HTTP/", 5) != 0) return -1;
    return 0;
}

static void set_text(http_resp_t *r, int code, const char *text)
{
    r->code = code;
    r->ctype = "text/plain";
    metrics_printf(&r->body, "%s", text);
}

/* The answer to req (r->body is filled; the caller frees it). */
static void route(http_t *h, const http_req_t *req, http_resp_t *r)
{
    if (req->method == REQ_OTHER) {
        set_text(r, 405, "method not allowed\n");
        r->extra = "Allow: GET, HEAD\r\n";
    } else if (strcmp(req->path, "/health/live") == 0) {
        r->code = 200;
        r->ctype = "application/json";
        metrics_printf(&r->body, "{\"live\":true}\n");
    } else if (strcmp(req->path, "/health/ready") == 0) {
        metrics_buf_t why = {0};
        h->cbs.not_ready(h->cbs.arg, &why);
        r->ctype = "application/json";
        if (why.len == 0) {
            r->code = 200;
            metrics_printf(&r->body, "{\"ready\":true}\n");
        } else {
            r->code = 503;
            metrics_printf(&r->body, "{\"ready\":false,\"reasons\":[%.*s]}\n", (int)why.len,
                           why.buf);
        }
        free(why.buf);
    } else if (strcmp(req->path, "/metrics") == 0) {
        r->code = 200;
        r->ctype = "text/plain; version=0.0.4";
        h->cbs.metrics(h->cbs.arg, &r->body);
    } else {
        set_text(r, 404, "not found\n");
    }
}

static const char *reason(int code)
{
    switch (code) {
    case 200:
        return "OK";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 431:
        return "Request Header Fields Too Large";
    case 503:
        return "Service Unavailable";
    default:
        return "Bad Request";
    }
}

/* ---- rate-limited log lines ---- */

/* Whether a line of this kind may be logged now (one every 10 s). */
static int tick_due(http_t *h, http_logtick_t *t)
{
    uint64_t now = uv_now(h->loop);
    if (t->last_ms && now - t->last_ms < LOG_EVERY_MS) return 0;
    t->last_ms = now ? now : 1;
    return 1;
}

/* ---- connections ---- */

typedef enum {
    CONN_READING,   /* waiting for the whole request head (header deadline) */
    CONN_WRITING,   /* writing the answer (write deadline) */
    CONN_LINGERING, /* answered and shut down for writing; waiting for the client's EOF */
    CONN_CLOSING    /* handles closing; freed in the last close callback */
} conn_state_t;

struct http_conn {
    uv_tcp_t tcp;
    uv_timer_t timer; /* the deadline of the current state */
    uv_write_t wreq;
    uv_shutdown_t sreq;
    http_t *h;
    http_conn_t *prev, *next; /* h's list, oldest first */
    conn_state_t state;
    int closes; /* close callbacks still to come */
    int eof;    /* the client's EOF came while we were writing */
    size_t len;
    metrics_buf_t out;
    char head[HEAD_MAX];
};

static void maybe_stopped(http_t *h)
{
    if (h->stopping && h->pending == 0 && h->on_stopped) {
        uv_close_cb cb = h->on_stopped;
        h->on_stopped = NULL;
        cb((uv_handle_t *)&h->server);
    }
}

static void on_conn_handle_closed(uv_handle_t *hd)
{
    http_conn_t *c = hd->data;
    if (--c->closes > 0) return;
    http_t *h = c->h;
    free(c->out.buf);
    free(c);
    h->pending--;
    maybe_stopped(h);
}

static void unlink_conn(http_t *h, http_conn_t *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        h->oldest = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        h->newest = c->prev;
    c->prev = c->next = NULL;
    h->nconns--;
}

/* Closes c's socket (at once: libuv closes the descriptor in uv_close) and
 * its timer; c is freed in the second close callback. Idempotent. */
static void close_conn(http_conn_t *c)
{
    if (c->state == CONN_CLOSING) return;
    c->state = CONN_CLOSING;
    unlink_conn(c->h, c);
    c->closes = 2;
    uv_close((uv_handle_t *)&c->tcp, on_conn_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
}

static void on_deadline(uv_timer_t *t)
{
    http_conn_t *c = CONTAINER_OF(t, http_conn_t, timer);
    http_t *h = c->h;
    if (c->state == CONN_READING || c->state == CONN_WRITING) {
        h->stats.timed_out++;
        if (tick_due(h, &h->log_timeout))
            log_warn("HTTP: closed a connection that did not %s within its deadline "
                     "(%lld so far; logged at most every %d s)",
                     c->state == CONN_READING ? "send its request head" : "take its answer",
                     h->stats.timed_out, LOG_EVERY_MS / 1000);
    }
    close_conn(c); /* a lingering client just did not close first */
}

static void on_shutdown(uv_shutdown_t *s, int status)
{
    http_conn_t *c = s->data;
    if (status < 0) close_conn(c);
}

static void on_written(uv_write_t *w, int status)
{
    http_conn_t *c = w->data;
    if (c->state != CONN_WRITING) return; /* closed while writing (ECANCELED) */
    if (status < 0 || c->eof) {
        close_conn(c); /* nothing of the client's is left unread after its EOF */
        return;
    }
    /* Send our FIN and wait for the client's before closing: closing with
     * its unread bytes (a body, the rest of an over-long head) would reset
     * the connection and could destroy the answer in flight. */
    c->state = CONN_LINGERING;
    uv_timer_start(&c->timer, on_deadline, HTTP_LINGER_MS, 0);
    c->sreq.data = c;
    if (uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, on_shutdown) < 0) close_conn(c);
}

static void send_resp(http_conn_t *c, const http_resp_t *r, int head_only)
{
    http_t *h = c->h;
    if (r->code == 400 || r->code == 405 || r->code == 431) {
        h->stats.bad_requests++;
        if (tick_due(h, &h->log_bad))
            log_warn("HTTP: answered %d %s (%lld bad requests so far; logged at most every %d s)",
                     r->code, reason(r->code), h->stats.bad_requests, LOG_EVERY_MS / 1000);
    }
    metrics_printf(&c->out,
                   "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                   "Connection: close\r\nCache-Control: no-store\r\n%s\r\n",
                   r->code, reason(r->code), r->ctype, r->body.len, r->extra ? r->extra : "");
    if (!head_only && r->body.len) metrics_printf(&c->out, "%.*s", (int)r->body.len, r->body.buf);
    c->state = CONN_WRITING;
    uv_timer_start(&c->timer, on_deadline, HTTP_WRITE_TIMEOUT_MS, 0);
    uv_buf_t b = uv_buf_init(c->out.buf, (unsigned)c->out.len);
    c->wreq.data = c;
    if (!c->out.buf || uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_written) < 0)
        close_conn(c);
}

/* The head is complete (or too large): answer it. */
static void answer(http_conn_t *c, int too_large)
{
    http_req_t req = {0};
    http_resp_t r = {0};
    int head_only = 0;
    if (too_large) {
        set_text(&r, 431, "request head too large\n");
    } else if (parse_request_line(c->head, c->len, &req) < 0) {
        set_text(&r, 400, "bad request\n");
    } else {
        head_only = req.method == REQ_HEAD;
        route(c->h, &req, &r);
    }
    send_resp(c, &r, head_only);
    free(r.body.buf);
}

static void on_alloc(uv_handle_t *hd, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    http_conn_t *c = hd->data;
    if (c->state != CONN_READING) {
        /* Answered: what else comes is read and dropped. */
        buf->base = c->head;
        buf->len = sizeof c->head;
        return;
    }
    buf->base = c->head + c->len;
    buf->len = HEAD_MAX - c->len;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    (void)buf;
    http_conn_t *c = s->data;
    if (n == UV_EOF && c->state == CONN_WRITING) {
        /* The client half-closed after its request (nc -N does): let the
         * answer go out, then close (on_written). */
        c->eof = 1;
        uv_read_stop(s);
        return;
    }
    if (n < 0) {
        close_conn(c); /* EOF or error */
        return;
    }
    if (c->state != CONN_READING) return;
    c->len += (size_t)n;
    if (head_end(c->head, c->len))
        answer(c, 0);
    else if (c->len >= HEAD_MAX)
        answer(c, 1);
}

/* Makes room for one more connection by closing the oldest one that is
 * not being answered. Returns 0, or -1 if every open one is mid-answer. */
static int shed_oldest(http_t *h)
{
    for (http_conn_t *c = h->oldest; c; c = c->next) {
        if (c->state == CONN_WRITING) continue;
        close_conn(c);
        return 0;
    }
    return -1;
}

static void refuse(int fd)
{
    static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
                               "Content-Length: 21\r\nConnection: close\r\nRetry-After: 1\r\n\r\n"
                               "too many connections\n";
    /* A fresh socket's send buffer takes this whole; if not, never mind. */
    ssize_t w = send(fd, busy, sizeof busy - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
    (void)w;
    close(fd);
}

static void take_conn(http_t *h, int fd)
{
    h->stats.accepted++;
    if (h->nconns >= h->limit) {
        h->stats.rejected++;
        int shed = shed_oldest(h);
        if (tick_due(h, &h->log_shed))
            log_warn("HTTP: %d connections open, the limit: %s (%lld so far; logged at most "
                     "every %d s)",
                     h->limit,
                     shed == 0 ? "closed the oldest idle one" : "refused the new one with 503",
                     h->stats.rejected, LOG_EVERY_MS / 1000);
        if (shed < 0) {
            refuse(fd);
            return;
        }
    }
    http_conn_t *c = calloc(1, sizeof *c);
    if (!c) {
        h->stats.rejected++;
        refuse(fd);
        return;
    }
    c->h = h;
    uv_tcp_init(h->loop, &c->tcp);
    uv_timer_init(h->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->state = CONN_READING;
    c->prev = h->newest;
    if (h->newest)
        h->newest->next = c;
    else
        h->oldest = c;
    h->newest = c;
    h->nconns++;
    h->pending++;
    if (uv_tcp_open(&c->tcp, fd) < 0) {
        close(fd);
        close_conn(c);
        return;
    }
    uv_timer_start(&c->timer, on_deadline, (uint64_t)h->header_timeout_ms, 0);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0) close_conn(c);
}

static void on_pause_over(uv_timer_t *t);

/* Out of descriptors (or memory): stop polling the listener for a while.
 * Pending connections wait in the kernel's queue (or are refused by it). */
static void pause_accepting(http_t *h, int err)
{
    h->stats.accept_errors++;
    if (!h->paused)
        log_warn("HTTP: accept failed: %s; not accepting for %d ms (%lld accept errors so far)",
                 strerror(err), HTTP_ACCEPT_PAUSE_MS, h->stats.accept_errors);
    h->paused = 1;
    uv_poll_stop(&h->server);
    uv_timer_start(&h->pause, on_pause_over, HTTP_ACCEPT_PAUSE_MS, 0);
}

static void on_accept_ready(uv_poll_t *p, int status, int events)
{
    http_t *h = CONTAINER_OF(p, http_t, server);
    (void)events;
    if (status < 0) {
        pause_accepting(h, -status);
        return;
    }
    for (int i = 0; i < ACCEPTS_PER_WAKE && !h->stopping; i++) {
        int fd = accept4(h->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            h->paused = 0;
            take_conn(h, fd);
            continue;
        }
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            pause_accepting(h, errno);
            return;
        }
        h->stats.accept_errors++;
        log_warn("HTTP: accept failed: %s", strerror(errno));
        return;
    }
}

static void on_pause_over(uv_timer_t *t)
{
    http_t *h = CONTAINER_OF(t, http_t, pause);
    if (!h->stopping) uv_poll_start(&h->server, UV_READABLE, on_accept_ready);
}

/* ---- the server ---- */

/* The connection limit: HTTP_MAX_CONNS, but at most a quarter of the
 * descriptor limit, so handlers, Redis and the journal keep the rest. */
static int conn_limit(rlim_t *nofile)
{
    struct rlimit rl;
    int limit = HTTP_MAX_CONNS;
    *nofile = 0;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        *nofile = rl.rlim_cur;
        if (rl.rlim_cur / 4 < (rlim_t)limit) limit = (int)(rl.rlim_cur / 4);
    }
    return limit > 0 ? limit : 1;
}

static int header_timeout(void)
{
    /* Test-only (http.h): a shorter deadline keeps the tests fast. */
    const char *s = getenv("JOBD_HTTP_HEADER_TIMEOUT_MS");
    long ms = s ? strtol(s, NULL, 10) : 0;
    return ms > 0 && ms <= 600000 ? (int)ms : HTTP_HEADER_TIMEOUT_MS;
}

/* A listening, non-blocking, close-on-exec socket bound to ss. Returns the
 * descriptor or a negative libuv error. */
static int listen_on(const struct sockaddr_storage *ss)
{
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return uv_translate_sys_error(errno);
    int one = 1;
    socklen_t len =
        ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(fd, (const struct sockaddr *)ss, len) < 0 || listen(fd, 128) < 0) {
        int err = uv_translate_sys_error(errno);
        close(fd);
        return err;
    }
    return fd;
}

static void on_listener_closed(uv_handle_t *hd)
{
    http_t *h = CONTAINER_OF(hd, http_t, server);
    close(h->fd); /* only now: never close a descriptor a poll handle watches */
    h->fd = -1;
    h->pending--;
    maybe_stopped(h);
}

static void on_pause_closed(uv_handle_t *hd)
{
    http_t *h = CONTAINER_OF(hd, http_t, pause);
    h->pending--;
    maybe_stopped(h);
}

int http_start(http_t *h, uv_loop_t *loop, const char *hostport, const http_cbs_t *cbs)
{
    memset(h, 0, sizeof *h);
    h->fd = -1;
    h->loop = loop;
    h->cbs = *cbs;
    char host[256];
    const char *colon = strrchr(hostport, ':');
    if (!colon || (size_t)(colon - hostport) >= sizeof host) return UV_EINVAL;
    snprintf(host, sizeof host, "%.*s", (int)(colon - hostport), hostport);
    /* "[::1]:9090" */
    char *h0 = host;
    if (*h0 == '[') {
        h0++;
        h0[strcspn(h0, "]")] = '\0';
    }
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    int port = atoi(colon + 1);
    int rc = strchr(h0, ':') ? uv_ip6_addr(h0, port, (struct sockaddr_in6 *)&ss)
                             : uv_ip4_addr(*h0 ? h0 : "0.0.0.0", port, (struct sockaddr_in *)&ss);
    if (rc < 0) return rc;
    int fd = listen_on(&ss);
    if (fd < 0) return fd;
    if ((rc = uv_poll_init_socket(loop, &h->server, fd)) < 0) {
        close(fd);
        return rc;
    }
    h->fd = fd;
    uv_timer_init(loop, &h->pause);
    h->pending = 2; /* the listener and the pause timer */
    h->open = 1;
    uv_poll_start(&h->server, UV_READABLE, on_accept_ready);

    rlim_t nofile;
    h->limit = h->stats.limit = conn_limit(&nofile);
    h->header_timeout_ms = header_timeout();
    struct sockaddr_storage bound;
    socklen_t blen = sizeof bound;
    memset(&bound, 0, sizeof bound); /* a failed getsockname reads as port 0 */
    getsockname(fd, (struct sockaddr *)&bound, &blen);
    h->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                : ((struct sockaddr_in *)&bound)->sin_port);
    log_info("HTTP: at most %d connections (descriptor limit %llu), request head within %d ms, "
             "answer within %d ms",
             h->limit, (unsigned long long)nofile, h->header_timeout_ms, HTTP_WRITE_TIMEOUT_MS);
    return 0;
}

void http_stop(http_t *h, uv_close_cb cb)
{
    if (!h->open || h->stopping) return;
    h->open = 0;
    h->stopping = 1;
    h->on_stopped = cb;
    while (h->oldest)
        close_conn(h->oldest); /* unlinks it */
    uv_close((uv_handle_t *)&h->server, on_listener_closed);
    uv_close((uv_handle_t *)&h->pause, on_pause_closed);
}

void http_get_stats(const http_t *h, http_stats_t *out)
{
    *out = h->stats;
    out->open = h->nconns;
    out->limit = h->limit;
}
