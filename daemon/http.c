/* http.c - see http.h. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

#define HEAD_MAX 8192

typedef struct {
    uv_tcp_t tcp;
    http_t *h;
    char head[HEAD_MAX];
    size_t len;
    uv_write_t wreq;
    metrics_buf_t out;
    int answered;
} conn_t;

static void on_conn_closed(uv_handle_t *hd)
{
    conn_t *c = hd->data;
    free(c->out.buf);
    free(c);
}

static void close_conn(conn_t *c)
{
    if (!uv_is_closing((uv_handle_t *)&c->tcp)) uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

static void on_written(uv_write_t *w, int status)
{
    (void)status;
    close_conn(w->data);
}

static void respond(conn_t *c, int code, const char *ctype, const char *body, size_t len)
{
    const char *reason = code == 200   ? "OK"
                         : code == 404 ? "Not Found"
                         : code == 503 ? "Service Unavailable"
                                       : "Bad Request";
    metrics_printf(&c->out,
                   "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                   "Connection: close\r\nCache-Control: no-store\r\n\r\n",
                   code, reason, ctype, len);
    metrics_printf(&c->out, "%.*s", (int)len, body);
    c->answered = 1;
    uv_read_stop((uv_stream_t *)&c->tcp);
    uv_buf_t b = uv_buf_init(c->out.buf, (unsigned)c->out.len);
    c->wreq.data = c;
    if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_written) < 0) close_conn(c);
}

static void route(conn_t *c)
{
    char method[8] = "", path[256] = "";
    if (sscanf(c->head, "%7s %255s", method, path) != 2) {
        respond(c, 400, "text/plain", "bad request\n", 12);
        return;
    }
    char *q = strchr(path, '?');
    if (q) *q = '\0';
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        respond(c, 400, "text/plain", "only GET\n", 9);
    } else if (strcmp(path, "/health/live") == 0) {
        respond(c, 200, "application/json", "{\"live\":true}\n", 14);
    } else if (strcmp(path, "/health/ready") == 0) {
        metrics_buf_t why = {0};
        c->h->cbs.not_ready(c->h->cbs.arg, &why);
        if (why.len == 0) {
            respond(c, 200, "application/json", "{\"ready\":true}\n", 15);
        } else {
            metrics_buf_t body = {0};
            metrics_printf(&body, "{\"ready\":false,\"reasons\":[%.*s]}\n", (int)why.len, why.buf);
            respond(c, 503, "application/json", body.buf, body.len);
            free(body.buf);
        }
        free(why.buf);
    } else if (strcmp(path, "/metrics") == 0) {
        metrics_buf_t m = {0};
        c->h->cbs.metrics(c->h->cbs.arg, &m);
        respond(c, 200, "text/plain; version=0.0.4", m.buf ? m.buf : "", m.len);
        free(m.buf);
    } else {
        respond(c, 404, "text/plain", "not found\n", 10);
    }
}

static void on_alloc(uv_handle_t *hd, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    conn_t *c = hd->data;
    buf->base = c->head + c->len;
    buf->len = HEAD_MAX - 1 - c->len;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    (void)buf;
    conn_t *c = s->data;
    if (n < 0) {
        close_conn(c);
        return;
    }
    c->len += (size_t)n;
    c->head[c->len] = '\0';
    if (c->answered) return;
    if (strstr(c->head, "\r\n\r\n") || strstr(c->head, "\n\n"))
        route(c);
    else if (c->len >= HEAD_MAX - 1)
        respond(c, 400, "text/plain", "request head too large\n", 23);
}

static void on_connection(uv_stream_t *server, int status)
{
    http_t *h = server->data;
    if (status < 0) return;
    conn_t *c = calloc(1, sizeof *c);
    if (!c) return;
    c->h = h;
    uv_tcp_init(server->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0 ||
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0)
        close_conn(c);
}

int http_start(http_t *h, uv_loop_t *loop, const char *hostport, const http_cbs_t *cbs)
{
    memset(h, 0, sizeof *h);
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
    int port = atoi(colon + 1);
    int rc = strchr(h0, ':') ? uv_ip6_addr(h0, port, (struct sockaddr_in6 *)&ss)
                             : uv_ip4_addr(*h0 ? h0 : "0.0.0.0", port, (struct sockaddr_in *)&ss);
    if (rc < 0) return rc;
    uv_tcp_init(loop, &h->server);
    h->server.data = h;
    h->open = 1;
    if ((rc = uv_tcp_bind(&h->server, (struct sockaddr *)&ss, 0)) < 0 ||
        (rc = uv_listen((uv_stream_t *)&h->server, 64, on_connection)) < 0)
        return rc;
    struct sockaddr_storage bound;
    int len = sizeof bound;
    uv_tcp_getsockname(&h->server, (struct sockaddr *)&bound, &len);
    h->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                : ((struct sockaddr_in *)&bound)->sin_port);
    return 0;
}

void http_stop(http_t *h, uv_close_cb cb)
{
    if (h->open && !uv_is_closing((uv_handle_t *)&h->server)) {
        h->open = 0;
        uv_close((uv_handle_t *)&h->server, cb);
    }
}
