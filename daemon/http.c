/* http.c - see http.h. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <http_parser.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http.h"
#include "log.h"

#define MAX_HEADERS 100

static const http_parser_settings settings;

/* ---- rate-limited log lines ---- */

/* Whether a line of this kind may be logged now (one every 10 s). */
int http_tick_due(http_t *h, http_logtick_t *t)
{
    uint64_t now = uv_now(h->loop);
    if (t->last_ms && now - t->last_ms < HTTP_LOG_EVERY_MS) return 0;
    t->last_ms = now ? now : 1;
    return 1;
}

/* ---- the connection's life cycle ---- */

void http_maybe_stopped(http_t *h)
{
    if (h->stopping && h->pending == 0 && h->on_stopped) {
        uv_close_cb cb = h->on_stopped;
        h->on_stopped = NULL;
        cb((uv_handle_t *)&h->server);
    }
}

void http_req_free(http_req_t *r)
{
    if (!r) return;
    free(r->body);
    free(r);
}

static void on_conn_handle_closed(uv_handle_t *hd)
{
    http_conn_t *c = hd->data;
    if (--c->closes > 0) return;
    http_t *h = c->h;
    free(c->out.buf);
    free(c);
    h->pending--;
    http_maybe_stopped(h);
}

void http_conn_unlink(http_t *h, http_conn_t *c)
{
    if (c->state == CONN_STREAMING) {
        if (c->prev)
            c->prev->next = c->next;
        else
            h->streams = c->next;
        if (c->next) c->next->prev = c->prev;
        h->nstreams--;
    } else {
        if (c->prev)
            c->prev->next = c->next;
        else
            h->oldest = c->next;
        if (c->next)
            c->next->prev = c->prev;
        else
            h->newest = c->prev;
        h->nconns--;
    }
    c->prev = c->next = NULL;
}

/* Closes c's socket (at once: libuv closes the descriptor in uv_close) and
 * its timer; c is freed in the second close callback. A request with the
 * route is detached (the route's late answer frees it); one being parsed is
 * freed; a stream's on_close runs. Idempotent. */
