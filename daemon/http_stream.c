/* http_stream.c - event streams (http.h): a connection whose request a
 * route turned into a stream, written to with no deadline and a backlog
 * cap, counted apart from the connection limit. */
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

/* ---- event streams ---- */

typedef struct {
    uv_write_t w;
    size_t len;
    char data[];
} stream_write_t;

static void on_stream_written(uv_write_t *w, int status)
{
    stream_write_t *sw = HTTP_CONTAINER_OF(w, stream_write_t, w);
    http_conn_t *c = w->data;
    free(sw);
    if (status < 0 && c->state == CONN_STREAMING) http_conn_close(c);
}

http_stream_t *http_stream_begin(http_req_t *req, const char *ctype, http_stream_close_cb on_close,
                                 void *arg)
{
    http_conn_t *c = req->conn;
    if (!c || c->state != CONN_HANDLING || c->req != req) {
        http_req_free(req);
        return NULL;
    }
    http_t *h = c->h;
    if (h->nstreams >= h->stream_limit || h->stopping) {
        h->stats.streams_refused++;
        c->keep = 0;
        http_respond(req, 503, "text/plain", "too many event streams\n", 23, "Retry-After: 5\r\n");
        return NULL;
    }
    c->req = NULL;
    http_req_free(req);
    /* Out of the connection list (it no longer competes for a slot) into
     * the stream list. */
    http_conn_unlink(h, c);
    c->state = CONN_STREAMING;
    c->next = h->streams;
    if (h->streams) h->streams->prev = c;
    h->streams = c;
    h->nstreams++;
    c->on_stream_close = on_close;
    c->stream_arg = arg;
    c->nreq++;
    uv_timer_stop(&c->timer);
    c->in_len = 0;
    http_conn_read(c); /* to see the client leave */
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nCache-Control: no-store\r\n"
                     "Connection: close\r\nX-Accel-Buffering: no\r\n\r\n",
                     ctype);
    if (http_stream_send(c, head, (size_t)n) < 0) return NULL;
    return c;
}

int http_stream_send(http_stream_t *s, const char *data, size_t len)
{
    http_conn_t *c = s;
    if (c->state != CONN_STREAMING) return -1;
    if (c->tcp.write_queue_size > HTTP_STREAM_BACKLOG) {
        c->h->stats.streams_slow++;
        log_warn("HTTP: closed the event stream of %s: it fell %zu bytes behind", c->peer,
                 c->tcp.write_queue_size);
        http_conn_close(c);
        return -1;
    }
    stream_write_t *sw = malloc(sizeof *sw + len);
    if (!sw) {
        http_conn_close(c);
        return -1;
    }
    memcpy(sw->data, data, len);
    sw->len = len;
    sw->w.data = c;
    uv_buf_t b = uv_buf_init(sw->data, (unsigned)len);
    if (uv_write(&sw->w, (uv_stream_t *)&c->tcp, &b, 1, on_stream_written) < 0) {
        free(sw);
        http_conn_close(c);
        return -1;
    }
    return 0;
}

void http_stream_end(http_stream_t *s)
{
    http_conn_t *c = s;
    if (c->state == CONN_STREAMING) http_conn_close(c);
}
