/* health.h - what /health/ready and /metrics say about the daemon.
 *
 * Renders a stats snapshot (stats.h, filled by daemon.c when asked) for the
 * HTTP module: the reasons jobd is not ready, and the Prometheus text of
 * its counters, gauges, the job duration histogram and the queue depths,
 * which this module polls from Redis itself (one stats.lua call per queue)
 * every few seconds. It never sees the daemon's modules. Loop thread only. */
#ifndef JOBD_HEALTH_H
#define JOBD_HEALTH_H

#include "config.h"
#include "metrics.h"
#include "rq.h"
#include "stats.h"

typedef struct {
    const config_t *cfg;
    rq_t *rq; /* borrowed */
    stats_snapshot_fn snapshot;
    void *arg;
    long long depth[CONFIG_MAX_QUEUES][6]; /* polled from Redis; -1: unknown */
} health_t;

void health_init(health_t *h, const config_t *cfg, rq_t *rq, stats_snapshot_fn snapshot, void *arg);
/* http_cbs_t.not_ready: appends the reasons (JSON strings, comma-separated)
 * jobd (h, as arg) is not ready; nothing when it is ready. */
void health_not_ready(void *arg, metrics_buf_t *b);
/* http_cbs_t.metrics: appends the Prometheus text (h, as arg). */
void health_metrics(void *arg, metrics_buf_t *b);
/* Asks Redis for every queue's depth by state; the answers land in
 * h->depth. */
void health_poll_depths(health_t *h);

#endif