void http_conn_close(http_conn_t *c)
{
    if (c->state == CONN_CLOSING) return;
    conn_state_t was = c->state;
    http_conn_unlink(c->h, c);
    c->state = CONN_CLOSING;
    if (was == CONN_HANDLING && c->req)
        c->req->conn = NULL; /* the route still owns it */
    else
        http_req_free(c->req);
    c->req = NULL;
    c->closes = 2;
    uv_close((uv_handle_t *)&c->tcp, on_conn_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
    if (was == CONN_STREAMING && c->on_stream_close) {
        http_stream_close_cb cb = c->on_stream_close;
        c->on_stream_close = NULL;
        cb(c->stream_arg, c);
    }
}

void http_conn_on_deadline(uv_timer_t *t)
{
    http_conn_t *c = HTTP_CONTAINER_OF(t, http_conn_t, timer);
    http_t *h = c->h;
    /* An idle keep-alive connection (not one byte of its next request yet)
     * just ends; anything else missed a deadline. */
    int idle = c->state == CONN_READING && c->nreq > 0 && c->head_bytes == 0 && c->in_len == 0;
    if (!idle &&
        (c->state == CONN_READING || c->state == CONN_HANDLING || c->state == CONN_WRITING)) {
        h->stats.timed_out++;
        if (http_tick_due(h, &h->log_timeout))
            log_warn("HTTP: closed a connection from %s that did not %s within its deadline "
                     "(%lld so far; logged at most every %d s)",
                     c->peer, c->state == CONN_READING ? "send its request" : "take its answer",
                     h->stats.timed_out, HTTP_LOG_EVERY_MS / 1000);
    }
    http_conn_close(c); /* a lingering client just did not close first */
}

static void on_alloc(uv_handle_t *hd, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    http_conn_t *c = hd->data;
    if (c->state == CONN_STREAMING || c->state == CONN_LINGERING) {
        /* Nothing more is parsed: what comes is read and dropped. */
        c->in_len = 0;
        buf->base = c->in;
        buf->len = sizeof c->in;
        return;
    }
    buf->base = c->in + c->in_len;
    buf->len = sizeof c->in - c->in_len;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

void http_conn_read(http_conn_t *c)
{
    if (c->reading || c->eof || c->state == CONN_CLOSING) return;
    if (c->in_len >= sizeof c->in) return; /* full: the next answer makes room */
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0) c->reading = 1;
}

static void read_stop(http_conn_t *c)
{
    if (!c->reading) return;
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = 0;
}

/* ---- parsing: http-parser callbacks fill c->req ---- */

static int start_request(http_conn_t *c)
{
    c->req = calloc(1, sizeof *c->req);
    if (!c->req) return -1;
    c->req->conn = c;
    snprintf(c->req->peer, sizeof c->req->peer, "%s", c->peer);
    c->err = c->done = c->in_value = c->nheaders = 0;
    c->head_bytes = c->url_len = c->body_cap = c->hname_len = c->auth_len = 0;
    c->is_auth = 0;
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    return 0;
}

/* Refuses the request being parsed with code: the parser stops (paused),
 * and the connection answers and closes. */
static int refuse_req(http_parser *p, int code)
{
    http_conn_t *c = p->data;
    if (!c->err) c->err = code;
    http_parser_pause(p, 1);
    return 0;
}

/* Counts n more bytes of request head; refuses an oversized head. */
static int head_grow(http_parser *p, size_t n)
{
    http_conn_t *c = p->data;
    c->head_bytes += n;
    return c->head_bytes > HTTP_HEAD_MAX ? refuse_req(p, 431) : 0;
}

static int on_url(http_parser *p, const char *at, size_t n)
{
    http_conn_t *c = p->data;
    if (head_grow(p, n) || c->err) return 0;
    if (c->url_len + n >= sizeof c->url) return refuse_req(p, 414);
    memcpy(c->url + c->url_len, at, n);
    c->url_len += n;
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t n)
{
    http_conn_t *c = p->data;
    if (head_grow(p, n + 4) || c->err) return 0; /* ": " and CRLF */
    if (c->in_value || c->nheaders == 0) {
        if (++c->nheaders > MAX_HEADERS) return refuse_req(p, 431);
        c->in_value = 0;
        c->hname_len = 0;
        c->is_auth = 0;
    }
    size_t room = HTTP_HNAME_MAX - c->hname_len;
    size_t k = n < room ? n : room;
    memcpy(c->hname + c->hname_len, at, k);
    c->hname_len += k;
    c->hname[c->hname_len] = '\0';
    if (n > room) c->hname_len = HTTP_HNAME_MAX; /* too long to be one we look at */
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t n)
{
    http_conn_t *c = p->data;
    if (head_grow(p, n) || c->err) return 0;
    if (!c->in_value) {
        c->in_value = 1;
        c->is_auth = strcasecmp(c->hname, "authorization") == 0;
        if (c->is_auth) c->auth_len = 0;
    }
    if (c->is_auth) {
        if (c->auth_len + n > HTTP_AUTH_MAX) return refuse_req(p, 431);
        memcpy(c->req->auth + c->auth_len, at, n);
        c->auth_len += n;
        c->req->auth[c->auth_len] = '\0';
    }
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    http_conn_t *c = p->data;
    if (c->err) return 0;
    /* No Content-Length reads as ULLONG_MAX, chunked bodies are counted in
     * on_body. */
    if ((p->flags & F_CONTENTLENGTH) && p->content_length > HTTP_BODY_MAX)
        return refuse_req(p, 413);
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
    http_conn_t *c = p->data;
    http_req_t *r = c->req;
    if (c->err) return 0;
    if (r->body_len + n > HTTP_BODY_MAX) return refuse_req(p, 413);
    if (r->body_len + n + 1 > c->body_cap) {
        size_t cap = c->body_cap ? c->body_cap : 1024;
        while (cap < r->body_len + n + 1)
            cap *= 2;
        char *b = realloc(r->body, cap);
        if (!b) return refuse_req(p, 413);
        r->body = b;
        c->body_cap = cap;
    }
    memcpy(r->body + r->body_len, at, n);
    r->body_len += n;
    r->body[r->body_len] = '\0';
    return 0;
}

static int on_message_complete(http_parser *p)
{
    http_conn_t *c = p->data;
    c->done = 1;
    http_parser_pause(p, 1); /* one request at a time; the rest waits in c->in */
    return 0;
}

static const http_parser_settings settings = {
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ---- answering ---- */

static void on_written(uv_write_t *w, int status);

static void count_bad(http_t *h, int code)
{
    if (code == 400 || code == 405 || code == 413 || code == 414 || code == 431) {
        h->stats.bad_requests++;
        if (http_tick_due(h, &h->log_bad))
            log_warn("HTTP: answered %d %s (%lld bad requests so far; logged at most every %d s)",
                     code, http_reason(code), h->stats.bad_requests, HTTP_LOG_EVERY_MS / 1000);
    }
}

/* Writes the answer on c (state WRITING). */
static void send_answer(http_conn_t *c, int code, const char *ctype, const char *body, size_t len,
                        const char *extra, int head_only)
{
    http_t *h = c->h;
    count_bad(h, code);
    c->nreq++;
    if (c->nreq >= HTTP_MAX_REQUESTS || h->stopping || code == 503) c->keep = 0;
    c->out.len = 0;
    metrics_printf(&c->out,
                   "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                   "Connection: %s\r\nCache-Control: no-store\r\n%s\r\n",
                   code, http_reason(code), ctype, len, c->keep ? "keep-alive" : "close",
                   extra ? extra : "");
    if (!head_only && len) {
        /* Bodies may hold NULs (never do, but must not be cut): copy raw. */
        if (c->out.len + len > c->out.cap) {
            size_t cap = c->out.cap ? c->out.cap : (size_t)4096;
            while (cap < c->out.len + len)
                cap *= 2;
            char *b = realloc(c->out.buf, cap);
            if (!b) {
                http_conn_close(c);
                return;
            }
            c->out.buf = b;
            c->out.cap = cap;
        }
        memcpy(c->out.buf + c->out.len, body, len);
        c->out.len += len;
    }
    c->state = CONN_WRITING;
    uv_buf_t b = uv_buf_init(c->out.buf, (unsigned)c->out.len);
    c->wreq.data = c;
    if (!c->out.buf || uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_written) < 0)
        http_conn_close(c);
}

static void on_shutdown(uv_shutdown_t *s, int status)
{
    http_conn_t *c = s->data;
    if (status < 0) http_conn_close(c);
}

static void parse_more(http_conn_t *c);

static void on_written(uv_write_t *w, int status)
{
    http_conn_t *c = w->data;
    if (c->state != CONN_WRITING) return; /* closed while writing (ECANCELED) */
    if (status < 0 || (c->eof && c->in_len == 0)) {
        http_conn_close(c); /* nothing of the client's is left unread after its EOF */
        return;
    }
    if (c->keep) {
        /* The next request: the header deadline again, from now. */
        c->state = CONN_READING;
        if (c->out.cap > 65536) { /* a big answer's buffer is not kept around */
            free(c->out.buf);
            c->out = (metrics_buf_t){0};
        }
        uv_timer_start(&c->timer, http_conn_on_deadline, (uint64_t)c->h->header_timeout_ms, 0);
        http_conn_read(c);
        parse_more(c); /* pipelined bytes first */
        return;
    }
    /* Send our FIN and wait for the client's before closing: closing with
     * its unread bytes (a body, the rest of an over-long head) would reset
     * the connection and could destroy the answer in flight. */
    c->state = CONN_LINGERING;
    c->in_len = 0;
    uv_timer_start(&c->timer, http_conn_on_deadline, HTTP_LINGER_MS, 0);
    http_conn_read(c);
    c->sreq.data = c;
    if (uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, on_shutdown) < 0) http_conn_close(c);
}

