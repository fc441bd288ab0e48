/* console.c - see console.h. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actions.h"
#include "api.h"
#include "apijobs.h"
#include "console.h"
#include "dashboard.h"
#include "sse.h"

/* ---- the timer ---- */

static void on_overview_sampled(console_t *c, json_t *v, void *arg)
{
    (void)arg;
    c->overview_inflight = 0;
    json_decref(v); /* api_fetch_overview recorded the samples */
}

static void on_tick(uv_timer_t *t)
{
    console_t *c = t->data;
    if (c->closing || !rq_ready(c->rq)) return;
    c->tick_n++;
    if (c->nclients > 0) {
        sse_tick(c);
        return;
    }
    int watched = c->watched_ms && uv_now(c->loop) - c->watched_ms < CONSOLE_WATCH_MS;
    if (watched && !c->overview_inflight &&
        c->tick_n % (CONSOLE_SAMPLE_MS / CONSOLE_TICK_MS) == 0) {
        c->overview_inflight = 1;
        api_fetch_overview(c, NULL, on_overview_sampled, NULL);
    }
}

console_t *console_new(uv_loop_t *loop, rq_t *rq, const config_t *cfg)
{
    console_t *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->loop = loop;
    c->rq = rq;
    c->cfg = cfg;
    admin_init(&c->admin);
    uv_timer_init(loop, &c->tick);
    c->tick.data = c;
    uv_timer_start(&c->tick, on_tick, CONSOLE_TICK_MS, CONSOLE_TICK_MS);
    return c;
}

void console_close(console_t *c)
{
    if (!c || c->closing) return;
    c->closing = 1;
    uv_close((uv_handle_t *)&c->tick, NULL);
}

void console_free(console_t *c)
{
    if (!c) return;
    free(c->last_queues);
    free(c->last_workers);
    explicit_bzero(&c->admin, sizeof c->admin);
    free(c);
}

void console_metrics(const console_t *c, metrics_buf_t *b)
{
    if (!c) return;
    metrics_printf(b,
                   "# HELP jobd_console_api_requests_total Console API requests answered.\n"
                   "# TYPE jobd_console_api_requests_total counter\n"
                   "jobd_console_api_requests_total %lld\n"
                   "# HELP jobd_console_admin_actions_total Console write actions carried out.\n"
                   "# TYPE jobd_console_admin_actions_total counter\n"
                   "jobd_console_admin_actions_total %lld\n"
                   "# HELP jobd_console_admin_refused_total Console write actions refused "
                   "(no token configured, none given, or a wrong one).\n"
                   "# TYPE jobd_console_admin_refused_total counter\n"
                   "jobd_console_admin_refused_total %lld\n"
                   "# HELP jobd_console_events_sent_total Events written to console event "
                   "streams.\n"
                   "# TYPE jobd_console_events_sent_total counter\n"
                   "jobd_console_events_sent_total %lld\n"
                   "# HELP jobd_console_streams_open Console event streams open now.\n"
                   "# TYPE jobd_console_streams_open gauge\n"
                   "jobd_console_streams_open %d\n",
                   c->stats.api_requests, c->stats.admin_actions, c->stats.admin_refused,
                   c->stats.events_sent, c->nclients);
}

/* ---- routing ---- */

