/* health.c - see health.h. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "health.h"
#include "jobd/client.h"
#include "jobd/version.h"
#include "jobmetrics.h"
#include "ops.h"
#include "pools.h"
#include "procmetrics.h"

typedef struct {
    health_t *h;
    int qidx;
} depth_req_t;

void health_init(health_t *h, const config_t *cfg, rq_t *rq, stats_snapshot_fn snapshot, void *arg)
{
    memset(h, 0, sizeof *h);
    h->cfg = cfg;
    h->rq = rq;
    h->snapshot = snapshot;
    h->arg = arg;
    memset(h->depth, 0xff, sizeof h->depth);   /* -1: not polled yet */
    memset(h->oldest, 0xff, sizeof h->oldest); /* -1: not polled yet */
}

static void on_depth(rq_t *rq, redisReply *r, void *arg)
{
    (void)rq;
    depth_req_t *d = arg;
    /* Kept as they were if not a reply. */
    if (ops_stats_reply(r, d->h->depth[d->qidx]) == 0)
        d->h->oldest[d->qidx] = ops_stats_oldest_ms(r);
    free(d);
}

void health_poll_depths(health_t *h)
{
    if (!rq_ready(h->rq)) return;
    for (int qi = 0; qi < h->cfg->nqueues; qi++) {
        depth_req_t *d = malloc(sizeof *d);
        if (!d) return; /* the next poll */
        *d = (depth_req_t){h, qi};
        proto_argv_t a;
        proto_argv_init(&a);
        if (rq_script(h->rq, PROTO_STATS, h->cfg->queues[qi].name, &a, on_depth, d) < 0) free(d);
        proto_argv_free(&a);
    }
}

void health_not_ready(void *arg, metrics_buf_t *b)
{
    health_t *h = arg;
    stats_snapshot_t s;
    h->snapshot(h->arg, &s);
    const char *sep = "";
    if (!s.redis_up) {
        /* Why, in rq's words: "redis unreachable: connection refused
         * (attempt 7, next try in 3.2 s)" (JSON-safe). */
        metrics_printf(b, "\"%s\"", s.why_down);
        sep = ",";
    }
    if (!s.journal_ok) {
        metrics_printf(b, "%s\"journal not open\"", sep);
        sep = ",";
    }
    if (s.draining) {
        metrics_printf(b, "%s\"draining\"", sep);
        sep = ",";
    }
    pools_not_ready(b, sep); /* persistent handlers in a crash loop */
}

int health_ready(health_t *h)
{
    metrics_buf_t b = {0};
    health_not_ready(h, &b);
    free(b.buf);
    return b.len == 0;
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
    health_t *h = arg;
    stats_snapshot_t snap;
    h->snapshot(h->arg, &snap);
    const stats_t *s = &snap.counters;
    metrics_printf(b,
                   "# HELP jobd_build_info The jobd version serving these metrics.\n"
                   "# TYPE jobd_build_info gauge\njobd_build_info{version=\"%s\"} 1\n",
                   JOBD_VERSION);
    gauge(b, "jobd_ready", "1 when /health/ready answers 200.", health_ready(h));
    counter(b, "jobd_jobs_claimed_total", "Jobs claimed from Redis.", s->claimed);
    jobmetrics_render(snap.jobs, b);
    gauge(b, "jobd_jobs_in_flight", "Handlers running now.", snap.running);
    counter(b, "jobd_checkpoints_total", "Checkpoints reported by handlers.", s->checkpoints);
    counter(b, "jobd_handler_invalid_lines_total",
            "Handler output lines that looked like protocol messages but were invalid.",
            s->invalid_lines);
    counter(b, "jobd_lease_lost_total",
            "Leases lost: stale token on extend, checkpoint or outcome.", s->lease_lost);
    gauge(b, "jobd_redis_up", "1 when the Redis connection is ready.", snap.redis_up);
    gauge(b, "jobd_draining", "1 once a drain has begun.", snap.draining);
    counter(b, "jobd_journal_commits_total", "SQLite journal commits (group commits).",
            snap.journal_commits);
    counter(b, "jobd_redis_commands_total", "Commands sent to Redis.", snap.redis_commands);
    counter(b, "jobd_orphans_reaped_total",
            "Orphaned processes left by handlers that jobd reaped as their subreaper.",
            snap.orphans_reaped);
    metrics_printf(b, "# HELP jobd_garbage_entries_total Unusable queue entries set aside: "
                      "action dead (job record unusable, sent dead unrun) or dropped (no job "
                      "record, removed from its set).\n"
                      "# TYPE jobd_garbage_entries_total counter\n");
    for (int qi = 0; qi < h->cfg->nqueues; qi++)
        metrics_printf(b,
                       "jobd_garbage_entries_total{queue=\"%s\",action=\"dead\"} %lld\n"
                       "jobd_garbage_entries_total{queue=\"%s\",action=\"dropped\"} %lld\n",
                       h->cfg->queues[qi].name, snap.queues[qi].garbage_dead,
                       h->cfg->queues[qi].name, snap.queues[qi].garbage_dropped);
    const http_stats_t hs = snap.http;
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
    pools_metrics(b);
    metrics_printf(b,
                   "# HELP jobd_queue_depth Jobs per queue and state (sampled every %d s).\n"
                   "# TYPE jobd_queue_depth gauge\n",
                   HEALTH_POLL_MS / 1000);
    for (int qi = 0; qi < h->cfg->nqueues; qi++)
        for (int st = 0; st < 6; st++)
            if (h->depth[qi][st] >= 0)
                metrics_printf(b, "jobd_queue_depth{queue=\"%s\",state=\"%s\"} %lld\n",
                               h->cfg->queues[qi].name, jobd_state_name((jobd_state_t)st),
                               h->depth[qi][st]);
    metrics_printf(b,
                   "# HELP jobd_queue_oldest_age_seconds How long the oldest job waiting to be "
                   "claimed has been ready, 0 when none waits (sampled every %d s).\n"
                   "# TYPE jobd_queue_oldest_age_seconds gauge\n",
                   HEALTH_POLL_MS / 1000);
    for (int qi = 0; qi < h->cfg->nqueues; qi++)
        if (h->depth[qi][0] >= 0) /* polled */
            metrics_printf(b, "jobd_queue_oldest_age_seconds{queue=\"%s\"} %.3f\n",
                           h->cfg->queues[qi].name,
                           h->oldest[qi] > 0 ? (double)h->oldest[qi] / 1000.0 : 0.0);
    procmetrics_render(b);
}
