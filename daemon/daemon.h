/* daemon.h - jobd's wiring: the modules, the callbacks between them, and
 * the pump.
 *
 * DESIGN: one loop thread (and the spawner's threads, which only start
 * exec handlers: spawner.h). daemon.c creates every module and is the only
 * place that knows them all; a module calls down (claim, run, outbox and
 * resources into lease; everything into rq and the journal) and tells news
 * up only through the callbacks wired here. A job's path from claim to ack:
 *
 *   claim --on_job--> run --on_ended--> outbox_put (outcome.c decides)
 *     --pump: flush--> Redis confirms --> lease_retire --pump--> freed
 *
 * The pump (an idle handle, started by any module's kick) runs once per
 * loop iteration in this order, each step seeing what the one before did:
 *   1. commit the journal (one group commit), then free retired jobs;
 *   2. give exec handlers started since their input (their process groups
 *      are durable now);
 *   3. flush outcomes (ack, fail, release), one call per queue and kind;
 *   4. claim for the free slots (RUNNING only);
 *   Steps 3 and 4 wait while more than one exec handler waits to be
 *   spawned, for at most SPAWNER_HOLD_MS in a row (spawner_hold): with
 *   short exec jobs the spawns are what limits, and a flush or claim made
 *   at every exit carries one job, so each job cost Redis and jobd two
 *   wake-ups of their own (the CPU the handlers needed); held back until
 *   the spawns are down to one (each one's end runs the pump), they carry
 *   several jobs, while the claim's round trip still fits in the spawn that
 *   is left. The bound keeps a spawn that hangs from holding back every
 *   outcome.
 *   5. step the drain (idle? --once done? Redis away too long?).
 * Outside the pump: the heartbeat (lease/3: extend every lease, publish the
 * registry entry, renew resource holds), housekeeping (every 5 s: queue
 * depths for /metrics, a safety-net look at every queue, batches to
 * complete), the cron schedules' timer (schedule.h), signals, and
 * Redis's state and pub/sub messages (see drain.h for the life cycle). */
#ifndef JOBD_DAEMON_H
#define JOBD_DAEMON_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "batches.h"
#include "claim.h"
#include "config.h"
#include "drain.h"
#include "handlers.h"
#include "health.h"
#include "http.h"
#include "jobmetrics.h"
#include "journal.h"
#include "lease.h"
#include "notify.h"
#include "outbox.h"
#include "reap.h"
#include "registry.h"
#include "resources.h"
#include "rq.h"
#include "run.h"
#include "schedule.h"
#include "spawner.h"
#include "stats.h"

struct orphans;
struct console;

typedef struct {
    uv_loop_t *loop;
    const config_t *cfg;
    const handlers_t *handlers;
    journal_t *jn;                 /* borrowed; opened and closed by main */
    const struct orphans *orphans; /* borrowed, for the metrics; NULL: none */
    rq_t rq;
    stats_t stats;
    lease_t lease;
    claim_t claim;
    run_t run;
    spawner_t spawner; /* exec handlers are spawned on its thread */
    outbox_t outbox;
    resources_t res;
    reap_t reap;
    schedule_t sched;  /* cron schedules: ticks enqueued once in all */
    batches_t batches; /* named batches: the completion job, once */
    drain_t drain;
    health_t health;
    jobmetrics_t jm; /* outcomes and run times by queue and type, for /metrics */
    notify_t notify; /* sd_notify: READY=1, STATUS=, STOPPING=1, WATCHDOG=1 */
    registry_t registry;
    http_t http;
    struct console *console; /* the operator's console (console.h); NULL without --http */
    uv_idle_t pump;
    uv_timer_t heartbeat, housekeeping;
    spawner_hold_t hold;   /* the pump's hold while spawns are behind */
    uv_timer_t hold_timer; /* ends a hold no spawn's end ends */
    uv_signal_t sigterm, sigint;
    int64_t started_ms;
    int64_t redis_down_ms; /* when the command connection went down; 0: up (or never up) */
    int forced;            /* left the loop with handler threads still running */
} daemon_t;

/* Sets d up on loop (no I/O yet). Returns 0, or a negative JOBD_E* code
 * with a message in err (nothing is left open then). */
int daemon_init(daemon_t *d, uv_loop_t *loop, const config_t *cfg, const handlers_t *handlers,
                journal_t *jn, const struct orphans *orphans, char *err, size_t errlen);
/* Takes back what the journal holds from an earlier run (Guarantee 5:
 * leases are released at once with their newest checkpoint, outcomes are
 * reported, fenced by their tokens), connects to Redis, installs signal
 * handlers, starts claiming and the HTTP endpoints. Returns 0, or a
 * negative libuv error with a message in err if --http cannot listen (the
 * daemon is closing then: uv_run only finishes the closes). */
int daemon_start(daemon_t *d, char *err, size_t errlen);
/* Begins the drain (as SIGTERM would). */
void daemon_drain(daemon_t *d);
/* The exit status once uv_run returned (drain.h). */
int daemon_exit_status(const daemon_t *d);
/* Non-zero if the loop was left with built-in handler threads running:
 * nothing they use may be freed then (the process exit ends them). */
int daemon_forced(const daemon_t *d);
/* Frees what daemon_init allocated; call after uv_run returned (and not
 * when daemon_forced). */
void daemon_free(daemon_t *d);

#endif
