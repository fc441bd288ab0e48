/* batches.h - completing named batches: the completion job, once.
 *
 * DESIGN: a batch's jobs may live in several queues, and on Redis Cluster
 * a script may only touch its own slot. So each job's terminal transition
 * counts it in its own queue's part of the batch (ack.lua, finish in
 * lib.lua), and a part with no job left puts the batch's name in its
 * queue's set PREFIX:{Q}:batches:done. jobd looks at those sets of its
 * queues (when Redis becomes ready and every housekeeping round, 5 s): for
 * each name it reads the batch's record and every part (plain reads, one
 * slot at a time); once every part is done it builds the summary (ids and
 * counts by state) and runs complete.lua in the completion job's queue,
 * which marks the batch completed and enqueues the job in one atomic step
 * on that slot. Any jobd may do this, any number of times, and a jobd
 * killed at any point leaves the name in the set for the next one: the
 * mark makes the completion job exactly once. Loop thread only. */
#ifndef JOBD_BATCHES_H
#define JOBD_BATCHES_H

#include "config.h"
#include "rq.h"

typedef struct {
    const config_t *cfg;
    rq_t *rq;            /* borrowed */
    int inflight;        /* checks out (one round at a time) */
    long long completed; /* completion jobs this jobd enqueued */
} batches_t;

void batches_init(batches_t *b, const config_t *cfg, rq_t *rq);
/* Looks for batches whose parts in this jobd's queues are done, and
 * completes those whose every part is, unless a round is still out. */
void batches_check(batches_t *b);

#endif
