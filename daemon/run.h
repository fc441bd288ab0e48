/* run.h - starting and stopping handlers: built-in and exec.
 *
 * DESIGN: run_start takes a claimed job (its slot already counted by
 * claim): it decodes the envelope and finds the handler (bad input and
 * unknown types are passed on to other workers a bounded number of times
 * (rolling deploys), then end dead, Guarantee 7), asks for the handler's
 * resources first if it names any (acquire; busy or rate-limited: the job
 * is deferred, run_defer, and frees its slot), then starts it: a built-in on
 * libuv's thread pool (or inline if it never blocks), an exec handler as a
 * child process speaking the handler protocol (exec.c, hproto.c), its input
 * held back until the pump's group commit made its process group durable
 * (run_send_inputs). Each job has one timer of its own for its next
 * deadline: the spawn retry, then its timeout; there is
 * no scan of every job. A stop request (lease lost, cancel, timeout, drain)
 * signals the exec group, raises a built-in's stop flag, and ends at once a
 * job that never started. When the handler ends, run closes the job's
 * timer, maps the ending to an outcome (outcome.c) and tells on_ended; the
 * job is not touched by run after that.
 *
 * An exec handler that cannot be spawned for want of descriptors or
 * processes is jobd's trouble, not the job's: no attempt is charged; it
 * tries again with backoff, keeping its slot and lease, and after
 * RUN_SPAWN_TRIES (or once draining) releases the lease uncharged. Loop
 * thread only. */
#ifndef JOBD_RUN_H
#define JOBD_RUN_H

#include <uv.h>

#include "config.h"
#include "handlers.h"
#include "job.h"
#include "lease.h"
#include "metrics.h"
#include "stats.h"

#define RUN_SPAWN_TRIES 8 /* then the lease goes back; about 11 s of backoff before that */

typedef struct {
    void (*on_ended)(void *arg, job_t *j, job_outcome_t o); /* the handler ended (or never began) */
    void (*acquire)(void *arg, job_t *j); /* the job needs its resources (again) before it runs */
    void (*kick)(void *arg);              /* run the pump soon */
    void *arg;
} run_cbs_t;

typedef struct run {
    uv_loop_t *loop;
    const config_t *cfg;
    const handlers_t *handlers;
    lease_t *lease; /* borrowed: journal rows, checkpoints, the held list */
    stats_t *stats; /* borrowed */
    run_cbs_t cbs;
    struct spawner *spawner; /* borrowed: starts exec handlers (spawner.h) */
    int draining;            /* no more spawn retries: release instead */
    char **child_env_base;   /* allow-listed variables of our own environment */
} run_t;

/* Sets r up; exec handlers are spawned by spawner. Returns 0 or
 * JOBD_ENOMEM. */
struct spawner;
int run_init(run_t *r, uv_loop_t *loop, struct spawner *spawner, const config_t *cfg,
             const handlers_t *handlers, lease_t *lease, stats_t *stats, const run_cbs_t *cbs);
/* Starts claimed job j (held by lease). on_ended may run before this
 * returns (bad input, unknown type, inline built-in). */
void run_start(run_t *r, job_t *j);
/* Its resources are held: starts j's handler. */
void run_handler(run_t *r, job_t *j);
/* j cannot start yet (its resources are busy or rate-limited: why): it
 * ends unstarted, deferred, its lease handed back uncharged so that it
 * waits delay ms in its queue's scheduled set, not in a slot. */
void run_defer(run_t *r, job_t *j, int64_t delay, const char *why);
/* Asks j's handler to stop for why (see the DESIGN note). */
void run_stop(run_t *r, job_t *j, job_stop_t why);
/* run_stop on every running job. */
void run_stop_all(run_t *r, job_stop_t why);
/* Gives exec handlers started since the last commit their input (the pump
 * calls it right after the commit). */
void run_send_inputs(run_t *r);
void run_free(run_t *r);

#endif
