/* worker.h - the daemon's run/drain/stop state machine: claims jobs, runs
 * their handlers, keeps their leases, reports their outcomes.
 *
 * DESIGN: one loop thread. Claims go out only while a slot is free (never
 * more jobs than free slots) and only one claim is in flight at a time;
 * queues are picked by smooth weighted round robin, skipping queues that
 * came back empty until a wake-up message (PREFIX:{Q}:wake, published when
 * a queue's ready set goes from empty to non-empty) or the next scheduled
 * job's time. Outcomes accumulate while a report is in flight and go out
 * batched, one script call per queue and kind. Every lease/3 one extend call
 * per queue renews every held lease; a rejected token stops that job (Guarantee
 * 2) and counts in lease_lost. Every jobd reaps expired leases of its queues.
 *
 *   RUNNING --SIGTERM/SIGINT--> DRAINING --drain timeout or 2nd signal--> STOPPING
 *   DRAINING/STOPPING --no handler running, outcomes reported--> CLOSING --> exit
 *   RUNNING --(--once) queues empty, nothing held--> CLOSING
 *   RUNNING --(--once) Redis unreachable past the drain timeout--> DRAINING (exit 69)
 *   STOPPING --hard deadline (kill grace + 1 s)--> exit, unreported leases left
 *
 * Exit status: 0 clean; with --once 1 when Redis confirmed a job dead, 69
 * when Redis stayed away past the drain timeout, 75 after a hard deadline.
 *
 * In STOPPING every handler is asked to stop (SIGTERM to the exec group,
 * the stop flag for built-ins), killed after the kill grace, and its lease
 * released with its newest checkpoint, attempt not charged (Guarantee 4).
 */
#ifndef JOBD_WORKER_H
#define JOBD_WORKER_H

#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "handlers.h"
#include "job.h"
#include "http.h"
#include "journal.h"
#include "metrics.h"
#include "rq.h"

/* Exit statuses the worker decides (main.c adds 0, 64 and 78). */
#define WORKER_EXIT_DEAD 1         /* --once: a job it ran ended dead */
#define WORKER_EXIT_UNAVAILABLE 69 /* --once: Redis unreachable past the drain timeout */
#define WORKER_EXIT_FORCED 75      /* --once: the drain hit its hard deadline */

typedef enum {
    WORKER_RUNNING = 0, /* claiming and running */
    WORKER_DRAINING,    /* no claims; in-flight jobs run on until the drain timeout */
    WORKER_STOPPING,    /* handlers asked to stop; leases being released */
    WORKER_CLOSING      /* handles closing; the loop ends */
} worker_state_t;

typedef struct {
    long long claimed, succeeded, failed, retried, dead, canceled, released;
    long long lease_lost, stale_outcomes, checkpoints, claim_calls, ack_calls;
    long long invalid_lines; /* handler stdout lines that looked like messages but were not */
} worker_stats_t;

typedef struct {
    int64_t next_sched_ms; /* Unix ms of the next scheduled job, 0: none */
    int empty;             /* the last claim came back short */
    int exhausted;         /* empty and nothing scheduled (for --once) */
    int in_flight;         /* handlers of this queue running */
    int current;           /* smooth weighted round robin state */
    unsigned wakes;        /* wake-up messages seen for this queue */
    /* Garbage the claim and reap scripts set aside: unusable job records
     * sent dead unrun, entries with no job record removed from their set. */
    long long garbage_dead, garbage_dropped;
} worker_queue_t;

typedef struct worker {
    uv_loop_t *loop;
    const config_t *cfg;
    const handlers_t *handlers;
    rq_t rq;
    journal_t *jn;         /* borrowed; opened and closed by main */
    uv_async_t ckpt_async; /* a built-in checkpointed: journal and commit it */
    worker_state_t state;
    int exit_code;
    int forced; /* left the loop with handler threads still running */
    worker_queue_t queues[CONFIG_MAX_QUEUES];
    job_t *held; /* doubly-linked list of held jobs */
    int nheld, running;
    int claim_inflight, flush_inflight;
    int once_checking;     /* a --once emptiness check is in flight */
    int64_t redis_down_ms; /* when the command connection went down; 0: up (or never up) */
    int parked;            /* parked checkpoints in the journal (see journal_park) */
    uv_idle_t kick;        /* runs claim/flush once the current callbacks are done */
    uv_timer_t heartbeat, reaper, ticker, drain_timer, sync_timer;
    uv_signal_t sigterm, sigint;
    int signals;
    int64_t started_ms;
    int pending_closes;
    worker_stats_t stats;
    metrics_hist_t durations;
    long long depth[CONFIG_MAX_QUEUES][6]; /* polled from Redis; -1: unknown */
    int ticks;
    http_t http;
    char host[256];
    char **child_env_base; /* allow-listed variables of our own environment */
    /* Borrowed, set by main (for the metrics); NULL: none. */
    const struct orphans *orphans;
    struct console *console; /* the HTTP console (console.h); NULL without --http */
} worker_t;

/* Sets the worker up on loop (no I/O yet). Returns 0 or a negative code. */
int worker_init(worker_t *w, uv_loop_t *loop, const config_t *cfg, const handlers_t *handlers,
                journal_t *jn);
/* Takes back what the journal holds from an earlier run (Guarantee 5:
 * leases are released at once with their newest checkpoint, outcomes are
 * reported, fenced by their tokens), connects to Redis, installs signal
 * handlers, starts claiming and the HTTP endpoints. Returns 0, or a negative
 * libuv error if --http cannot listen (nothing started then). */
int worker_start(worker_t *w);
/* Begins the drain (as SIGTERM would). */
void worker_drain(worker_t *w);
/* Frees what worker_init allocated; call after uv_run returned. */
void worker_free(worker_t *w);

#endif
