/* http_accept.c - the HTTP server's listener (http.h): listening,
 * accepting (the connection limit, shedding the oldest idle connection,
 * accept pauses when descriptors run out), starting and stopping the
 * server, its counters. A new connection is handed to http.c
 * (http_conn_read). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http.h"
#include "log.h"

/* ---- accepting ---- */

/* Makes room for one more connection by closing the oldest one that is
 * waiting for a request or lingering. Returns 0, or -1 if every open one
 * is being answered. */
static int shed_oldest(http_t *h)
{
    for (http_conn_t *c = h->oldest; c; c = c->next) {
        if (c->state == CONN_HANDLING || c->state == CONN_WRITING) continue;
        http_conn_close(c);
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

static void peer_name(int fd, char *out, size_t len)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t sl = sizeof ss;
    char ip[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET6) {
            const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip);
            port = ntohs(a->sin6_port);
        } else if (ss.ss_family == AF_INET) {
            const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;
            inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
            port = ntohs(a->sin_port);
        }
    }
    snprintf(out, len, "%s:%d", ip, port);
}

static void take_conn(http_t *h, int fd)
{
    h->stats.accepted++;
    if (h->nconns >= h->limit) {
        h->stats.rejected++;
        int shed = shed_oldest(h);
        if (http_tick_due(h, &h->log_shed))
            log_warn("HTTP: %d connections open, the limit: %s (%lld so far; logged at most "
                     "every %d s)",
                     h->limit,
                     shed == 0 ? "closed the oldest idle one" : "refused the new one with 503",
                     h->stats.rejected, HTTP_LOG_EVERY_MS / 1000);
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
    peer_name(fd, c->peer, sizeof c->peer);
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
        http_conn_close(c);
        return;
    }
    uv_timer_start(&c->timer, http_conn_on_deadline, (uint64_t)h->header_timeout_ms, 0);
    http_conn_read(c);
    if (!c->reading) http_conn_close(c);
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
    http_t *h = HTTP_CONTAINER_OF(p, http_t, server);
    (void)events;
    if (status < 0) {
        pause_accepting(h, -status);
        return;
    }
    for (int i = 0; i < HTTP_ACCEPTS_PER_WAKE && !h->stopping; i++) {
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
    http_t *h = HTTP_CONTAINER_OF(t, http_t, pause);
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
    http_t *h = HTTP_CONTAINER_OF(hd, http_t, server);
    close(h->fd); /* only now: never close a descriptor a poll handle watches */
    h->fd = -1;
    h->pending--;
    http_maybe_stopped(h);
}

static void on_pause_closed(uv_handle_t *hd)
{
    http_t *h = HTTP_CONTAINER_OF(hd, http_t, pause);
    h->pending--;
    http_maybe_stopped(h);
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
    int port = (int)strtol(colon + 1, NULL, 10);
    int rc = strchr(h0, ':') ? uv_ip6_addr(h0, port, (struct sockaddr_in6 *)&ss)
                             : uv_ip4_addr(*h0 ? h0 : "0.0.0.0", port, (struct sockaddr_in *)&ss);
    if (rc < 0) return rc;
    int fd = listen_on(&ss);
    if (fd < 0) return fd;
    if ((rc = uv_poll_init_socket(loop, &h->server, fd)) < 0) {
        close(fd);
        return rc;
    }
    /* The parser's own head limit (process-wide) matches ours, so a head
     * that never ends is refused as soon as it passes the limit. */
    http_parser_set_max_header_size(HTTP_HEAD_MAX);
    h->fd = fd;
    uv_timer_init(loop, &h->pause);
    h->pending = 2; /* the listener and the pause timer */
    h->open = 1;
    uv_poll_start(&h->server, UV_READABLE, on_accept_ready);

    rlim_t nofile;
    h->limit = h->stats.limit = conn_limit(&nofile);
    h->stream_limit = h->limit / 4 < HTTP_MAX_STREAMS ? h->limit / 4 : HTTP_MAX_STREAMS;
    if (h->stream_limit < 1) h->stream_limit = 1;
    h->header_timeout_ms = header_timeout();
    struct sockaddr_storage bound;
    socklen_t blen = sizeof bound;
    memset(&bound, 0, sizeof bound); /* a failed getsockname reads as port 0 */
    getsockname(fd, (struct sockaddr *)&bound, &blen);
    h->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                : ((struct sockaddr_in *)&bound)->sin_port);
    log_info("HTTP: at most %d connections (descriptor limit %llu) and %d event streams, "
             "request within %d ms, answer within %d ms, head %d bytes, body %d bytes",
             h->limit, (unsigned long long)nofile, h->stream_limit, h->header_timeout_ms,
             HTTP_WRITE_TIMEOUT_MS, HTTP_HEAD_MAX, HTTP_BODY_MAX);
    return 0;
}

void http_stop(http_t *h, uv_close_cb cb)
{
    if (!h->open || h->stopping) return;
    h->open = 0;
    h->stopping = 1;
    h->on_stopped = cb;
    while (h->oldest)
        http_conn_close(h->oldest); /* unlinks it */
    while (h->streams)
        http_conn_close(h->streams);
    uv_close((uv_handle_t *)&h->server, on_listener_closed);
    uv_close((uv_handle_t *)&h->pause, on_pause_closed);
}

void http_get_stats(const http_t *h, http_stats_t *out)
{
    *out = h->stats;
    out->open = h->nconns;
    out->limit = h->limit;
    out->streams = h->nstreams;
}
