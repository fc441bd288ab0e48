/* reap.c - see reap.h. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "ops.h"
#include "reap.h"

#define REAP_MAX 1000 /* most leases per call */

typedef struct {
    reap_t *r;
    int qidx;
} reap_req_t;

static void on_reap(uv_timer_t *t);

void reap_init(reap_t *r, uv_loop_t *loop, const config_t *cfg, rq_t *rq, const reap_cbs_t *cbs)
{
    memset(r, 0, sizeof *r);
    r->cfg = cfg;
    r->rq = rq;
    r->cbs = *cbs;
    uv_timer_init(loop, &r->timer);
    r->timer.data = r;
}

/* The next reap after a jittered third of the lease (half to full). */
static uint64_t next_delay(const reap_t *r)
{
    uint64_t every = (uint64_t)r->cfg->lease_ms / 3;
    return every / 2 + (uint64_t)random() % (every / 2 + 1);
}

void reap_start(reap_t *r)
{
    uv_timer_start(&r->timer, on_reap, next_delay(r), 0);
}

static void say_clock(const reap_t *r, int qidx, const ops_reap_t *rp)
{
    const char *q = r->cfg->queues[qidx].name;
    if (rp->gap_ms < 0)
        log_info("queue %s: first reap (no reaper clock yet): no lease expires for %lld ms", q,
                 rp->held_ms);
    else if (rp->gap_ms) /* this call found the reaper clock silent and set the hold */
        log_warn("queue %s: no reaper ran for %lld ms (Redis paused or restarted, or no worker "
                 "up): no lease expires for %lld ms, so holders extend and report first",
                 q, rp->gap_ms, rp->held_ms);
}

static void on_reaped(rq_t *rq, redisReply *reply, void *arg)
{
    (void)rq;
    reap_req_t *req = arg;
    reap_t *r = req->r;
    int qidx = req->qidx;
    free(req);
    ops_reap_t rp;
    if (r->closing || ops_reap_reply(reply, &rp) < 0) return;
    r->cbs.on_set_aside(r->cbs.arg, qidx, rp.set_aside);
    /* The retention trim hit its budget: more old records wait. */
    if (rp.more) uv_timer_start(&r->timer, on_reap, 100, 0);
    say_clock(r, qidx, &rp);
    if (rp.requeued || rp.dead || rp.canceled) {
        log_info("reaped expired leases of queue %s: %lld requeued, %lld dead, %lld canceled",
                 r->cfg->queues[qidx].name, rp.requeued, rp.dead, rp.canceled);
        if (rp.requeued) r->cbs.on_requeued(r->cbs.arg, qidx);
    }
}

static void on_reap(uv_timer_t *t)
{
    reap_t *r = t->data;
    for (int qi = 0; qi < r->cfg->nqueues && rq_ready(r->rq); qi++) {
        reap_req_t *req = malloc(sizeof *req);
        if (!req) break; /* the next round */
        *req = (reap_req_t){r, qi};
        proto_argv_t a;
        proto_argv_init(&a);
        /* Guarantee 6: each worker reaps every lease/3 at most, so a reaper
         * clock silent for lease/2 means Redis was away; then no lease
         * expires for one lease. */
        ops_reap_args(&a, REAP_MAX, r->cfg->ttl_succeeded_ms, r->cfg->ttl_dead_ms,
                      r->cfg->lease_ms / 2, r->cfg->lease_ms, r->cfg->no_progress_attempts);
        if (rq_script(r->rq, PROTO_REAP, r->cfg->queues[qi].name, &a, on_reaped, req) < 0)
            free(req);
        proto_argv_free(&a);
    }
    /* Jitter the next run so a fleet's reaps spread out. */
    uv_timer_start(t, on_reap, next_delay(r), 0);
}

void reap_close(reap_t *r)
{
    r->closing = 1;
    uv_close((uv_handle_t *)&r->timer, NULL);
}
