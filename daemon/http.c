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

#define IN_MAX 16384 /* unparsed input kept per connection (pipelined requests) */
#define MAX_HEADERS 100
#define HNAME_MAX 32 /* header names we look at are shorter */
#define LOG_EVERY_MS 10000
#define ACCEPTS_PER_WAKE 256 /* then let the loop turn; poll is level-triggered */

#define CONTAINER_OF(ptr, type, field) ((type *)((char *)(ptr)-offsetof(type, field)))

/* ---- connections ---- */

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
    char hname[HNAME_MAX + 1];
    size_t hname_len;
    int is_auth; /* the current header is Authorization */
    size_t auth_len;
    char url[HTTP_URL_MAX];

    /* Event streams. */
    http_stream_close_cb on_stream_close;
    void *stream_arg;

    metrics_buf_t out; /* the answer being written */
    size_t in_len;     /* unparsed bytes in in */
    char in[IN_MAX];
};

static const http_parser_settings settings;

static const char *reason(int code)
{
    switch (code) {
    case 200:
        return "OK";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return "Unknown";
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

/* ---- the connection's life cycle ---- */

static void maybe_stopped(http_t *h)
{
    if (h->stopping && h->pending == 0 && h->on_stopped) {
        uv_close_cb cb = h->on_stopped;
        h->on_stopped = NULL;
        cb((uv_handle_t *)&h->server);
    }
}

static void free_req(http_req_t *r)
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
    maybe_stopped(h);
}

static void unlink_conn(http_t *h, http_conn_t *c)
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
static void close_conn(http_conn_t *c)
{
    if (c->state == CONN_CLOSING) return;
    conn_state_t was = c->state;
    unlink_conn(c->h, c);
    c->state = CONN_CLOSING;
    if (was == CONN_HANDLING && c->req)
        c->req->conn = NULL; /* the route still owns it */
    else
        free_req(c->req);
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

static void on_deadline(uv_timer_t *t)
{
    http_conn_t *c = CONTAINER_OF(t, http_conn_t, timer);
    http_t *h = c->h;
    /* An idle keep-alive connection (not one byte of its next request yet)
     * just ends; anything else missed a deadline. */
    int idle = c->state == CONN_READING && c->nreq > 0 && c->head_bytes == 0 && c->in_len == 0;
    if (!idle &&
        (c->state == CONN_READING || c->state == CONN_HANDLING || c->state == CONN_WRITING)) {
        h->stats.timed_out++;
        if (tick_due(h, &h->log_timeout))
            log_warn("HTTP: closed a connection from %s that did not %s within its deadline "
                     "(%lld so far; logged at most every %d s)",
                     c->peer, c->state == CONN_READING ? "send its request" : "take its answer",
                     h->stats.timed_out, LOG_EVERY_MS / 1000);
    }
    close_conn(c); /* a lingering client just did not close first */
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

static void read_start(http_conn_t *c)
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
    size_t room = HNAME_MAX - c->hname_len;
    size_t k = n < room ? n : room;
    memcpy(c->hname + c->hname_len, at, k);
    c->hname_len += k;
    c->hname[c->hname_len] = '\0';
    if (n > room) c->hname_len = HNAME_MAX; /* too long to be one we look at */
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

/* ---- pure helpers ---- */

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

int http_percent_decode(const char *in, size_t n, char *out, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = in[i];
        if (ch == '%') {
            if (i + 2 >= n) return -1;
            int a = hexval(in[i + 1]), b = hexval(in[i + 2]);
            if (a < 0 || b < 0) return -1;
            ch = (char)(unsigned char)(a * 16 + b);
            i += 2;
        }
        if (ch == '\0' || o + 1 >= len) return -1;
        out[o++] = ch;
    }
    if (len == 0) return -1;
    out[o] = '\0';
    return (int)o;
}

int http_query_get(const char *query, const char *name, char *out, size_t len)
{
    size_t nl = strlen(name);
    const char *p = query;
    while (p && *p) {
        const char *end = strchr(p, '&');
        size_t seg = end ? (size_t)(end - p) : strlen(p);
        if (seg >= nl && strncmp(p, name, nl) == 0 && (seg == nl || p[nl] == '=')) {
            const char *v = seg == nl ? p + seg : p + nl + 1;
            size_t vn = (size_t)(p + seg - v);
            char tmp[HTTP_URL_MAX];
            if (vn >= sizeof tmp) return -1;
            memcpy(tmp, v, vn);
            for (size_t i = 0; i < vn; i++)
                if (tmp[i] == '+') tmp[i] = ' ';
            return http_percent_decode(tmp, vn, out, len);
        }
        p = end ? end + 1 : NULL;
    }
    return -1;
}

/* ---- answering ---- */

static void on_written(uv_write_t *w, int status);

static void count_bad(http_t *h, int code)
{
    if (code == 400 || code == 405 || code == 413 || code == 414 || code == 431) {
        h->stats.bad_requests++;
        if (tick_due(h, &h->log_bad))
            log_warn("HTTP: answered %d %s (%lld bad requests so far; logged at most every %d s)",
                     code, reason(code), h->stats.bad_requests, LOG_EVERY_MS / 1000);
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
                   code, reason(code), ctype, len, c->keep ? "keep-alive" : "close",
                   extra ? extra : "");
    if (!head_only && len) {
        /* Bodies may hold NULs (never do, but must not be cut): copy raw. */
        if (c->out.len + len > c->out.cap) {
            size_t cap = c->out.cap ? c->out.cap : (size_t)4096;
            while (cap < c->out.len + len)
                cap *= 2;
            char *b = realloc(c->out.buf, cap);
            if (!b) {
                close_conn(c);
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
        close_conn(c);
}

static void on_shutdown(uv_shutdown_t *s, int status)
{
    http_conn_t *c = s->data;
    if (status < 0) close_conn(c);
}

static void parse_more(http_conn_t *c);

static void on_written(uv_write_t *w, int status)
{
    http_conn_t *c = w->data;
    if (c->state != CONN_WRITING) return; /* closed while writing (ECANCELED) */
    if (status < 0 || (c->eof && c->in_len == 0)) {
        close_conn(c); /* nothing of the client's is left unread after its EOF */
        return;
    }
    if (c->keep) {
        /* The next request: the header deadline again, from now. */
        c->state = CONN_READING;
        if (c->out.cap > 65536) { /* a big answer's buffer is not kept around */
            free(c->out.buf);
            c->out = (metrics_buf_t){0};
        }
        uv_timer_start(&c->timer, on_deadline, (uint64_t)c->h->header_timeout_ms, 0);
        read_start(c);
        parse_more(c); /* pipelined bytes first */
        return;
    }
    /* Send our FIN and wait for the client's before closing: closing with
     * its unread bytes (a body, the rest of an over-long head) would reset
     * the connection and could destroy the answer in flight. */
    c->state = CONN_LINGERING;
    c->in_len = 0;
    uv_timer_start(&c->timer, on_deadline, HTTP_LINGER_MS, 0);
    read_start(c);
    c->sreq.data = c;
    if (uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, on_shutdown) < 0) close_conn(c);
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
    free_req(req);
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
    uv_timer_start(&c->timer, on_deadline, HTTP_WRITE_TIMEOUT_MS, 0);
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
    free_req(c->req);
    c->req = NULL;
    c->state = CONN_HANDLING;
    uv_timer_start(&c->timer, on_deadline, HTTP_WRITE_TIMEOUT_MS, 0);
    send_answer(c, code, "text/plain", t, strlen(t), NULL, 0);
}

/* Feeds the buffered input to the parser until a request is complete (it
 * is then dispatched), the input runs out, or the request is refused. */
static void parse_more(http_conn_t *c)
{
    while (c->state == CONN_READING && c->in_len > 0) {
        if (!c->req && start_request(c) < 0) {
            close_conn(c);
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
    if (c->state == CONN_READING && c->in_len == 0 && c->eof) close_conn(c);
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
        close_conn(c); /* EOF or error */
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

/* ---- event streams ---- */

typedef struct {
    uv_write_t w;
    size_t len;
    char data[];
} stream_write_t;

static void on_stream_written(uv_write_t *w, int status)
{
    stream_write_t *sw = CONTAINER_OF(w, stream_write_t, w);
    http_conn_t *c = w->data;
    free(sw);
    if (status < 0 && c->state == CONN_STREAMING) close_conn(c);
}

http_stream_t *http_stream_begin(http_req_t *req, const char *ctype, http_stream_close_cb on_close,
                                 void *arg)
{
    http_conn_t *c = req->conn;
    if (!c || c->state != CONN_HANDLING || c->req != req) {
        free_req(req);
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
    free_req(req);
    /* Out of the connection list (it no longer competes for a slot) into
     * the stream list. */
    unlink_conn(h, c);
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
    read_start(c); /* to see the client leave */
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
        close_conn(c);
        return -1;
    }
    stream_write_t *sw = malloc(sizeof *sw + len);
    if (!sw) {
        close_conn(c);
        return -1;
    }
    memcpy(sw->data, data, len);
    sw->len = len;
    sw->w.data = c;
    uv_buf_t b = uv_buf_init(sw->data, (unsigned)len);
    if (uv_write(&sw->w, (uv_stream_t *)&c->tcp, &b, 1, on_stream_written) < 0) {
        free(sw);
        close_conn(c);
        return -1;
    }
    return 0;
}

void http_stream_end(http_stream_t *s)
{
    http_conn_t *c = s;
    if (c->state == CONN_STREAMING) close_conn(c);
}

/* ---- accepting ---- */

/* Makes room for one more connection by closing the oldest one that is
 * waiting for a request or lingering. Returns 0, or -1 if every open one
 * is being answered. */
static int shed_oldest(http_t *h)
{
    for (http_conn_t *c = h->oldest; c; c = c->next) {
        if (c->state == CONN_HANDLING || c->state == CONN_WRITING) continue;
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
        close_conn(c);
        return;
    }
    uv_timer_start(&c->timer, on_deadline, (uint64_t)h->header_timeout_ms, 0);
    read_start(c);
    if (!c->reading) close_conn(c);
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
    memset(&bound, 0, sizeof bound);
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
        close_conn(h->oldest); /* unlinks it */
    while (h->streams)
        close_conn(h->streams);
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
