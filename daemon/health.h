/* health.h - what /health/ready and /metrics say about the daemon.
 *
 * Renders a stats snapshot (stats.h, filled by daemon.c when asked) for the
 * HTTP module: the reasons jobd is not ready, and the Prometheus text of
 * its counters and gauges, the job series by queue and type (jobmetrics.h),
 * the process_* metrics (procmetrics.h) and the queue depths and oldest
 * ages, which this module polls from Redis itself (one stats.lua call per
 * queue) every HEALTH_POLL_MS. It never sees the daemon's modules. Loop thread only. */
#ifndef JOBD_HEALTH_H
#define JOBD_HEALTH_H

#include "config.h"
#include "metrics.h"
#include "rq.h"
#include "stats.h"

#define HEALTH_POLL_MS 5000 /* the queue depths' and oldest ages' sampling interval */

typedef struct {
    const config_t *cfg;
    rq_t *rq; /* borrowed */
    stats_snapshot_fn snapshot;
    void *arg;
    long long depth[CONFIG_MAX_QUEUES][6]; /* polled from Redis; -1: unknown */
    long long oldest[CONFIG_MAX_QUEUES];   /* ms the oldest queued job waits; -1: none/unknown */
} health_t;

void health_init(health_t *h, const config_t *cfg, rq_t *rq, stats_snapshot_fn snapshot, void *arg);
/* http_cbs_t.not_ready: appends the reasons (JSON strings, comma-separated)
 * jobd (h, as arg) is not ready; nothing when it is ready. */
void health_not_ready(void *arg, metrics_buf_t *b);
/* Non-zero when /health/ready answers 200: health_not_ready says nothing. */
int health_ready(health_t *h);
/* http_cbs_t.metrics: appends the Prometheus text (h, as arg). */
void health_metrics(void *arg, metrics_buf_t *b);
/* Asks Redis for every queue's depth by state and the age of its oldest
 * waiting job; the answers land in h->depth and h->oldest. The daemon
 * calls it every HEALTH_POLL_MS and when Redis (re)connects: /metrics
 * shows these figures as sampled, up to HEALTH_POLL_MS old. */
void health_poll_depths(health_t *h);

#endif
