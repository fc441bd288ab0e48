/* reap.h - the reaper: expired leases of our queues back to their queues,
 * finished records past their retention deleted.
 *
 * DESIGN: every jobd reaps every queue it serves, each one on its own timer
 * at a jittered interval of lease/6 to lease/3, so a fleet's reaps spread
 * out (reap.lua is safe to run from every worker at once). Each call also
 * keeps the per-queue reaper clock (Guarantee 6): a clock silent for
 * lease/2 means Redis was away, and then no lease expires for one lease, in
 * which holders reconnect, extend and report their journaled outcomes
 * first (schema/redis/README.md, "Outages"). When the retention trim hits
 * its budget the next reap comes after 100 ms. What reap.lua set aside goes
 * up through on_set_aside, and requeued jobs through on_requeued (the
 * wake-up message alone is not relied on). Loop thread only. */
#ifndef JOBD_REAP_H
#define JOBD_REAP_H

#include <uv.h>

#include "config.h"
#include "rq.h"

typedef struct {
    void (*on_set_aside)(void *arg, int qidx, const redisReply *set_aside);
    void (*on_requeued)(void *arg, int qidx); /* leases of qidx went back to its queue */
    void *arg;
} reap_cbs_t;

typedef struct {
    const config_t *cfg;
    rq_t *rq; /* borrowed */
    reap_cbs_t cbs;
    uv_timer_t timer;
    int closing;
} reap_t;

void reap_init(reap_t *r, uv_loop_t *loop, const config_t *cfg, rq_t *rq, const reap_cbs_t *cbs);
/* Starts reaping (the first reap after a jittered lease/6..lease/3). */
void reap_start(reap_t *r);
/* Closes the timer; replies still out are ignored. */
void reap_close(reap_t *r);

#endif
