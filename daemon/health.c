/* health.c - see health.h. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "console.h"
#include "health.h"
#include "orphans.h"

typedef struct {
    worker_t *w;
    int qidx;
} depth_req_t;

static void on_depth(rq_t *rq, redisReply *r, void *arg)
{
    (void)rq;
    depth_req_t *d = arg;
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements >= 6)
        for (int s = 0; s < 6; s++)
            d->w->depth[d->qidx][s] = r->element[s]->integer;
    free(d);
}

void health_poll_depths(worker_t *w)
{
    if (!rq_ready(&w->rq)) return;
    for (int qi = 0; qi < w->cfg->nqueues; qi++) {
        depth_req_t *d = malloc(sizeof *d);
        *d = (depth_req_t){w, qi};
        proto_argv_t a;
        proto_argv_init(&a);
        if (rq_script(&w->rq, PROTO_STATS, w->cfg->queues[qi].name, &a, on_depth, d) < 0) free(d);
        proto_argv_free(&a);
    }
}

void health_not_ready(void *arg, metrics_buf_t *b)
{
    worker_t *w = arg;
    const char *sep = "";
    if (!rq_ready(&w->rq)) {
        /* Why, in rq's words: "redis unreachable: connection refused
         * (attempt 7, next try in 3.2 s)" (JSON-safe). */
        char why[512];
        rq_why_down(&w->rq, why, sizeof why);
        metrics_printf(b, "\"%s\"", why);
        sep = ",";
    }
    if (!w->jn) {
        metrics_printf(b, "%s\"journal not open\"", sep);
        sep = ",";
    }
    if (w->state != WORKER_RUNNING) metrics_printf(b, "%s\"draining\"", sep);
}

static void counter(metrics_buf_t *b, const char *name, const char *help, long long v)
{
    metrics_printf(b, "# HELP %s %s\n# TYPE %s counter\n%s %lld\n", name, help, name, name, v);
}

static void gauge(metrics_buf_t *b, const char *name, const char *help, long long v)
{
    metrics_printf(b, "# HELP %s %s\n# TYPE %s gauge\n%s %lld\n", name, help, name, name, v);
}

void health_metrics(void *arg, metrics_buf_t *b)
{
    worker_t *w = arg;
    const worker_stats_t *s = &w->stats;
    counter(b, "jobd_jobs_claimed_total", "Jobs claimed from Redis.", s->claimed);
    metrics_printf(b, "# HELP jobd_jobs_finished_total Job outcomes confirmed by Redis.\n"
                      "# TYPE jobd_jobs_finished_total counter\n");
    const char *names[] = {"succeeded", "retried", "dead", "canceled", "released"};
    long long vals[] = {s->succeeded, s->retried, s->dead, s->canceled, s->released};
    for (int i = 0; i < 5; i++)
        metrics_printf(b, "jobd_jobs_finished_total{outcome=\"%s\"} %lld\n", names[i], vals[i]);
    gauge(b, "jobd_jobs_in_flight", "Handlers running now.", w->running);
    metrics_hist_render(b, "jobd_job_duration_seconds", "Handler run time per attempt.",
                        &w->durations);
    counter(b, "jobd_checkpoints_total", "Checkpoints reported by handlers.", s->checkpoints);
    counter(b, "jobd_handler_invalid_lines_total",
            "Handler output lines that looked like protocol messages but were invalid.",
            s->invalid_lines);
    counter(b, "jobd_lease_lost_total",
            "Leases lost: stale token on extend, checkpoint or outcome.", s->lease_lost);
    gauge(b, "jobd_redis_up", "1 when the Redis connection is ready.", rq_ready(&w->rq));
    gauge(b, "jobd_draining", "1 once a drain has begun.", w->state != WORKER_RUNNING);
    counter(b, "jobd_journal_commits_total", "SQLite journal commits (group commits).",
            journal_commits(w->jn));
    counter(b, "jobd_redis_commands_total", "Commands sent to Redis.", w->rq.commands_sent);
    counter(b, "jobd_orphans_reaped_total",
            "Orphaned processes left by handlers that jobd reaped as their subreaper.",
            orphans_reaped(w->orphans));
    metrics_printf(b, "# HELP jobd_garbage_entries_total Unusable queue entries set aside: "
                      "action dead (job record unusable, sent dead unrun) or dropped (no job "
                      "record, removed from its set).\n"
                      "# TYPE jobd_garbage_entries_total counter\n");
    for (int qi = 0; qi < w->cfg->nqueues; qi++)
        metrics_printf(b,
                       "jobd_garbage_entries_total{queue=\"%s\",action=\"dead\"} %lld\n"
                       "jobd_garbage_entries_total{queue=\"%s\",action=\"dropped\"} %lld\n",
                       w->cfg->queues[qi].name, w->queues[qi].garbage_dead, w->cfg->queues[qi].name,
                       w->queues[qi].garbage_dropped);
    http_stats_t hs;
    http_get_stats(&w->http, &hs);
    counter(b, "jobd_http_connections_rejected_total",
            "HTTP connections closed unanswered at the connection limit.", hs.rejected);
    counter(b, "jobd_http_connections_timed_out_total",
            "HTTP connections closed at the request head or answer deadline.", hs.timed_out);
    counter(b, "jobd_http_accept_errors_total",
            "Failed accepts on the HTTP port (out of descriptors or memory).", hs.accept_errors);
    counter(b, "jobd_http_bad_requests_total", "HTTP requests answered 400, 405, 413, 414 or 431.",
            hs.bad_requests);
    gauge(b, "jobd_http_connections_open", "HTTP connections open now.", hs.open);
    gauge(b, "jobd_http_connections_limit", "The HTTP connection limit in force.", hs.limit);
    counter(b, "jobd_http_requests_total", "HTTP requests parsed.", hs.requests);
    gauge(b, "jobd_http_streams_open", "HTTP event streams open now.", hs.streams);
    counter(b, "jobd_http_streams_refused_total", "HTTP event streams refused at their cap.",
            hs.streams_refused);
    counter(b, "jobd_http_streams_slow_total", "HTTP event streams closed for falling behind.",
            hs.streams_slow);
    console_metrics(w->console, b);
    metrics_printf(b, "# HELP jobd_queue_depth Jobs per queue and state (polled every 5 s).\n"
                      "# TYPE jobd_queue_depth gauge\n");
    for (int qi = 0; qi < w->cfg->nqueues; qi++)
        for (int st = 0; st < 6; st++)
            if (w->depth[qi][st] >= 0)
                metrics_printf(b, "jobd_queue_depth{queue=\"%s\",state=\"%s\"} %lld\n",
                               w->cfg->queues[qi].name, jobd_state_name((jobd_state_t)st),
                               w->depth[qi][st]);
}
