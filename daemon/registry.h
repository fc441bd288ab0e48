/* registry.h - the worker registry that feeds `jobctl workers`.
 *
 * Each jobd keeps PREFIX:worker:ID (a JSON object: id, host, pid,
 * started_at, last_seen, in_flight, concurrency, draining, queues, claimed,
 * lease_lost) with an expiry of one lease time, renewed every lease/3, and
 * its id in the sorted set PREFIX:workers. A worker that stops renewing drops
 * out by itself; a clean exit removes both at once. */
#ifndef JOBD_REGISTRY_H
#define JOBD_REGISTRY_H

#include "worker.h"

/* Writes (renews) w's entry. Fire and forget: a failure is retried at the
 * next heartbeat. */
void registry_publish(worker_t *w);
/* Removes w's entry (clean exit). */
void registry_unpublish(worker_t *w);

#endif
