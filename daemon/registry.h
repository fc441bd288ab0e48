/* registry.h - the worker registry that feeds `jobctl workers`.
 *
 * Each jobd keeps PREFIX:worker:ID (a JSON object: id, host, pid,
 * started_at, last_seen, in_flight, concurrency, draining, queues, claimed,
 * lease_lost, version, jobs) with an expiry of one lease time, renewed every lease/3, and
 * its id in the sorted set PREFIX:workers. A worker that stops renewing drops
 * out by itself; a clean exit removes both at once. It writes what a stats
 * snapshot (stats.h) says; it never sees the daemon's modules. */
#ifndef JOBD_REGISTRY_H
#define JOBD_REGISTRY_H

#include <jansson.h>
#include <stdint.h>

#include "config.h"
#include "rq.h"
#include "stats.h"

typedef struct {
    const config_t *cfg;
    rq_t *rq; /* borrowed */
    char host[256];
    int64_t started_ms;
} registry_t;

void registry_init(registry_t *r, const config_t *cfg, rq_t *rq, int64_t started_ms);
/* Writes (renews) the entry from s and jobs (stolen; NULL: none): the
 * running jobs as daemon.c lists them (id, queue, type, attempt, progress,
 * started_at), for the console's workers page. Fire and forget: a failure
 * is retried at the next heartbeat. */
void registry_publish(registry_t *r, const stats_snapshot_t *s, json_t *jobs);
/* Removes the entry (clean exit). */
void registry_unpublish(registry_t *r);

#endif
