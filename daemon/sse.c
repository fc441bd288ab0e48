/* sse.c - see sse.h. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "jobd/client.h"
#include "log.h"
#include "sse.h"

#define PING_TICKS 15

typedef struct sse_client {
    struct sse_client *prev, *next;
    console_t *con;
    http_stream_t *s;
    unsigned serial;                       /* finds it again after a Redis round trip */
    char queue[129], job[JOBD_ID_LEN + 1]; /* the job watched ("" none) */
    int job_inflight;
    char *last_job; /* the last "job" event sent */
} sse_client_t;

static sse_client_t *find(console_t *c, unsigned serial)
{
    for (sse_client_t *k = c->clients; k; k = k->next)
        if (k->serial == serial) return k;
    return NULL;
}

/* Sends one event; the client may be gone when this returns -1. */
static int send_event(sse_client_t *k, const char *event, const char *data)
{
    size_t n = strlen(event) + strlen(data) + 32;
    char *buf = malloc(n);
    if (!buf) return -1;
    int len = snprintf(buf, n, "event: %s\ndata: %s\n\n", event, data);
    k->con->stats.events_sent++;
    int rc = http_stream_send(k->s, buf, (size_t)len);
    free(buf);
    return rc;
}

static void broadcast(console_t *c, const char *event, const char *data)
{
    for (sse_client_t *k = c->clients, *next; k; k = next) {
        next = k->next; /* k may close (and be freed) in send_event */
        send_event(k, event, data);
    }
}

/* A changed value is sent to every stream; *last keeps it. */
static void broadcast_if_changed(console_t *c, char **last, const char *event, json_t *v)
{
    char *text = json_dumps(v, JSON_COMPACT | JSON_REAL_PRECISION(10));
    json_decref(v);
    if (!text) return;
    if (*last && strcmp(*last, text) == 0) {
        free(text);
        return;
    }
    free(*last);
    *last = text;
    broadcast(c, event, text);
}

static void on_queues(console_t *c, json_t *v, void *arg)
{
    (void)arg;
    c->overview_inflight = 0;
    if (v && c->nclients)
        broadcast_if_changed(c, &c->last_queues, "queues", v);
    else
        json_decref(v);
}

static void on_workers(console_t *c, json_t *v, void *arg)
{
    (void)arg;
    c->workers_inflight = 0;
    if (v && c->nclients)
        broadcast_if_changed(c, &c->last_workers, "workers", v);
    else
        json_decref(v);
}

static void on_job(console_t *c, json_t *v, void *arg)
{
    unsigned *serial = arg;
    sse_client_t *k = find(c, *serial);
    free(serial);
    if (!k || !v) {
        if (k) k->job_inflight = 0;
        json_decref(v);
        return;
    }
    k->job_inflight = 0;
    char *text = json_dumps(v, JSON_COMPACT | JSON_REAL_PRECISION(10));
    json_decref(v);
    if (!text) return;
    if (k->last_job && strcmp(k->last_job, text) == 0) {
        free(text);
        return;
    }
    free(k->last_job);
    k->last_job = text;
    send_event(k, "job", text);
}

void sse_tick(console_t *c)
{
    if (!c->nclients || c->closing) return;
    if (!c->overview_inflight) {
        c->overview_inflight = 1;
        api_fetch_overview(c, NULL, on_queues, NULL);
    }
    if (!c->workers_inflight) {
        c->workers_inflight = 1;
        api_fetch_workers(c, on_workers, NULL);
    }
    for (sse_client_t *k = c->clients; k; k = k->next) {
        if (!k->job[0] || k->job_inflight) continue;
        unsigned *serial = malloc(sizeof *serial);
        if (!serial) continue;
        *serial = k->serial;
        k->job_inflight = 1;
        api_fetch_job_brief(c, k->queue, k->job, on_job, serial);
    }
    if (c->tick_n % PING_TICKS == 0)
        for (sse_client_t *k = c->clients, *next; k; k = next) {
            next = k->next;
            http_stream_send(k->s, ": ping\n\n", 8);
        }
}

static void on_stream_closed(void *arg, http_stream_t *s)
{
    (void)s;
    sse_client_t *k = arg;
    console_t *c = k->con;
    if (k->prev)
        k->prev->next = k->next;
    else
        c->clients = k->next;
    if (k->next) k->next->prev = k->prev;
    c->nclients--;
    free(k->last_job);
    free(k);
}

void sse_open(console_t *c, http_req_t *req)
{
    if (req->method != HTTP_M_GET) {
        http_respond(req, 405, "application/json", "{\"error\":\"method not allowed\"}", 30,
                     "Allow: GET\r\n");
        return;
    }
    char queue[129] = "", job[JOBD_ID_LEN + 1] = "";
    int hq = http_query_get(req->query, "queue", queue, sizeof queue) > 0;
    int hj = http_query_get(req->query, "job", job, sizeof job) > 0;
    if ((hq && !api_queue_ok(queue)) || (hj && (!api_id_ok(job) || !hq))) {
        console_respond_error(req, 400, "events: job=ID needs queue=Q, both valid names");
        return;
    }
    sse_client_t *k = calloc(1, sizeof *k);
    if (!k) {
        console_respond_error(req, 503, "out of memory");
        return;
    }
    k->con = c;
    k->serial = ++c->next_client_serial;
    snprintf(k->queue, sizeof k->queue, "%s", queue);
    snprintf(k->job, sizeof k->job, "%s", job);
    k->s = http_stream_begin(req, "text/event-stream; charset=utf-8", on_stream_closed, k);
    if (!k->s) {
        free(k);
        return;
    }
    k->next = c->clients;
    if (c->clients) c->clients->prev = k;
    c->clients = k;
    c->nclients++;
    /* Reconnect after 3 s if the stream breaks; the current figures come
     * with the next tick, so a new stream starts with everything: forget
     * what was last broadcast. */
    if (http_stream_send(k->s, "retry: 3000\n\n", 13) < 0) return;
    free(c->last_queues);
    free(c->last_workers);
    c->last_queues = c->last_workers = NULL;
    sse_tick(c);
}
