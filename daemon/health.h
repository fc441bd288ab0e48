/* health.h - what /health/ready and /metrics say about a worker.
 *
 * Renders the worker's state (worker.h) for the HTTP module: the reasons it
 * is not ready, and the Prometheus text of its counters, gauges, the job
 * duration histogram and the queue depths, which it polls from Redis (one
 * stats.lua call per queue) every few seconds. Loop thread only. */
#ifndef JOBD_HEALTH_H
#define JOBD_HEALTH_H

#include "metrics.h"
#include "worker.h"

/* http_cbs_t.not_ready: appends the reasons (JSON strings, comma-separated)
 * w (arg) is not ready; nothing when it is ready. */
void health_not_ready(void *arg, metrics_buf_t *b);
/* http_cbs_t.metrics: appends the Prometheus text for w (arg). */
void health_metrics(void *arg, metrics_buf_t *b);
/* Asks Redis for every queue's depth by state; the answers land in
 * w->depth. */
void health_poll_depths(worker_t *w);

#endif
