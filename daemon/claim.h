/* claim.h - which queue to claim from, claiming, and when to look again.
 *
 * DESIGN: claims go out only while a slot is free (never more jobs than
 * free slots; claim counts the slots: reserved when a claim call goes
 * out, taken for each job its reply brings, freed by claim_slot_free when
 * the handler ends) and at most CLAIM_INFLIGHT_MAX at a time: a slot freed
 * while a claim is out is asked for at once, not after that reply. Queues are
 * picked by smooth weighted round robin (claim_pick, pure), skipping queues
 * at their limit and queues that came back empty. An empty queue is looked
 * at again when a wake-up message arrives (PREFIX:{Q}:wake, published when
 * its ready set goes from empty to non-empty), when its next scheduled job
 * comes due (one timer for the soonest), when a job goes back to it, after
 * a reconnect, and every few seconds as a safety net (claim_look_again).
 * Each claimed job is built here, handed to lease, and given up through
 * on_job. For --once, claim_check_empty asks Redis whether any queue still
 * has work (queued, scheduled or active). Loop thread only. */
#ifndef JOBD_CLAIM_H
#define JOBD_CLAIM_H

#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "job.h"
#include "lease.h"
#include "rq.h"
#include "stats.h"

#define CLAIM_MAX 64         /* most jobs per claim call */
#define CLAIM_INFLIGHT_MAX 2 /* claim calls out at once */

typedef struct {
    int64_t next_sched_ms; /* Unix ms of the next scheduled job, 0: none */
    int empty;             /* the last claim came back short */
    int exhausted;         /* empty and nothing scheduled (for --once) */
    int in_flight;         /* handlers of this queue running */
    int reserved;          /* slots its claim calls in flight may fill */
    int current;           /* smooth weighted round robin state */
    unsigned wakes;        /* wake-up messages seen for this queue */
    int down;              /* its Redis Cluster node is down: skipped */
} claim_queue_t;

typedef struct {
    void (*on_job)(void *arg, job_t *j);      /* a claimed job, held by lease: run it */
    void (*on_checked)(void *arg, int empty); /* claim_check_empty's answer */
    void (*kick)(void *arg);                  /* run the pump soon */
    void *arg;
} claim_cbs_t;

typedef struct {
    uv_loop_t *loop;
    const config_t *cfg;
    rq_t *rq;       /* borrowed */
    lease_t *lease; /* borrowed */
    stats_t *stats; /* borrowed */
    claim_cbs_t cbs;
    claim_queue_t queues[CONFIG_MAX_QUEUES];
    stats_queue_t garbage[CONFIG_MAX_QUEUES];
    int running;            /* slots taken */
    int inflight;           /* claim calls out (at most CLAIM_INFLIGHT_MAX) */
    int reserved;           /* slots those calls may fill */
    unsigned epoch;         /* bumped when Redis went away: older calls count no more */
    int checking;           /* an emptiness check is out */
    uv_timer_t sched_timer; /* the soonest scheduled job of an empty queue */
} claim_t;

/* Smooth weighted round robin: the index of the queue to claim from among
 * the n queues (cq their config, q their state, updated), or -1 if every
 * queue is empty or at its limit. Pure. */
int claim_pick(const config_queue_t *cq, claim_queue_t *q, int n);

void claim_init(claim_t *c, uv_loop_t *loop, const config_t *cfg, rq_t *rq, lease_t *lease,
                stats_t *stats, const claim_cbs_t *cbs);
/* Claims for the free slots, unless a claim is out or Redis is away. */
void claim_more(claim_t *c);
/* A job of queue qidx ended: its slot is free. */
void claim_slot_free(claim_t *c, int qidx);
/* Redis put a job of qidx back (o: released now, else a retry after
 * retry_ms): the queue is not exhausted, whatever the last claim said. */
void claim_requeued(claim_t *c, int qidx, job_outcome_t o, int64_t retry_ms);
/* Every queue may have work again (reconnect, safety net). */
void claim_look_again(claim_t *c);
/* A pub/sub message on channel: the queue it wakes may have work. */
void claim_wake(claim_t *c, const char *channel);
/* Redis went away: the claim in flight gets no answer worth waiting for. */
void claim_redis_down(claim_t *c);
/* Logs and counts what claim.lua or reap.lua set aside (ops_note). */
void claim_note_garbage(claim_t *c, int qidx, const redisReply *set_aside, const char *where);
/* Non-zero when every queue came back empty with nothing scheduled. */
int claim_exhausted(const claim_t *c);
/* --once: asks Redis whether every queue is empty; on_checked answers
 * (one check at a time). */
void claim_check_empty(claim_t *c);
/* Closes the timer. */
void claim_close(claim_t *c);

#endif