static void route_api(console_t *c, http_req_t *req)
{
    /* Segments after /api/v1/. */
    char path[HTTP_URL_MAX];
    snprintf(path, sizeof path, "%s", req->path);
    if (strncmp(path, "/api/v1/", 8) != 0) {
        console_respond_error(req, 404, "no such endpoint");
        return;
    }
    char *seg[8] = {0};
    int n = 0;
    for (char *p = path + 8, *save = NULL, *t; n < 8 && (t = strtok_r(p, "/", &save)); p = NULL)
        seg[n++] = t;
    int get = req->method == HTTP_M_GET || req->method == HTTP_M_HEAD;
    int post = req->method == HTTP_M_POST;
    const char *q = n >= 2 ? seg[1] : NULL;
    if (q && strcmp(seg[0], "queues") == 0 && !api_queue_ok(q)) {
        console_respond_error(req, 400, "not a queue name: [A-Za-z0-9._-]{1,128}");
        return;
    }
    const char *id = n >= 4 && strcmp(seg[0], "queues") == 0 ? seg[3]
                     : n >= 2 && strcmp(seg[0], "jobs") == 0 ? seg[1]
                                                             : NULL;
    if (id && !api_id_ok(id)) {
        console_respond_error(req, 400, "not a job id: [A-Za-z0-9._:-]{1,36}");
        return;
    }
    if (n == 1 && strcmp(seg[0], "info") == 0 && get) {
        api_info(c, req);
    } else if (n == 1 && strcmp(seg[0], "queues") == 0 && get) {
        api_fetch_overview(c, NULL, api_on_overview, req);
    } else if (n == 1 && strcmp(seg[0], "workers") == 0 && get) {
        api_fetch_workers(c, api_on_workers, req);
    } else if (n == 2 && strcmp(seg[0], "jobs") == 0 && get) {
        apijobs_find(c, req, id);
    } else if (n == 2 && strcmp(seg[0], "queues") == 0 && get) {
        api_fetch_overview(c, q, api_on_overview, req);
    } else if (n == 3 && strcmp(seg[0], "queues") == 0 && strcmp(seg[2], "jobs") == 0 && get) {
        apijobs_list(c, req, q);
    } else if (n == 3 && strcmp(seg[0], "queues") == 0 && post &&
               (strcmp(seg[2], "pause") == 0 || strcmp(seg[2], "resume") == 0 ||
                strcmp(seg[2], "purge") == 0 || strcmp(seg[2], "retry-dead") == 0)) {
        actions_run(c, req, seg[2], q, NULL);
    } else if (n == 4 && strcmp(seg[0], "queues") == 0 && strcmp(seg[2], "jobs") == 0 && get) {
        apijobs_one(c, req, q, id);
    } else if (n == 4 && strcmp(seg[0], "queues") == 0 && strcmp(seg[2], "jobs") == 0 &&
               req->method == HTTP_M_DELETE) {
        actions_run(c, req, "delete", q, id);
    } else if (n == 5 && strcmp(seg[0], "queues") == 0 && strcmp(seg[2], "jobs") == 0 && post &&
               (strcmp(seg[4], "retry") == 0 || strcmp(seg[4], "cancel") == 0 ||
                strcmp(seg[4], "delete") == 0)) {
        actions_run(c, req, seg[4], q, id);
    } else {
        /* A known path with the wrong method gets 405, anything else 404. */
        int known =
            (n == 1 && (strcmp(seg[0], "queues") == 0 || strcmp(seg[0], "workers") == 0 ||
                        strcmp(seg[0], "info") == 0)) ||
            (n >= 2 && n <= 5 && (strcmp(seg[0], "queues") == 0 || strcmp(seg[0], "jobs") == 0));
        if (known) {
            char *text = NULL;
            json_t *o = json_pack("{s:s}", "error", "method not allowed");
            text = json_dumps(o, JSON_COMPACT);
            json_decref(o);
            http_respond(req, 405, "application/json", text, strlen(text),
                         (n == 3 && strcmp(seg[2], "jobs") != 0) || n == 5 ? "Allow: POST\r\n"
                         : n == 4 ? "Allow: GET, HEAD, DELETE\r\n"
                                  : "Allow: GET, HEAD\r\n");
            free(text);
        } else {
            console_respond_error(req, 404, "no such endpoint");
        }
    }
}

void console_route(void *arg, http_req_t *req)
{
    console_t *c = arg;
    if (strncmp(req->path, "/api/", 5) == 0) {
        c->stats.api_requests++;
        console_watch(c);
        if (strcmp(req->path, "/api/v1/events") == 0)
            sse_open(c, req);
        else
            route_api(c, req);
        return;
    }
    dashboard_serve(req);
}
