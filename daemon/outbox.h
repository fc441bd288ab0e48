/* outbox.h - outcomes on their way to Redis: batched, journaled until
 * confirmed.
 *
 * DESIGN: outbox_put records how a job ended (charging the attempt and
 * drawing the retry delay with outcome.c) and, if the job has a journal row
 * or Redis is away, journals the outcome (Guarantee 6: an outcome Redis has
 * not taken yet survives a crash). The pump calls outbox_flush, which sends
 * every unsent outcome in one script call per queue and kind (ack, fail,
 * release), at most OUTBOX_BATCH_MAX jobs a call, while no earlier flush is
 * in flight: outcomes that end during a round trip wait and go out
 * together. Redis's answer per job is read with ops.c: confirmed, already
 * applied before a reconnect (it stands), or stale (the lease was lost: a
 * refused release parks its checkpoint, see journal_park). A confirmed or
 * refused job is retired from lease; a call that fails keeps its jobs, in
 * the journal too, for the next flush. A job put back in its queue
 * (released, retry scheduled) is told up through on_requeued. */
#ifndef JOBD_OUTBOX_H
#define JOBD_OUTBOX_H

#include "config.h"
#include "job.h"
#include "jobmetrics.h"
#include "lease.h"
#include "rq.h"
#include "stats.h"

#define OUTBOX_BATCH_MAX 256 /* most outcomes per report call */

typedef struct {
    /* Redis put the job of queue qidx back (o: OUT_RELEASE now, else a
     * retry after retry_ms). */
    void (*on_requeued)(void *arg, int qidx, job_outcome_t o, int64_t retry_ms);
    void (*kick)(void *arg); /* run the pump soon */
    void *arg;
} outbox_cbs_t;

typedef struct {
    const config_t *cfg;
    rq_t *rq;         /* borrowed */
    lease_t *lease;   /* borrowed */
    stats_t *stats;   /* borrowed */
    jobmetrics_t *jm; /* borrowed: the same counts by queue and type */
    outbox_cbs_t cbs;
    int inflight; /* report calls out */
} outbox_t;

void outbox_init(outbox_t *o, const config_t *cfg, rq_t *rq, lease_t *lease, stats_t *stats,
                 jobmetrics_t *jm, const outbox_cbs_t *cbs);
/* Records that j ended with outcome o (before charging): OUT_DROP retires
 * j at once; anything else waits for the next flush. */
void outbox_put(outbox_t *o, job_t *j, job_outcome_t oc);
/* Sends what waits, unless a flush is in flight or Redis is away. */
void outbox_flush(outbox_t *o);
/* Non-zero while a report call is out. */
int outbox_busy(const outbox_t *o);

#endif