void http_respond(http_req_t *req, int code, const char *ctype, const char *body, size_t len,
                  const char *extra)
{
    http_conn_t *c = req->conn;
    int head_only = req->method == HTTP_M_HEAD;
    if (c && c->state == CONN_HANDLING && c->req == req) {
        c->req = NULL;
        send_answer(c, code, ctype, body, len, extra, head_only);
    }
    http_req_free(req);
}

void http_respond_text(http_req_t *req, int code, const char *ctype, const char *body)
{
    http_respond(req, code, ctype, body, strlen(body), NULL);
}

/* ---- the built-in routes ---- */

static void answer_builtin(http_t *h, http_req_t *req)
{
    metrics_buf_t b = {0};
    int code = 200;
    const char *ctype = "application/json";
    if (req->method != HTTP_M_GET && req->method != HTTP_M_HEAD) {
        http_respond(req, 405, "text/plain", "method not allowed\n", 19, "Allow: GET, HEAD\r\n");
        return;
    }
    if (strcmp(req->path, "/health/live") == 0) {
        metrics_printf(&b, "{\"live\":true}\n");
    } else if (strcmp(req->path, "/health/ready") == 0) {
        metrics_buf_t why = {0};
        h->cbs.not_ready(h->cbs.arg, &why);
        if (why.len == 0) {
            metrics_printf(&b, "{\"ready\":true}\n");
        } else {
            code = 503;
            metrics_printf(&b, "{\"ready\":false,\"reasons\":[%.*s]}\n", (int)why.len, why.buf);
        }
        free(why.buf);
    } else {
        ctype = "text/plain; version=0.0.4";
        h->cbs.metrics(h->cbs.arg, &b);
    }
    http_respond(req, code, ctype, b.buf ? b.buf : "", b.len, NULL);
    free(b.buf);
}

static http_method_t method_of(unsigned m)
{
    switch (m) {
    case HTTP_GET:
        return HTTP_M_GET;
    case HTTP_HEAD:
        return HTTP_M_HEAD;
    case HTTP_POST:
        return HTTP_M_POST;
    case HTTP_DELETE:
        return HTTP_M_DELETE;
    default:
        return HTTP_M_OTHER;
    }
}

