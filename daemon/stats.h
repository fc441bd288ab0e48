/* stats.h - the daemon's counters, and the snapshot the outside reads.
 *
 * DESIGN: each module adds to its own counters in one stats_t (claim to
 * claimed, outbox to the outcomes, lease and outbox to lease_lost, run to
 * checkpoints and invalid_lines); daemon.c owns the struct and lends it to
 * them. The same outcomes by queue and job type, and the run times, are
 * jobmetrics.h's. Nobody outside those modules reads the live struct or any module's
 * state: registry (jobctl workers) and health (/health/ready, /metrics) get
 * a stats_snapshot_t that daemon.c fills, a copy taken on the loop thread
 * when they ask. Loop thread only. */
#ifndef JOBD_STATS_H
#define JOBD_STATS_H

#include "config.h"
#include "http.h"
#include "metrics.h"

struct jobmetrics;

typedef struct {
    long long claimed, succeeded, failed, retried, dead, canceled, released;
    long long lease_lost, stale_outcomes, checkpoints, claim_calls, ack_calls;
    long long invalid_lines; /* handler stdout lines that looked like messages but were not */
    long long deferred;      /* jobs put back to wait, unstarted (resources, unknown type) */
} stats_t;

typedef struct {
    long long garbage_dead, garbage_dropped; /* what claim.lua and reap.lua set aside */
} stats_queue_t;

typedef struct {
    stats_t counters;
    int running;        /* handlers running (slots taken) */
    int draining;       /* a drain has begun */
    int redis_up;       /* the command connection is ready */
    int journal_ok;     /* the journal is open */
    char why_down[512]; /* why Redis is not ready, JSON-safe; "" when it is */
    long long journal_commits, redis_commands, orphans_reaped;
    const struct jobmetrics *jobs; /* borrowed: outcomes and run times by queue and type */
    stats_queue_t queues[CONFIG_MAX_QUEUES];
    http_stats_t http;
} stats_snapshot_t;

/* Fills a snapshot (the daemon's, given as arg). */
typedef void (*stats_snapshot_fn)(void *arg, stats_snapshot_t *out);

#endif
