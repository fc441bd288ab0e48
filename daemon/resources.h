/* resources.h - cluster-wide resource holds and rates (a handler's
 * "resources").
 *
 * DESIGN: a handler may name units of cluster-wide limits that its job
 * holds while it runs (config "resources": {"name": limit} or {"name":
 * {"concurrency": N, "rate": "600/1m"}}). The units are members of one Redis
 * sorted set per resource (PREFIX:res:{resources}:NAME), taken for every
 * resource at once by acquire.lua and given back by unacquire.lua; a holder
 * renews its hold every heartbeat, and a crashed worker's units free
 * themselves after one lease time. A rate is GCRA without a burst (units
 * evenly spaced, one every window/count; the clock in NAME:rate beside the
 * holds), charged by the same acquire call: a job starts only when both
 * allow it. A job that may not start yet does not wait in
 * its slot: on_busy hands it back (run_defer: to its queue's scheduled set,
 * attempt not charged, shown as waiting) for the limiter's exact wait, or
 * a short jittered delay when units are busy. Replies name the job by (id, token), so a job that
 * ended while its call was out is found gone, and units taken for nobody are given back at once.
 * Loop thread only. */
#ifndef JOBD_RESOURCES_H
#define JOBD_RESOURCES_H

#include "config.h"
#include "job.h"
#include "lease.h"
#include "rq.h"

typedef struct {
    void (*on_acquired)(void *arg, job_t *j); /* its units are held: run it */
    /* it may not start yet (why): ask again after delay ms */
    void (*on_busy)(void *arg, job_t *j, int64_t delay, const char *why);
    void *arg;
} resources_cbs_t;

typedef struct {
    const config_t *cfg;
    rq_t *rq;       /* borrowed */
    lease_t *lease; /* borrowed */
    resources_cbs_t cbs;
} resources_t;

void resources_init(resources_t *r, const config_t *cfg, rq_t *rq, lease_t *lease,
                    const resources_cbs_t *cbs);
/* Asks for j's units (j->res_state 1: waiting), or renews them (2: held).
 * One call per job at a time. */
void resources_acquire(resources_t *r, job_t *j);
/* Gives j's units back (fire and forget: if Redis is away, the hold
 * expires by itself). Sets j->res_state to 0. */
void resources_release(resources_t *r, job_t *j);
/* Renews the holds of every running job that has its units. */
void resources_renew_all(resources_t *r);

#endif