/* A whole request has been parsed: hand it on. */
static void dispatch(http_conn_t *c)
{
    http_t *h = c->h;
    http_req_t *req = c->req;
    h->stats.requests++;
    c->keep = http_should_keep_alive(&c->parser) && !c->parser.upgrade;
    req->method = method_of(c->parser.method);
    snprintf(req->method_name, sizeof req->method_name, "%s",
             http_method_str((enum http_method)c->parser.method));
    c->state = CONN_HANDLING;
    uv_timer_start(&c->timer, http_conn_on_deadline, HTTP_WRITE_TIMEOUT_MS, 0);
    /* The target: origin form only ("/path?query"); the path decoded. */
    c->url[c->url_len] = '\0';
    char *q = memchr(c->url, '?', c->url_len);
    size_t plen = q ? (size_t)(q - c->url) : c->url_len;
    if (q) snprintf(req->query, sizeof req->query, "%s", q + 1);
    if (c->url[0] != '/' || http_percent_decode(c->url, plen, req->path, sizeof req->path) < 0) {
        c->keep = 0;
        http_respond(req, 400, "text/plain", "bad request target\n", 19, NULL);
        return;
    }
    if (strcmp(req->path, "/health/live") == 0 || strcmp(req->path, "/health/ready") == 0 ||
        strcmp(req->path, "/metrics") == 0)
        answer_builtin(h, req);
    else if (h->cbs.route)
        h->cbs.route(h->cbs.route_arg, req);
    else
        http_respond(req, 404, "text/plain", "not found\n", 10, NULL);
}

/* Answers the request being parsed with an error and closes after it. */
static void refuse_now(http_conn_t *c, int code)
{
    static const char *const texts[] = {"bad request\n", "request body too large\n",
                                        "request target too long\n", "request head too large\n"};
    const char *t = code == 413   ? texts[1]
                    : code == 414 ? texts[2]
                    : code == 431 ? texts[3]
                                  : texts[0];
    c->keep = 0;
    c->in_len = 0;
    http_req_free(c->req);
    c->req = NULL;
    c->state = CONN_HANDLING;
    uv_timer_start(&c->timer, http_conn_on_deadline, HTTP_WRITE_TIMEOUT_MS, 0);
    send_answer(c, code, "text/plain", t, strlen(t), NULL, 0);
}

/* Feeds the buffered input to the parser until a request is complete (it
 * is then dispatched), the input runs out, or the request is refused. */
static void parse_more(http_conn_t *c)
{
    while (c->state == CONN_READING && c->in_len > 0) {
        if (!c->req && start_request(c) < 0) {
            http_conn_close(c);
            return;
        }
        size_t used = http_parser_execute(&c->parser, &settings, c->in, c->in_len);
        enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
        if (e == HPE_PAUSED) http_parser_pause(&c->parser, 0);
        if (used < c->in_len) memmove(c->in, c->in + used, c->in_len - used);
        c->in_len -= used;
        if (c->err) {
            refuse_now(c, c->err);
        } else if (e == HPE_HEADER_OVERFLOW) {
            refuse_now(c, 431);
        } else if (e != HPE_OK && e != HPE_PAUSED) {
            refuse_now(c, 400);
        } else if (c->done) {
            dispatch(c);
        }
        if (!c->done && !c->err && e == HPE_OK && c->in_len > 0 && used == 0) {
            refuse_now(c, 400); /* no progress: never spin */
        }
    }
    if (c->state == CONN_READING && c->in_len == 0 && c->eof) http_conn_close(c);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    (void)buf;
    http_conn_t *c = s->data;
    if (n == 0) return;
    if (n < 0) {
        if (n == UV_EOF && (c->state == CONN_HANDLING || c->state == CONN_WRITING)) {
            /* The client half-closed after its request (nc -N does): let
             * the answer go out, then close (on_written). */
            c->eof = 1;
            c->keep = 0;
            read_stop(c);
            return;
        }
        if (n == UV_EOF && c->state == CONN_READING && c->in_len > 0) {
            /* The rest of what it sent may still make whole requests. */
            c->eof = 1;
            read_stop(c);
            parse_more(c);
            return;
        }
        http_conn_close(c); /* EOF or error */
        return;
    }
    if (c->state == CONN_STREAMING || c->state == CONN_LINGERING) {
        c->in_len = 0;
        return;
    }
    c->in_len += (size_t)n;
    if (c->state == CONN_READING)
        parse_more(c);
    else if (c->in_len >= sizeof c->in)
        read_stop(c); /* pipelined too far ahead: wait for our answer */
}
